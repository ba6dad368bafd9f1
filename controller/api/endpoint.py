"""Where a site's daemon serves its local API and the token that opens it, both in the state
directory: `<site id>.api` (the address the daemon bound, written once it listens, removed when it
stops) and `<site id>.token` (made at the daemon's first start, mode 0600: who can read it can
change the plant, like the ssh keys of the box)."""

from __future__ import annotations

import json
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from controller.config.loader import LoadedSite
from controller.state import state_directory


class TokenFileError(Exception):
    """The token file cannot be used: one line saying which file and why."""


class ApiAddressError(Exception):
    """The API's address cannot be bound: one line saying which and why."""


@dataclass(frozen=True)
class Address:
    """An HTTP base URL, or a Unix socket."""

    url: str | None = None
    socket: str | None = None

    def __str__(self) -> str:
        return self.url if self.url is not None else f"unix:{self.socket}"


def token_path(site: LoadedSite, environ: Mapping[str, str]) -> Path:
    return state_directory(environ) / f"{site.config.site.slug}.token"


def address_path(site: LoadedSite, environ: Mapping[str, str]) -> Path:
    return state_directory(environ) / f"{site.config.site.slug}.api"


def socket_path(site: LoadedSite) -> Path | None:
    configured = site.config.api.socket
    return None if configured is None else site.path.parent / configured


def ensure_token(path: Path) -> str:
    """The daemon's token: read, or made with mode 0600 if the file does not exist yet.
    TokenFileError when it is readable by others, empty or unreadable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return read_token(path, check_mode=True)
    except OSError as error:
        raise TokenFileError(f"token file {path}: {error.strerror}") from None
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as file:
        file.write(token + "\n")
        file.flush()
        os.fsync(file.fileno())
    return token


def read_token(path: Path, *, check_mode: bool = False) -> str:
    try:
        if check_mode:
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                raise TokenFileError(
                    f"token file {path} can be read by others (mode {mode:04o}): chmod 600 {path}"
                )
        token = path.read_text().strip()
    except OSError as error:
        raise TokenFileError(f"token file {path}: {error.strerror}") from None
    if not token:
        raise TokenFileError(f"token file {path} is empty: delete it, the daemon makes a new one")
    return token


def write_address(path: Path, address: Address) -> None:
    """Atomically: a reader never sees half an address."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    document = {"url": address.url, "socket": address.socket, "pid": os.getpid()}
    partial.write_text(json.dumps(document) + "\n")
    partial.replace(path)


def read_address(path: Path) -> Address | None:
    """The address a daemon wrote; None when there is none (no daemon has started, or it
    stopped)."""
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None  # half-written by a killed daemon: as if none
    if not isinstance(document, dict):
        return None
    url, socket = document.get("url"), document.get("socket")
    if isinstance(socket, str) and socket:
        return Address(socket=socket)
    if isinstance(url, str) and url:
        return Address(url=url)
    return None  # not a file a daemon wrote: as if none


def remove_address(path: Path) -> None:
    path.unlink(missing_ok=True)

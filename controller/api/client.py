"""`boilerctl`'s side of the local API: finds the site's daemon, sends the token, turns every
answer that is not 200 into one line and an exit code. Standard library only (http.client): the
commands start quickly and never touch a field device themselves."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlencode, urlsplit

from pydantic import BaseModel, ValidationError

from controller.api.endpoint import (
    Address,
    TokenFileError,
    address_path,
    read_address,
    read_token,
    token_path,
)
from controller.config.loader import LoadedSite

PREFIX = "/api/v1"
TIMEOUT = 10.0  # s: the daemon answers from memory; longer means it is stuck

# Exit codes of the commands that talk to the daemon (README, docs/CLI.md).
EXIT_OK = 0
EXIT_REFUSED = 1  # the daemon refused the action as things stand (409), or failed (500)
EXIT_BAD_INPUT = 2  # unknown point, caisson or alarm; a value outside limits; a bad option
EXIT_NO_DAEMON = 3  # no daemon runs for the site, or it does not answer
EXIT_AUTH = 4  # no token, an unreadable token file, or a token the daemon refuses

_EXIT_BY_STATUS = {400: EXIT_BAD_INPUT, 404: EXIT_BAD_INPUT, 413: EXIT_BAD_INPUT, 401: EXIT_AUTH}

M = TypeVar("M", bound=BaseModel)


class ClientError(Exception):
    """One line for the engineer, and the exit code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


@dataclass(frozen=True)
class ApiClient:
    address: Address
    token: str
    site_name: str = ""
    timeout: float = TIMEOUT

    @classmethod
    def for_site(
        cls, site: LoadedSite, environ: Mapping[str, str], token_file: Path | None = None
    ) -> ApiClient:
        """The client of the site's running daemon. ClientError: no daemon (3), no token (4)."""
        where = address_path(site, environ)
        address = read_address(where)
        if address is None:
            raise ClientError(
                EXIT_NO_DAEMON,
                f"no daemon running for site {site.config.site.slug} (no {where}): "
                f"start it with boilerctl run --site {site.path}",
            )
        try:
            token = read_token(token_file or token_path(site, environ))
        except TokenFileError as error:
            raise ClientError(EXIT_AUTH, f"{error} (run as the daemon's user, or root)") from None
        return cls(address, token, site.config.site.slug)

    def get(self, path: str, answer: type[M], query: Mapping[str, str] | None = None) -> M:
        target = PREFIX + path + (f"?{urlencode(query)}" if query else "")
        return self._call("GET", target, None, answer)

    def post(self, path: str, body: BaseModel, answer: type[M]) -> M:
        return self._call("POST", PREFIX + path, body.model_dump_json().encode(), answer)

    def _connection(self) -> http.client.HTTPConnection:
        if self.address.socket is not None:
            return _UnixConnection(self.address.socket, self.timeout)
        assert self.address.url is not None
        parts = urlsplit(self.address.url)
        return http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=self.timeout)

    def _call(self, method: str, target: str, body: bytes | None, answer: type[M]) -> M:
        connection = self._connection()
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        try:
            connection.request(method, target, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
        except (ConnectionRefusedError, FileNotFoundError):
            raise ClientError(
                EXIT_NO_DAEMON,
                f"no daemon answers at {self.address} for site {self.site_name} (it has stopped)",
            ) from None
        except TimeoutError:
            raise ClientError(
                EXIT_NO_DAEMON, f"the daemon at {self.address} did not answer in {self.timeout:g} s"
            ) from None
        except OSError as error:
            raise ClientError(EXIT_NO_DAEMON, f"{self.address}: {error}") from None
        finally:
            connection.close()
        if response.status != 200:
            raise ClientError(
                _EXIT_BY_STATUS.get(response.status, EXIT_REFUSED),
                _error_line(payload, response.status),
            )
        try:
            return answer.model_validate_json(payload)
        except ValidationError:
            raise ClientError(
                EXIT_REFUSED, f"{self.address}: an answer this boilerctl does not understand"
            ) from None


def _error_line(payload: bytes, status: int) -> str:
    try:
        error = json.loads(payload)["error"]
    except (ValueError, KeyError, TypeError):
        return f"the daemon answered HTTP {status}"
    return str(error)

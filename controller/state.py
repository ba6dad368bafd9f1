"""Where the daemon keeps its state (spool, journal, API token and address): one rule for the
daemon and for the commands that look for it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from controller.config.loader import LoadedSite


def state_directory(environ: Mapping[str, str]) -> Path:
    """systemd's $STATE_DIRECTORY, else /var/lib/boilerctl for root, else
    ~/.local/state/boilerctl."""
    if environ.get("STATE_DIRECTORY"):
        return Path(environ["STATE_DIRECTORY"].split(":")[0])
    if os.geteuid() == 0:
        return Path("/var/lib/boilerctl")
    return Path(environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "boilerctl"


def spool_path(site: LoadedSite, environ: Mapping[str, str], override: Path | None = None) -> Path:
    """The spool file: `override`, else the site file's `historian.spool` (relative to the site
    file), else `<state directory>/<site id>.spool`."""
    if override is not None:
        return override
    configured = site.config.historian.spool
    if configured is not None:
        return site.path.parent / configured
    return state_directory(environ) / f"{site.config.site.slug}.spool"

"""The historian of a site as its file configures it: spool location, target and writer."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from controller.config.loader import LoadedSite
from controller.historian.targets import build_target
from controller.historian.writer import HistorianWriter, WriterSettings


def state_directory(environ: Mapping[str, str]) -> Path:
    """Where the daemon keeps its state: systemd's $STATE_DIRECTORY, else /var/lib/boilerctl for
    root, else ~/.local/state/boilerctl."""
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


def writer_for(
    site: LoadedSite, environ: Mapping[str, str], spool: Path | None = None
) -> HistorianWriter:
    """The site's writer (not started). SecretError when the target's secret cannot be read."""
    historian = site.config.historian
    target = (
        build_target(historian.target, site.path.parent, dict(environ))
        if historian.target is not None
        else None
    )
    return HistorianWriter(
        spool_path(site, environ, spool),
        historian.spool_limit,
        target,
        WriterSettings(batch_points=historian.batch_points, batch_age=historian.batch_age),
    )

"""The historian of a site as its file configures it: spool location, target and writer."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from controller.config.loader import LoadedSite
from controller.historian.targets import build_target
from controller.historian.writer import HistorianWriter, WriterSettings
from controller.state import spool_path


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

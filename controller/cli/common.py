"""What every command shares: a site file loaded or one line per problem and exit 2, and spans
of time as engineers type them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

import typer

from controller.config.loader import ConfigError, LoadedSite, load_site

EXIT_CONFIG: Final = 2

_SPAN: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(sec|min|s|m|h|d|w)\s*$")
_SPAN_SECONDS: Final = {
    "s": 1.0,
    "sec": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 7 * 86400.0,
}


def load_site_or_exit(path: Path) -> LoadedSite:
    """The site, or its problems on stderr (FILE:LINE: FIELD: MESSAGE) and exit 2."""
    try:
        return load_site(path)
    except ConfigError as error:
        for issue in error.issues:
            typer.echo(str(issue), err=True)
        raise typer.Exit(EXIT_CONFIG) from None


def span_seconds(text: str) -> float | None:
    """Seconds of "90s", "10m", "10min", "2h", "1d", "2w"; None when `text` is not such a span."""
    match = _SPAN.match(text)
    return None if match is None else float(match.group(1)) * _SPAN_SECONDS[match.group(2)]

"""`boilerctl historian status|export`: what waits in a site's spool, and its data as line protocol.

Both read the spool file only (SQLite, read-only): safe while the daemon runs, and they never
remove anything — the daemon sends and forgets. `export` is how the data of a site without an
InfluxDB (the demo) or of a long outage gets out: `influx write`, curl, or any line-protocol tool
takes its output.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from contextlib import closing
from pathlib import Path
from typing import Annotated, TextIO

import typer

from controller.config.loader import ConfigError, load_site
from controller.historian.spool import SpoolReader
from controller.state import spool_path

EXIT_ERROR = 2

SiteOption = Annotated[
    Path | None, typer.Option("--site", help="Site file: its spool (historian.spool or default).")
]
SpoolOption = Annotated[Path | None, typer.Option("--spool", help="A spool file, instead.")]


def _open(site: Path | None, spool: Path | None, command: str) -> tuple[Path, SpoolReader]:
    if (site is None) == (spool is None):
        typer.echo(f"historian {command}: give --site FILE or --spool FILE", err=True)
        raise typer.Exit(EXIT_ERROR)
    if site is not None:
        try:
            path = spool_path(load_site(site), os.environ)
        except ConfigError as error:
            for issue in error.issues:
                typer.echo(str(issue), err=True)
            raise typer.Exit(EXIT_ERROR) from None
    else:
        assert spool is not None
        path = spool
    try:
        return path, SpoolReader(path)
    except FileNotFoundError as error:
        typer.echo(f"historian {command}: {error}", err=True)
        raise typer.Exit(EXIT_ERROR) from None
    except sqlite3.Error as error:
        typer.echo(f"historian {command}: {path}: not a readable spool ({error})", err=True)
        raise typer.Exit(EXIT_ERROR) from None


def status(site: SiteOption = None, spool: SpoolOption = None) -> None:
    """How much data waits in the spool for the database, and how much it refused."""
    path, reader = _open(site, spool, "status")
    with closing(reader):
        waiting, rejected, size = reader.depth()
    typer.echo(f"spool {path}")
    typer.echo(f"waiting  {waiting} points")
    typer.echo(f"rejected {rejected} points (refused by the database, kept for export)")
    typer.echo(f"size     {size / 1e6:.1f} MB compressed")


def export(
    site: SiteOption = None,
    spool: SpoolOption = None,
    rejected: Annotated[
        bool, typer.Option("--rejected", help="The points the database refused, instead.")
    ] = False,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file (default stdout).")
    ] = None,
) -> None:
    """Print the spooled points as line protocol (nanosecond timestamps), oldest first."""
    _, reader = _open(site, spool, "export")
    with closing(reader):
        if output is None:
            _write(reader, rejected, sys.stdout)
            return
        partial = output.with_name(output.name + ".partial")
        with partial.open("w", encoding="utf-8") as stream:
            _write(reader, rejected, stream)
        partial.replace(output)  # a complete file or none


def _write(reader: SpoolReader, rejected: bool, stream: TextIO) -> None:
    for text in reader.lines(rejected=rejected):
        stream.write(text + "\n")

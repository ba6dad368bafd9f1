"""`boilerctl check-config`: validate site and device-map files before a daemon uses them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from controller.config.loader import LoadedSite, check_files, load_file
from controller.config.maps import ModbusMap, OpcUaMap


def check_config(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="Site files (sites/*.yaml) and device maps (plc_maps/*.yaml).",
            metavar="FILE",
            show_default=False,
        ),
    ],
) -> None:
    """Check configuration files: every problem is printed as FILE:LINE: FIELD: MESSAGE.

    Exit code 0 when all files are valid, 2 when any is not.
    """
    issues = check_files(files)
    for issue in issues:
        typer.echo(str(issue), err=True)
    if issues:
        raise typer.Exit(code=2)
    for path in files:
        typer.echo(f"ok {path} ({summary(load_file(path))})")


def summary(loaded: LoadedSite | ModbusMap | OpcUaMap) -> str:
    if isinstance(loaded, LoadedSite):
        config = loaded.config
        return (
            f"site {config.site.kind}, {len(config.devices)} devices, "
            f"{len(config.caissons)} caissons"
        )
    return f"{loaded.protocol} map {loaded.device_type}, {len(loaded.points)} points"

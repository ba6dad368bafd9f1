"""`boilerctl sim serve`: the simulated plant on real sockets, until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from controller.config.loader import ConfigError, load_site

if TYPE_CHECKING:
    from simulators.devices.plant_server import SimulatedPlant

EXIT_CONFIG = 2
EXIT_CANNOT_LISTEN = 3


def serve(
    site: Annotated[Path, typer.Option("--site", help="Site file (sites/*.yaml).")],
    speed: Annotated[
        float, typer.Option("--speed", min=0.001, help="Plant seconds per second (1: real time).")
    ] = 1.0,
    faults: Annotated[
        Path | None, typer.Option("--faults", help="Fault plan file: what fails, where and when.")
    ] = None,
    start: Annotated[
        datetime | None,
        typer.Option("--start", help="Plant start instant, ISO 8601 (default: now, UTC)."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Weather noise seed.")] = 0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print where devices listen as one JSON line.")
    ] = False,
) -> None:
    """Run the simulated plant: every device of the site on its address, until Ctrl-C."""
    from simulators.devices.fault_plan import load_fault_plan
    from simulators.devices.plant_server import SimulatedPlant
    from simulators.scenario import ProfileWeather

    try:
        loaded = load_site(site)
        plan = load_fault_plan(faults, loaded) if faults is not None else None
    except ConfigError as error:
        for issue in error.issues:
            typer.echo(str(issue), err=True)
        raise typer.Exit(EXIT_CONFIG) from None
    begin = start or datetime.now(UTC).replace(microsecond=0)
    if begin.tzinfo is None:
        begin = begin.replace(tzinfo=UTC)
    plant = SimulatedPlant(
        loaded, start=begin, speed=speed, weather=ProfileWeather(kind="profile", seed=seed),
        faults=plan,
    )  # fmt: skip
    asyncio.run(_serve(plant, as_json))


async def _serve(plant: SimulatedPlant, as_json: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await plant.start()
    except OSError as error:  # CannotListenError names the device and the address
        await plant.stop()
        typer.echo(f"sim serve: {error}", err=True)
        raise typer.Exit(EXIT_CANNOT_LISTEN) from None
    try:
        _print_listing(plant, as_json)
        await stop.wait()
    finally:
        await plant.stop()


def _print_listing(plant: SimulatedPlant, as_json: bool) -> None:
    rows = plant.listing()
    if as_json:
        print(json.dumps({"devices": [asdict(row) for row in rows]}), flush=True)
        return
    site = plant.site.config.site.name
    speed = "lockstep" if plant.speed is None else f"×{plant.speed:g}"
    table = Table(title=f"{site}: simulated plant ({speed}), Ctrl-C to stop", title_justify="left")
    for column in ("device", "protocol", "host", "port", "unit id", "endpoint"):
        table.add_column(column)
    for row in rows:
        unit = "" if row.unit_id is None else str(row.unit_id)
        table.add_row(row.device, row.protocol, row.host, str(row.port), unit, row.endpoint)
    console = Console()
    console.print(table)
    console.file.flush()

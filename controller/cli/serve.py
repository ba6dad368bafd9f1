"""`boilerctl sim serve`: the simulated plant on real sockets, until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from controller.config.loader import ConfigError, LoadedSite, load_site
from controller.config.site import SecurityMode

if TYPE_CHECKING:
    from simulators.devices.fault_plan import FaultPlan
    from simulators.devices.pki import SimulatorPki
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
    opcua_pki: Annotated[
        Path | None,
        typer.Option(
            "--opcua-pki",
            help="Secure the compute managers (Basic256Sha256) with the certificates in this "
            "folder, made on first use; clients are trusted from its trusted/ folder.",
        ),
    ] = None,
    opcua_mode: Annotated[
        SecurityMode, typer.Option("--opcua-mode", help="With --opcua-pki: Sign or SignAndEncrypt.")
    ] = SecurityMode.SIGN_AND_ENCRYPT,
) -> None:
    """Run the simulated plant: every device of the site on its address, until Ctrl-C."""
    from simulators.devices.fault_plan import load_fault_plan

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
    options = _PlantOptions(begin, speed, seed, plan, opcua_pki, opcua_mode)
    asyncio.run(_serve(loaded, options, as_json))


@dataclass(frozen=True)
class _PlantOptions:
    start: datetime
    speed: float
    seed: int
    faults: FaultPlan | None
    pki: Path | None
    mode: SecurityMode


async def _serve(site: LoadedSite, options: _PlantOptions, as_json: bool) -> None:
    from simulators.devices.pki import simulator_pki
    from simulators.devices.plant_server import SimulatedPlant
    from simulators.scenario import ProfileWeather

    pki = await simulator_pki(options.pki, options.mode) if options.pki is not None else None
    plant = SimulatedPlant(
        site,
        start=options.start,
        speed=options.speed,
        weather=ProfileWeather(kind="profile", seed=options.seed),
        faults=options.faults,
        opcua_security=pki.security if pki is not None else None,
    )
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
        _print_listing(plant, pki, as_json)
        await stop.wait()
    finally:
        await plant.stop()


def _print_listing(plant: SimulatedPlant, pki: SimulatorPki | None, as_json: bool) -> None:
    rows = plant.listing()
    security = None
    if pki is not None:
        security = {
            "policy": "Basic256Sha256",
            "mode": str(pki.security.modes[0]),
            "server_certificate": str(pki.security.certificate),
            "client_certificate": str(pki.client_certificate),
            "client_private_key": str(pki.client_private_key),
            "trusted_clients": str(pki.trusted),
        }
    if as_json:
        print(json.dumps({"devices": [asdict(row) for row in rows], "opcua_security": security}))
        sys.stdout.flush()
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
    if security is not None:
        console.print(
            f"OPC-UA: Basic256Sha256 {security['mode']} only. Server certificate "
            f"{security['server_certificate']}; a trusted client pair: "
            f"{security['client_certificate']} and {security['client_private_key']}; "
            f"trust more clients by copying their certificates into {security['trusted_clients']}.",
            soft_wrap=True,
        )
    console.file.flush()

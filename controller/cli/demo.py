"""`boilerctl demo`: the demo plant on the simulator and the controller daemon, live.

One process runs the simulated demo plant (sites/demo.yaml, accelerated time, devices on free
loopback ports) and the daemon against it over real sockets, and shows every caisson's status:
a live table on a terminal, one plain line every N cycles otherwise (logs, CI).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from zoneinfo import ZoneInfo

import typer
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.text import Text

from controller.api.endpoint import ApiAddressError, TokenFileError
from controller.cli.views import status_view
from controller.config.loader import ConfigError, LoadedSite, load_site
from controller.config.site import InfluxV1Target
from controller.config.units import Dimension, parse_quantity
from controller.control.supervisor import CaissonStatus, PlantStatus
from controller.durable_file import FileBusyError
from controller.logs import configure_logging

if TYPE_CHECKING:  # the simulator (numba) loads only when the demo runs: --help stays quick
    from controller.daemon import Daemon
    from simulators.devices.plant_server import SimulatedPlant

DEMO_SITE = Path(__file__).resolve().parents[2] / "sites" / "demo.yaml"
DEMO_START = "2026-01-15T06:00:00+01:00"  # a cold January morning
EXIT_CONFIG = 2
REFRESH_S = 1.0  # wall seconds between two table refreshes
PLC_MODES = {0: "local", 1: "remote", 2: "local safe"}


def demo(
    ctx: typer.Context,
    speed: Annotated[
        float, typer.Option("--speed", min=0.1, max=100.0, help="Plant seconds per second.")
    ] = 10.0,
    duration: Annotated[
        str | None,
        typer.Option(
            "--duration",
            help="Stop after this much plant time: seconds, or a quantity like '2 h' "
            "(default: run until Ctrl-C).",
        ),
    ] = None,
    every: Annotated[
        int,
        typer.Option("--every", min=1, help="Cycles between two status lines off a terminal."),
    ] = 60,
    start: Annotated[
        datetime | None,
        typer.Option("--start", help=f"Plant start instant, ISO 8601 (default {DEMO_START})."),
    ] = None,
    influx: Annotated[
        str | None,
        typer.Option(
            "--influx",
            metavar="URL",
            help="Also write to this InfluxDB (v1 API, e.g. http://127.0.0.1:8086); "
            "default: the spool only.",
        ),
    ] = None,
    database: Annotated[
        str, typer.Option("--database", help="The InfluxDB database, with --influx.")
    ] = "boiler",
) -> None:
    """The demo plant: the simulated residential site run by the supervisory controller, live."""
    seconds = _duration(duration) if duration is not None else None
    try:
        site = load_site(DEMO_SITE)
    except ConfigError as error:
        for issue in error.issues:
            typer.echo(str(issue), err=True)
        raise typer.Exit(EXIT_CONFIG) from None
    if influx is not None:
        try:
            target = InfluxV1Target(api="v1", url=influx, database=database)
        except ValueError:
            typer.echo(f"demo: --influx {influx}: expected a URL like http://HOST:8086", err=True)
            raise typer.Exit(EXIT_CONFIG) from None
        historian = site.config.historian.model_copy(update={"target": target})
        site = replace(site, config=site.config.model_copy(update={"historian": historian}))
    begin = start or datetime.fromisoformat(DEMO_START)
    if begin.tzinfo is None:
        begin = begin.replace(tzinfo=ZoneInfo(site.config.site.timezone))
    level = ctx.find_root().params.get("log_level") or "info"
    try:
        asyncio.run(_demo(site, begin, speed, seconds, every, level))
    except (FileBusyError, TokenFileError, ApiAddressError) as error:
        typer.echo(f"demo: {error}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None


def _duration(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        try:
            seconds = parse_quantity(text, Dimension.DURATION)
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="--duration") from None
    if seconds <= 0:
        raise typer.BadParameter("must be positive", param_hint="--duration")
    return seconds


async def _demo(
    site: LoadedSite,
    start: datetime,
    speed: float,
    duration: float | None,
    every: int,
    log_level: str,
) -> None:
    from controller.daemon import Daemon
    from controller.systemd import Notifier
    from simulators.devices.plant_server import SimulatedPlant
    from simulators.lockstep import field_overrides

    plant = SimulatedPlant(site, start=start, speed=speed, ephemeral_ports=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await plant.start()
        addresses, endpoints = field_overrides(plant)
        daemon = Daemon(
            site,
            addresses=addresses,
            endpoints=endpoints,
            time_scale=speed,
            notifier=Notifier(None),
        )
        view = _View(plant, daemon, duration)
        try:
            await daemon.start()
            if sys.stdout.isatty():
                await view.live(stop, log_level)
            else:
                await view.lines(stop, every)
        finally:
            await daemon.stop()
    finally:
        await plant.stop()
    typer.echo(view.summary())


class _View:
    def __init__(self, plant: SimulatedPlant, daemon: Daemon, duration: float | None) -> None:
        self.plant = plant
        self.daemon = daemon
        self.duration = duration
        self.zone = ZoneInfo(plant.site.config.site.timezone)

    def done(self, stop: asyncio.Event) -> bool:
        task = self.daemon.task
        if task is not None and task.done():
            task.result()  # the cycle failed: raise it
            return True
        if self.duration is not None and self.plant.model.time >= self.duration:
            return True
        return stop.is_set()

    async def _wait(self, stop: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await stop.wait()

    async def live(self, stop: asyncio.Event, log_level: str) -> None:
        """A table refreshed every second until Ctrl-C or the end; logs print above it."""
        stderr = sys.stderr
        with Live(self.table(), console=Console(), auto_refresh=False) as live:
            configure_logging(log_level, json_lines=False, stream=sys.stderr)  # rich's proxy
            try:
                while not self.done(stop):
                    await self._wait(stop, REFRESH_S)
                    live.update(self.table(), refresh=True)
            finally:
                configure_logging(log_level, stream=stderr)

    async def lines(self, stop: asyncio.Event, every: int) -> None:
        """One status line every `every` cycles (checked ten times a second)."""
        printed = 0
        while not self.done(stop):
            await self._wait(stop, REFRESH_S / 10)
            block = self.daemon.cycle.cycles // every
            if block > printed and self.daemon.cycle.status is not None:
                printed = block
                print(self.line(), flush=True)

    def clock(self) -> str:
        at = self.plant.scenario.start + timedelta(seconds=self.plant.model.time)
        return at.astimezone(self.zone).strftime("%a %d %b %H:%M:%S")

    def line(self) -> str:
        status = self.daemon.cycle.status
        assert status is not None
        head = f"{self.clock()} {_plant_summary(status)}"
        return " | ".join([head, *(_caisson_summary(c) for c in status.caissons)])

    def table(self) -> RenderableType:
        """The same view as `boilerctl watch` (the API's status), titled with the plant's time."""
        speed = self.plant.speed or 0.0
        title = f"{self.plant.site.config.site.name}: simulated plant ×{speed:g}, {self.clock()}"
        view = status_view(self.daemon.operations.status(), self.zone, title)
        site = self.plant.site.path
        hint = f"Ctrl-C to stop. In another terminal: boilerctl status --site {site}"
        return Group(view, Text(hint))

    def summary(self) -> str:
        cycle, writer = self.daemon.cycle, self.daemon.writer
        failures = sum(cycle.write_failures.values())
        if writer.target is not None:
            kept = f"{writer.stats.sent_points} sent to {writer.target.describe}"
        else:
            kept = (
                f"{writer.depth.points} waiting in {writer.spool_path} "
                f"(boilerctl historian export --spool {writer.spool_path})"
            )
        return (
            f"demo: {self.plant.model.time:g} s of plant time, {cycle.cycles} cycles, "
            f"{cycle.overruns} overruns, {cycle.writes_sent} writes, {failures} write failures\n"
            f"historian: {kept}"
        )


def _number(value: float | None, factor: float, fmt: str) -> str:
    return "-" if value is None else format(value * factor, fmt)


def _plant_summary(status: PlantStatus) -> str:
    return (
        f"mode {status.mode.value}, tank SoC {_number(status.soc, 100, '.0f')} %, "
        f"load {_number(status.load, 1e-3, '.1f')} kW, "
        f"IT target {status.it_target / 1000:.1f} kW, dry cooler {status.dry_cooler:.0%}"
    )


def _caisson_summary(c: CaissonStatus) -> str:
    mode = PLC_MODES.get(c.plc_mode, "?") if c.plc_mode is not None else "?"
    interlocks = ",".join(sorted(c.interlocks))
    return (
        f"{c.id} {mode}{' [' + interlocks + ']' if interlocks else ''} "
        f"out {_number(c.outlet, 1, '.1f')} °C in {_number(c.inlet, 1, '.1f')} °C "
        f"flow {_number(c.flow, 60_000, '.1f')} L/min pump {_number(c.pump_speed, 100, '.0f')} % "
        f"cap {_number(c.cap, 1e-3, '.1f')} kW IT {_number(c.it_power, 1e-3, '.1f')} kW "
        f"{'running' if c.running else 'standby' if c.standby else 'idle'}"
    )

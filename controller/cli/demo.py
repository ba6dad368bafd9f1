"""`boilerctl demo`: the demo plant on the simulator and the controller daemon, live.

One process runs the simulated demo plant (sites/demo.yaml, accelerated time, devices on free
loopback ports, optionally a fault plan) and the daemon against it over real sockets, and shows
every caisson's status: a live view on a terminal (the logs in a file it names, the last warnings
above the table, never through it), one plain line every N cycles otherwise (logs, CI).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from zoneinfo import ZoneInfo

import typer
from rich.console import Group, RenderableType
from rich.text import Text

from controller.api.endpoint import ApiAddressError, TokenFileError
from controller.cli.live import current_level, live_view
from controller.cli.views import status_view
from controller.config.loader import ConfigError, LoadedSite, load_site
from controller.config.site import InfluxV1Target
from controller.config.units import Dimension, parse_quantity
from controller.control.supervisor import CaissonStatus, PlantStatus
from controller.durable_file import FileBusyError
from controller.state import state_directory

if TYPE_CHECKING:  # the simulator (numba) loads only when the demo runs: --help stays quick
    from controller.daemon import Daemon
    from simulators.devices.fault_plan import FaultPlan
    from simulators.devices.plant_server import SimulatedPlant

DEMO_SITE = Path(__file__).resolve().parents[2] / "sites" / "demo.yaml"
DEMO_START = "2026-01-15T06:00:00+01:00"  # a cold January morning
EXIT_CONFIG = 2
REFRESH_S = 1.0  # wall seconds between two table refreshes
PLC_MODES = {0: "local", 1: "remote", 2: "local safe"}


def demo(
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
    faults: Annotated[
        Path | None,
        typer.Option(
            "--faults",
            help="A fault plan to play (sim serve's format): devices and plant failing on cue.",
        ),
    ] = None,
    log_file: Annotated[
        Path | None,
        typer.Option(
            "--log-file",
            help="On a terminal, where the logs go while the table is shown (JSON lines; "
            "default: <state directory>/<site id>.demo.log); the last warnings show above it.",
        ),
    ] = None,
) -> None:
    """The demo plant: the simulated residential site run by the supervisory controller, live."""
    from simulators.devices.fault_plan import load_fault_plan

    seconds = _duration(duration) if duration is not None else None
    try:
        site = load_site(DEMO_SITE)
        plan = load_fault_plan(faults, site) if faults is not None else None
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
    level = current_level()
    log_path = log_file or state_directory(os.environ) / f"{site.config.site.slug}.demo.log"
    try:
        asyncio.run(_demo(site, begin, speed, seconds, every, level, plan, log_path))
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
    faults: FaultPlan | None,
    log_file: Path,
) -> None:
    from simulators.devices.plant_server import SimulatedPlant

    plant = SimulatedPlant(site, start=start, speed=speed, ephemeral_ports=True, faults=faults)
    view = _View(plant, duration)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if sys.stdout.isatty():
        with live_view(view.table, log_level, log_file) as refresh:
            await view.run(stop, lambda: view.live(stop, refresh))
    else:
        await view.run(stop, lambda: view.lines(stop, every))
    typer.echo(view.summary())


class _View:
    def __init__(self, plant: SimulatedPlant, duration: float | None) -> None:
        self.plant = plant
        self.daemon: Daemon | None = None  # once the plant is up
        self.duration = duration
        self.zone = ZoneInfo(plant.site.config.site.timezone)

    async def run(self, stop: asyncio.Event, show: Callable[[], Awaitable[None]]) -> None:
        """Start the plant and the daemon against it, `show()` until the end, stop both."""
        from controller.daemon import Daemon
        from controller.systemd import Notifier
        from simulators.lockstep import field_overrides

        plant = self.plant
        try:
            await plant.start()
            addresses, endpoints = field_overrides(plant)
            self.daemon = Daemon(
                plant.site,
                addresses=addresses,
                endpoints=endpoints,
                time_scale=plant.speed or 1.0,
                notifier=Notifier(None),
            )
            try:
                await self.daemon.start()
                await show()
            finally:
                await self.daemon.stop()
        finally:
            await plant.stop()

    def done(self, stop: asyncio.Event) -> bool:
        assert self.daemon is not None
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

    async def live(self, stop: asyncio.Event, refresh: Callable[[], None]) -> None:
        """The view redrawn every second until Ctrl-C or the end."""
        refresh()
        while not self.done(stop):
            await self._wait(stop, REFRESH_S)
            refresh()

    async def lines(self, stop: asyncio.Event, every: int) -> None:
        """One status line every `every` cycles (checked ten times a second)."""
        assert self.daemon is not None
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
        assert self.daemon is not None
        status = self.daemon.cycle.status
        assert status is not None
        head = f"{self.clock()} {_plant_summary(status)}"
        return " | ".join([head, *(_caisson_summary(c) for c in status.caissons)])

    def table(self) -> RenderableType:
        """The same view as `boilerctl watch` (the API's status), titled with the plant's time."""
        speed = self.plant.speed or 0.0
        title = f"{self.plant.site.config.site.name}: simulated plant ×{speed:g}, {self.clock()}"
        site = self.plant.site.path
        if self.daemon is None:
            return Text(f"{title}\nstarting the simulated plant and the controller…")
        view = status_view(self.daemon.operations.status(), self.zone, title)
        hint = f"Ctrl-C to stop. In another terminal: boilerctl status --site {site}"
        return Group(view, Text(hint))

    def summary(self) -> str:
        if self.daemon is None:
            return "demo: the plant did not start"
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

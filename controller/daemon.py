"""The controller daemon of one site: process image, field I/O, supervisor and scan cycle.

Start: the historian's writer opens its spool (what an earlier run left is sent first), the field
I/O starts (Modbus polling, OPC-UA sessions), then the cycle. There is no wait for first data: the
supervisor writes nothing to a caisson until it has read it. Stop (SIGTERM): the cycle stops, then
the field I/O; no final "safe" writes are sent, the PLCs' lease fallback takes over (DESIGN.md);
last, the historian spools what it holds and sends what it can in a moment.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from controller.alarms.journal import Journal, journal_path, transition_event
from controller.alarms.model import Transition
from controller.alarms.service import AlarmService
from controller.alarms.system import ControllerFigures
from controller.api.endpoint import (
    address_path,
    ensure_token,
    remove_address,
    socket_path,
    token_path,
    write_address,
)
from controller.api.operations import Operations
from controller.api.server import ApiServer, build_app
from controller.config.loader import LoadedSite
from controller.control.carryover import decode, encode
from controller.control.supervisor import ScanResult, Supervisor
from controller.cycle import Cycle, field_writers
from controller.fieldbus.field_io import FieldIO
from controller.fieldbus.image import PointRef, ProcessImage, Sample
from controller.historian.assemble import writer_for
from controller.historian.feed import HistorianFeed
from controller.historian.writer import HistorianWriter
from controller.systemd import Notifier

log = structlog.get_logger(__name__)

CONFIG_KEY = "config/digest"
# Wall seconds after start whose late cycles are start-up (sessions opening, first reads), not
# overruns: an operator should not read "missed ticks" into every start.
STARTUP_S = 10.0
CARRYOVER = "carryover"  # the spool's saved state: run hours and the day's peak
# Clock seconds between two saves of it (at most this much of the run hours is lost to a kill)
KEEP_EVERY = 300.0


def configuration_digest(files: Sequence[Path]) -> str:
    """sha256 of the site file and its maps, each with its name: a change of any shows."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.name).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class ScaledTime:
    """Monotonic time running `scale` times faster than the wall clock: a daemon driving a plant
    simulated in accelerated time sees plant seconds (the PLCs' lease timeouts are plant time)."""

    scale: float = 1.0

    def clock(self) -> float:
        return time.monotonic() * self.scale

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds / self.scale)


class Daemon:
    def __init__(
        self,
        site: LoadedSite,
        *,
        read_only: bool = False,
        addresses: Mapping[str, tuple[str, int]] | None = None,
        endpoints: Mapping[str, str] | None = None,
        time_scale: float = 1.0,
        notifier: Notifier | None = None,
        spool: Path | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        """addresses / endpoints: Modbus host:port and OPC-UA URLs by device id, overriding the
        site file's. time_scale: > 1 only against a simulated plant in accelerated time (the
        cycle's period and the supervisor's time are then plant seconds). spool: the historian's
        spool file instead of the site's. environ: where secrets and the state directory are
        looked up (os.environ). SecretError: the historian's secret cannot be read."""
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.site = site
        period = site.config.control.period
        self.time = ScaledTime(time_scale)
        self.image = ProcessImage()
        self.field_io = FieldIO(
            site,
            self.image,
            period=period / time_scale,
            addresses=dict(addresses) if addresses else None,
            endpoints=dict(endpoints) if endpoints else None,
        )
        self.supervisor = Supervisor(site, period=period)
        self.writer: HistorianWriter = writer_for(
            site, os.environ if environ is None else environ, spool
        )
        self.cycle = Cycle(
            self.supervisor,
            self.image,
            field_writers(self.field_io),
            period=period,
            read_only=read_only,
            clock=self.time.clock,
            sleep=self.time.sleep,
            notifier=notifier if notifier is not None else Notifier.from_environment(),
            startup_cycles=math.ceil(STARTUP_S * time_scale / period),
        )
        self.feed = HistorianFeed(
            site,
            self.writer,
            supervisor=self.supervisor,
            cycle=self.cycle,
            field_io=self.field_io,
            monotonic=self.time.clock,
        )
        self.cycle.observers.append(self.feed.on_scan)
        self._journal_path = journal_path(
            site,
            os.environ if environ is None else environ,
            spool.with_suffix(".journal") if spool is not None else None,  # beside a given spool
        )
        self.journal: Journal | None = None
        self.alarms: AlarmService | None = None  # from start(): the journal is opened there
        self._environ = os.environ if environ is None else environ
        self.operations = Operations(self)
        self.api: ApiServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._kept_at: float | None = None  # clock s the carryover was last kept

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The cycle's task while running (done early only if the cycle failed)."""
        return self._task

    async def start(self) -> None:
        """Start the field I/O, the cycle and the local API. The daemon must not start on:
        OpcUaSecurityError (a device's certificate files cannot work), FileBusyError (a daemon of
        this site already runs), TokenFileError (the API's token file cannot be used),
        ApiAddressError (the API's address cannot be bound)."""
        await self.writer.start()
        self.feed.restore()
        self._take_over()
        try:
            self.journal = Journal(self._journal_path)  # JournalBusyError: a daemon already runs
        except BaseException:
            await self.writer.stop()
            raise
        self.alarms = AlarmService(
            site=self.site, journal=self.journal, on_transitions=self._events
        )
        self.feed.journal = self.journal
        self.feed.alarms = self.alarms
        self._journal_configuration()
        self.operations.restore_settings()
        self.cycle.observers.append(self._alarm_scan)
        self.cycle.observers.append(self._overrides_ended)
        self.cycle.observers.append(self._keep_carryover)
        try:
            await self._start_api()
            await self.field_io.start()
        except BaseException:
            await self._stop_api()
            await self.writer.stop()
            self.journal.close()
            raise
        self._started_at = self.time.clock()
        self._task = asyncio.create_task(self.cycle.run(), name="scan-cycle")
        log.info(
            "daemon_started",
            site=self.site.config.site.name,
            period=self.cycle.period,
            read_only=self.cycle.read_only,
            devices=len(self.cycle.writers),
        )

    async def stop(self) -> None:
        """Stop the API, the cycle, then the field I/O. Safe to call twice, or after a failed
        start."""
        await self._stop_api()
        task, self._task = self._task, None
        if task is not None:
            self.cycle.stop()  # as well as the cancel, which an inner wait_for may swallow
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)  # its failure: run() raises it
        await self.field_io.stop()
        self.cycle.notifier.close()
        if self.writer.running:
            self.feed.final()
            self._keep()
            await self.writer.stop()
        if self.journal is not None:
            self.journal.close()
            self.journal = None
        log.info(
            "daemon_stopped",
            cycles=self.cycle.cycles,
            overruns=self.cycle.overruns,
            writes_sent=self.cycle.writes_sent,
            write_failures=dict(self.cycle.write_failures),
            # Writes per register since start (flash wear: DOMAIN.md); the heartbeat excluded.
            writes_per_register={
                str(ref): count for ref, count in self.supervisor.write_counts().items()
            },
        )

    def _journal_configuration(self) -> None:
        """A "config" entry at each start: the files' fingerprint, and whether they changed since
        the last start (a restart is how this daemon reloads its configuration)."""
        assert self.journal is not None
        maps = sorted({self.site.map_file(d.id) for d in self.site.config.devices})
        files = [self.site.path, *maps]
        digest = configuration_digest(files)
        before = self.journal.settings().get(CONFIG_KEY, "")
        change = "first start" if not before else "unchanged" if before == digest else "changed"
        self.journal.record(
            "config",
            self.feed.wall_clock(),
            "controller",
            "configuration",
            f"configuration loaded from {self.site.path} ({change} since the last start)",
            before=before,
            after=digest,
            setting=(CONFIG_KEY, digest),
        )

    async def _start_api(self) -> None:
        config = self.site.config.api
        token = ensure_token(token_path(self.site, self._environ))
        server = ApiServer(
            build_app(self.operations, token), config.host, config.port, socket_path(self.site)
        )
        address = await server.start()
        self.api = server
        write_address(address_path(self.site, self._environ), address)
        log.info("api_listening", address=str(address))

    async def _stop_api(self) -> None:
        server, self.api = self.api, None
        if server is not None:
            remove_address(address_path(self.site, self._environ))
            await server.stop()

    def _take_over(self) -> None:
        """The run hours and the day's peak an earlier run kept in the spool (carryover.py)."""
        saved = self.writer.recalled.get(CARRYOVER)
        if saved is None:
            return
        try:
            carried = decode(saved)
        except ValueError as error:
            log.warning("carryover_not_restored", error=str(error))
            return
        now = self.feed.wall_clock()
        self.supervisor.take_over(carried, now)
        log.info(
            "carryover_restored",
            kept_at=carried.at.isoformat(),
            run_hours={k: round(v / 3600.0, 1) for k, v in carried.run_seconds.items()},
            day_peak_kw=round(self.supervisor.dispatch.peaks.peak / 1e3, 1),
        )

    def _keep_carryover(self, snapshot: Mapping[PointRef, Sample], result: ScanResult) -> None:
        tick = self.time.clock()
        if self._kept_at is None or tick - self._kept_at >= KEEP_EVERY:
            self._kept_at = tick
            self._keep()

    def _keep(self) -> None:
        self.writer.remember(CARRYOVER, encode(self.supervisor.carryover(self.feed.wall_clock())))

    def _overrides_ended(self, snapshot: Mapping[PointRef, Sample], result: ScanResult) -> None:
        """Journal the operators' leases this scan ended (the point went back to automatic)."""
        if self.journal is None:
            return
        at = self.feed.wall_clock()
        for ref, override in self.supervisor.expired:
            self.journal.record(
                "operator",
                at,
                ref.device,
                f"override {ref.point}",
                f"{ref} override by {override.who} expired: back to automatic",
                before=f"override by {override.who}",
                after="automatic",
            )

    def _alarm_scan(self, snapshot: Mapping[PointRef, Sample], result: ScanResult) -> None:
        assert self.alarms is not None
        cycle = self.cycle
        figures = ControllerFigures(
            overrun_streak=cycle.overrun_streak,
            write_failure_streaks=cycle.write_failure_streaks,
            historian_conditions=frozenset(str(c) for c in self.writer.active),
            register_writes_per_hour=self._write_rates(),
        )
        self.alarms.scan(snapshot, result, self.feed.wall_clock(), self.time.clock(), figures)

    def _write_rates(self) -> dict[PointRef, float]:
        hours = max((self.time.clock() - self._started_at) / 3600.0, 1.0)  # a fair first hour
        return {ref: count / hours for ref, count in self.supervisor.write_counts().items()}

    def _events(self, transitions: Sequence[Transition]) -> None:
        """Alarm transitions to the historian, as events, with the site's alarm counts."""
        recorder = self.feed.recorder
        lines = [recorder.event(transition_event(t)) for t in transitions]
        self.writer.submit(lines + self.feed.alarm_lines())

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set (a signal handler sets it); a failed cycle task raises."""
        await self.start()
        assert self._task is not None
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({self._task, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if self._task.done() and not self._task.cancelled():
                self._task.result()  # the cycle ended on its own: a bug, raised here
        finally:
            stopping.cancel()
            await self.stop()

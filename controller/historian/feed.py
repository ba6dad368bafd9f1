"""What the daemon gives the historian each cycle: samples, control, KPIs, health and events.

`on_scan()` runs inside the scan cycle, after the supervisor's decision and before the writes: it
formats lines (a few hundred microseconds) and hands them to the writer, which never blocks.
Device data goes out every cycle as acquired; controller health every `health_every` seconds;
KPIs (the open hour and day, rewritten as they grow), writes per register, the site's band and
setpoints, its alarm counts (also at every alarm change) and where compute can go
(controller/capacity.py) every `kpi_every`.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import structlog

from controller.alarms.engine import alarm_counts
from controller.alarms.journal import Journal
from controller.alarms.service import AlarmService
from controller.capacity_feed import CapacityFeed, fields
from controller.config.loader import LoadedSite
from controller.config.roles import PlantSkidPoint
from controller.config.units import point_unit_factor
from controller.control.dispatch import Mode
from controller.control.inputs import InputReader
from controller.control.supervisor import ScanResult, Supervisor
from controller.cycle import Cycle
from controller.fieldbus.field_io import FieldIO
from controller.fieldbus.health import Health
from controller.fieldbus.image import PointRef, Sample
from controller.historian.schema import ControllerFigures, DeviceHealthFigures, Event, Recorder
from controller.historian.writer import HistorianWriter
from controller.kpi import KpiAccumulator, Kpis, Period, PlantConstants, building_heat
from controller.trend import MinuteTrend

log = structlog.get_logger(__name__)

KPI_STATE = "kpi"
CLOSED_KPIS_KEPT = {Period.HOUR: 48, Period.DAY: 14}  # for `boilerctl kpi`
PLC_MODES = {0: "local", 1: "remote", 2: "local_safe"}


def utc_now() -> datetime:
    return datetime.now(UTC)


class HistorianFeed:
    def __init__(
        self,
        site: LoadedSite,
        writer: HistorianWriter,
        *,
        supervisor: Supervisor,
        cycle: Cycle,
        field_io: FieldIO,
        health_every: float = 10.0,
        kpi_every: float = 60.0,
        wall_clock: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """monotonic: the cycle's clock (plant seconds in accelerated demos), for KPI energies
        and the health and KPI intervals."""
        self.site = site
        self.writer = writer
        self.supervisor, self.cycle, self.field_io = supervisor, cycle, field_io
        self.recorder = Recorder(site)
        self.reader = InputReader(site)
        self.kpis = KpiAccumulator(
            PlantConstants.of(site), ZoneInfo(site.config.site.timezone or "UTC")
        )
        self.health_every, self.kpi_every = health_every, kpi_every
        self._now, self._monotonic = wall_clock, monotonic
        skid = site.config.plant.skid
        fan = site.device_map(skid).point(PlantSkidPoint.DRY_COOLER_FAN)
        self._fan_ref = PointRef(skid, PlantSkidPoint.DRY_COOLER_FAN)
        self._fan_factor = point_unit_factor(fan.unit)
        self._last_scan: float | None = None
        self._last_health = float("-inf")
        self._last_kpi = float("-inf")
        self._mode: Mode | None = None
        self._plc_modes: dict[str, int | None] = {}
        self.journal: Journal | None = None  # mode changes are journaled too, once it is open
        self.alarms: AlarmService | None = None  # its counts go out too, once it runs
        self.closed_kpis = {p: deque[Kpis](maxlen=n) for p, n in CLOSED_KPIS_KEPT.items()}
        self.trend = MinuteTrend()
        self.capacity = CapacityFeed(site)  # its latest figures for the local API too
        self._last_capacity = float("-inf")

    def wall_clock(self) -> datetime:
        """UTC now, as the feed stamps the controller's lines."""
        return self._now()

    def restore(self) -> None:
        """Take back the open KPI periods an earlier run left in the spool (after writer start)."""
        saved = self.writer.recalled.get(KPI_STATE)
        if saved is not None:
            try:
                self.kpis.restore(json.loads(saved), self._now())
            except ValueError:
                log.warning("kpi_state_unreadable")

    # ------------------------------------------------------------------ each cycle

    def on_scan(self, snapshot: Mapping[PointRef, Sample], result: ScanResult) -> None:
        now, tick = self._now(), self._monotonic()
        dt = 0.0 if self._last_scan is None else max(tick - self._last_scan, 0.0)
        self._last_scan = tick
        recorder = self.recorder
        inputs = self.reader.read(snapshot)
        lines = recorder.samples(snapshot, now)
        lines += recorder.control(result.status, now, inputs)
        events = self._mode_events(result, now)
        lines += [recorder.event(event) for event in events]
        if self.journal is not None:
            for event in events:
                self.journal.record(
                    event.kind,
                    event.at,
                    event.source,
                    event.name,
                    event.message,
                    before=event.before,
                    after=event.after,
                )
        if dt > 0:
            self.capacity.observe(inputs, dt)
            closed = self.kpis.add(now, inputs, self._fan(snapshot), dt)
            for kpis in closed:
                self.closed_kpis[kpis.period].append(kpis)
            lines += recorder.kpis(closed)
        it_powers = [c.it_power for c in inputs.caissons]
        self.trend.add(
            now,
            inputs.plant.supply,
            building_heat(inputs.plant),
            None if None in it_powers else sum(p for p in it_powers if p is not None),
        )
        if tick - self._last_health >= self.health_every:
            self._last_health = tick
            lines += recorder.controller(self._controller_figures(), now)
            lines += recorder.devices(self._device_figures(), now)
        if tick - self._last_kpi >= self.kpi_every:
            self._last_kpi = tick
            lines += recorder.kpis(self.kpis.snapshot())
            lines += recorder.register_writes(self.supervisor.write_counts(), now)
            lines += recorder.site_config(self.supervisor.setpoints(), now)
            lines += self.alarm_lines(now)
            self.writer.remember(KPI_STATE, json.dumps(self.kpis.state()))
        self.writer.submit(lines)
        if dt > 0 and tick - self._last_capacity >= self.kpi_every:  # its own line, after
            self._last_capacity = tick
            outlet = self.supervisor.setpoints()["outlet"]
            report = self.capacity.update(inputs, result.status.caissons, outlet, now)
            self.writer.submit(recorder.capacity(fields(report), now))

    def alarm_lines(self, now: datetime | None = None) -> list[str]:
        """The alarm counts now (none before the alarm engine runs)."""
        if self.alarms is None:
            return []
        counts = alarm_counts(self.alarms.engine.status())
        return self.recorder.alarm_counts(counts, now or self._now())

    def final(self) -> None:
        """At stop: the open KPI periods and counters as they stand."""
        now = self._now()
        lines = self.recorder.kpis(self.kpis.snapshot())
        lines += self.recorder.register_writes(self.supervisor.write_counts(), now)
        lines += self.recorder.controller(self._controller_figures(), now)
        lines += self.recorder.site_config(self.supervisor.setpoints(), now)
        lines += self.alarm_lines(now)
        self.writer.submit(lines)
        self.writer.remember(KPI_STATE, json.dumps(self.kpis.state()))

    def _fan(self, snapshot: Mapping[PointRef, Sample]) -> float | None:
        sample = snapshot.get(self._fan_ref)
        if sample is None or not sample.usable or not isinstance(sample.value, int | float):
            return None
        return float(sample.value) * self._fan_factor

    def _mode_events(self, result: ScanResult, now: datetime) -> list[Event]:
        events = []
        status = result.status
        if status.mode is not self._mode:
            before = self._mode.value if self._mode else ""
            self._mode = status.mode
            events.append(
                Event(
                    now,
                    "mode",
                    "plant_mode",
                    f"plant mode {before or 'start'} → {status.mode.value}",
                    state=status.mode.value,
                    before=before,
                    after=status.mode.value,
                )
            )
        for caisson in status.caissons:
            previous = self._plc_modes.get(caisson.id)
            if caisson.plc_mode is None or caisson.plc_mode == previous:
                continue
            self._plc_modes[caisson.id] = caisson.plc_mode
            after = PLC_MODES.get(caisson.plc_mode, str(caisson.plc_mode))
            before = "" if previous is None else PLC_MODES.get(previous, str(previous))
            events.append(
                Event(
                    now,
                    "mode",
                    "plc_mode",
                    f"{caisson.id} PLC {before or 'seen'} → {after}",
                    source=caisson.id,
                    state=after,
                    before=before,
                    after=after,
                )
            )
        return events

    # ------------------------------------------------------------------ health

    def _controller_figures(self) -> ControllerFigures:
        cycle, writer, depth = self.cycle, self.writer, self.writer.depth
        health = self.field_io.health()
        return ControllerFigures(
            cycle_ms=cycle.last_duration * 1000.0,
            cycles=cycle.cycles,
            overruns=cycle.overruns,
            missed_ticks=cycle.missed_ticks,
            scan_failures=cycle.scan_failures,
            writes_sent=cycle.writes_sent,
            spool_points=depth.points,
            spool_bytes=depth.bytes,
            spool_age_s=writer.waiting_age() or 0.0,
            spool_evicted_points=depth.evicted_points,
            spool_rejected_points=depth.rejected_points,
            historian_sent_points=writer.stats.sent_points,
            historian_failures=sum(writer.stats.failures.values()),
            historian_dropped_points=writer.stats.dropped_points,
            devices=len(health),
            devices_answering=sum(h.state is not Health.FAILED for h in health.values()),
        )

    def _device_figures(self) -> list[DeviceHealthFigures]:
        return [
            DeviceHealthFigures(
                device=device,
                state=health.state.value,
                consecutive_failures=health.consecutive_failures,
                comm_errors=sum(health.errors.values()),
                write_failures=self.cycle.write_failures.get(device, 0),
                writes_skipped=self.cycle.writes_skipped.get(device, 0),
            )
            for device, health in sorted(self.field_io.health().items())
        ]

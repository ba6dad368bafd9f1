"""What the local API does on the running daemon: views of its state, and the engineer's actions.

Every action is checked in full before anything changes; a refused action changes nothing and
says why in one line (ApiError). Every change is journaled (user, reason, before, after) and sent
to the historian as an operator event; modes and setpoints are also kept as settings, restored at
the next start, so a caisson locked out for maintenance stays locked out across a restart.
"""

from __future__ import annotations

import asyncio
import fnmatch
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import timedelta
from typing import Final, Protocol

import structlog

from controller.alarms.journal import Journal
from controller.alarms.model import AlarmId, State, Transition
from controller.alarms.service import AlarmService
from controller.api import models as m
from controller.api.wrong import what_is_wrong
from controller.capacity import Capacity, Window
from controller.config.loader import LoadedSite
from controller.config.roles import CaissonSkidPoint as Skid
from controller.config.roles import PlantSkidPoint
from controller.config.site import ModbusDevice
from controller.config.units import point_unit_factor
from controller.control.operator import (
    PLANT,
    SETPOINTS,
    ControlMode,
    check_lease,
    check_override,
    override_limits,
)
from controller.control.supervisor import CaissonStatus, PlantStatus, Supervisor
from controller.fieldbus.health import DeviceHealth
from controller.fieldbus.image import PointRef, Sample, Snapshot
from controller.historian.feed import HistorianFeed
from controller.historian.schema import Event
from controller.kpi import Kpis, Period
from controller.trips import SkidReadings, cleared, reset_refusal, tripped

log = structlog.get_logger(__name__)

PLC_MODES = {0: "local", 1: "remote", 2: "local safe"}
ACKNOWLEDGEABLE = {State.UNACKNOWLEDGED, State.RETURNED_UNACKNOWLEDGED, State.ACKNOWLEDGED}
MODE_KEY = "mode/"
SETPOINT_KEY = "setpoint/"
RESET_WAIT_S: Final = 5.0  # wall s for the PLC to take a trip reset (it scans every second)
RESET_POLL_S: Final = 0.1


# ---------------------------------------------------------------- what the API needs


class Clock(Protocol):
    def clock(self) -> float:
        """Monotonic seconds of the scan cycle (plant seconds against an accelerated plant)."""
        ...


class Image(Protocol):
    def snapshot(self) -> Snapshot: ...


class CycleFigures(Protocol):
    @property
    def status(self) -> PlantStatus | None: ...
    @property
    def cycles(self) -> int: ...
    @property
    def overruns(self) -> int: ...
    @property
    def read_only(self) -> bool: ...
    @property
    def write_failures(self) -> Mapping[str, int]: ...


class Devices(Protocol):
    """The field devices, for the engineer's actions on them."""

    def health(self) -> Mapping[str, DeviceHealth]: ...

    def retry(self, device_id: str) -> None: ...

    async def read_now(self, ref: PointRef) -> Sample: ...

    async def write_now(self, ref: PointRef, value: float | int | bool) -> None: ...


class EventSink(Protocol):
    def submit(self, lines: Sequence[str]) -> None: ...


class Host(Protocol):
    """What the API needs of the daemon that serves it (controller.daemon.Daemon is one): the
    site, the process image, the supervisor's state, the cycle's figures, the devices, the journal,
    the alarm engine and the historian's feed."""

    @property
    def site(self) -> LoadedSite: ...
    @property
    def image(self) -> Image: ...
    @property
    def supervisor(self) -> Supervisor: ...
    @property
    def cycle(self) -> CycleFigures: ...
    @property
    def field_io(self) -> Devices: ...
    @property
    def journal(self) -> Journal | None: ...
    @property
    def alarms(self) -> AlarmService | None: ...
    @property
    def feed(self) -> HistorianFeed: ...
    @property
    def writer(self) -> EventSink: ...
    @property
    def time(self) -> Clock: ...


class ApiError(Exception):
    """A refused request: `status` is the HTTP status (400 bad, 404 unknown, 409 refused)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Operations:
    def __init__(self, daemon: Host) -> None:
        self.daemon = daemon
        self.site = daemon.site

    # ------------------------------------------------------------------ views

    def status(self) -> m.Status:
        d = self.daemon
        result = d.cycle.status
        counts = self._alarm_counts()
        snapshot = d.image.snapshot()
        caissons = (
            [self._caisson(c, counts.get(c.id, 0), snapshot) for c in result.caissons]
            if result
            else []
        )
        plant = None
        if result is not None:
            plant = m.PlantView(
                mode=result.mode.value,
                control_mode=result.control_mode,
                it_target_kw=result.it_target / 1e3,
                soc_pct=None if result.soc is None else result.soc * 100,
                load_kw=None if result.load is None else result.load / 1e3,
                dry_cooler_pct=result.dry_cooler * 100,
                outlet_setpoint_degc=result.outlet_setpoint,
                return_limit_degc=result.return_limit,
                day_peak_kw=None if result.day_peak is None else result.day_peak / 1e3,
                **self._plant_figures(snapshot),
            )
        status = m.Status(
            site=self.site.config.site.name,
            site_id=self.site.config.site.slug,
            timezone=self.site.config.site.timezone,
            at=d.feed.wall_clock(),
            read_only=d.cycle.read_only,
            cycles=d.cycle.cycles,
            overruns=d.cycle.overruns,
            setpoints={
                name: value / SETPOINTS[name].factor
                for name, value in d.supervisor.setpoints().items()
            },
            setpoint_units={name: spec.unit for name, spec in SETPOINTS.items()},
            plant=plant,
            caissons=caissons,
            overrides=self._overrides(),
            devices=self._devices(),
            alarms=self._alarm_summary(),
        )
        return status.model_copy(update={"problems": what_is_wrong(status)})

    def _plant_figures(self, snapshot: Snapshot) -> dict[str, object]:
        """The plant line's figures: measurements of the plant skid (in degC, as measured) and
        the site's day so far."""
        skid = self.site.config.plant.skid

        def measured(point: str) -> float | None:
            sample = snapshot.get(PointRef(skid, point))
            if sample is None or not sample.usable or not isinstance(sample.value, int | float):
                return None
            return float(sample.value)

        days = [k for k in self.daemon.feed.kpis.snapshot() if k.period is Period.DAY]
        day = days[0] if days else None
        setpoints = self.site.config.setpoints
        return {
            "supply_degc": measured(PlantSkidPoint.BUILDING_SUPPLY_TEMP),
            "supply_band_degc": (setpoints.supply_low, setpoints.supply_high),
            "outdoor_degc": measured(PlantSkidPoint.OUTDOOR_TEMP),
            "tank_top_degc": measured(PlantSkidPoint.TANK_TEMP_TOP),
            "tank_bottom_degc": measured(PlantSkidPoint.TANK_TEMP_BOTTOM),
            "heat_today_kwh": None if day is None else day.heat_delivered_kwh,
            "backup_today_kwh": None if day is None else day.backup_heat_kwh,
            "erf_today": None if day is None else day.erf,
        }

    def points(self, pattern: str) -> m.Points:
        snapshot = self.daemon.image.snapshot()
        writable = self.daemon.supervisor.specs
        views = []
        for device in self.site.config.devices:
            for point in self.site.device_map(device.id).points:
                ref = PointRef(device.id, point.id)
                if not fnmatch.fnmatchcase(str(ref), pattern):
                    continue
                sample = snapshot.get(ref)
                views.append(
                    m.PointView(
                        point=str(ref),
                        value=None if sample is None else sample.value,
                        unit=point.unit,
                        quality="bad" if sample is None else sample.quality.value,
                        reason=None
                        if sample is None or sample.reason is None
                        else sample.reason.value,
                        timestamp=None if sample is None else sample.timestamp,
                        writable=ref in writable,
                        description=point.description,
                    )
                )
        if not views:
            raise ApiError(404, f"no point matches {pattern!r} (points are DEVICE.POINT)")
        return m.Points(points=views)

    def alarms(self, everything: bool) -> m.Alarms:
        engine = self._alarm_service().engine
        statuses = (
            engine.status()
            if everything
            else [s for s in engine.status() if s.state is not State.NORMAL]
        )
        return m.Alarms(
            alarms=[
                m.AlarmView(
                    alarm=str(s.id),
                    source=s.id.source,
                    name=s.id.name,
                    priority=s.priority.value,
                    state=s.state.value,
                    active=s.active,
                    since=s.since,
                    message=s.message,
                    shelved_until=s.shelved_until,
                    shelve_reason=s.shelve_reason,
                    first_out=s.first_out,
                    suppressed_by=s.suppressed_by,
                )
                for s in statuses
            ]
        )

    def kpi(self) -> m.Kpi:
        feed = self.daemon.feed
        closed = [k for kept in feed.closed_kpis.values() for k in kept]
        periods = [_kpi_view(k, closed=False) for k in feed.kpis.snapshot()]
        periods += [_kpi_view(k, closed=True) for k in sorted(closed, key=lambda k: k.start)]
        setpoints = self.site.config.setpoints
        return m.Kpi(
            periods=periods,
            trend=[
                m.TrendPoint(
                    at=p.at,
                    supply_degc=p.supply,
                    delivered_kw=None if p.delivered is None else p.delivered / 1e3,
                    it_power_kw=None if p.it_power is None else p.it_power / 1e3,
                )
                for p in feed.trend.points()
            ],
            band_degc=(setpoints.supply_low, setpoints.supply_high),
        )

    def capacity(self) -> m.Capacity:
        report = self.daemon.feed.capacity.latest
        if report is None:
            raise ApiError(409, "the capacity is worked out once a minute: not yet")
        return capacity_view(self.site.config.site.slug, report)

    # ------------------------------------------------------------------ actions

    def acknowledge(self, request: m.AckRequest) -> m.ActionAnswer:
        service = self._alarm_service()
        statuses = {s.id: s for s in service.engine.status()}
        chosen: list[AlarmId] = []
        for pattern in request.alarms:
            if _is_pattern(pattern):
                chosen += [
                    a
                    for a, s in statuses.items()
                    if fnmatch.fnmatchcase(str(a), pattern) and s.state in ACKNOWLEDGEABLE
                ]
            else:
                alarm = self._alarm_id(pattern)
                if statuses[alarm].state not in ACKNOWLEDGEABLE:
                    raise ApiError(
                        409,
                        f"alarm {alarm} is {statuses[alarm].state.value}: nothing to acknowledge",
                    )
                chosen.append(alarm)
        now = self.daemon.feed.wall_clock()
        transitions = []
        for alarm in dict.fromkeys(chosen):
            try:
                transitions += service.engine.acknowledge(alarm, now, request.user, request.reason)
            except ValueError as error:  # a latched alarm still active: reset refused
                if len(request.alarms) == 1 and not _is_pattern(request.alarms[0]):
                    raise ApiError(409, str(error)) from None
        service.record(transitions)
        changes = _alarm_changes(transitions)
        return m.ActionAnswer(
            changes=changes,
            message=f"{len(changes)} alarm(s) acknowledged"
            if changes
            else "nothing to acknowledge",
        )

    def shelve(self, request: m.ShelveRequest) -> m.ActionAnswer:
        service = self._alarm_service()
        alarm = self._alarm_id(request.alarm)
        now = self.daemon.feed.wall_clock()
        try:
            until = now + timedelta(seconds=request.for_s)
            transitions = service.engine.shelve(alarm, now, until, request.user, request.reason)
        except (ValueError, OverflowError) as error:
            raise ApiError(409, str(error)) from None
        service.record(transitions)
        return m.ActionAnswer(
            changes=_alarm_changes(transitions),
            message=f"{alarm} shelved until {until.isoformat(timespec='seconds')}",
        )

    def unshelve(self, request: m.UnshelveRequest) -> m.ActionAnswer:
        service = self._alarm_service()
        alarm = self._alarm_id(request.alarm)
        try:
            transitions = service.engine.unshelve(
                alarm, self.daemon.feed.wall_clock(), request.user, request.reason
            )
        except ValueError as error:
            raise ApiError(409, str(error)) from None
        service.record(transitions)
        return m.ActionAnswer(
            changes=_alarm_changes(transitions),
            message=f"{alarm} unshelved",
        )

    def set_setpoint(self, request: m.SetpointRequest) -> m.ActionAnswer:
        spec = SETPOINTS.get(request.name)
        if spec is None:
            raise ApiError(404, f"no setpoint {request.name!r} (there are {', '.join(SETPOINTS)})")
        _check_unit(request.unit, spec.unit, f"setpoint {request.name}")
        supervisor = self.daemon.supervisor
        try:
            before = supervisor.set_setpoint(request.name, request.value * spec.factor)
        except ValueError as error:
            raise ApiError(400, str(error)) from None
        shown_before = f"{before / spec.factor:g} {spec.unit}"
        shown_after = f"{request.value:g} {spec.unit}"
        self._journal(
            PLANT,
            f"setpoint {request.name}",
            f"setpoint {request.name} {shown_after}",
            shown_before,
            shown_after,
            request,
            setting=(SETPOINT_KEY + request.name, repr(request.value * spec.factor)),
        )
        return _answer(
            f"setpoint {request.name}",
            shown_before,
            shown_after,
            f"setpoint {request.name}: {shown_before} → {shown_after}",
        )

    def override(self, request: m.OverrideRequest) -> m.ActionAnswer:
        ref = self._point(request.point)
        supervisor = self.daemon.supervisor
        try:
            limits = override_limits(self.site, ref, frozenset(supervisor.specs))
            _check_unit(request.unit, limits.unit, str(ref))
            value = check_override(limits, ref, request.value * limits.factor)
            seconds = check_lease(request.for_s)
        except ValueError as error:
            raise ApiError(400, str(error)) from None
        now = self.daemon.time.clock()
        previous = supervisor.set_override(ref, value, now + seconds, request.user)
        before = (
            f"override {previous.value / limits.factor:g} {limits.unit} by {previous.who}"
            if previous is not None
            else self._commanded(ref, limits.factor, limits.unit)
        )
        after = f"override {request.value:g} {limits.unit} for {seconds:g} s"
        self._journal(ref.device, f"override {ref.point}", f"{ref} {after}", before, after, request)
        message = f"{ref}: {after} (then back to automatic)"
        return _answer(str(ref), before, after, message + self._held_by_interlocks(ref.device))

    def release(self, request: m.ReleaseRequest) -> m.ActionAnswer:
        ref = self._point(request.point)
        supervisor = self.daemon.supervisor
        previous = supervisor.clear_override(ref)
        if previous is None:
            raise ApiError(409, f"{ref} has no override to release")
        unit = self.site.device_map(ref.device).point(ref.point).unit
        before = f"override {previous.value / point_unit_factor(unit):g} {unit} by {previous.who}"
        self._journal(
            ref.device, f"override {ref.point}", f"{ref} released", before, "automatic", request
        )
        return _answer(str(ref), before, "automatic", f"{ref}: released, back to automatic")

    def set_mode(self, request: m.ModeRequest) -> m.ActionAnswer:
        supervisor = self.daemon.supervisor
        try:
            before = supervisor.set_mode(request.target, request.mode)
        except KeyError as error:
            raise ApiError(404, str(error.args[0])) from None
        except ValueError as error:
            raise ApiError(409, str(error)) from None
        self._journal(
            request.target,
            "control_mode",
            f"{request.target} {request.mode.value}",
            before.value,
            request.mode.value,
            request,
            setting=(
                MODE_KEY + request.target,
                None if request.mode is ControlMode.AUTO else request.mode.value,
            ),
        )
        return _answer(
            request.target,
            before.value,
            request.mode.value,
            f"{request.target}: {before.value} → {request.mode.value}",
        )

    def retry(self, request: m.RetryRequest) -> m.ActionAnswer:
        try:
            self.daemon.field_io.retry(request.device)
        except KeyError as error:
            raise ApiError(404, str(error.args[0])) from None
        self._journal(request.device, "retry", f"{request.device}: reconnect now", "", "", request)
        return m.ActionAnswer(changes=[], message=f"{request.device}: trying to reconnect now")

    async def reset_trip(self, request: m.TripResetRequest) -> m.ActionAnswer:
        """Reset a caisson's PLC trips once their causes have gone (the engineer's decision: the
        controller never resets one by itself). Refused, with nothing written, while a cause is
        present; else the PLC's `trip_reset` coil is written, and the answer says which trips the
        PLC cleared (read back from the skid once it has taken the request)."""
        configured = {c.id: c for c in self.site.config.caissons}.get(request.caisson)
        if configured is None:
            known = ", ".join(c.id for c in self.site.config.caissons)
            raise ApiError(404, f"no caisson {request.caisson!r} (the site's caissons: {known})")
        skid = configured.skid
        devices = self.daemon.field_io
        before = await self._skid_readings(skid)
        plc = self.site.config.caisson_types[configured.type].plc
        refusal = reset_refusal(request.caisson, skid, before, plc)
        if refusal is not None:
            raise ApiError(409, refusal)
        assert before.interlocks is not None  # reset_refusal refuses without it
        coil = PointRef(skid, Skid.TRIP_RESET)
        try:
            await devices.write_now(coil, True)
        except Exception as error:  # WriteError: refused or unconfirmed; one line either way
            raise ApiError(409, f"{request.caisson}: trip reset not sent: {error}") from None
        after = await self._after_reset(coil)
        gone, kept = cleared(before.interlocks, after)
        shown_before = ", ".join(cleared(0, before.interlocks)[1])
        shown_after = ", ".join(kept) or "none"
        message = f"{request.caisson}: " + (
            f"{', '.join(gone)} cleared" if gone else "the PLC cleared no trip"
        )
        if kept:
            proving = kept == ["low_flow_trip"] and bool(gone)
            message += (
                "; low_flow_trip holds until the PLC has proven the flow, then IT power returns"
                if proving
                else f"; still tripped: {shown_after}"
            )
        self._journal(request.caisson, "trip_reset", message, shown_before, shown_after, request)
        if not gone:
            raise ApiError(409, message)
        return _answer(request.caisson, shown_before, shown_after, message)

    async def _skid_readings(self, skid: str) -> SkidReadings:
        """The trip's causes as the skid shows them now (read from it, not the last poll)."""
        points = (Skid.INTERLOCKS, Skid.LEAK, Skid.PUMP_FAULT, Skid.OUTLET_TEMP, Skid.FLOW)
        samples = [await self.daemon.field_io.read_now(PointRef(skid, p)) for p in points]
        interlocks, leak, fault, outlet, flow = (s.value if s.usable else None for s in samples)
        factor = point_unit_factor(self.site.device_map(skid).point(Skid.FLOW).unit)
        return SkidReadings(
            interlocks=interlocks if isinstance(interlocks, int) else None,
            leak=leak if isinstance(leak, bool) else None,
            pump_fault=fault if isinstance(fault, bool) else None,
            outlet=float(outlet) if isinstance(outlet, int | float) else None,
            flow=float(flow) * factor if isinstance(flow, int | float) else None,
        )

    async def _after_reset(self, coil: PointRef) -> int:
        """The interlock word once the PLC has taken the reset (it writes the coil back to 0)."""
        devices = self.daemon.field_io
        deadline = time.monotonic() + RESET_WAIT_S
        while (await devices.read_now(coil)).value is not False:
            if time.monotonic() > deadline:
                raise ApiError(
                    409,
                    f"{coil.device} did not take the trip reset within {RESET_WAIT_S:g} s "
                    f"({coil.point} still set): is the PLC running?",
                )
            await asyncio.sleep(RESET_POLL_S)
        word = await devices.read_now(PointRef(coil.device, Skid.INTERLOCKS))
        if not word.usable or not isinstance(word.value, int):
            raise ApiError(409, f"{coil.device}: interlock word unreadable after the reset")
        return word.value

    # ------------------------------------------------------------------ restart

    def restore_settings(self) -> None:
        """Take back the modes and setpoints journaled by an earlier run; one the site file no
        longer allows is dropped, with a warning."""
        journal = self.daemon.journal
        assert journal is not None
        supervisor = self.daemon.supervisor
        for key, value in journal.settings().items():
            try:
                if key.startswith(MODE_KEY):
                    supervisor.set_mode(key.removeprefix(MODE_KEY), ControlMode(value))
                elif key.startswith(SETPOINT_KEY):
                    supervisor.set_setpoint(key.removeprefix(SETPOINT_KEY), float(value))
                else:
                    continue
            except (KeyError, ValueError) as error:
                log.warning("setting_not_restored", setting=key, value=value, error=str(error))
                continue
            log.info("setting_restored", setting=key, value=value)

    # ------------------------------------------------------------------ helpers

    def _journal(
        self,
        source: str,
        name: str,
        message: str,
        before: str,
        after: str,
        request: m.Operator | m.Justified,
        *,
        setting: tuple[str, str | None] | None = None,
    ) -> None:
        d = self.daemon
        assert d.journal is not None
        at = d.feed.wall_clock()
        d.journal.record(
            "operator",
            at,
            source,
            name,
            message,
            before=before,
            after=after,
            user=request.user,
            reason=request.reason,
            setting=setting,
        )
        event = Event(
            at,
            "operator",
            name.replace(" ", "_"),
            message,
            source,
            after,
            request.user,
            request.reason,
            before,
            after,
        )
        d.writer.submit([d.feed.recorder.event(event)])
        log.info(
            "operator_action",
            source=source,
            action=name,
            before=before,
            after=after,
            user=request.user,
            reason=request.reason,
        )

    def _alarm_service(self) -> AlarmService:
        service = self.daemon.alarms
        if service is None:
            raise ApiError(409, "the alarm engine has not started yet")
        return service

    def _alarm_id(self, text: str) -> AlarmId:
        source, sep, name = text.partition(".")
        alarm = AlarmId(source, name)
        known = {s.id for s in self._alarm_service().engine.status()}
        if not sep or alarm not in known:
            raise ApiError(404, f"no alarm {text!r} (boilerctl alarms list --all shows them)")
        return alarm

    def _point(self, text: str) -> PointRef:
        device, sep, point = text.partition(".")
        devices = {d.id for d in self.site.config.devices}
        if not sep or device not in devices:
            raise ApiError(
                404,
                f"no point {text!r}: expected DEVICE.POINT, devices are "
                f"{', '.join(sorted(devices))}",
            )
        ids = [p.id for p in self.site.device_map(device).points]
        if point not in ids:
            raise ApiError(404, f"no point {point!r} on {device}")
        return PointRef(device, point)

    def _held_by_interlocks(self, device: str) -> str:
        """A note when the caisson of `device` has interlocks that win over an override."""
        status = self.daemon.cycle.status
        caissons = {c.id: c for c in self.site.config.caissons}
        for c in status.caissons if status is not None else ():
            configured = caissons[c.id]
            if device in (configured.skid, configured.compute) and c.interlocks:
                active = ", ".join(sorted(c.interlocks))
                return f"; note: {c.id}'s interlocks ({active}) win over it while they last"
        return ""

    def _commanded(self, ref: PointRef, factor: float, unit: str) -> str:
        output = self.daemon.supervisor.memory.get(ref)
        if output is None or output.commanded is None:
            return "automatic"
        return f"automatic {output.commanded / factor:g} {unit}"

    def _caisson(self, c: CaissonStatus, alarms: int, snapshot: Snapshot) -> m.CaissonView:
        skid = {k.id: k.skid for k in self.site.config.caissons}[c.id]
        word = snapshot.get(PointRef(skid, Skid.INTERLOCKS))
        plc_trips = tripped(word.value) if word is not None and isinstance(word.value, int) else []
        return m.CaissonView(
            id=c.id,
            initialised=c.initialised,
            plc_mode=None if c.plc_mode is None else PLC_MODES.get(c.plc_mode, str(c.plc_mode)),
            control_mode=c.mode,
            locked_out=c.locked_out,
            interlocks=sorted(c.interlocks),
            plc_trips=plc_trips,
            running=c.running,
            setpoint_degc=c.setpoint,
            outlet_degc=c.outlet,
            inlet_degc=c.inlet,
            flow_l_min=None if c.flow is None else c.flow * 60_000,
            pump_pct=None if c.pump_speed is None else c.pump_speed * 100,
            cap_kw=None if c.cap is None else c.cap / 1e3,
            it_power_kw=None if c.it_power is None else c.it_power / 1e3,
            alarms=alarms,
            staged=c.staged,
            pump_standby=c.standby,
            inlet_setpoint_degc=c.inlet_setpoint,
            run_hours=None if c.run_seconds is None else c.run_seconds / 3600,
            outlet_estimated=c.outlet_estimated,
        )

    def _overrides(self) -> list[m.OverrideView]:
        now = self.daemon.time.clock()
        views = []
        for ref, override in sorted(self.daemon.supervisor.overrides.items()):
            point = self.site.device_map(ref.device).point(ref.point)
            factor = point_unit_factor(point.unit)
            views.append(
                m.OverrideView(
                    point=str(ref),
                    value=override.value / factor,
                    unit=point.unit,
                    user=override.who,
                    remaining_s=max(override.expires_at - now, 0.0),
                )
            )
        return views

    def _devices(self) -> list[m.DeviceView]:
        failures = self.daemon.cycle.write_failures
        health = self.daemon.field_io.health()
        views = []
        for device in self.site.config.devices:
            driver_health = health[device.id]
            views.append(
                m.DeviceView(
                    id=device.id,
                    protocol="modbus" if isinstance(device, ModbusDevice) else "opcua",
                    health=driver_health.state.value,
                    consecutive_failures=driver_health.consecutive_failures,
                    comm_errors=sum(driver_health.errors.values()),
                    write_failures=failures.get(device.id, 0),
                )
            )
        return views

    def _alarm_counts(self) -> dict[str, int]:
        service = self.daemon.alarms
        counts: dict[str, int] = {}
        if service is not None:
            for s in service.engine.annunciated():
                counts[s.id.source] = counts.get(s.id.source, 0) + 1
        return counts

    def _alarm_summary(self) -> m.AlarmCounts:
        service = self.daemon.alarms
        states = [s.state for s in service.engine.status()] if service is not None else []
        return m.AlarmCounts(
            annunciated=sum(s in ACKNOWLEDGEABLE for s in states),
            unacknowledged=sum(
                s in (State.UNACKNOWLEDGED, State.RETURNED_UNACKNOWLEDGED) for s in states
            ),
            shelved=states.count(State.SHELVED),
            suppressed=states.count(State.SUPPRESSED),
            out_of_service=states.count(State.OUT_OF_SERVICE),
        )


def _is_pattern(text: str) -> bool:
    return any(ch in text for ch in "*?[")


def _alarm_changes(transitions: Sequence[Transition]) -> list[m.Change]:
    return [
        m.Change(target=str(t.alarm), before=t.before.value, after=t.after.value)
        for t in transitions
    ]


def _check_unit(given: str | None, unit: str, what: str) -> None:
    aliases = {"degC": {"degC", "°C", "C"}, "%": {"%", "pct"}}
    if given is not None and given not in aliases.get(unit, {unit}):
        raise ApiError(400, f"{what} is in {unit}, not {given}")


def _answer(target: str, before: str, after: str, message: str) -> m.ActionAnswer:
    return m.ActionAnswer(
        changes=[m.Change(target=target, before=before, after=after)], message=message
    )


def capacity_view(site_id: str, report: Capacity) -> m.Capacity:
    def window(w: Window) -> m.CapacityWindow:
        return m.CapacityWindow(
            hours=w.hours,
            start=w.start,
            demand_kw=w.demand / 1e3,
            heat_driven_kw=w.heat_driven / 1e3,
            ceiling_kw=w.ceiling / 1e3,
        )

    return m.Capacity(
        site_id=site_id,
        at=report.at,
        heat_driven_kw=report.heat_driven / 1e3,
        ceiling_kw=report.ceiling / 1e3,
        available_kw=report.available / 1e3,
        it_power_kw=None if report.it_power is None else report.it_power / 1e3,
        demand_kw=report.demand / 1e3,
        tank_room_kwh=report.tank_room / 3.6e6,
        outdoor_degc=report.outdoor,
        forecast=report.source,
        outlook=[window(w) for w in report.windows],
        tonight=window(report.tonight),
        steps=[
            m.CapacityStep(
                start=s.start,
                outdoor_degc=s.outdoor,
                demand_kw=s.demand / 1e3,
                heat_driven_kw=s.heat_driven / 1e3,
                ceiling_kw=s.ceiling / 1e3,
            )
            for s in report.steps
        ],
    )


def _kpi_view(k: Kpis, *, closed: bool) -> m.KpiView:
    return m.KpiView.model_validate({**asdict(k), "period": k.period.value, "closed": closed})

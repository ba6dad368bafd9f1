"""Baselines the supervisor is benchmarked against (bench/closed_loop.py), with the same
`Controller` protocol as the supervisor (simulators/closed_loop.py).

- **PLCs alone**: no controller at all (`controller=None` in `run_closed_loop`). Each caisson PLC
  stays in local mode: pump at its safe speed, IT power at its safe cap; the plant PLC runs the
  dry cooler on its own thermostat and the backup boiler tops up.
- **Plain PI** (`PlainPi`): what a typical integrator commissions. One PI loop per caisson pump on
  the outlet temperature (reverse acting: too hot, pump faster), with anti-windup and the pump's
  minimum speed as the output's floor; IT caps fixed at 100 % of nominal power on the PLC
  (`it_cap_cmd`) and on the compute manager (`power_cap`); a heartbeat every cycle, leases
  renewed well within their timeout, remote mode requested until the PLC grants it. No
  feedforward, no dispatch, no dry-cooler or backup writes: the plant PLC's thermostat rejects the
  surplus, the backup boiler covers the rest; no inlet setpoint writes: the loading units hold
  their PLC's default. Its own PI (not controller.control.pid), so tuning work on the supervisor
  cannot move the baseline.
- **Staged plant** (`StagedPlant`): what a good integrator commissions on a multi-source plant, in
  the manner of ASHRAE Guideline 36's boiler staging: the caissons are staged on the heat load the
  building meter measures (filtered): one more when the load has exceeded `up_share` of the
  running caissons' heat for `up_delay`, one fewer when it has fitted within `down_share` of the
  heat of one caisson fewer for `down_delay`, each caisson running at least `min_run` and resting
  at least `min_off`, lead and lag rotated by run hours. A running caisson gets the plain PI on
  its pump and its caps at 100 %; a staged-off one gets cap 0 and the standby request, so its PLC
  stops the pump. The outlet setpoint is fixed (65 °C); the plant PLC's default dry cooler and
  backup boiler, the loading units at their default inlet setpoint. Its own staging code, for the
  same reason as its own PI.

Gains (`DEFAULT_GAINS`), chosen by trying kp ∈ {1, 2, 5, 10, 20} %/K and ti ∈ {30, 60, 120,
240} s on the demo site's January day and keeping the one with the least K·h outside the band
(docs/BENCHMARKS.md, "Closed-loop benchmark").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from controller.config.loader import LoadedSite
from controller.config.roles import CaissonSkidPoint as Skid
from controller.config.roles import ComputeManagerPoint as Compute
from controller.config.roles import PlantSkidPoint as PlantPoint
from controller.config.units import point_unit_factor
from controller.control.arbiter import Source, Write
from controller.fieldbus.image import PointRef, Sample
from controller.water import VOLUMETRIC_HEAT

REMOTE = 1  # plc_mode
HEARTBEAT_MODULO = 65536
RENEW_EVERY = 4.0  # s between lease renewals (leases time out after 10 s)
SPEED_RESOLUTION = 0.001  # the pump_speed_cmd register's step (0.1 %)


@dataclass(frozen=True)
class PiGains:
    kp: float  # pump speed (fraction) per K of outlet above its setpoint (reverse acting)
    ti: float  # s, integral time


DEFAULT_GAINS = PiGains(kp=0.1, ti=120.0)


@dataclass(frozen=True)
class StagingRules:
    """Guideline 36-style staging on the measured load (see the module docstring)."""

    up_share: float = 1.0  # of the running caissons' heat
    down_share: float = 0.8  # of the heat of one caisson fewer
    up_delay: float = 600.0  # s
    down_delay: float = 600.0  # s
    min_run: float = 900.0  # s
    min_off: float = 600.0  # s
    load_filter: float = 300.0  # s, time constant of the measured load


# Tuned with bench/tune_staged.py (docs/BENCHMARKS.md): the least backup + dumped heat over three
# demo days, all of them ≥ 99.99 % in band.
DEFAULT_STAGING = StagingRules()


@dataclass(frozen=True)
class BaselineScan:
    writes: list[Write]


@dataclass
class _Loop:
    """One caisson's PI and the refs it uses."""

    skid: str
    compute: str
    min_speed: float
    nominal_power: float  # W
    integral: float | None = None  # output units; None until the first reading
    output: float = 0.0
    heat: float = 0.0  # W of heat it gives at nominal power (staging's unit of capacity)
    on: bool = True  # staged on (the plain PI runs every caisson)
    since: float = float("-inf")  # s, its last start or stop
    run_seconds: float = 0.0


@dataclass
class PlainPi:
    """One PI per caisson pump on its outlet temperature; caps at nominal; no plant writes."""

    site: LoadedSite
    gains: PiGains = DEFAULT_GAINS
    setpoint: float | None = None  # °C; default the site's outlet setpoint
    period: float = 1.0  # s, used for the first cycle's dt
    heartbeat: int = 0
    _loops: list[_Loop] = field(init=False)
    _sent_at: dict[PointRef, float] = field(init=False, default_factory=dict)
    _sent_value: dict[PointRef, float] = field(init=False, default_factory=dict)
    _factors: dict[PointRef, float] = field(init=False, default_factory=dict)
    _last_now: float | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        config = self.site.config
        if self.setpoint is None:
            self.setpoint = config.setpoints.outlet
        self._loops = []
        for caisson in config.caissons:
            kind = config.caisson_type(caisson)
            loop = _Loop(caisson.skid, caisson.compute, kind.pump.min_speed, kind.it_power)
            loop.heat = kind.heat_capture * kind.it_power
            self._loops.append(loop)
        for ref in self.refs | self.writes_to:
            point = self.site.device_map(ref.device).point(ref.point)
            self._factors[ref] = point_unit_factor(point.unit)

    @property
    def refs(self) -> frozenset[PointRef]:
        """The points this controller reads."""
        refs: set[PointRef] = set()
        for loop in self._loops:
            for point in (Skid.OUTLET_TEMP, Skid.PLC_MODE, Skid.PUMP_SPEED_FEEDBACK):
                refs.add(PointRef(loop.skid, point))
        return frozenset(refs)

    @property
    def writes_to(self) -> frozenset[PointRef]:
        refs: set[PointRef] = set()
        for loop in self._loops:
            for point in (Skid.PUMP_SPEED_CMD, Skid.IT_CAP_CMD, Skid.HEARTBEAT):
                refs.add(PointRef(loop.skid, point))
            refs.add(PointRef(loop.skid, Skid.REMOTE_REQUEST))
            refs.add(PointRef(loop.skid, Skid.STANDBY_REQUEST))
            refs.add(PointRef(loop.compute, Compute.POWER_CAP))
        return frozenset(refs)

    def confirm(self, write: Write, now: float) -> None:
        self._sent_at[write.ref] = now
        self._sent_value[write.ref] = write.si_value

    def _write(self, ref: PointRef, si_value: float, reason: str, renewal: bool) -> Write:
        return Write(
            ref, si_value / self._factors[ref], si_value, False, Source.AUTO, reason, renewal
        )

    def _due(self, ref: PointRef, now: float) -> bool:
        return now - self._sent_at.get(ref, float("-inf")) >= RENEW_EVERY

    def scan(self, snapshot: Mapping[PointRef, Sample], now: float) -> BaselineScan:
        dt = self.period if self._last_now is None else max(now - self._last_now, 0.0)
        self._last_now = now
        self.heartbeat = (self.heartbeat + 1) % HEARTBEAT_MODULO
        writes: list[Write] = []
        for loop in self._loops:
            writes += self._caisson(loop, snapshot, now, dt)
        return BaselineScan(writes)

    def _caisson(
        self, loop: _Loop, snapshot: Mapping[PointRef, Sample], now: float, dt: float
    ) -> list[Write]:
        def value(point: str) -> float | None:
            sample = snapshot.get(PointRef(loop.skid, point))
            if sample is None or not sample.usable or sample.value is None:
                return None
            return float(sample.value) * self._factors[PointRef(loop.skid, point)]

        outlet = value(Skid.OUTLET_TEMP)
        mode = value(Skid.PLC_MODE)
        speed_now = value(Skid.PUMP_SPEED_FEEDBACK)
        assert self.setpoint is not None
        remote = mode is not None and round(mode) == REMOTE
        writes: list[Write] = []
        pump = PointRef(loop.skid, Skid.PUMP_SPEED_CMD)
        if outlet is not None:
            error = outlet - self.setpoint  # reverse acting: too hot → faster
            proportional = self.gains.kp * error
            if loop.integral is None or not remote or not loop.on:
                # Bumpless: until the PLC follows us (or while staged off), track its speed.
                held = speed_now if speed_now is not None else loop.output
                loop.integral = (held if held > 0 else loop.min_speed) - proportional
            else:
                loop.integral += self.gains.kp * error * dt / self.gains.ti
            low, high = loop.min_speed, 1.0
            loop.integral = min(max(loop.integral, low - proportional), high - proportional)
            new = min(max(proportional + loop.integral, low), high)
            changed = abs(new - loop.output) >= SPEED_RESOLUTION
            loop.output = new
            if changed or self._due(pump, now):
                writes.append(self._write(pump, loop.output, "outlet PI", not changed))
        elif loop.integral is not None and self._due(pump, now):
            writes.append(self._write(pump, loop.output, "hold (outlet unreadable)", True))
        # Caps at nominal (0 staged off), renewed; the standby request with them; the heartbeat
        # every cycle; remote until granted.
        cap = loop.nominal_power if loop.on else 0.0
        for ref in (
            PointRef(loop.skid, Skid.IT_CAP_CMD),
            PointRef(loop.compute, Compute.POWER_CAP),
        ):
            changed = self._sent_value.get(ref) != cap
            if changed or self._due(ref, now):
                writes.append(self._write(ref, cap, "cap", not changed))
        standby = PointRef(loop.skid, Skid.STANDBY_REQUEST)
        if self._sent_value.get(standby) != float(not loop.on):
            writes.append(
                Write(
                    standby, not loop.on, float(not loop.on), False, Source.AUTO, "staging", False
                )
            )
        beat = PointRef(loop.skid, Skid.HEARTBEAT)
        hb = self.heartbeat
        writes.append(Write(beat, hb, float(hb), False, Source.AUTO, "heartbeat", False))
        if not remote and mode is not None:
            ref = PointRef(loop.skid, Skid.REMOTE_REQUEST)
            writes.append(Write(ref, True, 1.0, False, Source.AUTO, "remote", False))
        return writes


@dataclass
class StagedPlant(PlainPi):
    """The plain PI on the running caissons, staged on the measured load (module docstring)."""

    rules: StagingRules = DEFAULT_STAGING
    load: float | None = None  # W, filtered
    _up_since: float | None = field(init=False, default=None)
    _down_since: float | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        super().__post_init__()
        for loop in self._loops:
            loop.on = False
        plant = self.site.config.plant.skid
        self._building = tuple(
            PointRef(plant, p)
            for p in (
                PlantPoint.BUILDING_FLOW,
                PlantPoint.BUILDING_SUPPLY_TEMP,
                PlantPoint.BUILDING_RETURN_TEMP,
            )
        )
        for ref in self._building:
            point = self.site.device_map(ref.device).point(ref.point)
            self._factors[ref] = point_unit_factor(point.unit)

    @property
    def refs(self) -> frozenset[PointRef]:
        return super().refs | frozenset(getattr(self, "_building", ()))

    def scan(self, snapshot: Mapping[PointRef, Sample], now: float) -> BaselineScan:
        dt = self.period if self._last_now is None else max(now - self._last_now, 0.0)
        measured = self._measured_load(snapshot)
        if measured is not None:
            share = dt / (self.rules.load_filter + dt)
            self.load = (
                measured if self.load is None else self.load + share * (measured - self.load)
            )
        self._stage(now, dt)
        return super().scan(snapshot, now)

    def _measured_load(self, snapshot: Mapping[PointRef, Sample]) -> float | None:
        values = []
        for ref in self._building:
            sample = snapshot.get(ref)
            if sample is None or not sample.usable or sample.value is None:
                return None
            values.append(float(sample.value) * self._factors[ref])
        flow, supply, ret = values
        return max(VOLUMETRIC_HEAT * flow * (supply - ret), 0.0)

    def _stage(self, now: float, dt: float) -> None:
        rules, load = self.rules, self.load or 0.0
        running = [loop for loop in self._loops if loop.on]
        for loop in running:
            loop.run_seconds += dt
        heat = sum(loop.heat for loop in running)
        idle = [loop for loop in self._loops if not loop.on]
        more = load > 0.0 and (not running or load > rules.up_share * heat) and bool(idle)
        self._up_since = (self._up_since if self._up_since is not None else now) if more else None
        if more and (not running or now - self._up_since >= rules.up_delay):  # type: ignore[operator]
            rested = [loop for loop in idle if now - loop.since >= rules.min_off or not running]
            if rested:
                lead = min(rested, key=lambda loop: loop.run_seconds)
                lead.on, lead.since = True, now
                self._up_since = None
                return
        lag = max(running, key=lambda loop: loop.run_seconds) if running else None
        fewer = heat - (lag.heat if lag is not None else 0.0)
        less = lag is not None and load < rules.down_share * fewer
        self._down_since = (
            (self._down_since if self._down_since is not None else now) if less else None
        )
        if (
            lag is not None
            and less
            and now - self._down_since >= rules.down_delay  # type: ignore[operator]
            and now - lag.since >= rules.min_run
        ):
            lag.on, lag.since = False, now
            self._down_since = None

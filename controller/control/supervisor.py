"""The supervisor: every controller of a site, run in priority order over one snapshot. No I/O.

`scan(snapshot, now)` reads the inputs (a frozen outlet reading replaced by its caisson's heat
balance, outlet_watch.py), runs the interlocks, resets the outlet setpoint, runs the plant
dispatch, stages the caissons (which run, which stand by with their pumps stopped) and each running
caisson's outlet loop and loading unit, lets the arbiter pick one value per writable point, and
returns the writes to send and a status. `confirm()` is told which writes the devices took.
The same object runs in the daemon (over the field drivers), in fast in-process simulations and in
tests: `now` is monotonic seconds from whatever clock the caller has.

Start-up is bumpless: nothing is written to a caisson until its skid has been read; then its
loop starts at the site's setpoint from the speed the pump runs at (tracked), and its caps from
what the PLC applies now (the commanded cap in remote mode, the safe cap in local mode); its
compute manager's cap is written once that has been read too. A PLC in local or local-safe mode
whose inputs are healthy is asked for remote mode; until it grants it, the loop and caps track
what the PLC does. Staging starts from what the PLCs do too: a caisson whose pump stands by stays
stopped until staging itself starts it (a restarted daemon starts nothing it did not decide to).

A caisson staged off gets cap 0 and the standby request: its PLC stops the pump once the servers
have idled for its post-run time. Staged on, the request is cleared: the PLC starts the pump and
proves the flow; the caisson warms up at full power on its loading unit's recirculation (the inlet
setpoint held just below the outlet setpoint keeps the valve shut) and joins the header once hot,
after which its inlet setpoint falls, at a rate, to its running value.

Write order matters: the writes of `scan()` list each device's setpoints before its heartbeat and
remote request, and the caller must send them in that order and stop at a device's first failure,
so that a PLC never hears "alive" after a setpoint it did not get.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from controller.config.loader import LoadedSite
from controller.config.maps import ModbusPoint, OpcUaPoint
from controller.config.roles import CaissonSkidPoint as Skid
from controller.config.roles import ComputeManagerPoint as Compute
from controller.config.roles import PlantSkidPoint as PlantPoint
from controller.config.site import Policy
from controller.config.units import point_unit_factor
from controller.control import arbiter
from controller.control.arbiter import Bound, Output, OutputSpec, Proposal, Source, Write
from controller.control.carryover import Carryover, aged_peaks
from controller.control.dispatch import (
    BACKUP_FIRING,
    FULL_MARGIN,
    Candidate,
    DispatchState,
    Mode,
    Plan,
    PlantLimits,
    plan,
    share_caps,
)
from controller.control.inputs import CaissonInputs, InputReader, Inputs
from controller.control.interlocks import CaissonLimits, Guard, Interlock, guard
from controller.control.operator import (
    PLANT,
    ControlMode,
    check_override,
    check_setpoint,
    override_limits,
)
from controller.control.outlet_loop import LoopState, initial_state, loop_step
from controller.control.outlet_watch import OutletWatch, outlet_in_use, watch_outlet
from controller.control.setpoints import (
    ResetInputs,
    carried_power,
    deepest_charge,
    inlet_setpoint,
    outlet_setpoint,
)
from controller.control.staging import StagingState, Unit, stage
from controller.fieldbus.image import PointRef, Sample
from controller.heating_curve import required_supply
from controller.water import VOLUMETRIC_HEAT

PLANT_OUTPUTS = (
    PlantPoint.DRY_COOLER_VALVE_CMD,
    PlantPoint.DRY_COOLER_FAN_CMD,
    PlantPoint.BACKUP_ENABLE,
    PlantPoint.RETURN_LIMIT_CMD,
)
REMOTE = 1  # plc_mode register values
LOCAL_SAFE = 2
REMOTE_REQUEST_EVERY = 10.0  # s between two requests for remote mode
HEARTBEAT_MODULO = 65536
RENEW_SHARE = 0.4  # leases renewed after this share of their timeout
PUMP_DEADBAND = 0.005  # 0.5 % speed
CAP_DEADBAND = 100.0  # W
PUMP_SLEW_DOWN = 0.01  # per second: a pump slows by at most 1 % of full speed a second
CAP_SLEW_UP = 0.1  # share of nominal power per second a cap may rise
TEMPERATURE_DEADBAND = 0.2  # K
INLET_SLEW_DOWN = 1.0  # K/s a loading unit's inlet setpoint may fall (a joining caisson's valve)
WARM_MARGIN = 3.0  # K: a running caisson this far below the outlet setpoint warms at full power
JOIN_MARGIN = 2.5  # K: a starting caisson joins the header once this close to the setpoint
START_GRACE = 10.0  # s after a start during which low flow is the pump coming up to speed
MIN_LOAD = 0.2  # share of nominal power: a caisson with a loading unit runs at least this
JOB_HEADROOM = 1.1  # caps may exceed the jobs' available power by the chips' leakage
SHORT_HOLD = 1800.0  # s the backup boiler counts as firing after it last fired (the reset)
STORE_AFTER_BACKUP = 24 * 3600.0  # s a heat-priority plant keeps its tank full after the backup
PLENTIFUL_SHARE = 0.5  # heat is plentiful below this share of the caissons' capacity
RESET_PERIOD = 10.0  # s between two resets of the outlet setpoint (the loops ramp it at 1 K/min)


@dataclass(frozen=True)
class Override:
    """An operator's lease on a writable point (SI value), until `expires_at` (monotonic s)."""

    value: float
    expires_at: float
    who: str


@dataclass(frozen=True)
class CaissonStatus:
    id: str
    initialised: bool
    plc_mode: int | None
    interlocks: frozenset[Interlock]
    running: bool
    setpoint: float | None
    outlet: float | None
    inlet: float | None
    flow: float | None
    it_power: float | None
    pump_speed: float | None  # commanded (fraction)
    cap: float | None  # commanded (W)
    locked_out: bool = False  # maintenance lockout (site file or engineer): alarms suppressed
    mode: ControlMode = ControlMode.AUTO  # as an engineer set it (the site file's lockout aside)
    staged: bool = False  # staging runs it (False: it stands by, its pump stopped)
    standby: bool | None = None  # the PLC has stopped its pump on request
    inlet_setpoint: float | None = None  # °C commanded to its loading unit
    run_seconds: float | None = None  # staged on, all runs together (None: not yet seen)
    outlet_estimated: bool = False  # its sensor reads frozen: `outlet` is the heat balance's
    outlet_estimate: float | None = None  # °C, the heat balance's outlet (None: water standing)


@dataclass(frozen=True)
class PlantStatus:
    mode: Mode
    it_target: float
    soc: float | None
    load: float | None
    dry_cooler: float
    caissons: tuple[CaissonStatus, ...]
    control_mode: ControlMode = ControlMode.AUTO
    outlet_setpoint: float | None = None  # °C in force (the reset's)
    return_limit: float | None = None  # °C, the dry cooler's limit asked of the plant PLC
    day_peak: float | None = None  # W: the highest filtered load of the last 24 hours


@dataclass(frozen=True)
class ScanResult:
    writes: list[Write]
    status: PlantStatus


@dataclass
class _Caisson:
    id: str
    index: int
    limits: CaissonLimits
    skid: str
    compute: str
    lease_timeout: float
    site_locked: bool  # the site file's lockout: only an edit of the file lifts it
    mode: ControlMode = ControlMode.AUTO
    initialised: bool = False
    compute_initialised: bool = False  # its compute manager read (an OPC-UA session may lag)
    loop: LoopState | None = None
    overtemp_stage: int = 0
    remote_requested_at: float = float("-inf")
    guard: Guard | None = None
    running: bool = False  # drawing a cap from dispatch this cycle
    loading_unit: bool = False
    started_at: float = float("-inf")  # monotonic s its pump was last asked to start
    joined: bool = False  # a running caisson has reached its outlet setpoint since its start
    staged: bool = False
    standing_by: bool = False  # its PLC's standby bit as last read
    outlet_watch: OutletWatch = field(default_factory=OutletWatch)

    def ref(self, point: str) -> PointRef:
        return PointRef(self.skid, point)

    def compute_ref(self, point: str) -> PointRef:
        return PointRef(self.compute, point)


@dataclass
class Supervisor:
    site: LoadedSite
    period: float = field(default=1.0)

    def __post_init__(self) -> None:
        config = self.site.config
        self.reader = InputReader(self.site)
        self._caissons = [
            _Caisson(
                id=c.id,
                index=i,
                limits=CaissonLimits.of(config.caisson_type(c)),
                skid=c.skid,
                compute=c.compute,
                lease_timeout=config.caisson_type(c).plc.lease_timeout,
                site_locked=c.id in config.control.lockout,
                loading_unit=config.caisson_type(c).loading_unit is not None,
            )
            for i, c in enumerate(config.caissons)
        ]
        cooler = config.plant.dry_cooler
        self.plant_limits = PlantLimits(
            tank_volume=config.plant.buffer_tank.volume,
            return_limit=cooler.return_limit,
            hard_return_limit=cooler.hard_limit,
            outlet_setpoint=config.setpoints.outlet,
            policy=config.control.policy,
            tank_reserve=config.control.tank_reserve,
            store_bottom=deepest_charge(
                config.setpoints.supply_high, cooler.hard_limit, FULL_MARGIN
            ),
        )
        self.staging = StagingState()
        self.outlet_setpoint = config.setpoints.outlet  # °C in force (the reset's, unramped)
        self.backup_fired_at = float("-inf")  # monotonic s
        self._reset_at = float("-inf")  # monotonic s of the outlet setpoint's last reset
        self.specs = self._output_specs()
        self.memory: dict[PointRef, Output] = {}
        self.dispatch = DispatchState()
        self.overrides: dict[PointRef, Override] = {}
        self.expired: list[tuple[PointRef, Override]] = []  # the overrides the last scan ended
        self.plant_mode = ControlMode.AUTO
        self.heartbeat: int | None = None
        self._plant_initialised = False
        self._last_now: float | None = None
        self.last_plan: Plan | None = None

    # ------------------------------------------------------------------ set-up

    def _point(self, ref: PointRef) -> ModbusPoint | OpcUaPoint:
        return self.site.device_map(ref.device).point(ref.point)

    def _spec(
        self,
        ref: PointRef,
        *,
        deadband: float = 0.0,
        rate_up: float | None = None,
        rate_down: float | None = None,
        verify: bool = False,
        boolean: bool = False,
    ) -> OutputSpec:
        """The point's unit factor and lease renewal come from its map."""
        point = self._point(ref)
        renew = RENEW_SHARE * point.lease_timeout if point.lease_timeout is not None else None
        return OutputSpec(
            factor=point_unit_factor(point.unit),
            deadband=deadband,
            rate_up=rate_up,
            rate_down=rate_down,
            renew_every=renew,
            verify=verify,
            boolean=boolean,
        )

    def _output_specs(self) -> dict[PointRef, OutputSpec]:
        specs: dict[PointRef, OutputSpec] = {}
        for c in self._caissons:
            cap_rate = CAP_SLEW_UP * c.limits.nominal_power
            specs[c.ref(Skid.PUMP_SPEED_CMD)] = self._spec(
                c.ref(Skid.PUMP_SPEED_CMD),
                deadband=PUMP_DEADBAND,
                rate_down=PUMP_SLEW_DOWN,
                verify=True,
            )
            specs[c.ref(Skid.IT_CAP_CMD)] = self._spec(
                c.ref(Skid.IT_CAP_CMD), deadband=CAP_DEADBAND, rate_up=cap_rate, verify=True
            )
            specs[c.compute_ref(Compute.POWER_CAP)] = self._spec(
                c.compute_ref(Compute.POWER_CAP), deadband=CAP_DEADBAND, rate_up=cap_rate
            )
            specs[c.ref(Skid.LEASE_TIMEOUT)] = self._spec(c.ref(Skid.LEASE_TIMEOUT), deadband=0.5)
            specs[c.ref(Skid.STANDBY_REQUEST)] = self._spec(
                c.ref(Skid.STANDBY_REQUEST), boolean=True
            )
            if c.loading_unit:
                specs[c.ref(Skid.INLET_SETPOINT)] = self._spec(
                    c.ref(Skid.INLET_SETPOINT),
                    deadband=TEMPERATURE_DEADBAND,
                    rate_down=INLET_SLEW_DOWN,
                )
        plant = self.site.config.plant.skid
        for point in (PlantPoint.DRY_COOLER_VALVE_CMD, PlantPoint.DRY_COOLER_FAN_CMD):
            specs[PointRef(plant, point)] = self._spec(PointRef(plant, point), deadband=0.01)
        backup = PointRef(plant, PlantPoint.BACKUP_ENABLE)
        specs[backup] = self._spec(backup, boolean=True)
        limit = PointRef(plant, PlantPoint.RETURN_LIMIT_CMD)
        specs[limit] = self._spec(limit, deadband=TEMPERATURE_DEADBAND)
        return specs

    # ------------------------------------------------------------------ operator actions

    def set_override(self, ref: PointRef, value: float, until: float, who: str) -> Override | None:
        """An operator holds `ref` at `value` (SI) until `until` (monotonic s); the later of two
        operators wins. Returns the override it replaces. ValueError: not a point an operator
        may override, or a value outside its limits (nothing is changed)."""
        limits = override_limits(self.site, ref, frozenset(self.specs))
        check_override(limits, ref, value)
        before = self.overrides.get(ref)
        self.overrides[ref] = Override(value, until, who)
        return before

    def clear_override(self, ref: PointRef) -> Override | None:
        """End an override at once; returns it (None: there was none)."""
        return self.overrides.pop(ref, None)

    def mode_of(self, target: str) -> ControlMode:
        """The control mode of a caisson or of the plant; KeyError names the known targets."""
        if target == PLANT:
            return self.plant_mode
        return self._caisson(target).mode

    def set_mode(self, target: str, mode: ControlMode) -> ControlMode:
        """Put a caisson or the plant in `mode`; returns the mode before. KeyError: no such
        target; ValueError: a lockout of the site file cannot be lifted here."""
        if target == PLANT:
            before, self.plant_mode = self.plant_mode, mode
            return before
        c = self._caisson(target)
        if c.site_locked and mode is not ControlMode.MAINTENANCE:
            raise ValueError(
                f"{target} is locked out by the site file {self.site.path} (control.lockout): "
                "edit the file to return it to service"
            )
        before, c.mode = c.mode, mode
        return before

    def set_setpoint(self, name: str, value: float) -> float:
        """Change a setpoint (SI) within its limits; returns the value before. ValueError: no
        such setpoint, or outside its limits (nothing is changed)."""
        check_setpoint(self.site, name, value)
        if name == "outlet":
            before = self.plant_limits.outlet_setpoint
            self.plant_limits = replace(self.plant_limits, outlet_setpoint=value)
        else:
            before = self.plant_limits.tank_reserve
            self.plant_limits = replace(self.plant_limits, tank_reserve=value)
        return before

    def setpoints(self) -> dict[str, float]:
        """The setpoints in force (SI), by name."""
        limits = self.plant_limits
        return {"outlet": limits.outlet_setpoint, "tank_reserve": limits.tank_reserve}

    def carryover(self, at: datetime) -> Carryover:
        """What a restarted supervisor takes over (carryover.py), as it stands at `at` (UTC)."""
        ids = {c.index: c.id for c in self._caissons}
        run = {ids[i]: seconds for i, seconds in self.staging.run_seconds.items()}
        return Carryover(at, run, self.dispatch.peaks)

    def take_over(self, carried: Carryover, now: datetime) -> None:
        """Before the first scan: an earlier run's run hours and the day's peak, aged to `now`
        (UTC). Caissons the site file no longer has are left out."""
        index = {c.id: c.index for c in self._caissons}
        run = {index[i]: s for i, s in carried.run_seconds.items() if i in index}
        self.staging = replace(self.staging, carried=run)
        self.dispatch = replace(self.dispatch, peaks=aged_peaks(carried, now))

    def _locked_out(self, c: _Caisson) -> bool:
        """The site file's lockout, or the caisson's or the plant's maintenance mode."""
        return c.site_locked or ControlMode.MAINTENANCE in (c.mode, self.plant_mode)

    def _caisson(self, caisson_id: str) -> _Caisson:
        for c in self._caissons:
            if c.id == caisson_id:
                return c
        known = ", ".join([c.id for c in self._caissons] + [PLANT])
        raise KeyError(f"no caisson {caisson_id!r} (there are {known})")

    def write_counts(self) -> dict[PointRef, int]:
        return {ref: output.writes for ref, output in self.memory.items() if output.writes}

    # ------------------------------------------------------------------ the scan

    def confirm(self, write: Write, now: float) -> None:
        if write.ref in self.specs:
            self.memory = arbiter.confirm(self.memory, write, now)

    def scan(self, snapshot: Mapping[PointRef, Sample], now: float) -> ScanResult:
        dt = self.period if self._last_now is None else max(now - self._last_now, 0.0)
        self._last_now = now
        self.expired = [(r, o) for r, o in self.overrides.items() if o.expires_at <= now]
        self.overrides = {r: o for r, o in self.overrides.items() if o.expires_at > now}
        inputs = self._watch_outlets(self.reader.read(snapshot), now, dt)
        pulses: list[Write] = []
        self._initialise(inputs)
        guards = [self._guard(c, inputs.caissons[c.index], now) for c in self._caissons]
        # Staging may run a healthy caisson whose PLC has not granted remote mode yet (at
        # start-up); dispatch gives caps only to those that follow the supervisor.
        stageable = [
            c
            for c, g in zip(self._caissons, guards, strict=True)
            if c.initialised
            and g.dispatchable
            and inputs.caissons[c.index].plc_mode is not None
            and c.mode is ControlMode.AUTO
        ]
        backup = inputs.plant.backup_heat
        if backup is not None and backup > BACKUP_FIRING:  # not a meter's trim of a few watts
            self.backup_fired_at = now
        if now - self._reset_at >= RESET_PERIOD or self.last_plan is None:
            self.outlet_setpoint, self._reset_at = self._reset(inputs, now), now
        candidates = [
            self._candidate(c, inputs, guards[c.index])
            for c in stageable
            if inputs.caissons[c.index].plc_mode == REMOTE
        ]
        the_plan, self.dispatch = plan(
            self.plant_limits,
            self.site.config.loads,
            self.dispatch,
            inputs.plant,
            candidates,
            dt,
            outlet_setpoint=self.outlet_setpoint,
            top_needed=self._top_needed(inputs),
            short=now - self.backup_fired_at < STORE_AFTER_BACKUP,
        )
        the_plan = self._stage(the_plan, inputs, stageable, guards, candidates, now, dt)
        self.last_plan = the_plan
        proposals: list[Proposal] = []
        for c, g in zip(self._caissons, guards, strict=True):
            if c.initialised:
                proposals += self._caisson_proposals(
                    c, g, inputs.caissons[c.index], the_plan, dt, inputs.plant.ret
                )
                pulses += self._remote_request(c, g, inputs.caissons[c.index], now)
        if self._plant_initialised:
            proposals += self._plant_proposals(the_plan)
            if self.plant_mode is ControlMode.MANUAL:
                proposals = self._frozen(proposals)
        proposals += self._operator_proposals()
        writes, self.memory = arbiter.arbitrate(self.specs, self.memory, proposals, now, dt)
        writes += self._heartbeats() + pulses
        return ScanResult(writes, self._status(inputs, the_plan))

    def _initialise(self, inputs: Inputs) -> None:
        for c in self._caissons:
            i = inputs.caissons[c.index]
            if c.initialised and not c.compute_initialised and i.power_cap is not None:
                # Its register may hold a value its lapsed lease no longer applies: start from no
                # more than the PLC's cap, the power the servers can have now.
                plc_cap = self.memory[c.ref(Skid.IT_CAP_CMD)].commanded
                start = i.power_cap if plc_cap is None else min(i.power_cap, plc_cap)
                self.memory = arbiter.assume_sent(
                    self.memory, c.compute_ref(Compute.POWER_CAP), start
                )
                c.compute_initialised = True
            if c.initialised:
                continue
            needed = (i.pump_speed_cmd, i.it_cap_cmd, i.plc_mode, i.lease_timeout, i.standby)
            if None in (*needed, i.standby_request, i.inlet_setpoint):
                continue  # not read yet: nothing is written to it
            assert i.it_cap_cmd is not None
            assert i.pump_speed_cmd is not None
            assert i.lease_timeout is not None
            assert i.standby_request is not None
            assert i.inlet_setpoint is not None
            remote = i.plc_mode == REMOTE
            speed = i.pump_speed if i.pump_speed is not None else i.pump_speed_cmd
            cap = i.it_cap_cmd if remote else c.limits.safe_cap
            for point, value in (
                (Skid.PUMP_SPEED_CMD, speed),
                (Skid.IT_CAP_CMD, cap),
                (Skid.LEASE_TIMEOUT, i.lease_timeout),
                (Skid.STANDBY_REQUEST, float(i.standby_request)),
                (Skid.INLET_SETPOINT, i.inlet_setpoint),
            ):
                if c.ref(point) in self.specs:
                    self.memory = arbiter.assume_sent(self.memory, c.ref(point), value)
            # The setpoint starts at the site's: the loop starts from the pump's speed (tracked,
            # bumpless) and the arbiter's rate limits carry the pump to where it should be.
            c.loop = initial_state(speed, self.plant_limits.outlet_setpoint)
            c.joined = (
                not i.standby
                and i.outlet is not None
                and (i.outlet >= self.plant_limits.outlet_setpoint - JOIN_MARGIN)
            )
            c.initialised = True
        if not self._plant_initialised:
            plant = inputs.plant
            self._plant_initialised = plant.ret is not None or any(
                t is not None for t in plant.tank
            )
            if self._plant_initialised and plant.return_limit_cmd is not None:
                ref = PointRef(self.site.config.plant.skid, PlantPoint.RETURN_LIMIT_CMD)
                self.memory = arbiter.assume_sent(self.memory, ref, plant.return_limit_cmd)

    def _watch_outlets(self, inputs: Inputs, now: float, dt: float) -> Inputs:
        """The inputs with each frozen outlet reading replaced by its heat balance's outlet."""
        caissons = []
        for c, i in zip(self._caissons, inputs.caissons, strict=True):
            c.outlet_watch = watch_outlet(
                c.limits,
                c.outlet_watch,
                outlet=i.outlet,
                inlet=i.inlet,
                flow=i.flow,
                it_power=i.it_power,
                now=now,
                dt=dt,
            )
            outlet = outlet_in_use(c.outlet_watch, i.outlet)
            caissons.append(i if outlet == i.outlet else replace(i, outlet=outlet))
        return replace(inputs, caissons=tuple(caissons))

    def _guard(self, c: _Caisson, inputs: CaissonInputs, now: float) -> Guard:
        g = guard(
            c.limits,
            inputs,
            previous_stage=c.overtemp_stage,
            chip_margin=self.site.config.control.chip_margin,
            locked_out=self._locked_out(c),
            starting=now - c.started_at < START_GRACE,
        )
        c.overtemp_stage, c.guard = g.overtemp_stage, g
        return g

    def _top_needed(self, inputs: Inputs) -> float | None:
        """°C the tank's top must hold for the loads now: their supply plus the approach."""
        config = self.site.config
        supply = required_supply(config.loads, inputs.plant.outdoor)
        return None if supply is None else supply + config.plant.heat_exchanger.approach

    def _reset(self, inputs: Inputs, now: float) -> float:
        """The outlet setpoint in force this cycle (setpoints.py)."""
        plant = inputs.plant
        short = now - self.backup_fired_at < SHORT_HOLD
        last = self.last_plan
        plentiful = store_hot = False
        if last is not None and last.load is not None:
            capacity = sum(
                c.limits.heat_capture * c.limits.nominal_power
                for c in self._caissons
                if c.initialised and not self._locked_out(c)
            )
            full = last.soc is not None and last.soc >= self.plant_limits.tank_reserve
            surplus = last.mode in (Mode.REJECT, Mode.SHED)
            plentiful = surplus or (full and last.load < PLENTIFUL_SHARE * capacity)
            store_hot = (
                self.plant_limits.policy is Policy.COMPUTE_PRIORITY
                and last.peak_due
                and last.mode in (Mode.STORE, Mode.REJECT)
            )
        running = (
            [(c.limits, last.caps.get(c.index, 0.0)) for c in self._caissons if c.running]
            if last is not None
            else []
        )
        setpoints = self.site.config.setpoints
        reset = ResetInputs(
            nominal=self.plant_limits.outlet_setpoint,
            band_low=setpoints.supply_low,
            band_high=setpoints.supply_high,
            top_needed=self._top_needed(inputs),
            plant_return=plant.ret,
            short=short,
            plentiful=plentiful,
            chip_margin=self.site.config.control.chip_margin,
            store_hot=store_hot,
        )
        return outlet_setpoint(reset, running)

    def _candidate(self, c: _Caisson, inputs: Inputs, g: Guard) -> Candidate:
        limits, i = c.limits, inputs.caissons[c.index]
        cap_max = g.cap_max
        if i.available_power is not None:
            cap_max = min(cap_max, i.available_power * JOB_HEADROOM)
        peak_power = cap_max
        plant_return = inputs.plant.ret
        if plant_return is not None:  # what its pump can carry to the outlet setpoint
            cap_max = min(cap_max, carried_power(limits, self.outlet_setpoint, plant_return))
        if c.loading_unit or plant_return is None:
            minimum = MIN_LOAD * limits.nominal_power
        else:  # without a unit: the power that lifts the return to the setpoint at minimum flow
            rise = max(self.outlet_setpoint - plant_return, 0.0)
            flow = limits.min_speed * limits.max_flow
            minimum = VOLUMETRIC_HEAT * flow * rise / limits.heat_capture
        return Candidate(c.index, cap_max, minimum, limits.heat_capture, i.outlet, peak_power)

    def _stage(
        self,
        the_plan: Plan,
        inputs: Inputs,
        stageable: list[_Caisson],
        guards: list[Guard],
        candidates: list[Candidate],
        now: float,
        dt: float,
    ) -> Plan:
        """Which caissons run (staging.py) and their caps: dispatch's target shared among them;
        one warming up (since its start, or far below the setpoint) at full power."""
        ready = {c.index for c in stageable}
        capacity = {c.index: guards[c.index].cap_max for c in stageable}
        capacity.update({k.index: k.cap_max for k in candidates})
        units = [
            Unit(
                c.index,
                c.index in ready,
                capacity.get(c.index, 0.0),
                inputs.caissons[c.index].standby is False,
            )
            for c in self._caissons
            if c.initialised
        ]
        times = self.site.config.control.staging
        staged = stage(self.staging, units, the_plan.it_target, now, dt, times)
        self.staging = staged.state
        running = [k for k in candidates if k.index in staged.running]
        caps = share_caps(the_plan.it_target, running)
        for k in running:
            c = self._caissons[k.index]
            outlet = inputs.caissons[k.index].outlet
            if outlet is not None and outlet >= self.outlet_setpoint - JOIN_MARGIN:
                c.joined = True
            cold = outlet is not None and outlet < self.outlet_setpoint - WARM_MARGIN
            if caps[k.index] > 0.0 and (cold or not c.joined):
                caps[k.index] = k.cap_max
        return replace(the_plan, caps=caps, running=staged.running)

    def _caisson_proposals(
        self,
        c: _Caisson,
        g: Guard,
        inputs: CaissonInputs,
        the_plan: Plan,
        dt: float,
        plant_return: float | None,
    ) -> list[Proposal]:
        limits, out = c.limits, []
        pump, cap_ref, compute_ref = (
            c.ref(Skid.PUMP_SPEED_CMD),
            c.ref(Skid.IT_CAP_CMD),
            c.compute_ref(Compute.POWER_CAP),
        )
        remote = inputs.plc_mode == REMOTE
        staged = c.index in the_plan.running
        c.running = c.index in the_plan.caps and the_plan.caps[c.index] > 0.0
        if inputs.standby is not None:
            c.standing_by = inputs.standby
        # Inputs lost: the PLC's safe speed and cap, but a caisson that stood by stays stopped
        # and without power (its servers idle, nothing to cool; the PLC's own local safe mode,
        # should the link go too, starts it on its own).
        resting = g.safe_state and c.standing_by
        safe = g.safe_state and not resting
        automatic = c.mode is ControlMode.AUTO and not g.safe_state
        # --- standby: a caisson staging does not run stands by (its PLC stops the pump once the
        # servers idle); a caisson asked to start has its flow proven before any IT power.
        standby_ref = c.ref(Skid.STANDBY_REQUEST)
        if automatic:
            standby = not staged
        elif c.mode is ControlMode.MANUAL and not g.safe_state:
            standby = bool(self._commanded(standby_ref))
        else:  # inputs lost, or maintenance (stopped once idle)
            standby = resting or (c.mode is ControlMode.MAINTENANCE and not g.safe_state)
        if staged and not c.staged:
            c.started_at = self._last_now if self._last_now is not None else 0.0
            c.joined = False
        c.staged = staged
        out.append(Proposal(standby_ref, float(standby), Source.AUTO, reason="staging"))
        # --- pump speed
        held: float | None = None
        if resting:
            held = limits.min_speed
        elif safe:
            held = limits.safe_speed
        elif pump in self.overrides:
            held = self.overrides[pump].value
        elif c.mode is ControlMode.MANUAL:
            held = self._commanded(pump)
        elif not remote:
            held = inputs.pump_speed if inputs.pump_speed is not None else limits.safe_speed
        elif not staged or inputs.standby or (c.loading_unit and not c.joined):
            # What the PLC runs it at until the pump stops or proves; and while a loading unit
            # recirculates to warm the caisson up (its pump carries nothing to the header yet)
            held = limits.min_speed
        assert c.loop is not None
        if inputs.outlet is not None and inputs.inlet is not None:
            c.loop = loop_step(
                limits,
                c.loop,
                outlet=inputs.outlet,
                inlet=self._loop_inlet(c, inputs, plant_return),
                it_power=inputs.it_power or 0.0,
                speed=inputs.pump_speed,
                target=self.outlet_setpoint,
                ramp_rate=self.site.config.control.setpoint_ramp / 60.0,
                dt=dt,
                floor=g.pump_min,
                held=held,
            )
        out.append(Proposal(pump, c.loop.pid.output, Source.AUTO, reason="outlet loop"))
        if safe:
            out.append(Proposal(pump, limits.safe_speed, Source.INTERLOCK, reason="inputs lost"))
        elif g.pump_min > limits.min_speed:
            reason = ",".join(sorted(g.active))
            out.append(Proposal(pump, g.pump_min, Source.INTERLOCK, Bound.AT_LEAST, reason))
        # --- the loading unit: shut (recirculating) until the caisson is hot, then the inlet
        # that lets the pump run near its minimum speed
        if c.loading_unit:
            setpoint = c.loop.setpoint
            if c.joined:
                setpoint = inlet_setpoint(limits, setpoint, inputs.it_power or 0.0)
            else:
                setpoint -= JOIN_MARGIN
            out.append(
                Proposal(c.ref(Skid.INLET_SETPOINT), setpoint, Source.AUTO, reason="loading unit")
            )
        # --- caps
        safe_cap = 0.0 if resting else limits.safe_cap
        if g.safe_state:
            cap = safe_cap
        elif not remote:
            cap = limits.safe_cap  # what the PLC applies until it grants remote mode
        elif c.mode is ControlMode.MANUAL:
            cap = self._commanded(cap_ref)
        else:
            cap = the_plan.caps.get(c.index, 0.0)
        for ref in (cap_ref, compute_ref) if c.compute_initialised else (cap_ref,):
            out.append(Proposal(ref, cap, Source.AUTO, reason=the_plan.mode.value))
            if g.safe_state:
                out.append(Proposal(ref, safe_cap, Source.INTERLOCK, reason="inputs lost"))
            elif g.cap_max < limits.nominal_power:
                reason = ",".join(sorted(g.active))
                out.append(Proposal(ref, g.cap_max, Source.INTERLOCK, Bound.AT_MOST, reason))
        out.append(Proposal(c.ref(Skid.LEASE_TIMEOUT), c.lease_timeout, Source.AUTO))
        return out

    def _loop_inlet(self, c: _Caisson, inputs: CaissonInputs, plant_return: float | None) -> float:
        """The inlet the outlet loop's feedforward plans on. With a loading unit: the inlet its
        valve holds once the caisson has joined the header, its running setpoint, or the header's
        return if that is warmer (the valve then fully open); not the inlet of the moment, which
        while the valve moves or recirculates is neither, and would ask the pump for full flow."""
        assert inputs.inlet is not None
        if not c.loading_unit or c.loop is None:
            return inputs.inlet
        running = inlet_setpoint(c.limits, c.loop.setpoint, inputs.it_power or 0.0)
        return max(running, plant_return if plant_return is not None else inputs.inlet)

    def _remote_request(
        self, c: _Caisson, g: Guard, inputs: CaissonInputs, now: float
    ) -> list[Write]:
        # A locked-out caisson is asked back too: only in remote mode does it hold cap 0 and stand
        # by (in local safe mode its PLC would run it at its safe cap).
        blocked = g.safe_state or g.active & {Interlock.LEAK, Interlock.PLC_TRIP}
        if (
            inputs.plc_mode == REMOTE
            or blocked
            or now - c.remote_requested_at < REMOTE_REQUEST_EVERY
        ):
            return []
        c.remote_requested_at = now
        return [Write(c.ref(Skid.REMOTE_REQUEST), True, 1.0, False, Source.AUTO, "remote", False)]

    def _plant_proposals(self, the_plan: Plan) -> list[Proposal]:
        plant = self.site.config.plant.skid
        reason = the_plan.mode.value
        return [
            Proposal(
                PointRef(plant, PlantPoint.DRY_COOLER_VALVE_CMD),
                the_plan.dry_cooler,
                Source.AUTO,
                reason=reason,
            ),
            Proposal(
                PointRef(plant, PlantPoint.DRY_COOLER_FAN_CMD),
                the_plan.dry_cooler,
                Source.AUTO,
                reason=reason,
            ),
            Proposal(PointRef(plant, PlantPoint.BACKUP_ENABLE), 1.0, Source.AUTO, reason=reason),
            # The hottest return the caissons take: the PLC's thermostat then acts only as their
            # safety, and dispatch (shedding, the outlet reset) keeps the return below it.
            Proposal(
                PointRef(plant, PlantPoint.RETURN_LIMIT_CMD),
                self.plant_limits.hard_return_limit,
                Source.AUTO,
                reason="no dumping while gas burns",
            ),
        ]

    def _commanded(self, ref: PointRef) -> float:
        output = self.memory.get(ref)
        assert output is not None  # set at initialisation
        assert output.commanded is not None
        return output.commanded

    def _frozen(self, proposals: list[Proposal]) -> list[Proposal]:
        """The plant in manual: the automatic caps and plant outputs hold their last commanded
        values; the pumps' loops and every interlock go on."""
        frozen = {PointRef(self.site.config.plant.skid, p) for p in PLANT_OUTPUTS}
        frozen |= {ref for ref in self.specs if ref.point in (Skid.IT_CAP_CMD, Compute.POWER_CAP)}
        return [
            self._held(p) if p.ref in frozen and p.source is Source.AUTO else p for p in proposals
        ]

    def _held(self, proposal: Proposal) -> Proposal:
        output = self.memory.get(proposal.ref)
        if output is None or output.commanded is None:
            return proposal  # never commanded yet: nothing to hold
        return replace(proposal, value=output.commanded, reason="plant manual")

    def _operator_proposals(self) -> Iterable[Proposal]:
        for ref, override in self.overrides.items():
            yield Proposal(ref, override.value, Source.OPERATOR, reason=f"operator {override.who}")

    def _heartbeats(self) -> list[Write]:
        """One heartbeat per PLC that watches it, every cycle, once the PLC has been read."""
        self.heartbeat = ((self.heartbeat or 0) + 1) % HEARTBEAT_MODULO
        devices = [c.skid for c in self._caissons if c.initialised]
        if self._plant_initialised:
            devices.append(self.site.config.plant.skid)
        return [
            Write(
                PointRef(d, Skid.HEARTBEAT),
                self.heartbeat,
                float(self.heartbeat),
                False,
                Source.AUTO,
                "heartbeat",
                False,
            )
            for d in devices
        ]

    def _status(self, inputs: Inputs, the_plan: Plan) -> PlantStatus:
        caissons = []
        run_seconds = self.staging.run_seconds
        for c in self._caissons:
            i = inputs.caissons[c.index]
            pump = self.memory.get(c.ref(Skid.PUMP_SPEED_CMD))
            cap = self.memory.get(c.ref(Skid.IT_CAP_CMD))
            inlet = self.memory.get(c.ref(Skid.INLET_SETPOINT))
            caissons.append(
                CaissonStatus(
                    id=c.id,
                    initialised=c.initialised,
                    plc_mode=i.plc_mode,
                    interlocks=c.guard.active if c.guard else frozenset(),
                    running=c.running,
                    setpoint=c.loop.setpoint if c.loop else None,
                    outlet=i.outlet,
                    inlet=i.inlet,
                    flow=i.flow,
                    it_power=i.it_power,
                    pump_speed=pump.commanded if pump else None,
                    cap=cap.commanded if cap else None,
                    locked_out=self._locked_out(c),
                    mode=c.mode,
                    staged=c.index in the_plan.running,
                    standby=i.standby,
                    inlet_setpoint=inlet.commanded if inlet else None,
                    run_seconds=run_seconds.get(c.index),
                    outlet_estimated=c.outlet_watch.frozen,
                    outlet_estimate=c.outlet_watch.estimate,
                )
            )
        return PlantStatus(
            mode=the_plan.mode,
            it_target=the_plan.it_target,
            soc=the_plan.soc,
            load=the_plan.load,
            dry_cooler=the_plan.dry_cooler,
            caissons=tuple(caissons),
            control_mode=self.plant_mode,
            outlet_setpoint=self.outlet_setpoint,
            return_limit=self.plant_limits.hard_return_limit,
            day_peak=self.dispatch.peaks.peak,
        )

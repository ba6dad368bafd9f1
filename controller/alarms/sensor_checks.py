"""Sensor plausibility alarms: a caisson sensor whose reading is GOOD but wrong. Pure.

A sensor can fail without leaving its range or sending a fault code: it freezes (a hung
transmitter, a PLC input card holding its last value) or it drifts (a fouled or ageing element).
The limit alarms cannot see it, and the outlet loop, the PLC's low-flow and over-temperature
trips would act on the false value. The caisson's own physics gives each reading a reference:

- Frozen (`<caisson>.<sensor>_sensor_stuck`): a reading that has not moved by more than
  `epsilon` for at least `window`, while its reference moved by `moved` or more and stays
  moved. The reference is what makes it a fault: a caisson held steady (or idle) has genuinely
  steady readings, and over Modbus a 0.1 °C register shows such a signal as exactly constant for
  hours (the simulators add no noise), so a frozen value alone proves nothing. The references:
  - inlet: the plant return header, the very water that reaches the inlet one return pipe later;
    with a loading unit, that return mixed with the caisson's outlet in the shares its valve's
    position says (the valve's feedback: the PLC's own loop moves it, so a stuck inlet sensor
    that fools that loop shows as a mix that moves while the reading does not);
  - outlet: the outlet the heat balance asks for, inlet + captured IT power / (ρ·c_p·flow): while
    the outlet is steady no heat goes into the caisson's storage, and this is the outlet exactly;
  - flow: the pump's speed feedback times the pump's full flow (flow ∝ speed).
  Readings are judged only while water flows (at least half the flow of the pump's minimum
  speed): stagnant water is steady on its own, and a stopped or isolated pump reads no flow.
- Mismatch (`<caisson>.sensor_mismatch`): the caisson's heat balance does not close. Over the
  last `window` the heat the servers put into the water must leave with it or stay in the
  caisson:  heat_capture · P_IT = ρ·c_p · flow · (T_out − T_in) + C · dT_out/dt.
  Averaged over the window (the storage term is exact over it: C · ΔT_out / window), the two
  sides agree within a few hundred watts on a healthy caisson, idle or running, steady or not;
  a drifting inlet, outlet or flow sensor (or IT power meter) makes them differ by
  ρ·c_p·flow·error, ≈ 0.8–2 kW per kelvin at 12–30 L/min.

Like conditions.py: a missing (STALE, BAD) input keeps the state and restarts a pending delay;
times are monotonic seconds, passed in.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Final

from controller.alarms.conditions import DiscreteCondition
from controller.alarms.engine import AlarmDefinition
from controller.alarms.model import AlarmId, Priority
from controller.config.loader import LoadedSite
from controller.config.roles import CaissonSkidPoint as Skid
from controller.config.roles import PlantSkidPoint as PlantPoint
from controller.config.units import point_unit_factor
from controller.fieldbus.image import PointRef, Quality, Sample
from controller.water import VOLUMETRIC_HEAT

# Frozen readings. EPSILON: half the coarsest register step of the maps (0.1 °C, 0.1 L/min), so
# any change of a register is a move. The reference's start is taken SETTLE after the freeze;
# the reading must stay frozen for WINDOW and the reference stay moved for ON_DELAY (longer than
# the return pipe's transport delay at the lowest flow and the caisson's 1–3 min time constant).
TEMPERATURE_EPSILON: Final = 0.05  # K
FLOW_EPSILON: Final = 0.05 / 60000  # m³/s (0.05 L/min)
FROZEN_SETTLE: Final = 300.0  # s
FROZEN_WINDOW: Final = 600.0  # s
FROZEN_ON_DELAY: Final = 300.0  # s
INLET_MOVED: Final = 0.5  # K the plant return moved
OUTLET_MOVED: Final = 1.5  # K the balance's outlet moved (it carries the other sensors' noise)
PUMP_MOVED: Final = 0.1  # pump speed moved by 10 % of full speed: flow by 10 % of its maximum
REFERENCE_SMOOTHING: Final = 60.0  # s, time constant of the references' low-pass filter
# Heat balance: averaged over BALANCE_WINDOW, off by more than BALANCE_ABSOLUTE plus
# BALANCE_RELATIVE of the captured heat for BALANCE_ON_DELAY. The absolute part covers the heat
# the balance leaves out (pump heat, ≤ 250 W; losses of a warm cabinet to its room) and the
# sensors' class accuracy at low ΔT; the relative part an uncertain heat capture share (±5 %)
# and the flow meter's accuracy.
BALANCE_WINDOW: Final = 600.0  # s
BALANCE_ON_DELAY: Final = 600.0  # s
BALANCE_OFF_DELAY: Final = 300.0  # s
BALANCE_ABSOLUTE: Final = 1500.0  # W
BALANCE_RELATIVE: Final = 0.1
# Water flows past the sensors: at least half the flow of the pump at its minimum speed.
FLOWING_SHARE: Final = 0.5


class FrozenCheck:
    """Active when a reading has stayed within `epsilon` of where it froze for at least `window`
    while its low-passed reference has moved by `moved` or more from where it stood `settle`
    after the freeze, for `on_delay`; clear as soon as the reading moves.

    The reference is taken `settle` after the freeze, not at it: a reading that stops moving at
    the end of a ramp has a reference still catching up (its filter, the return pipe's delay, the
    caisson's time constant). A reference that moves and comes back (a transient) moves a healthy
    reading too, well within `on_delay`. Without evidence either way (a frozen reading whose
    reference has not moved enough, a missing value) the state is kept: a stuck sensor stays
    stuck until its reading moves."""

    def __init__(
        self,
        epsilon: float,
        moved: float,
        window: float = FROZEN_WINDOW,
        on_delay: float = FROZEN_ON_DELAY,
        settle: float = FROZEN_SETTLE,
        smoothing: float = REFERENCE_SMOOTHING,
    ) -> None:
        if epsilon <= 0 or moved <= 0 or window <= 0 or not 0 <= settle <= window:
            raise ValueError(
                f"epsilon, moved and window must be positive and settle within the window, got "
                f"{epsilon}, {moved}, {window}, {settle}"
            )
        if smoothing < 0:
            raise ValueError(f"smoothing must not be negative, got {smoothing}")
        self.epsilon, self.moved, self.window = epsilon, moved, window
        self.settle, self.smoothing = settle, smoothing
        self._debounce = DiscreteCondition(on_delay=on_delay)
        self._anchor: float | None = None  # the value the reading has stayed at
        self._since = 0.0  # since when
        self._base: float | None = None  # the filtered reference `settle` after `_since`
        self._reference: float | None = None  # the filtered reference
        self._last = 0.0  # time of the last filtered reference

    @property
    def active(self) -> bool:
        return self._debounce.active

    def evaluate(self, value: float | None, reference: float | None, now: float) -> bool:
        if value is None or reference is None:
            self._anchor = self._reference = None  # a new run, once the values are back
            return self._debounce.evaluate(None, now)
        filtered = self._filter(reference, now)
        if self._anchor is None or abs(value - self._anchor) > self.epsilon:
            moved = self._anchor is not None
            self._anchor, self._since, self._base = value, now, None
            return self._debounce.evaluate(False if moved else None, now)
        if self._base is None:
            if now - self._since >= self.settle:
                self._base = filtered
            return self._debounce.evaluate(None, now)
        frozen = now - self._since >= self.window and abs(filtered - self._base) >= self.moved
        return self._debounce.evaluate(True if frozen else None, now)

    def _filter(self, reference: float, now: float) -> float:
        if self._reference is None or self.smoothing == 0:
            self._reference = reference
        else:
            share = min((now - self._last) / self.smoothing, 1.0)
            self._reference += (reference - self._reference) * share
        self._last = now
        return self._reference


class BalanceCheck:
    """Active while the caisson's heat balance over the last `window` is off by more than
    `absolute` + `relative` × the captured heat (the module's docstring has the physics)."""

    def __init__(
        self,
        heat_capture: float,
        capacity: float,
        window: float = BALANCE_WINDOW,
        absolute: float = BALANCE_ABSOLUTE,
        relative: float = BALANCE_RELATIVE,
        on_delay: float = BALANCE_ON_DELAY,
        off_delay: float = BALANCE_OFF_DELAY,
    ) -> None:
        if not 0 < heat_capture <= 1 or capacity <= 0 or window <= 0 or absolute <= 0:
            raise ValueError(
                f"heat capture in (0, 1], capacity, window and absolute tolerance positive, "
                f"got {heat_capture}, {capacity}, {window}, {absolute}"
            )
        self.heat_capture, self.capacity, self.window = heat_capture, capacity, window
        self.absolute, self.relative = absolute, relative
        self._debounce = DiscreteCondition(on_delay=on_delay, off_delay=off_delay)
        # (time, ∫ captured heat dt, ∫ carried heat dt, outlet, captured, carried), oldest first
        self._history: deque[tuple[float, float, float, float, float, float]] = deque()
        self.residual: float | None = None  # W, the last full window's (for tests and tuning)

    @property
    def active(self) -> bool:
        return self._debounce.active

    def evaluate(
        self,
        inlet: float | None,
        outlet: float | None,
        flow: float | None,
        it_power: float | None,
        now: float,
    ) -> bool:
        """inlet, outlet °C; flow m³/s; it_power W. None: not valid (or water not flowing)."""
        history = self._history
        if inlet is None or outlet is None or flow is None or it_power is None:
            history.clear()  # the integrals restart once the values are back
            self.residual = None
            return self._debounce.evaluate(None, now)
        captured = self.heat_capture * it_power
        carried = VOLUMETRIC_HEAT * flow * (outlet - inlet)
        if history:  # left rectangles: each scan's heat flows hold until the next scan
            then, heat_in, heat_out, _, last_captured, last_carried = history[-1]
            heat_in += last_captured * (now - then)
            heat_out += last_carried * (now - then)
        else:
            heat_in = heat_out = 0.0
        history.append((now, heat_in, heat_out, outlet, captured, carried))
        while len(history) >= 2 and history[1][0] <= now - self.window:
            history.popleft()
        base_time, base_in, base_out, base_outlet, _, _ = history[0]
        span = now - base_time
        if span < self.window:
            return self._debounce.evaluate(None, now)
        generated = (heat_in - base_in) / span
        stored = self.capacity * (outlet - base_outlet) / span
        self.residual = generated - (heat_out - base_out) / span - stored
        wrong = abs(self.residual) > self.absolute + self.relative * max(generated, 0.0)
        return self._debounce.evaluate(wrong, now)


@dataclass(frozen=True)
class _Caisson:
    id: str
    refs: Mapping[Skid, tuple[PointRef, float]]  # point and unit factor to SI
    min_flow: float  # m³/s: below it the water does not flow past the sensors
    max_flow: float  # m³/s at full pump speed
    inlet: FrozenCheck
    outlet: FrozenCheck
    flow: FrozenCheck
    balance: BalanceCheck


_READ: Final = (
    Skid.INLET_TEMP,
    Skid.OUTLET_TEMP,
    Skid.FLOW,
    Skid.PUMP_SPEED_FEEDBACK,
    Skid.IT_POWER,
    Skid.MIXING_VALVE,
)


class SensorChecks:
    """The sensor alarms of a site's caissons, fed each scan with the snapshot."""

    def __init__(self, site: LoadedSite) -> None:
        config = site.config
        plant = config.plant.skid
        self._return = _ref(site, plant, PlantPoint.PLANT_RETURN_TEMP)
        self._caissons: list[_Caisson] = []
        for caisson in config.caissons:
            kind = config.caisson_type(caisson)
            self._caissons.append(
                _Caisson(
                    id=caisson.id,
                    refs={point: _ref(site, caisson.skid, point) for point in _READ},
                    min_flow=FLOWING_SHARE * kind.pump.min_speed * kind.pump.max_flow,
                    max_flow=kind.pump.max_flow,
                    inlet=FrozenCheck(TEMPERATURE_EPSILON, INLET_MOVED),
                    outlet=FrozenCheck(TEMPERATURE_EPSILON, OUTLET_MOVED),
                    flow=FrozenCheck(FLOW_EPSILON, PUMP_MOVED * kind.pump.max_flow),
                    balance=BalanceCheck(kind.heat_capture, kind.thermal_capacity),
                )
            )
        self.definitions = [d for c in self._caissons for d in _definitions(c.id)]

    def conditions(self, snapshot: Mapping[PointRef, Sample], now: float) -> dict[AlarmId, bool]:
        """Each sensor alarm's condition after this scan (`now`: monotonic seconds)."""
        plant_return = _read(snapshot, self._return)
        active: dict[AlarmId, bool] = {}
        for c in self._caissons:
            inlet, outlet, flow, speed, power, valve = (_read(snapshot, c.refs[p]) for p in _READ)
            moving = flow if flow is not None and flow >= c.min_flow else None  # None: standing
            expected = None  # the outlet the heat balance asks for
            if moving is not None and inlet is not None and power is not None:
                expected = inlet + c.balance.heat_capture * power / (VOLUMETRIC_HEAT * moving)
            mixed = plant_return  # what reaches the inlet: the return, through any loading unit
            if plant_return is not None and valve is not None and valve < 1.0:
                mixed = None if outlet is None else valve * plant_return + (1 - valve) * outlet
            active[AlarmId(c.id, "inlet_sensor_stuck")] = c.inlet.evaluate(
                None if moving is None else inlet, mixed, now
            )
            active[AlarmId(c.id, "outlet_sensor_stuck")] = c.outlet.evaluate(outlet, expected, now)
            active[AlarmId(c.id, "flow_sensor_stuck")] = c.flow.evaluate(
                moving, None if speed is None else speed * c.max_flow, now
            )
            active[AlarmId(c.id, "sensor_mismatch")] = c.balance.evaluate(
                inlet, outlet, moving, power, now
            )
        return active

    def suppressed(self, locked_out: Collection[str]) -> dict[AlarmId, str]:
        """Suppressed by design, and why: a caisson in maintenance lockout raises nothing."""
        return {
            d.id: f"{d.id.source} in maintenance lockout"
            for d in self.definitions
            if d.id.source in locked_out
        }


def _definitions(caisson: str) -> list[AlarmDefinition]:
    """Medium where a PLC protection reads the sensor (the outlet: over-temperature trips; the
    flow: the low-flow trip), low where only control quality suffers."""
    minutes = f"{(FROZEN_WINDOW + FROZEN_ON_DELAY) / 60:.0f} min"
    return [
        AlarmDefinition(
            AlarmId(caisson, "outlet_sensor_stuck"),
            Priority.MEDIUM,
            f"{caisson}: outlet temperature frozen for {minutes} while the caisson's heat balance "
            "says it moved; the over-temperature trips are blind: check the outlet sensor",
        ),
        AlarmDefinition(
            AlarmId(caisson, "flow_sensor_stuck"),
            Priority.MEDIUM,
            f"{caisson}: flow reading frozen for {minutes} while the pump speed changed; the "
            "low-flow trip is blind: check the flow meter and its wiring",
        ),
        AlarmDefinition(
            AlarmId(caisson, "inlet_sensor_stuck"),
            Priority.LOW,
            f"{caisson}: inlet temperature frozen for {minutes} while the plant return moved; "
            "check the inlet sensor",
        ),
        AlarmDefinition(
            AlarmId(caisson, "sensor_mismatch"),
            Priority.LOW,
            f"{caisson}: heat balance off for {BALANCE_ON_DELAY / 60:.0f} min (IT power, flow "
            "and inlet/outlet temperatures disagree); check the temperature sensors, the flow "
            "meter and the IT power reading",
        ),
    ]


def _ref(site: LoadedSite, device: str, point: str) -> tuple[PointRef, float]:
    unit = site.device_map(device).point(point).unit
    return PointRef(device, point), point_unit_factor(unit)


def _read(snapshot: Mapping[PointRef, Sample], ref: tuple[PointRef, float]) -> float | None:
    """The SI value of a GOOD numeric sample, else None."""
    sample = snapshot.get(ref[0])
    if sample is None or sample.quality is not Quality.GOOD:
        return None
    value = sample.value
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) * ref[1]

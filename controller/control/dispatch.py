"""Plant dispatch: the plant's mode, total IT power, its share per caisson, the dry cooler. Pure.

Heat the site takes is measured on the building side (flow × ΔT of the building circuit, backup
included: that is the demand), filtered; when those meters are unusable the heating curve and the
configured loads stand in. The buffer tank's state of charge (SoC) is the share of its layers
between the building's return and the outlet setpoint.

Modes:
- HEAT (heat-priority sites): compute follows heat: IT power = load / η, plus what brings the tank
  back to its reserve SoC within half an hour.
- STORE: charge the tank to its limit (compute-priority sites whenever it is not full; heat-priority
  sites when the day's load runs close to the caissons' capacity, so that the tank covers peaks
  instead of the backup boiler).
- REJECT (compute-priority sites with a full tank): compute flat out, the dry cooler takes the
  surplus before the plant PLC's own thermostat has to.
- SHED: the heat cannot go anywhere (return header nearing the dry cooler's limit with the cooler
  flat out or not allowed): a shed limit on total IT power falls until the return cools.
- SAFE: the plant's own measurements are unusable: every caisson at its PLC's safe cap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from controller.config.site import Loads, Policy
from controller.control.inputs import PlantInputs
from controller.water import VOLUMETRIC_HEAT

LOAD_FILTER = 300.0  # s: time constant of the measured load
TREND_FILTER = 4 * 3600.0  # s: the day's load trend (STORE on heat-priority sites)
WARM_MARGIN = 3.0  # K: an outlet this far below the setpoint is warming up (full power)
CHARGE_TIME = 1800.0  # s: a SoC error is made good over this
STORE_SHARE = 0.7  # heat-priority: store when the trend exceeds this share of capacity
FULL_MARGIN = 2.0  # K: the tank is full when its bottom is this close to the return limit
SHED_RATE = 0.002  # share of capacity per second the shed limit moves
SOC_ON, SOC_OFF = 0.2, 0.3  # below the plant minimum: charge from reserve − ON to reserve + OFF
REJECT_MARGIN = 3.0  # K below the plant PLC's return limit the supervisor's cooling aims
COOLER_GAIN = 0.001  # per K·s: integral gain of the dry cooler on the return temperature
REFERENCE_RETURN = 40.0  # °C: the SoC's empty level when the building return is unknown


class Mode(StrEnum):
    HEAT = "heat"
    STORE = "store"
    REJECT = "reject"
    SHED = "shed"
    SAFE = "safe"


@dataclass(frozen=True)
class PlantLimits:
    tank_volume: float  # m³
    return_limit: float  # °C: the plant PLC cools the caissons' return above this
    outlet_setpoint: float  # °C
    policy: Policy
    tank_reserve: float  # SoC held in HEAT mode


@dataclass(frozen=True)
class DispatchState:
    load: float | None = None  # W, filtered
    trend: float | None = None  # W, the day's trend
    shed_limit: float | None = None  # W of IT power, None: not shedding
    mode: Mode = Mode.HEAT
    cooler: float = 0.0  # the dry cooler's valve and fan command
    charging: bool = True  # below the plant minimum: charging the tank, or letting it discharge


@dataclass(frozen=True)
class Candidate:
    """A caisson dispatch may give load to."""

    index: int
    cap_max: float  # W: interlocks, chips, nominal and the jobs' available power
    minimum: float  # W: below this it cannot reach the setpoint at minimum pump speed
    heat_capture: float
    outlet: float | None = None  # °C


@dataclass(frozen=True)
class Plan:
    mode: Mode
    it_target: float  # W, total
    caps: dict[int, float] = field(default_factory=dict)  # W per candidate caisson index
    dry_cooler: float = 0.0  # valve and fan, 0..1
    soc: float | None = None
    load: float | None = None


def state_of_charge(tank: Sequence[float | None], empty: float, full: float) -> float | None:
    layers = [t for t in tank if t is not None]
    if not layers or full <= empty:
        return None
    return sum(min(max((t - empty) / (full - empty), 0.0), 1.0) for t in layers) / len(layers)


def measured_load(plant: PlantInputs) -> float | None:
    """W the building circuit takes now (tank heat and backup), or None."""
    if None in (plant.building_flow, plant.building_supply, plant.building_return):
        return None
    assert plant.building_flow is not None
    assert plant.building_supply is not None
    assert plant.building_return is not None
    return max(
        VOLUMETRIC_HEAT * plant.building_flow * (plant.building_supply - plant.building_return), 0.0
    )


def configured_load(loads: Loads, outdoor: float | None) -> float:
    """W the site's loads ask on average at this outdoor temperature (daily means, no profile):
    the stand-in when the building's meters are unusable."""
    total = 0.0
    out = 0.0 if outdoor is None else outdoor
    if loads.space_heating is not None:
        s = loads.space_heating
        share = (s.heating_limit - out) / (s.heating_limit - s.design_outdoor)
        total += s.design_load * min(max(share, 0.0), 1.5)
    if loads.warehouse is not None:
        w = loads.warehouse
        balance = w.occupied_setpoint - w.internal_gains
        share = (balance - out) / (balance - w.design_outdoor)
        total += w.design_load * min(max(share, 0.0), 1.5)
    if loads.hot_water is not None:
        total += loads.hot_water.daily_energy / 86400.0
    if loads.pool is not None:
        total += loads.pool.evaporation_loss
    return total


def _filter(previous: float | None, value: float, dt: float, time_constant: float) -> float:
    if previous is None:
        return value
    return previous + dt / (time_constant + dt) * (value - previous)


def select_mode(
    limits: PlantLimits,
    *,
    plant_ok: bool,
    tank_full: bool,
    trend: float,
    capacity_heat: float,
    shedding: bool,
) -> Mode:
    if not plant_ok:
        return Mode.SAFE
    if shedding:
        return Mode.SHED
    if limits.policy is Policy.COMPUTE_PRIORITY:
        return Mode.REJECT if tank_full else Mode.STORE
    if trend >= STORE_SHARE * capacity_heat and not tank_full:
        return Mode.STORE
    return Mode.HEAT


def dry_cooler_command(
    mode: Mode, plant_return: float | None, return_limit: float, previous: float, dt: float
) -> float:
    """Valve and fan (0..1), where the policy lets heat be rejected: integral action holding the
    caissons' return REJECT_MARGIN below the plant PLC's own limit, so that its thermostat never
    has to act. Integral only: the return answers the fan within a scan, and a proportional gain
    strong enough to matter would make that fast loop ring."""
    if mode not in (Mode.REJECT, Mode.SHED) or plant_return is None:
        return 0.0
    error = plant_return - (return_limit - REJECT_MARGIN)
    return min(max(previous + COOLER_GAIN * error * dt, 0.0), 1.0)


def plant_minimum(candidates: Sequence[Candidate]) -> float:
    """W of IT power below which the running caissons cannot hold the setpoint: every pump runs at
    least at its minimum speed (the PLC sees to it, idle or not), so at low power the supply header
    is set by the total power over the total minimum flow, however the power is shared."""
    return sum(c.minimum for c in candidates)


def share_caps(target: float, candidates: Sequence[Candidate]) -> dict[int, float]:
    """Caps per candidate for a total of `target` W: every candidate runs (an idle caisson's pump
    still circulates at minimum speed and dilutes the supply, so running fewer never helps it, and
    wear stays even), each first up to its minimum, the rest in proportion to headroom."""
    caps = {c.index: 0.0 for c in candidates}
    if target <= 0.0 or not candidates:
        return caps
    floors = [min(c.minimum, c.cap_max) for c in candidates]
    floor_total = sum(floors)
    if target <= floor_total:
        for c, floor in zip(candidates, floors, strict=True):
            caps[c.index] = target * floor / floor_total
        return caps
    rest = target - floor_total
    headroom = [c.cap_max - f for c, f in zip(candidates, floors, strict=True)]
    room = sum(headroom)
    for c, floor, head in zip(candidates, floors, headroom, strict=True):
        caps[c.index] = floor + (min(rest, room) * head / room if room > 0 else 0.0)
    return caps


def plan(
    limits: PlantLimits,
    loads: Loads,
    state: DispatchState,
    plant: PlantInputs,
    candidates: Sequence[Candidate],
    dt: float,
) -> tuple[Plan, DispatchState]:
    """This cycle's plan and the state carried to the next."""
    tank_ok = any(t is not None for t in plant.tank)
    plant_ok = tank_ok and plant.ret is not None
    measured = measured_load(plant)
    load_now = measured if measured is not None else configured_load(loads, plant.outdoor)
    load = _filter(state.load, load_now, dt, LOAD_FILTER)
    trend = _filter(state.trend, load_now, dt, TREND_FILTER)
    capacity_it = sum(c.cap_max for c in candidates)
    minimum = plant_minimum(candidates)
    capture = (
        sum(c.heat_capture * c.cap_max for c in candidates) / capacity_it if capacity_it else 0.94
    )
    empty = plant.building_return if plant.building_return is not None else REFERENCE_RETURN
    empty = min(empty, limits.outlet_setpoint - 10.0)
    soc = state_of_charge(plant.tank, empty, limits.outlet_setpoint)
    bottom = next((t for t in reversed(plant.tank) if t is not None), None)
    supply_low = limits.outlet_setpoint - 4.0  # the tank's top must stay fit for hot water
    tank_full = (bottom is not None and bottom >= limits.return_limit - FULL_MARGIN) or (
        soc is not None and soc >= 0.97
    )
    hot_return = plant.ret is not None and plant.ret >= limits.return_limit - 1.0
    cool_return = plant.ret is None or plant.ret < limits.return_limit - 2.0

    # The shed limit: falls while the return is hot and the heat has nowhere to go, rises back
    # when it cools, and lets go once it is above what the plant would ask anyway.
    nowhere = limits.policy is Policy.HEAT_PRIORITY or state.mode in (Mode.REJECT, Mode.SHED)
    shed = state.shed_limit
    step = SHED_RATE * capacity_it * dt
    if hot_return and nowhere and plant_ok:
        shed = (capacity_it if shed is None else shed) - step
        shed = max(shed, 0.0)
    elif shed is not None and cool_return:
        shed += step
        if shed >= capacity_it:
            shed = None
    mode = select_mode(
        limits,
        plant_ok=plant_ok,
        tank_full=tank_full,
        trend=trend,
        capacity_heat=capacity_it * capture,
        shedding=shed is not None,
    )
    charging = state.charging
    if mode is Mode.SAFE:
        target = 0.0
    elif mode in (Mode.STORE, Mode.REJECT) and limits.policy is Policy.COMPUTE_PRIORITY:
        target = capacity_it
    else:
        reserve = 1.0 if mode is Mode.STORE else limits.tank_reserve
        heat = load
        if soc is not None:
            tank_heat = VOLUMETRIC_HEAT * limits.tank_volume * (limits.outlet_setpoint - empty)
            heat += (reserve - soc) * tank_heat / CHARGE_TIME
        if tank_full:
            heat = min(heat, load)
        target = max(heat, 0.0) / capture
        # Below the plant minimum the caissons cannot hold the setpoint: run at the minimum to
        # charge the tank, then stop and let it discharge (hysteresis on its state of charge;
        # and charging again before its top cools below what hot water needs). Few long cycles:
        # each start costs a couple of minutes of warm-up below the band.
        if target < minimum:
            top = plant.tank[0]
            if soc is None or soc <= reserve - SOC_ON or (top is not None and top < supply_low):
                charging = True
            elif tank_full or soc >= min(reserve + SOC_OFF, 0.95):
                charging = False
            target = minimum if charging else 0.0
        else:
            charging = True
    if target > 0.0 and any(
        c.outlet is not None and c.outlet < limits.outlet_setpoint - WARM_MARGIN for c in candidates
    ):
        target = capacity_it  # warm-up: full power brings the outlets into the band soonest
    if shed is not None:
        target = min(target, shed)
    target = min(target, capacity_it)
    if 0.0 < target < minimum and target < capacity_it:
        target = 0.0  # a trickle below the minimum would only send water below the band
    caps = share_caps(target, candidates) if mode is not Mode.SAFE else {}
    cooler = dry_cooler_command(mode, plant.ret, limits.return_limit, state.cooler, dt)
    new_state = replace(
        state,
        load=load,
        trend=trend,
        shed_limit=shed,
        mode=mode,
        charging=charging,
        cooler=cooler,
    )
    return Plan(mode, target, caps, cooler, soc, load), new_state

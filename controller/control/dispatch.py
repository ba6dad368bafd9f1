"""Plant dispatch: the plant's mode, total IT power, its share per running caisson, the dry
cooler. Pure.

Heat the site takes is measured on the building side (flow × ΔT of the building circuit, backup
included: that is the demand), filtered; when those meters are unusable the heating curve and the
configured loads stand in. The buffer tank's state of charge (SoC) is the share of its layers
between the building's return and the outlet setpoint.

Modes:
- HEAT (heat-priority sites): compute follows heat: IT power = load / η, plus what brings the tank
  back to its reserve SoC within half an hour.
- STORE: charge the tank to its limit (compute-priority sites whenever it is not full; heat-priority
  sites when the day's load runs close to the caissons' capacity, or its peak within the last day
  did, so that the tank covers peaks instead of the backup boiler; their tank is then charged as
  deep as the band allows).
- REJECT (compute-priority sites with a full tank): compute flat out, the dry cooler takes the
  surplus before the plant PLC's own thermostat has to.
- SHED: the heat cannot go anywhere (the caissons' return nearing the hottest they take at full
  flow): a shed limit on total IT power falls until the return cools.
- SAFE: the plant's own measurements are unusable: every caisson at its PLC's safe cap.

Below the smallest running caisson's minimum load the tank is charged at that minimum, then let
discharge (hysteresis on its SoC, and charging again before its top cools below what the loads
need). Gas must not burn while server heat is vented: the supervisor's own dry cooling stops while
the backup boiler fires, and the plant PLC's thermostat is given the hottest return the caissons
take (the supervisor's lease, `return_limit_lease`), so that it acts only as a safety.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from controller.config.site import Loads, Policy
from controller.control.inputs import PlantInputs
from controller.control.peak import PeakMemory
from controller.heating_curve import space_heating_ratio, warehouse_ratio
from controller.water import VOLUMETRIC_HEAT

LOAD_FILTER = 300.0  # s: time constant of the measured load
TREND_FILTER = 4 * 3600.0  # s: the day's load trend (STORE on heat-priority sites)
CHARGE_TIME = 1800.0  # s: a SoC error is made good over this
STORE_SHARE = 0.7  # heat-priority: store when the trend exceeds this share of capacity
STORE_LEAVE = 0.6  # ...until it falls below this share
# ...or when the last day's peak load exceeded this share of what the caissons give at a peak
# (the rest is their response: staging a caisson up takes minutes, the tank covers them)
PEAK_SHARE = 0.9
FULL_MARGIN = 2.0  # K: the tank is full when its bottom is this close to the return limit
FULL_SOC = 0.97  # ...or its state of charge this high
FULL_HYSTERESIS = 3.0  # K its bottom must cool by, and
SOC_HYSTERESIS = 0.1  # the state of charge fall by, before it counts as not full
SHED_RATE = 0.002  # share of capacity per second the shed limit moves
SOC_ON, SOC_OFF = 0.2, 0.3  # below the plant minimum: charge from reserve − ON to reserve + OFF
REJECT_MARGIN = 3.0  # K below the plant PLC's return limit the supervisor's cooling aims
COOLER_GAIN = 0.001  # per K·s: integral gain of the dry cooler on the return temperature
REFERENCE_RETURN = 40.0  # °C: the SoC's empty level when the building return is unknown
BACKUP_FIRING = 500.0  # W of backup heat that count as the backup boiler firing
HOT_RETURN_MARGIN = 1.0  # K below the hard return limit the shed limit starts falling
SHED_RELEASE = 1.0  # K below that the return must cool for the shed limit to rise again


class Mode(StrEnum):
    HEAT = "heat"
    STORE = "store"
    REJECT = "reject"
    SHED = "shed"
    SAFE = "safe"


@dataclass(frozen=True)
class PlantLimits:
    tank_volume: float  # m³
    return_limit: float  # °C: the plant PLC's own default; the supervisor's cooling stays below
    hard_return_limit: float  # °C: the hottest return the caissons take at full flow
    outlet_setpoint: float  # °C, the site's (nominal; the reset moves the one in force)
    policy: Policy
    tank_reserve: float  # SoC held in HEAT mode
    # °C of the tank's bottom at which it counts full while a heat-priority plant stores for a
    # peak: deeper than the usual mark, as deep as the caissons' return and the band allow.
    store_bottom: float


@dataclass(frozen=True)
class DispatchState:
    load: float | None = None  # W, filtered
    trend: float | None = None  # W, the day's trend
    measured: bool = False  # the filters hold measurements (not the configured stand-in)
    shed_limit: float | None = None  # W of IT power, None: not shedding
    mode: Mode = Mode.HEAT
    cooler: float = 0.0  # the dry cooler's valve and fan command
    charging: bool = True  # below the plant minimum: charging the tank, or letting it discharge
    full: bool = False  # the tank counts as full (with hysteresis)
    # the filtered load's peak over the last day
    peaks: PeakMemory = field(default_factory=PeakMemory)


@dataclass(frozen=True)
class Candidate:
    """A caisson dispatch may give load to (ready to run)."""

    index: int
    cap_max: float  # W: interlocks, chips, nominal, the jobs' power, what its pump carries
    minimum: float  # W: its minimum load when running
    heat_capture: float
    outlet: float | None = None  # °C
    # W it can give at a peak, when the building's return comes back cool: cap_max without the
    # bound of what its pump carries over the return now (None: cap_max)
    peak_power: float | None = None


@dataclass(frozen=True)
class Plan:
    mode: Mode
    it_target: float  # W, total
    caps: dict[int, float] = field(default_factory=dict)  # W per running caisson index
    dry_cooler: float = 0.0  # valve and fan, 0..1
    soc: float | None = None
    load: float | None = None
    backup_firing: bool = False
    outlet_setpoint: float | None = None  # °C in force (the reset's)
    running: frozenset[int] = frozenset()  # the caissons staged on
    peak_due: bool = False  # a peak is due within the day (or the backup boiler fired lately)


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
        share = float(space_heating_ratio(loads.space_heating, out))
        total += loads.space_heating.design_load * min(share, 1.5)
    if loads.warehouse is not None:
        w = loads.warehouse
        share = float(warehouse_ratio(w, out, w.occupied_setpoint))
        total += w.design_load * min(share, 1.5)
    if loads.hot_water is not None:
        total += loads.hot_water.daily_energy / 86400.0
    if loads.pool is not None:
        total += loads.pool.evaporation_loss
    return total


def first_order(previous: float | None, value: float, dt: float, time_constant: float) -> float:
    """A first-order low-pass step from `previous` towards `value` (its first value as is)."""
    if previous is None:
        return value
    return previous + dt / (time_constant + dt) * (value - previous)


def tank_is_full(
    was_full: bool, bottom: float | None, soc: float | None, full_bottom: float
) -> bool:
    """Full when its bottom reaches `full_bottom` or nearly every layer is charged; empty again
    only once both have come well back (hysteresis: no mode flapping at the edge)."""
    if was_full:
        hot = bottom is not None and bottom >= full_bottom - FULL_HYSTERESIS
        return hot or (soc is not None and soc >= FULL_SOC - SOC_HYSTERESIS)
    return (bottom is not None and bottom >= full_bottom) or (soc is not None and soc >= FULL_SOC)


def select_mode(
    limits: PlantLimits,
    *,
    plant_ok: bool,
    tank_full: bool,
    trend: float,
    capacity_heat: float,
    shedding: bool,
    previous: Mode = Mode.HEAT,
    short: bool = False,
) -> Mode:
    """Heat-priority sites store while the day's load trend runs close to the caissons' capacity
    (entered above STORE_SHARE of it, left below STORE_LEAVE), or while a peak is due (`short`:
    the backup boiler fired, or the load came near the caissons' capacity, within the day), so
    that a full tank meets the next peak before the backup boiler does; a full tank then holds
    them at the load, not below it, so they do not stop and restart at the tank's edge."""
    if not plant_ok:
        return Mode.SAFE
    if shedding:
        return Mode.SHED
    if limits.policy is Policy.COMPUTE_PRIORITY:
        return Mode.REJECT if tank_full else Mode.STORE
    share = STORE_LEAVE if previous is Mode.STORE else STORE_SHARE
    if short or trend >= share * capacity_heat:
        return Mode.STORE
    return Mode.HEAT


def cooler_aim(mode: Mode, return_limit: float, hot: float) -> float:
    """°C of return the supervisor's dry cooling holds: REJECT_MARGIN below the plant PLC's own
    limit, so that its thermostat never has to act; while shedding, only 1 K under the return at
    which the shed lets go (a heat-priority plant sheds when its charged tank sends the return
    hot: the tank's heat is the building's later, not the dry cooler's)."""
    aim = return_limit - REJECT_MARGIN
    if mode is Mode.SHED:
        aim = max(aim, hot - SHED_RELEASE - 1.0)
    return aim


def dry_cooler_command(
    mode: Mode,
    plant_return: float | None,
    aim: float,
    previous: float,
    dt: float,
    backup_firing: bool = False,
) -> float:
    """Valve and fan (0..1), where the policy lets heat be rejected and the backup boiler is not
    firing: integral action holding the caissons' return at `aim` (`cooler_aim`). Integral only:
    the return answers the fan within a scan, and a proportional gain strong enough to matter
    would make that fast loop ring."""
    if mode not in (Mode.REJECT, Mode.SHED) or plant_return is None or backup_firing:
        return 0.0
    error = plant_return - aim
    return min(max(previous + COOLER_GAIN * error * dt, 0.0), 1.0)


def plant_minimum(candidates: Sequence[Candidate]) -> float:
    """W of IT power below which no caisson can run: the smallest minimum load of one caisson (the
    others stand by, their pumps stopped)."""
    return min((c.minimum for c in candidates), default=0.0)


def share_caps(target: float, candidates: Sequence[Candidate]) -> dict[int, float]:
    """Caps per running caisson for a total of `target` W: each first up to its minimum (all of
    them below it share in proportion to their minimums), the rest in proportion to headroom."""
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
    *,
    outlet_setpoint: float | None = None,
    top_needed: float | None = None,
    short: bool = False,
) -> tuple[Plan, DispatchState]:
    """This cycle's mode, IT target and dry cooler, and the state carried to the next (the caps
    come once staging has chosen the running caissons: `share_caps`).

    `outlet_setpoint`: the one in force (default the site's); `top_needed`: °C the tank's top must
    hold for the loads (default 4 K below the outlet setpoint); `short`: the backup boiler has
    fired lately (the tank is kept full, heat priority, as after a peak near capacity)."""
    outlet = limits.outlet_setpoint if outlet_setpoint is None else outlet_setpoint
    tank_ok = any(t is not None for t in plant.tank)
    plant_ok = tank_ok and plant.ret is not None
    measured = measured_load(plant)
    load_now = measured if measured is not None else configured_load(loads, plant.outdoor)
    # The first measurement replaces what the stand-in put in the filters (at start-up the
    # building's meters may answer a few scans after the tank's sensors).
    fresh = measured is not None and not state.measured
    load = first_order(None if fresh else state.load, load_now, dt, LOAD_FILTER)
    trend = first_order(None if fresh else state.trend, load_now, dt, TREND_FILTER)
    capacity_it = sum(c.cap_max for c in candidates)
    minimum = plant_minimum(candidates)
    capture = (
        sum(c.heat_capture * c.cap_max for c in candidates) / capacity_it if capacity_it else 0.94
    )
    empty = plant.building_return if plant.building_return is not None else REFERENCE_RETURN
    empty = min(empty, outlet - 10.0)
    soc = state_of_charge(plant.tank, empty, outlet)
    bottom = next((t for t in reversed(plant.tank) if t is not None), None)
    needed = outlet - 4.0 if top_needed is None else top_needed
    tank_full = tank_is_full(state.full, bottom, soc, limits.return_limit - FULL_MARGIN)
    peaks = state.peaks.updated(load, dt)
    peak_heat = sum(
        c.heat_capture * (c.cap_max if c.peak_power is None else c.peak_power) for c in candidates
    )
    peak_due = peak_heat > 0.0 and peaks.peak >= PEAK_SHARE * peak_heat
    backup_firing = plant.backup_heat is not None and plant.backup_heat > BACKUP_FIRING
    hot = limits.hard_return_limit - HOT_RETURN_MARGIN
    hot_return = plant.ret is not None and plant.ret >= hot
    cool_return = plant.ret is None or plant.ret < hot - SHED_RELEASE

    # The shed limit: falls while the return is hot and the heat has nowhere to go, rises back
    # when it cools, and lets go once it is above what the plant would ask anyway.
    # While the backup boiler fires the site wants more heat than it gets: a hot return is then
    # the building's own (a cold snap's radiators), and the caissons' caps are already bounded
    # by what their pumps carry over it.
    nowhere = limits.policy is Policy.HEAT_PRIORITY or state.mode in (Mode.REJECT, Mode.SHED)
    nowhere = nowhere and not backup_firing
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
        capacity_heat=peak_heat,
        shedding=shed is not None,
        previous=state.mode,
        short=short or peak_due,
    )
    if mode is Mode.STORE and limits.policy is Policy.HEAT_PRIORITY:
        # Storing for a peak, the tank is charged as deep as the band allows: each kelvin of its
        # bottom is heat the peak takes from it instead of from the backup boiler.
        tank_full = tank_is_full(state.full, bottom, soc, limits.store_bottom)
    charging = state.charging
    if mode is Mode.SAFE:
        target = 0.0
    elif mode in (Mode.STORE, Mode.REJECT) and limits.policy is Policy.COMPUTE_PRIORITY:
        target = capacity_it
    else:
        reserve = 1.0 if mode is Mode.STORE else limits.tank_reserve
        heat = load
        if soc is not None:
            tank_heat = VOLUMETRIC_HEAT * limits.tank_volume * (outlet - empty)
            heat += (reserve - soc) * tank_heat / CHARGE_TIME
        if tank_full:
            heat = min(heat, load)
        target = max(heat, 0.0) / capture
        # Below the smallest caisson's minimum: run it at its minimum to charge the tank, then
        # stop and let the tank discharge (hysteresis on its state of charge; and charging again
        # before its top cools below what the loads need). Few long cycles, each a start.
        if target < minimum:
            top = plant.tank[0]
            if soc is None or soc <= reserve - SOC_ON or (top is not None and top < needed):
                charging = True
            elif tank_full or soc >= min(reserve + SOC_OFF, 0.95):
                charging = False
            target = minimum if charging else 0.0
        else:
            charging = True
        # The tank's top below what the loads need (hot water at risk): one caisson's full power
        # heats it back in minutes, where its minimum would take most of an hour.
        top = plant.tank[0]
        if top is not None and top < needed and candidates:
            target = max(target, *(c.cap_max for c in candidates))
    if shed is not None:
        target = min(target, shed)
    target = min(target, capacity_it)
    aim = cooler_aim(mode, limits.return_limit, hot)
    cooler = dry_cooler_command(mode, plant.ret, aim, state.cooler, dt, backup_firing=backup_firing)
    new_state = replace(
        state,
        load=load,
        trend=trend,
        measured=state.measured or measured is not None,
        shed_limit=shed,
        mode=mode,
        charging=charging,
        cooler=cooler,
        full=tank_full,
        peaks=peaks,
    )
    the_plan = Plan(
        mode, target, {}, cooler, soc, load, backup_firing, outlet, peak_due=short or peak_due
    )
    return the_plan, new_state

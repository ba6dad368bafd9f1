"""Temperature setpoints: the outlet setpoint's reset within the band, each loading unit's inlet
setpoint, and the most IT power a caisson can send away through its pump. Pure.

The outlet setpoint (one for the plant: the caissons feed one header) starts from the site's
(`setpoints.outlet`, 65 °C by default) and moves within the band:
- up to what the tank's top must hold for the loads: the highest supply they need now (the heating
  curve at the outdoor temperature, hot water's anti-legionella minimum, the pool's supply) plus the
  exchanger's approach;
- up when the return runs hot, so that the caissons keep a rise through them their pumps can carry
  at full flow with their planned power (and a margin);
- while the caissons cannot give the site all its heat (the backup boiler fires): to the lowest
  temperature at which they send the most heat to it. A hotter outlet carries more over a hot
  return at full flow, but the chips then allow less power (T_chip = T_water + R·P must stay the
  chip margin below throttling); the best is where the two limits cross;
- down towards the band's low end (a margin above it) when heat is plentiful: cooler chips, less
  leakage power, more margin to throttling;
- up to what the chips allow at full power when a compute-priority plant stores for a peak the
  heat it would otherwise reject: its caissons run flat out either way, and each kelvin of the
  tank is heat the peak takes from it instead of from the backup boiler;
- never above what the chips allow the running caissons at their planned power, except where the
  shortfall rule above has weighed that, and never within a margin of the band's edges.

A loading unit's inlet setpoint is the outlet setpoint less the rise the caisson's IT power gives
at a pump speed a little above its minimum: the pump then runs near its minimum (its power goes
as speed³) and the valve mixes the header's return up to the inlet setpoint. With a return warmer
than that the valve is fully open and the outlet loop speeds the pump up, as without a unit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from controller.control.interlocks import CaissonLimits
from controller.water import VOLUMETRIC_HEAT

LOW_MARGIN = 3.0  # K above the band's low end the setpoint stays
HIGH_MARGIN = 0.5  # K below its high end
# K below it the outlet stays with the tank charged deep: room for the outlet loops' transients,
# a sensor's error, a caisson dropping out with the whole tank at the outlet's temperature
STORE_MARGIN = 1.5
TOP_MARGIN = 0.5  # K above what the tank's top must hold
MIN_RISE = 5.0  # K: the setpoint stays this far above the caissons' return
RISE_MARGIN = 1.0  # K above the rise the planned power gives at full flow
GRID = 0.25  # K: resolution of the shortfall rule's search
SPEED_HEADROOM = 1.25  # loading units: the pump aims this far above its minimum speed
MIN_UNIT_RISE = 1.0  # K: the inlet setpoint stays this far below the outlet's
# K under the chips' ceiling at full power a hot store holds: room for the outlet loop's ripple,
# which would otherwise trim the caps through the chip interlock
CHIP_HOLD = 0.3


@dataclass(frozen=True)
class ResetInputs:
    nominal: float  # °C, the site's outlet setpoint (an engineer may change it)
    band_low: float
    band_high: float
    top_needed: float | None  # °C the tank's top must hold for the loads (approach included)
    plant_return: float | None  # °C, the caissons' return
    short: bool  # the caissons cannot give the site all its heat: the backup fires
    plentiful: bool  # heat to spare: tank charged and the load well within the caissons'
    chip_margin: float  # K between the hottest chip and throttling
    # a compute-priority plant stores its surplus for a peak: as hot as the chips allow
    store_hot: bool = False


def chip_ceiling(limits: CaissonLimits, power: float, margin: float) -> float:
    """°C of water at which the chips of a caisson drawing `power` W sit `margin` below
    throttling."""
    return limits.throttle - margin - limits.chip_resistance * power


def chip_power(limits: CaissonLimits, water: float, margin: float) -> float:
    """W a caisson may draw with its water at `water` °C: the chips' limit, at most nominal."""
    room = (limits.throttle - margin - water) / limits.chip_resistance
    return min(max(room, 0.0), limits.nominal_power)


def full_flow_rise(limits: CaissonLimits, power: float) -> float:
    """K the water rises through a caisson drawing `power` W at its pump's full flow."""
    return limits.heat_capture * power / (VOLUMETRIC_HEAT * limits.max_flow)


def carried_power(limits: CaissonLimits, outlet: float, plant_return: float) -> float:
    """W of IT power whose captured heat the pump carries at full flow from `plant_return` to
    `outlet` (0 when the return is as hot as the outlet)."""
    rise = max(outlet - plant_return, 0.0)
    return VOLUMETRIC_HEAT * limits.max_flow * rise / limits.heat_capture


def best_heat_temperature(
    caissons: Sequence[CaissonLimits], plant_return: float, low: float, high: float, margin: float
) -> float:
    """The lowest outlet in [low, high] at which the caissons send the most heat over
    `plant_return`: each sends the captured heat of the smaller of its chips' power and what its
    pump carries at full flow."""
    best_heat, best = -1.0, low
    steps = max(round((high - low) / GRID), 0)
    for k in range(steps + 1):
        outlet = low + k * GRID
        heat = sum(
            c.heat_capture
            * min(chip_power(c, outlet, margin), carried_power(c, outlet, plant_return))
            for c in caissons
        )
        if heat > best_heat + 1.0:  # W: a gain worth a warmer outlet
            best_heat, best = heat, outlet
    return best


def outlet_setpoint(inputs: ResetInputs, running: Sequence[tuple[CaissonLimits, float]]) -> float:
    """The outlet setpoint; `running`: each running caisson's limits and planned power (W)."""
    floor = inputs.band_low + LOW_MARGIN
    ceiling = inputs.band_high - HIGH_MARGIN
    target = floor if inputs.plentiful and not inputs.short else inputs.nominal
    if inputs.store_hot and running:
        hottest = min(
            chip_ceiling(limits, limits.nominal_power, inputs.chip_margin) for limits, _ in running
        )
        target = max(target, hottest - CHIP_HOLD)
    if inputs.top_needed is not None:
        target = max(target, inputs.top_needed + TOP_MARGIN)
    if inputs.plant_return is not None:
        rise = max((full_flow_rise(limits, power) for limits, power in running), default=0.0)
        target = max(target, inputs.plant_return + max(MIN_RISE, rise + RISE_MARGIN))
    chips = min(
        (chip_ceiling(limits, power, inputs.chip_margin) for limits, power in running),
        default=ceiling,
    )
    target = min(target, chips)
    if inputs.short and inputs.plant_return is not None and running:
        caissons = [limits for limits, _ in running]
        best = best_heat_temperature(
            caissons, inputs.plant_return, floor, ceiling, inputs.chip_margin
        )
        target = max(target, best)
    return min(max(target, floor), ceiling)


def deepest_charge(band_high: float, hard_return_limit: float, margin: float) -> float:
    """°C the tank's bottom (the caissons' return) may be charged to: the outlet setpoint, at
    least MIN_RISE above the return, then still STORE_MARGIN under the band's top; and `margin`
    under the hottest return the caissons take."""
    return min(band_high - STORE_MARGIN - MIN_RISE, hard_return_limit - margin)


def inlet_setpoint(limits: CaissonLimits, outlet_setpoint: float, it_power: float) -> float:
    """°C a loading unit holds the inlet at, so that the pump carries `it_power`'s heat from
    there to `outlet_setpoint` a little above its minimum speed."""
    flow = limits.max_flow * min(limits.min_speed * SPEED_HEADROOM, 1.0)
    rise = limits.heat_capture * max(it_power, 0.0) / (VOLUMETRIC_HEAT * flow)
    return outlet_setpoint - max(rise, MIN_UNIT_RISE)

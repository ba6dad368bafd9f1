"""Heat demand of the site by load kind.

Exogenous loads (space heating, hot water, warehouse) depend only on weather and calendar, so they
are computed for the whole run at once, vectorised over time. The pool basin has a state (its
temperature) and is stepped with the plant.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from controller.config.site import HotWater, HotWaterProfile, Loads, Pool, SpaceHeating, Warehouse
from controller.heating_curve import emitter_curve, space_heating_ratio, warehouse_ratio
from controller.water import VOLUMETRIC_HEAT

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

# Share of the day's hot-water energy drawn in each local hour.
_HOT_WATER_WEIGHTS: dict[HotWaterProfile, tuple[float, ...]] = {
    HotWaterProfile.RESIDENTIAL: (
        1,
        0.5,
        0.5,
        0.5,
        1,
        2,
        5,
        8,
        7,
        5,
        4,
        4,
        5,
        4,
        3,
        3,
        3,
        4,
        6,
        8,
        8,
        6,
        4,
        2,
    ),
    HotWaterProfile.POOL: (0, 0, 0, 0, 0, 0, 0, 6, 8, 6, 5, 5, 6, 6, 5, 5, 6, 8, 9, 8, 6, 3, 0, 0),
    HotWaterProfile.FLAT: (1,) * 24,
}


@dataclass(frozen=True)
class Calendar:
    """Per step: local hour of day (0–24) and local weekday (0 = Monday)."""

    hour: FloatArray
    weekday: NDArray[np.int64]


@dataclass(frozen=True)
class CurvePoint:
    load_ratio: FloatArray  # heat demand / design load
    supply: FloatArray  # °C
    ret: FloatArray  # °C


def space_heating_curve(config: SpaceHeating, outdoor: FloatArray) -> CurvePoint:
    ratio = space_heating_ratio(config, outdoor)
    supply, ret = emitter_curve(
        ratio, config.room, config.design_supply, config.design_return, config.radiator_exponent
    )
    return CurvePoint(ratio, supply, ret)


def warehouse_curve(config: Warehouse, outdoor: FloatArray, calendar: Calendar) -> CurvePoint:
    """Air heaters (exponent 1) on the occupied or set-back setpoint of the weekly schedule."""
    occupancy = config.occupancy
    days = [("mon", "tue", "wed", "thu", "fri", "sat", "sun").index(d) for d in occupancy.days]
    occupied = (
        np.isin(calendar.weekday, days)
        & (calendar.hour >= occupancy.start_hour)
        & (calendar.hour < occupancy.end_hour)
    )
    setpoint = np.where(occupied, config.occupied_setpoint, config.unoccupied_setpoint)
    ratio = warehouse_ratio(config, outdoor, setpoint)
    supply, ret = emitter_curve(
        ratio, config.occupied_setpoint, config.design_supply, config.design_return, 1.0
    )
    return CurvePoint(ratio, supply, ret)


def hot_water_power(config: HotWater, calendar: Calendar) -> FloatArray:
    weights = np.asarray(_HOT_WATER_WEIGHTS[config.profile], dtype=float)
    weights /= weights.sum()
    hour_index = np.minimum(calendar.hour.astype(np.int64), 23)
    return config.daily_energy * weights[hour_index] / 3600.0


@dataclass(frozen=True)
class LoadSeries:
    """The exogenous loads over the run, as the building loop sees them."""

    demand: FloatArray  # W
    supply_required: FloatArray  # °C the building loop needs from the plant
    flow: FloatArray  # m³/s the loads draw when supplied at supply_required
    return_flow_temperature: FloatArray  # Σ flow·return temperature, m³/s·K
    space_heating_supply: FloatArray | None  # heating-curve supply temperature, °C


def exogenous_loads(
    loads: Loads, outdoor: FloatArray, calendar: Calendar, pool_supply: float | None
) -> LoadSeries:
    """Combine the weather- and calendar-driven loads; the pool adds its own each step."""
    n = len(outdoor)
    parts: list[tuple[FloatArray, FloatArray, FloatArray | float]] = []  # (power, return, supply)
    sh_supply: FloatArray | None = None
    if loads.space_heating is not None:
        curve = space_heating_curve(loads.space_heating, outdoor)
        parts.append((loads.space_heating.design_load * curve.load_ratio, curve.ret, curve.supply))
        sh_supply = curve.supply
    if loads.warehouse is not None:
        curve = warehouse_curve(loads.warehouse, outdoor, calendar)
        parts.append((loads.warehouse.design_load * curve.load_ratio, curve.ret, curve.supply))
    if loads.hot_water is not None:
        hot = loads.hot_water
        parts.append(
            (hot_water_power(hot, calendar), np.full(n, hot.return_temperature), hot.supply_min)
        )
    required = np.full(n, pool_supply if pool_supply is not None else 0.0)
    for _, _, supply in parts:
        required = np.maximum(required, supply)
    demand = np.zeros(n)
    flow = np.zeros(n)
    return_flow_temperature = np.zeros(n)
    for power, ret, _ in parts:
        # At light load an emitter circuit's supply-return spread is small but real (constant
        # flow): divide exactly. Where there is load, required >= supply > return.
        part_flow = np.divide(
            power, VOLUMETRIC_HEAT * (required - ret), out=np.zeros(n), where=power > 0
        )
        demand += power
        flow += part_flow
        return_flow_temperature += part_flow * ret
    return LoadSeries(demand, required, flow, return_flow_temperature, sh_supply)


class PoolBasin:
    """A pool basin kept at its target: evaporation (less under the night cover) and fresh make-up
    water cool it; a drain and refill leaves it at the make-up water temperature."""

    RECOVERY_TIME = 6 * 3600.0  # s: demand asks to close the gap to target in this time

    def __init__(self, config: Pool) -> None:
        self.config = config
        self.capacity = VOLUMETRIC_HEAT * config.basin_volume  # J/K
        self.makeup_flow = config.makeup_daily / 86400.0  # m³/s
        self.temperature = config.target

    def losses(self, is_open: bool) -> float:
        """W lost by evaporation and make-up water at the present basin temperature."""
        cfg = self.config
        cover = 1.0 if is_open else cfg.cover_factor
        evaporation_scale = min(max((self.temperature - 10.0) / (cfg.target - 10.0), 0.0), 1.5)
        makeup = VOLUMETRIC_HEAT * self.makeup_flow * max(self.temperature - cfg.makeup_water, 0.0)
        return cfg.evaporation_loss * cover * evaporation_scale + makeup

    def demand(self, is_open: bool) -> float:
        gap = self.capacity * (self.config.target - self.temperature) / self.RECOVERY_TIME
        return min(max(self.losses(is_open) + gap, 0.0), self.config.heat_exchanger_capacity)

    def step(self, delivered: float, is_open: bool, dt: float) -> None:
        self.temperature += (delivered - self.losses(is_open)) * dt / self.capacity

    def drain_and_refill(self) -> None:
        self.temperature = self.config.makeup_water

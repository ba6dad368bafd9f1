"""The site's heating curves: the supply temperature its emitters need at an outdoor temperature.

One source for the controller (the outlet setpoint's reset, dispatch's stand-in load) and the
simulated plant (simulators/plant/loads.py, over whole runs at once): the functions take floats or
numpy arrays alike.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from controller.config.site import Loads, SpaceHeating, Warehouse

FloatArray = NDArray[np.float64]


def emitter_curve(
    load_ratio: ArrayLike, room: float, design_supply: float, design_return: float, exponent: float
) -> tuple[FloatArray, FloatArray]:
    """Supply and return temperature that make emitters give `load_ratio` of their design output.

    Emitter output ∝ (mean water − room)^n at a constant design flow, so the mean excess scales as
    φ^(1/n) and the supply-return difference as φ (EN 442 characteristic).
    """
    phi = np.maximum(np.asarray(load_ratio, dtype=np.float64), 0.0)
    mean_excess = (design_supply + design_return) / 2 - room
    spread = design_supply - design_return
    supply = room + mean_excess * phi ** (1.0 / exponent) + spread / 2 * phi
    return supply, supply - spread * phi


def space_heating_ratio(config: SpaceHeating, outdoor: ArrayLike) -> FloatArray:
    """Load ∝ (heating limit − outdoor), the limit being room minus the free gains."""
    span = config.heating_limit - config.design_outdoor
    gap = config.heating_limit - np.asarray(outdoor, dtype=np.float64)
    return np.maximum(gap, 0.0) / span


def space_heating_supply(config: SpaceHeating, outdoor: float) -> float:
    ratio = space_heating_ratio(config, outdoor)
    supply, _ = emitter_curve(
        ratio, config.room, config.design_supply, config.design_return, config.radiator_exponent
    )
    return float(supply)


def warehouse_ratio(config: Warehouse, outdoor: ArrayLike, setpoint: ArrayLike) -> FloatArray:
    """Air heaters (exponent 1) holding `setpoint` against the outdoor temperature."""
    design_span = config.occupied_setpoint - config.internal_gains - config.design_outdoor
    gap = np.asarray(setpoint, dtype=np.float64) - config.internal_gains
    gap = gap - np.asarray(outdoor, dtype=np.float64)
    ratio: FloatArray = np.maximum(gap, 0.0) / design_span
    return ratio


def warehouse_supply(config: Warehouse, outdoor: float) -> float:
    """While occupied (the higher setpoint: what the heaters may need within the hour)."""
    ratio = warehouse_ratio(config, outdoor, config.occupied_setpoint)
    supply, _ = emitter_curve(
        ratio, config.occupied_setpoint, config.design_supply, config.design_return, 1.0
    )
    return float(supply)


def required_supply(loads: Loads, outdoor: float | None) -> float | None:
    """°C the site's loads need from the plant now (the highest of them); None without a load
    that says (an unknown outdoor temperature leaves out the weather-driven ones)."""
    needs: list[float] = []
    heating, warehouse = loads.space_heating, loads.warehouse
    if outdoor is not None and heating is not None and space_heating_ratio(heating, outdoor) > 0:
        needs.append(space_heating_supply(heating, outdoor))
    occupied = warehouse.occupied_setpoint if warehouse is not None else 0.0
    if (
        outdoor is not None
        and warehouse is not None
        and warehouse_ratio(warehouse, outdoor, occupied)
    ):
        needs.append(warehouse_supply(warehouse, outdoor))
    if loads.hot_water is not None:
        needs.append(loads.hot_water.supply_min)
    if loads.pool is not None:
        needs.append(loads.pool.supply)
    return max(needs) if needs else None

"""The caissons: pump drives, IT power under caps and chip limits, and the water they heat."""

from __future__ import annotations

from enum import IntEnum

import numpy as np
from numba import njit
from numpy.typing import NDArray

from controller.config.site import LoadingUnit, SiteConfig
from controller.water import VOLUMETRIC_HEAT
from simulators.plant.plc import Limit

FloatArray = NDArray[np.float64]

PUMP_RAMP = 0.2  # speed fraction per second a drive can change
LEAKAGE_REFERENCE = 60.0  # °C at which chips draw their nominal power


class Param(IntEnum):
    """Rows of the caisson parameter table (SI units), one column per caisson."""

    NOMINAL_POWER = 0
    HEAT_CAPTURE = 1
    CAPACITY = 2  # J/K
    CHIPS = 3
    CHIP_RESISTANCE = 4  # K/W per chip
    THROTTLE = 5  # °C
    LEAKAGE = 6  # share of power per 10 K above LEAKAGE_REFERENCE
    MAX_FLOW = 7  # m³/s at full speed
    PUMP_POWER = 8  # W at full speed


def caisson_tables(site: SiteConfig) -> tuple[FloatArray, FloatArray]:
    """(Param table, plc.Limit table) of the site's caissons."""
    types = [site.caisson_type(c) for c in site.caissons]
    params = np.array(
        [
            [
                t.it_power,
                t.heat_capture,
                t.thermal_capacity,
                t.chips.count,
                t.chips.thermal_resistance,
                t.chips.throttle,
                t.chips.leakage,
                t.pump.max_flow,
                t.pump.power,
            ]
            for t in types
        ]
    ).T
    limits = np.array(
        [
            [
                t.plc.safe_pump_speed,
                t.plc.safe_cap,
                t.pump.min_speed,
                t.plc.low_flow,
                t.plc.low_flow_delay,
                t.plc.overtemp_warn,
                t.plc.overtemp_trip,
                t.plc.trip_reset_delay,
                t.plc.lease_timeout,
                t.it_power,
                t.plc.flow_proof,
                t.plc.post_run,
                t.plc.idle_power * t.it_power,
                1.0 if t.loading_unit is not None else 0.0,
                (t.loading_unit or LoadingUnit()).inlet_setpoint,
                1.0 / (t.loading_unit or LoadingUnit()).stroke_time,
            ]
            for t in types
        ]
    ).T
    assert params.shape[0] == len(Param)
    assert limits.shape[0] == len(Limit)
    return np.ascontiguousarray(params), np.ascontiguousarray(limits)


@njit(cache=True)
def drive_caissons(
    params,
    dt,
    plc_speed,
    plc_cap,
    compute_cap,
    demand,
    pump_stopped,
    water,
    speed,
    flow,
    pump_power,
    it_power,
    chip_temp,
    throttling,
):  # type: ignore[no-untyped-def]
    """Pumps follow the PLC (a stopped pump stops at once), IT power follows caps, jobs and chips.
    Returns (Σ flow, Σ IT power, Σ pump power).

    IT power is the lowest of the two caps, the jobs' demand (with leakage power rising with chip
    temperature) and the power at which chips reach their throttle temperature.
    """
    total_flow = total_it = total_pump = 0.0
    for i in range(len(water)):
        if pump_stopped[i]:
            speed[i] = 0.0
        else:
            speed[i] += min(max(plc_speed[i] - speed[i], -PUMP_RAMP * dt), PUMP_RAMP * dt)
        flow[i] = speed[i] * params[Param.MAX_FLOW, i]
        pump_power[i] = params[Param.PUMP_POWER, i] * speed[i] ** 3
        leakage = 1.0 + params[Param.LEAKAGE, i] * max(chip_temp[i] - LEAKAGE_REFERENCE, 0.0) / 10.0
        wanted = min(
            plc_cap[i], compute_cap[i], demand[i] * params[Param.NOMINAL_POWER, i] * leakage
        )
        per_chip = params[Param.CHIP_RESISTANCE, i] / params[Param.CHIPS, i]  # K/W of the caisson
        thermal_limit = max((params[Param.THROTTLE, i] - water[i]) / per_chip, 0.0)
        it_power[i] = min(wanted, thermal_limit)
        throttling[i] = thermal_limit < wanted
        chip_temp[i] = water[i] + per_chip * it_power[i]
        total_flow += flow[i]
        total_it += it_power[i]
        total_pump += pump_power[i]
    return total_flow, total_it, total_pump


@njit(cache=True)
def heat_caissons(params, dt, water, inlet, flow, it_power, pump_power):  # type: ignore[no-untyped-def]
    """Each caisson is one well-mixed node: captured IT heat and pump heat in, flow carries it out.
    `inlet` is the water entering it (with a loading unit: the header's return mixed with its own
    outlet). Returns the IT heat not captured in the water (it warms the room) [W]."""
    room = 0.0
    for i in range(len(water)):
        captured = params[Param.HEAT_CAPTURE, i] * it_power[i]
        carried = VOLUMETRIC_HEAT * flow[i] * (water[i] - inlet[i])
        water[i] += dt / params[Param.CAPACITY, i] * (captured + pump_power[i] - carried)
        room += it_power[i] - captured
    return room


@njit(cache=True)
def mix_inlet(valve, returned, outlet, inlet):  # type: ignore[no-untyped-def]
    """The loading unit's three-way valve: `valve` of the pump's flow from the header's return,
    the rest recirculated from the caisson's own outlet (mixing without storage)."""
    for i in range(len(inlet)):
        inlet[i] = valve[i] * returned[i] + (1.0 - valve[i]) * outlet[i]

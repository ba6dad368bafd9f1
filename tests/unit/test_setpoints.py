"""The outlet setpoint's reset and the loading units' inlet setpoints (setpoints.py). Pure."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from controller.config.loader import load_site
from controller.control.interlocks import CaissonLimits
from controller.control.setpoints import (
    CHIP_HOLD,
    HIGH_MARGIN,
    LOW_MARGIN,
    ResetInputs,
    best_heat_temperature,
    carried_power,
    chip_ceiling,
    chip_power,
    deepest_charge,
    full_flow_rise,
    inlet_setpoint,
    outlet_setpoint,
)
from controller.water import VOLUMETRIC_HEAT
from tests.plant_helpers import SITES

SITE = load_site(SITES / "demo.yaml").config
CABINET = CaissonLimits.of(SITE.caisson_types["cabinet-20kw"])  # 20 kW, 40 L/min, 48 chips
BASE = ResetInputs(
    nominal=65.0,
    band_low=60.0,
    band_high=70.0,
    top_needed=None,
    plant_return=45.0,
    short=False,
    plentiful=False,
    chip_margin=3.0,
)
HALF = [(CABINET, 10e3)] * 3  # three caissons at half power: the chips allow up to 76.6 °C


@pytest.mark.parametrize(
    ("change", "expected", "why"),
    [
        ({}, 65.0, "the site's setpoint"),
        ({"plentiful": True}, 60.0 + LOW_MARGIN, "heat to spare: towards the band's low end"),
        (
            {"plentiful": True, "top_needed": 63.0},
            63.5,
            "...but never below what the loads need at the tank's top",
        ),
        ({"top_needed": 67.0}, 67.5, "the loads need a hotter tank top"),
        ({"top_needed": 82.0}, 70.0 - HIGH_MARGIN, "never beyond the band"),
        ({"plant_return": 61.0}, 66.0, "a hot return: keep a rise the pumps can carry"),
        ({"nominal": 62.0}, 63.0, "an engineer's setpoint, within the band's margins"),
    ],
)
def test_outlet_reset(change: dict[str, Any], expected: float, why: str) -> None:
    assert outlet_setpoint(replace(BASE, **change), HALF) == pytest.approx(expected), why


def test_over_a_warm_return_the_rise_the_planned_power_needs_at_full_flow_is_kept() -> None:
    three_quarters = [(CABINET, 15e3)] * 3  # 5.14 K at full flow; the chips allow 71.4 degC
    rise = full_flow_rise(CABINET, 15e3)
    assert rise == pytest.approx(0.94 * 15e3 / (VOLUMETRIC_HEAT * 40 / 60000))
    warm = replace(BASE, plant_return=60.0)
    assert outlet_setpoint(warm, three_quarters) == pytest.approx(60.0 + rise + 1.0)


def test_the_chips_cap_the_setpoint_at_the_planned_power() -> None:
    # At 20 kW a cabinet's chips sit 20.8 K above the water: 87 − 20.8 = 66.2 °C at most.
    full = [(CABINET, 20e3)] * 3
    ceiling = chip_ceiling(CABINET, 20e3, 3.0)
    assert ceiling == pytest.approx(90.0 - 3.0 - 20e3 * 0.05 / 48)
    assert outlet_setpoint(replace(BASE, top_needed=68.0), full) == pytest.approx(ceiling)


def test_a_hot_store_goes_as_hot_as_the_chips_allow_at_full_power() -> None:
    """A compute-priority plant storing its surplus for a peak: the outlet (so the tank) goes to
    the chips' ceiling at full power, however little is planned now and however plentiful the
    heat, a little under it so that the outlet loop's ripple does not trip the chip cap."""
    ceiling = chip_ceiling(CABINET, CABINET.nominal_power, 3.0)  # 66.2 °C
    for plentiful in (False, True):
        hot = replace(BASE, store_hot=True, plentiful=plentiful, plant_return=57.0)
        assert outlet_setpoint(hot, HALF) == pytest.approx(ceiling - CHIP_HOLD)
        assert outlet_setpoint(replace(hot, store_hot=False), HALF) < ceiling - 1.0
    # The hottest the weakest caisson allows (a larger one's chips sit hotter at its full
    # power), and never below where the rest of the reset would put it.
    big = replace(CABINET, nominal_power=22e3)
    hot = replace(BASE, store_hot=True, plentiful=True)
    assert outlet_setpoint(hot, [(CABINET, 10e3), (big, 10e3)]) == pytest.approx(
        chip_ceiling(big, 22e3, 3.0) - CHIP_HOLD
    )
    hot = replace(BASE, store_hot=True)
    assert outlet_setpoint(hot, [(CABINET, 10e3), (big, 10e3)]) == pytest.approx(65.0)
    # Within the band: caissons with cool chips stop at its high margin; none running: nominal.
    cool = replace(CABINET, chip_resistance=CABINET.chip_resistance / 4)
    assert outlet_setpoint(hot, [(cool, 10e3)]) == pytest.approx(70.0 - HIGH_MARGIN)
    assert outlet_setpoint(hot, []) == pytest.approx(65.0)


def test_short_of_heat_over_a_hot_return_it_seeks_the_most_heat_the_caissons_can_send() -> None:
    """Cold snap: radiators return at 62 °C, the tank's bottom at 65 °C. A hotter outlet lets the
    pumps carry more at full flow, but lowers what the chips allow: the best is where the two
    limits cross, near the band's top."""
    full = [(CABINET, 20e3)] * 3
    cold_snap = replace(BASE, short=True, plant_return=65.0, top_needed=82.0)
    chosen = outlet_setpoint(cold_snap, full)

    def heat(outlet: float) -> float:
        allowed = min(chip_power(CABINET, outlet, 3.0), carried_power(CABINET, outlet, 65.0))
        return CABINET.heat_capture * allowed

    assert chosen == pytest.approx(69.5)
    assert heat(chosen) >= max(heat(63.0 + 0.25 * k) for k in range(27)) - 1.0
    # Not short of heat, the chips' ceiling at full power would have held it at 66.2 °C, where
    # the pumps could carry almost nothing over that return.
    assert outlet_setpoint(replace(cold_snap, short=False), full) == pytest.approx(
        chip_ceiling(CABINET, 20e3, 3.0)
    )
    assert heat(66.2) < 0.5 * heat(chosen)


def test_the_best_heat_temperature_is_the_lowest_that_gives_the_most() -> None:
    # Over a cool return every outlet from the band's floor carries all the chips allow.
    assert best_heat_temperature([CABINET], 40.0, 63.0, 69.5, 3.0) == pytest.approx(63.0)
    # Over a return hotter than the ceiling nothing can be carried: the floor.
    assert best_heat_temperature([CABINET], 75.0, 63.0, 69.5, 3.0) == pytest.approx(63.0)


@pytest.mark.parametrize(
    ("power", "expected_rise"),
    [
        (0.0, 1.0),  # idle: the valve just opens (MIN_UNIT_RISE)
        (10e3, 0.94 * 10e3 / (VOLUMETRIC_HEAT * 40 / 60000 * 0.3 * 1.25)),
        (20e3, 0.94 * 20e3 / (VOLUMETRIC_HEAT * 40 / 60000 * 0.3 * 1.25)),
    ],
)
def test_the_inlet_setpoint_lets_the_pump_run_near_its_minimum(
    power: float, expected_rise: float
) -> None:
    assert inlet_setpoint(CABINET, 65.0, power) == pytest.approx(65.0 - expected_rise)


@pytest.mark.parametrize(
    ("band_high", "hard_limit", "deepest"),
    [
        (70.0, 67.0, 63.5),  # the band: the outlet, 5 K over the return, stays under 68.5 °C
        (70.0, 63.0, 61.0),  # caissons that take a return of 63 °C at most: 2 K under it
        (75.0, 67.0, 65.0),
    ],
)
def test_the_tank_is_charged_as_deep_as_the_band_and_the_caissons_return_allow(
    band_high: float, hard_limit: float, deepest: float
) -> None:
    assert deepest_charge(band_high, hard_limit, margin=2.0) == pytest.approx(deepest)

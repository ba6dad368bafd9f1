"""Supervisory interlocks, table-driven: each row is a caisson's inputs and what must follow."""

from __future__ import annotations

from dataclasses import replace

import pytest

from controller.control.inputs import CaissonInputs
from controller.control.interlocks import (
    LEAK_TRIP,
    LOW_FLOW_TRIP,
    CaissonLimits,
    Interlock,
    guard,
    overtemp_stage,
)
from tests.plant_helpers import site_config

# The demo site's 20 kW cabinet: 150 kJ/K, 48 chips at 0.05 K/W, pump 40 L/min from 30 %.
LIMITS = CaissonLimits.of(site_config("demo").caisson_types["cabinet-20kw"])
HEALTHY = CaissonInputs(
    inlet=50.0,
    outlet=65.0,
    flow=20 / 60000,
    pump_speed=0.5,
    it_power=15e3,
    pump_fault=False,
    leak=False,
    interlocks=0,
    plc_mode=1,
    chip_temp=80.0,
    available_power=20e3,
    pump_speed_cmd=0.5,
    it_cap_cmd=15e3,
    power_cap=15e3,
    lease_timeout=10.0,
)

INF = float("inf")


@pytest.mark.parametrize(
    ("name", "changes", "active", "cap_max", "pump_min", "safe", "dispatchable"),
    [
        ("healthy", {}, set(), 20e3, 0.3, False, True),
        ("outlet sensor BAD", {"outlet": None}, {Interlock.INPUTS_LOST}, 10e3, 0.9, True, False),
        ("inlet STALE", {"inlet": None}, {Interlock.INPUTS_LOST}, 10e3, 0.9, True, False),
        ("flow BAD", {"flow": None}, {Interlock.INPUTS_LOST}, 10e3, 0.9, True, False),
        ("leak sensor lost", {"leak": None}, {Interlock.INPUTS_LOST}, 10e3, 0.9, True, False),
        ("low flow", {"flow": 5 / 60000}, {Interlock.LOW_FLOW}, 0.0, 1.0, False, False),
        ("pump fault", {"pump_fault": True}, {Interlock.PUMP_FAULT}, 0.0, 1.0, False, False),
        ("leak", {"leak": True}, {Interlock.LEAK}, 0.0, 0.3, False, False),
        (
            "PLC leak trip",
            {"interlocks": LEAK_TRIP},
            {Interlock.LEAK, Interlock.PLC_TRIP},
            0.0,
            0.3,
            False,
            False,
        ),
        (
            "PLC low-flow trip",
            {"interlocks": LOW_FLOW_TRIP},
            {Interlock.PLC_TRIP},
            0.0,
            0.3,
            False,
            False,
        ),
        ("outlet 70.5 °C", {"outlet": 70.5}, {Interlock.OVERTEMP_1}, 14e3, 0.7, False, True),
        ("outlet 72.5 °C", {"outlet": 72.5}, {Interlock.OVERTEMP_2}, 8e3, 1.0, False, True),
        ("outlet 76.5 °C", {"outlet": 76.5}, {Interlock.OVERTEMP_3}, 0.0, 1.0, False, False),
        (
            "hot chips",
            {"chip_temp": 89.0},
            {Interlock.CHIP_MARGIN},
            15e3 - 2.0 / (0.05 / 48),
            0.3,
            False,
            True,
        ),
    ],
)
def test_guard(
    name: str,
    changes: dict[str, object],
    active: set[Interlock],
    cap_max: float,
    pump_min: float,
    safe: bool,
    dispatchable: bool,
) -> None:
    result = guard(LIMITS, replace(HEALTHY, **changes), chip_margin=3.0)  # type: ignore[arg-type]
    assert result.active == active, name
    assert result.cap_max == pytest.approx(cap_max), name
    assert result.pump_min == pump_min, name
    assert result.safe_state is safe, name
    assert result.dispatchable is dispatchable, name


def test_the_pump_is_never_asked_below_its_minimum() -> None:
    for changes in ({}, {"outlet": None}, {"leak": True}, {"flow": 0.0}, {"outlet": 77.0}):
        assert guard(LIMITS, replace(HEALTHY, **changes)).pump_min >= LIMITS.min_speed  # type: ignore[arg-type]


def test_lockout_takes_the_caisson_out_of_dispatch() -> None:
    result = guard(LIMITS, HEALTHY, locked_out=True)
    assert result.active == {Interlock.LOCKOUT}
    assert result.cap_max == 0.0
    assert not result.dispatchable


def test_chip_cap_follows_the_outlet_temperature() -> None:
    """At 65 °C the chips allow the whole nominal power; at 70 °C they do not."""
    cool = guard(LIMITS, replace(HEALTHY, chip_temp=None), chip_margin=3.0)
    warm = guard(LIMITS, replace(HEALTHY, outlet=69.9, chip_temp=None), chip_margin=3.0)
    assert cool.cap_max == 20e3
    assert warm.cap_max == pytest.approx((90 - 3 - 69.9) / LIMITS.chip_resistance)


@pytest.mark.parametrize(
    ("outlet", "previous", "expected"),
    [
        (65.0, 0, 0),
        (70.0, 0, 1),  # stage 1 from 2 K below the PLC's warning
        (72.0, 0, 2),
        (76.0, 0, 3),
        (77.0, 1, 3),  # straight to the stage the temperature is in
        (69.0, 1, 1),  # under its threshold but within the hysteresis: holds
        (68.4, 1, 0),  # 1.5 K under: releases
        (71.0, 2, 2),
        (70.4, 2, 1),  # releases one stage at a time
        (60.0, 3, 2),
    ],
)
def test_overtemp_stages_have_hysteresis(outlet: float, previous: int, expected: int) -> None:
    assert overtemp_stage(LIMITS, outlet, previous) == expected

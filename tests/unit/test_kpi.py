"""The plant's KPIs against answers worked out by hand, on the demo site's constants.

Demo site: three caissons with 250 W pumps, a 1.2 kW dry-cooler fan, a 2 m³ buffer tank, the
supply band 60-70 °C, local time Europe/Paris.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from controller.config.loader import load_site
from controller.control.inputs import CaissonInputs, Inputs, PlantInputs
from controller.kpi import (
    J_PER_KWH,
    KpiAccumulator,
    Kpis,
    Period,
    PlantConstants,
    Totals,
    period_start,
)
from controller.water import VOLUMETRIC_HEAT
from tests.plant_helpers import SITES

PARIS = ZoneInfo("Europe/Paris")
HOUR = 3600.0

# Constant inputs (SI): per caisson 15 kW of IT, pump at 80 %, 0.5 L/s heated by 10 K.
IT_POWER = 15_000.0
PUMP_SPEED = 0.8
CAISSON_FLOW = 0.5e-3
CAISSON_RISE = 10.0
# The building: 1 L/s from 55 to 65 °C, of which the backup boiler gives 5 kW.
BUILDING_FLOW = 1e-3
BACKUP = 5_000.0
FAN = 0.5
TANK_STEP = 0.01  # K the tank's mean warms each step


@pytest.fixture(scope="module")
def constants() -> PlantConstants:
    return PlantConstants.of(load_site(SITES / "demo.yaml"))


def caisson(**changes: float | None) -> CaissonInputs:
    values: dict[str, float | bool | int | None] = {
        "inlet": 55.0,
        "outlet": 55.0 + CAISSON_RISE,
        "flow": CAISSON_FLOW,
        "pump_speed": PUMP_SPEED,
        "it_power": IT_POWER,
        "pump_fault": False,
        "leak": False,
        "interlocks": 0,
        "plc_mode": 1,
        "chip_temp": 60.0,
        "available_power": 20_000.0,
        "pump_speed_cmd": PUMP_SPEED,
        "it_cap_cmd": 20_000.0,
        "power_cap": 20_000.0,
        "lease_timeout": 10.0,
    }
    values.update(changes)
    return CaissonInputs(**values)  # type: ignore[arg-type]


def inputs(tank: float = 50.0, **plant: float | None) -> Inputs:
    values: dict[str, object] = {
        "tank": (tank, tank, tank, tank),
        "outdoor": 0.0,
        "building_supply": 65.0,
        "building_return": 55.0,
        "building_flow": BUILDING_FLOW,
        "supply": 65.0,
        "ret": 55.0,
        "backup_heat": BACKUP,
    }
    values.update(plant)
    return Inputs(tuple(caisson() for _ in range(3)), PlantInputs(**values))  # type: ignore[arg-type]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_demo_constants(constants: PlantConstants) -> None:
    assert constants.pump_power == (250.0, 250.0, 250.0)
    assert constants.fan_power == 1200.0
    assert constants.tank_capacity == VOLUMETRIC_HEAT * 2.0
    assert constants.band == (60.0, 70.0)


def run_hour(constants: PlantConstants, step_inputs: list[Inputs], fan: float | None = FAN) -> Kpis:
    """Steps of 60 s ending at 06:00:30 … 06:59:30 UTC, after one step in the hour before (it
    gives the tank's starting heat); the hour as it closes at the first step of 07:00."""
    accumulator = KpiAccumulator(constants, PARIS)
    before = replace(step_inputs[0], plant=replace(step_inputs[0].plant, tank=(50.0,) * 4))
    assert [k.period for k in accumulator.add(at("2026-01-15T05:59:30Z"), before, fan, 60)] == []
    start = at("2026-01-15T06:00:30Z")
    for k, step in enumerate(step_inputs):
        closed = accumulator.add(start + timedelta(minutes=k), step, fan, 60.0)
        assert [kpi.period for kpi in closed] == ([Period.HOUR] if k == 0 else [])
    closed = accumulator.add(at("2026-01-15T07:00:30Z"), step_inputs[-1], fan, 60.0)
    assert [kpi.period for kpi in closed] == [Period.HOUR]
    (hour,) = closed
    assert hour.start == at("2026-01-15T06:00:00Z")
    return hour


def warming(count: int = 60, **plant: float | None) -> list[Inputs]:
    """`count` steps with the tank's mean 0.01 K warmer each step (from 50 °C)."""
    return [inputs(tank=50.0 + TANK_STEP * (k + 1), **plant) for k in range(count)]


def test_an_hour_of_constant_operation(constants: PlantConstants) -> None:
    hour = run_hour(constants, warming())

    it = 3 * IT_POWER * HOUR  # J
    pumps = 3 * 250.0 * PUMP_SPEED**3 * HOUR  # affinity law: 128 W each
    fans = 1200.0 * FAN**3 * HOUR  # 150 W
    delivered = VOLUMETRIC_HEAT * BUILDING_FLOW * 10.0 * HOUR
    backup = BACKUP * HOUR
    caisson_heat = 3 * VOLUMETRIC_HEAT * CAISSON_FLOW * CAISSON_RISE * HOUR
    tank_rise = VOLUMETRIC_HEAT * 2.0 * (60 * TANK_STEP)  # 0.6 K over 2 m³
    reused = delivered - backup
    dumped = caisson_heat - reused - tank_rise
    electricity = it + pumps + fans

    assert hour.it_energy_kwh == pytest.approx(45.0)
    assert hour.pump_energy_kwh == pytest.approx(0.384)
    assert hour.fan_energy_kwh == pytest.approx(0.15)
    assert hour.heat_delivered_kwh == pytest.approx(delivered / J_PER_KWH)
    assert hour.backup_heat_kwh == pytest.approx(5.0)
    assert hour.heat_reused_kwh == pytest.approx(reused / J_PER_KWH)
    assert hour.heat_dumped_kwh == pytest.approx(dumped / J_PER_KWH)
    assert 0 < hour.heat_dumped_kwh < hour.heat_reused_kwh  # the figures chosen make sense
    assert hour.erf == pytest.approx(reused / electricity)
    assert hour.pue == pytest.approx(electricity / it)
    assert hour.pue == pytest.approx(45.534 / 45.0)
    assert hour.ere == pytest.approx((1 - reused / electricity) * electricity / it)
    assert hour.running_h == pytest.approx(1.0)
    assert hour.in_band_share == pytest.approx(1.0)
    assert hour.coverage == pytest.approx(1.0)


def test_in_band_share_with_the_supply_out_of_band_half_the_time(
    constants: PlantConstants,
) -> None:
    steps = warming(30, supply=65.0) + [
        inputs(tank=50.0 + TANK_STEP * (k + 31), supply=75.0) for k in range(30)
    ]
    hour = run_hour(constants, steps)
    assert hour.in_band_share == pytest.approx(0.5)
    assert hour.running_h == pytest.approx(1.0)
    assert hour.coverage == pytest.approx(1.0)


def test_band_edges_are_in_band(constants: PlantConstants) -> None:
    steps = warming(20, supply=60.0) + warming(20, supply=70.0) + warming(20, supply=59.9)
    for k, step in enumerate(steps):  # the tank keeps warming step by step
        steps[k] = replace(step, plant=replace(step.plant, tank=(50.0 + TANK_STEP * (k + 1),) * 4))
    hour = run_hour(constants, steps)
    assert hour.in_band_share == pytest.approx(40 / 60)


def test_invalid_inputs_leave_their_terms_out_and_lower_the_coverage(
    constants: PlantConstants,
) -> None:
    steps = warming()
    for k in range(15):  # the building's flow meter is out for a quarter of the hour
        steps[k] = replace(steps[k], plant=replace(steps[k].plant, building_flow=None))
    hour = run_hour(constants, steps)
    assert hour.coverage == pytest.approx(0.75)
    assert hour.heat_delivered_kwh == pytest.approx(
        VOLUMETRIC_HEAT * BUILDING_FLOW * 10.0 * 45 * 60 / J_PER_KWH
    )
    assert hour.it_energy_kwh == pytest.approx(45.0)  # the other terms are whole


def test_a_tank_sensor_lost_loses_the_steps_that_need_it(constants: PlantConstants) -> None:
    steps = warming()
    lost = steps[10]
    steps[10] = replace(lost, plant=replace(lost.plant, tank=(50.0, None, 50.0, 50.0)))
    hour = run_hour(constants, steps)
    # the step without the tank and the next one (no heat to compare with) are not covered
    assert hour.coverage == pytest.approx(58 / 60)


def test_no_it_power_means_no_running_time_and_no_ratios(constants: PlantConstants) -> None:
    idle = [
        replace(
            step,
            caissons=tuple(replace(c, it_power=0.0, pump_speed=0.0) for c in step.caissons),
        )
        for step in warming()
    ]
    hour = run_hour(constants, idle, fan=0.0)
    assert hour.running_h == 0.0
    assert hour.in_band_share is None
    assert hour.it_energy_kwh == 0.0
    assert hour.pue is None
    assert hour.erf is None  # no electricity at all
    assert hour.ere is None


def test_dumped_heat_is_never_negative() -> None:
    totals = Totals(caisson_heat=1.0e6, delivered=3.0e6, backup=0.0, it=1.0, seconds=1.0)
    kpis = Kpis.of(Period.HOUR, at("2026-01-15T06:00:00Z"), totals)
    assert kpis.heat_dumped_kwh == 0.0
    assert kpis.heat_reused_kwh == pytest.approx(3.0e6 / J_PER_KWH)


# ------------------------------------------------------------------ periods


@pytest.mark.parametrize(
    ("instant", "hour", "day"),
    [
        # winter, UTC+1: 23:30 UTC is 00:30 the next local day
        ("2026-01-15T23:30:00Z", "2026-01-15T23:00:00Z", "2026-01-15T23:00:00Z"),
        ("2026-01-15T22:59:59Z", "2026-01-15T22:00:00Z", "2026-01-14T23:00:00Z"),
        # summer, UTC+2
        ("2026-07-15T22:30:00Z", "2026-07-15T22:00:00Z", "2026-07-15T22:00:00Z"),
        ("2026-07-15T21:59:00Z", "2026-07-15T21:00:00Z", "2026-07-14T22:00:00Z"),
        # the day the clocks go forward (29 March 2026) began at 00:00 UTC+1
        ("2026-03-29T12:00:00Z", "2026-03-29T12:00:00Z", "2026-03-28T23:00:00Z"),
        # and the day they go back (25 October 2026) at 00:00 UTC+2
        ("2026-10-25T12:34:56.789Z", "2026-10-25T12:00:00Z", "2026-10-24T22:00:00Z"),
    ],
)
def test_period_starts(instant: str, hour: str, day: str) -> None:
    assert period_start(Period.HOUR, at(instant), PARIS) == at(hour)
    start = period_start(Period.DAY, at(instant), PARIS)
    assert start == at(day)
    assert start.utcoffset() == timedelta(0)


def test_a_period_closes_once_when_its_hour_or_day_ends(constants: PlantConstants) -> None:
    accumulator = KpiAccumulator(constants, PARIS)
    step = inputs()
    assert accumulator.add(at("2026-01-15T22:58:00Z"), step, FAN, 60.0) == []
    assert accumulator.add(at("2026-01-15T22:59:00Z"), step, FAN, 60.0) == []
    # 23:00 UTC: a new hour, and midnight in Paris
    closed = accumulator.add(at("2026-01-15T23:00:30Z"), step, FAN, 60.0)
    assert [(k.period, k.start) for k in closed] == [
        (Period.HOUR, at("2026-01-15T22:00:00Z")),
        (Period.DAY, at("2026-01-14T23:00:00Z")),
    ]
    assert all(k.it_energy_kwh == pytest.approx(45.0 * 2 / 60) for k in closed)
    assert accumulator.add(at("2026-01-15T23:01:30Z"), step, FAN, 60.0) == []  # once
    # the next hour closes the hour alone: the local day goes on
    closed = accumulator.add(at("2026-01-16T00:00:30Z"), step, FAN, 60.0)
    assert [(k.period, k.start) for k in closed] == [(Period.HOUR, at("2026-01-15T23:00:00Z"))]
    assert closed[0].it_energy_kwh == pytest.approx(45.0 * 2 / 60)

    open_now = {k.period: k for k in accumulator.snapshot()}
    assert open_now[Period.HOUR].start == at("2026-01-16T00:00:00Z")
    assert open_now[Period.HOUR].it_energy_kwh == pytest.approx(45.0 / 60)
    assert open_now[Period.DAY].start == at("2026-01-15T23:00:00Z")
    assert open_now[Period.DAY].it_energy_kwh == pytest.approx(45.0 * 3 / 60)


def test_state_round_trip_keeps_open_periods(constants: PlantConstants) -> None:
    accumulator = KpiAccumulator(constants, PARIS)
    for minute in range(10):
        accumulator.add(at(f"2026-01-15T06:{minute:02d}:30Z"), inputs(), FAN, 60.0)
    saved = json.loads(json.dumps(accumulator.state()))  # as the spool keeps it

    later = KpiAccumulator(constants, PARIS)
    later.restore(saved, at("2026-01-15T06:20:00Z"))
    assert later.snapshot() == accumulator.snapshot()

    # both go on alike (the restored one has no tank reading yet: that step is not covered)
    step = inputs()
    accumulator.add(at("2026-01-15T06:10:30Z"), step, FAN, 60.0)
    later.add(at("2026-01-15T06:10:30Z"), step, FAN, 60.0)
    ours = {k.period: k for k in accumulator.snapshot()}
    theirs = {k.period: k for k in later.snapshot()}
    assert theirs[Period.HOUR].it_energy_kwh == pytest.approx(45.0 * 11 / 60)
    assert theirs[Period.HOUR].it_energy_kwh == ours[Period.HOUR].it_energy_kwh
    # the first step of all had no tank reading either
    assert ours[Period.HOUR].coverage == pytest.approx(10 / 11)
    assert theirs[Period.HOUR].coverage == pytest.approx(9 / 11)


def test_restore_drops_periods_no_longer_open(constants: PlantConstants) -> None:
    accumulator = KpiAccumulator(constants, PARIS)
    accumulator.add(at("2026-01-15T06:00:30Z"), inputs(), FAN, 60.0)
    saved = json.loads(json.dumps(accumulator.state()))

    next_hour = KpiAccumulator(constants, PARIS)
    next_hour.restore(saved, at("2026-01-15T07:00:01Z"))
    assert set(next_hour.open) == {Period.DAY}  # the hour is over, the day goes on
    assert next_hour.open[Period.DAY] == accumulator.open[Period.DAY]

    next_day = KpiAccumulator(constants, PARIS)
    next_day.restore(saved, at("2026-01-15T23:00:00Z"))  # midnight in Paris
    assert next_day.open == {}


def test_restore_ignores_unreadable_state(constants: PlantConstants) -> None:
    accumulator = KpiAccumulator(constants, PARIS)
    accumulator.restore(
        {"hour": {"start": "not a time", "totals": {}}, "day": {"totals": {}}, "x": 1},
        at("2026-01-15T06:00:00Z"),
    )
    assert accumulator.open == {}

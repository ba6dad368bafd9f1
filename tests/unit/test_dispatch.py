"""Plant dispatch: modes, total IT power, sharing caps, the dry cooler. Pure functions."""

from __future__ import annotations

from dataclasses import replace

import pytest

from controller.config.site import Loads, Policy, SpaceHeating
from controller.control.dispatch import (
    Candidate,
    DispatchState,
    Mode,
    PlantLimits,
    configured_load,
    cooler_aim,
    dry_cooler_command,
    plan,
    plant_minimum,
    share_caps,
    state_of_charge,
)
from controller.control.inputs import PlantInputs
from controller.control.peak import PeakMemory
from controller.water import VOLUMETRIC_HEAT

HEAT = PlantLimits(
    tank_volume=2.0,
    return_limit=60.0,
    hard_return_limit=67.0,
    outlet_setpoint=65.0,
    policy=Policy.HEAT_PRIORITY,
    tank_reserve=0.6,
    store_bottom=63.5,
)
COMPUTE = replace(HEAT, policy=Policy.COMPUTE_PRIORITY)
LOADS = Loads(space_heating=SpaceHeating.model_validate({"design_load": "110 kW"}))
THREE = [Candidate(i, 20e3, 12e3, 0.94) for i in range(3)]


def plant(
    load: float = 30e3,
    tank: tuple[float | None, ...] = (62.0, 58.0, 52.0, 45.0),
    ret: float = 45.0,
    backup: float = 0.0,
) -> PlantInputs:
    flow = 1e-3
    return PlantInputs(
        tank=tank,
        outdoor=0.0,
        building_supply=40.0 + load / (VOLUMETRIC_HEAT * flow),
        building_return=40.0,
        building_flow=flow,
        supply=65.0,
        ret=ret,
        backup_heat=backup,
    )


def test_state_of_charge_is_the_share_of_layers_between_empty_and_full() -> None:
    assert state_of_charge((65.0, 65.0, 40.0, 40.0), empty=40.0, full=65.0) == 0.5
    assert state_of_charge((70.0, None, 30.0), empty=40.0, full=65.0) == 0.5  # clipped, skips None
    assert state_of_charge((None, None), empty=40.0, full=65.0) is None


def test_configured_load_follows_the_heating_curve() -> None:
    cold = configured_load(LOADS, -10.0)
    mild = configured_load(LOADS, 5.0)
    assert cold == pytest.approx(110e3)
    assert 0 < mild < cold
    assert configured_load(LOADS, 15.0) == 0.0


def test_running_caissons_share_the_target_each_at_least_at_its_minimum() -> None:
    caps = share_caps(45e3, THREE)
    assert sum(caps.values()) == pytest.approx(45e3)
    assert all(cap >= 12e3 for cap in caps.values())
    uneven = [Candidate(0, 20e3, 12e3, 0.94), Candidate(1, 14e3, 12e3, 0.94)]
    caps = share_caps(30e3, uneven)
    assert caps[0] == pytest.approx(12e3 + 6e3 * 8 / 10)  # the rest by headroom
    assert caps[1] == pytest.approx(12e3 + 6e3 * 2 / 10)
    assert share_caps(0.0, THREE) == {0: 0.0, 1: 0.0, 2: 0.0}


def test_heat_mode_follows_the_load_and_the_tank_reserve() -> None:
    result, _ = plan(HEAT, LOADS, DispatchState(), plant(load=38e3), THREE, 1.0)
    assert result.mode is Mode.HEAT
    soc = result.soc
    assert soc is not None
    assert soc < 0.6
    assert result.it_target > 38e3 / 0.94  # below its reserve the tank is charged too
    full, _ = plan(
        HEAT, LOADS, DispatchState(), plant(load=38e3, tank=(65.0,) * 4, ret=58.5), THREE, 1.0
    )
    assert full.it_target == 0.0  # a full tank above its reserve is let discharge first


def test_a_heavy_day_stores_heat_for_the_peaks() -> None:
    result, _ = plan(HEAT, LOADS, DispatchState(), plant(load=45e3), THREE, 1.0)
    assert result.mode is Mode.STORE
    assert result.it_target == 60e3


def test_below_one_caissons_minimum_it_charges_then_rests() -> None:
    assert plant_minimum(THREE) == 12e3  # one caisson at its minimum: the others stand by
    light = plant(load=8e3, tank=(64.0, 62.0, 60.0, 50.0))
    charging, state = plan(HEAT, LOADS, DispatchState(), light, THREE, 1.0, top_needed=63.5)
    assert charging.it_target == pytest.approx(plant_minimum(THREE))  # below its reserve
    charged = plant(load=8e3, tank=(65.0, 65.0, 64.0, 57.0), ret=55.0)
    resting, state = plan(HEAT, LOADS, state, charged, THREE, 1.0, top_needed=63.5)
    assert resting.it_target == 0.0
    still_resting, state = plan(HEAT, LOADS, state, light, THREE, 1.0, top_needed=63.5)
    assert still_resting.it_target == 0.0  # hysteresis: not until the tank runs low
    low = plant(load=8e3, tank=(64.0, 50.0, 45.0, 42.0))
    again, _ = plan(HEAT, LOADS, state, low, THREE, 1.0, top_needed=63.5)
    assert again.it_target >= plant_minimum(THREE)


def test_a_tank_top_too_cool_for_the_loads_is_charged_at_one_caissons_full_power() -> None:
    """Hot water needs the top at 63.5 °C: one caisson's full power heats it back in minutes
    (its minimum would take most of an hour, with the backup boiler firing for the showers)."""
    cool_top = plant(load=8e3, tank=(61.0, 58.0, 52.0, 45.0))
    result, _ = plan(HEAT, LOADS, DispatchState(), cool_top, THREE, 1.0, top_needed=63.5)
    assert result.it_target == pytest.approx(20e3)
    warm_top = plant(load=8e3, tank=(64.0, 58.0, 52.0, 45.0))
    result, _ = plan(HEAT, LOADS, DispatchState(), warm_top, THREE, 1.0, top_needed=63.5)
    assert result.it_target < 20e3


def test_a_plant_short_of_heat_lately_keeps_its_tank_full() -> None:
    """Heat priority: after the backup boiler has fired (`short`), STORE, so that a full tank
    meets the next peak before the backup does; the tank full, the caissons follow the load."""
    mild = plant(load=20e3)
    heat, _ = plan(HEAT, LOADS, DispatchState(), mild, THREE, 1.0)
    assert heat.mode is Mode.HEAT
    short, _ = plan(HEAT, LOADS, DispatchState(), mild, THREE, 1.0, short=True)
    assert short.mode is Mode.STORE
    assert short.it_target > heat.it_target
    full = plant(load=20e3, tank=(65.0,) * 4, ret=58.5)
    kept, _ = plan(
        HEAT, LOADS, DispatchState(mode=Mode.STORE, load=20e3), full, THREE, 1.0, short=True
    )
    assert kept.it_target == pytest.approx(20e3 / 0.94, rel=0.01)


def test_a_plant_short_of_heat_lately_charges_its_tank_deeper() -> None:
    """Usually the tank is full with its bottom 2 K under the dry cooler's 60 °C default; after a
    shortfall a heat-priority plant charges it on to `store_bottom` (each kelvin of its bottom is
    heat the next peak takes from it rather than from the backup boiler). Compute priority keeps
    the usual mark: its full tank is where the dry cooler starts."""
    warm = plant(load=20e3, tank=(66.0, 65.0, 63.0, 59.0), ret=59.0)
    state = DispatchState(mode=Mode.STORE, load=20e3)
    holding, _ = plan(HEAT, LOADS, state, warm, THREE, 1.0, outlet_setpoint=68.0)
    deeper, deep_state = plan(
        HEAT, LOADS, state, warm, THREE, 1.0, outlet_setpoint=68.0, short=True
    )
    assert holding.it_target <= 20e3 / 0.94 + 1.0  # full: follows the load
    assert deeper.mode is Mode.STORE
    assert deeper.it_target > 20e3 / 0.94 + 1e3  # not full yet: charges on
    assert not deep_state.full
    deep = plant(load=20e3, tank=(68.5, 68.0, 66.5, HEAT.store_bottom), ret=HEAT.store_bottom)
    full, full_state = plan(HEAT, LOADS, state, deep, THREE, 1.0, outlet_setpoint=68.5, short=True)
    assert full_state.full
    assert full.it_target == pytest.approx(20e3 / 0.94, rel=0.01)
    rejecting, compute_state = plan(
        COMPUTE, LOADS, DispatchState(mode=Mode.STORE), warm, THREE, 1.0, short=True
    )
    assert compute_state.full
    assert rejecting.mode is Mode.REJECT


def test_a_peak_near_capacity_within_the_day_keeps_the_tank_charged() -> None:
    """Yesterday's morning peak came near the caissons' 56 kW: the tank is charged now, in the
    evening's light load, so that it is full whenever the next one comes. The capacity is what the
    caissons give at a peak, not what their pumps carry over the warm return of a charged tank
    (else a charged tank would keep itself charging)."""
    evening = plant(load=30e3)
    quiet, _ = plan(HEAT, LOADS, DispatchState(), evening, THREE, 1.0)
    assert quiet.mode is Mode.HEAT
    after_peak = DispatchState(peaks=PeakMemory(past=(52e3,) + (30e3,) * 10))
    due, state = plan(HEAT, LOADS, after_peak, evening, THREE, 1.0)
    assert due.mode is Mode.STORE
    assert due.it_target > quiet.it_target
    assert state.peaks.peak == 52e3
    warm_return = [Candidate(i, 14.8e3, 12e3, 0.94, peak_power=20e3) for i in range(3)]
    mild_peak = DispatchState(peaks=PeakMemory(past=(45e3,)))  # over 0.9 × 41.7 kW, not 56 kW
    held, _ = plan(HEAT, LOADS, mild_peak, evening, warm_return, 1.0)
    assert held.mode is Mode.HEAT
    forgotten = DispatchState(peaks=PeakMemory(past=(52e3,) + (30e3,) * 22, elapsed=3599.0))
    _, state = plan(HEAT, LOADS, forgotten, evening, THREE, 1.0)
    assert state.peaks.peak < 52e3  # a day later


def test_compute_priority_runs_flat_out_and_rejects_when_the_tank_is_full() -> None:
    storing, _ = plan(COMPUTE, LOADS, DispatchState(), plant(load=0.0), THREE, 1.0)
    assert storing.mode is Mode.STORE
    assert storing.it_target == 60e3
    full = plant(load=0.0, tank=(65.0,) * 4, ret=58.0)
    rejecting, _ = plan(COMPUTE, LOADS, DispatchState(mode=Mode.STORE), full, THREE, 1.0)
    assert rejecting.mode is Mode.REJECT
    assert rejecting.it_target == 60e3
    assert rejecting.dry_cooler > 0.0  # the return is above the supervisor's aim


def test_the_plan_says_when_a_peak_is_due() -> None:
    """A compute-priority plant rejects its surplus whatever comes; the plan says whether a peak
    is due (the load came near the caissons' capacity within the day, or the backup fired lately),
    for the reset to store that surplus hot instead."""
    full = plant(load=0.0, tank=(65.0,) * 4, ret=58.0)
    summer, _ = plan(COMPUTE, LOADS, DispatchState(mode=Mode.REJECT), full, THREE, 1.0)
    assert summer.mode is Mode.REJECT
    assert not summer.peak_due
    winter = DispatchState(mode=Mode.REJECT, peaks=PeakMemory(past=(52e3,)))  # 0.9 × 56.4 kW
    before_peak, _ = plan(COMPUTE, LOADS, winter, full, THREE, 1.0)
    assert before_peak.mode is Mode.REJECT
    assert before_peak.peak_due
    mild = DispatchState(mode=Mode.REJECT, peaks=PeakMemory(past=(48e3,)))
    assert not plan(COMPUTE, LOADS, mild, full, THREE, 1.0)[0].peak_due
    after_backup, _ = plan(COMPUTE, LOADS, DispatchState(), full, THREE, 1.0, short=True)
    assert after_backup.peak_due


def test_a_return_the_heat_cannot_leave_sheds_compute() -> None:
    hot = plant(load=10e3, tank=(65.0,) * 4, ret=66.5)  # 0.5 K from the caissons' hard limit
    state = DispatchState(mode=Mode.REJECT)
    for _ in range(60):
        result, state = plan(COMPUTE, LOADS, state, hot, THREE, 1.0)
    assert result.mode is Mode.SHED
    assert result.it_target < 60e3
    cool = plant(load=10e3, tank=(65.0,) * 4, ret=50.0)
    for _ in range(2000):
        result, state = plan(COMPUTE, LOADS, state, cool, THREE, 1.0)
    assert result.mode is not Mode.SHED  # released once the return has cooled
    assert result.it_target == 60e3


def test_a_hot_return_while_the_backup_fires_is_the_buildings_and_sheds_nothing() -> None:
    """A cold snap: the radiators return hot, the backup boiler fires. The heat has somewhere to
    go (the building wants more): no shed, and no dry cooling of the supervisor's."""
    cold_snap = plant(load=130e3, tank=(69.0, 68.0, 67.0, 66.5), ret=66.5, backup=80e3)
    state = DispatchState()
    for _ in range(600):
        result, state = plan(HEAT, LOADS, state, cold_snap, THREE, 1.0)
    assert result.mode is not Mode.SHED
    assert result.it_target == 60e3
    assert result.backup_firing
    assert result.dry_cooler == 0.0


def test_the_supervisors_dry_cooling_stops_while_the_backup_fires() -> None:
    full = plant(load=0.0, tank=(65.0,) * 4, ret=59.0)
    state = DispatchState(mode=Mode.REJECT, cooler=0.5)
    rejecting, state = plan(COMPUTE, LOADS, state, full, THREE, 1.0)
    assert rejecting.mode is Mode.REJECT
    assert rejecting.dry_cooler > 0.5
    peak = replace(full, backup_heat=20e3)  # a morning peak: the backup boiler fires
    firing, state = plan(COMPUTE, LOADS, state, peak, THREE, 1.0)
    assert firing.backup_firing
    assert firing.dry_cooler == 0.0
    after, _ = plan(COMPUTE, LOADS, state, full, THREE, 1.0)
    assert 0.0 < after.dry_cooler < 0.01  # starts again from closed, on its integral


def test_a_full_tank_stays_full_until_it_has_clearly_discharged() -> None:
    """No mode flapping at the tank's edge: full at its bottom 2 K from the limit, not full again
    only 3 K further down."""
    state = DispatchState(mode=Mode.STORE)
    at_edge = plant(load=0.0, tank=(65.0, 64.0, 62.0, 58.0), ret=58.0)
    result, state = plan(COMPUTE, LOADS, state, at_edge, THREE, 1.0)
    assert result.mode is Mode.REJECT
    assert state.full
    just_below = plant(load=0.0, tank=(65.0, 64.0, 60.0, 56.0), ret=56.0)
    result, state = plan(COMPUTE, LOADS, state, just_below, THREE, 1.0)
    assert result.mode is Mode.REJECT
    discharged = plant(load=0.0, tank=(65.0, 60.0, 50.0, 45.0), ret=45.0)
    result, state = plan(COMPUTE, LOADS, state, discharged, THREE, 1.0)
    assert result.mode is Mode.STORE
    assert not state.full


def test_a_heavy_day_with_a_full_tank_stores_on_at_the_load_without_stopping() -> None:
    """Heat priority, the day's load near capacity: STORE. The tank full, the caissons follow the
    load (not its reserve, which would stop them and restart them at the tank's edge)."""
    state = DispatchState(mode=Mode.STORE, trend=45e3, load=40e3)
    full = plant(load=40e3, tank=(65.0,) * 4, ret=58.5)
    result, _ = plan(HEAT, LOADS, state, full, THREE, 1.0)
    assert result.mode is Mode.STORE
    assert result.it_target == pytest.approx(40e3 / 0.94, rel=0.01)


def test_lost_plant_measurements_mean_safe_mode() -> None:
    blind = replace(plant(), tank=(None, None, None, None), ret=None)
    result, _ = plan(HEAT, LOADS, DispatchState(), blind, THREE, 1.0)
    assert result.mode is Mode.SAFE
    assert result.it_target == 0.0


@pytest.mark.parametrize(
    ("mode", "ret", "previous", "expected"),
    [
        (Mode.HEAT, 65.0, 0.5, 0.0),  # heat-priority modes never reject heat
        (Mode.REJECT, 57.0, 0.4, 0.4),  # at its aim: holds
        (Mode.REJECT, 59.0, 0.4, 0.402),  # above: opens
        (Mode.REJECT, 50.0, 0.0, 0.0),  # below and closed: stays closed
        (Mode.SHED, 70.0, 0.9995, 1.0),  # saturates
        (Mode.REJECT, None, 0.4, 0.0),  # no return measurement: leaves it to the PLC
    ],
)
def test_dry_cooler_integral_action(
    mode: Mode, ret: float | None, previous: float, expected: float
) -> None:
    assert dry_cooler_command(mode, ret, 57.0, previous, 1.0) == pytest.approx(expected)
    assert dry_cooler_command(mode, ret, 57.0, previous, 1.0, backup_firing=True) == 0.0


def test_shedding_cools_the_return_only_back_under_where_the_shed_lets_go() -> None:
    """A charged tank sends a heat-priority plant's return hot (66 °C, 1 K under the caissons'
    67 °C): the shed cuts compute and the dry cooler helps only down to 64 °C; rejecting keeps
    the return 3 K under the PLC's 60 °C default."""
    assert cooler_aim(Mode.REJECT, 60.0, hot=66.0) == 57.0
    assert cooler_aim(Mode.SHED, 60.0, hot=66.0) == 64.0
    assert cooler_aim(Mode.SHED, 70.0, hot=66.0) == 67.0  # never warmer than rejecting
    hot = plant(load=5e3, tank=(68.0,) * 4, ret=66.5)
    state = DispatchState(mode=Mode.STORE)
    for _ in range(300):
        shedding, state = plan(HEAT, LOADS, state, hot, THREE, 1.0)
    assert shedding.mode is Mode.SHED
    assert shedding.dry_cooler > 0.0
    cooled = plant(load=5e3, tank=(68.0,) * 4, ret=63.5)
    for _ in range(30):
        after, state = plan(HEAT, LOADS, state, cooled, THREE, 1.0)
    assert after.mode is Mode.SHED  # the shed limit still rising back
    assert after.dry_cooler < shedding.dry_cooler  # below its aim: closing


def test_the_first_measured_load_replaces_the_stand_in() -> None:
    """At start-up the building's meters may answer a few scans after the tank's sensors: the
    heating curve's stand-in (here at an unknown outdoor temperature) must not linger in the
    filters for their time constants once the measurement is there."""
    blind = replace(plant(load=5e3), building_flow=None, outdoor=None)
    guessed, state = plan(HEAT, LOADS, DispatchState(), blind, THREE, 1.0)
    assert guessed.load == pytest.approx(configured_load(LOADS, None))
    measured, state = plan(HEAT, LOADS, state, plant(load=5e3), THREE, 1.0)
    assert measured.load == pytest.approx(5e3)
    assert state.trend == pytest.approx(5e3)
    later, _ = plan(HEAT, LOADS, state, plant(load=7e3), THREE, 1.0)
    assert later.load is not None
    assert 5e3 < later.load < 5.1e3  # filtered from there on

"""Staging (controller/control/staging.py): which caissons run. Pure, table-driven."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest

from controller.config.site import Staging as Times
from controller.control.staging import (
    DEFAULT_TIMES,
    Staging,
    StagingState,
    Unit,
    UnitState,
    stage,
)

CAPACITY = 20e3
STAGE_UP_DELAY = DEFAULT_TIMES.up_delay
STAGE_DOWN_DELAY = DEFAULT_TIMES.down_delay
IDLE_STOP_DELAY = DEFAULT_TIMES.idle_delay
MIN_RUN = DEFAULT_TIMES.min_run
MIN_OFF = DEFAULT_TIMES.min_off
ROTATE_GAP = DEFAULT_TIMES.rotate_after


def units(count: int = 3, ready: Sequence[bool] | None = None, running: int = 0) -> list[Unit]:
    ready = ready if ready is not None else [True] * count
    return [Unit(i, ready[i], CAPACITY, i < running) for i in range(count)]


def hold(
    state: StagingState,
    plant: Sequence[Unit],
    demand: float,
    start: float,
    seconds: float,
    times: Times = DEFAULT_TIMES,
) -> tuple[Staging, float]:
    """Stage every second for `seconds` at a constant demand; (last result, time after)."""
    now = start
    result = stage(state, plant, demand, now, 1.0, times)
    while now < start + seconds:
        now += 1.0
        result = stage(result.state, plant, demand, now, 1.0, times)
    return result, now


def test_the_first_caisson_starts_at_once_and_the_next_after_the_stage_up_delay() -> None:
    plant = units()
    first = stage(StagingState(), plant, 15e3, 0.0, 1.0)
    assert len(first.running) == 1
    # 30 kW wants a second caisson, but only once it has wanted it for the delay.
    result, now = hold(first.state, plant, 30e3, 1.0, STAGE_UP_DELAY - 2)
    assert len(result.running) == 1
    result, now = hold(result.state, plant, 30e3, now + 1, 2)
    assert len(result.running) == 2


def test_a_demand_within_the_running_capacity_starts_nobody() -> None:
    plant = units(running=2)
    result, _ = hold(StagingState(), plant, 0.85 * 2 * CAPACITY, 0.0, 2 * STAGE_UP_DELAY)
    assert len(result.running) == 2


def test_it_stages_down_when_the_load_fits_one_fewer_after_the_delay_and_the_minimum_run() -> None:
    plant = units(running=3)  # as the PLCs run them at start-up: free to stop at once
    demand = 0.7 * 2 * CAPACITY  # fits two within DOWN_SHARE
    result, now = hold(StagingState(), plant, demand, 0.0, STAGE_DOWN_DELAY - 2)
    assert len(result.running) == 3
    result, now = hold(result.state, plant, demand, now + 1, 2)
    assert len(result.running) == 2


def test_a_stopped_caisson_rests_its_minimum_off_time() -> None:
    known = {0: UnitState(True, float("-inf")), 1: UnitState(False, -100.0)}
    state = StagingState(known, up_since=-10 * STAGE_UP_DELAY)  # more has long been wanted
    plant = units(2)
    result, now = hold(state, plant, 2 * CAPACITY, 0.0, MIN_OFF - 100 - 2)
    assert result.running == {0}
    result, _ = hold(result.state, plant, 2 * CAPACITY, now + 1, 2)
    assert result.running == {0, 1}


def test_a_started_caisson_runs_its_minimum_run_time_before_it_may_stop() -> None:
    plant = units()
    started = stage(StagingState(), plant, 15e3, 0.0, 1.0)
    (lead,) = started.running
    result, now = hold(started.state, plant, 0.0, 1.0, MIN_RUN - 10)
    assert result.running == {lead}  # nothing wanted, but it has not run its minimum yet
    result, now = hold(result.state, plant, 0.0, now + 1, 20)
    assert result.running == frozenset()


def test_the_last_caisson_stops_once_nothing_has_been_wanted_for_the_idle_delay() -> None:
    plant = units(running=1)
    result, now = hold(StagingState(), plant, 0.0, 0.0, IDLE_STOP_DELAY - 2)
    assert result.running == {0}
    result, _ = hold(result.state, plant, 0.0, now + 1, 2)
    assert result.running == frozenset()


@pytest.mark.parametrize(
    ("run_hours", "expected_start", "expected_stop"),
    [
        ((5.0, 1.0, 3.0), 1, None),  # the fewest run hours starts
        ((0.0, 0.0, 0.0), 0, None),  # a tie: the lowest index
    ],
)
def test_lead_and_lag_rotate_by_run_hours(
    run_hours: tuple[float, ...], expected_start: int, expected_stop: int | None
) -> None:
    known = {i: UnitState(False, float("-inf"), h * 3600) for i, h in enumerate(run_hours)}
    result = stage(StagingState(known), units(), 10e3, 0.0, 1.0)
    assert result.running == {expected_start}


def test_the_most_run_caisson_stops_first() -> None:
    known = {i: UnitState(True, float("-inf"), h * 3600) for i, h in enumerate((2.0, 9.0, 4.0))}
    result, _ = hold(StagingState(known), units(), 0.5 * CAPACITY, 0.0, STAGE_DOWN_DELAY + 1)
    assert result.running == {0, 2}


def test_a_caisson_far_ahead_in_run_hours_hands_over_to_a_resting_one() -> None:
    known = {0: UnitState(True, float("-inf"), ROTATE_GAP + 3600), 1: UnitState(False, -1e9, 0.0)}
    plant = units(2)
    result, now = hold(StagingState(known), plant, 0.3 * CAPACITY, 0.0, STAGE_UP_DELAY + 1)
    assert result.running == {0, 1}  # the rested one starts although the demand fits one
    result, _ = hold(result.state, plant, 0.3 * CAPACITY, now + 1, STAGE_DOWN_DELAY + 1)
    assert result.running == {1}  # and the one with the most run time stops


def test_a_caisson_not_ready_is_skipped_and_one_that_drops_out_is_replaced_at_once() -> None:
    plant = units(ready=[False, True, True])
    first = stage(StagingState(), plant, 10e3, 0.0, 1.0)
    assert first.running == {1}  # 0 has the fewest run hours (a tie) but is not ready
    # Communication with the running one is lost mid-start: it leaves, the next starts now.
    lost = [replace(u, ready=False) if u.index == 1 else u for u in plant]
    result = stage(first.state, lost, 10e3, 1.0, 1.0)
    assert result.running == {2}


def test_caissons_back_from_a_dropout_rejoin_at_once_while_they_are_wanted() -> None:
    plant = units(running=3)
    running = stage(StagingState(), plant, 3 * CAPACITY, 0.0, 1.0)
    assert running.running == {0, 1, 2}
    maintenance = [replace(u, ready=False) for u in plant]
    out = stage(running.state, maintenance, 3 * CAPACITY, 1.0, 1.0)
    assert out.running == frozenset()
    back, _now = hold(out.state, plant, 3 * CAPACITY, 2.0, 3)
    assert back.running == {0, 1, 2}  # no stage-up delay, no minimum off time


def test_one_caisson_left_runs_alone_and_none_left_runs_nothing() -> None:
    one = units(ready=[False, False, True])
    result, _ = hold(StagingState(), one, 3 * CAPACITY, 0.0, 3 * STAGE_UP_DELAY)
    assert result.running == {2}  # more is wanted, but nobody else can start
    none = units(ready=[False, False, False])  # all locked out
    result, _ = hold(result.state, none, 3 * CAPACITY, 1e4, 10)
    assert result.running == frozenset()


def test_a_restarted_controller_keeps_what_the_plcs_run_and_starts_nothing_unasked() -> None:
    plant = [Unit(0, True, CAPACITY, True), Unit(1, True, CAPACITY, False)]
    result = stage(StagingState(), plant, 0.5 * CAPACITY, 0.0, 1.0)
    assert result.running == {0}  # the standing-by one stays stopped


def test_run_hours_carried_over_a_restart_are_taken_at_first_sight() -> None:
    """A restarted controller keeps what the PLCs run, and the rotation goes on from the run
    hours the earlier one left (carryover.py), not from zero."""
    plant = [Unit(0, True, CAPACITY, True), Unit(1, True, CAPACITY, False)]
    carried = {0: 9 * 3600.0, 1: 2 * 3600.0}
    result = stage(StagingState(carried=carried), plant, 0.5 * CAPACITY, 0.0, 1.0)
    assert result.running == {0}
    assert result.state.units[0] == UnitState(True, float("-inf"), 9 * 3600.0 + 1.0)
    assert result.state.units[1].run_seconds == 2 * 3600.0
    # Of two resting caissons the one with fewer carried hours leads.
    idle = [Unit(0, True, CAPACITY, False), Unit(1, True, CAPACITY, False)]
    assert stage(StagingState(carried=carried), idle, 10e3, 0.0, 1.0).running == {1}
    assert stage(StagingState(), idle, 10e3, 0.0, 1.0).running == {0}


def test_the_site_files_times_are_the_ones_staging_keeps() -> None:
    quick = Times.model_validate(
        {"up_delay": "10 s", "down_delay": "20 s", "idle_delay": "5 s", "min_run": "30 s"}
    )
    plant = units(running=3)
    result, now = hold(StagingState(), plant, 0.5 * CAPACITY, 0.0, 19, quick)
    assert len(result.running) == 3
    result, now = hold(result.state, plant, 0.5 * CAPACITY, now + 1, 2, quick)
    assert len(result.running) == 2

"""Alarm conditions: each kind's semantics, deadband and delays against chattering, stale values."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import pytest

from controller.alarms.conditions import (
    Condition,
    DeviationCondition,
    DiscreteCondition,
    LimitCondition,
    RateCondition,
)
from controller.alarms.model import Kind


def run(
    condition: Condition, values: Sequence[float | bool | None], step: float = 1.0
) -> list[bool]:
    """The condition after each value, one value per `step` seconds from t = 0."""
    return [condition.evaluate(value, i * step) for i, value in enumerate(values)]


def activations(states: list[bool]) -> int:
    return sum(1 for before, after in zip([False, *states], states, strict=False) if after > before)


# ---------------------------------------------------------------- semantics, no delays


@pytest.mark.parametrize(
    ("kind", "values", "expected"),
    [
        # limit 10, deadband 2: raised strictly above 10, cleared strictly below 8
        (Kind.HI, [9, 10, 10.5, 9, 8.0, 7.9, 10.1], [0, 0, 1, 1, 1, 0, 1]),
        (Kind.HIHI, [9, 10, 10.5, 9, 8.0, 7.9, 10.1], [0, 0, 1, 1, 1, 0, 1]),
        # limit 10, deadband 2: raised strictly below 10, cleared strictly above 12
        (Kind.LO, [11, 10, 9.5, 11, 12.0, 12.1, 9.9], [0, 0, 1, 1, 1, 0, 1]),
        (Kind.LOLO, [11, 10, 9.5, 11, 12.0, 12.1, 9.9], [0, 0, 1, 1, 1, 0, 1]),
    ],
)
def test_limit_kinds_raise_beyond_the_limit_and_clear_past_the_deadband(
    kind: Kind, values: list[float], expected: list[int]
) -> None:
    condition = LimitCondition(kind, limit=10.0, deadband=2.0)
    assert run(condition, values) == [bool(e) for e in expected]


def test_limit_without_deadband_clears_as_soon_as_it_is_back() -> None:
    condition = LimitCondition(Kind.HI, limit=10.0)
    assert run(condition, [10.5, 10.0, 9.99]) == [True, True, False]


@pytest.mark.parametrize(
    ("alarm_value", "values", "expected"),
    [
        (True, [False, True, True, False], [False, True, True, False]),
        (False, [True, False, True], [False, True, False]),
        (True, [0, 1, 0], [False, True, False]),  # a numeric flag
    ],
)
def test_discrete_is_active_at_its_alarm_value(
    alarm_value: bool, values: list[bool], expected: list[bool]
) -> None:
    assert run(DiscreteCondition(alarm_value), values) == expected


def test_deviation_compares_with_the_setpoint_of_each_call() -> None:
    condition = DeviationCondition(limit=10.0, deadband=2.0)
    calls = [  # (value, setpoint, expected)
        (50.0, 45.0, False),
        (50.0, 39.0, True),  # 11 above
        (50.0, 41.0, True),  # 9: inside the deadband
        (50.0, 42.5, False),  # 7.5: cleared
        (30.0, 41.0, True),  # 11 below
        (30.0, None, True),  # no setpoint: kept
        (None, 30.0, True),  # no value: kept
        (40.0, 40.0, False),
    ]
    for t, (value, setpoint, expected) in enumerate(calls):
        assert condition.evaluate(value, float(t), setpoint) is expected, (t, value, setpoint)


def test_rate_is_taken_over_a_whole_window_both_ways() -> None:
    limit = 2.0 / 60  # 2 units per minute
    rising = RateCondition(limit, window=60.0)
    states = run(rising, [3.0 / 60 * t for t in range(120)])  # 3 per minute
    assert states[:60] == [False] * 60  # less than a window of history yet
    assert all(states[60:])
    falling = RateCondition(limit, window=60.0)
    assert run(falling, [100 - 3.0 / 60 * t for t in range(120)])[-1] is True
    slow = RateCondition(limit, window=60.0)
    assert not any(run(slow, [1.0 / 60 * t for t in range(300)]))


def test_rate_averages_a_step_over_the_window() -> None:
    """A 1-unit step is 1 per minute over a 1-minute window, whatever a single sample says."""
    condition = RateCondition(limit=2.0 / 60, window=60.0)
    assert not any(run(condition, [0.0] * 100 + [1.0] * 100))
    condition = RateCondition(limit=2.0 / 60, window=60.0)
    states = run(condition, [0.0] * 100 + [3.0] * 100)
    assert states[99:101] == [False, True]
    assert states[159:161] == [True, False]  # at t = 160 the step is a window old


def test_rate_over_sparse_values_still_spans_a_whole_window() -> None:
    """Values 50 s apart: the base is the newest one at least a window old (t = 0), never a
    nearer one that would make the span shorter than the window."""
    condition = RateCondition(limit=2.0 / 60, window=60.0)
    assert condition.evaluate(0.0, 0.0) is False
    assert condition.evaluate(0.0, 50.0) is False  # less than a window yet
    assert condition.evaluate(5.0, 100.0) is True  # 5 in 100 s: 3 per minute


# ---------------------------------------------------------------- delays


def test_on_delay_needs_continuous_truth() -> None:
    condition = LimitCondition(Kind.HI, limit=10.0, on_delay=5.0)
    assert run(condition, [11, 11, 11, 11, 11, 9, 11, 11, 11, 11, 11, 11]) == [
        *[False] * 11,
        True,  # 5 s after the second rise (t = 6 → 11); the first rise was interrupted
    ]


def test_off_delay_needs_continuous_falseness() -> None:
    condition = DiscreteCondition(on_delay=0.0, off_delay=3.0)
    states = run(condition, [True, False, False, True, False, False, False, False])
    assert states == [True, True, True, True, True, True, True, False]


def test_none_keeps_the_state_and_restarts_a_pending_delay() -> None:
    condition = LimitCondition(Kind.HI, limit=10.0, on_delay=3.0)
    # 11 from t=0, no value at t=2, 11 again: the 3 s count restarts at t=3
    assert run(condition, [11, 11, None, 11, 11, 11, 11]) == [False] * 6 + [True]
    active = DiscreteCondition()
    assert run(active, [True, None, None]) == [True, True, True]
    rate = RateCondition(limit=1.0, window=10.0)
    assert rate.evaluate(None, 0.0) is False


def test_preset_sets_the_state_without_delays() -> None:
    condition = LimitCondition(Kind.LO, limit=10.0, on_delay=60.0, off_delay=60.0)
    condition.preset(True)
    assert condition.evaluate(5.0, 0.0) is True
    assert condition.evaluate(20.0, 1.0) is True  # the off delay still applies
    assert condition.evaluate(20.0, 61.0) is False


# ---------------------------------------------------------------- chattering


def noisy_outlet(seed: int) -> list[float]:
    """An hour at 1 s of an outlet temperature about a 72 degC limit: three slow swings of
    ±1.5 K and sensor noise of 0.3 K."""
    rng = random.Random(seed)
    return [
        72.0 + 1.5 * math.sin(2 * math.pi * t / 1200) + rng.gauss(0.0, 0.3) for t in range(3600)
    ]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_deadband_and_delays_stop_chattering(seed: int) -> None:
    values = noisy_outlet(seed)
    bare = activations(run(LimitCondition(Kind.HI, limit=72.0), values))
    guarded_states = run(
        LimitCondition(Kind.HI, limit=72.0, deadband=1.0, on_delay=10.0, off_delay=30.0), values
    )
    guarded = activations(guarded_states)
    assert bare >= 100  # the bare limit chatters with the noise
    assert 2 <= guarded <= 3  # at most once per swing, and it does clear between swings
    assert sum(guarded_states) >= 1200  # raised through the swings' tops, not for moments


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_each_guard_alone_helps(seed: int) -> None:
    values = noisy_outlet(seed)
    bare = activations(run(LimitCondition(Kind.HI, limit=72.0), values))
    deadband = activations(run(LimitCondition(Kind.HI, limit=72.0, deadband=1.0), values))
    delays = activations(
        run(LimitCondition(Kind.HI, limit=72.0, on_delay=10.0, off_delay=30.0), values)
    )
    assert deadband < bare / 5
    assert delays < bare / 5


# ---------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    ("build", "complaint"),
    [
        (lambda: LimitCondition(Kind.RATE, limit=1.0), "hi, hihi, lo or lolo"),
        (lambda: LimitCondition(Kind.HI, limit=1.0, deadband=-1.0), "deadband"),
        (lambda: LimitCondition(Kind.HI, limit=1.0, on_delay=-1.0), "delays"),
        (lambda: DeviationCondition(limit=0.0), "positive"),
        (lambda: DeviationCondition(limit=2.0, deadband=2.0), "below the limit"),
        (lambda: RateCondition(limit=1.0, window=0.0), "window"),
        (lambda: RateCondition(limit=-1.0, window=10.0), "positive"),
    ],
)
def test_bad_arguments_are_refused(build: object, complaint: str) -> None:
    assert callable(build)
    with pytest.raises(ValueError, match=complaint):
        build()

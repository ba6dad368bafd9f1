"""Device health transitions and the reconnect back-off."""

from __future__ import annotations

import random

import pytest

from controller.fieldbus.health import Backoff, DeviceHealth, Health


def test_health_goes_suspect_then_failed_and_back_to_ok_on_one_success() -> None:
    health = DeviceHealth(fail_after=3)
    states = []
    for _ in range(4):
        health.failure("timeout")
        states.append(health.state)
    assert states == [Health.SUSPECT, Health.SUSPECT, Health.FAILED, Health.FAILED]
    health.success()
    assert (health.state, health.consecutive_failures) == (Health.OK, 0)
    assert health.errors == {"timeout": 4}


def test_counting_an_error_does_not_change_the_state() -> None:
    health = DeviceHealth()
    health.count("exception_reply")
    assert (health.state, health.errors) == (Health.OK, {"exception_reply": 1})


def test_backoff_grows_exponentially_with_jitter_up_to_its_cap() -> None:
    backoff = Backoff(base=0.5, cap=8.0, floor=0.1, rng=random.Random(3))
    delays = [backoff.next_delay() for _ in range(12)]
    for attempt, delay in enumerate(delays):
        assert 0.1 <= delay <= min(8.0, 0.5 * 2**attempt)
    assert len(set(delays)) == len(delays)  # jittered: no two controllers in lockstep
    assert max(delays[6:]) > 4.0  # the later ones do reach towards the cap
    backoff.reset()
    assert backoff.next_delay() <= 0.5


@pytest.mark.parametrize("seed", range(5))
def test_backoff_never_goes_below_its_floor(seed: int) -> None:
    backoff = Backoff(base=0.001, cap=0.002, floor=0.05, rng=random.Random(seed))
    assert min(backoff.next_delay() for _ in range(50)) == 0.05

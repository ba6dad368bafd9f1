"""The day's peak load: one maximum per hour, forgotten a day later. Pure."""

from __future__ import annotations

import pytest

from controller.control.peak import HOUR, PeakMemory


def run(memory: PeakMemory, loads: list[float], dt: float = 60.0) -> PeakMemory:
    for load in loads:
        memory = memory.updated(load, dt)
    return memory


def test_the_peak_is_the_highest_load_of_the_last_day() -> None:
    assert PeakMemory().peak == 0.0
    morning = run(PeakMemory(), [30e3] * 60 + [70e3] * 5 + [40e3] * 60)
    assert morning.peak == 70e3
    later = run(morning, [20e3] * 60 * 20)  # 20 h later the morning's peak still counts
    assert later.peak == 70e3
    next_day = run(later, [20e3] * 60 * 4)  # a day after it, it is forgotten
    assert next_day.peak == 20e3


def test_an_hour_is_kept_whatever_the_scan_period() -> None:
    fast = run(PeakMemory(), [10e3, 50e3] * 1800, dt=1.0)
    slow = run(PeakMemory(), [10e3, 50e3] * 3, dt=600.0)
    assert len(fast.past) == len(slow.past) == 1
    assert fast.peak == slow.peak == 50e3


def test_the_memory_holds_a_day_and_no_more() -> None:
    memory = run(PeakMemory(), [float(k) for k in range(100)], dt=HOUR)
    assert len(memory.past) == 23
    assert memory.peak == 99.0
    assert min(memory.past) == pytest.approx(77.0)  # the last 23 closed hours


def test_a_pause_longer_than_a_day_forgets_the_old_peak() -> None:
    memory = run(PeakMemory(), [60e3] * 10, dt=600.0)
    paused = memory.updated(20e3, 3 * 24 * HOUR)
    assert paused.peak == 20e3
    assert len(paused.past) == 23

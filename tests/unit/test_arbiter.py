"""The arbiter: priorities, bounds, rate limits, deadband, lease renewal, write counts."""

from __future__ import annotations

import pytest

from controller.control.arbiter import (
    Bound,
    Output,
    OutputSpec,
    Proposal,
    Source,
    arbitrate,
    assume_sent,
    confirm,
    resolve,
)
from controller.fieldbus.image import PointRef

PUMP = PointRef("c1-skid", "pump_speed_cmd")
CAP = PointRef("c1-skid", "it_cap_cmd")
BACKUP = PointRef("plant-skid", "backup_enable")
SPECS = {
    PUMP: OutputSpec(factor=0.01, deadband=0.005, rate_down=0.01, renew_every=4.0, verify=True),
    CAP: OutputSpec(factor=1000.0, deadband=100.0, rate_up=2000.0, renew_every=4.0),
    BACKUP: OutputSpec(factor=1.0, boolean=True),
}


def auto(value: float) -> Proposal:
    return Proposal(CAP, value, Source.AUTO, reason="auto")


def operator(value: float) -> Proposal:
    return Proposal(CAP, value, Source.OPERATOR, reason="operator")


def at_most(value: float) -> Proposal:
    return Proposal(CAP, value, Source.INTERLOCK, Bound.AT_MOST, "limit")


def at_least(value: float) -> Proposal:
    return Proposal(CAP, value, Source.INTERLOCK, Bound.AT_LEAST, "floor")


def fixed_by_interlock(value: float) -> Proposal:
    return Proposal(CAP, value, Source.INTERLOCK, reason="safe")


@pytest.mark.parametrize(
    ("proposals", "expected"),
    [
        ([auto(15e3)], (15e3, Source.AUTO)),
        ([auto(15e3), operator(8e3)], (8e3, Source.OPERATOR)),
        ([operator(8e3), auto(15e3)], (8e3, Source.OPERATOR)),
        ([auto(15e3), operator(8e3), fixed_by_interlock(10e3)], (10e3, Source.INTERLOCK)),
        ([auto(15e3), at_most(12e3)], (12e3, Source.INTERLOCK)),
        ([auto(10e3), at_most(12e3)], (10e3, Source.AUTO)),  # a bound not reached leaves it
        ([operator(18e3), at_most(12e3)], (12e3, Source.INTERLOCK)),  # operators obey interlocks
        ([auto(0.0), at_least(5e3)], (5e3, Source.INTERLOCK)),
        ([auto(15e3), at_most(12e3), at_most(9e3)], (9e3, Source.INTERLOCK)),  # the tightest
        ([at_most(12e3)], None),  # a bound alone fixes nothing
    ],
)
def test_resolve(proposals: list[Proposal], expected: tuple[float, Source] | None) -> None:
    result = resolve(proposals)
    assert ((result.value, result.source) if result else None) == expected


def run(proposals: list[Proposal], memory: dict[PointRef, Output], now: float, dt: float = 1.0):  # type: ignore[no-untyped-def]
    writes, memory = arbitrate(SPECS, memory, proposals, now, dt)
    for write in writes:
        memory = confirm(memory, write, now)
    return writes, memory


def test_first_value_is_sent_then_only_changes_beyond_the_deadband() -> None:
    memory: dict[PointRef, Output] = {}
    writes, memory = run([auto(10e3)], memory, 0.0)
    assert [(w.ref, w.value) for w in writes] == [(CAP, 10.0)]  # in the point's unit (kW)
    writes, memory = run([auto(10.05e3)], memory, 1.0)
    assert writes == []  # inside the deadband
    writes, memory = run([auto(10.5e3)], memory, 2.0)
    assert [w.value for w in writes] == [10.5]


def test_lease_points_are_renewed_before_half_their_timeout() -> None:
    memory: dict[PointRef, Output] = {}
    sent_at = []
    for t in range(20):
        writes, memory = run([auto(10e3)], memory, float(t))
        sent_at += [t for w in writes if w.ref == CAP]
    assert sent_at == [0, 4, 8, 12, 16]
    assert memory[CAP].writes == 5


def test_rate_limits_apply_to_automatic_values_not_to_interlocks() -> None:
    memory = assume_sent({}, CAP, 0.0)
    writes, memory = run([auto(20e3)], memory, 0.0)
    assert writes[0].value == pytest.approx(2.0)  # 2 kW/s up
    writes, memory = run([auto(20e3)], memory, 1.0)
    assert writes[0].value == pytest.approx(4.0)
    writes, memory = run([auto(20e3), fixed_by_interlock(0.0)], memory, 2.0)
    assert writes[0].value == 0.0  # at once: an interlock moves towards safety


def test_a_released_interlock_bound_lets_go_at_the_rate_limit() -> None:
    memory = assume_sent({}, CAP, 8e3)
    writes, memory = run([auto(20e3), at_most(14e3)], memory, 0.0)
    assert writes[0].value == pytest.approx(10.0)  # the bound rose: 2 kW/s, not a jump to 14
    writes, memory = run([auto(20e3), at_most(5e3)], memory, 1.0)
    assert writes[0].value == pytest.approx(5.0)  # and tightens at once


def test_pump_slows_down_gradually_but_speeds_up_at_once() -> None:
    memory = assume_sent({}, PUMP, 0.9)
    writes, memory = arbitrate(SPECS, memory, [Proposal(PUMP, 0.3, Source.AUTO)], 0.0, 1.0)
    assert writes[0].si_value == pytest.approx(0.89)
    writes, memory = arbitrate(SPECS, memory, [Proposal(PUMP, 1.0, Source.AUTO)], 1.0, 1.0)
    assert writes[0].si_value == 1.0
    assert writes[0].verify  # a critical setpoint is read back


def test_a_failed_write_is_tried_again() -> None:
    memory: dict[PointRef, Output] = {}
    writes, memory = arbitrate(SPECS, memory, [auto(10e3)], 0.0, 1.0)
    assert writes  # not confirmed: the device did not take it
    writes, memory = arbitrate(SPECS, memory, [auto(10e3)], 1.0, 1.0)
    assert [w.value for w in writes] == [10.0]
    assert memory[CAP].writes == 0


def test_start_up_read_back_is_not_rewritten_until_its_lease_is_due() -> None:
    memory = assume_sent({}, CAP, 12e3)
    writes, _ = arbitrate(SPECS, memory, [auto(12e3)], 0.0, 1.0)
    assert [w.renewal for w in writes] == [True]  # its lease renewed at once, same value


def test_booleans_are_written_on_change_only() -> None:
    memory: dict[PointRef, Output] = {}
    backup = [Proposal(BACKUP, 1.0, Source.AUTO)]
    writes, memory = run(backup, memory, 0.0)
    assert [w.value for w in writes] == [True]
    writes, memory = run(backup, memory, 100.0)
    assert writes == []
    writes, memory = run([Proposal(BACKUP, 0.0, Source.OPERATOR), *backup], memory, 101.0)
    assert [w.value for w in writes] == [False]

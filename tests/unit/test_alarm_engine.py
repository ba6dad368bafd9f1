"""The ISA-18.2 alarm state machine: every transition, latching, shelving, suppression by design,
out of service, first-out per caisson and restoring states after a restart."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest

from controller.alarms.engine import AlarmDefinition, AlarmEngine, AlarmStatus
from controller.alarms.metrics import is_annunciation
from controller.alarms.model import AlarmId, Priority, State, Transition

T0 = datetime(2026, 1, 15, 8, 0, tzinfo=UTC)
ALARM = AlarmId("c1", "outlet_temp_hi")
N, U, A, R = State.NORMAL, State.UNACKNOWLEDGED, State.ACKNOWLEDGED, State.RETURNED_UNACKNOWLEDGED
SH, SU, OOS = State.SHELVED, State.SUPPRESSED, State.OUT_OF_SERVICE


class Bench:
    """One alarm, a clock that moves 1 s per event, and the events of the state diagram."""

    def __init__(self, latched: bool = False, priority: Priority = Priority.MEDIUM) -> None:
        definition = AlarmDefinition(ALARM, priority, "Outlet water above 72 °C", latched)
        self.engine = AlarmEngine([definition])
        self.now = T0
        self.suppressed = False
        self.shelved_until = T0

    def tick(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now

    def scan(self, active: bool | None = None) -> list[Transition]:
        conditions = {} if active is None else {ALARM: active}
        suppressed = {ALARM} if self.suppressed else set()
        return self.engine.update(self.tick(), conditions, suppressed)

    def activate(self) -> list[Transition]:
        return self.scan(True)

    def clear(self) -> list[Transition]:
        return self.scan(False)

    def ack(self) -> list[Transition]:
        return self.engine.acknowledge(ALARM, self.tick(), "ana")

    def shelve(self) -> list[Transition]:
        now = self.tick()
        self.shelved_until = now + timedelta(hours=1)
        return self.engine.shelve(ALARM, now, self.shelved_until, "ana", "sensor being replaced")

    def unshelve(self) -> list[Transition]:
        return self.engine.unshelve(ALARM, self.tick(), "ana")

    def expire(self) -> list[Transition]:
        self.now = self.shelved_until - timedelta(seconds=1)
        return self.scan()  # the condition as it was, at the expiry

    def suppress(self) -> list[Transition]:
        self.suppressed = True
        return self.scan()

    def unsuppress(self) -> list[Transition]:
        self.suppressed = False
        return self.scan()

    def remove(self) -> list[Transition]:
        return self.engine.remove_from_service(ALARM, self.tick(), "ana", "sensor replaced")

    def back(self) -> list[Transition]:
        return self.engine.return_to_service(ALARM, self.tick(), "ana")

    def status(self) -> AlarmStatus:
        (status,) = self.engine.status()
        return status

    def do(self, events: str) -> list[Transition]:
        transitions: list[Transition] = []
        for event in events.split():
            action: Callable[[], list[Transition]] = getattr(self, event)
            transitions += action()
        return transitions


# (latched, how to reach the start state, event, end state, the transitions' (before, after))
DIAGRAM = [
    # the annunciated states, non-latched
    (False, "", "activate", U, [(N, U)]),
    (False, "", "clear", N, []),
    (False, "activate", "activate", U, []),
    (False, "activate", "clear", R, [(U, R)]),
    (False, "activate", "ack", A, [(U, A)]),
    (False, "activate ack", "clear", N, [(A, N)]),
    (False, "activate ack", "activate", A, []),
    (False, "activate clear", "ack", N, [(R, N)]),
    (False, "activate clear", "activate", U, [(R, U)]),
    (False, "activate clear", "clear", R, []),
    # latched: stays raised after the condition clears, until acknowledged with it clear
    (True, "activate", "clear", U, []),
    (True, "activate clear", "ack", N, [(U, N)]),
    (True, "activate", "ack", A, [(U, A)]),
    (True, "activate ack", "clear", A, []),
    (True, "activate ack clear", "ack", N, [(A, N)]),  # the reset
    (True, "activate clear", "activate", U, []),
    # shelving
    (False, "", "shelve", SH, [(N, SH)]),
    (False, "activate", "shelve", SH, [(U, SH)]),
    (False, "activate ack", "shelve", SH, [(A, SH)]),
    (False, "activate clear", "shelve", SH, [(R, SH)]),
    (False, "shelve", "activate", SH, []),
    (False, "shelve", "shelve", SH, [(SH, SH)]),  # a new expiry, journaled
    (False, "shelve", "unshelve", N, [(SH, N)]),
    (False, "shelve activate", "unshelve", U, [(SH, U)]),
    (False, "shelve", "expire", N, [(SH, N)]),
    (False, "shelve activate", "expire", U, [(SH, U)]),
    (False, "activate shelve clear", "expire", N, [(SH, N)]),
    (True, "activate shelve clear", "unshelve", N, [(SH, N)]),
    # suppression by design
    (False, "", "suppress", SU, [(N, SU)]),
    (False, "activate", "suppress", SU, [(U, SU)]),
    (False, "suppress", "activate", SU, [(SU, SU)]),  # journaled: active while suppressed
    (False, "suppress", "clear", SU, []),
    (False, "suppress", "unsuppress", N, [(SU, N)]),
    (False, "suppress activate", "unsuppress", U, [(SU, U)]),
    (False, "activate ack suppress", "unsuppress", A, [(SU, A)]),  # acknowledged, still active
    (False, "activate ack suppress clear", "unsuppress", N, [(SU, N)]),
    (False, "activate suppress", "unsuppress", U, [(SU, U)]),
    (False, "activate suppress clear", "unsuppress", R, [(SU, R)]),
    (True, "activate suppress clear", "unsuppress", U, [(SU, U)]),
    (False, "shelve suppress", "unsuppress", SH, [(SU, SH)]),  # the shelve still runs
    (False, "shelve activate", "suppress", SU, [(SH, SU)]),
    # out of service
    (False, "", "remove", OOS, [(N, OOS)]),
    (False, "activate", "remove", OOS, [(U, OOS)]),
    (False, "shelve", "remove", OOS, [(SH, OOS)]),
    (False, "suppress", "remove", OOS, [(SU, OOS)]),
    (False, "remove", "activate", OOS, []),
    (False, "remove", "suppress", OOS, []),
    (False, "remove", "back", N, [(OOS, N)]),
    (False, "remove activate", "back", U, [(OOS, U)]),
    (False, "remove suppress", "back", SU, [(OOS, SU)]),
]


@pytest.mark.parametrize(
    ("latched", "start", "event", "end", "emitted"),
    DIAGRAM,
    ids=[f"{'latched ' if d[0] else ''}{d[1] or 'new'} | {d[2]}" for d in DIAGRAM],
)
def test_state_diagram(
    latched: bool, start: str, event: str, end: State, emitted: list[tuple[State, State]]
) -> None:
    bench = Bench(latched)
    bench.do(start)
    transitions = bench.do(event)
    assert [(t.before, t.after) for t in transitions] == emitted
    assert bench.status().state is end
    changes = [t for t in transitions if t.before is not t.after]  # not a journal note
    if changes:
        assert bench.status().since == changes[-1].at == bench.now


# (latched, start, the action refused, what the message says)
REFUSED = [
    (False, "", "ack", "alarm c1.outlet_temp_hi is normal: there is nothing to acknowledge"),
    (False, "activate ack", "ack", "is acknowledged: there is nothing to acknowledge"),
    (True, "activate ack", "ack", "acknowledged and still active: a latched alarm is reset"),
    (False, "shelve", "ack", "is shelved: there is nothing to acknowledge"),
    (False, "suppress", "ack", "is suppressed: there is nothing to acknowledge"),
    (False, "remove", "ack", "is out of service: there is nothing to acknowledge"),
    (False, "suppress", "shelve", "is suppressed: it cannot be shelved"),
    (False, "remove", "shelve", "is out of service: it cannot be shelved"),
    (False, "", "unshelve", "is normal, not shelved"),
    (False, "remove", "remove", "is already out of service"),
    (False, "activate", "back", "is unacknowledged, not out of service"),
]


@pytest.mark.parametrize(("latched", "start", "action", "message"), REFUSED)
def test_refused_actions_say_why_in_one_line_and_change_nothing(
    latched: bool, start: str, action: str, message: str
) -> None:
    bench = Bench(latched)
    bench.do(start)
    before = bench.status()
    with pytest.raises(ValueError, match=r"c1\.outlet_temp_hi") as error:
        bench.do(action)
    assert message in str(error.value)
    assert "\n" not in str(error.value)
    assert bench.status() == before


def test_unknown_alarms_are_refused() -> None:
    engine = Bench().engine
    other = AlarmId("c9", "leak")
    with pytest.raises(ValueError, match=r"^unknown alarm c9\.leak$"):
        engine.acknowledge(other, T0, "ana")
    with pytest.raises(ValueError, match=r"unknown alarm c9\.leak"):
        engine.update(T0, {other: True})
    with pytest.raises(ValueError, match=r"unknown alarm c9\.leak"):
        engine.update(T0, {}, {other})


def test_duplicate_definitions_are_refused() -> None:
    definition = AlarmDefinition(ALARM, Priority.LOW, "x")
    with pytest.raises(ValueError, match=r"alarm c1\.outlet_temp_hi is defined twice"):
        AlarmEngine([definition, definition])


# ---------------------------------------------------------------- transitions as journaled


def test_transitions_carry_priority_message_user_and_reason() -> None:
    bench = Bench(priority=Priority.HIGH)
    (raised,) = bench.activate()
    assert raised == Transition(
        at=bench.now,
        alarm=ALARM,
        priority=Priority.HIGH,
        before=N,
        after=U,
        message="Outlet water above 72 °C",
    )
    (acked,) = bench.engine.acknowledge(ALARM, bench.tick(), "ana", "flow checked")
    assert (acked.user, acked.reason, acked.message) == (
        "ana",
        "flow checked",
        "Outlet water above 72 °C",
    )
    (shelved,) = bench.shelve()
    assert (shelved.user, shelved.reason) == ("ana", "sensor being replaced")
    (expired,) = bench.expire()
    assert (expired.user, expired.reason) == ("", "shelve expired")


def test_operator_actions_need_a_user() -> None:
    bench = Bench()
    bench.activate()
    with pytest.raises(ValueError, match="needs the user"):
        bench.engine.acknowledge(ALARM, bench.tick(), " ")


# ---------------------------------------------------------------- shelving


def test_shelving_expires_at_its_time_and_not_before() -> None:
    bench = Bench()
    bench.activate()
    until = T0 + timedelta(minutes=30)
    bench.engine.shelve(ALARM, bench.tick(), until, "ana", "nuisance while tuning the loop")
    assert bench.status().shelved_until == until
    assert bench.status().shelve_reason == "nuisance while tuning the loop"
    assert bench.engine.update(until - timedelta(microseconds=1), {ALARM: True}) == []
    assert bench.status().state is SH
    assert bench.engine.annunciated() == []
    (expired,) = bench.engine.update(until, {ALARM: True})
    assert (expired.before, expired.after, expired.at) == (SH, U, until)
    status = bench.status()
    assert (status.shelved_until, status.shelve_reason) == (None, "")


def test_a_critical_alarm_cannot_be_shelved() -> None:
    bench = Bench(priority=Priority.CRITICAL)
    bench.activate()
    with pytest.raises(ValueError, match="critical alarms cannot be shelved") as error:
        bench.shelve()
    assert "remove it from service" in str(error.value)
    assert bench.status().state is U
    bench.remove()  # what is allowed instead, with a reason
    assert bench.status().state is OOS


@pytest.mark.parametrize(
    ("until", "reason", "complaint"),
    [
        (timedelta(hours=1), " ", "needs a reason"),
        (timedelta(0), "tuning", "needs an expiry after now"),
        (timedelta(hours=-1), "tuning", "needs an expiry after now"),
    ],
)
def test_shelving_needs_a_reason_and_a_future_expiry(
    until: timedelta, reason: str, complaint: str
) -> None:
    bench = Bench()
    with pytest.raises(ValueError, match=complaint):
        bench.engine.shelve(ALARM, T0, T0 + until, "ana", reason)


def test_removal_from_service_needs_a_reason() -> None:
    with pytest.raises(ValueError, match="needs a reason"):
        Bench().engine.remove_from_service(ALARM, T0, "ana", "")


# ---------------------------------------------------------------- suppression by design


def test_a_suppressed_alarm_is_never_annunciated_and_returns_to_its_condition() -> None:
    bench = Bench()
    bench.suppressed = True
    seen: list[Transition] = []
    for active in [True, False, True, True, False, True]:
        seen += bench.scan(active)
        assert bench.engine.annunciated() == []
        assert bench.status().state is SU
    # Never lost: each change of the condition behind the suppression is journaled.
    assert [(t.before, t.after, t.reason) for t in seen] == [
        (N, SU, "suppressed by design"),
        (SU, SU, "cleared while suppressed"),
        (SU, SU, "active while suppressed"),
        (SU, SU, "cleared while suppressed"),
        (SU, SU, "active while suppressed"),
    ]
    assert not any(is_annunciation(t) for t in seen)
    assert bench.status().active is True  # the condition is still followed
    (back,) = bench.unsuppress()
    assert (back.before, back.after, back.reason) == (SU, U, "suppression ended")
    assert [s.id for s in bench.engine.annunciated()] == [ALARM]


def test_a_flickering_suppression_does_not_announce_an_acknowledged_alarm_again() -> None:
    bench = Bench()
    bench.do("activate ack")
    for _ in range(5):
        bench.suppress()
        (back,) = bench.unsuppress()
        assert back.after is A
    assert [s.state for s in bench.engine.annunciated()] == [A]


# ---------------------------------------------------------------- first-out per caisson


def test_first_out_per_caisson() -> None:
    a1, b1, a2 = AlarmId("c1", "flow_lo"), AlarmId("c1", "leak"), AlarmId("c2", "flow_lo")
    engine = AlarmEngine(
        [
            AlarmDefinition(a1, Priority.HIGH, "flow"),
            AlarmDefinition(b1, Priority.CRITICAL, "leak", latched=True),
            AlarmDefinition(a2, Priority.HIGH, "flow"),
        ]
    )

    def at(seconds: int) -> datetime:
        return T0 + timedelta(seconds=seconds)

    assert engine.first_out("c1") is None
    engine.update(at(1), {a1: True})
    engine.update(at(2), {b1: True, a2: True})
    assert engine.first_out("c1") == a1  # the leak came second
    assert engine.first_out("c2") == a2  # each caisson its own
    assert {s.id: s.first_out for s in engine.status()} == {a1: True, b1: False, a2: True}
    # c1 keeps its first-out while any of its alarms is annunciated...
    engine.update(at(3), {a1: False, b1: False})
    engine.acknowledge(a1, at(4), "ana")
    assert engine.first_out("c1") == a1
    engine.acknowledge(b1, at(5), "ana")  # ...and loses it with the last one
    assert engine.first_out("c1") is None
    assert engine.first_out("c2") == a2
    # raised in one scan: the higher priority is first out
    engine.update(at(6), {a1: True, b1: True})
    assert engine.first_out("c1") == b1


def test_a_suppressed_or_shelved_alarm_is_not_first_out() -> None:
    a1, b1 = AlarmId("c1", "flow_lo"), AlarmId("c1", "pump_fault")
    engine = AlarmEngine(
        [AlarmDefinition(a1, Priority.LOW, "flow"), AlarmDefinition(b1, Priority.HIGH, "pump")]
    )
    engine.update(T0, {a1: True}, suppressed={a1})
    assert engine.first_out("c1") is None
    engine.update(T0 + timedelta(seconds=1), {b1: True}, suppressed={a1})
    assert engine.first_out("c1") == b1


# ---------------------------------------------------------------- restore


def test_restore_takes_states_back_without_transitions() -> None:
    ids = [AlarmId("c1", name) for name in ("hi", "flow_lo", "leak", "pump_fault")]
    definitions = [AlarmDefinition(i, Priority.MEDIUM, i.name) for i in ids]
    engine = AlarmEngine(definitions)
    until = T0 + timedelta(minutes=10)
    engine.restore(
        {
            ids[0]: (U, None, ""),
            ids[1]: (SH, until, "valve work"),
            ids[2]: (A, None, ""),
            ids[3]: (cast(State, "out_of_service"), None, ""),  # a plain string, as journaled
            AlarmId("c9", "gone"): (U, None, ""),  # no longer defined: ignored
        }
    )
    states = {s.id: (s.state, s.shelved_until, s.shelve_reason, s.since) for s in engine.status()}
    assert states == {
        ids[0]: (U, None, "", None),
        ids[1]: (SH, until, "valve work", None),
        ids[2]: (A, None, "", None),
        ids[3]: (OOS, None, "", None),
    }
    # the conditions of raised alarms are taken as active: nothing moves while they are
    assert engine.update(T0, {}) == []
    # the first scan that sees them clear moves them on; the shelve expires at its time
    moved = engine.update(until, {ids[0]: False, ids[2]: False})
    assert [(t.alarm, t.before, t.after) for t in moved] == [
        (ids[0], U, R),
        (ids[1], SH, N),
        (ids[2], A, N),
    ]


def test_a_restored_shelve_without_expiry_is_dropped() -> None:
    engine = AlarmEngine([AlarmDefinition(ALARM, Priority.LOW, "x")])
    engine.restore({ALARM: (SH, None, "forever")})
    (status,) = engine.status()
    assert (status.state, status.shelved_until, status.shelve_reason) == (N, None, "")


def test_a_suppression_says_why_in_the_journal_and_the_status() -> None:
    engine = AlarmEngine([AlarmDefinition(ALARM, Priority.HIGH, "Low flow")])
    why = {ALARM: "c2.pump_fault active"}
    (entered,) = engine.update(T0, {ALARM: True}, why)
    assert (entered.after, entered.reason) == (SU, "suppressed by design: c2.pump_fault active")
    assert engine.status()[0].suppressed_by == "c2.pump_fault active"
    (noted,) = engine.update(T0 + timedelta(seconds=1), {ALARM: False}, why)
    assert noted.reason == "cleared while suppressed: c2.pump_fault active"
    (left,) = engine.update(T0 + timedelta(seconds=2), {}, {})
    assert (left.after, left.reason) == (N, "suppression ended")
    assert engine.status()[0].suppressed_by == ""

"""The alarm and event journal on a real SQLite file: restarts, operator actions, the state a
restarted engine restores, retention, and a reader beside the writer."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controller.alarms.journal import (
    Journal,
    JournalBusyError,
    JournalEntry,
    JournalReader,
    journal_path,
    transition_event,
)
from controller.alarms.metrics import transitions_from_entries
from controller.alarms.model import AlarmId, Priority, State, Transition
from controller.config.loader import load_site
from tests.plant_helpers import ROOT

T0 = datetime(2025, 1, 15, 8, 0, tzinfo=UTC)
HI = AlarmId("c1", "outlet_temp_hi")
LEAK = AlarmId("c2", "leak")
FLOW = AlarmId("c1", "low_flow")


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now.timestamp()

    def __call__(self) -> float:
        return self.now


def transition(
    minutes: float,
    alarm: AlarmId,
    before: State,
    after: State,
    *,
    user: str = "",
    reason: str = "",
    shelved_until: datetime | None = None,
) -> Transition:
    return Transition(
        at=T0 + timedelta(minutes=minutes),
        alarm=alarm,
        priority=Priority.HIGH,
        before=before,
        after=after,
        message=f"{alarm} {after.value}",
        user=user,
        reason=reason,
        shelved_until=shelved_until,
    )


def journal(path: Path, **kwargs: float) -> Journal:
    return Journal(path, clock=Clock(T0), **kwargs)


def test_entries_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "site.journal"
    first = journal(path)
    first.record_transitions(
        [
            transition(0, HI, State.NORMAL, State.UNACKNOWLEDGED),
            transition(0, LEAK, State.NORMAL, State.UNACKNOWLEDGED),
        ]
    )
    first.record(
        "mode",
        T0 + timedelta(minutes=1),
        "plant",
        "plant_mode",
        "plant mode heat → store",
        before="heat",
        after="store",
    )
    before = first.entries()
    first.close()

    second = journal(path)  # the daemon restarted
    try:
        assert second.entries() == before
        assert [(e.kind, e.source, e.name) for e in before] == [
            ("alarm", "c1", "outlet_temp_hi"),
            ("alarm", "c2", "leak"),
            ("mode", "plant", "plant_mode"),
        ]
        mode = before[2]
        assert mode.at == T0 + timedelta(minutes=1)
        assert mode.at.tzinfo is not None
        assert (mode.before, mode.after, mode.on_alarm) == ("heat", "store", False)
        second.record_transitions([transition(5, HI, State.UNACKNOWLEDGED, State.ACKNOWLEDGED)])
        assert len(second.entries()) == 4
        assert second.entries()[-1].id > mode.id
    finally:
        second.close()


def test_times_keep_their_microseconds(tmp_path: Path) -> None:
    at = datetime(2025, 6, 30, 23, 59, 59, 999_999, tzinfo=UTC)
    with_offset = datetime.fromisoformat("2025-07-01T01:59:59.999999+02:00")
    j = journal(tmp_path / "j")
    try:
        j.record("config", at, "controller", "reload", "site file reloaded")
        j.record("config", with_offset, "controller", "reload", "site file reloaded")
        assert [e.at for e in j.entries()] == [at, at]
    finally:
        j.close()


def test_operator_actions_and_the_state_a_restarted_engine_restores(tmp_path: Path) -> None:
    path = tmp_path / "site.journal"
    until = T0 + timedelta(hours=8)
    j = journal(path)
    j.record_transitions(
        [
            transition(0, HI, State.NORMAL, State.UNACKNOWLEDGED),
            transition(0, LEAK, State.NORMAL, State.UNACKNOWLEDGED),
            transition(0, FLOW, State.NORMAL, State.UNACKNOWLEDGED),
        ]
    )
    j.record_transitions(
        [
            transition(2, HI, State.UNACKNOWLEDGED, State.ACKNOWLEDGED, user="ann"),
            transition(
                3,
                LEAK,
                State.UNACKNOWLEDGED,
                State.SHELVED,
                user="bob",
                reason="drip tray sensor replaced",
                shelved_until=until,
            ),
            transition(4, FLOW, State.UNACKNOWLEDGED, State.RETURNED_UNACKNOWLEDGED),
            transition(5, FLOW, State.RETURNED_UNACKNOWLEDGED, State.NORMAL, user="ann"),
        ]
    )
    j.record("operator", T0, "c1", "setpoint", "outlet 65 → 62 °C", user="ann", reason="test")
    j.close()

    j = journal(path)
    try:
        operator = j.entries(kind="operator")
        assert [(e.name, e.user, e.reason, e.on_alarm) for e in operator] == [
            ("setpoint", "ann", "test", False),  # recorded at T0: the oldest
            ("outlet_temp_hi", "ann", "", True),
            ("leak", "bob", "drip tray sensor replaced", True),
            ("low_flow", "ann", "", True),
        ]
        shelve = operator[2]
        assert (shelve.source, shelve.before, shelve.after, shelve.priority) == (
            "c2",
            "unacknowledged",
            "shelved",
            "high",
        )
        assert shelve.shelved_until == until
        assert [e.name for e in j.entries(kind="alarm")] == [
            "outlet_temp_hi",
            "leak",
            "low_flow",
            "low_flow",
        ]
        assert j.alarm_states() == {
            HI: (State.ACKNOWLEDGED, None, ""),
            LEAK: (State.SHELVED, until, "drip tray sensor replaced"),
            FLOW: (State.NORMAL, None, ""),
        }
        # and the entries give the transitions back as they were
        alarm_entries = j.entries(on_alarm=True)
        assert transitions_from_entries(alarm_entries)[4] == transition(
            3,
            LEAK,
            State.UNACKNOWLEDGED,
            State.SHELVED,
            user="bob",
            reason="drip tray sensor replaced",
            shelved_until=until,
        )
    finally:
        j.close()


def test_a_shelve_that_ended_is_not_restored(tmp_path: Path) -> None:
    j = journal(tmp_path / "j")
    try:
        j.record_transitions(
            [
                transition(
                    0, HI, State.NORMAL, State.SHELVED, user="ann", reason="x", shelved_until=T0
                ),
                transition(60, HI, State.SHELVED, State.UNACKNOWLEDGED),
            ]
        )
        assert j.alarm_states() == {HI: (State.UNACKNOWLEDGED, None, "")}
    finally:
        j.close()


def test_entries_filters_and_limit(tmp_path: Path) -> None:
    j = journal(tmp_path / "j")
    try:
        j.record_transitions(
            [transition(m, HI, State.NORMAL, State.UNACKNOWLEDGED) for m in range(10)]
        )
        j.record("mode", T0 + timedelta(minutes=4.5), "plant", "plant_mode", "heat → store")

        def minutes(entries: list[JournalEntry]) -> list[float]:
            return [(e.at - T0) / timedelta(minutes=1) for e in entries]

        since, until = T0 + timedelta(minutes=3), T0 + timedelta(minutes=6)
        assert minutes(j.entries(since=since, until=until)) == [3, 4, 4.5, 5]  # until excluded
        assert minutes(j.entries(since=since, until=until, kind="alarm")) == [3, 4, 5]
        assert minutes(j.entries(on_alarm=False)) == [4.5]
        assert minutes(j.entries(limit=3)) == [7, 8, 9]  # the latest 3, oldest first
        assert j.entries(limit=0) == []
    finally:
        j.close()


def test_retention_prunes_old_entries_only(tmp_path: Path) -> None:
    day = timedelta(days=1)
    j = journal(tmp_path / "j", retention=30 * 86400)
    try:
        j.record_transitions(
            [
                # 40 days old, and returned to normal since: goes
                transition(0, HI, State.NORMAL, State.UNACKNOWLEDGED),
                transition(1, HI, State.UNACKNOWLEDGED, State.ACKNOWLEDGED, user="ann"),
                transition(2, HI, State.ACKNOWLEDGED, State.NORMAL),
                # 40 days old and still out of service: its last transition stays
                transition(0, FLOW, State.NORMAL, State.UNACKNOWLEDGED),
                transition(3, FLOW, State.UNACKNOWLEDGED, State.OUT_OF_SERVICE, user="bob"),
            ]
        )
        j.record("mode", T0 + 29 * day, "plant", "plant_mode", "heat → store")  # 11 days old
        j.record_transitions([transition(39 * 24 * 60, LEAK, State.NORMAL, State.UNACKNOWLEDGED)])
        now = T0 + 40 * day
        states = j.alarm_states()

        assert j.prune(now) == 4
        kept = j.entries()
        assert [(e.name, e.after) for e in kept] == [
            ("low_flow", "out_of_service"),
            ("plant_mode", ""),
            ("leak", "unacknowledged"),
        ]
        # what a restart restores does not change, but for the alarm back to normal long ago
        assert j.alarm_states() == {k: v for k, v in states.items() if k != HI}
        assert j.prune(now) == 0
        assert j.prune(now + 19 * day) == 0  # the mode change is 30 days old: not older
        assert j.prune(now + 20 * day) == 1  # now it is
    finally:
        j.close()


def test_recording_prunes_at_most_once_an_hour(tmp_path: Path) -> None:
    clock = Clock(T0)
    j = Journal(tmp_path / "j", retention=3600, clock=clock)
    try:
        old = T0 - timedelta(hours=2)
        j.record("mode", old, "plant", "plant_mode", "a")  # the first write prunes: it goes
        assert j.entries() == []
        j.record("mode", old, "plant", "plant_mode", "b")  # no prune within the hour
        clock.now += 3599
        j.record("mode", old, "plant", "plant_mode", "c")
        assert [e.message for e in j.entries()] == ["b", "c"]
        clock.now += 1  # an hour after the last prune
        j.record("mode", T0, "plant", "plant_mode", "d")
        assert [e.message for e in j.entries()] == ["d"]
    finally:
        j.close()


def test_the_reader_sees_entries_while_the_writer_is_open(tmp_path: Path) -> None:
    path = tmp_path / "site.journal"
    writer = journal(path)
    reader = JournalReader(path)
    try:
        assert reader.entries() == []
        writer.record_transitions([transition(0, HI, State.NORMAL, State.UNACKNOWLEDGED)])
        assert reader.entries() == writer.entries()
        writer.record("config", T0, "controller", "reload", "site file reloaded")
        assert [e.kind for e in reader.entries()] == ["alarm", "config"]
        assert [e.kind for e in reader.entries(on_alarm=True)] == ["alarm"]
        with pytest.raises(sqlite3.OperationalError):  # read-only
            reader._db.execute("DELETE FROM entry")
    finally:
        reader.close()
        writer.close()
    reader = JournalReader(path)  # and after the writer closed
    try:
        assert len(reader.entries()) == 2
    finally:
        reader.close()


def test_the_reader_refuses_a_missing_or_foreign_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no journal file"):
        JournalReader(tmp_path / "nothing.journal")
    other = tmp_path / "other.db"
    sqlite3.connect(other).close()
    with pytest.raises(sqlite3.Error):
        JournalReader(other)


def test_one_writer_per_journal(tmp_path: Path) -> None:
    path = tmp_path / "site.journal"
    first = journal(path)
    try:
        with pytest.raises(JournalBusyError, match="in use by another process"):
            journal(path)
    finally:
        first.close()
    journal(path).close()  # free again


def test_journal_path() -> None:
    site = load_site(ROOT / "sites" / "demo.yaml")
    state = {"STATE_DIRECTORY": "/var/lib/boilerctl:/other"}
    assert journal_path(site, state) == Path(f"/var/lib/boilerctl/{site.config.site.slug}.journal")
    assert journal_path(site, state, Path("x.journal")) == Path("x.journal")


def test_transitions_as_historian_events() -> None:
    raised = transition_event(transition(0, HI, State.NORMAL, State.UNACKNOWLEDGED))
    assert (raised.kind, raised.source, raised.name, raised.state) == (
        "alarm",
        "c1",
        "outlet_temp_hi",
        "raised",
    )
    again = transition_event(transition(1, HI, State.RETURNED_UNACKNOWLEDGED, State.UNACKNOWLEDGED))
    assert again.state == "raised"
    ack = transition_event(
        transition(1, HI, State.UNACKNOWLEDGED, State.ACKNOWLEDGED, user="ann", reason="seen")
    )
    assert (ack.kind, ack.state, ack.user, ack.reason) == (
        "operator",
        "acknowledged",
        "ann",
        "seen",
    )
    cleared = transition_event(transition(2, HI, State.ACKNOWLEDGED, State.NORMAL))
    assert (cleared.state, cleared.before, cleared.after) == ("cleared", "acknowledged", "normal")


def test_settings_are_kept_with_their_entry_and_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "site.journal"
    now = datetime.now(UTC)  # within the retention
    journal = Journal(path)
    journal.record(
        "operator", now, "c2", "control_mode", "c2 maintenance",
        before="auto", after="maintenance", user="alice", reason="pump seal",
        setting=("mode/c2", "maintenance"),
    )  # fmt: skip
    journal.record(
        "operator", now, "plant", "setpoint outlet", "outlet 66",
        before="65", after="66", user="bob", reason="test", setting=("setpoint/outlet", "66.0"),
    )  # fmt: skip
    journal.record(
        "operator", now, "c2", "control_mode", "c2 auto",
        before="maintenance", after="auto", user="alice", reason="done", setting=("mode/c2", None),
    )  # fmt: skip
    journal.close()
    reopened = Journal(path)
    assert reopened.settings() == {"setpoint/outlet": "66.0"}  # c2's lockout was lifted
    assert [e.user for e in reopened.entries(kind="operator")] == ["alice", "bob", "alice"]
    reopened.close()

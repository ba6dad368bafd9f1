"""Alarm-load metrics on synthetic alarm streams whose answers are worked out by hand in the
comments (definitions: controller/alarms/metrics.py's docstring)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from controller.alarms.journal import JournalEntry
from controller.alarms.metrics import (
    Annunciation,
    alarm_load,
    annunciations,
    is_annunciation,
    transitions_from_entries,
)
from controller.alarms.model import AlarmId, Priority, State, Transition

T0 = datetime(2025, 1, 15, 0, 0, tzinfo=UTC)
S = timedelta(seconds=1)
MIN = timedelta(minutes=1)
H = timedelta(hours=1)


def alarm(name: str, source: str = "c1") -> AlarmId:
    return AlarmId(source, name)


def move(
    at: datetime,
    which: AlarmId,
    before: State,
    after: State,
    priority: Priority = Priority.LOW,
    user: str = "",
) -> Transition:
    return Transition(at, which, priority, before, after, f"{which} {after.value}", user=user)


def raised(at: datetime, which: AlarmId, priority: Priority = Priority.LOW) -> list[Transition]:
    """A whole alarm: annunciated at `at`, acknowledged after 1 min, cleared after 3 min (only the
    first transition is an annunciation)."""
    return [
        move(at, which, State.NORMAL, State.UNACKNOWLEDGED, priority),
        move(at + MIN, which, State.UNACKNOWLEDGED, State.ACKNOWLEDGED, priority, user="ann"),
        move(at + 3 * MIN, which, State.ACKNOWLEDGED, State.NORMAL, priority),
    ]


def stream(times: list[datetime], names: list[str]) -> list[Transition]:
    """Whole alarms at `times`, cycling through `names`."""
    transitions = []
    for i, at in enumerate(times):
        transitions += raised(at, alarm(names[i % len(names)]))
    return sorted(transitions, key=lambda t: t.at)


# ---------------------------------------------------------------------- annunciations


def test_what_counts_as_an_annunciation() -> None:
    a = alarm("a")
    counted = [
        (State.NORMAL, State.UNACKNOWLEDGED),  # a new activation
        (State.RETURNED_UNACKNOWLEDGED, State.UNACKNOWLEDGED),  # re-alarm before the ack
        (State.SHELVED, State.UNACKNOWLEDGED),  # a shelve ends on an active condition
        (State.SUPPRESSED, State.UNACKNOWLEDGED),
        (State.OUT_OF_SERVICE, State.UNACKNOWLEDGED),
    ]
    not_counted = [
        (State.UNACKNOWLEDGED, State.ACKNOWLEDGED),
        (State.ACKNOWLEDGED, State.UNACKNOWLEDGED),  # not a new presentation
        (State.UNACKNOWLEDGED, State.RETURNED_UNACKNOWLEDGED),
        (State.ACKNOWLEDGED, State.NORMAL),
        (State.NORMAL, State.SHELVED),
        (State.UNACKNOWLEDGED, State.SUPPRESSED),
    ]
    for before, after in counted:
        assert is_annunciation(move(T0, a, before, after)), (before, after)
    for before, after in not_counted:
        assert not is_annunciation(move(T0, a, before, after)), (before, after)


def test_annunciations_of_the_period_only() -> None:
    a = alarm("a")
    transitions = [
        move(T0 - S, a, State.NORMAL, State.UNACKNOWLEDGED),  # before the period
        move(T0, a, State.NORMAL, State.UNACKNOWLEDGED, Priority.HIGH),  # at its start: in
        move(T0 + H, a, State.NORMAL, State.UNACKNOWLEDGED),  # at its end: out
    ]
    assert annunciations(transitions, T0, T0 + H) == [Annunciation(T0, a, Priority.HIGH)]


# ---------------------------------------------------------------------- rates and floods


def test_steady_state_one_alarm_every_15_minutes() -> None:
    # 96 alarms over 24 h (at 0, 15, 30... 1425 min), over 8 alarm definitions (12 each)
    times = [T0 + 15 * k * MIN for k in range(96)]
    load = alarm_load(stream(times, [f"a{i}" for i in range(8)]), T0, T0 + 24 * H)
    assert load.annunciations == 96
    assert load.per_10_min_mean == pytest.approx(96 / 144)  # 144 ten-minute periods in a day
    assert load.per_10_min_max == 1  # 15 min apart: never two in a 10-minute window
    # the window (t − 60 min, t] at t = 60 min holds 15, 30, 45 and 60 (0 is out): 4
    assert load.peak_hourly == 4
    assert load.floods == 0
    assert load.time_in_flood == timedelta(0)
    assert load.time_in_flood_share == 0
    assert load.chattering == []
    assert load.stale == []  # each one is cleared after 3 minutes
    assert load.top10_share == 1  # 8 definitions: all of them in the top 10
    assert load.priorities[Priority.LOW] == 1
    assert load.acceptable
    assert load.reasons == []


def test_a_burst_of_12_alarms_in_5_minutes_is_one_flood() -> None:
    # 12 alarms 25 s apart from 1 h: at 0, 25, ... 275 s after 1 h; the period is 2 h
    burst = T0 + H
    times = [burst + 25 * k * S for k in range(12)]
    load = alarm_load(stream(times, [f"a{i}" for i in range(12)]), T0, T0 + 2 * H)
    assert load.annunciations == 12
    assert load.per_10_min_max == 12
    assert load.peak_hourly == 12
    assert load.per_10_min_mean == pytest.approx(1.0)  # 12 alarms in 12 ten-minute periods
    # The flood begins with the 10th alarm, at 225 s. The window (t − 600 s, t] then loses one
    # alarm each 25 s from t = 600 s; it holds 4 (< 5) once the 8th (175 s) has left, at 775 s.
    # The flood lasts 775 − 225 = 550 s. (Ending below 10 instead would give 650 − 225 = 425 s.)
    assert load.floods == 1
    [flood] = load.flood_episodes
    assert (flood.start, flood.end, flood.peak) == (burst + 225 * S, burst + 775 * S, 12)
    assert load.time_in_flood == 550 * S
    assert load.time_in_flood_share == pytest.approx(550 / 7200)
    assert not load.acceptable  # 7.6 % of the time in flood: more than 1 %
    assert len(load.reasons) == 1
    assert "flood" in load.reasons[0]


def test_a_flood_lasts_until_the_rate_falls_below_5_in_10_minutes() -> None:
    # A burst of 10, 30 s apart (0 ... 270 s), then one alarm every 2 minutes from 300 s to
    # 1980 s (15 of them). The flood begins at 270 s (the 10th). Alarms 120 s apart keep 5 in
    # the window (t − 600 s, t] (one leaves as the next comes, at the same instant), so the
    # flood goes on until the window loses one of the last five without a newcomer: the one at
    # 1500 s leaves at 2100 s, leaving 1620, 1740, 1860 and 1980: 4.
    times = [T0 + 30 * k * S for k in range(10)] + [T0 + (300 + 120 * j) * S for j in range(15)]
    load = alarm_load(stream(times, [f"a{i}" for i in range(25)]), T0, T0 + 24 * H)
    assert load.floods == 1
    assert load.time_in_flood == (2100 - 270) * S
    # the fullest window: at 540 s, (−60 s, 540 s] holds the burst's 10 and 300, 420 and 540 s
    assert load.per_10_min_max == 13
    assert load.flood_episodes[0].peak == 13


def test_two_floods_and_one_cut_by_the_end_of_the_period() -> None:
    # two bursts of 10 (30 s apart), 1 h apart: two floods, each from 270 s to 750 s (the 6th
    # alarm, at 150 s, leaves then, leaving 4): 480 s each
    times = [T0 + 30 * k * S for k in range(10)] + [T0 + H + 30 * k * S for k in range(10)]
    transitions = stream(times, [f"a{i}" for i in range(20)])
    load = alarm_load(transitions, T0, T0 + 2 * H)
    assert load.floods == 2
    assert load.time_in_flood == 2 * 480 * S
    assert load.per_10_min_max == 10
    # a period ending at 300 s cuts the first flood at 30 s
    load = alarm_load(transitions, T0, T0 + 300 * S)
    assert load.floods == 1
    assert load.time_in_flood == 30 * S
    assert load.time_in_flood_share == pytest.approx(0.1)


def test_rates_above_their_targets() -> None:
    # one alarm every 5 minutes for 24 h: 288 alarms, 2 per 10 minutes on average, 2 in any
    # 10-minute window ((t − 10, t] at t = 10 min holds 5 and 10), 12 in any hour: no flood
    times = [T0 + 5 * k * MIN for k in range(288)]
    load = alarm_load(stream(times, ["a", "b", "c"]), T0, T0 + 24 * H)
    assert (load.per_10_min_mean, load.per_10_min_max, load.peak_hourly) == (2, 2, 12)
    assert load.floods == 0
    assert not load.acceptable
    assert len(load.reasons) == 1
    assert "per 10 minutes" in load.reasons[0]
    # 16 alarms 3.9 min apart: 58.5 min from first to last, all in one hour: more than 15;
    # 3 at most in 10 minutes (0, 3.9, 7.8)
    times = [T0 + 3.9 * k * MIN for k in range(16)]
    load = alarm_load(stream(times, ["a"]), T0, T0 + 24 * H)
    assert (load.peak_hourly, load.per_10_min_max, load.floods) == (16, 3, 0)
    assert not load.acceptable
    assert ["in one hour" in r for r in load.reasons] == [True]


# ---------------------------------------------------------------------- chattering and stale


def test_chattering_is_3_annunciations_within_60_seconds() -> None:
    fast, slow, edge = alarm("fast"), alarm("slow"), alarm("edge")
    transitions = [
        # fast: annunciated at 0, 25 and 50 s, returning in between (re-alarms count): chatters
        move(T0, fast, State.NORMAL, State.UNACKNOWLEDGED),
        move(T0 + 10 * S, fast, State.UNACKNOWLEDGED, State.RETURNED_UNACKNOWLEDGED),
        move(T0 + 25 * S, fast, State.RETURNED_UNACKNOWLEDGED, State.UNACKNOWLEDGED),
        move(T0 + 35 * S, fast, State.UNACKNOWLEDGED, State.RETURNED_UNACKNOWLEDGED),
        move(T0 + 50 * S, fast, State.RETURNED_UNACKNOWLEDGED, State.UNACKNOWLEDGED),
        move(T0 + 55 * S, fast, State.UNACKNOWLEDGED, State.ACKNOWLEDGED, user="ann"),
        # slow: at 0, 35 and 70 s: 70 s from first to third, not chattering
        *raised(T0, slow)[:1],
        move(T0 + 5 * S, slow, State.UNACKNOWLEDGED, State.RETURNED_UNACKNOWLEDGED),
        move(T0 + 35 * S, slow, State.RETURNED_UNACKNOWLEDGED, State.UNACKNOWLEDGED),
        move(T0 + 40 * S, slow, State.UNACKNOWLEDGED, State.RETURNED_UNACKNOWLEDGED),
        move(T0 + 70 * S, slow, State.RETURNED_UNACKNOWLEDGED, State.UNACKNOWLEDGED),
        # edge: at 0, 30 and 60 s: 60 s is not within 60 s (windows are (t − 60 s, t])
        *raised(T0, edge)[:1],
        move(T0 + 5 * S, edge, State.UNACKNOWLEDGED, State.RETURNED_UNACKNOWLEDGED),
        move(T0 + 30 * S, edge, State.RETURNED_UNACKNOWLEDGED, State.UNACKNOWLEDGED),
        move(T0 + 35 * S, edge, State.UNACKNOWLEDGED, State.RETURNED_UNACKNOWLEDGED),
        move(T0 + 60 * S, edge, State.RETURNED_UNACKNOWLEDGED, State.UNACKNOWLEDGED),
    ]
    load = alarm_load(transitions, T0, T0 + 24 * H)
    assert load.annunciations == 9
    assert load.chattering == [fast]
    assert not load.acceptable
    assert load.reasons == ["chattering: c1.fast"]


def test_stale_alarms_are_active_for_more_than_24_hours_at_the_end() -> None:
    end = T0 + 48 * H
    old, recent, returned, shelved, unseen = (
        alarm(n) for n in ("old", "recent", "returned", "shelved", "unseen")
    )
    transitions = [
        # old: active 25 h, acknowledged but never cleared: stale
        move(end - 25 * H, old, State.NORMAL, State.UNACKNOWLEDGED),
        move(end - 24.5 * H, old, State.UNACKNOWLEDGED, State.ACKNOWLEDGED, user="ann"),
        # recent: active 23 h: not yet
        move(end - 23 * H, recent, State.NORMAL, State.UNACKNOWLEDGED),
        # returned: active from 30 h to 26 h before the end: not active now
        move(end - 30 * H, returned, State.NORMAL, State.UNACKNOWLEDGED),
        move(end - 26 * H, returned, State.UNACKNOWLEDGED, State.RETURNED_UNACKNOWLEDGED),
        # shelved: active 30 h, shelved after one: not active to the operator
        move(end - 30 * H, shelved, State.NORMAL, State.UNACKNOWLEDGED),
        move(end - 29 * H, shelved, State.UNACKNOWLEDGED, State.SHELVED, user="bob"),
        # unseen: activated before the journal begins; acknowledged 25 h before the end: stale
        move(end - 25 * H, unseen, State.UNACKNOWLEDGED, State.ACKNOWLEDGED, user="ann"),
        # after the end: does not count
        move(end + H, old, State.ACKNOWLEDGED, State.NORMAL),
    ]
    # a one-hour period at the end: none of them is annunciated in it, two are stale
    load = alarm_load(transitions, end - H, end)
    assert load.annunciations == 0
    assert load.stale == [old, unseen]
    assert load.acceptable  # fewer than 5


def test_five_stale_alarms_are_too_many() -> None:
    end = T0 + 48 * H
    transitions = [
        move(T0, alarm(f"s{i}"), State.NORMAL, State.UNACKNOWLEDGED, Priority.MEDIUM)
        for i in range(5)
    ]
    load = alarm_load(transitions, T0, end)
    assert len(load.stale) == 5
    assert load.reasons == ["5 stale alarms: 5 or more"]


# ---------------------------------------------------------------------- top 10 and priorities


def test_top10_share_with_11_alarms() -> None:
    # alarm a<k> annunciated k times, k = 1 ... 11: 66 in all, 15 min apart (16.5 h); the top
    # 10 are a11 ... a2, 65 of the 66
    names = [f"a{k}" for k in range(1, 12) for _ in range(k)]
    times = [T0 + 15 * i * MIN for i in range(len(names))]
    transitions = []
    for at, name in zip(times, names, strict=True):
        transitions += raised(at, alarm(name))
    load = alarm_load(transitions, T0, T0 + 24 * H)
    assert load.annunciations == 66
    assert load.top10 == [(alarm(f"a{k}"), k) for k in range(11, 1, -1)]
    assert load.top10_share == pytest.approx(65 / 66)
    assert load.acceptable  # the top-10 share is shown, not judged


def test_priority_distribution() -> None:
    def load_of(priorities: list[Priority]) -> tuple[dict[Priority, float], bool, list[str]]:
        transitions = []
        for i, priority in enumerate(priorities):
            transitions += raised(T0 + 15 * i * MIN, alarm(f"a{i}"), priority)
        load = alarm_load(transitions, T0, T0 + 24 * H)
        return load.priorities, load.acceptable, load.reasons

    # 16 low, 3 medium, 1 high: the 80 / 15 / 5 of EEMUA 191
    shares, acceptable, _ = load_of([Priority.LOW] * 16 + [Priority.MEDIUM] * 3 + [Priority.HIGH])
    assert shares == {
        Priority.LOW: 0.8,
        Priority.MEDIUM: 0.15,
        Priority.HIGH: 0.05,
        Priority.CRITICAL: 0.0,
    }
    assert acceptable
    # 10 low, 6 medium, 2 high, 2 critical: 50 % low, 20 % high or critical
    shares, acceptable, reasons = load_of(
        [Priority.LOW] * 10 + [Priority.MEDIUM] * 6 + [Priority.HIGH] * 2 + [Priority.CRITICAL] * 2
    )
    assert shares[Priority.LOW] == 0.5
    assert shares[Priority.CRITICAL] == 0.1
    assert not acceptable
    assert reasons == [
        "priorities 50% low, 20% high or critical: want at least 70% low and at most 10% high"
    ]
    # 19 high: too few to judge
    shares, acceptable, _ = load_of([Priority.HIGH] * 19)
    assert shares[Priority.HIGH] == 1
    assert acceptable


# ---------------------------------------------------------------------- edges and entries


def test_an_empty_stream() -> None:
    load = alarm_load([], T0, T0 + 24 * H)
    assert load.annunciations == 0
    assert (load.per_10_min_mean, load.per_10_min_max, load.peak_hourly) == (0, 0, 0)
    assert (load.floods, load.time_in_flood, load.time_in_flood_share) == (0, timedelta(0), 0)
    assert (load.chattering, load.stale, load.top10, load.top10_share) == ([], [], [], 0)
    assert load.priorities == dict.fromkeys(Priority, 0.0)
    assert load.acceptable
    assert load.reasons == []
    assert [c.metric for c in load.checks][:2] == ["alarms annunciated", "per 10 minutes, mean"]


def test_an_empty_period_and_a_reversed_one() -> None:
    transitions = raised(T0, alarm("a"))
    load = alarm_load(transitions, T0, T0)
    assert (load.annunciations, load.per_10_min_mean, load.time_in_flood_share) == (0, 0, 0)
    with pytest.raises(ValueError, match="before it starts"):
        alarm_load(transitions, T0 + H, T0)


def test_transitions_from_journal_entries() -> None:
    def entry(kind: str, before: str, after: str, priority: str, on_alarm: bool) -> JournalEntry:
        return JournalEntry(1, T0, kind, "c1", "hi", before, after, priority, "m", "", "", on_alarm)

    entries = [
        entry("alarm", "normal", "unacknowledged", "high", True),
        entry("operator", "unacknowledged", "acknowledged", "high", True),
        entry("mode", "heat", "store", "", False),  # not an alarm's
        entry("alarm", "normal", "flapping", "high", True),  # a state this version lacks
    ]
    assert transitions_from_entries(entries) == [
        Transition(T0, alarm("hi"), Priority.HIGH, State.NORMAL, State.UNACKNOWLEDGED, "m"),
        Transition(T0, alarm("hi"), Priority.HIGH, State.UNACKNOWLEDGED, State.ACKNOWLEDGED, "m"),
    ]

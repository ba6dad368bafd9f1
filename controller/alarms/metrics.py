"""Alarm-load metrics after EEMUA 191 and ANSI/ISA-18.2-2016 (clause 16, alarm system
performance monitoring), from the journal's alarm transitions. Pure functions.

Definitions (each one is tested in tests/unit/test_alarm_metrics.py):

- Annunciation: a transition into UNACKNOWLEDGED from any state but ACKNOWLEDGED (the alarm is
  presented to the operator anew): from NORMAL (a new activation), from RETURNED_UNACKNOWLEDGED
  (it came back before anyone acknowledged it: ISA-18.2's re-alarm, the signature of a chattering
  alarm), and from SHELVED, SUPPRESSED or OUT_OF_SERVICE when the alarm comes back into an active
  condition (the operator sees a new alarm then too). The metrics count annunciations at `start`
  or later and before `end`.
- Sliding windows: a window of width W at instant t holds the annunciations in (t − W, t]. So
  "n within W" means the first and the n-th are less than W apart: one alarm every 15 minutes
  puts 4 (not 5) in an hour.
- Alarms per 10 minutes: the mean is annunciations / (period / 10 min); the maximum is the
  largest count of a sliding 10-minute window.
- Flood (ISA-18.2 and EEMUA 191's figures): a flood begins when a sliding 10-minute window holds
  10 or more annunciations and ends when it holds fewer than 5 (ISA-18.2's hysteresis: 10 per
  10 minutes in, below 5 per 10 minutes out). Its time counts from the annunciation that makes
  the 10th to the instant the window's count drops below 5, clipped at `end`.
- Peak hourly rate: the largest count of a sliding 60-minute window (not of clock hours, whose
  boundaries can split a burst in two).
- Chattering: an alarm annunciated 3 or more times within 60 seconds (ISA-18.2 TR5's rule of
  thumb), inside the period.
- Stale: an alarm whose condition is active (UNACKNOWLEDGED or ACKNOWLEDGED; not returned,
  shelved, suppressed or out of service) at `end` and has been for more than 24 hours. Read from
  every transition before `end`, also those before `start`; an alarm whose first known
  transition leaves it active counts as active since that transition.
- Top 10: the 10 most annunciated alarms (ties by name) and their share of all annunciations.
- Priorities: the share of annunciations by priority.

Targets, for one operator per site (the "per operator" of EEMUA 191): a mean of at most 1 alarm
per 10 minutes; at most 15 in any hour; at most 1 % of the time in flood (ISA-18.2); no
chattering alarm; fewer than 5 stale alarms (ISA-18.2); priorities roughly 80 % low, 15 % medium,
5 % high (critical counted with high), judged as at least 70 % low and at most 10 % high or
critical, and only from 20 annunciations (below, one alarm moves a share by more than 5 points).
The top-10 share is shown against ISA-18.2's 5 % but not judged: that target assumes hundreds of
alarm definitions, and a site with a few dozen has its top 10 near 100 % however well it runs.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from controller.alarms.model import AlarmId, Priority, State, Transition

if TYPE_CHECKING:
    from controller.alarms.journal import JournalEntry

TEN_MINUTES = timedelta(minutes=10)
HOUR = timedelta(hours=1)
FLOOD_BEGINS = 10  # annunciations in a 10-minute window
FLOOD_ENDS = 5  # a flood ends when the window holds fewer
CHATTER_COUNT = 3
CHATTER_WINDOW = timedelta(seconds=60)
STALE_AFTER = timedelta(hours=24)
TOP = 10

MEAN_PER_10_MIN_TARGET = 1.0
PEAK_HOURLY_TARGET = 15
FLOOD_SHARE_TARGET = 0.01
STALE_TARGET = 5  # fewer than
TOP10_SHARE_TARGET = 0.05  # shown, not judged
LOW_SHARE_MIN = 0.70
HIGH_SHARE_MAX = 0.10  # high and critical together
PRIORITY_MIN_COUNT = 20

ACTIVE = frozenset({State.UNACKNOWLEDGED, State.ACKNOWLEDGED})


@dataclass(frozen=True)
class Annunciation:
    at: datetime
    alarm: AlarmId
    priority: Priority


@dataclass(frozen=True)
class Flood:
    start: datetime  # the annunciation that made 10 in 10 minutes
    end: datetime  # the window fell below 5, or the period's end
    peak: int  # the most annunciations in a 10-minute window during the flood

    @property
    def duration(self) -> timedelta:
        return self.end - self.start


@dataclass(frozen=True)
class Check:
    """One metric against its target, for a table: `met` is None when not judged."""

    metric: str
    value: str
    target: str
    met: bool | None


@dataclass(frozen=True)
class AlarmLoad:
    start: datetime
    end: datetime
    annunciations: int
    per_10_min_mean: float
    per_10_min_max: int
    floods: int
    time_in_flood: timedelta
    time_in_flood_share: float
    peak_hourly: int
    chattering: list[AlarmId]
    stale: list[AlarmId]
    top10: list[tuple[AlarmId, int]]
    top10_share: float
    priorities: dict[Priority, float]
    acceptable: bool
    reasons: list[str]  # why not acceptable; empty when it is
    flood_episodes: list[Flood] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)


def is_annunciation(transition: Transition) -> bool:
    """The alarm is presented to the operator anew (see the module's definition)."""
    return transition.after is State.UNACKNOWLEDGED and transition.before not in ACTIVE


def annunciations(
    transitions: Iterable[Transition], start: datetime, end: datetime
) -> list[Annunciation]:
    """The annunciations at `start` or later and before `end`, in time order."""
    return sorted(
        (
            Annunciation(t.at, t.alarm, t.priority)
            for t in transitions
            if start <= t.at < end and is_annunciation(t)
        ),
        key=lambda a: a.at,
    )


def alarm_load(transitions: Sequence[Transition], start: datetime, end: datetime) -> AlarmLoad:
    """The alarm load of the period [start, end) (see the module's definitions)."""
    if end < start:
        raise ValueError(f"the period ends ({end}) before it starts ({start})")
    period = end - start
    alarms = annunciations(transitions, start, end)
    times = [a.at for a in alarms]
    total = len(alarms)
    mean = total / (period / TEN_MINUTES) if period > timedelta(0) else 0.0
    per_10_min_max = max((n for _, n in window_counts(times, TEN_MINUTES)), default=0)
    peak_hourly = max((n for _, n in window_counts(times, HOUR)), default=0)
    episodes = floods(times, end)
    in_flood = sum((f.duration for f in episodes), timedelta(0))
    flood_share = in_flood / period if period > timedelta(0) else 0.0
    counts = Counter(a.alarm for a in alarms)
    top = sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))[:TOP]
    top_share = sum(n for _, n in top) / total if total else 0.0
    by_priority = Counter(a.priority for a in alarms)
    priorities = {p: by_priority[p] / total if total else 0.0 for p in Priority}
    chattering = chattering_alarms(alarms)
    stale = stale_alarms(transitions, end)

    checks, reasons = _judge(
        total,
        mean,
        per_10_min_max,
        peak_hourly,
        flood_share,
        in_flood,
        len(episodes),
        chattering,
        stale,
        top_share,
        priorities,
    )
    return AlarmLoad(
        start=start,
        end=end,
        annunciations=total,
        per_10_min_mean=mean,
        per_10_min_max=per_10_min_max,
        floods=len(episodes),
        time_in_flood=in_flood,
        time_in_flood_share=flood_share,
        peak_hourly=peak_hourly,
        chattering=chattering,
        stale=stale,
        top10=top,
        top10_share=top_share,
        priorities=priorities,
        acceptable=not reasons,
        reasons=reasons,
        flood_episodes=episodes,
        checks=checks,
    )


def window_counts(times: Sequence[datetime], width: timedelta) -> list[tuple[datetime, int]]:
    """How many of `times` a sliding window (t − width, t] holds, at each instant t that count
    changes (it holds until the next), in time order. Changes at one instant are taken together."""
    changes: defaultdict[datetime, int] = defaultdict(int)
    for at in times:
        changes[at] += 1
        changes[at + width] -= 1
    counts = []
    held = 0
    for at in sorted(changes):
        held += changes[at]
        counts.append((at, held))
    return counts


def floods(times: Sequence[datetime], end: datetime) -> list[Flood]:
    """The flood episodes of these annunciation times (ISA-18.2: in at 10 or more in 10 minutes,
    out below 5), clipped at `end`."""
    episodes = []
    began: datetime | None = None
    peak = 0
    for at, held in window_counts(times, TEN_MINUTES):
        if began is None:
            if held >= FLOOD_BEGINS:
                began, peak = at, held
        elif held < FLOOD_ENDS:
            episodes.append(Flood(began, min(at, end), peak))
            began = None
        else:
            peak = max(peak, held)
    # every window empties once the last annunciation is 10 minutes old: no flood is left open
    return episodes


def chattering_alarms(alarms: Sequence[Annunciation]) -> list[AlarmId]:
    """The alarms annunciated 3 or more times within 60 s (less than 60 s from first to third)."""
    times: defaultdict[AlarmId, list[datetime]] = defaultdict(list)
    for a in alarms:
        times[a.alarm].append(a.at)
    found = []
    for alarm, ats in times.items():
        ats.sort()
        span = CHATTER_COUNT - 1
        if any(ats[i + span] - ats[i] < CHATTER_WINDOW for i in range(len(ats) - span)):
            found.append(alarm)
    return sorted(found, key=str)


def stale_alarms(transitions: Iterable[Transition], end: datetime) -> list[AlarmId]:
    """The alarms active at `end` for more than 24 hours (from every transition before `end`)."""
    since: dict[AlarmId, datetime | None] = {}
    for t in sorted((t for t in transitions if t.at < end), key=lambda t: t.at):
        if t.after not in ACTIVE:
            since[t.alarm] = None
        elif t.before not in ACTIVE or since.get(t.alarm) is None:
            since[t.alarm] = t.at
    return sorted(
        (alarm for alarm, at in since.items() if at is not None and end - at > STALE_AFTER),
        key=str,
    )


def transitions_from_entries(entries: Iterable[JournalEntry]) -> list[Transition]:
    """The alarm transitions among journal entries (kind alarm, and operator actions on alarms),
    in their order. Entries whose states or priority this version does not know are skipped."""
    transitions = []
    for entry in entries:
        if not entry.on_alarm:
            continue
        try:
            before, after = State(entry.before), State(entry.after)
            priority = Priority(entry.priority)
        except ValueError:
            continue
        transitions.append(
            Transition(
                at=entry.at,
                alarm=AlarmId(entry.source, entry.name),
                priority=priority,
                before=before,
                after=after,
                message=entry.message,
                user=entry.user,
                reason=entry.reason,
                shelved_until=entry.shelved_until,
            )
        )
    return transitions


def _judge(
    total: int,
    mean: float,
    per_10_min_max: int,
    peak_hourly: int,
    flood_share: float,
    in_flood: timedelta,
    flood_count: int,
    chattering: list[AlarmId],
    stale: list[AlarmId],
    top_share: float,
    priorities: dict[Priority, float],
) -> tuple[list[Check], list[str]]:
    """Each metric against its target; the reasons the load is not acceptable."""
    reasons = []
    if mean > MEAN_PER_10_MIN_TARGET:
        reasons.append(
            f"{mean:.2f} alarms per 10 minutes on average: more than {MEAN_PER_10_MIN_TARGET:g}"
        )
    if peak_hourly > PEAK_HOURLY_TARGET:
        reasons.append(f"{peak_hourly} alarms in one hour: more than {PEAK_HOURLY_TARGET}")
    if flood_share > FLOOD_SHARE_TARGET:
        reasons.append(
            f"in flood {flood_share:.1%} of the time: more than {FLOOD_SHARE_TARGET:.0%}"
        )
    if chattering:
        reasons.append(f"chattering: {', '.join(map(str, chattering))}")
    if len(stale) >= STALE_TARGET:
        reasons.append(f"{len(stale)} stale alarms: {STALE_TARGET} or more")
    low = priorities[Priority.LOW]
    high = priorities[Priority.HIGH] + priorities[Priority.CRITICAL]
    priorities_met: bool | None = None
    if total >= PRIORITY_MIN_COUNT:
        priorities_met = low >= LOW_SHARE_MIN and high <= HIGH_SHARE_MAX
        if not priorities_met:
            reasons.append(
                f"priorities {low:.0%} low, {high:.0%} high or critical: want at least "
                f"{LOW_SHARE_MIN:.0%} low and at most {HIGH_SHARE_MAX:.0%} high"
            )
    shares = " / ".join(f"{priorities[p]:.0%} {p.value}" for p in reversed(Priority))
    checks = [
        Check("alarms annunciated", str(total), "", None),
        Check(
            "per 10 minutes, mean",
            f"{mean:.2f}",
            f"≤ {MEAN_PER_10_MIN_TARGET:g}",
            mean <= MEAN_PER_10_MIN_TARGET,
        ),
        Check("per 10 minutes, max", str(per_10_min_max), f"< {FLOOD_BEGINS} (a flood)", None),
        Check(
            "per hour, peak",
            str(peak_hourly),
            f"≤ {PEAK_HOURLY_TARGET}",
            peak_hourly <= PEAK_HOURLY_TARGET,
        ),
        Check("floods", str(flood_count), "", None),
        Check(
            "time in flood",
            f"{_duration(in_flood)} ({flood_share:.1%})",
            f"≤ {FLOOD_SHARE_TARGET:.0%} of the time",
            flood_share <= FLOOD_SHARE_TARGET,
        ),
        Check(
            "chattering alarms",
            str(len(chattering)),
            f"none ({CHATTER_COUNT} in {CHATTER_WINDOW.seconds} s)",
            not chattering,
        ),
        Check(
            "stale alarms",
            str(len(stale)),
            f"< {STALE_TARGET} (active > {STALE_AFTER.days * 24} h)",
            len(stale) < STALE_TARGET,
        ),
        Check(
            "top-10 share",
            f"{top_share:.0%}",
            f"≤ {TOP10_SHARE_TARGET:.0%} (large systems)",
            None,
        ),
        Check("priorities", shares, "~80% low / 15% medium / 5% high", priorities_met),
    ]
    return checks, reasons


def _duration(span: timedelta) -> str:
    seconds = round(span.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {seconds:02d} s"
    return f"{seconds} s"

"""The ISA-18.2 alarm state machine: conditions and operator actions in, Transitions out.

Pure: the daemon passes the time (UTC) and each scan's conditions (conditions.py, or its own
system alarms); the engine keeps each alarm's state and returns what changed, for the journal.

Annunciated states follow the condition and the operator's acknowledgement:

    NORMAL --active--> UNACKNOWLEDGED --ack--> ACKNOWLEDGED --clear--> NORMAL
                       UNACKNOWLEDGED --clear--> RETURNED_UNACKNOWLEDGED --ack--> NORMAL
                       RETURNED_UNACKNOWLEDGED --active--> UNACKNOWLEDGED

A latched alarm does not return on its own: once raised it stays UNACKNOWLEDGED or ACKNOWLEDGED
after its condition clears, until an operator acknowledges it with the condition clear (for an
ACKNOWLEDGED latched alarm this second acknowledgement is the reset); it then goes to NORMAL.
It is never RETURNED_UNACKNOWLEDGED.

Three overlays hide an alarm, strongest first: OUT_OF_SERVICE (an operator, for maintenance),
SUPPRESSED (by design: the daemon says which alarms the plant's state makes meaningless),
SHELVED (an operator, with a reason, until an expiry). None is ever annunciated. A suppression says
why (a plant mode, a lockout, the cause whose consequence the alarm is: suppression.py); while
suppressed, each change of the alarm's condition is still journaled (a SUPPRESSED → SUPPRESSED
transition, "active while suppressed"), so nothing is lost. Leaving a shelve
or out of service, the alarm takes the state its condition gives now (active: UNACKNOWLEDGED, so
it is announced again; clear: NORMAL). Leaving a suppression, the condition moves on from the
annunciated state the alarm had before it (an alarm acknowledged before and still active is
ACKNOWLEDGED again, so a plant mode that flickers does not announce it again and again; one
raised during the suppression and still active is UNACKNOWLEDGED; one that was NORMAL and is
clear is NORMAL); a shelve still running when a suppression ends is SHELVED again.

Critical alarms cannot be shelved: ISA-18.2 allows shelving any alarm, but a critical alarm here
is a safety one (a leak), and hiding it behind a nuisance-alarm tool is how it gets missed; remove
it from service instead, which takes a reason and shows as out of service.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from controller.alarms.model import ANNUNCIATED, AlarmId, Kind, Priority, State, Transition

PRIORITY_RANK: Final = {
    Priority.CRITICAL: 0,
    Priority.HIGH: 1,
    Priority.MEDIUM: 2,
    Priority.LOW: 3,
}
SHELVE_EXPIRED: Final = "shelve expired"
SUPPRESSED_BY_DESIGN: Final = "suppressed by design"
SUPPRESSION_ENDED: Final = "suppression ended"
ACTIVE_WHILE_SUPPRESSED: Final = "active while suppressed"
CLEARED_WHILE_SUPPRESSED: Final = "cleared while suppressed"


@dataclass(frozen=True)
class AlarmDefinition:
    id: AlarmId
    priority: Priority
    message: str  # for the operator: what and what to do; the id says where
    latched: bool = False
    kind: Kind = Kind.SYSTEM


@dataclass(frozen=True)
class AlarmStatus:
    id: AlarmId
    priority: Priority
    state: State
    active: bool  # the condition, whatever the state
    since: datetime | None  # when it last entered its state; None: not since the engine started
    message: str
    shelved_until: datetime | None
    shelve_reason: str
    first_out: bool  # the first alarm of its source since the source had none annunciated
    suppressed_by: str = ""  # while SUPPRESSED: why (a mode, a lockout, its cause)


@dataclass
class _Alarm:
    definition: AlarmDefinition
    order: int  # position in the definitions: breaks ties between alarms raised in one scan
    state: State = State.NORMAL
    active: bool = False
    since: datetime | None = None
    shelved_until: datetime | None = None
    shelve_reason: str = ""
    suppressed: bool = False  # by design, as of the last update
    suppressed_by: str = ""  # why, as of the last update
    held: State = State.NORMAL  # while SUPPRESSED: the annunciated state it had before

    @property
    def id(self) -> AlarmId:
        return self.definition.id

    def raised(self) -> State:
        """The state the condition gives an alarm coming back from an overlay."""
        return State.UNACKNOWLEDGED if self.active else State.NORMAL

    def unshelve(self) -> None:
        self.shelved_until = None
        self.shelve_reason = ""


class AlarmEngine:
    def __init__(self, definitions: Sequence[AlarmDefinition]) -> None:
        self._alarms: dict[AlarmId, _Alarm] = {}
        for order, definition in enumerate(definitions):
            if definition.id in self._alarms:
                raise ValueError(f"alarm {definition.id} is defined twice")
            self._alarms[definition.id] = _Alarm(definition, order)
        self._first_out: dict[str, AlarmId] = {}  # by source

    # ------------------------------------------------------------ scan

    def update(
        self,
        now: datetime,
        active: Mapping[AlarmId, bool],
        suppressed: Collection[AlarmId] | Mapping[AlarmId, str] = (),
    ) -> list[Transition]:
        """One scan. Alarms missing from `active` keep their condition; `suppressed`: the alarms
        the plant's state suppresses by design now (a mapping gives why, for the journal)."""
        if unknown := [a for a in (*active, *suppressed) if a not in self._alarms]:
            raise ValueError(f"unknown alarm {unknown[0]}")
        why: Mapping[AlarmId, str] = (
            suppressed if isinstance(suppressed, Mapping) else dict.fromkeys(suppressed, "")
        )
        transitions = []
        for alarm in self._alarms.values():
            was_active = alarm.active
            if alarm.id in active:
                alarm.active = bool(active[alarm.id])
            alarm.suppressed = alarm.id in why
            alarm.suppressed_by = why.get(alarm.id, "")
            state, reason = self._scanned(alarm, now)
            if state is not alarm.state:
                transitions.append(self._move(alarm, state, now, "", reason))
            elif state is State.SUPPRESSED and alarm.active != was_active:
                # Never lost: the condition's changes behind a suppression are journaled too.
                change = ACTIVE_WHILE_SUPPRESSED if alarm.active else CLEARED_WHILE_SUPPRESSED
                transitions.append(self._note(alarm, now, _because(change, alarm.suppressed_by)))
        self._track_first_out(transitions)
        return transitions

    def _scanned(self, alarm: _Alarm, now: datetime) -> tuple[State, str]:
        """The state one scan gives `alarm`, and why when it is not its condition."""
        if alarm.state is State.OUT_OF_SERVICE:
            return alarm.state, ""
        expired = alarm.shelved_until is not None and now >= alarm.shelved_until
        if expired:
            alarm.unshelve()
        if alarm.suppressed:
            if alarm.state is not State.SUPPRESSED:
                alarm.held = alarm.state if alarm.state in ANNUNCIATED else State.NORMAL
            return State.SUPPRESSED, _because(SUPPRESSED_BY_DESIGN, alarm.suppressed_by)
        if alarm.state is State.SUPPRESSED:
            if alarm.shelved_until is not None:
                return State.SHELVED, SUPPRESSION_ENDED
            held = _follow(alarm.held, alarm.active, alarm.definition.latched)
            return held, SUPPRESSION_ENDED
        if alarm.state is State.SHELVED:
            return (alarm.raised(), SHELVE_EXPIRED) if expired else (State.SHELVED, "")
        return _follow(alarm.state, alarm.active, alarm.definition.latched), ""

    # ------------------------------------------------------------ operator actions

    def acknowledge(
        self, alarm: AlarmId, now: datetime, user: str, reason: str = ""
    ) -> list[Transition]:
        record = self._get(alarm)
        _need_user(alarm, user)
        state = record.state
        if state is State.UNACKNOWLEDGED:
            after = State.ACKNOWLEDGED if record.active else State.NORMAL
        elif state is State.RETURNED_UNACKNOWLEDGED:
            after = State.NORMAL
        elif state is State.ACKNOWLEDGED and record.definition.latched and not record.active:
            after = State.NORMAL  # the reset of a latched alarm
        elif state is State.ACKNOWLEDGED and record.definition.latched:
            raise ValueError(
                f"alarm {alarm} is acknowledged and still active: "
                "a latched alarm is reset once its condition has cleared"
            )
        else:
            raise ValueError(f"alarm {alarm} is {_said(state)}: there is nothing to acknowledge")
        return self._act(record, after, now, user, reason)

    def shelve(
        self, alarm: AlarmId, now: datetime, until: datetime, user: str, reason: str
    ) -> list[Transition]:
        """Hide `alarm` until `until` (a re-shelve of a shelved alarm sets a new expiry)."""
        record = self._get(alarm)
        _need_user(alarm, user)
        if record.definition.priority is Priority.CRITICAL:
            raise ValueError(
                f"alarm {alarm} is critical: critical alarms cannot be shelved "
                "(remove it from service for maintenance instead)"
            )
        if not reason.strip():
            raise ValueError(f"shelving alarm {alarm} needs a reason")
        if until <= now:
            raise ValueError(
                f"shelving alarm {alarm} needs an expiry after now, got {until.isoformat()}"
            )
        if record.state in (State.OUT_OF_SERVICE, State.SUPPRESSED):
            raise ValueError(f"alarm {alarm} is {_said(record.state)}: it cannot be shelved")
        record.shelved_until = until
        record.shelve_reason = reason
        return self._act(record, State.SHELVED, now, user, reason)

    def unshelve(
        self, alarm: AlarmId, now: datetime, user: str, reason: str = ""
    ) -> list[Transition]:
        record = self._get(alarm)
        _need_user(alarm, user)
        if record.state is not State.SHELVED:
            raise ValueError(f"alarm {alarm} is {_said(record.state)}, not shelved")
        record.unshelve()
        return self._act(record, record.raised(), now, user, reason)

    def remove_from_service(
        self, alarm: AlarmId, now: datetime, user: str, reason: str
    ) -> list[Transition]:
        record = self._get(alarm)
        _need_user(alarm, user)
        if not reason.strip():
            raise ValueError(f"removing alarm {alarm} from service needs a reason")
        if record.state is State.OUT_OF_SERVICE:
            raise ValueError(f"alarm {alarm} is already out of service")
        record.unshelve()
        return self._act(record, State.OUT_OF_SERVICE, now, user, reason)

    def return_to_service(
        self, alarm: AlarmId, now: datetime, user: str, reason: str = ""
    ) -> list[Transition]:
        record = self._get(alarm)
        _need_user(alarm, user)
        if record.state is not State.OUT_OF_SERVICE:
            raise ValueError(f"alarm {alarm} is {_said(record.state)}, not out of service")
        record.held = State.NORMAL
        after = State.SUPPRESSED if record.suppressed else record.raised()
        return self._act(record, after, now, user, reason)

    # ------------------------------------------------------------ views

    def status(self) -> list[AlarmStatus]:
        """Every alarm, in the order of the definitions."""
        return [self._status(alarm) for alarm in self._alarms.values()]

    def state(self, alarm: AlarmId) -> State:
        return self._get(alarm).state

    def annunciated(self) -> list[AlarmStatus]:
        """The alarms an operator sees: unacknowledged, acknowledged, returned unacknowledged."""
        return [self._status(a) for a in self._alarms.values() if a.state in ANNUNCIATED]

    def first_out(self, source: str) -> AlarmId | None:
        """The first alarm of `source` (a caisson) raised since it last had no annunciated alarm.

        Alarms raised in the same scan are told apart by priority, then definition order. After
        `restore` the first-out is unknown until the source has had no annunciated alarm."""
        return self._first_out.get(source)

    def restore(self, states: Mapping[AlarmId, tuple[State, datetime | None, str]]) -> None:
        """Take back (state, shelved_until, shelve_reason) from the journal after a restart,
        without transitions. Alarms no longer defined are ignored; a shelve without an expiry is
        dropped. The conditions are taken as active in UNACKNOWLEDGED and ACKNOWLEDGED (so the
        first scan reports the ones that cleared meanwhile) and clear otherwise."""
        for alarm_id, (state, shelved_until, shelve_reason) in states.items():
            alarm = self._alarms.get(alarm_id)
            if alarm is None:
                continue
            state = State(state)  # noqa: PLW2901 (the journal may give plain strings)
            if state is State.SHELVED and shelved_until is None:
                state = State.NORMAL  # noqa: PLW2901
            alarm.state = state
            alarm.active = state in (State.UNACKNOWLEDGED, State.ACKNOWLEDGED)
            alarm.since = None
            alarm.suppressed = state is State.SUPPRESSED
            alarm.held = State.NORMAL
            alarm.shelved_until = shelved_until
            alarm.shelve_reason = shelve_reason if shelved_until is not None else ""

    # ------------------------------------------------------------ internals

    def _get(self, alarm: AlarmId) -> _Alarm:
        record = self._alarms.get(alarm)
        if record is None:
            raise ValueError(f"unknown alarm {alarm}")
        return record

    def _move(
        self, alarm: _Alarm, state: State, now: datetime, user: str, reason: str
    ) -> Transition:
        transition = Transition(
            at=now,
            alarm=alarm.id,
            priority=alarm.definition.priority,
            before=alarm.state,
            after=state,
            message=alarm.definition.message,
            user=user,
            reason=reason,
        )
        alarm.state = state
        alarm.since = now
        return transition

    def _note(self, alarm: _Alarm, now: datetime, reason: str) -> Transition:
        """A journal entry for an alarm whose state does not change (SUPPRESSED → SUPPRESSED)."""
        return Transition(
            at=now,
            alarm=alarm.id,
            priority=alarm.definition.priority,
            before=alarm.state,
            after=alarm.state,
            message=alarm.definition.message,
            reason=reason,
        )

    def _act(
        self, alarm: _Alarm, state: State, now: datetime, user: str, reason: str
    ) -> list[Transition]:
        transitions = [self._move(alarm, state, now, user, reason)]
        self._track_first_out(transitions)
        return transitions

    def _track_first_out(self, transitions: Iterable[Transition]) -> None:
        raised: dict[str, list[_Alarm]] = {}
        for transition in transitions:
            if transition.after is State.UNACKNOWLEDGED:
                alarm = self._alarms[transition.alarm]
                raised.setdefault(alarm.id.source, []).append(alarm)
        for source, alarms in raised.items():
            if source not in self._first_out:
                first = min(alarms, key=lambda a: (PRIORITY_RANK[a.definition.priority], a.order))
                self._first_out[source] = first.id
        quiet = set(self._first_out)
        for alarm in self._alarms.values():
            if alarm.state in ANNUNCIATED:
                quiet.discard(alarm.id.source)
        for source in quiet:
            del self._first_out[source]

    def _status(self, alarm: _Alarm) -> AlarmStatus:
        return AlarmStatus(
            id=alarm.id,
            priority=alarm.definition.priority,
            state=alarm.state,
            active=alarm.active,
            since=alarm.since,
            message=alarm.definition.message,
            shelved_until=alarm.shelved_until,
            shelve_reason=alarm.shelve_reason,
            first_out=self._first_out.get(alarm.id.source) == alarm.id,
            suppressed_by=alarm.suppressed_by if alarm.state is State.SUPPRESSED else "",
        )


def alarm_counts(statuses: Iterable[AlarmStatus]) -> dict[str, int]:
    """How many alarms are in each state, and the unacknowledged by priority (unacknowledged:
    raised or returned, not yet acknowledged): the site's line in a fleet's view."""
    counts = {f"unack_{p.value}": 0 for p in Priority}
    counts |= dict.fromkeys(
        ("unacknowledged", "annunciated", "suppressed", "shelved", "out_of_service"), 0
    )
    for status in statuses:
        if status.state in (State.UNACKNOWLEDGED, State.RETURNED_UNACKNOWLEDGED):
            counts["unacknowledged"] += 1
            counts[f"unack_{status.priority.value}"] += 1
        if status.state in ANNUNCIATED:
            counts["annunciated"] += 1
        elif status.state is not State.NORMAL:
            counts[status.state.value] += 1
    return counts


def _follow(state: State, active: bool, latched: bool) -> State:
    """The annunciated state machine, driven by the condition."""
    if state is State.NORMAL:
        return State.UNACKNOWLEDGED if active else State.NORMAL
    if state is State.UNACKNOWLEDGED:
        return state if active or latched else State.RETURNED_UNACKNOWLEDGED
    if state is State.ACKNOWLEDGED:
        return state if active or latched else State.NORMAL
    return State.UNACKNOWLEDGED if active else state  # RETURNED_UNACKNOWLEDGED


def _because(what: str, why: str) -> str:
    return f"{what}: {why}" if why else what


def _need_user(alarm: AlarmId, user: str) -> None:
    if not user.strip():
        raise ValueError(f"an action on alarm {alarm} needs the user who takes it")


def _said(state: State) -> str:
    return state.value.replace("_", " ")

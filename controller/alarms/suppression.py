"""Designed suppression by cause (ISA-18.2's state-based alarming): while a cause alarm's condition
is active, and for a release time after it clears, the alarms that are its consequences at the same
place are suppressed by design. Pure but for the time passed in.

A pump trip makes the flow fall, the supervisor's interlock cut the caisson and the drive's speed
leave its command: four alarms for one fault, three of which tell the operator nothing the first
did not. With `pump_fault` suppressing `flow_lo`, `interlock_active` and `pump_speed_deviation`,
the fault annunciates once. The consequences are not lost: they show as SUPPRESSED (with their
cause), their conditions keep being evaluated, and every change is journaled (engine.py).

Rules name alarms, not places: `CauseRule("pump_fault", {"flow_lo", ...})` applies at every source
(each caisson, or the plant) that has both the cause and the consequence. They come from the site
file (`suppresses:` of an alarm definition) and from the controller for its own alarms
(system.py). The release time covers what outlasts the cause: a PLC resets its trip a couple of
minutes after the cause has gone, and the flow and the interlocks take a little longer to settle;
a consequence still active when the release ends is annunciated then (it has a cause of its own).

A latched cause (a leak: the PLC keeps the caisson isolated until someone resets it) stays in
effect until it is reset, whatever its condition does meanwhile: the alarm service says so.

The mechanism is the same for any cause: a future state of a caisson (standby, say) is a cause
whose "condition" is that state.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from controller.alarms.model import AlarmId


@dataclass(frozen=True)
class CauseRule:
    cause: str  # an alarm name
    consequences: frozenset[str]  # alarm names, at the cause's own source
    release: float = 300.0  # s the consequences stay suppressed after the cause clears


@dataclass
class _Cause:
    id: AlarmId
    consequences: tuple[AlarmId, ...]
    release: float
    active: bool = False
    cleared_at: float | None = None  # monotonic s when the condition last cleared


class CauseSuppression:
    """The consequences suppressed now, from each scan's conditions."""

    def __init__(self, rules: Iterable[CauseRule], known: Collection[AlarmId]) -> None:
        """known: every alarm of the site; a rule applies at each source having its cause and
        at least one of its consequences."""
        known_ids = set(known)
        sources = sorted({a.source for a in known_ids})
        causes: dict[AlarmId, _Cause] = {}
        for rule in rules:
            for source in sources:
                cause = AlarmId(source, rule.cause)
                consequences = tuple(
                    AlarmId(source, name)
                    for name in sorted(rule.consequences)
                    if AlarmId(source, name) in known_ids and name != rule.cause
                )
                if cause not in known_ids or not consequences:
                    continue
                if cause in causes:  # two rules for one cause: their consequences together
                    merged = causes[cause]
                    merged.consequences = tuple(dict.fromkeys(merged.consequences + consequences))
                    merged.release = max(merged.release, rule.release)
                else:
                    causes[cause] = _Cause(cause, consequences, rule.release)
        self._causes = list(causes.values())

    @property
    def causes(self) -> dict[AlarmId, tuple[AlarmId, ...]]:
        """Each cause instance and its consequences (for views and tests)."""
        return {c.id: c.consequences for c in self._causes}

    def update(self, active: Mapping[AlarmId, bool], now: float) -> dict[AlarmId, str]:
        """The consequences suppressed after this scan, each with why ("c2.pump_fault active",
        or "c2.pump_fault cleared 40 s ago"). `active`: this scan's conditions (a cause missing
        from it keeps its last condition); `now`: monotonic seconds."""
        reasons: dict[AlarmId, list[tuple[AlarmId, str]]] = {}
        for cause in self._causes:
            if cause.id in active:
                condition = bool(active[cause.id])
                if cause.active and not condition:
                    cause.cleared_at = now
                cause.active = condition
            if cause.active:
                why = f"{cause.id} active"
            elif cause.cleared_at is not None and now - cause.cleared_at < cause.release:
                why = f"{cause.id} cleared {now - cause.cleared_at:.0f} s ago"
            else:
                continue
            for consequence in cause.consequences:
                reasons.setdefault(consequence, []).append((cause.id, why))
        # A cause suppressed by another still suppresses its own consequences (pump_fault →
        # flow_lo → interlock_active); the reason given is the root cause's where there is one.
        return {
            consequence: next((why for c, why in found if c not in reasons), found[0][1])
            for consequence, found in reasons.items()
        }

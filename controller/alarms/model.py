"""Alarm vocabulary (ISA-18.2) shared by the engine, the journal, the metrics and the daemon.

An alarm is one definition at one place (`AlarmId`: e.g. `c2.outlet_temp_hihi`). Each scan the
daemon works out whether each alarm's condition is active (conditions.py) and the engine moves the
alarm through its states (engine.py), giving `Transition`s that the journal stores and the
historian draws as annotations.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Priority(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class State(StrEnum):
    """ISA-18.2 alarm states (the standard's state diagram, letters A–H)."""

    NORMAL = "normal"  # A: condition inactive, acknowledged
    UNACKNOWLEDGED = "unacknowledged"  # B: active, not acknowledged
    ACKNOWLEDGED = "acknowledged"  # C: active, acknowledged
    RETURNED_UNACKNOWLEDGED = "returned_unacknowledged"  # D: inactive, not acknowledged
    SHELVED = "shelved"  # E: hidden by an operator until an expiry, with a reason
    SUPPRESSED = "suppressed"  # F: suppressed by design (plant state makes it meaningless)
    OUT_OF_SERVICE = "out_of_service"  # G: removed from service (maintenance)


ANNUNCIATED = frozenset({State.UNACKNOWLEDGED, State.ACKNOWLEDGED, State.RETURNED_UNACKNOWLEDGED})


class Kind(StrEnum):
    """How a definition's condition is evaluated."""

    HI = "hi"
    HIHI = "hihi"
    LO = "lo"
    LOLO = "lolo"
    DISCRETE = "discrete"  # a bit or flag is (or is not) at its alarm value
    DEVIATION = "deviation"  # |value − setpoint| above a limit
    RATE = "rate"  # |d value / dt| above a limit
    SYSTEM = "system"  # raised by the controller itself


@dataclass(frozen=True)
class AlarmId:
    source: str  # a caisson id, a device id, "plant" or "controller"
    name: str  # the definition's name, e.g. "outlet_temp_hihi"

    def __str__(self) -> str:
        return f"{self.source}.{self.name}"


@dataclass(frozen=True)
class Transition:
    """One change of an alarm's state, as journaled."""

    at: datetime  # UTC
    alarm: AlarmId
    priority: Priority
    before: State
    after: State
    message: str  # for the operator: what, where, the value
    user: str = ""  # for operator actions (ack, shelve, ...)
    reason: str = ""
    # For a transition into SHELVED: when the shelve expires (UTC). The journal stores it, so
    # that a restarted engine keeps the shelve (Journal.alarm_states).
    shelved_until: datetime | None = None

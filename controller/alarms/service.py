"""The alarms of a site, scan by scan: the site file's alarms, the system alarms and the sensor
plausibility alarms (sensor_checks.py) through the ISA-18.2 engine, every transition to the
journal and, as an event, to the historian.

Designed suppression (ISA-18.2): an alarm is suppressed while its caisson is in maintenance
lockout, in the plant modes its definition names (`suppressed_in`), and while one of its causes is
active and shortly after (`suppresses` in the site file, and the controller's own causes:
suppression.py), so that one fault annunciates one or two alarms, not its every consequence.

`scan()` is pure but for the journal (a few small SQLite writes when something changes), and runs
the same in the daemon and in in-process simulations (without a journal or controller figures).
System alarms wait `SYSTEM_ON_DELAY` before they annunciate: a device still connecting at start,
or a one-cycle glitch, is not an alarm.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

import structlog

from controller.alarms import definitions
from controller.alarms.conditions import DiscreteCondition
from controller.alarms.engine import AlarmEngine
from controller.alarms.journal import Journal
from controller.alarms.model import AlarmId, State, Transition
from controller.alarms.sensor_checks import SensorChecks
from controller.alarms.suppression import CauseSuppression
from controller.alarms.system import ControllerFigures, SystemAlarms
from controller.config.loader import LoadedSite
from controller.control.supervisor import ScanResult
from controller.fieldbus.image import PointRef, Sample

log = structlog.get_logger(__name__)

SYSTEM_ON_DELAY = 10.0  # s


class AlarmService:
    def __init__(
        self,
        site: LoadedSite,
        journal: Journal | None = None,
        *,
        on_transitions: Callable[[Sequence[Transition]], None] | None = None,
    ) -> None:
        """on_transitions: told each scan's transitions (the historian's events)."""
        self.instances = definitions.instantiate(site)
        self.system = SystemAlarms(site)
        self.sensors = SensorChecks(site)
        self.engine = AlarmEngine(
            [i.definition for i in self.instances]
            + self.system.definitions
            + self.sensors.definitions
        )
        # Designed suppression by cause: the site file's `suppresses`, and the controller's own.
        self.causes = CauseSuppression(
            definitions.cause_rules(site) + self.system.cause_rules,
            [s.id for s in self.engine.status()],
        )
        # A latched cause (a leak: the PLC isolates the caisson until reset) is in effect until an
        # operator resets it, whatever its condition does meanwhile.
        latched = {i.definition.id for i in self.instances if i.definition.latched}
        self._latched_causes = [c for c in self.causes.causes if c in latched]
        self._debounce = {
            d.id: DiscreteCondition(on_delay=SYSTEM_ON_DELAY) for d in self.system.definitions
        }
        self.journal = journal
        self.on_transitions = on_transitions
        self.transitions: list[Transition] = []  # kept only when `keep` is set (simulations)
        self.keep = False
        if journal is not None:
            self.engine.restore(journal.alarm_states())

    def scan(
        self,
        snapshot: Mapping[PointRef, Sample],
        result: ScanResult,
        now: datetime,
        tick: float,
        figures: ControllerFigures | None = None,
    ) -> list[Transition]:
        """One scan at `now` (UTC; `tick`: monotonic seconds for the delays)."""
        active = definitions.evaluate(self.instances, snapshot, tick)
        raw = self.system.conditions(snapshot, result.status, figures)
        for alarm, condition in raw.items():
            active[alarm] = self._debounce[alarm].evaluate(condition, tick)
        active |= self.sensors.conditions(snapshot, tick)  # their own delays, minutes long
        # The supervisor's lockouts: the site file's and those an engineer set since.
        lockout = {c.id for c in result.status.caissons if c.locked_out}
        standby = {c.id for c in result.status.caissons if c.standby}
        in_effect = dict(active)
        for cause in self._latched_causes:
            if self.engine.state(cause) in (State.UNACKNOWLEDGED, State.ACKNOWLEDGED):
                in_effect[cause] = True
        suppressed: dict[AlarmId, str] = self.causes.update(in_effect, tick)
        suppressed |= definitions.suppressed(
            self.instances, result.status.mode.value, lockout, standby
        )
        suppressed |= self.system.suppressed(lockout)
        suppressed |= self.sensors.suppressed(lockout)
        transitions = self.engine.update(now, active, suppressed)
        if transitions:
            self._record(transitions)
        return transitions

    def _record(self, transitions: Sequence[Transition]) -> None:
        if self.keep:
            self.transitions.extend(transitions)
        if self.journal is not None:
            self.journal.record_transitions(transitions)
        if self.on_transitions is not None:
            self.on_transitions(transitions)
        for t in transitions:
            log.info(
                "alarm",
                alarm=str(t.alarm),
                priority=str(t.priority),
                before=str(t.before),
                after=str(t.after),
                message=t.message,
                reason=t.reason,
            )

    def record(self, transitions: Sequence[Transition]) -> None:
        """Journal and publish the transitions of an operator's action (acknowledge, shelve...)."""
        if transitions:
            self._record(transitions)

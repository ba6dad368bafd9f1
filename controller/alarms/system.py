"""The alarms the controller raises about itself and the plant's supervision. Pure.

From one scan (the snapshot and the supervisor's status) and, in the daemon, the cycle's and the
historian's own figures:
- `<caisson>.<role>_comm_lost`, `plant.<device>_comm_lost`: every point of a device is STALE or BAD
  for lost communication (so it is known with or without the drivers' health objects);
- `<caisson>.inputs_stale`: the supervisor holds the caisson in its safe state for a critical input
  that is not valid; `plant.inputs_stale`: the plant in SAFE mode for the same reason;
- `<caisson>.interlock_active`: a supervisory interlock that stops or cuts the caisson (low flow,
  pump fault, leak, PLC trip, over-temperature stages 2 and 3);
- `controller.cycle_overrun`: cycles overrunning their period several in a row;
- `<caisson or plant>.write_failed`: writes to a device failing (the PLC does not take setpoints);
- `controller.<historian condition>`: the historian's own alarms (writer.Condition);
- `controller.flash_write_budget`: a register written more often than `FLASH_WRITES_PER_HOUR`
  (setpoint registers are RAM-backed on our maps, but a vendor's may be flash: DOMAIN.md).
Alarms of a caisson in maintenance lockout are suppressed by design (the caller asks
`suppressed()`). Designed suppression by cause (suppression.py), for the controller's own causes
(`cause_rules`): a device not answering explains its failed writes; a silent caisson skid, or a
critical input lost, explains the caisson held in its safe state and the interlock that cuts it;
a silent plant skid explains the plant's SAFE mode.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from controller.alarms.engine import AlarmDefinition
from controller.alarms.model import AlarmId, Priority
from controller.alarms.suppression import CauseRule
from controller.config.loader import LoadedSite
from controller.control.dispatch import Mode
from controller.control.interlocks import Interlock
from controller.control.supervisor import PlantStatus
from controller.fieldbus.image import PointRef, Quality, Reason, Sample

CONTROLLER = "controller"
PLANT = "plant"
OVERRUN_STREAK = 5  # cycles in a row
FLASH_WRITES_PER_HOUR = (
    1800.0  # a write every other cycle, all hour long: the deadband is not working
)
CUTTING_INTERLOCKS = frozenset(
    {
        Interlock.LOW_FLOW,
        Interlock.PUMP_FAULT,
        Interlock.LEAK,
        Interlock.PLC_TRIP,
        Interlock.OVERTEMP_2,
        Interlock.OVERTEMP_3,
    }
)
_COMM = frozenset({Reason.COMM_LOST, Reason.NOT_CONNECTED})
HISTORIAN_PRIORITIES = {
    "historian_unreachable": Priority.MEDIUM,
    "historian_refused": Priority.HIGH,
    "historian_rejected_data": Priority.LOW,
    "historian_spool_evicting": Priority.HIGH,
    "historian_spool_growing": Priority.LOW,
}


@dataclass(frozen=True)
class ControllerFigures:
    """What only the daemon knows (None of it in in-process simulations)."""

    overrun_streak: int = 0
    write_failure_streaks: Mapping[str, int] = field(default_factory=dict)  # by device
    historian_conditions: Collection[str] = ()  # the writer's active Condition values
    register_writes_per_hour: Mapping[PointRef, float] = field(default_factory=dict)


class SystemAlarms:
    def __init__(self, site: LoadedSite) -> None:
        config = site.config
        self._source: dict[str, str] = {}  # device → caisson id or "plant"
        self._label: dict[str, str] = {}  # device → role label in the alarm name
        for caisson in config.caissons:
            for role, device_id in (
                ("skid", caisson.skid),
                ("compute", caisson.compute),
                ("heat_meter", caisson.heat_meter),
            ):
                if device_id is not None:
                    self._source[device_id], self._label[device_id] = caisson.id, role
        for device in config.devices:
            if device.id not in self._source:
                self._source[device.id] = PLANT
                self._label[device.id] = device.id.replace("-", "_")
        self.caissons = [c.id for c in config.caissons]
        self.definitions = self._definitions()
        self.cause_rules = self._cause_rules(config.plant.skid)

    def _cause_rules(self, plant_skid: str) -> list[CauseRule]:
        rules = [
            CauseRule(f"{label}_comm_lost", frozenset({f"{label}_write_failed"}))
            for label in sorted(set(self._label.values()))
        ]
        rules.append(CauseRule("skid_comm_lost", frozenset({"inputs_stale", "interlock_active"})))
        rules.append(CauseRule("inputs_stale", frozenset({"interlock_active"})))
        if plant_skid in self._label:
            rules.append(
                CauseRule(f"{self._label[plant_skid]}_comm_lost", frozenset({"inputs_stale"}))
            )
        return rules

    def _definitions(self) -> list[AlarmDefinition]:
        defs = []
        for device, source in self._source.items():
            defs.append(
                AlarmDefinition(
                    AlarmId(source, f"{self._label[device]}_comm_lost"),
                    Priority.HIGH,
                    f"{device} not answering: its values are stale or missing",
                )
            )
            defs.append(
                AlarmDefinition(
                    AlarmId(source, f"{self._label[device]}_write_failed"),
                    Priority.MEDIUM,
                    f"{device} does not take the controller's writes",
                )
            )
        for caisson in self.caissons:
            defs.append(
                AlarmDefinition(
                    AlarmId(caisson, "inputs_stale"),
                    Priority.HIGH,
                    f"{caisson}: a critical input is not valid; the caisson is held safe",
                )
            )
            defs.append(
                AlarmDefinition(
                    AlarmId(caisson, "interlock_active"),
                    Priority.MEDIUM,
                    f"{caisson}: a supervisory interlock cuts the caisson's power",
                )
            )
        defs.append(
            AlarmDefinition(
                AlarmId(PLANT, "inputs_stale"),
                Priority.HIGH,
                "plant inputs not valid: the plant is in SAFE mode",
            )
        )
        defs.append(
            AlarmDefinition(
                AlarmId(CONTROLLER, "cycle_overrun"),
                Priority.MEDIUM,
                f"scan cycles overrun their period ({OVERRUN_STREAK} or more in a row)",
            )
        )
        defs.append(
            AlarmDefinition(
                AlarmId(CONTROLLER, "flash_write_budget"),
                Priority.LOW,
                f"a register is written more than {FLASH_WRITES_PER_HOUR:.0f} times an hour",
            )
        )
        for name, priority in HISTORIAN_PRIORITIES.items():
            defs.append(
                AlarmDefinition(AlarmId(CONTROLLER, name), priority, name.replace("_", " "))
            )
        return defs

    def conditions(
        self,
        snapshot: Mapping[PointRef, Sample],
        status: PlantStatus,
        figures: ControllerFigures | None = None,
    ) -> dict[AlarmId, bool]:
        """Each system alarm's condition this scan."""
        active: dict[AlarmId, bool] = {}
        lost: dict[str, bool] = {}
        for ref, sample in snapshot.items():
            silent = sample.quality is not Quality.GOOD and sample.reason in _COMM
            lost[ref.device] = lost.get(ref.device, True) and silent
        for device, source in self._source.items():
            active[AlarmId(source, f"{self._label[device]}_comm_lost")] = lost.get(device, False)
        for caisson in status.caissons:
            active[AlarmId(caisson.id, "inputs_stale")] = Interlock.INPUTS_LOST in (
                caisson.interlocks
            )
            active[AlarmId(caisson.id, "interlock_active")] = bool(
                CUTTING_INTERLOCKS & caisson.interlocks
            )
        active[AlarmId(PLANT, "inputs_stale")] = status.mode is Mode.SAFE
        if figures is not None:
            active[AlarmId(CONTROLLER, "cycle_overrun")] = figures.overrun_streak >= OVERRUN_STREAK
            for device, source in self._source.items():
                failing = figures.write_failure_streaks.get(device, 0) > 0
                active[AlarmId(source, f"{self._label[device]}_write_failed")] = failing
            for name in HISTORIAN_PRIORITIES:
                active[AlarmId(CONTROLLER, name)] = name in figures.historian_conditions
            active[AlarmId(CONTROLLER, "flash_write_budget")] = any(
                rate > FLASH_WRITES_PER_HOUR for rate in figures.register_writes_per_hour.values()
            )
        return active

    def suppressed(self, locked_out: Collection[str]) -> dict[AlarmId, str]:
        """Suppressed by design, and why: a caisson in maintenance lockout raises nothing."""
        return {
            d.id: f"{d.id.source} in maintenance lockout"
            for d in self.definitions
            if d.id.source in locked_out
        }

"""Designed suppression by cause (controller/alarms/suppression.py): the rule itself, the site
file's `suppresses` and its checks, and a pump trip through the alarm service annunciating one
alarm with its consequences suppressed and journaled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controller.alarms.definitions import cause_rules
from controller.alarms.model import AlarmId, State, Transition
from controller.alarms.service import AlarmService
from controller.alarms.suppression import CauseRule, CauseSuppression
from controller.alarms.system import SystemAlarms
from controller.config.loader import ConfigError, load_site
from controller.control.dispatch import Mode
from controller.control.interlocks import Interlock
from controller.control.supervisor import CaissonStatus, PlantStatus, ScanResult
from controller.fieldbus.image import PointRef, Reason, Sample
from tests.plant_helpers import SITES, site_copy

NOW = datetime(2026, 1, 15, 6, 0, tzinfo=UTC)
PUMP = CauseRule("pump_fault", frozenset({"flow_lo", "interlock_active"}), release=300.0)
KNOWN = [
    AlarmId(c, name)
    for c in ("c1", "c2")
    for name in ("pump_fault", "flow_lo", "interlock_active", "leak")
] + [AlarmId("plant", "flow_lo")]


def test_a_cause_suppresses_its_consequences_at_its_own_source_only() -> None:
    rules = CauseSuppression([PUMP], KNOWN)
    assert rules.causes == {
        AlarmId("c1", "pump_fault"): (AlarmId("c1", "flow_lo"), AlarmId("c1", "interlock_active")),
        AlarmId("c2", "pump_fault"): (AlarmId("c2", "flow_lo"), AlarmId("c2", "interlock_active")),
    }  # the plant has a flow_lo but no pump_fault: nothing there
    suppressed = rules.update({AlarmId("c2", "pump_fault"): True}, now=0.0)
    assert suppressed == {
        AlarmId("c2", "flow_lo"): "c2.pump_fault active",
        AlarmId("c2", "interlock_active"): "c2.pump_fault active",
    }


def test_consequences_stay_suppressed_for_the_release_time_after_the_cause_clears() -> None:
    rules = CauseSuppression([PUMP], KNOWN)
    cause = AlarmId("c1", "pump_fault")
    assert rules.update({cause: True}, now=0.0)
    assert rules.update({}, now=100.0)  # missing from a scan: the cause keeps its condition
    later = rules.update({cause: False}, now=200.0)
    assert later[AlarmId("c1", "flow_lo")] == "c1.pump_fault cleared 0 s ago"
    assert rules.update({cause: False}, now=499.0)[AlarmId("c1", "flow_lo")] == (
        "c1.pump_fault cleared 299 s ago"
    )
    assert rules.update({cause: False}, now=500.0) == {}
    assert CauseSuppression([PUMP], KNOWN).update({cause: False}, now=0.0) == {}  # never active


def test_two_rules_for_one_cause_add_up() -> None:
    more = CauseRule("pump_fault", frozenset({"leak"}), release=600.0)
    rules = CauseSuppression([PUMP, more], KNOWN)
    assert set(rules.causes[AlarmId("c1", "pump_fault")]) == {
        AlarmId("c1", "flow_lo"),
        AlarmId("c1", "interlock_active"),
        AlarmId("c1", "leak"),
    }
    rules.update({AlarmId("c1", "pump_fault"): True}, 0.0)
    assert rules.update({AlarmId("c1", "pump_fault"): False}, 1.0)
    assert rules.update({}, 500.0)  # the longer release of the two


def test_the_bundled_sites_declare_the_consequences_of_a_pump_fault_and_a_leak() -> None:
    for name in ("demo", "pool", "warehouse"):
        rules = {r.cause: r.consequences for r in cause_rules(load_site(SITES / f"{name}.yaml"))}
        assert {"flow_lo", "interlock_active", "pump_speed_deviation"} <= rules["pump_fault"]
        assert {"flow_lo", "interlock_active", "pump_speed_deviation"} <= rules["leak"]


# ---------------------------------------------------------------- the site file's checks

LEAK = "  - name: leak\n    suppresses: [flow_lo, interlock_active]"


def with_suppresses(tmp_path: Path, old: str, new: str) -> Path:
    path = site_copy(tmp_path)
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return path


def issues_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_site(path)
    return [f"{i.field}: {i.message}" for i in caught.value.issues]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "    suppresses: [interlock_active] # the supervisor's low-flow interlock follows",
            "    suppresses: [flow_low]",
            "alarms[2].suppresses[0]: no caisson alarm 'flow_low' to suppress: did you mean "
            "'flow_lo'?",
        ),
        (
            "    suppresses: [interlock_active] # the supervisor's low-flow interlock follows",
            "    suppresses: [leak]",
            "alarms[2].suppresses[0]: 'leak' is critical: a critical alarm is never suppressed",
        ),
        (
            "    suppresses: [interlock_active] # the supervisor's low-flow interlock follows",
            "    suppresses: [tank_top_lo]",
            "alarms[2].suppresses[0]: 'tank_top_lo' is a plant alarm: a caisson alarm "
            "suppresses alarms of its own caisson",
        ),
        (
            "    suppresses: [interlock_active] # the supervisor's low-flow interlock follows",
            "    suppresses: [flow_lo]",
            "alarms[2].suppresses[0]: an alarm cannot suppress itself",
        ),
        (
            "    suppresses: [interlock_active] # the supervisor's low-flow interlock follows",
            "    suppresses: [pump_fault]",
            "alarms[2].suppresses: suppression loop flow_lo → pump_fault → flow_lo: alarms that "
            "suppress each other would all be hidden at once",
        ),
    ],
)
def test_what_an_alarm_suppresses_is_checked(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    assert issues_of(with_suppresses(tmp_path, old, new)) == [expected]


def test_an_issue_names_the_file_and_line(tmp_path: Path) -> None:
    path = with_suppresses(
        tmp_path,
        "    suppresses: [interlock_active] # the supervisor's low-flow interlock follows",
        "    suppresses: [flow_low]",
    )
    with pytest.raises(ConfigError) as caught:
        load_site(path)
    (issue,) = caught.value.issues
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "flow_low" in text)
    assert str(issue).startswith(f"{path}:{line}: ")


# ---------------------------------------------------------------- a pump trip, end to end

SITE = load_site(SITES / "demo.yaml")


def _caisson(name: str, *interlocks: Interlock) -> CaissonStatus:
    return CaissonStatus(
        name, True, 1, frozenset(interlocks), True, 65.0, 65.0, 55.0, 4e-4, 2e4, 0.7, 2e4
    )


def _skid(pump_fault: bool, flow: float, speed: float) -> dict[PointRef, Sample]:
    values: dict[str, float | bool] = {
        "pump_fault": pump_fault,
        "leak": False,
        "flow": flow,
        "pump_speed_feedback": speed,
        "pump_speed_cmd": 60.0,
        "outlet_temp": 65.0,
    }
    return {PointRef("c2-skid", k): Sample.good(v, NOW) for k, v in values.items()}


def test_a_pump_trip_annunciates_one_alarm_and_journals_its_consequences() -> None:
    journal: list[Transition] = []
    service = AlarmService(SITE, on_transitions=journal.extend)
    healthy = ScanResult([], PlantStatus(Mode.HEAT, 6e4, 0.5, 5e4, 0.0, (_caisson("c2"),)))
    cut = _caisson("c2", Interlock.PUMP_FAULT, Interlock.LOW_FLOW)
    tripped = ScanResult([], PlantStatus(Mode.HEAT, 6e4, 0.5, 5e4, 0.0, (cut,)))
    second = 0
    for _ in range(5):
        service.scan(_skid(False, 25.0, 60.0), healthy, NOW + timedelta(seconds=second), second)
        second += 1
    for _ in range(120):  # two minutes of the trip: every consequence's delay has passed
        service.scan(_skid(True, 0.0, 0.0), tripped, NOW + timedelta(seconds=second), second)
        second += 1
    raised = [str(t.alarm) for t in journal if t.after is State.UNACKNOWLEDGED]
    assert raised == ["c2.pump_fault"]
    states = {str(s.id): s for s in service.engine.status()}
    for consequence in ("c2.flow_lo", "c2.interlock_active", "c2.pump_speed_deviation"):
        assert states[consequence].state is State.SUPPRESSED
        assert states[consequence].active  # its condition is still followed
        assert states[consequence].suppressed_by == "c2.pump_fault active"
        notes = [t for t in journal if str(t.alarm) == consequence]
        assert [(t.before, t.after) for t in notes] == [
            (State.NORMAL, State.SUPPRESSED),
            (State.SUPPRESSED, State.SUPPRESSED),  # its condition went active: journaled
        ]
        assert notes[1].reason == "active while suppressed: c2.pump_fault active"
    # The fault repaired: the consequences clear within the release time and never annunciate.
    for _ in range(600):
        service.scan(_skid(False, 25.0, 60.0), healthy, NOW + timedelta(seconds=second), second)
        second += 1
    raised = [str(t.alarm) for t in journal if t.after is State.UNACKNOWLEDGED]
    assert raised == ["c2.pump_fault"]
    states = {str(s.id): s for s in service.engine.status()}
    assert states["c2.flow_lo"].state is State.NORMAL
    assert states["c2.pump_fault"].state is State.RETURNED_UNACKNOWLEDGED


def test_a_lost_link_annunciates_the_devices_not_the_caisson_held_safe() -> None:
    """The controller's own causes (system.py): a silent skid explains the stale inputs."""
    journal: list[Transition] = []
    service = AlarmService(SITE, on_transitions=journal.extend)
    held = ScanResult(
        [], PlantStatus(Mode.HEAT, 6e4, 0.5, 5e4, 0.0, (_caisson("c2", Interlock.INPUTS_LOST),))
    )
    lost = {
        PointRef(device, point): Sample.bad(Reason.COMM_LOST, NOW)
        for device in ("c2-skid", "c2-compute")
        for point in ("flow", "it_power")
    }
    for second in range(30):
        service.scan(lost, held, NOW + timedelta(seconds=second), second)
    raised = sorted(str(t.alarm) for t in journal if t.after is State.UNACKNOWLEDGED)
    assert raised == ["c2.compute_comm_lost", "c2.skid_comm_lost"]
    states = {str(s.id): s for s in service.engine.status()}
    assert states["c2.inputs_stale"].state is State.SUPPRESSED
    assert states["c2.inputs_stale"].suppressed_by == "c2.skid_comm_lost active"


def test_the_controller_s_causes_name_its_own_alarms() -> None:
    system = SystemAlarms(SITE)
    names = {d.id.name for d in system.definitions}
    for rule in system.cause_rules:
        assert rule.cause in names
        assert rule.consequences <= names


def test_a_latched_cause_suppresses_until_it_is_reset() -> None:
    """A leak isolates the caisson until someone resets it: its consequences last that long."""
    journal: list[Transition] = []
    service = AlarmService(SITE, on_transitions=journal.extend)
    cut = ScanResult(
        [], PlantStatus(Mode.HEAT, 6e4, 0.5, 5e4, 0.0, (_caisson("c2", Interlock.LEAK),))
    )
    second = 0

    def run(seconds: int, leak: bool) -> None:
        nonlocal second
        for _ in range(seconds):
            snapshot = _skid(False, 0.0, 0.0) | {
                PointRef("c2-skid", "leak"): Sample.good(leak, NOW)
            }
            service.scan(snapshot, cut, NOW + timedelta(seconds=second), second)
            second += 1

    run(60, leak=True)
    run(3600, leak=False)  # the tray dried an hour ago; the caisson is still isolated
    flow = AlarmId("c2", "flow_lo")
    assert service.engine.state(flow) is State.SUPPRESSED
    raised = [str(t.alarm) for t in journal if t.after is State.UNACKNOWLEDGED]
    assert raised == ["c2.leak"]
    service.record(service.engine.acknowledge(AlarmId("c2", "leak"), NOW, "ana"))  # the reset
    run(299, leak=False)
    assert service.engine.state(flow) is State.SUPPRESSED  # the release time after the reset
    run(2, leak=False)
    assert service.engine.state(flow) is State.UNACKNOWLEDGED  # still no flow: its own alarm

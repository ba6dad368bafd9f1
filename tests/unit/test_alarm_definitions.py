"""The site file's alarms: instances per caisson and for the plant, the errors of bad
definitions (file, line, field), and their evaluation on a snapshot."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from controller.alarms.conditions import DeviationCondition, LimitCondition, RateCondition
from controller.alarms.definitions import AlarmInstance, evaluate, instantiate, suppressed
from controller.alarms.model import AlarmId, Kind, Priority
from controller.alarms.sensor_checks import SensorChecks
from controller.alarms.system import SystemAlarms
from controller.config.loader import ConfigIssue, check_files, load_site
from controller.config.site import is_controller_alarm_name
from controller.fieldbus.image import PointRef, Reason, Sample
from tests.plant_helpers import SITES, site_copy

AT = datetime(2026, 1, 15, 8, 0, tzinfo=UTC)
CAISSON_ALARMS = [
    "outlet_temp_hi",
    "outlet_temp_hihi",
    "flow_lo",
    "pump_speed_deviation",
    "pump_fault",
    "leak",
    "overtemp_trip",
    "local_safe",
]
PLANT_ALARMS = ["low_heat_delivery", "plant_supply_temp_hi", "tank_top_lo", "backup_fault"]


def demo_instances() -> dict[AlarmId, AlarmInstance]:
    return {i.definition.id: i for i in instantiate(load_site(SITES / "demo.yaml"))}


def with_alarms(tmp_path: Path, alarms: str) -> Path:
    """The demo site with its `alarms:` section replaced by `alarms` (YAML)."""
    path = site_copy(tmp_path)
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: text.index("\nalarms:\n")] + "\nalarms:\n" + alarms, encoding="utf-8")
    return path


def only_issue(path: Path) -> ConfigIssue:
    issues = check_files([path])
    assert len(issues) == 1, "\n".join(str(issue) for issue in issues)
    return issues[0]


def line_of(path: Path, fragment: str) -> int:
    """The line of `fragment`'s first occurrence in the `alarms:` section."""
    text = path.read_text(encoding="utf-8")
    return text.count("\n", 0, text.index(fragment, text.index("\nalarms:\n"))) + 1


# ---------------------------------------------------------------- the demo's alarms


def test_the_demo_alarms_instantiate_per_caisson_and_for_the_plant() -> None:
    instances = demo_instances()
    expected = [AlarmId(c, name) for name in CAISSON_ALARMS for c in ("c1", "c2", "c3")]
    expected += [AlarmId("plant", name) for name in PLANT_ALARMS]
    assert sorted(instances, key=str) == sorted(expected, key=str)
    hi = instances[AlarmId("c2", "outlet_temp_hi")]
    assert (hi.ref, hi.setpoint_ref, hi.caisson) == (PointRef("c2-skid", "outlet_temp"), None, "c2")
    assert hi.definition.priority is Priority.MEDIUM
    assert hi.definition.kind is Kind.HI
    assert hi.suppressed_in == frozenset({"lockout"})
    assert isinstance(hi.condition, LimitCondition)
    assert (hi.condition.limit, hi.condition.deadband) == (72.0, 1.0)  # degC, K
    assert (hi.condition.on_delay, hi.condition.off_delay) == (10.0, 30.0)
    flow = instances[AlarmId("c3", "flow_lo")].condition
    assert isinstance(flow, LimitCondition)
    assert (flow.kind, flow.limit, flow.deadband) == (Kind.LO, pytest.approx(11.0), 1.0)  # L/min
    deviation = instances[AlarmId("c1", "pump_speed_deviation")]
    assert deviation.ref == PointRef("c1-skid", "pump_speed_feedback")
    assert deviation.setpoint_ref == PointRef("c1-skid", "pump_speed_cmd")
    assert isinstance(deviation.condition, DeviationCondition)
    assert (deviation.condition.limit, deviation.condition.deadband) == (10.0, 2.0)  # %
    leak = instances[AlarmId("c1", "leak")]
    assert (leak.definition.priority, leak.definition.latched) == (Priority.CRITICAL, True)
    assert leak.suppressed_in == frozenset()
    plant = instances[AlarmId("plant", "tank_top_lo")]
    assert (plant.ref, plant.caisson) == (PointRef("plant-skid", "tank_temp_top"), None)
    assert plant.condition.on_delay == 1800.0


def test_each_instance_has_its_own_condition() -> None:
    instances = demo_instances()
    assert (
        instances[AlarmId("c1", "leak")].condition is not instances[AlarmId("c2", "leak")].condition
    )


@pytest.mark.parametrize("name", ["demo", "pool", "warehouse"])
def test_the_bundled_sites_define_alarms(name: str) -> None:
    instances = instantiate(load_site(SITES / f"{name}.yaml"))
    assert {i.definition.id.name for i in instances} >= {"leak", "flow_lo", "backup_fault"}


# ---------------------------------------------------------------- units of thresholds

FLOW_LO = """\
  - name: flow_lo
    scope: caisson
    device: skid
    point: flow
    kind: lo
    limit: {limit}
    deadband: {deadband}
    priority: high
    message: Low flow
"""


@pytest.mark.parametrize(
    ("limit", "deadband", "expected"),
    [
        ("11 L/min", "1 L/min", (11.0, 1.0)),
        ("0.66 m3/h", "0.06 m3/h", (11.0, 1.0)),  # converted to the point's L/min
        ("11 L/min", "0", (11.0, 0.0)),
    ],
)
def test_thresholds_are_converted_to_the_point_unit(
    tmp_path: Path, limit: str, deadband: str, expected: tuple[float, float]
) -> None:
    site = with_alarms(tmp_path, FLOW_LO.format(limit=limit, deadband=deadband))
    condition = instantiate(load_site(site))[0].condition
    assert isinstance(condition, LimitCondition)
    assert (condition.limit, condition.deadband) == pytest.approx(expected)


def test_a_rate_limit_is_per_second(tmp_path: Path) -> None:
    site = with_alarms(
        tmp_path,
        """\
  - name: outlet_temp_rate
    scope: caisson
    device: skid
    point: outlet_temp
    kind: rate
    limit: 2 K/min
    window: 1 min
    priority: low
    message: Outlet changing fast
""",
    )
    condition = instantiate(load_site(site))[0].condition
    assert isinstance(condition, RateCondition)
    assert (condition.limit, condition.window) == (pytest.approx(2 / 60), 60.0)


# ---------------------------------------------------------------- bad definitions

HI = """\
  - name: outlet_temp_hi
    scope: caisson
    device: skid
    point: outlet_temp
    kind: hi
    limit: 72 degC
    deadband: 1 K
    priority: medium
    message: Outlet hot
"""
PLANT = """\
  - name: tank_top_lo
    scope: plant
    device: plant_skid
    point: tank_temp_top
    kind: lo
    limit: 55 degC
    priority: medium
    message: Tank cold
"""
DEVIATION = """\
  - name: pump_speed_deviation
    scope: caisson
    device: skid
    point: pump_speed_feedback
    kind: deviation
    setpoint: pump_speed_cmd
    limit: 10 %
    priority: low
    message: Pump off its command
"""


# (alarms, old, new, the issue's field, its line (where this text is), what it says)
BAD = [
    (
        HI,
        "point: outlet_temp",
        "point: outlet_tmp",
        "alarms[0].point",
        "point: outlet_tmp",
        "map 'caisson_skid' of device 'c1-skid' has no point 'outlet_tmp': "
        "did you mean 'outlet_temp'?",
    ),
    (
        HI,
        "kind: hi",
        "kind: high",
        "alarms[0].kind",
        "kind: high",
        "input should be 'hi', 'hihi', 'lo', 'lolo', 'discrete', 'deviation' or 'rate', got 'high'",
    ),
    (
        HI,
        "    limit: 72 degC\n",
        "",
        "alarms[0].limit",
        "- name:",
        "a hi alarm needs a limit",
    ),
    (
        HI,
        "limit: 72 degC",
        "limit: 72 K",
        "alarms[0].limit",
        "limit: 72 K",
        "the point is in degC: write a temperature like '72 degC', got '72 K'",
    ),
    (
        HI,
        "limit: 72 degC",
        "limit: 72",
        "alarms[0].limit",
        "limit: 72",
        "the unit is missing: the point is in degC, write e.g. '72 degC'",
    ),
    (
        HI,
        "deadband: 1 K",
        "deadband: 1 degC",
        "alarms[0].deadband",
        "deadband: 1 degC",
        "the point is in degC: write a temperature difference like '1 K', got '1 degC'",
    ),
    (
        HI,
        "priority: medium",
        "priority: urgent",
        "alarms[0].priority",
        "priority: urgent",
        "input should be 'critical', 'high', 'medium' or 'low', got 'urgent'",
    ),
    (
        HI,
        "device: skid",
        "device: plant_skid",
        "alarms[0].device",
        "device: plant_skid",
        "a caisson alarm reads one of the caisson's devices: "
        "write device: skid, compute, heat_meter, not 'plant_skid'",
    ),
    (
        HI,
        "kind: hi\n    limit: 72 degC\n    deadband: 1 K",
        "kind: discrete",
        "alarms[0].point",
        "point: outlet_temp",
        "point 'outlet_temp' is of type int16: a discrete alarm watches a bool",
    ),
    (
        HI,
        "point: outlet_temp",
        "point: leak",
        "alarms[0].point",
        "point: leak",
        "point 'leak' is of type bool, not a number: use kind: discrete",
    ),
    (
        HI,
        "kind: hi",
        "kind: rate",
        "alarms[0].window",
        "- name:",
        "a rate alarm needs a window, e.g. window: 1 min",
    ),
    (
        HI,
        "device: skid\n    point: outlet_temp",
        "device: heat_meter\n    point: flow",
        "alarms[0].device",
        "device: heat_meter",
        "no caisson has a heat_meter",
    ),
    (
        PLANT,
        "device: plant_skid",
        "device: boiler-plc",
        "alarms[0].device",
        "device: boiler-plc",
        "unknown device 'boiler-plc'; write plant_skid, heat_meter, c1-skid, c2-skid, c3-skid, "
        "plant-skid, heat-meter, c1-compute, c2-compute, c3-compute",
    ),
    (
        PLANT,
        "message: Tank cold",
        "message: Tank cold\n    suppressed_in: [lockout]",
        "alarms[0].suppressed_in[0]",
        "suppressed_in:",
        "lockout suppresses caisson alarms; a plant alarm is suppressed by plant modes",
    ),
    (
        DEVIATION,
        "setpoint: pump_speed_cmd",
        "setpoint: pump_speed",
        "alarms[0].setpoint",
        "setpoint: pump_speed",
        "map 'caisson_skid' of device 'c1-skid' has no point 'pump_speed': "
        "did you mean 'pump_speed_cmd'?",
    ),
    (
        DEVIATION,
        "setpoint: pump_speed_cmd",
        "setpoint: flow",
        "alarms[0].setpoint",
        "setpoint: flow",
        "setpoint point 'flow' (L/min) must be a number in the unit of point "
        "'pump_speed_feedback' (%)",
    ),
    (
        DEVIATION,
        "    setpoint: pump_speed_cmd\n",
        "",
        "alarms[0].setpoint",
        "- name:",
        "a deviation alarm needs a setpoint: the id of the point it deviates from",
    ),
    (
        DEVIATION,
        "limit: 10 %",
        "limit: 10 %\n    deadband: 10 %",
        "alarms[0].deadband",
        "deadband: 10 %",
        "the deadband must be below the limit",
    ),
]


@pytest.mark.parametrize(("alarms", "old", "new", "field", "at", "message"), BAD)
def test_a_bad_alarm_is_an_error_naming_its_file_line_and_field(
    tmp_path: Path, alarms: str, old: str, new: str, field: str, at: str, message: str
) -> None:
    assert old in alarms
    site = with_alarms(tmp_path, alarms.replace(old, new))
    issue = only_issue(site)
    assert (issue.path, issue.line, issue.field) == (site, line_of(site, at), field)
    assert issue.message == message


def test_duplicate_alarm_names(tmp_path: Path) -> None:
    site = with_alarms(tmp_path, HI + HI)
    issue = only_issue(site)
    assert issue.field == "alarms[1].name"
    first = line_of(site, "- name: outlet_temp_hi")
    assert issue.message == f"duplicate alarm name 'outlet_temp_hi' (first at line {first})"
    assert issue.line > first


# ---------------------------------------------------------------- evaluation


def good(value: float | bool) -> Sample:
    return Sample.good(value, AT)


def test_evaluate_reads_good_samples_only() -> None:
    instances = list(demo_instances().values())
    hi = [i for i in instances if i.definition.id.name == "outlet_temp_hi"]
    snapshot = {
        PointRef("c1-skid", "outlet_temp"): good(75.0),
        PointRef("c2-skid", "outlet_temp"): good(75.0).stale(),
        PointRef("c3-skid", "outlet_temp"): good(60.0),
    }
    assert evaluate(hi, snapshot, 0.0) == {
        AlarmId("c1", "outlet_temp_hi"): False,  # on_delay 10 s
        AlarmId("c2", "outlet_temp_hi"): False,
        AlarmId("c3", "outlet_temp_hi"): False,
    }
    assert evaluate(hi, snapshot, 10.0)[AlarmId("c1", "outlet_temp_hi")] is True
    assert evaluate(hi, snapshot, 20.0)[AlarmId("c2", "outlet_temp_hi")] is False  # stale
    # a BAD or missing sample keeps the state
    snapshot[PointRef("c1-skid", "outlet_temp")] = Sample.bad(Reason.SENSOR_FAULT, AT)
    assert evaluate(hi, snapshot, 100.0)[AlarmId("c1", "outlet_temp_hi")] is True
    del snapshot[PointRef("c1-skid", "outlet_temp")]
    assert evaluate(hi, snapshot, 200.0)[AlarmId("c1", "outlet_temp_hi")] is True


def test_evaluate_discrete_and_deviation() -> None:
    instances = demo_instances()
    leak = instances[AlarmId("c3", "leak")]
    deviation = instances[AlarmId("c1", "pump_speed_deviation")]
    snapshot = {
        PointRef("c3-skid", "leak"): good(True),
        PointRef("c1-skid", "pump_speed_feedback"): good(30.0),
        PointRef("c1-skid", "pump_speed_cmd"): good(50.0),
    }
    assert evaluate([leak, deviation], snapshot, 0.0) == {
        AlarmId("c3", "leak"): True,
        AlarmId("c1", "pump_speed_deviation"): False,  # on_delay 30 s
    }
    assert evaluate([deviation], snapshot, 30.0) == {AlarmId("c1", "pump_speed_deviation"): True}
    # the setpoint's sample counts too: without it the state is kept
    snapshot[PointRef("c1-skid", "pump_speed_cmd")] = Sample.bad(Reason.COMM_LOST, AT)
    snapshot[PointRef("c1-skid", "pump_speed_feedback")] = good(50.0)
    assert evaluate([deviation], snapshot, 100.0) == {AlarmId("c1", "pump_speed_deviation"): True}


def test_suppression_by_design() -> None:
    instances = list(demo_instances().values())
    assert suppressed(instances, "heat", ()) == {}
    assert suppressed(instances, "reject", ()) == {
        AlarmId("plant", "low_heat_delivery"): "plant mode reject"
    }
    assert set(suppressed(instances, "shed", ())) == {AlarmId("plant", "low_heat_delivery")}
    in_lockout = suppressed(instances, None, {"c2"})
    assert in_lockout[AlarmId("c2", "outlet_temp_hi")] == "c2 in maintenance lockout"
    assert AlarmId("c2", "leak") not in in_lockout  # a leak matters in maintenance too
    assert {a.source for a in in_lockout} == {"c2"}
    safe = suppressed(instances, "safe", ())
    assert set(safe) == {AlarmId(c, "pump_speed_deviation") for c in ("c1", "c2", "c3")}


# ---------------------------------------------------------------- the controller's own names


def test_a_site_alarm_cannot_take_the_name_of_a_controller_alarm(tmp_path: Path) -> None:
    site = with_alarms(tmp_path, FLOW_LO.format(limit="11 L/min", deadband="1 L/min"))
    site.write_text(site.read_text().replace("name: flow_lo", "name: skid_comm_lost"))
    issue = only_issue(site)
    assert issue.line == line_of(site, "name: skid_comm_lost")
    assert "the controller raises itself" in issue.message


def test_every_controller_alarm_name_is_reserved_from_site_files() -> None:
    """The site-file rule and the controller's alarms are kept in step: a new system or sensor
    alarm whose name the rule does not reserve fails here."""
    site = load_site(SITES / "demo.yaml")
    names = {d.id.name for d in SystemAlarms(site).definitions}
    names |= {d.id.name for d in SensorChecks(site).definitions}
    assert names  # the demo site has both kinds
    assert [n for n in sorted(names) if not is_controller_alarm_name(n)] == []
    assert not any(is_controller_alarm_name(alarm.name) for alarm in demo_instances())

"""Configuration layer: quantities, the bundled maps and sites, and the error of each bad-file kind.

Bad files are the bundled ones copied to tmp_path and edited, so the tests follow the real files.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from controller.cli.check_config import check_config
from controller.config.loader import (
    ConfigError,
    ConfigIssue,
    LoadedSite,
    check_files,
    load_file,
    load_map,
    load_site,
)
from controller.config.maps import DataType, ModbusMap, OpcUaMap
from controller.config.roles import CAISSON_SKID, COMPUTE_MANAGER, HEAT_METER, PLANT_SKID
from controller.config.site import ModbusDevice
from controller.config.units import Dimension, parse_quantity

REPO = Path(__file__).resolve().parents[2]
SITES = sorted((REPO / "sites").glob("*.yaml"))
MAPS = sorted((REPO / "plc_maps").glob("*.yaml"))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of sites/ and plc_maps/ to break."""
    shutil.copytree(REPO / "sites", tmp_path / "sites")
    shutil.copytree(REPO / "plc_maps", tmp_path / "plc_maps")
    return tmp_path


def edit(path: Path, old: str, new: str, after: str = "") -> int:
    """Replace the first `old` that follows `after` by `new`; return the line where `old` began."""
    text = path.read_text(encoding="utf-8")
    assert after in text, f"{after!r} is no longer in {path.name}"
    start = text.find(old, text.index(after))
    assert start >= 0, f"{old!r} is no longer in {path.name} after {after!r}"
    path.write_text(text[:start] + new + text[start + len(old) :], encoding="utf-8")
    return text.count("\n", 0, start) + 1


def line_of(path: Path, fragment: str, after: str = "") -> int:
    text = path.read_text(encoding="utf-8")
    return text.count("\n", 0, text.index(fragment, text.index(after))) + 1


def only_issue(path: Path) -> ConfigIssue:
    issues = check_files([path])
    assert len(issues) == 1, "\n".join(str(issue) for issue in issues)
    return issues[0]


def cli(*files: Path) -> tuple[int, str, str]:
    app = typer.Typer()
    app.command()(check_config)
    result = CliRunner().invoke(app, [str(f) for f in files])
    return result.exit_code, result.stdout, result.stderr


# ---------------------------------------------------------------- quantities


@pytest.mark.parametrize(
    ("text", "dimension", "si"),
    [
        ("20 kW", Dimension.POWER, 20e3),
        ("20kW", Dimension.POWER, 20e3),
        ("1e3 W", Dimension.POWER, 1e3),
        ("160 kWh", Dimension.ENERGY, 160 * 3.6e6),
        ("65 degC", Dimension.TEMPERATURE, 65.0),
        ("-10 °C", Dimension.TEMPERATURE, -10.0),
        ("10 K", Dimension.TEMPERATURE_DIFFERENCE, 10.0),
        ("312 m2", Dimension.AREA, 312.0),
        ("500 L", Dimension.VOLUME, 0.5),
        ("28.7 L/min", Dimension.VOLUME_FLOW, 28.7e-3 / 60),
        ("3.6 m3/h", Dimension.VOLUME_FLOW, 1e-3),
        ("50 ms", Dimension.DURATION, 0.05),
        ("2 min", Dimension.DURATION, 120.0),
        ("1.5 bar", Dimension.PRESSURE, 1.5e5),
        ("26 mm", Dimension.LENGTH, 0.026),
        ("150 kJ/K", Dimension.HEAT_CAPACITY, 150e3),
        ("0.05 K/W", Dimension.THERMAL_RESISTANCE, 0.05),
        ("4 W/K", Dimension.THERMAL_CONDUCTANCE, 4.0),
        ("30 %", Dimension.FRACTION, 0.3),
        ("0.94", Dimension.FRACTION, 0.94),
        (0.94, Dimension.FRACTION, 0.94),
        (1, Dimension.FRACTION, 1.0),
    ],
)
def test_parse_quantity_converts_to_si(text: object, dimension: Dimension, si: float) -> None:
    assert math.isclose(parse_quantity(text, dimension), si)


@pytest.mark.parametrize(
    ("text", "dimension", "complaint"),
    [
        (20, Dimension.POWER, "got the bare number 20: the unit is missing"),
        ("20", Dimension.POWER, "got '20': the unit is missing"),
        ("20 kg", Dimension.POWER, "got unit 'kg' in '20 kg'"),
        ("20 kw", Dimension.POWER, "got unit 'kw'"),
        ("65 degC", Dimension.POWER, "got unit 'degC'"),
        ("kW", Dimension.POWER, "got 'kW'"),
        (True, Dimension.POWER, "got True"),
        (None, Dimension.DURATION, "got None"),
        ("1.5", Dimension.FRACTION, "the unit is missing"),
        (2, Dimension.FRACTION, "the unit is missing"),
    ],
)
def test_parse_quantity_rejects(text: object, dimension: Dimension, complaint: str) -> None:
    with pytest.raises(ValueError, match=f"expected a {dimension} like") as error:
        parse_quantity(text, dimension)
    assert complaint in str(error.value)


# ---------------------------------------------------------------- the bundled files


def test_bundled_files_are_valid() -> None:
    assert len(SITES) >= 3
    assert {p.stem for p in MAPS} == {"caisson_skid", "compute_manager", "heat_meter", "plant_skid"}
    assert check_files(SITES + MAPS) == []


@pytest.mark.parametrize("path", SITES, ids=lambda p: p.stem)
def test_bundled_site_loads_with_its_maps(path: Path) -> None:
    site = load_site(path)
    assert site.path == path
    assert set(site.maps) == {"caisson_skid", "compute_manager", "heat_meter", "plant_skid"}
    for caisson in site.config.caissons:
        assert {p.id for p in site.device_map(caisson.skid).points} >= set(CAISSON_SKID.points)
        assert {p.id for p in site.device_map(caisson.compute).points} >= set(
            COMPUTE_MANAGER.points
        )
    assert site.device_map(site.config.plant.skid).device_type == "plant-skid"
    assert site.device_map(site.config.plant.heat_meter).device_type == "heat-meter"


def test_site_quantities_are_in_si() -> None:
    site = load_site(REPO / "sites" / "pool.yaml").config
    assert site.caisson_types["pool-box"].it_power == 7500.0
    assert site.loads.pool is not None
    assert site.loads.pool.basin_volume == 500.0
    assert site.loads.pool.evaporation_loss == 50e3
    meter = site.device("heat-meter")
    assert isinstance(meter, ModbusDevice)
    assert (meter.request_gap, meter.timeout) == (0.05, 1.0)


def test_load_file_tells_sites_from_maps() -> None:
    assert isinstance(load_file(REPO / "sites" / "demo.yaml"), LoadedSite)
    assert isinstance(load_file(REPO / "plc_maps" / "heat_meter.yaml"), ModbusMap)
    assert isinstance(load_file(REPO / "plc_maps" / "compute_manager.yaml"), OpcUaMap)


def test_caisson_skid_status_words_share_their_register_with_their_bits() -> None:
    skid = load_map(REPO / "plc_maps" / "caisson_skid.yaml")
    assert isinstance(skid, ModbusMap)
    word, running = skid.point("pump_status"), skid.point("pump_running")
    assert (word.table, word.address) == (running.table, running.address)
    assert (word.type, running.type, running.bit) == (DataType.UINT16, DataType.BIT, 0)
    assert skid.point("pump_fault").bit == 3
    assert skid.point("interlocks").address == skid.point("local_safe").address
    assert skid.point("inlet_temp").invalid == [32767, -32768]


def test_one_based_maps_put_register_1_at_wire_offset_0() -> None:
    for name, point_id in (("plant_skid", "tank_temp_top"), ("heat_meter", "flow")):
        device_map = load_map(REPO / "plc_maps" / f"{name}.yaml")
        assert isinstance(device_map, ModbusMap)
        assert device_map.wire_address(device_map.point(point_id)) == 0


def test_roles_are_provided_by_the_bundled_maps() -> None:
    for role, name in (
        (CAISSON_SKID, "caisson_skid"),
        (COMPUTE_MANAGER, "compute_manager"),
        (HEAT_METER, "heat_meter"),
        (PLANT_SKID, "plant_skid"),
    ):
        device_map = load_map(REPO / "plc_maps" / f"{name}.yaml")
        assert device_map.protocol == role.protocol
        assert set(role.points) <= {point.id for point in device_map.points}
        for point_id in role.writes:
            assert device_map.point(point_id).writable, point_id


# ---------------------------------------------------------------- bad files, one kind each


def test_unknown_key_in_a_site(tree: Path) -> None:
    site = tree / "sites" / "demo.yaml"
    line = edit(site, "heat_capture: 0.94", "heat_captur: 0.94")
    issue = only_issue(site)
    assert (issue.path, issue.line) == (site, line)
    assert issue.field == "caisson_types.cabinet-20kw.heat_captur"
    assert issue.message == "unknown key 'heat_captur': did you mean 'heat_capture'?"


def test_unknown_key_in_a_map(tree: Path) -> None:
    meter = tree / "plc_maps" / "heat_meter.yaml"
    line = edit(meter, "scale:", "scael:", after="id: volume")
    issue = only_issue(meter)
    assert (issue.path, issue.line, issue.field) == (meter, line, "points[5].scael")
    assert "did you mean 'scale'?" in issue.message


def test_unknown_key_lists_the_allowed_keys_when_nothing_is_close(tree: Path) -> None:
    site = tree / "sites" / "demo.yaml"
    line = edit(site, "  heat_exchanger:", "  colour: red\n  heat_exchanger:")
    issue = only_issue(site)
    assert (issue.line, issue.field) == (line, "plant.colour")
    assert "allowed here: skid, heat_meter, room_temperature, buffer_tank" in issue.message


def test_wrong_type(tree: Path) -> None:
    site = tree / "sites" / "demo.yaml"
    line = edit(site, "port: 15020", "port: fifteen")
    issue = only_issue(site)
    assert (issue.path, issue.line, issue.field) == (site, line, "devices[0].port")
    assert issue.message.startswith("input should be a valid integer")
    assert issue.message.endswith("got 'fifteen'")


def test_wrong_unit(tree: Path) -> None:
    site = tree / "sites" / "demo.yaml"
    line = edit(site, "it_power: 20 kW", "it_power: 20 kg")
    issue = only_issue(site)
    assert (issue.line, issue.field) == (line, "caisson_types.cabinet-20kw.it_power")
    assert "expected a power like '20 kW'" in issue.message
    assert "got unit 'kg' in '20 kg'" in issue.message


def test_missing_unit(tree: Path) -> None:
    site = tree / "sites" / "demo.yaml"
    line = edit(site, "it_power: 20 kW", "it_power: 20")
    issue = only_issue(site)
    assert (issue.line, issue.field) == (line, "caisson_types.cabinet-20kw.it_power")
    assert "got the bare number 20: the unit is missing" in issue.message


def test_missing_key_is_reported_at_its_parent(tree: Path) -> None:
    site = tree / "sites" / "demo.yaml"
    edit(site, "  heat_exchanger: {approach: 3 K, max_power: 150 kW}\n", "")
    issue = only_issue(site)
    assert (issue.line, issue.field) == (line_of(site, "plant:"), "plant.heat_exchanger")
    assert issue.message == "required key is missing"


def test_overlapping_registers(tree: Path) -> None:
    skid = tree / "plc_maps" / "caisson_skid.yaml"
    edit(skid, "address: 1\n", "address: 0\n", after="id: outlet_temp")
    issue = only_issue(skid)
    assert (issue.line, issue.field) == (line_of(skid, "- id: outlet_temp"), "points[1]")
    assert "point 'outlet_temp' (address 0) overlaps point 'inlet_temp'" in issue.message


def test_two_flags_on_the_same_bit_overlap(tree: Path) -> None:
    skid = tree / "plc_maps" / "caisson_skid.yaml"
    edit(skid, "bit: 3", "bit: 0", after="id: pump_fault")
    issue = only_issue(skid)
    assert issue.line == line_of(skid, "- id: pump_fault")
    assert "'pump_fault' (address 8) overlaps point 'pump_running'" in issue.message


def test_invalid_sentinel_outside_the_type(tree: Path) -> None:
    skid = tree / "plc_maps" / "caisson_skid.yaml"
    line = edit(skid, "invalid: [32767, -32768]", "invalid: [0x7FFF, 0x8000]")
    issue = only_issue(skid)
    assert (issue.line, issue.field) == (line, "points[0].invalid[1]")
    assert "invalid sentinel 32768 is outside the int16 range -32768..32767" in issue.message


def test_writable_point_without_limits(tree: Path) -> None:
    skid = tree / "plc_maps" / "caisson_skid.yaml"
    edit(skid, "    limits: {min: 0, max: 100}\n", "", after="id: pump_speed_cmd")
    issue = only_issue(skid)
    assert issue.line == line_of(skid, "access: rw", after="id: pump_speed_cmd")
    assert issue.field.endswith(".access")
    assert "writable point 'pump_speed_cmd' has no limits" in issue.message


def test_expected_range_must_be_ordered(tree: Path) -> None:
    skid = tree / "plc_maps" / "caisson_skid.yaml"
    line = edit(
        skid, "expect: {min: 10, max: 80}", "expect: {min: 80, max: 10}", after="outlet_temp"
    )
    issue = only_issue(skid)
    assert (issue.line, issue.field) == (line, "points[1].expect.min")
    assert "min (80.0) must be below max (10.0)" in issue.message


def test_expected_range_is_for_numbers_only(tree: Path) -> None:
    skid = tree / "plc_maps" / "caisson_skid.yaml"
    edit(
        skid,
        "    unit: bool\n",
        "    unit: bool\n    expect: {min: 0, max: 1}\n",
        after="id: leak\n",
    )
    issue = only_issue(skid)
    assert issue.line == line_of(skid, "expect: {min: 0, max: 1}", after="id: leak\n")
    assert issue.field.endswith(".expect")
    assert "point 'leak' is not a number: expect applies to numeric points only" in issue.message


def test_every_bundled_measurement_has_an_expected_range() -> None:
    """Commissioning judges what the bundled maps say a healthy plant shows: each numeric point
    that is not a raw word (status, interlocks, heartbeat) carries its range."""
    words = {"pump_status", "interlocks", "backup_status", "heartbeat", "caisson_status"}
    for path in MAPS:
        device_map = load_map(path)
        for point in device_map.points:
            if point.type.is_numeric and point.id not in words:
                assert point.expect is not None, f"{path.name}: {point.id}"


def test_lease_point_without_timeout(tree: Path) -> None:
    skid = tree / "plc_maps" / "caisson_skid.yaml"
    edit(skid, "    lease_timeout: 10 s\n", "", after="id: it_cap_cmd")
    issue = only_issue(skid)
    assert issue.line == line_of(skid, "lease: true", after="id: it_cap_cmd")
    assert "lease point 'it_cap_cmd' has no lease_timeout" in issue.message


def test_duplicate_modbus_address(tree: Path) -> None:
    site = tree / "sites" / "demo.yaml"
    line = edit(site, "port: 15021", "port: 15020")
    issue = only_issue(site)
    assert (issue.line, issue.field) == (line, "devices[1]")
    assert issue.message == (
        f"devices 'c2-skid' and 'c1-skid' (line {line - 1}) both use 127.0.0.1:15020 unit 1: "
        "change the port or the unit_id"
    )


def test_same_port_with_another_unit_id_is_fine(tree: Path) -> None:
    site = tree / "sites" / "demo.yaml"
    edit(site, "port: 15021, unit_id: 1", "port: 15020, unit_id: 3")
    assert check_files([site]) == []


def test_duplicate_opcua_endpoint(tree: Path) -> None:
    site = tree / "sites" / "demo.yaml"
    line = edit(site, "opc.tcp://127.0.0.1:14842", "opc.tcp://127.0.0.1:14841/")
    issue = only_issue(site)
    assert (issue.line, issue.field) == (line, "devices[6].endpoint")
    assert "devices 'c2-compute' and 'c1-compute'" in issue.message


def test_unknown_map(tree: Path) -> None:
    site = tree / "sites" / "demo.yaml"
    line = edit(site, "map: caisson_skid", "map: caisson_skd", after="id: c2-skid")
    issue = only_issue(site)
    assert (issue.path, issue.line, issue.field) == (site, line, "devices[1].map")
    assert issue.message.startswith("unknown map 'caisson_skd': there is no ")
    assert "(maps there: caisson_skid, compute_manager, heat_meter, plant_skid)" in issue.message


def test_device_protocol_must_match_its_map(tree: Path) -> None:
    site = tree / "sites" / "demo.yaml"
    line = edit(site, "map: compute_manager", "map: heat_meter", after="id: c3-compute")
    issue = only_issue(site)
    assert (issue.line, issue.field) == (line, "devices[7].protocol")
    assert (
        issue.message == "device 'c3-compute' has protocol opcua but its map 'heat_meter' is modbus"
    )


def test_unknown_point_needed_by_a_role(tree: Path) -> None:
    edit(tree / "plc_maps" / "caisson_skid.yaml", "id: outlet_temp", "id: outlet_temperature")
    site = tree / "sites" / "demo.yaml"
    issues = check_files([site])
    assert [i.field for i in issues] == ["caissons[0].skid", "caissons[1].skid", "caissons[2].skid"]
    assert (issues[0].path, issues[0].line) == (site, line_of(site, "skid: c1-skid"))
    assert issues[0].message == (
        "map 'caisson_skid' of device 'c1-skid' lacks point 'outlet_temp' needed by a caisson skid"
    )


def test_role_point_the_controller_writes_must_be_writable(tree: Path) -> None:
    edit(
        tree / "plc_maps" / "compute_manager.yaml",
        "    access: rw\n    idempotent: true\n    limits: {min: 0, max: 25}\n"
        "    lease: true\n    lease_timeout: 10 s\n",
        "",
        after="id: power_cap",
    )
    issues = check_files([tree / "sites" / "demo.yaml"])
    assert [i.field for i in issues] == [f"caissons[{i}].compute" for i in range(3)]
    assert "has point 'power_cap' read-only" in issues[0].message


def test_unknown_device_reference(tree: Path) -> None:
    site = tree / "sites" / "demo.yaml"
    line = edit(site, "skid: c2-skid", "skid: c9-skid")
    issue = only_issue(site)
    assert str(issue) == (
        f"{site}:{line}: caissons[1].skid: unknown device 'c9-skid'; "
        "modbus devices: c1-skid, c2-skid, c3-skid, plant-skid, heat-meter"
    )


def test_device_of_the_wrong_protocol_for_its_role(tree: Path) -> None:
    site = tree / "sites" / "demo.yaml"
    line = edit(site, "heat_meter: heat-meter", "heat_meter: c1-compute")
    issue = only_issue(site)
    assert (issue.line, issue.field) == (line, "plant.heat_meter")
    assert issue.message == (
        "device 'c1-compute' has protocol opcua, but a heat meter needs protocol modbus"
    )


def test_device_used_by_two_roles(tree: Path) -> None:
    site = tree / "sites" / "demo.yaml"
    line = edit(site, "skid: c2-skid", "skid: c1-skid")
    issue = only_issue(site)
    assert (issue.line, issue.field) == (line, "caissons[1].skid")
    first = line_of(site, "skid: c1-skid")
    assert f"already used as caissons[0].skid (line {first})" in issue.message


def test_unknown_caisson_type(tree: Path) -> None:
    site = tree / "sites" / "demo.yaml"
    line = edit(site, "type: cabinet-20kw", "type: cabinet-30kw", after="id: c3\n")
    issue = only_issue(site)
    assert (issue.line, issue.field) == (line, "caissons[2].type")
    assert issue.message == (
        "unknown caisson type 'cabinet-30kw'; caisson_types defines: cabinet-20kw"
    )


def test_duplicate_ids(tree: Path) -> None:
    site = tree / "sites" / "demo.yaml"
    copy = "  - {id: c1-skid, protocol: modbus, map: caisson_skid, host: 127.0.0.1, port: 15029}\n"
    device_line = edit(site, "  - {id: plant-skid", copy + "  - {id: plant-skid")
    caisson_line = edit(site, "- id: c3\n", "- id: c2\n")
    issues = check_files([site])
    assert [(i.line, i.field) for i in issues] == [
        (device_line, "devices[3].id"),
        (caisson_line, "caissons[2].id"),
    ]
    assert issues[0].message == (
        f"duplicate device id 'c1-skid' (first at line {line_of(site, 'id: c1-skid')})"
    )
    first = line_of(site, "- id: c2\n")
    assert issues[1].message == f"duplicate caisson id 'c2' (first at line {first})"


def test_yaml_syntax_error(tree: Path) -> None:
    site = tree / "sites" / "demo.yaml"
    line = edit(site, "  kind: residential", "  kind: residential: yes")
    issue = only_issue(site)
    assert (issue.path, issue.line, issue.field) == (site, line, "")
    assert issue.message == "invalid YAML: mapping values are not allowed here"


def test_duplicate_yaml_key(tree: Path) -> None:
    site = tree / "sites" / "demo.yaml"
    line = edit(site, "climate:", "setpoints: {outlet: 62 degC}\nclimate:")
    issue = only_issue(site)
    assert issue.line == line_of(site, "setpoints:", after="climate:")
    assert issue.line > line
    assert 'invalid YAML: found duplicate key "setpoints"' in issue.message


def test_map_errors_are_reported_in_the_map_file(tree: Path) -> None:
    skid = tree / "plc_maps" / "caisson_skid.yaml"
    line = edit(skid, "type: float32", "type: float33")
    site = tree / "sites" / "demo.yaml"
    with pytest.raises(ConfigError) as error:
        load_site(site)
    assert [(i.path, i.line, i.field) for i in error.value.issues] == [
        (skid, line, "points[5].type")
    ]
    assert check_files([site, skid]) == error.value.issues  # reported once


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yaml"
    assert [str(i) for i in check_files([path])] == [
        f"{path}:0: cannot read the file: No such file or directory"
    ]


def test_neither_site_nor_map(tmp_path: Path) -> None:
    path = tmp_path / "other.yaml"
    path.write_text("name: x\n", encoding="utf-8")
    assert "neither a site" in only_issue(path).message


def test_load_functions_raise_config_error_with_all_issues(tree: Path) -> None:
    site = tree / "sites" / "demo.yaml"
    edit(site, "it_power: 20 kW", "it_power: 20")
    edit(site, "port: 15020", "port: 0")
    with pytest.raises(ConfigError) as error:
        load_site(site)
    assert [i.field for i in error.value.issues] == [
        "devices[0].port",
        "caisson_types.cabinet-20kw.it_power",
    ]
    assert str(error.value).count("\n") == 1


# ---------------------------------------------------------------- the command


def test_check_config_confirms_valid_files() -> None:
    code, out, err = cli(REPO / "sites" / "demo.yaml", REPO / "plc_maps" / "heat_meter.yaml")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"ok {REPO / 'sites' / 'demo.yaml'} (site residential, 8 devices, 3 caissons)",
        f"ok {REPO / 'plc_maps' / 'heat_meter.yaml'} (modbus map heat-meter, 6 points)",
    ]


def test_check_config_prints_issues_and_exits_2(tree: Path) -> None:
    site = tree / "sites" / "demo.yaml"
    line = edit(site, "it_power: 20 kW", "it_power: 20 kg")
    code, out, err = cli(site, tree / "plc_maps" / "caisson_skid.yaml")
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        f"{site}:{line}: caisson_types.cabinet-20kw.it_power: expected a power like '20 kW' "
        "(units: W, kW, MW), got unit 'kg' in '20 kg'"
    ]
    assert "Traceback" not in err


def test_boilerctl_check_config_on_the_bundled_files() -> None:
    boilerctl = Path(sys.executable).parent / "boilerctl"
    files = [str(p.relative_to(REPO)) for p in SITES + MAPS]
    result = subprocess.run(
        [str(boilerctl), "check-config", *files],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert "ok sites/demo.yaml (site residential, 8 devices, 3 caissons)" in result.stdout


def test_a_caisson_heat_meter_must_be_a_heat_meter(tree: Path) -> None:
    site = tree / "sites" / "demo.yaml"
    line = (
        edit(
            site,
            "    compute: c1-compute\n",
            "    compute: c1-compute\n    heat_meter: plant-skid\n",
        )
        + 1
    )
    issues = check_files([site])
    assert (issues[0].line, issues[0].field) == (line, "caissons[0].heat_meter")
    assert "lacks points 'flow', 'power'" in issues[0].message
    assert issues[0].message.endswith("needed by a heat meter")

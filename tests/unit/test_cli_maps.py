"""`boilerctl maps show|validate` on the bundled maps and sites, and on broken copies of them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from controller.cli import maps
from controller.config.loader import load_map

REPO = Path(__file__).resolve().parents[2]
SKID_MAP = REPO / "plc_maps" / "caisson_skid.yaml"
DEMO = REPO / "sites" / "demo.yaml"


def maps_app() -> typer.Typer:
    """The commands as app.py registers them: `maps show` and `maps validate`."""
    app = typer.Typer()
    group = typer.Typer()
    app.add_typer(group, name="maps")
    group.command("show")(maps.show)
    group.command("validate")(maps.validate)
    return app


def run(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(maps_app(), [str(arg) for arg in args])
    return result.exit_code, result.stdout, result.stderr


def point_ids(path: Path) -> list[str]:
    return [point.id for point in load_map(path).points]


def table_rows(out: str, header_lines: int) -> list[str]:
    """The table's body rows: after the header lines and the table's heading and rule."""
    return out.splitlines()[header_lines + 2 :]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of sites/ and plc_maps/ to break."""
    shutil.copytree(REPO / "sites", tmp_path / "sites")
    shutil.copytree(REPO / "plc_maps", tmp_path / "plc_maps")
    return tmp_path


def edit(path: Path, old: str, new: str) -> int:
    """Replace the first `old` by `new`; return the line where it was."""
    text = path.read_text(encoding="utf-8")
    start = text.index(old)
    path.write_text(text[:start] + new + text[start + len(old) :], encoding="utf-8")
    return text.count("\n", 0, start) + 1


def line_of(path: Path, fragment: str) -> int:
    text = path.read_text(encoding="utf-8")
    return text.count("\n", 0, text.index(fragment)) + 1


# ---------------------------------------------------------------- show


def test_show_prints_every_point_of_a_map_one_row_each() -> None:
    code, out, err = run("maps", "show", SKID_MAP)
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == (
        f"map {SKID_MAP}: modbus caisson-skid (Caisson hydraulic skid and safety PLC), "
        f"zero-based addresses, byte order ABCD, {len(point_ids(SKID_MAP))} points"
    )
    rows = table_rows(out, header_lines=1)
    # off a terminal the table is as wide as its content: one line per point, none wrapped
    assert [row.split()[0] for row in rows] == point_ids(SKID_MAP)
    pump_speed_cmd = next(row for row in rows if row.startswith("pump_speed_cmd "))
    cells = [cell.strip() for cell in pump_speed_cmd.split("│")]
    assert cells[2:] == [
        "holding",
        "0",
        "uint16",
        "0.1",
        "%",
        "rw",
        "0 .. 100",
        "0 .. 100",
        "yes (10 s)",
    ]
    pump_fault = next(row for row in rows if row.startswith("pump_fault "))
    assert [cell.strip() for cell in pump_fault.split("│")][2:5] == ["input", "8", "bit 3"]


def test_show_json_has_every_point_with_every_key() -> None:
    code, out, err = run("maps", "show", SKID_MAP, "--json")
    assert (code, err) == (0, "")
    document = json.loads(out)
    assert (document["file"], document["device"]) == (str(SKID_MAP), None)
    assert [point["id"] for point in document["map"]["points"]] == point_ids(SKID_MAP)
    assert document["map"]["addressing"] == "zero-based"
    heartbeat = next(p for p in document["map"]["points"] if p["id"] == "heartbeat")
    assert heartbeat["limits"] == {"min": 0.0, "max": 65535.0}
    assert heartbeat["poll"] == "fast"  # defaults filled in: stable keys


def test_show_a_modbus_device_of_a_site() -> None:
    code, out, err = run("maps", "show", "heat-meter", "--site", DEMO)
    assert (code, err) == (0, "")
    heat_meter = REPO / "plc_maps" / "heat_meter.yaml"
    assert out.splitlines()[:2] == [
        f"device heat-meter of {DEMO}: modbus 127.0.0.1:15031 unit 2",
        f"map {heat_meter}: modbus heat-meter (Heat meter (MULTICAL-like) on the delivery to the "
        "building), one-based addresses, byte order CDAB, 6 points",
    ]
    assert [row.split()[0] for row in table_rows(out, header_lines=2)] == point_ids(heat_meter)


def test_show_an_opcua_device_of_a_site_as_json() -> None:
    code, out, err = run("maps", "show", "c1-compute", "--site", DEMO)
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == f"device c1-compute of {DEMO}: opcua opc.tcp://127.0.0.1:14841"
    compute = REPO / "plc_maps" / "compute_manager.yaml"
    rows = table_rows(out, header_lines=2)
    assert [row.split()[0] for row in rows] == point_ids(compute)
    assert "ComputeManager/PowerCap" in next(row for row in rows if row.startswith("power_cap "))

    code, out, err = run("maps", "show", "c1-compute", "--site", DEMO, "--json")
    assert (code, err) == (0, "")
    document = json.loads(out)
    assert document["device"] == {
        "id": "c1-compute",
        "protocol": "opcua",
        "map": "compute_manager",
        "endpoint": "opc.tcp://127.0.0.1:14841",
    }
    assert document["file"] == str(compute)
    assert [point["id"] for point in document["map"]["points"]] == point_ids(compute)


def test_show_an_unknown_device_names_it_and_the_sites_devices() -> None:
    code, out, err = run("maps", "show", "c9-skid", "--site", DEMO)
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        f"maps show: no device 'c9-skid' in {DEMO}; its devices: c1-skid, c2-skid, c3-skid, "
        "plant-skid, heat-meter, c1-compute, c2-compute, c3-compute"
    ]


def test_show_an_unknown_file_names_it_and_the_maps_there() -> None:
    missing = REPO / "plc_maps" / "caisson.yaml"
    code, out, err = run("maps", "show", missing)
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        f"maps show: no file {missing}; YAML files in {REPO / 'plc_maps'}: caisson_skid.yaml, "
        "compute_manager.yaml, heat_meter.yaml, plant_skid.yaml"
    ]


def test_show_a_site_file_says_to_use_site() -> None:
    code, out, err = run("maps", "show", DEMO)
    assert (code, out) == (2, "")
    assert err.startswith(f"maps show: {DEMO} is a site file: give --site {DEMO} and one of")
    assert err.count("\n") == 1


def test_show_a_broken_map_prints_its_issues(tree: Path) -> None:
    broken = tree / "plc_maps" / "caisson_skid.yaml"
    line = edit(broken, "type: int16", "type: int17")
    code, out, err = run("maps", "show", broken)
    assert (code, out) == (2, "")
    assert err.startswith(f"{broken}:{line}: points[0].type: ")


# ---------------------------------------------------------------- validate


def test_validate_confirms_valid_maps_and_site() -> None:
    heat_meter = REPO / "plc_maps" / "heat_meter.yaml"
    code, out, err = run("maps", "validate", SKID_MAP, heat_meter, "--site", DEMO)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"ok {SKID_MAP} (modbus map caisson-skid, 31 points)",
        f"ok {heat_meter} (modbus map heat-meter, 6 points)",
        f"ok {DEMO} (site residential, 8 devices, 3 caissons)",
    ]


def test_validate_a_broken_map_names_file_and_line(tmp_path: Path) -> None:
    broken = tmp_path / "skid.yaml"
    shutil.copy(SKID_MAP, broken)
    line = edit(broken, "scale: 0.1", "scale: 0")
    code, out, err = run("maps", "validate", broken, REPO / "plc_maps" / "heat_meter.yaml")
    assert (code, out) == (2, "")
    assert err.splitlines() == [f"{broken}:{line}: points[0].scale: scale must not be zero"]


def test_validate_with_site_checks_the_roles_the_maps_serve(tree: Path) -> None:
    skid_map = tree / "plc_maps" / "caisson_skid.yaml"
    edit(skid_map, "id: heartbeat", "id: heart_beat")  # a valid map, but not a caisson skid's
    site = tree / "sites" / "demo.yaml"
    code, out, err = run("maps", "validate", skid_map)
    assert (code, err) == (0, "")
    assert out == f"ok {skid_map} (modbus map caisson-skid, 31 points)\n"

    code, out, err = run("maps", "validate", skid_map, "--site", site)
    assert (code, out) == (2, "")
    issues = err.splitlines()
    assert len(issues) == 3  # one per caisson
    assert issues[0] == (
        f"{site}:{line_of(site, 'skid: c1-skid')}: caissons[0].skid: map "
        "'caisson_skid' of device 'c1-skid' lacks point 'heartbeat' needed by a caisson skid"
    )


def test_validate_an_unknown_file_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "nothing.yaml"
    code, out, err = run("maps", "validate", missing, SKID_MAP)
    assert (code, out) == (2, "")
    assert err.splitlines() == [f"maps validate: no file {missing}; YAML files in {tmp_path}: none"]


# ---------------------------------------------------------------- as a process


def test_maps_show_in_a_process_off_a_terminal() -> None:
    """The command in its own process, stdout a pipe: rich must not wrap the table to 80 columns
    (nor to the tests' COLUMNS)."""
    program = (
        "import typer\n"
        "from controller.cli import maps\n"
        "app = typer.Typer()\n"
        "group = typer.Typer()\n"
        "app.add_typer(group, name='maps')\n"
        "group.command('show')(maps.show)\n"
        "group.command('validate')(maps.validate)\n"
        "app()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program, "maps", "show", "plc_maps/caisson_skid.yaml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "60"},
    )
    assert (result.returncode, result.stderr) == (0, "")
    rows = table_rows(result.stdout, header_lines=1)
    assert [row.split()[0] for row in rows] == point_ids(SKID_MAP)

"""`boilerctl dump-config`: the loaded site with defaults and SI units, secrets never shown."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from ruamel.yaml import YAML
from typer.testing import CliRunner

from controller.cli.dump_config import REDACTED, dump_config
from tests.plant_helpers import ROOT, SITES, site_copy

DEMO = SITES / "demo.yaml"
TOKEN = "tok-3f9a1c-never-printed"  # test secrets: must never be printed
PASSWORD = "pw-81d2e7-never-printed"


def run(*args: str | Path, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    app = typer.Typer()
    app.command()(dump_config)
    result = CliRunner().invoke(app, [str(arg) for arg in args], env=env)
    return result.exit_code, result.stdout, result.stderr


def with_v2_token(directory: Path) -> Path:
    return site_copy(
        directory,
        "historian:\n"
        "  target:\n"
        "    {api: v2, url: 'https://influx.example.net:8086', org: boilers, bucket: sites,\n"
        "     token: {env: DUMP_TEST_TOKEN}}\n",
    )


def with_v1_password_and_opcua_key(directory: Path) -> Path:
    (directory / "influx-password").write_text(PASSWORD + "\n")
    site = site_copy(
        directory,
        "historian:\n"
        "  target:\n"
        "    {api: v1, url: 'http://127.0.0.1:8086', database: boiler, username: boiler,\n"
        "     password: {file: influx-password}}\n",
    )
    text = site.read_text()
    plain = 'endpoint: "opc.tcp://127.0.0.1:14841"}'
    secure = (
        'endpoint: "opc.tcp://127.0.0.1:14841", security: {certificate: pki/own.der, '
        "private_key: pki/own-key.pem, server_certificate: pki/server.der}}"
    )
    assert plain in text
    site.write_text(text.replace(plain, secure))
    return site


def test_dump_shows_defaults_and_si_units() -> None:
    code, out, err = run("--site", DEMO)
    assert (code, err) == (0, "")
    assert out.startswith(f"# {DEMO}: the site configuration as the controller loads it")
    lines = out.splitlines()
    for expected in (
        "    it_power: 20000 W",  # 20 kW
        "      max_flow: 0.0006666666667 m3/s",  # 40 L/min
        "    heat_capture: 0.94",  # a fraction: a ratio
        "    request_gap: 0.05 s",  # 50 ms
        "    daily_energy: 576000000 J",  # 160 kWh
        "  period: 1 s",  # control: a default, the file has no control section
        "  spool_limit: 256000000 B",  # historian: a default
        "  c1-skid: " + str(ROOT / "plc_maps" / "caisson_skid.yaml"),  # the map file, by device
    ):
        assert expected in lines
    document = YAML(typ="safe").load(out)
    assert document["device_maps"]["c1-compute"] == str(ROOT / "plc_maps" / "compute_manager.yaml")
    assert document["caisson_types"]["cabinet-20kw"]["plc"]["overtemp_trip"] == "78 degC"
    assert not any(line.strip().startswith("points:") for line in lines)  # maps by file only


def test_dump_json_holds_si_numbers() -> None:
    code, out, err = run("--json", env={"BOILER_SITE": str(DEMO)})  # as the other commands
    assert (code, err) == (0, "")
    document = json.loads(out)
    assert (document["site_file"], document["units"]) == (str(DEMO), "SI")
    cabinet = document["config"]["caisson_types"]["cabinet-20kw"]
    assert cabinet["it_power"] == 20000.0
    assert cabinet["pump"]["max_flow"] == pytest.approx(40e-3 / 60)
    assert document["config"]["control"]["period"] == 1.0
    assert set(document["device_maps"]) == {d["id"] for d in document["config"]["devices"]}


def test_dump_shows_where_secrets_come_from_never_their_value(tmp_path: Path) -> None:
    code, out, err = run(
        "--site", with_v2_token(tmp_path), "--json", env={"DUMP_TEST_TOKEN": TOKEN}
    )
    assert (code, err) == (0, "")
    target = json.loads(out)["config"]["historian"]["target"]
    assert target["token"] == {"env": "DUMP_TEST_TOKEN", "file": None}
    assert TOKEN not in out


def test_dump_redacts_key_like_values_and_never_reads_secret_files(tmp_path: Path) -> None:
    site = with_v1_password_and_opcua_key(tmp_path)
    for as_json in ((), ("--json",)):
        code, out, err = run("--site", site, *as_json)
        assert (code, err) == (0, "")
        assert PASSWORD not in out
        assert "own-key.pem" not in out
    document: dict[str, Any] = json.loads(out)["config"]
    assert document["historian"]["target"]["password"] == {"env": None, "file": "influx-password"}
    assert document["historian"]["target"]["username"] == "boiler"
    security = document["devices"][5]["security"]
    assert security["private_key"] == REDACTED
    assert security["certificate"] == "pki/own.der"


def test_a_bad_site_prints_its_issues_and_exits_2(tmp_path: Path) -> None:
    site = site_copy(tmp_path, "control: {period: 1 kg}\n")
    line = site.read_text().count("\n")
    code, out, err = run("--site", site)
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        f"{site}:{line}: control.period: expected a duration like '10 s' "
        "(units: ms, s, min, h, d), got unit 'kg' in '1 kg'"
    ]


def test_dump_config_in_a_process_with_the_secrets_set(tmp_path: Path) -> None:
    """The command in its own process, the token in its environment: not in its output."""
    program = (
        "import typer\n"
        "from controller.cli.dump_config import dump_config\n"
        "app = typer.Typer()\n"
        "app.command()(dump_config)\n"
        "app()\n"
    )
    site = with_v2_token(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", program, "--site", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env=dict(os.environ, DUMP_TEST_TOKEN=TOKEN),
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert "    token:\n      env: DUMP_TEST_TOKEN\n      file: null\n" in result.stdout
    assert TOKEN not in result.stdout

"""`boilerctl sim run` as a user runs it: the installed console script."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from simulators.plant.kpis import PlantKpis
from simulators.scenario import load_scenario
from tests.plant_helpers import ROOT

BOILERCTL = Path(sys.executable).with_name("boilerctl")
SCENARIOS = sorted((ROOT / "simulators" / "scenarios").glob("*.yaml"))


def boilerctl(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BOILERCTL), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )


def on_a_terminal(*args: str, timeout: float = 300, columns: int = 100) -> tuple[int, str]:
    """Run boilerctl on a pseudo-terminal (stdout and stderr); return (exit code, screen text)."""
    leader, follower = pty.openpty()
    env = dict(os.environ, COLUMNS=str(columns), LINES="40", TERM="xterm")
    process = subprocess.Popen(
        [str(BOILERCTL), *args], stdout=follower, stderr=follower, cwd=ROOT, env=env
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    code = process.wait(timeout=timeout)
    text = b"".join(chunks).decode("utf-8", "replace")
    return code, re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)  # drop colour and cursor codes


HOURS = 30.0  # of each bundled scenario: every one's start, the days' longer than that cut


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.stem)
def test_sim_run_prints_the_kpis_of_each_bundled_scenario(scenario: Path) -> None:
    result = boilerctl("sim", "run", str(scenario), "--json", "--hours", str(HOURS))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    kpis = report["kpis"]
    assert (report["scenario"], report["controller"]) == (scenario.stem, "none")
    assert set(kpis) == {f.name for f in fields(PlantKpis)}
    expected_hours = min(load_scenario(scenario).scenario.duration / 3600, HOURS)
    assert kpis["duration_h"] == pytest.approx(expected_hours)
    assert kpis["it_energy_kwh"] > 0
    assert kpis["heat_delivered_kwh"] == pytest.approx(
        kpis["heat_reused_kwh"] + kpis["backup_heat_kwh"]
    )
    assert 0 < kpis["erf"] <= 1
    assert 1 < kpis["pue"] < 1.1


def test_sim_run_table_and_progress_bar_on_a_terminal() -> None:
    """A run of a few seconds shows a progress bar of simulated time, then the KPI table."""
    code, screen = on_a_terminal("sim", "run", "simulators/scenarios/pool-refill.yaml")
    assert code == 0, screen
    assert re.search(r"simulating .* \d+ / 48 h", screen)
    assert "pool-refill: Piscine municipale" in screen
    for label in ("ERF (energy reuse factor)", "unmet heat demand", "PLC interlock trips"):
        assert label in screen
    assert re.search(r"48 h simulated in [\d.]+ s", screen)


@pytest.mark.parametrize("controller", ["pi", "staged", "supervisor"])
def test_sim_run_with_a_controller_in_the_loop(controller: str) -> None:
    """A commissioning engineer's trial: the demo's summer day, two hours, each controller."""
    scenario = "simulators/scenarios/residential-summer-dhw-day.yaml"
    result = boilerctl("sim", "run", scenario, "--controller", controller, "--hours", "2", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    kpis = report["kpis"]
    assert report["controller"] == controller
    assert kpis["duration_h"] == pytest.approx(2.0)
    assert kpis["it_energy_kwh"] > 0
    assert set(kpis["caisson_run_share"]) == {"c1", "c2", "c3"}
    plcs_alone = boilerctl("sim", "run", scenario, "--hours", "2", "--json")
    # Remote control, not the PLCs' local safe settings: the caissons do not all run at their
    # 10 kW safe cap.
    assert json.loads(plcs_alone.stdout)["kpis"]["it_energy_kwh"] != pytest.approx(
        kpis["it_energy_kwh"], rel=0.01
    )


def test_sim_run_names_the_controllers_it_knows() -> None:
    result = boilerctl(
        "sim", "run", "simulators/scenarios/demo-winter-day.yaml", "--controller", "mpc"
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "sim run: no controller 'mpc': choose one of none, pi, staged, supervisor"
    )
    assert result.stdout == ""


def test_a_bad_scenario_is_one_line_per_problem_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\n"
        f"site: {ROOT / 'sites' / 'demo.yaml'}\n"
        "start: 2026-01-15T00:00:00+01:00\n"
        "duration: 2 h\n"
        "events:\n"
        "  - {at: 1 h, kind: pump_trip, caisson: c7}\n"
    )
    result = boilerctl("sim", "run", str(bad), "--fast")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"{bad}:6: events[0].caisson: unknown caisson 'c7': the site has c1, c2, c3"
    ]
    assert "Traceback" not in result.stderr


def test_a_missing_scenario_file(tmp_path: Path) -> None:
    result = boilerctl("sim", "run", str(tmp_path / "nope.yaml"), "--fast")
    assert result.returncode == 2
    assert result.stderr.startswith(f"{tmp_path / 'nope.yaml'}:0: cannot read the file")
    assert "Traceback" not in result.stderr

"""Scenario files: bad ones name file and line; weather from a CSV file is used as given."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from controller.config.loader import ConfigError
from simulators.plant.model import PlantModel
from simulators.run import ScenarioRun, build_drivers
from simulators.scenario import load_scenario
from tests.plant_helpers import ROOT

SCENARIOS = ROOT / "simulators" / "scenarios"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A copy of the bundled sites, maps and scenarios, laid out as in the repository."""
    for folder in ("sites", "plc_maps", "simulators/scenarios"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    return tmp_path


def edited(workdir: Path, name: str, old: str, new: str) -> Path:
    path = workdir / "simulators" / "scenarios" / f"{name}.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return path


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def only_issue(path: Path) -> tuple[int, str, str]:
    with pytest.raises(ConfigError) as caught:
        load_scenario(path)
    (issue,) = caught.value.issues
    assert issue.path == path
    return issue.line, issue.field, issue.message


def test_every_bundled_scenario_loads() -> None:
    names = sorted(p.stem for p in SCENARIOS.glob("*.yaml"))
    assert names == [
        "demo-faults",
        "demo-winter-day",
        "pool-refill",
        "pool-refill-week",
        "pool-winter-week",
        "residential-cold-snap",
        "residential-fault-day",
        "residential-low-compute-day",
        "residential-shoulder-warm-spell",
        "residential-summer-dhw-day",
        "residential-summer-dhw-week",
        "residential-winter-week",
        "warehouse-summer-week",
        "warehouse-winter-week",
    ]
    for path in SCENARIOS.glob("*.yaml"):
        loaded = load_scenario(path)
        assert loaded.scenario.steps > 0


def test_unknown_event_kind(workdir: Path) -> None:
    path = edited(workdir, "demo-faults", "kind: leak,", "kind: flood,")
    line, field, message = only_issue(path)
    assert line == line_of(path, "kind: flood")
    assert field == "events[1].kind"
    assert "unknown kind 'flood'" in message
    assert "'leak'" in message


def test_event_names_an_unknown_caisson(workdir: Path) -> None:
    path = edited(
        workdir, "demo-faults", "caisson: c2, duration: 30 min", "caisson: c9, duration: 30 min"
    )
    line, field, message = only_issue(path)
    assert line == line_of(path, "caisson: c9")
    assert field == "events[0].caisson"
    assert message == "unknown caisson 'c9': the site has c1, c2, c3"


def test_event_outside_the_run(workdir: Path) -> None:
    path = edited(workdir, "demo-faults", "at: 20 h", "at: 30 h")
    line, field, message = only_issue(path)
    assert line == line_of(path, "at: 30 h")
    assert field == "events[5].at"
    assert "outside the run" in message


def test_duration_with_a_wrong_unit(workdir: Path) -> None:
    path = edited(workdir, "demo-winter-day", "duration: 24 h", "duration: 24 kg")
    line, field, message = only_issue(path)
    assert (line, field) == (line_of(path, "duration: 24 kg"), "duration")
    assert "expected a duration like '10 s'" in message


def test_missing_site_file(workdir: Path) -> None:
    path = edited(workdir, "demo-winter-day", "sites/demo.yaml", "sites/nowhere.yaml")
    line, field, message = only_issue(path)
    assert (line, field) == (line_of(path, "site: "), "site")
    assert "no site file" in message


def test_drain_and_refill_needs_a_pool(workdir: Path) -> None:
    path = edited(workdir, "pool-refill", "sites/pool.yaml", "sites/demo.yaml")
    line, field, message = only_issue(path)
    assert (line, field) == (line_of(path, "drain_and_refill"), "events[0].kind")
    assert message == "drain_and_refill needs a site with a pool"


def test_a_broken_site_reports_against_the_site_file(workdir: Path) -> None:
    site = workdir / "sites" / "demo.yaml"
    site.write_text(site.read_text().replace("heat_capture: 0.94", "heat_capture: 94 kg"))
    with pytest.raises(ConfigError) as caught:
        load_scenario(workdir / "simulators" / "scenarios" / "demo-winter-day.yaml")
    (issue,) = caught.value.issues
    assert issue.path == site
    assert issue.line == line_of(site, "heat_capture: 94 kg")


def csv_scenario(workdir: Path, rows: list[str]) -> Path:
    (workdir / "simulators" / "scenarios" / "weather.csv").write_text("\n".join(rows) + "\n")
    return edited(
        workdir,
        "demo-winter-day",
        "weather: {kind: profile, seed: 1}",
        "weather: {kind: csv, file: weather.csv}",
    )


def run_for(path: Path) -> ScenarioRun:
    loaded = load_scenario(path)
    return ScenarioRun(loaded.scenario, loaded.site.config, loaded.path.parent)


def test_weather_from_a_csv_file_is_interpolated(workdir: Path) -> None:
    path = csv_scenario(
        workdir,
        [
            "timestamp,temperature",
            "2026-01-14T23:00:00+00:00,-4.0",  # the scenario starts at 2026-01-15T00:00+01:00
            "2026-01-15T11:00:00+00:00,8.0",
            "2026-01-16T00:00:00+01:00,-4.0",
        ],
    )
    outdoor = run_for(path).model.drivers.outdoor
    assert outdoor[0] == pytest.approx(-4.0)
    assert outdoor[6 * 3600] == pytest.approx(2.0)  # half-way to the 12:00 local peak
    assert outdoor[12 * 3600] == pytest.approx(8.0)
    assert np.all(np.diff(outdoor[: 12 * 3600]) > 0)


@pytest.mark.parametrize(
    ("rows", "bad_line", "message"),
    [
        (["2026-01-14T23:00:00,-4", "2026-01-16T00:00:00+00:00,1"], 1, "has no UTC offset"),
        (
            ["2026-01-14T23:00:00+00:00,-4", "2026-01-15T10:00:00+00:00,cold"],
            2,
            "expected 'timestamp,temperature'",
        ),
        (
            ["2026-01-14T23:00:00+00:00,-4", "2026-01-15T10:00:00+00:00,1"],
            1,
            "does not cover the scenario's period",
        ),
        (
            ["2026-01-15T10:00:00+00:00,1", "2026-01-14T10:00:00+00:00,1"],
            2,
            "timestamps must increase",
        ),
    ],
    ids=["no-offset", "not-a-number", "too-short", "not-increasing"],
)
def test_bad_weather_csv(workdir: Path, rows: list[str], bad_line: int, message: str) -> None:
    path = csv_scenario(workdir, rows)
    with pytest.raises(ConfigError) as caught:
        run_for(path)
    (issue,) = caught.value.issues
    assert issue.path.name == "weather.csv"
    assert issue.line == bad_line
    assert message in issue.message


def test_a_plant_fed_input_windows_runs_exactly_as_one_fed_the_whole_run() -> None:
    """What lets `sim serve` run open-ended: inputs built a window at a time change nothing."""
    loaded = load_scenario(SCENARIOS / "warehouse-summer-week.yaml")
    scenario = loaded.scenario.model_copy(update={"duration": 3 * 3600.0})
    site, base = loaded.site.config, loaded.path.parent
    whole = PlantModel(site, build_drivers(scenario, site, base), scenario.step)
    windowed = PlantModel(site, build_drivers(scenario, site, base, 0, 3600), scenario.step)
    for _ in range(scenario.steps):
        whole.step()
        if windowed.step_index >= windowed.drivers.end_step:
            windowed.feed(build_drivers(scenario, site, base, windowed.step_index, 3600))
        windowed.step()
    assert windowed.drivers.first_step == 2 * 3600
    np.testing.assert_array_equal(windowed.water, whole.water)
    np.testing.assert_array_equal(windowed.tank.temperature, whole.tank.temperature)
    assert windowed.totals == whole.totals


def test_feeding_a_window_that_misses_the_present_step_is_refused() -> None:
    loaded = load_scenario(SCENARIOS / "demo-winter-day.yaml")
    site, base = loaded.site.config, loaded.path.parent
    model = PlantModel(site, build_drivers(loaded.scenario, site, base, 0, 10), 1.0)
    with pytest.raises(ValueError, match="misses step 0"):
        model.feed(build_drivers(loaded.scenario, site, base, 100, 10))

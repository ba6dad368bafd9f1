"""The Grafana dashboards (grafana/generate.py → grafana/dashboards/*.json): the committed JSON is
what the generator makes, and its structure holds what operators and the provisioning rely on.
Their queries run on a real InfluxDB in tests/integration/test_grafana_queries.py."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from controller.config.loader import load_map
from controller.historian import schema
from controller.kpi import Kpis
from grafana.generate import DASHBOARDS_DIR, dashboards, render
from grafana.influxql import DashboardQuery, dashboard_queries
from tests.plant_helpers import ROOT

DATASOURCE = {"type": "influxdb", "uid": "boiler-influxdb"}
UIDS = {
    "boiler-plant-overview",
    "boiler-caisson-detail",
    "boiler-alarms-events",
    "boiler-energy-kpis",
    "boiler-controller-health",
}
ALARMS = "boiler-alarms-events"
# The panels that show a supply or outlet temperature against the 60-70 °C band.
BAND_PANELS = {
    "boiler-plant-overview": [
        "Supply temperature",
        "Supply temperature and the 60-70 °C band",
        "Caisson outlet temperature",
        "Caisson outlet temperatures",
    ],
    "boiler-caisson-detail": ["Outlet temperature", "Water temperatures"],
}

GENERATED = dashboards()
BOARDS = {document["uid"]: document for document in GENERATED.values()}


def panels(dashboard: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every panel, those inside rows too (the dashboards have no rows today: a row panel has
    no unit nor query, and would need excluding from the checks below)."""
    stack = list(dashboard.get("panels", []))
    while stack:
        panel = stack.pop(0)
        yield panel
        stack.extend(panel.get("panels", []))


def all_panels() -> Iterator[tuple[str, Mapping[str, Any]]]:
    for uid, dashboard in BOARDS.items():
        for panel in panels(dashboard):
            yield uid, panel


# ---------------------------------------------------------------------- freshness


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_the_committed_json_is_what_the_generator_makes(name: str) -> None:
    path = DASHBOARDS_DIR / name
    assert path.is_file(), f"{path} is missing: run .venv/bin/python grafana/generate.py"
    assert path.read_text(encoding="utf-8") == render(GENERATED[name]), (
        f"{path} differs from a fresh generation: run .venv/bin/python grafana/generate.py "
        "and commit the result"
    )


def test_every_committed_dashboard_is_generated() -> None:
    committed = {path.name for path in DASHBOARDS_DIR.glob("*.json")}
    assert committed == set(GENERATED), "remove the JSON files the generator no longer makes"


def test_the_generator_runs_as_a_script() -> None:
    result = subprocess.run(
        [sys.executable, "grafana/generate.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------------- structure


def test_five_dashboards_with_their_uids_and_file_names() -> None:
    assert set(BOARDS) == UIDS
    assert len(BOARDS) == len(GENERATED)  # no uid twice
    for name, document in GENERATED.items():
        assert name == document["uid"].removeprefix("boiler-") + ".json"
        assert document["title"]
        assert document["schemaVersion"] == 41  # the sdk's Grafana 11.6 flavour


@pytest.mark.parametrize("uid", sorted(UIDS))
def test_panel_ids_are_unique_and_panels_fit_the_grid(uid: str) -> None:
    ids = [panel["id"] for panel in panels(BOARDS[uid])]
    assert len(ids) == len(set(ids))
    for panel in panels(BOARDS[uid]):
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        assert grid["h"] > 0, panel["title"]


def test_every_panel_target_variable_and_annotation_uses_the_provisioned_datasource() -> None:
    for uid, dashboard in BOARDS.items():
        for panel in panels(dashboard):
            assert panel["datasource"] == DATASOURCE, (uid, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"] == DATASOURCE, (uid, panel["title"])
        for variable in dashboard["templating"]["list"]:
            if variable["type"] == "query":
                assert variable["datasource"] == DATASOURCE, (uid, variable["name"])
        for annotation in dashboard["annotations"]["list"]:
            assert annotation["datasource"] == DATASOURCE, (uid, annotation["name"])
            assert annotation["target"]["datasource"] == DATASOURCE


def test_every_panel_has_a_title_a_description_and_a_unit() -> None:
    for uid, panel in all_panels():
        assert panel["type"] != "row", "rows have no unit: exclude them here if you add some"
        assert panel.get("title", "").strip(), (uid, panel.get("id"))
        assert len(panel.get("description", "")) >= 40, (uid, panel["title"])
        assert panel["fieldConfig"]["defaults"].get("unit"), (uid, panel["title"])


def test_every_target_is_raw_influxql() -> None:
    for uid, panel in all_panels():
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert ref_ids, (uid, panel["title"])
        assert len(ref_ids) == len(set(ref_ids)), (uid, panel["title"])
        for target in panel["targets"]:
            assert target["rawQuery"] is True
            assert target["query"].strip().startswith("SELECT "), (uid, panel["title"])
            assert target["resultFormat"] in ("time_series", "table")


def test_every_query_is_for_the_chosen_site_and_the_time_range() -> None:
    for query in queries():
        if query.variable == "site":
            continue
        assert '"site" =~ /^$site$/' in query.query, query
        if query.variable is None:
            # Today's figures look back from now (kpi day points start at local midnight).
            assert "$timeFilter" in query.query or "now() - 25h" in query.query, query
            assert "$__interval" not in query.query or "GROUP BY time($__interval)" in query.query


@pytest.mark.parametrize(
    ("uid", "title"), [(uid, title) for uid, titles in BAND_PANELS.items() for title in titles]
)
def test_supply_temperature_panels_show_the_60_70_band(uid: str, title: str) -> None:
    [panel] = [p for p in panels(BOARDS[uid]) if p["title"] == title]
    defaults = panel["fieldConfig"]["defaults"]
    assert defaults["unit"] == "celsius"
    steps = defaults["thresholds"]["steps"]
    assert [step["value"] for step in steps] == [None, 60, 70]
    assert steps[1]["color"] == "green"
    assert steps[0]["color"] != "green" != steps[2]["color"]
    if panel["type"] == "timeseries":
        assert defaults["custom"]["thresholdsStyle"]["mode"] != "off"


@pytest.mark.parametrize("uid", sorted(UIDS - {ALARMS}))
def test_dashboards_mark_the_events(uid: str) -> None:
    annotations = BOARDS[uid]["annotations"]["list"]
    assert {a["name"] for a in annotations} == {"Alarms", "Modes and operator actions"}
    for annotation in annotations:
        assert annotation["enable"] is True
        assert 'FROM "event"' in annotation["query"] == annotation["target"]["query"]
        assert annotation["target"]["fromAnnotations"] is True
        assert annotation["textColumn"] == "message"
        assert annotation["tagsColumn"]


def test_the_alarms_dashboard_lists_the_journals_newest_first() -> None:
    dashboard = BOARDS[ALARMS]
    assert dashboard["annotations"]["list"] == []
    tables = {p["title"]: p for p in panels(dashboard) if p["type"] == "table"}
    journal = tables["Alarm and event journal"]["targets"][0]
    assert journal["resultFormat"] == "table"
    for column in ("kind", "name", "source", "state", "message", "user", "reason", "before"):
        assert f'"{column}"' in journal["query"]
    assert 'FROM "event"' in journal["query"]
    assert "ORDER BY time DESC" in journal["query"]
    quality = tables["Communication quality changes"]["targets"][0]
    assert 'FROM "point_quality"' in quality["query"]
    assert "ORDER BY time DESC" in quality["query"]


def test_every_dashboard_picks_the_site_and_caisson_detail_the_caisson() -> None:
    for uid, dashboard in BOARDS.items():
        first = dashboard["templating"]["list"][0]
        assert (first["name"], first["type"]) == ("site", "query"), uid
    variables = {v["name"]: v for v in BOARDS["boiler-caisson-detail"]["templating"]["list"]}
    caisson = variables["caisson"]
    assert caisson["type"] == "query"
    assert caisson["query"] == (
        'SHOW TAG VALUES FROM "caisson_control" WITH KEY = "caisson" WHERE "site" =~ /^$site$/'
    )


# ---------------------------------------------------------------------- queries and the schema


def queries() -> Iterator[DashboardQuery]:
    for dashboard in BOARDS.values():
        yield from dashboard_queries(dashboard)


def test_the_query_list_covers_every_target_variable_and_annotation() -> None:
    for uid, dashboard in BOARDS.items():
        listed = list(dashboard_queries(dashboard))
        targets = sum(len(panel["targets"]) for panel in panels(dashboard))
        variables = [v for v in dashboard["templating"]["list"] if v["type"] == "query"]
        annotations = dashboard["annotations"]["list"]
        assert len(listed) == targets + len(variables) + len(annotations), uid
        assert all(q.dashboard == uid and q.query for q in listed)


def _fields(cls: type, *skip: str) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)} - set(skip)


def historian_schema() -> dict[str, set[str]]:
    """Each measurement's fields and tags, as the controller writes them (docs/HISTORIAN.md)."""
    measurements: dict[str, set[str]] = {}
    for path in sorted((ROOT / "plc_maps").glob("*.yaml")):
        device_map = load_map(path)
        name = schema.device_measurement(device_map.device_type)
        stored = {point.id for point in device_map.points if point.historian}
        measurements[name] = stored | {"site", "device", "caisson"}
    # plant_control and caisson_control: Recorder.control()
    measurements[schema.PLANT] = set(schema.PLANT_FIELDS) | {"site"}
    measurements[schema.CAISSON] = set(schema.CAISSON_FIELDS) | {"site", "caisson"}
    measurements[schema.CONTROLLER] = _fields(schema.ControllerFigures) | {"site"}
    measurements[schema.DEVICE] = _fields(schema.DeviceHealthFigures) | {"site"}
    measurements[schema.QUALITY] = {"quality", "reason", "site", "device", "point"}
    measurements[schema.REGISTER_WRITES] = {"count", "site", "device", "point"}
    measurements[schema.KPI] = _fields(Kpis, "start") | {"site"}
    measurements[schema.EVENT] = _fields(schema.Event, "at") | {"site"}
    return measurements


def test_queries_name_only_measurements_fields_and_tags_the_historian_writes() -> None:
    known = historian_schema()
    everything = set().union(*known.values())
    for query in queries():
        text = query.query
        measurements = set()
        for names in re.findall(r'FROM ((?:"\w+"(?:, )?)+)', text):
            measurements |= set(re.findall(r'"(\w+)"', names))
        assert measurements <= set(known), (query, measurements - set(known))
        allowed = set().union(*(known[m] for m in measurements)) if measurements else everything
        aliases = set(re.findall(r'AS "([^"]+)"', text))
        identifiers = set(re.findall(r'"([^"]+)"', text)) - aliases - measurements
        assert identifiers <= allowed, (query, identifiers - allowed)

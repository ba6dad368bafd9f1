"""The Grafana dashboards (grafana/generate.py → grafana/dashboards/*.json): the committed JSON is
what the generator makes, and its structure holds what operators and the provisioning rely on.
Their queries run on a real InfluxDB in tests/integration/test_grafana_queries.py."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from controller.alarms.engine import alarm_counts
from controller.capacity import Conditions, SiteModel, capacity
from controller.capacity_feed import fields as capacity_fields
from controller.config.loader import load_map, load_site
from controller.historian import schema
from controller.kpi import Kpis
from grafana.generate import DASHBOARDS_DIR, dashboards, render
from grafana.influxql import DashboardQuery, dashboard_queries
from tests.integration.test_historian import parse
from tests.plant_helpers import ROOT

DATASOURCE = {"type": "influxdb", "uid": "boiler-influxdb"}
UIDS = {
    "boiler-plant-overview",
    "boiler-caisson-detail",
    "boiler-alarms-events",
    "boiler-energy-kpis",
    "boiler-controller-health",
    "boiler-fleet-overview",
}
ALARMS = "boiler-alarms-events"
FLEET = "boiler-fleet-overview"  # every site at once: no $site
# The panels that show a supply or outlet temperature against the site's band.
BAND_PANELS = {
    "boiler-plant-overview": [
        "Supply temperature",
        "Supply temperature and the site's band",
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


def test_six_dashboards_with_their_uids_and_file_names() -> None:
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
        for variable in dashboard["templating"].get("list", []):
            if variable["type"] == "query":
                assert variable["datasource"] == DATASOURCE, (uid, variable["name"])
        for annotation in dashboard["annotations"].get("list", []):
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
        if query.variable == "site" or query.dashboard == FLEET:
            continue
        assert '"site" =~ /^$site$/' in query.query, query
        if query.variable is None:
            # Today's figures look back from now (kpi day points start at local midnight).
            assert "$timeFilter" in query.query or "now() - 25h" in query.query, query
            assert "$__interval" not in query.query or "GROUP BY time($__interval)" in query.query


@pytest.mark.parametrize(
    ("uid", "title"), [(uid, title) for uid, titles in BAND_PANELS.items() for title in titles]
)
def test_supply_temperature_panels_show_the_site_s_own_band(uid: str, title: str) -> None:
    """The band comes from the site's data (`site_config`), through Grafana's "Config from
    query results": no temperature is written in the panel."""
    [panel] = [p for p in panels(BOARDS[uid]) if p["title"] == title]
    defaults = panel["fieldConfig"]["defaults"]
    assert defaults["unit"] == "celsius"
    assert [step["value"] for step in defaults["thresholds"]["steps"]] == [None]
    band = [t for t in panel["targets"] if t["refId"] == "BAND"]
    assert len(band) == 1
    assert band[0]["resultFormat"] == "table"
    assert 'FROM "site_config"' in band[0]["query"]
    columns = re.findall(r'last\("(\w+)"\) AS "([^"]+)"', band[0]["query"])
    assert columns == [
        ("supply_low_c", "Below the band"),
        ("supply_low_c", "Band low"),
        ("supply_high_c", "Band high"),
    ]
    (config,) = [t for t in panel["transformations"] if t["id"] == "configFromData"]
    options = config["options"]
    assert options["configRefId"] == "BAND"
    steps = [(m["fieldName"], m["handlerKey"]) for m in options["mappings"]]
    assert steps == [(alias, "threshold1") for _, alias in columns]
    colours = [m["handlerArguments"]["threshold"]["color"] for m in options["mappings"]]
    assert colours == ["red", "green", "orange"]
    if panel["type"] == "timeseries":
        assert defaults["custom"]["thresholdsStyle"]["mode"] != "off"


@pytest.mark.parametrize("uid", sorted(UIDS - {ALARMS, FLEET}))
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
    assert dashboard["annotations"].get("list", []) == []
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
        if uid == FLEET:
            assert dashboard["templating"].get("list", []) == []  # every site at once
            continue
        first = dashboard["templating"].get("list", [])[0]
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
        variables = [v for v in dashboard["templating"].get("list", []) if v["type"] == "query"]
        annotations = dashboard["annotations"].get("list", [])
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
    measurements[schema.KPI] = (
        _fields(Kpis, "start")
        | {"site"}
        | {schema.fuel_field(fuel) for fuel in schema.FUEL_EFFICIENCY}
    )
    recorder = schema.Recorder(load_site(ROOT / "sites" / "demo.yaml"))
    now = datetime.now(UTC)
    (site_config,) = recorder.site_config({"outlet": 65.0, "tank_reserve": 0.6}, now)
    measurements[schema.SITE_CONFIG] = set(parse(site_config)[2]) | {"site"}
    measurements[schema.ALARM_COUNTS] = set(alarm_counts([])) | {"site"}
    site = load_site(ROOT / "sites" / "demo.yaml")
    now_conditions = Conditions(now, None, 0.0, 60e3, 0.94, 0.0)
    report = capacity(SiteModel.of(site), now_conditions)
    measurements[schema.CAPACITY] = {name for name, _ in capacity_fields(report)} | {"site"}
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


# ---------------------------------------------------------------------- the fleet overview


def test_the_fleet_table_joins_one_row_per_site_on_the_site() -> None:
    [table] = [p for p in panels(BOARDS[FLEET]) if p["type"] == "table"]
    aliases: list[str] = []
    for target in table["targets"]:
        assert target["resultFormat"] == "table", target["refId"]
        assert target["query"].endswith('GROUP BY "site"'), target["query"]
        aliases += re.findall(r'AS "([^"]+)"', target["query"])
    assert len(aliases) == len(set(aliases)), "a column twice: merge would mix them"
    ids = [t["id"] for t in table["transformations"]]
    assert ids == ["filterFieldsByName", "merge", "organize"]
    organize = table["transformations"][2]["options"]
    assert set(organize["indexByName"]) == {*aliases, "site"}
    assert organize["renameByName"] == {"site": "Site"}
    shown = set(aliases) | {"Site"}
    named = {o["matcher"]["options"] for o in table["fieldConfig"]["overrides"]}
    assert named <= shown, named - shown
    assert table["options"]["sortBy"] == [{"desc": True, "displayName": "Attention"}]
    # The site's name opens its own dashboards, on that site.
    [links] = [
        p["value"]
        for o in table["fieldConfig"]["overrides"]
        if o["matcher"]["options"] == "Site"
        for p in o["properties"]
        if p["id"] == "links"
    ]
    for link in links:
        uid = re.fullmatch(r"/d/([a-z-]+)\?var-site=\$\{__value\.raw\}&.*", link["url"])
        assert uid, link["url"]
        variables = [v["name"] for v in BOARDS[uid.group(1)]["templating"]["list"]]
        assert "site" in variables
    assert {re.search(r"/d/([a-z-]+)", link["url"]).group(1) for link in links} == UIDS - {FLEET}  # type: ignore[union-attr]


def test_the_fleet_s_totals_sum_hourly_kpis_over_the_chosen_period() -> None:
    totals = [p for p in panels(BOARDS[FLEET]) if p["gridPos"]["y"] == 0]
    assert [p["title"] for p in totals] == [
        "Heat reused",
        "Gas displaced",
        "Compute energy",
        "Fleet ERF",
        "Backup heat",
        "Heat dumped",
    ]
    for panel in totals:
        (target,) = panel["targets"]
        assert "$timeFilter" in target["query"]
        assert "\"period\" = 'hour'" in target["query"]
        assert "GROUP BY" not in target["query"]  # the whole fleet

"""The Grafana provisioning files (grafana/provisioning/**) and grafana/compose.yaml, by structure.

No Grafana can run here (not in Debian, PyPI or npm), so these tests hold the files to what
Grafana's provisioning code reads (grafana/grafana pkg/services/provisioning: values, alerting
rules_types.go; pkg/expr) and to the historian's schema (docs/HISTORIAN.md): every file loads,
the data source is the one the dashboards and rules name, its settings come from environment
variables, every alert rule is complete and multi-dimensional, its queries read measurements,
fields and tags that the controller writes, and the compose file mounts what exists. The alert
queries themselves run on a real InfluxDB in tests/integration/test_grafana_queries.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from ruamel.yaml import YAML

from controller.config.loader import load_map, load_site
from controller.historian import schema
from tests.integration.test_historian import parse

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "grafana"
PROVISIONING = GRAFANA / "provisioning"
DATASOURCE_FILE = PROVISIONING / "datasources" / "boilers.yaml"
DASHBOARDS_FILE = PROVISIONING / "dashboards" / "boilers.yaml"
ALERTING_FILE = PROVISIONING / "alerting" / "boilers.yaml"
COMPOSE_FILE = GRAFANA / "compose.yaml"

DATASOURCE_UID = "boiler-influxdb"
EXPRESSION_UID = "__expr__"
FOLDER = "Digital boilers"
ENV_PREFIX = "BOILER_"

# The alert topics of issue 7, and the rules that cover each.
TOPICS = {
    "supply temperature out of band": {"boiler-supply-out-of-band"},
    "caisson in local safe mode": {"boiler-caisson-local-safe"},
    "communication lost": {"boiler-device-comm-lost", "boiler-controller-silent"},
    "historian spool growing": {"boiler-historian-spool-growing"},
    "leak": {"boiler-caisson-leak"},
}
SEVERITIES = {"critical", "high", "medium", "low"}

# What Grafana 11 accepts (pkg/services/ngalert/models, pkg/expr).
NO_DATA_STATES = {"NoData", "Alerting", "OK", "KeepLast"}
EXEC_ERROR_STATES = {"Error", "Alerting", "OK", "KeepLast"}
THRESHOLD_PARAMS = {"gt": 1, "lt": 1, "within_range": 2, "outside_range": 2}
REDUCERS = {"last", "max", "min", "mean", "sum", "count", "median"}
REDUCE_MODES = {"dropNN", "replaceNN"}
RULE_UID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")  # Prometheus model.ParseDuration

# A Grafana environment reference: `$NAME` or `${NAME}` (os.ExpandEnv, no default syntax).
ENV_REFERENCE = re.compile(r"\$\{(?P<braced>[^}]*)\}|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)")
# The tags the historian writes on each measurement (docs/HISTORIAN.md).
DEVICE_TAGS = {"site", "device", "caisson"}
MEASUREMENT_TAGS = {
    schema.CONTROLLER: {"site"},
    schema.SITE_CONFIG: {"site"},
    schema.DEVICE: {"site", "device"},
    schema.PLANT: {"site"},
    schema.CAISSON: {"site", "caisson"},
}


def _load(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


def _yaml_files() -> list[Path]:
    found = [p for p in PROVISIONING.rglob("*") if p.suffix in (".yaml", ".yml")]
    return [*sorted(found), COMPOSE_FILE]


def _rules() -> list[dict[str, Any]]:
    return [rule for group in _load(ALERTING_FILE)["groups"] for rule in group["rules"]]


def _datasource() -> dict[str, Any]:
    (datasource,) = _load(DATASOURCE_FILE)["datasources"]
    result: dict[str, Any] = datasource
    return result


def _provider() -> dict[str, Any]:
    (provider,) = _load(DASHBOARDS_FILE)["providers"]
    result: dict[str, Any] = provider
    return result


def _grafana_service() -> dict[str, Any]:
    result: dict[str, Any] = _load(COMPOSE_FILE)["services"]["grafana"]
    return result


def _uncommented(path: Path) -> str:
    """The file's text without its comment lines (the data source file documents an
    alternative in comments)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith("#"))


def _env_references(text: str) -> set[str]:
    return {m.group("braced") or m.group("bare") for m in ENV_REFERENCE.finditer(text)}


# ------------------------------------------------------------------ the alert queries


class AlertQuery(NamedTuple):
    """One data-source query of an alert rule, as Grafana runs it: raw InfluxQL with
    `$timeFilter` covering the `seconds` before now (`relativeTimeRange.from`)."""

    rule_uid: str
    ref_id: str
    query: str
    seconds: int


def alert_rule_queries(path: Path = ALERTING_FILE) -> Iterator[AlertQuery]:
    """Every InfluxQL query of the provisioned alert rules, where it comes from and how far back
    it looks. Expressions (datasourceUid __expr__) are left out: Grafana computes them."""
    for group in _load(path)["groups"]:
        for rule in group["rules"]:
            for item in rule["data"]:
                if item["datasourceUid"] == EXPRESSION_UID:
                    continue
                span = item["relativeTimeRange"]
                seconds = int(span["from"]) - int(span.get("to", 0))
                yield AlertQuery(rule["uid"], item["refId"], item["model"]["query"], seconds)


# ------------------------------------------------------------------ files load


@pytest.mark.parametrize("path", _yaml_files(), ids=lambda p: str(p.relative_to(GRAFANA)))
def test_every_yaml_file_loads(path: Path) -> None:
    document = _load(path)
    assert isinstance(document, dict)
    if path.is_relative_to(PROVISIONING):
        assert document["apiVersion"] == 1


def test_the_three_provisioning_folders_each_hold_their_file() -> None:
    kinds = {p.parent.name: p for p in PROVISIONING.rglob("*.yaml")}
    assert kinds == {
        "datasources": DATASOURCE_FILE,
        "dashboards": DASHBOARDS_FILE,
        "alerting": ALERTING_FILE,
    }


# ------------------------------------------------------------------ data source


def test_the_datasource_is_the_influxql_source_the_dashboards_and_rules_name() -> None:
    datasource = _datasource()
    assert datasource["uid"] == DATASOURCE_UID
    assert datasource["type"] == "influxdb"
    assert datasource["name"] == "Digital boilers (InfluxDB)"
    assert datasource["access"] == "proxy"
    json_data = datasource["jsonData"]
    assert json_data["httpMode"] in ("GET", "POST")
    assert json_data.get("version", "InfluxQL") == "InfluxQL"  # Flux or SQL would not run them
    assert "database" not in datasource  # deprecated in favour of jsonData.dbName


def test_the_datasource_takes_its_connection_from_the_environment() -> None:
    datasource = _datasource()
    assert datasource["url"] == "${BOILER_INFLUX_URL}"
    assert datasource["jsonData"]["dbName"] == "${BOILER_INFLUX_DB}"
    assert datasource["user"] == "${BOILER_INFLUX_USER}"
    assert datasource["secureJsonData"] == {"password": "${BOILER_INFLUX_PASSWORD}"}


@pytest.mark.parametrize("path", [DATASOURCE_FILE, DASHBOARDS_FILE], ids=lambda p: p.parent.name)
def test_environment_references_are_plain_names(path: Path) -> None:
    """Grafana expands `${NAME}` with os.Getenv: `${NAME:-default}` would silently expand to an
    empty string (pkg/setting/expanders.go), and a bare `$NAME` runs into the text after it."""
    for match in ENV_REFERENCE.finditer(_uncommented(path)):
        name = match.group("braced")
        assert name is not None, f"{path.name}: write {match.group(0)} as ${{NAME}}"
        assert re.fullmatch(r"BOILER_[A-Z_]+", name), f"{path.name}: ${{{name}}}"


def test_the_token_alternative_uses_the_documented_header() -> None:
    text = DATASOURCE_FILE.read_text(encoding="utf-8")
    commented = "\n".join(
        line.lstrip()[1:] for line in text.splitlines() if line.lstrip().startswith("#")
    )
    assert "httpHeaderName1: Authorization" in commented
    assert "httpHeaderValue1: Token ${BOILER_INFLUX_TOKEN}" in commented


# ------------------------------------------------------------------ dashboards provider


def test_the_dashboards_provider_reads_files_into_the_boilers_folder() -> None:
    provider = _provider()
    assert provider["type"] == "file"
    assert provider["folder"] == FOLDER
    assert provider["allowUiUpdates"] is False
    assert isinstance(provider["updateIntervalSeconds"], int)
    assert provider["updateIntervalSeconds"] > 0
    path = provider["options"]["path"]
    assert path.startswith("/"), "an absolute path: Grafana resolves a relative one from its cwd"
    assert "$" not in path


# ------------------------------------------------------------------ alert rules


def test_the_rules_live_in_the_dashboards_folder() -> None:
    document = _load(ALERTING_FILE)
    assert [g["folder"] for g in document["groups"]] == [FOLDER] * len(document["groups"])
    for group in document["groups"]:
        assert group.get("orgId", 1) == 1
        assert group["name"]
        assert DURATION.fullmatch(group["interval"])


def test_every_topic_of_the_issue_has_a_rule() -> None:
    uids = {rule["uid"] for rule in _rules()}
    for topic, covering in TOPICS.items():
        assert covering <= uids, f"{topic}: missing {sorted(covering - uids)}"


def test_rule_uids_and_titles_are_unique() -> None:
    rules = _rules()
    uids = [rule["uid"] for rule in rules]
    titles = [rule["title"] for rule in rules]
    assert len(set(uids)) == len(uids)
    assert len(set(titles)) == len(titles)  # Grafana refuses two titles in one folder
    for uid in uids:
        assert RULE_UID.fullmatch(uid), uid


@pytest.mark.parametrize("rule", _rules(), ids=lambda r: r["uid"])
def test_a_rule_is_complete(rule: Mapping[str, Any]) -> None:
    ref_ids = [item["refId"] for item in rule["data"]]
    assert len(set(ref_ids)) == len(ref_ids)
    assert rule["condition"] in ref_ids
    assert rule["title"]
    assert DURATION.fullmatch(rule["for"])
    assert rule["noDataState"] in NO_DATA_STATES
    assert rule["execErrState"] in EXEC_ERROR_STATES
    assert rule["labels"]["severity"] in SEVERITIES
    assert rule["annotations"]["summary"].strip()
    assert len(rule["annotations"]["description"]) > 80  # for an operator: what, and what to do


@pytest.mark.parametrize("rule", _rules(), ids=lambda r: r["uid"])
def test_grafana_expands_nothing_by_accident(rule: Mapping[str, Any]) -> None:
    """Titles and labels go through os.ExpandEnv: a `$` there becomes an empty string.
    Annotations are kept raw (grafana/grafana#54975); later versions may expand `${NAME}` in
    them, never `{{ $labels.x }}`. Models are kept raw (#54293)."""
    for text in [rule["uid"], rule["title"], *rule["labels"].keys(), *rule["labels"].values()]:
        assert "$" not in str(text), text
    for value in rule["annotations"].values():
        assert "${" not in value, value


@pytest.mark.parametrize("rule", _rules(), ids=lambda r: r["uid"])
def test_dashboard_links_come_in_pairs(rule: Mapping[str, Any]) -> None:
    """`__dashboardUid__` without `__panelId__` fails the whole provisioning run."""
    linked = {"__dashboardUid__", "__panelId__"} & set(rule["annotations"])
    assert len(linked) in (0, 2)


@pytest.mark.parametrize("rule", _rules(), ids=lambda r: r["uid"])
def test_dashboard_urls_open_a_shipped_dashboard_on_its_variables(rule: Mapping[str, Any]) -> None:
    url = rule["annotations"]["dashboard_url"]
    match = re.fullmatch(r"/d/(?P<uid>[a-z-]+)\?(?P<query>.+)", url)
    assert match, url
    dashboards = {}
    for path in (GRAFANA / "dashboards").glob("*.json"):
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        dashboards[dashboard["uid"]] = dashboard
    assert match["uid"] in dashboards, f"no dashboard {match['uid']} in grafana/dashboards"
    variables = {v["name"] for v in dashboards[match["uid"]]["templating"]["list"]}
    for parameter in match["query"].split("&"):
        name = parameter.split("=")[0].removeprefix("var-")
        assert name in variables, f"{match['uid']} has no variable {name}"


@pytest.mark.parametrize("rule", _rules(), ids=lambda r: r["uid"])
def test_queries_are_raw_influxql_on_the_boiler_source(rule: Mapping[str, Any]) -> None:
    queries = [item for item in rule["data"] if item["datasourceUid"] != EXPRESSION_UID]
    assert queries, "a rule without a query"
    assert rule["data"][0]["refId"] == "A"
    assert rule["data"][0]["datasourceUid"] == DATASOURCE_UID
    for item in queries:
        assert item["datasourceUid"] == DATASOURCE_UID
        model = item["model"]
        assert model["refId"] == item["refId"]
        assert model["rawQuery"] is True
        assert model["resultFormat"] == "time_series"
        assert model.get("datasource", {}).get("uid", DATASOURCE_UID) == DATASOURCE_UID
        assert "$timeFilter" in model["query"]
        span = item["relativeTimeRange"]
        assert int(span["from"]) > int(span.get("to", 0)) >= 0


@pytest.mark.parametrize("rule", _rules(), ids=lambda r: r["uid"])
def test_expressions_are_ones_grafana_knows(rule: Mapping[str, Any]) -> None:
    defined: set[str] = set()
    for item in rule["data"]:
        model = item["model"]
        if item["datasourceUid"] != EXPRESSION_UID:
            defined.add(item["refId"])
            continue
        assert model["refId"] == item["refId"]
        kind = model["type"]
        if kind == "reduce":
            assert model["expression"] in defined
            assert model["reducer"] in REDUCERS
            assert model.get("settings", {}).get("mode", "dropNN") in REDUCE_MODES
        elif kind == "threshold":
            assert model["expression"] in defined
            (condition,) = model["conditions"]  # Grafana takes exactly one
            evaluator = condition["evaluator"]
            assert len(evaluator["params"]) == THRESHOLD_PARAMS[evaluator["type"]]
        elif kind == "math":
            used = set(re.findall(r"\$\{?([A-Za-z][A-Za-z0-9_]*)", model["expression"]))
            assert used, model["expression"]
            assert used <= defined, model["expression"]
        else:
            pytest.fail(f"{rule['uid']} {item['refId']}: unexpected expression {kind}")
        defined.add(item["refId"])


# ------------------------------------------------------------------ queries and the schema

QUERY = re.compile(
    r'^SELECT (?P<function>[a-z]+)\("(?P<field>\w+)"\) FROM "(?P<measurement>\w+)" '
    r"WHERE \$timeFilter GROUP BY (?P<group>.+?) fill\((?P<fill>none|null|0)\)"
    r"(?P<rest>.*)$"
)


def _fields_written() -> dict[str, set[str]]:
    """Measurement → the fields the historian writes (controller/historian/schema.py and the
    device maps' points with `historian: true`)."""
    written: dict[str, set[str]] = {
        schema.CONTROLLER: {f.name for f in fields(schema.ControllerFigures)},
        schema.DEVICE: {f.name for f in fields(schema.DeviceHealthFigures)} - {"device"},
    }
    for path in sorted((ROOT / "plc_maps").glob("*.yaml")):
        device_map = load_map(path)
        measurement = schema.device_measurement(device_map.device_type)
        written.setdefault(measurement, set()).update(
            point.id for point in device_map.points if point.historian
        )
    recorder = schema.Recorder(load_site(ROOT / "sites" / "demo.yaml"))
    (line,) = recorder.site_config({"outlet": 65.0, "tank_reserve": 0.6}, datetime.now(UTC))
    written[schema.SITE_CONFIG] = set(parse(line)[2])
    return written


def test_the_supply_rule_compares_each_site_with_its_own_band() -> None:
    """No band is written in the rule: each site's comes from its `site_config`, and every
    query groups by site, so that Grafana's math pairs each site's supply with its band."""
    (rule,) = [r for r in _rules() if r["uid"] == "boiler-supply-out-of-band"]
    items = {item["refId"]: item for item in rule["data"]}
    assert items["E"]["model"]["expression"] == "($B < $LOW || $B > $HIGH) && $D > 1"
    assert rule["condition"] == "E"
    for ref, field in (("L", "supply_low_c"), ("H", "supply_high_c")):
        query = items[ref]["model"]["query"]
        assert f'"{field}"' in query
        assert 'FROM "site_config"' in query
    for ref in ("A", "C", "L", "H"):
        match = QUERY.match(items[ref]["model"]["query"])
        assert match is not None
        assert _group_tags(match["group"]) == {"site"}
    for item in rule["data"]:  # no temperature in any expression or query
        assert not re.search(r"\b\d\d\b", item["model"].get("expression", "")), item
        assert not re.search(r"[<>=] *\d", item["model"].get("query", "")), item


def _group_tags(group_by: str) -> set[str]:
    return set(re.findall(r'"(\w+)"', group_by))


def _query_id(query: AlertQuery) -> str:
    return f"{query.rule_uid}/{query.ref_id}"


@pytest.mark.parametrize("query", list(alert_rule_queries()), ids=_query_id)
def test_queries_read_what_the_historian_writes(query: AlertQuery) -> None:
    match = QUERY.match(query.query)
    assert match, f"not the expected shape: {query.query}"
    written = _fields_written()
    measurement = match["measurement"]
    assert measurement in written, measurement
    assert match["field"] in written[measurement], f"{measurement} has no field {match['field']}"
    tags = _group_tags(match["group"])
    assert "site" in tags, "each alert instance names its site"
    assert tags <= MEASUREMENT_TAGS.get(measurement, DEVICE_TAGS), tags
    assert re.search(r"\btime\(\d+[smh]\)", match["group"]), "one point per interval"


@pytest.mark.parametrize("rule", _rules(), ids=lambda r: r["uid"])
def test_annotations_name_only_labels_the_queries_give(rule: Mapping[str, Any]) -> None:
    """`{{ $labels.caisson }}` is empty unless every query groups by caisson; `$values.X` names
    an expression."""
    groups = []
    for item in rule["data"]:
        if item["datasourceUid"] != EXPRESSION_UID:
            match = QUERY.match(item["model"]["query"])
            assert match, item["model"]["query"]
            groups.append(_group_tags(match["group"]))
    common = set.intersection(*groups)
    expressions = {i["refId"] for i in rule["data"] if i["datasourceUid"] == EXPRESSION_UID}
    for value in rule["annotations"].values():
        assert set(re.findall(r"\$labels\.(\w+)", value)) <= common, value
        assert set(re.findall(r"\$values\.(\w+)", value)) <= expressions, value


def test_the_helper_yields_every_query_with_its_span() -> None:
    queries = list(alert_rule_queries())
    assert {q.rule_uid for q in queries} == {rule["uid"] for rule in _rules()}
    for query in queries:
        assert query.ref_id
        assert "$timeFilter" in query.query
        assert query.seconds >= 60


# ------------------------------------------------------------------ compose


def _mounts() -> dict[str, str]:
    """Host path (relative to grafana/) → container path, for the grafana service."""
    mounts = {}
    for volume in _grafana_service()["volumes"]:
        source, target, *_ = volume.split(":")
        mounts[source] = target
    return mounts


def test_compose_runs_influxdb_1_8_and_grafana_11() -> None:
    services = _load(COMPOSE_FILE)["services"]
    assert services["influxdb"]["image"].startswith("influxdb:1.")
    assert re.fullmatch(r"grafana/grafana:11\.\d+\.\d+", services["grafana"]["image"])


def test_compose_mounts_folders_that_exist() -> None:
    bind_mounts = {s: t for s, t in _mounts().items() if s.startswith(".")}
    assert bind_mounts
    for source, target in bind_mounts.items():
        assert (GRAFANA / source).is_dir(), f"{source} does not exist in grafana/"
        assert target.startswith("/etc/grafana/")
    for kind in ("datasources", "dashboards", "alerting"):
        assert bind_mounts[f"./provisioning/{kind}"] == f"/etc/grafana/provisioning/{kind}"


def test_compose_mounts_the_dashboards_where_the_provider_reads_them() -> None:
    assert _mounts()["./dashboards"] == _provider()["options"]["path"]


def test_compose_sets_exactly_the_variables_the_datasource_reads() -> None:
    environment = _grafana_service()["environment"]
    assert isinstance(environment, dict)
    set_here = {name for name in environment if name.startswith(ENV_PREFIX)}
    assert set_here == _env_references(_uncommented(DATASOURCE_FILE))


def test_compose_points_grafana_at_its_influxdb_database() -> None:
    services = _load(COMPOSE_FILE)["services"]
    environment = services["grafana"]["environment"]
    assert environment["BOILER_INFLUX_URL"] == "http://influxdb:8086"
    assert environment["BOILER_INFLUX_DB"] == services["influxdb"]["environment"]["INFLUXDB_DB"]
    assert "127.0.0.1:8086:8086" in services["influxdb"]["ports"]  # `boilerctl demo --influx`

"""Every InfluxQL query the shipped Grafana files hold, and Grafana's macro expansion of them.

Read from the committed files themselves (grafana/dashboards/*.json, grafana/provisioning/
alerting/*.yaml), not from the generator, so that what is tested is what a Grafana would load.
The expansion follows Grafana's InfluxQL data source: `$timeFilter` becomes
`time >= <from>ms and time <= <to>ms`, `$__interval` (and the older `$interval`) a duration such
as `10s`, `$__interval_ms` its milliseconds, and a template variable (`$name`, `${name}`,
`[[name]]`) its value; inside a regex (`=~ /^$name$/`) a value is regex-escaped, and several
values become `(a|b)`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from tests.plant_helpers import ROOT

GRAFANA = ROOT / "grafana"
DATASOURCE_UID = "boiler-influxdb"


@dataclass(frozen=True)
class Query:
    source: str  # "dashboard <uid> / panel <title> / A", "alert rule <uid> / A"...
    text: str
    result_format: str = "time_series"  # or "table"
    relative_seconds: int | None = None  # alert rules: how far back the rule looks
    variable: str | None = None  # a template variable's query: the variable's name


def _panels(panels: Sequence[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def dashboard_files() -> list[Path]:
    return sorted((GRAFANA / "dashboards").glob("*.json"))


def dashboard_queries(dashboard: Mapping[str, Any]) -> Iterator[Query]:
    uid = dashboard["uid"]
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        text = query.get("query") if isinstance(query, Mapping) else query
        if variable.get("type") == "query" and text:
            yield Query(
                f"dashboard {uid} / variable {variable['name']}",
                text,
                "table",
                None,
                variable["name"],
            )
    for annotation in dashboard.get("annotations", {}).get("list", []):
        text = annotation.get("query") or annotation.get("target", {}).get("query")
        if text and annotation.get("datasource", {}).get("uid") == DATASOURCE_UID:
            yield Query(f"dashboard {uid} / annotation {annotation.get('name')}", text, "table")
    for panel in _panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            if target.get("hide"):
                continue
            yield Query(
                f"dashboard {uid} / panel {panel.get('title')!r} / {target.get('refId')}",
                target["query"],
                target.get("resultFormat", "time_series"),
            )


def alert_queries() -> Iterator[Query]:
    yaml = YAML(typ="safe")
    for path in sorted((GRAFANA / "provisioning" / "alerting").glob("*.y*ml")):
        document = yaml.load(path.read_text())
        for group in document.get("groups", []):
            for rule in group.get("rules", []):
                for item in rule.get("data", []):
                    if item.get("datasourceUid") != DATASOURCE_UID:
                        continue
                    span = item.get("relativeTimeRange", {}).get("from", 600)
                    yield Query(
                        f"alert rule {rule['uid']} / {item['refId']}",
                        item["model"]["query"],
                        item["model"].get("resultFormat", "time_series"),
                        int(span),
                    )


def load_dashboards() -> list[dict[str, Any]]:
    return [json.loads(path.read_text()) for path in dashboard_files()]


_REGEX_SPECIAL = re.compile(r"([\\^$.|?*+()\[\]{}/])")


def _regex_value(values: Sequence[str]) -> str:
    escaped = [_REGEX_SPECIAL.sub(r"\\\1", v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def expand(
    text: str,
    *,
    start_ms: int,
    end_ms: int,
    interval_s: int,
    variables: Mapping[str, Sequence[str]],
) -> str:
    """`text` with Grafana's InfluxQL macros and template variables replaced."""
    text = text.replace("$timeFilter", f"time >= {start_ms}ms and time <= {end_ms}ms")
    text = text.replace("${timeFilter}", f"time >= {start_ms}ms and time <= {end_ms}ms")
    text = text.replace("$__interval_ms", str(interval_s * 1000))
    text = re.sub(r"\$__interval\b|\$\{__interval\}|\$interval\b", f"{interval_s}s", text)
    for name, values in sorted(variables.items(), key=lambda item: -len(item[0])):
        # Inside a regex literal /.../ the value is regex-escaped; elsewhere it is plain.
        def in_regex(match: re.Match[str], values: Sequence[str] = values) -> str:
            return match.group(0).replace(match.group("ref"), _regex_value(values))

        reference = rf"(?P<ref>\$\{{{name}\}}|\$\b{name}\b|\[\[{name}\]\])"
        text = re.sub(rf"/[^/\n]*{reference}[^/\n]*/", in_regex, text)
        plain = values[0] if len(values) == 1 else "(" + "|".join(values) + ")"
        text = re.sub(reference, plain.replace("\\", "\\\\"), text)
    leftover = re.search(r"\$\w+|\[\[\w+\]\]", text)
    if leftover is not None:
        raise ValueError(f"unexpanded macro {leftover.group(0)} in {text!r}")
    return text

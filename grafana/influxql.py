"""Raw InfluxQL for Grafana's InfluxDB data source, which grafana-foundation-sdk does not model.

- `InfluxQL`: a panel target (a `cog.variants.Dataquery`), built by `InfluxQLTarget`.
- `EventAnnotation`: an annotation query on the `event` measurement, built by
  `InfluxQLAnnotation`. It carries the query both where Grafana 11 reads it (`target`, an
  InfluxQuery with `fromAnnotations`) and where older versions read it (the annotation's own
  `query`, `tagsColumn`, `textColumn`), so that any version's migration finds it.
- `dashboard_queries()`: every query of a generated dashboard, with where it comes from.

Every query names the provisioned data source (`DATASOURCE`) and uses Grafana's InfluxQL macros:
`$timeFilter`, `$__interval`, and template variables inside regexes (`"site" =~ /^$site$/`), which
Grafana escapes and which hold several values as `(a|b)`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import dashboard as model

DATASOURCE_TYPE = "influxdb"
DATASOURCE_UID = "boiler-influxdb"
DATASOURCE = model.DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)

ResultFormat = Literal["time_series", "table"]


def datasource_json() -> dict[str, str]:
    return {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID}


@dataclass
class InfluxQL(cogvariants.Dataquery):
    """A raw InfluxQL target. `alias` is Grafana's series naming pattern ($col, $tag_caisson…)."""

    query: str
    ref_id: str = "A"
    result_format: ResultFormat = "time_series"
    alias: str | None = None

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {
            "refId": self.ref_id,
            "datasource": datasource_json(),
            "query": self.query,
            "rawQuery": True,
            "resultFormat": self.result_format,
        }
        if self.alias is not None:
            payload["alias"] = self.alias
        return payload


class InfluxQLTarget(cogbuilder.Builder[cogvariants.Dataquery]):
    def __init__(
        self,
        query: str,
        *,
        ref_id: str = "A",
        result_format: ResultFormat = "time_series",
        alias: str | None = None,
    ) -> None:
        self._internal = InfluxQL(query, ref_id, result_format, alias)

    def build(self) -> InfluxQL:
        return self._internal


class EventAnnotation(model.AnnotationQuery):
    """An InfluxQL annotation: each row of `query` is a marker, `text_column` its text and
    `tags_column` (comma-separated columns) its tags."""

    def __init__(
        self, name: str, query: str, *, color: str, text_column: str, tags_column: str
    ) -> None:
        super().__init__(name=name, datasource=DATASOURCE, enable=True, icon_color=color)
        self.query = query
        self.text_column = text_column
        self.tags_column = tags_column

    def to_json(self) -> dict[str, object]:
        payload = super().to_json()
        columns = {"textColumn": self.text_column, "tagsColumn": self.tags_column}
        payload.update(query=self.query, **columns)
        payload["target"] = {
            "refId": "Anno",
            "datasource": datasource_json(),
            "query": self.query,
            "rawQuery": True,
            "resultFormat": "table",
            "fromAnnotations": True,
            "queryType": "tags",
            **columns,
        }
        return payload


class InfluxQLAnnotation(cogbuilder.Builder[model.AnnotationQuery]):
    def __init__(
        self, name: str, query: str, *, color: str, text_column: str, tags_column: str
    ) -> None:
        self._internal = EventAnnotation(
            name, query, color=color, text_column=text_column, tags_column=tags_column
        )

    def build(self) -> EventAnnotation:
        return self._internal


# ---------------------------------------------------------------------- reading the JSON back


@dataclass(frozen=True)
class DashboardQuery:
    """One InfluxQL query of a dashboard and where it comes from."""

    dashboard: str  # the dashboard's uid
    origin: str  # "panel <title>", "variable <name>" or "annotation <name>"
    ref_id: str  # the target's refId; "" for a variable
    query: str
    result_format: str  # "time_series" or "table"
    variable: str | None = None  # a variable's name, for a variable's query


def _panels(panels: Sequence[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def dashboard_queries(dashboard: Mapping[str, Any]) -> Iterator[DashboardQuery]:
    """Every InfluxQL query of a dashboard's JSON: its query variables first (in order: a
    variable may use the ones before it), then its annotations, then its panels' targets."""
    uid = str(dashboard["uid"])
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        text = query.get("query") if isinstance(query, Mapping) else query
        if variable.get("type") == "query" and text:
            name = variable["name"]
            yield DashboardQuery(uid, f"variable {name}", "", text, "table", name)
    for annotation in dashboard.get("annotations", {}).get("list", []):
        target = annotation.get("target") or {}
        text = target.get("query") or annotation.get("query")
        if text:
            ref_id = target.get("refId", "Anno")
            yield DashboardQuery(uid, f"annotation {annotation['name']}", ref_id, text, "table")
    for panel in _panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            yield DashboardQuery(
                uid,
                f"panel {panel['title']}",
                target["refId"],
                target["query"],
                target.get("resultFormat", "time_series"),
            )

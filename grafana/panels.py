"""Operator conventions shared by the dashboards: units, thresholds, colours, value mappings, and
panel builders that give every panel a title, a description, a unit and the provisioned data
source. Pure data: nothing here talks to a server."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import gauge, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

from grafana.influxql import DATASOURCE, InfluxQLAnnotation, InfluxQLTarget, ResultFormat

# ---------------------------------------------------------------------- units (Grafana unit ids)
CELSIUS = "celsius"
KELVIN = "kelvin"  # a temperature difference
KW = "kwatt"
KWH = "kwatth"
PERCENT = "percent"  # 0-100
PERCENT_UNIT = "percentunit"  # 0.0-1.0
LPM = "flowlpm"  # L/min
MS = "ms"
SECONDS = "s"
HOURS = "h"
BYTES = "bytes"
NUMBER = "none"  # a plain number or ratio (ERF, PUE, ERE), given decimals
COUNT = "short"  # a count (errors, points, writes)
TEXT = "string"  # a table of text or a state
WRITES_PER_MINUTE = "wpm"

# ---------------------------------------------------------------------- the supply band
# Each site writes its own band (its site file's `setpoints`) to `site_config` every minute; the
# panels colour temperatures with the band of the site shown (with_band), never a fixed one.
BAND_REF = "BAND"

# ---------------------------------------------------------------------- filters
SITE = '"site" =~ /^$site$/'
CAISSON = '"caisson" =~ /^$caisson$/'
DEVICE = '"device" =~ /^$device$/'
PLANT_METER = "\"caisson\" = ''"  # the plant's heat meter: the heat_meter series without caisson

GRID_WIDTH = 24


def thresholds(base: str, *steps: tuple[float, str]) -> dashboard_builders.ThresholdsConfig:
    """Absolute thresholds: `base` colour below the first step, then each step's colour."""
    return (
        dashboard_builders.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps(
            [model.Threshold(value=None, color=base)]
            + [model.Threshold(value=value, color=color) for value, color in steps]
        )
    )


def erf_colours() -> dashboard_builders.ThresholdsConfig:
    """ERF: green from 0.7 (good heating-season sites claim 0.90-0.96), red under 0.2 (the
    German minimum for new data centres from 2028; a digital boiler should be far above)."""
    return thresholds("red", (0.2, "orange"), (0.7, "green"))


def pue_colours() -> dashboard_builders.ThresholdsConfig:
    """PUE: about 1.01-1.05 for a digital boiler (pumps, fans and controls are small)."""
    return thresholds("green", (1.1, "orange"), (1.3, "red"))


def ere_colours() -> dashboard_builders.ThresholdsConfig:
    """ERE = (1 - ERF) x PUE: lower is better, about 0.1 in the heating season."""
    return thresholds("green", (0.5, "orange"), (1.0, "red"))


def neutral() -> dashboard_builders.ThresholdsConfig:
    return thresholds("green")


def value_map(options: Mapping[str, tuple[str, str]]) -> model.ValueMap:
    """Values shown as words in colours: {raw value: (text, colour)}."""
    return model.ValueMap(
        options={
            raw: model.ValueMappingResult(text=text, color=color, index=i)
            for i, (raw, (text, color)) in enumerate(options.items())
        }
    )


def empty_as(text: str, color: str) -> model.SpecialValueMap:
    return model.SpecialValueMap(
        options=model.DashboardSpecialValueMapOptions(
            match=model.SpecialValueMatch.EMPTY,
            result=model.ValueMappingResult(text=text, color=color, index=0),
        )
    )


PLANT_MODES = value_map(
    {
        "heat": ("Heat delivery", "green"),
        "store": ("Store (charging tank)", "blue"),
        "reject": ("Reject (dry cooler)", "orange"),
        "shed": ("Shed compute", "purple"),
        "safe": ("Safe", "red"),
    }
)
PLC_MODES = value_map(
    {
        "0": ("Local (supervisor ignored)", "orange"),
        "1": ("Remote (lease held)", "green"),
        "2": ("Local safe (lease lost)", "red"),
    }
)
RUNNING = value_map({"0": ("Idle", "blue"), "1": ("Running", "green")})
FLAG = value_map({"0": ("No", "green"), "1": ("Yes", "red")})
LINK_STATES = value_map(
    {"ok": ("OK", "green"), "suspect": ("Suspect", "orange"), "failed": ("Failed", "red")}
)
QUALITIES = value_map(
    {"good": ("Good", "green"), "stale": ("Stale", "orange"), "bad": ("Bad", "red")}
)
ALARM_STATES = value_map({"raised": ("Raised", "red"), "cleared": ("Cleared", "green")})


def override(**properties: object) -> list[model.DynamicConfigValue]:
    """Field override properties: `custom__fillOpacity=0` → id "custom.fillOpacity"."""
    return [
        model.DynamicConfigValue(id_val=key.replace("__", "."), value=value)
        for key, value in properties.items()
    ]


def color(name: str) -> dict[str, str]:
    return {"mode": "fixed", "fixedColor": name}


def q(
    query: str,
    ref_id: str = "A",
    *,
    alias: str | None = None,
    result_format: ResultFormat = "time_series",
) -> InfluxQLTarget:
    """A raw InfluxQL target (see grafana/influxql.py)."""
    return InfluxQLTarget(query, ref_id=ref_id, alias=alias, result_format=result_format)


# ---------------------------------------------------------------------- panels

Builder = TypeVar(
    "Builder",
    timeseries.Panel,
    stat.Panel,
    gauge.Panel,
    table.Panel,
    statetimeline.Panel,
)


def _base(
    panel: Builder,
    title: str,
    description: str,
    unit: str,
    targets: Sequence[cogbuilder.Builder[cogvariants.Dataquery]],
    width: int,
    height: int,
) -> Builder:
    return (
        panel.title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .targets(list(targets))
        .span(width)
        .height(height)
    )


def timeseries_panel(
    title: str,
    description: str,
    unit: str,
    targets: Sequence[cogbuilder.Builder[cogvariants.Dataquery]],
    *,
    width: int = 12,
    height: int = 8,
    bars: bool = False,
    stacked: bool = False,
) -> timeseries.Panel:
    """Lines (or bars) with gaps left as gaps: a device that stopped answering shows as a hole,
    never as a flat line of its last value."""
    panel = (
        _base(timeseries.Panel(), title, description, unit, targets, width, height)
        .line_width(1 if not bars else 0)
        .fill_opacity(10 if not bars else 80)
        .show_points(common.VisibilityMode.NEVER)
        .span_nulls(False)
        .legend(bottom_legend())
        .tooltip(
            common_builders.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.MULTI)
            .sort(common.SortOrder.NONE)
        )
        .thresholds(neutral())
    )
    if bars:
        panel = panel.draw_style(common.GraphDrawStyle.BARS)
    if stacked:
        panel = panel.stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
    return panel


def band_target() -> InfluxQLTarget:
    """The site's band, as the config query of `band_transformation()`: three columns that
    become three threshold steps (the first one's value is Grafana's -Infinity)."""
    return q(
        'SELECT last("supply_low_c") AS "Below the band", last("supply_low_c") AS "Band low", '
        f'last("supply_high_c") AS "Band high" FROM "site_config" {where()}',
        BAND_REF,
        result_format="table",
    )


def band_transformation() -> model.DataTransformerConfig:
    """Grafana's "Config from query results": the band query's columns as the thresholds of
    the panel's numbers (red below the band, green in it, orange above); the band query itself
    is not drawn."""

    def step(column: str, colour: str) -> dict[str, object]:
        return {
            "fieldName": column,
            "handlerKey": "threshold1",
            "handlerArguments": {"threshold": {"color": colour}},
        }

    return model.DataTransformerConfig(
        id_val="configFromData",
        options={
            "configRefId": BAND_REF,
            "mappings": [
                step("Below the band", "red"),
                step("Band low", "green"),
                step("Band high", "orange"),
            ],
            "applyTo": {"id": "byType", "options": "number"},
        },
    )


BandPanel = TypeVar("BandPanel", timeseries.Panel, stat.Panel)


def with_band(panel: BandPanel) -> BandPanel:
    """Temperatures coloured by the band of the site shown: red below it (too cold for hot
    water), green in it, orange above (the caisson PLC warns a few kelvin higher, then trips);
    on a time series, the band drawn behind the lines."""
    panel = panel.with_target(band_target()).with_transformation(band_transformation())
    if isinstance(panel, timeseries.Panel):
        panel = panel.thresholds_style(
            common_builders.GraphThresholdsStyleConfig().mode(
                common.GraphThresholdsStyleMode.LINE_AND_AREA
            )
        )
    return panel


def stat_panel(
    title: str,
    description: str,
    unit: str,
    targets: Sequence[cogbuilder.Builder[cogvariants.Dataquery]],
    *,
    width: int = 4,
    height: int = 4,
    text: bool = False,
    decimals: int | None = None,
    colors: dashboard_builders.ThresholdsConfig | None = None,
    mappings: Sequence[model.ValueMapping] = (),
    background: bool = False,
    sparkline: bool = False,
) -> stat.Panel:
    """The last value of each series. `text`: the series hold strings (a mode, a list)."""
    reduce = common_builders.ReduceDataOptions().values(False).calcs(["lastNotNull"])
    if text:
        reduce = reduce.fields("/.*/")
    panel = (
        _base(stat.Panel(), title, description, unit, targets, width, height)
        .reduce_options(reduce)
        .graph_mode(common.BigValueGraphMode.AREA if sparkline else common.BigValueGraphMode.NONE)
        .color_mode(
            common.BigValueColorMode.BACKGROUND if background else common.BigValueColorMode.VALUE
        )
        .text_mode(common.BigValueTextMode.AUTO)
        .justify_mode(common.BigValueJustifyMode.AUTO)
        .orientation(common.VizOrientation.AUTO)
        .thresholds(colors if colors is not None else neutral())
    )
    if decimals is not None:
        panel = panel.decimals(decimals)
    if mappings:
        panel = panel.mappings(list(mappings))
    return panel


def gauge_panel(
    title: str,
    description: str,
    unit: str,
    targets: Sequence[cogbuilder.Builder[cogvariants.Dataquery]],
    *,
    colors: dashboard_builders.ThresholdsConfig,
    minimum: float,
    maximum: float,
    width: int = 4,
    height: int = 4,
) -> gauge.Panel:
    return (
        _base(gauge.Panel(), title, description, unit, targets, width, height)
        .reduce_options(common_builders.ReduceDataOptions().values(False).calcs(["lastNotNull"]))
        .min(minimum)
        .max(maximum)
        .thresholds(colors)
        .show_threshold_markers(True)
        .show_threshold_labels(False)
    )


def state_panel(
    title: str,
    description: str,
    targets: Sequence[cogbuilder.Builder[cogvariants.Dataquery]],
    *,
    mappings: Sequence[model.ValueMapping],
    unit: str = NUMBER,
    width: int = 12,
    height: int = 8,
) -> statetimeline.Panel:
    """States over time, one band per series, in the mappings' words and colours."""
    return (
        _base(statetimeline.Panel(), title, description, unit, targets, width, height)
        .mappings(list(mappings))
        .thresholds(neutral())
        .color_scheme(dashboard_builders.FieldColor().mode(model.FieldColorModeId.THRESHOLDS))
        .show_value(common.VisibilityMode.AUTO)
        .merge_values(True)
        .row_height(0.9)
        .fill_opacity(70)
        .line_width(0)
        .legend(bottom_legend())
    )


def bottom_legend() -> common_builders.VizLegendOptions:
    """The legend as a list under the panel."""
    return (
        common_builders.VizLegendOptions()
        .show_legend(True)
        .display_mode(common.LegendDisplayMode.LIST)
        .placement(common.LegendPlacement.BOTTOM)
    )


def table_panel(
    title: str,
    description: str,
    targets: Sequence[cogbuilder.Builder[cogvariants.Dataquery]],
    *,
    unit: str = TEXT,
    width: int = 24,
    height: int = 10,
    sort_by: str | None = None,
    descending: bool = True,
) -> table.Panel:
    """Rows as the query returns them (newest first where the query orders so)."""
    panel = (
        _base(table.Panel(), title, description, unit, targets, width, height)
        .show_header(True)
        .filterable(True)
        .thresholds(neutral())
        .cell_options(common.TableAutoCellOptions())
    )
    if sort_by is not None:
        panel = panel.sort_by(
            [common_builders.TableSortByFieldState().display_name(sort_by).desc(descending)]
        )
    return panel


# ---------------------------------------------------------------------- dashboard pieces


def site_variable() -> dashboard_builders.QueryVariable:
    return (
        dashboard_builders.QueryVariable("site")
        .label("Site")
        .description("The plant: the site's id as its controller writes it (tag `site`).")
        .datasource(DATASOURCE)
        .query('SHOW TAG VALUES WITH KEY = "site"')
        .refresh(model.VariableRefresh.ON_DASHBOARD_LOAD)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .multi(False)
        .include_all(False)
    )


def tag_variable(
    name: str, label: str, description: str, query: str, *, include_all: bool = True
) -> dashboard_builders.QueryVariable:
    """A variable of tag values; several may be chosen (queries match them as a regex)."""
    return (
        dashboard_builders.QueryVariable(name)
        .label(label)
        .description(description)
        .datasource(DATASOURCE)
        .query(query)
        .refresh(model.VariableRefresh.ON_DASHBOARD_LOAD)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(include_all)
    )


def event_annotations() -> list[InfluxQLAnnotation]:
    """Markers on every time panel: the alarms (red) and the changes of plant and PLC modes,
    operator actions and configuration reloads (blue), from the `event` measurement."""
    select = (
        'SELECT "message", "kind", "name", "source", "state" FROM "event" '
        f"WHERE $timeFilter AND {SITE} AND "
    )
    return [
        InfluxQLAnnotation(
            "Alarms",
            select + "\"kind\" = 'alarm'",
            color="red",
            text_column="message",
            tags_column="name,source,state",
        ),
        InfluxQLAnnotation(
            "Modes and operator actions",
            select + "\"kind\" != 'alarm'",
            color="blue",
            text_column="message",
            tags_column="kind,name,source",
        ),
    ]


class Board:
    """A dashboard builder that numbers its panels 1, 2, 3… in the order they are added and
    lays them out left to right, top to bottom (rows of 24 columns)."""

    def __init__(self, uid: str, title: str, description: str, tags: Sequence[str]) -> None:
        self.uid = uid
        self.builder = (
            dashboard_builders.Dashboard(title)
            .uid(uid)
            .description(description)
            .tags(["digital-boiler", *tags])
            .timezone("browser")
            .tooltip(model.DashboardCursorSync.CROSSHAIR)
            .editable()
            .link(
                dashboard_builders.DashboardLink("Digital-boiler dashboards")
                .type(model.DashboardLinkType.DASHBOARDS)
                .tags(["digital-boiler"])
                .as_dropdown(True)
                .include_vars(True)
                .keep_time(True)
                .target_blank(False)
                .icon("external link")
                .tooltip("")
                .url("")
            )
        )
        self._next_id = 1
        self._row_width = 0

    def annotate_events(self) -> Board:
        """The event markers (alarms; modes and operator actions) on every time axis."""
        for annotation in event_annotations():
            self.builder.annotation(annotation)
        return self

    def add(self, *panels: cogbuilder.Builder[model.Panel]) -> Board:
        for panel in panels:
            built = panel.build()
            built.id_val = self._next_id
            self._next_id += 1
            self.builder = self.builder.with_panel(panel)
            assert built.grid_pos is not None
            self._row_width = (self._row_width + built.grid_pos.w) % GRID_WIDTH
        return self

    def build(self) -> model.Dashboard:
        assert self._row_width == 0, f"{self.uid}: the last row is not full"
        return self.builder.build()


# ---------------------------------------------------------------------- queries

# Today's `kpi` day point is stamped at the site's local midnight, at most 25 h ago (a day with a
# daylight-saving change lasts 25 h): "today" panels take the newest day point of that window,
# whatever the dashboard's time range, which may start after midnight.
TODAY = "time > now() - 25h"
EVERY = "GROUP BY time($__interval)"


def where(*conditions: str) -> str:
    return "WHERE $timeFilter AND " + " AND ".join([SITE, *conditions])


def kpi(period: str, fields: dict[str, str], *, aggregate: str = "") -> str:
    """Fields of the `kpi` points of a period (hour or day), named for the legend."""
    columns = ", ".join(
        f'{aggregate}("{field}") AS "{name}"' if aggregate else f'"{field}" AS "{name}"'
        for field, name in fields.items()
    )
    period_is = f"\"period\" = '{period}'"
    return f'SELECT {columns} FROM "kpi" {where(period_is)}'


def today(fields: dict[str, str]) -> str:
    columns = ", ".join(f'last("{field}") AS "{name}"' for field, name in fields.items())
    return f'SELECT {columns} FROM "kpi" WHERE {TODAY} AND {SITE} AND "period" = \'day\''


def dashed() -> dict[str, object]:
    return {"dash": [10, 10], "fill": "dash"}


def threshold_lines() -> common_builders.GraphThresholdsStyleConfig:
    return common_builders.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.DASHED)


def thresholds_json(steps: list[tuple[str, float | None]]) -> dict[str, object]:
    return {
        "mode": "absolute",
        "steps": [{"color": colour, "value": value} for colour, value in steps],
    }


def increments(measurement: str, fields: dict[str, str], condition: str, group: str = "") -> str:
    """Counters since the daemon started, as increments per interval (a restart's reset to 0
    is not a negative increment)."""
    columns = ", ".join(
        f'non_negative_difference(last("{field}")) AS "{name}"' for field, name in fields.items()
    )
    return f'SELECT {columns} FROM "{measurement}" {condition} {EVERY}{group} fill(none)'

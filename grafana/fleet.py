"""Fleet overview: every site in one view (`boiler-fleet-overview`).

One table row per site: its state (plant mode, controller alive, devices answering), supply
against its own band, unacknowledged alarms by priority, today's heat, backup heat, ERF, IT power
and compute energy, where compute can go now and tonight; sorted so that the site needing
attention comes first, each site's name a link into its own dashboards. Above it, the fleet's
totals over the chosen period; below, where the fleet could place compute, and each site's
supply, alarms and IT power over time.

The table is several queries, one per measurement, each grouped by site, joined on the site by
Grafana's transformations (the time columns dropped, then merged). Figures "now" are the last
of the past 5 minutes (every site writes them every cycle, every 10 s or every minute); a site
whose controller is silent keeps its row (from its site_config over the past day) with "Silent"
in the controller column and no current figures.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import barchart, stat, table
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

from grafana.influxql import DATASOURCE
from grafana.panels import (
    CELSIUS,
    COUNT,
    KELVIN,
    KW,
    KWH,
    NUMBER,
    PLANT_MODES,
    TEXT,
    Board,
    bottom_legend,
    color,
    erf_colours,
    neutral,
    override,
    q,
    stat_panel,
    thresholds,
    thresholds_json,
    timeseries_panel,
)

UID = "boiler-fleet-overview"
NOW = "time > now() - 5m"
TODAY = "time > now() - 25h"
EVERY = "GROUP BY time($__interval)"
HOURS = "WHERE $timeFilter AND \"period\" = 'hour'"
# The site's own dashboards, by the site's id (a table cell's value).
SITE_LINKS = (
    ("Plant overview", "boiler-plant-overview"),
    ("Alarms and events", "boiler-alarms-events"),
    ("Energy and KPIs", "boiler-energy-kpis"),
    ("Controller health", "boiler-controller-health"),
    ("Caisson detail", "boiler-caisson-detail"),
)


def board() -> Board:
    board = Board(
        UID,
        "Fleet overview",
        "Every site in one view: the one needing attention on top, each site's state, supply "
        "against its own band, alarms, today's energy, and where compute can go now and "
        "tonight; the fleet's totals over the chosen period.",
        ["fleet"],
    )
    board.builder.time("now-24h", "now").refresh("1m")
    board.add(*totals())
    board.add(sites_table())
    board.add(*compute_room())
    board.add(*over_time())
    return board


# ---------------------------------------------------------------------- fleet totals


def totals() -> list[stat.Panel]:
    def total(
        title: str,
        description: str,
        unit: str,
        query: str,
        colors: dashboard_builders.ThresholdsConfig | None = None,
        decimals: int = 0,
    ) -> stat.Panel:
        return stat_panel(
            title, description, unit, [q(query)], width=4, decimals=decimals, colors=colors
        )

    return [
        total(
            "Heat reused",
            "Heat the fleet's servers delivered to their sites over the chosen period: heat "
            "delivered to the buildings minus the backup boilers' share, summed over every "
            "site's hourly KPIs (whole hours: the hour a range starts in counts from the next).",
            KWH,
            f'SELECT sum("heat_reused_kwh") AS "Heat reused" FROM "kpi" {HOURS}',
        ),
        total(
            "Gas displaced",
            "Gas the backup boilers did not burn because the servers' heat was used instead: "
            "the heat reused at gas-fired sites over the boiler's seasonal efficiency (0.90), "
            "in kWh of gas. Sites on other fuels write oil_, district_heat_ or electric_"
            "avoided_kwh instead (docs/HISTORIAN.md).",
            KWH,
            f'SELECT sum("gas_avoided_kwh") AS "Gas displaced" FROM "kpi" {HOURS}',
        ),
        total(
            "Compute energy",
            "Electricity the fleet's servers turned into paid compute (and heat) over the "
            "chosen period, from the caissons' meters.",
            KWH,
            f'SELECT sum("it_energy_kwh") AS "Compute energy" FROM "kpi" {HOURS}',
        ),
        total(
            "Fleet ERF",
            "Energy reuse factor of the whole fleet over the chosen period: heat reused over "
            "all electricity (servers, pumps, fans), every site together (not a mean of "
            "sites' ERFs: a big site weighs more). 0.9 or more in the heating season is good.",
            NUMBER,
            'SELECT sum("heat_reused_kwh") / (sum("it_energy_kwh") + sum("pump_energy_kwh") + '
            f'sum("fan_energy_kwh")) AS "Fleet ERF" FROM "kpi" {HOURS}',
            decimals=2,
            colors=erf_colours(),
        ),
        total(
            "Backup heat",
            "Heat the backup boilers delivered over the chosen period, fleet-wide: the peaks "
            "the caissons could not cover. High while sites have room for compute (the table "
            "below): compute was placed elsewhere.",
            KWH,
            f'SELECT sum("backup_heat_kwh") AS "Backup heat" FROM "kpi" {HOURS}',
        ),
        total(
            "Heat dumped",
            "Server heat the fleet rejected to the air (dry coolers) or lost over the chosen "
            "period: compute run without a use for its heat. Compute-priority sites dump "
            "heat by design in summer.",
            KWH,
            f'SELECT sum("heat_dumped_kwh") AS "Heat dumped" FROM "kpi" {HOURS}',
        ),
    ]


# ---------------------------------------------------------------------- one row per site

SITE_QUERIES = (
    # A: every site seen in the past day, silent ones too
    'SELECT last("name") AS "Name", last("kind") AS "Kind", last("supply_low_c") AS '
    f'"Band low", last("supply_high_c") AS "Band high" FROM "site_config" WHERE {TODAY} '
    'GROUP BY "site"',
    # B: the controller, alive if it wrote in the past 5 minutes
    'SELECT count("cycles") AS "Controller", last("devices") - last("devices_answering") AS '
    f'"Devices not answering" FROM "controller" WHERE {NOW} GROUP BY "site"',
    # C: the plant
    'SELECT last("mode") AS "Plant mode", last("supply_off_band_k") AS "Supply off band", '
    f'last("it_power_kw") AS "IT power" FROM "plant_control" WHERE {NOW} GROUP BY "site"',
    # D: the supply itself
    f'SELECT last("plant_supply_temp") AS "Supply" FROM "plant_skid" WHERE {NOW} GROUP BY "site"',
    # E: unacknowledged alarms by priority, and a weight that sorts the worst site first
    'SELECT 1000 * last("unack_critical") + 100 * last("unack_high") + 10 * '
    'last("unack_medium") + last("unack_low") AS "Attention", last("unack_critical") AS '
    '"Critical", last("unack_high") AS "High", last("unack_medium") AS "Medium", '
    'last("unack_low") AS "Low", last("suppressed") AS "Suppressed" FROM "alarm_counts" '
    f'WHERE {NOW} GROUP BY "site"',
    # F: today's energy (the newest day point: today's, from local midnight)
    'SELECT last("heat_delivered_kwh") AS "Heat today", last("backup_heat_kwh") AS '
    '"Backup today", last("erf") AS "ERF today", last("it_energy_kwh") AS "Compute today" '
    f'FROM "kpi" WHERE {TODAY} AND "period" = \'day\' GROUP BY "site"',
    # G: where compute can go
    'SELECT last("heat_driven_kw") AS "Room now", last("ceiling_kw") AS "Ceiling now", '
    'last("tonight_heat_driven_kw") AS "Room tonight" FROM "capacity" '
    f'WHERE {NOW} GROUP BY "site"',
)
COLUMNS = (
    "site",
    "Name",
    "Attention",
    "Controller",
    "Devices not answering",
    "Plant mode",
    "Supply",
    "Band low",
    "Band high",
    "Supply off band",
    "Critical",
    "High",
    "Medium",
    "Low",
    "Suppressed",
    "Heat today",
    "Backup today",
    "ERF today",
    "IT power",
    "Compute today",
    "Room now",
    "Ceiling now",
    "Room tonight",
    "Kind",
)
ALIVE = model.RangeMap(
    options=model.DashboardRangeMapOptions(
        from_val=1,
        to=1e18,
        result=model.ValueMappingResult(text="Alive", color="green", index=0),
    )
)
SILENT = model.SpecialValueMap(
    options=model.DashboardSpecialValueMapOptions(
        match=model.SpecialValueMatch.NULL,
        result=model.ValueMappingResult(text="Silent", color="red", index=1),
    )
)


def transformations() -> list[model.DataTransformerConfig]:
    """The queries' tables joined on the site: time columns out, merged on "site", ordered."""
    return [
        model.DataTransformerConfig(
            id_val="filterFieldsByName", options={"exclude": {"pattern": "^Time.*"}}
        ),
        model.DataTransformerConfig(id_val="merge", options={}),
        model.DataTransformerConfig(
            id_val="organize",
            options={
                "indexByName": {name: i for i, name in enumerate(COLUMNS)},
                "renameByName": {"site": "Site"},
                "excludeByName": {},
            },
        ),
    ]


def site_links() -> list[dict[str, object]]:
    return [
        {
            "title": title,
            "url": f"/d/{uid}?var-site=${{__value.raw}}&${{__url_time_range}}",
            "targetBlank": False,
        }
        for title, uid in SITE_LINKS
    ]


def sites_table() -> table.Panel:
    targets: list[cogbuilder.Builder[cogvariants.Dataquery]] = [
        q(query, chr(ord("A") + i), result_format="table") for i, query in enumerate(SITE_QUERIES)
    ]
    panel = (
        table.Panel()
        .title("Sites")
        .description(
            "One row per site, the one needing attention first (Attention: 1000 per "
            "unacknowledged critical alarm, 100 per high, 10 per medium, 1 per low; click "
            "a column to sort by it). Controller: Alive if it wrote in the past 5 minutes, "
            "Silent otherwise (check the edge box). Supply off band: kelvin outside the "
            "site's own band (0 inside; the band is its site file's). Today: since the "
            "site's local midnight. Room now / tonight: the IT power its heat can be used "
            "for (heat-driven), now and on average from 22:00 to 06:00; ceiling: with its "
            "dry cooler. Click a site for its dashboards."
        )
        .datasource(DATASOURCE)
        .unit(NUMBER)
        .targets(targets)
        .span(24)
        .height(11)
        .show_header(True)
        .filterable(True)
        .thresholds(neutral())
        .cell_options(common.TableAutoCellOptions())
        .sort_by([common_builders.TableSortByFieldState().display_name("Attention").desc(True)])
    )
    for transformation in transformations():
        panel = panel.with_transformation(transformation)
    coloured = common.TableColoredBackgroundCellOptions()
    columns: dict[str, dict[str, object]] = {
        "Site": {"links": site_links()},  # "site", renamed by organize
        "Attention": {
            "thresholds": thresholds_json([("green", None), ("yellow", 1), ("red", 100)]),
            "custom.cellOptions": coloured,
        },
        "Controller": {"mappings": [ALIVE, SILENT], "custom.cellOptions": coloured},
        "Devices not answering": {
            "thresholds": thresholds_json([("green", None), ("red", 1)]),
            "custom.cellOptions": coloured,
        },
        "Plant mode": {"mappings": [PLANT_MODES], "custom.cellOptions": coloured, "unit": TEXT},
        "Supply": {"unit": CELSIUS, "decimals": 1},
        "Band low": {"unit": CELSIUS, "decimals": 0},
        "Band high": {"unit": CELSIUS, "decimals": 0},
        "Supply off band": {
            "unit": KELVIN,
            "decimals": 1,
            "thresholds": thresholds_json([("red", None), ("green", -0.5), ("orange", 0.5)]),
            "custom.cellOptions": coloured,
        },
        "Critical": {
            "thresholds": thresholds_json([("green", None), ("red", 1)]),
            "custom.cellOptions": coloured,
        },
        "High": {
            "thresholds": thresholds_json([("green", None), ("orange", 1)]),
            "custom.cellOptions": coloured,
        },
        "Medium": {"thresholds": thresholds_json([("green", None), ("yellow", 1)])},
        "Low": {"unit": COUNT},
        "Suppressed": {"unit": COUNT},
        "Heat today": {"unit": KWH, "decimals": 0},
        "Backup today": {"unit": KWH, "decimals": 0},
        "ERF today": {
            "decimals": 2,
            "thresholds": thresholds_json([("red", None), ("orange", 0.2), ("green", 0.7)]),
            "custom.cellOptions": coloured,
        },
        "IT power": {"unit": KW, "decimals": 1},
        "Compute today": {"unit": KWH, "decimals": 0},
        "Room now": {"unit": KW, "decimals": 1},
        "Ceiling now": {"unit": KW, "decimals": 1},
        "Room tonight": {"unit": KW, "decimals": 1},
        "Kind": {"unit": TEXT},
    }
    for name, properties in columns.items():
        panel = panel.override_by_name(name, override(**_keys(properties)))
    return panel


def _keys(properties: dict[str, object]) -> dict[str, object]:
    """override() takes `custom__cellOptions` for "custom.cellOptions"."""
    return {key.replace(".", "__"): value for key, value in properties.items()}


# ---------------------------------------------------------------------- where compute can go


def compute_room() -> list[cogbuilder.Builder[model.Panel]]:
    fleet_now = (
        'SELECT sum("room") AS "Heat-driven" FROM (SELECT last("heat_driven_kw") AS "room" '
        f'FROM "capacity" WHERE {NOW} GROUP BY "site")'
    )
    headroom = (
        'SELECT sum("room") AS "Headroom" FROM (SELECT last("heat_driven_kw") - '
        f'last("it_power_kw") AS "room" FROM "capacity" WHERE {NOW} GROUP BY "site")'
    )
    tonight = (
        'SELECT sum("room") AS "Tonight" FROM (SELECT last("tonight_heat_driven_kw") AS "room" '
        f'FROM "capacity" WHERE {NOW} GROUP BY "site")'
    )
    per_site = (
        'SELECT last("heat_driven_kw") AS "Now, heat-driven", last("tonight_heat_driven_kw") AS '
        '"Tonight, heat-driven", last("ceiling_kw") AS "Now, with the dry cooler", '
        'last("it_power_kw") AS "Drawn now" FROM "capacity" '
        f'WHERE {NOW} GROUP BY "site"'
    )
    chart = (
        barchart.Panel()
        .title("Where compute can go, per site")
        .description(
            "For each site, the IT power its heat can be used for now and on average tonight "
            "(22:00-06:00 local, from its heating curve, hot-water profile and a persistence "
            "forecast of the outdoor temperature), the most it can take now with its dry "
            "cooler, and what it draws. A scheduler places compute where the heat-driven "
            "figure is above what is drawn (README, A fleet of sites)."
        )
        .datasource(DATASOURCE)
        .unit(KW)
        .targets([q(per_site, result_format="table")])
        .span(24)
        .height(9)
        .x_field("site")
        .show_value(common.VisibilityMode.AUTO)
        .orientation(common.VizOrientation.HORIZONTAL)
        .thresholds(neutral())
        .legend(bottom_legend())
        .with_transformation(
            model.DataTransformerConfig(
                id_val="filterFieldsByName", options={"exclude": {"pattern": "^Time.*"}}
            )
        )
        .override_by_name("Drawn now", override(color=color("text")))
    )
    return [
        stat_panel(
            "Fleet room for compute now",
            "IT power the fleet's heat can be used for now, every site's heat-driven figure "
            "together (each at most what its caissons can run).",
            KW,
            [q(fleet_now)],
            width=8,
            height=4,
            decimals=0,
        ),
        stat_panel(
            "Headroom now",
            "Heat-driven room minus the IT power drawn now, fleet-wide: compute the fleet "
            "could add now with all its heat used (negative: some sites run beyond their "
            "heat, their dry coolers reject it).",
            KW,
            [q(headroom)],
            width=8,
            height=4,
            decimals=0,
            colors=thresholds("orange", (0, "green")),
        ),
        stat_panel(
            "Fleet room for compute tonight",
            "IT power the fleet's heat can be used for tonight (22:00-06:00 at each site), on "
            "average, from each site's outlook.",
            KW,
            [q(tonight)],
            width=8,
            height=4,
            decimals=0,
        ),
        chart,
    ]


# ---------------------------------------------------------------------- over time


def over_time() -> list[cogbuilder.Builder[model.Panel]]:
    return [
        timeseries_panel(
            "Supply off its band, per site",
            "How far each site's plant supply is outside its own band, in kelvin: 0 inside, "
            "negative below (hot water at legionella risk), positive above. A site away from "
            "0 for long: open its plant overview.",
            KELVIN,
            [
                q(
                    'SELECT mean("supply_off_band_k") FROM "plant_control" WHERE $timeFilter '
                    f'{EVERY}, "site" fill(null)',
                    alias="$tag_site",
                )
            ],
            width=8,
        ).thresholds(thresholds("red", (-0.5, "green"), (0.5, "orange"))),
        timeseries_panel(
            "Unacknowledged alarms, per site",
            "Alarms waiting for an operator at each site (every priority). Normal: 0. A site "
            "climbing: open its alarms dashboard.",
            COUNT,
            [
                q(
                    'SELECT max("unacknowledged") FROM "alarm_counts" WHERE $timeFilter '
                    f'{EVERY}, "site" fill(null)',
                    alias="$tag_site",
                )
            ],
            width=8,
        ),
        timeseries_panel(
            "IT power, per site",
            "Compute power drawn at each site, stacked: the fleet's compute. Compare with the "
            "room for compute above.",
            KW,
            [
                q(
                    'SELECT mean("it_power_kw") FROM "plant_control" WHERE $timeFilter '
                    f'{EVERY}, "site" fill(null)',
                    alias="$tag_site",
                )
            ],
            width=8,
            stacked=True,
        ),
    ]

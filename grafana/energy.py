"""Energy and KPIs: hourly and daily energies and ratios (`boiler-energy-kpis`)."""

from __future__ import annotations

from grafana_foundation_sdk.builders import timeseries
from grafana_foundation_sdk.models import common

from grafana.panels import (
    KWH,
    NUMBER,
    PERCENT_UNIT,
    Board,
    color,
    ere_colours,
    erf_colours,
    kpi,
    override,
    pue_colours,
    q,
    site_variable,
    stat_panel,
    timeseries_panel,
    today,
)

HEAT = {
    "heat_reused_kwh": "Reused (caissons)",
    "backup_heat_kwh": "Backup boiler",
    "heat_dumped_kwh": "Dumped",
    "heat_delivered_kwh": "Delivered",
}
ELECTRICITY = {
    "it_energy_kwh": "Compute (IT)",
    "pump_energy_kwh": "Pumps",
    "fan_energy_kwh": "Dry-cooler fans",
}
RATIOS = {"erf": "ERF", "pue": "PUE", "ere": "ERE"}


def _heat_panel(period: str, title: str, width: int = 12) -> timeseries.Panel:
    return (
        timeseries_panel(
            title,
            f"Heat per {period}, where it went: reused in the building from the caissons (green) "
            "and supplied by the backup boiler (orange) stack up to the heat delivered (line); "
            "dumped (red) is caisson heat that reached no one (dry cooler, pipe and tank "
            "losses). Normal in the heating season: mostly green, little red. Much red: heat "
            "is rejected while it could be stored or the compute shed; check the plant modes. "
            f"Each bar is the {period} starting at its time; the current {period} grows.",
            KWH,
            [q(kpi(period, HEAT), alias="$col")],
            bars=True,
            stacked=True,
            width=width,
            height=9,
        )
        .min(0)
        .override_by_name("Reused (caissons)", override(color=color("green")))
        .override_by_name("Backup boiler", override(color=color("orange")))
        .override_by_name("Dumped", override(color=color("red")))
        .override_by_name(
            "Delivered",
            override(
                color=color("text"),
                custom__drawStyle="line",
                custom__lineWidth=2,
                custom__fillOpacity=0,
                custom__showPoints="always",
                custom__stacking={"group": "delivered", "mode": "none"},
            ),
        )
    )


def _electricity_panel(period: str, title: str) -> timeseries.Panel:
    return (
        timeseries_panel(
            title,
            f"Electricity per {period}: compute (the caissons' meters), pumps and dry-cooler "
            "fans (estimated from their speeds). Normal: pumps and fans a few percent of "
            "compute. Fans high for days: the plant rejects heat it could sell or store.",
            KWH,
            [q(kpi(period, ELECTRICITY), alias="$col")],
            bars=True,
            stacked=True,
            height=9,
        )
        .min(0)
        .override_by_name("Compute (IT)", override(color=color("blue")))
        .override_by_name("Pumps", override(color=color("purple")))
        .override_by_name("Dry-cooler fans", override(color=color("yellow")))
    )


def _ratio_panel(period: str, title: str) -> timeseries.Panel:
    return (
        timeseries_panel(
            title,
            f"ERF (heat reused / electricity), PUE (all electricity / compute) and ERE "
            f"((1 - ERF) x PUE) of each {period}. Good heating-season figures: ERF 0.9 or "
            "more, PUE 1.01-1.05, ERE near 0.1. ERF falls in summer when the building needs "
            "little heat.",
            NUMBER,
            [q(kpi(period, RATIOS), alias="$col")],
        )
        .decimals(2)
        .min(0)
        .show_points(common.VisibilityMode.ALWAYS)
        .override_by_name("ERF", override(color=color("green")))
        .override_by_name("PUE", override(color=color("blue")))
        .override_by_name("ERE", override(color=color("orange")))
    )


def board() -> Board:
    board = Board(
        "boiler-energy-kpis",
        "Energy and KPIs",
        "Hourly and daily heat delivered, reused, from the backup boiler and dumped; compute, "
        "pump and fan electricity; ERF, PUE and ERE; time in band. From the controller's `kpi` "
        "points (docs/HISTORIAN.md), each stamped at its hour's or local day's start.",
        ["energy", "kpi"],
    )
    board.builder.time("now-7d/d", "now").refresh("5m").with_variable(site_variable())
    board.annotate_events()

    board.add(
        stat_panel(
            "Energy today",
            "Since local midnight, whatever the time range: heat delivered to the building, "
            "the part reused from the caissons, the backup boiler's share, heat dumped, and "
            "the compute electricity. Normal in winter: reused close to delivered, little "
            "backup or dumped heat.",
            KWH,
            [
                q(
                    today(
                        {
                            "heat_delivered_kwh": "Delivered",
                            "heat_reused_kwh": "Reused",
                            "backup_heat_kwh": "Backup",
                            "heat_dumped_kwh": "Dumped",
                            "it_energy_kwh": "Compute (IT)",
                        }
                    ),
                    alias="$col",
                )
            ],
            decimals=0,
            width=12,
            height=5,
        ),
        stat_panel(
            "ERF today",
            "Energy reuse factor since local midnight: heat reused / electricity. Heating "
            "season: 0.9 or more is good. Red (under 0.2): most of the heat is wasted.",
            NUMBER,
            [q(today({"erf": "ERF"}))],
            decimals=2,
            colors=erf_colours(),
            height=5,
        ),
        stat_panel(
            "PUE today",
            "Power usage effectiveness since local midnight: all electricity / compute. "
            "Normal: 1.01-1.05. Above 1.1: pumps or fans work hard.",
            NUMBER,
            [q(today({"pue": "PUE"}))],
            decimals=3,
            colors=pue_colours(),
            height=5,
        ),
        stat_panel(
            "ERE today",
            "Energy reuse effectiveness since local midnight: (1 - ERF) x PUE, the share of "
            "electricity not turned into useful heat. Lower is better; near 0.1 in winter.",
            NUMBER,
            [q(today({"ere": "ERE"}))],
            decimals=2,
            colors=ere_colours(),
            height=5,
        ),
    )
    board.add(
        _heat_panel("hour", "Heat per hour"),
        _heat_panel("day", "Heat per day"),
    )
    board.add(
        _electricity_panel("hour", "Electricity per hour"),
        _electricity_panel("day", "Electricity per day"),
    )
    board.add(
        _ratio_panel("hour", "ERF, PUE and ERE per hour"),
        _ratio_panel("day", "ERF, PUE and ERE per day"),
    )
    board.add(
        timeseries_panel(
            "Time in band and data coverage per day",
            "Time in band: the share of the day's running time with the plant supply inside "
            "its band (60-70 °C on the demo). Coverage: the share of the day with every "
            "measurement valid; under 100 %, the day's energies miss the invalid stretches "
            "(a device was silent). Normal: both near 100 %.",
            PERCENT_UNIT,
            [
                q(
                    kpi("day", {"in_band_share": "Time in band", "coverage": "Coverage"}),
                    alias="$col",
                )
            ],
        )
        .min(0)
        .max(1)
        .show_points(common.VisibilityMode.ALWAYS),
        stat_panel(
            "Totals over the time range",
            "The sums of the hours that start inside the time range: heat delivered, backup "
            "heat, heat dumped and compute electricity.",
            KWH,
            [
                q(
                    kpi(
                        "hour",
                        {
                            "heat_delivered_kwh": "Delivered",
                            "backup_heat_kwh": "Backup",
                            "heat_dumped_kwh": "Dumped",
                            "it_energy_kwh": "Compute (IT)",
                        },
                        aggregate="sum",
                    ),
                    alias="$col",
                )
            ],
            decimals=0,
            width=12,
            height=8,
        ),
    )
    return board

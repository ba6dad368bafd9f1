"""A year of each bundled site: the supervisor against the staged plant, 12 days a site.

For each site (demo, pool, warehouse) and each month, the 15th (local midnight to midnight) after
two days of warm-up from the plant's initial state (the 13th and 14th: tank, pipes and caissons
settle, the tank's charge follows the weather): 3-day runs whose last day counts. The weather is
the site climate's profile with the month's number as its noise seed; compute demand 100 %. The
year's figures are each day's weighted by the days of its month (ISO/IEC 30134-6's ERF over the
year: heat reused over electricity, both summed).

Same machinery as bench/closed_loop.py (in-process plant, one controller cycle per 1 s step,
a pool of --workers processes). Prints two Markdown tables (the year per site and controller, and
month by month for the supervisor); --json for everything.

    .venv/bin/python bench/year.py [--site demo ...] [--controller staged|supervisor] [--json]
"""

from __future__ import annotations

import argparse
import calendar
import json
import math
import sys
import time
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.closed_loop import (  # noqa: E402
    HOUR,
    BenchScenario,
    RunResult,
    _machine,
    run_all,
)
from controller.config.loader import load_site  # noqa: E402
from simulators.controllers import LABELS  # noqa: E402
from simulators.scenario import Scenario  # noqa: E402

SITES = ("demo", "pool", "warehouse")
CONTROLLERS = ("staged", "supervisor")
YEAR = 2026
WARMUP_DAYS = 2
DAY = 24 * HOUR


def day_of(site: str, month: int) -> BenchScenario:
    """The 15th of `month` at `site`, after WARMUP_DAYS of warm-up."""
    zone = ZoneInfo(load_site(ROOT / "sites" / f"{site}.yaml").config.site.timezone)
    start = datetime(YEAR, month, 15 - WARMUP_DAYS, tzinfo=zone)
    scenario = Scenario.model_validate(
        {
            "name": f"{site}-{month:02d}-15",
            "site": f"{site}.yaml",
            "start": start.isoformat(),
            "duration": f"{WARMUP_DAYS + 1} d",
            "weather": {"kind": "profile", "seed": month},
        }
    )
    heating = month in (1, 2, 3, 4, 10, 11, 12)
    return BenchScenario(
        scenario.name,
        heating_season=heating,
        faults=False,
        scenario=scenario,
        site=site,
        measure_from=WARMUP_DAYS * DAY,
    )


ADDED = (
    "heat_delivered_kwh",
    "heat_reused_kwh",
    "backup_heat_kwh",
    "heat_dumped_kwh",
    "dumped_while_backup_kwh",
    "dumped_while_backup_safety_kwh",
    "it_energy_kwh",
    "electricity_kwh",
    "unmet_demand_kwh",
)


def year_of(days: dict[int, RunResult]) -> dict[str, float]:
    """A site's year from its 12 days, each weighted by the days of its month."""
    totals = dict.fromkeys(ADDED, 0.0)
    delivery = outside = 0.0
    for month, run in days.items():
        weight = calendar.monthrange(YEAR, month)[1]
        figures = run.measured
        for name in ADDED:
            totals[name] += weight * figures[name]
        hours = figures["delivery_hours"]
        delivery += weight * hours
        if not math.isnan(figures["in_band_share"]):
            outside += weight * hours * (1.0 - figures["in_band_share"])
    electricity = totals["electricity_kwh"]
    totals["erf"] = totals["heat_reused_kwh"] / electricity if electricity else 0.0
    totals["in_band_share"] = 1.0 - outside / delivery if delivery else float("nan")
    return totals


def _mwh(value: float) -> str:
    return f"{value / 1000:,.1f}"


def _pct(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{100 * value:.2f} %"


def tables(results: dict[str, dict[str, RunResult]], sites: list[str]) -> str:
    lines = [
        "| site | controller | delivered MWh | reused MWh | backup MWh | dumped MWh | "
        "dumped while backup MWh¹ | IT MWh | ERF | in band |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for site in sites:
        for controller in CONTROLLERS:
            days = {month: results[day_of(site, month).name][controller] for month in range(1, 13)}
            y = year_of(days)
            safety = y["dumped_while_backup_safety_kwh"]
            lines.append(
                f"| {site} | {LABELS[controller]} | {_mwh(y['heat_delivered_kwh'])} | "
                f"{_mwh(y['heat_reused_kwh'])} | {_mwh(y['backup_heat_kwh'])} | "
                f"{_mwh(y['heat_dumped_kwh'])} | {_mwh(y['dumped_while_backup_kwh'])} "
                f"({_mwh(safety)}) | {_mwh(y['it_energy_kwh'])} | {y['erf']:.3f} | "
                f"{_pct(y['in_band_share'])} |"
            )
    lines += [
        "",
        "¹ in brackets: dumped by the plant PLC's thermostat at its hard return limit (the "
        "caissons' safety), counted apart.",
        "",
        "Month by month (the 15th), supervisor | staged plant: in band, backup kWh, dumped while "
        "the backup fired kWh, ERF.",
        "",
        "| site | month | in band | backup kWh | dumped while backup kWh | ERF |",
        "|---|---|---|---|---|---|",
    ]
    for site in sites:
        for month in range(1, 13):
            runs = results[day_of(site, month).name]
            ours, staged = runs["supervisor"].measured, runs["staged"].measured

            def pair(name: str, fmt: str, a: dict[str, float], b: dict[str, float]) -> str:
                return f"{format(a[name], fmt)} \\| {format(b[name], fmt)}"

            lines.append(
                f"| {site} | {calendar.month_abbr[month]} | "
                f"{_pct(ours['in_band_share'])} \\| {_pct(staged['in_band_share'])} | "
                f"{pair('backup_heat_kwh', ',.1f', ours, staged)} | "
                f"{pair('dumped_while_backup_kwh', ',.1f', ours, staged)} | "
                f"{pair('erf', '.3f', ours, staged)} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", action="append", choices=SITES)
    parser.add_argument("--controller", action="append", choices=CONTROLLERS)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--from-json", type=Path, help="print the tables of an earlier --json")
    parser.add_argument(
        "--partial", type=Path, help="append each run's result to this file as it comes in"
    )
    args = parser.parse_args()
    sites = args.site or list(SITES)
    if args.from_json is not None:
        saved = json.loads(args.from_json.read_text())
        machine, wall = saved["machine"], saved["wall_s"]
        results = {
            n: {c: RunResult(**r) for c, r in runs.items()} for n, runs in saved["days"].items()
        }
    else:
        machine = _machine()
        specs = [day_of(site, month) for site in sites for month in range(1, 13)]
        started = time.perf_counter()
        controllers = args.controller or list(CONTROLLERS)
        results, _ = run_all(specs, controllers, None, args.workers, args.partial)
        wall = time.perf_counter() - started
    if args.json:
        days = {n: {c: asdict(r) for c, r in runs.items()} for n, runs in results.items()}
        print(json.dumps({"machine": machine, "wall_s": wall, "days": days}, default=str))
        return
    print(f"A year of each site: {machine}; {wall / 60:.0f} min wall\n")
    print(tables(results, sites))


if __name__ == "__main__":
    main()

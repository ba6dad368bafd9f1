"""`boilerctl sim run`: the simulated plant, in-process."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from controller.config.loader import ConfigError

if TYPE_CHECKING:  # the simulator (numba) loads only when a sim command runs: --help stays quick
    from simulators.plant.kpis import PlantKpis
    from simulators.run import ScenarioRun

PROGRESS_AFTER_S = 1.5  # runs shorter than this show no progress bar

EXIT_CONFIG = 2

# KPI field → (label, unit, format)
_KPI_ROWS: dict[str, tuple[str, str, str]] = {
    "duration_h": ("simulated time", "h", ".1f"),
    "heat_demand_kwh": ("site heat demand", "kWh", ",.0f"),
    "heat_delivered_kwh": ("heat delivered to the site", "kWh", ",.0f"),
    "heat_reused_kwh": ("  of which from the caissons", "kWh", ",.0f"),
    "backup_heat_kwh": ("  of which from the backup boiler", "kWh", ",.0f"),
    "unmet_demand_kwh": ("unmet heat demand", "kWh", ",.1f"),
    "heat_dumped_kwh": ("heat dumped (dry cooler)", "kWh", ",.0f"),
    "it_energy_kwh": ("IT energy (compute sold)", "kWh", ",.0f"),
    "pump_energy_kwh": ("pump energy", "kWh", ",.1f"),
    "fan_energy_kwh": ("dry-cooler fan energy", "kWh", ",.1f"),
    "erf": ("ERF (energy reuse factor)", "", ".3f"),
    "pue": ("PUE", "", ".3f"),
    "ere": ("ERE", "", ".3f"),
    "hours_out_of_band": ("supply outside its band", "h", ".2f"),
    "discomfort_kh": ("supply band violation", "K·h", ".1f"),
    "in_band_share": ("supply in its band, share of running time", "", ".1%"),
    "max_outlet_c": ("hottest caisson outlet", "°C", ".1f"),
    "it_without_flow_s": ("IT power without cooling flow", "s", "g"),
    "min_chip_margin_k": ("minimum chip margin to throttling", "K", ".1f"),
    "plc_trips": ("PLC interlock trips", "", "d"),
}


def run(
    scenario: Annotated[Path, typer.Argument(help="Scenario file (simulators/scenarios/*.yaml).")],
    fast: Annotated[
        bool, typer.Option("--fast", help="In-process, as fast as the machine goes (no sockets).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the KPIs as JSON.")] = False,
) -> None:
    """Run a scenario on the plant model and print its ground-truth KPIs."""
    if not fast:
        typer.echo("sim run: only in-process runs exist so far: add --fast", err=True)
        raise typer.Exit(EXIT_CONFIG)
    _run_and_report(scenario, as_json)


def _run_and_report(path: Path, as_json: bool) -> None:
    from simulators.run import ScenarioRun
    from simulators.scenario import load_scenario

    try:
        loaded = load_scenario(path)
        simulation = ScenarioRun(loaded.scenario, loaded.site.config, loaded.path.parent)
    except ConfigError as error:
        for issue in error.issues:
            typer.echo(str(issue), err=True)
        raise typer.Exit(EXIT_CONFIG) from None
    started = time.perf_counter()
    kpis = _run_with_progress(simulation)
    wall = time.perf_counter() - started
    if as_json:
        typer.echo(
            json.dumps(
                {"scenario": loaded.scenario.name, "wall_s": round(wall, 3), "kpis": asdict(kpis)},
                indent=2,
            )
        )
        return
    console = Console()
    title = f"{loaded.scenario.name}: {loaded.site.config.site.name}"
    console.print(_kpi_table(kpis, title))
    if loaded.scenario.description:
        console.print(loaded.scenario.description, soft_wrap=True)
    speed = kpis.duration_h * 3600 / wall if wall > 0 else float("inf")
    console.print(f"[dim]{kpis.duration_h:g} h simulated in {wall:.1f} s ({speed:,.0f}× real time)")


def _run_with_progress(simulation: ScenarioRun) -> PlantKpis:
    """Runs longer than PROGRESS_AFTER_S show a bar of simulated time on stderr."""
    started = time.perf_counter()
    total_h = simulation.scenario.duration / 3600
    progress: Progress | None = None
    task = None

    def report(steps: int) -> None:
        nonlocal progress, task
        if progress is None:
            if time.perf_counter() - started < PROGRESS_AFTER_S:
                return
            progress = Progress(
                TextColumn("simulating"),
                BarColumn(),
                TextColumn("{task.fields[done]}"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            progress.start()
            task = progress.add_task("sim", total=total_h, done="")
        assert task is not None
        hours = steps * simulation.scenario.step / 3600
        progress.update(task, completed=hours, done=f"{hours:.0f} / {total_h:.0f} h")

    try:
        return simulation.run(progress=report, every=600)
    finally:
        if progress is not None:
            progress.stop()


def _kpi_table(kpis: PlantKpis, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("KPI")
    table.add_column("value", justify="right")
    table.add_column("unit")
    values = asdict(kpis)
    for field, (label, unit, fmt) in _KPI_ROWS.items():
        table.add_row(label, format(values[field], fmt), unit)
    return table

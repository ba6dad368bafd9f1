"""`boilerctl sim run`: the simulated plant, in-process, with a controller in the loop or not."""

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
    from controller.config.loader import LoadedSite
    from simulators.plant.kpis import PlantKpis
    from simulators.run import ScenarioRun

# The controllers of simulators/controllers.py (kept here too: --help must not load them).
CONTROLLERS = ("none", "pi", "staged", "supervisor")

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
    "in_band_share": ("supply in its band, share of heat-delivery time", "", ".1%"),
    "dumped_while_backup_kwh": ("heat dumped while the backup fired", "kWh", ",.1f"),
    "dumped_while_backup_safety_kwh": ("  and at the hard return limit (safety)", "kWh", ",.1f"),
    "max_outlet_c": ("hottest caisson outlet", "°C", ".1f"),
    "it_without_flow_s": ("IT power without cooling flow", "s", "g"),
    "min_chip_margin_k": ("minimum chip margin to throttling", "K", ".1f"),
    "plc_trips": ("PLC interlock trips", "", "d"),
}


def run(
    scenario: Annotated[Path, typer.Argument(help="Scenario file (simulators/scenarios/*.yaml).")],
    controller: Annotated[
        str,
        typer.Option(
            "--controller",
            "-c",
            help="In the loop: none (the PLCs alone), pi (a plain PI per pump), staged (staging "
            "on the load, PI per running pump) or supervisor (this controller).",
        ),
    ] = "none",
    hours: Annotated[
        float | None,
        typer.Option("--hours", min=0.001, help="Run only the scenario's first hours."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the KPIs as JSON.")] = False,
    fast: Annotated[
        bool, typer.Option("--fast", hidden=True, help="In-process (the only way it runs).")
    ] = True,
) -> None:
    """Run a scenario on the plant model, in-process, and print its ground-truth KPIs.

    A commissioning engineer tries a site file change here, with the supervisor (or a
    baseline) in the loop, before deploying it."""
    del fast  # in-process runs are the only ones: the flag stays for older scripts
    if controller not in CONTROLLERS:
        typer.echo(
            f"sim run: no controller {controller!r}: choose one of {', '.join(CONTROLLERS)}",
            err=True,
        )
        raise typer.Exit(EXIT_CONFIG)
    _run_and_report(scenario, controller, hours, as_json)


def _run_and_report(path: Path, controller: str, hours: float | None, as_json: bool) -> None:
    from simulators.run import ScenarioRun
    from simulators.scenario import load_scenario

    try:
        loaded = load_scenario(path)
        scenario = loaded.scenario
        if hours is not None:
            scenario = scenario.model_copy(
                update={"duration": min(hours * 3600, scenario.duration)}
            )
        simulation = ScenarioRun(scenario, loaded.site.config, loaded.path.parent)
    except ConfigError as error:
        for issue in error.issues:
            typer.echo(str(issue), err=True)
        raise typer.Exit(EXIT_CONFIG) from None
    started = time.perf_counter()
    kpis = _run_with_progress(simulation, loaded.site, controller)
    wall = time.perf_counter() - started
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "scenario": loaded.scenario.name,
                    "controller": controller,
                    "wall_s": round(wall, 3),
                    "kpis": asdict(kpis),
                },
                indent=2,
            )
        )
        return
    console = Console()
    title = f"{loaded.scenario.name}: {loaded.site.config.site.name}, controller: {controller}"
    console.print(_kpi_table(kpis, title))
    if loaded.scenario.description:
        console.print(loaded.scenario.description, soft_wrap=True)
    speed = kpis.duration_h * 3600 / wall if wall > 0 else float("inf")
    console.print(f"[dim]{kpis.duration_h:g} h simulated in {wall:.1f} s ({speed:,.0f}× real time)")


def _run_with_progress(simulation: ScenarioRun, site: LoadedSite, controller: str) -> PlantKpis:
    """Runs longer than PROGRESS_AFTER_S show a bar of simulated time on stderr."""
    from simulators.closed_loop import run_closed_loop
    from simulators.controllers import controller_for

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
        if controller == "none":
            return simulation.run(progress=report, every=600)
        loop = controller_for(controller, site)
        result = run_closed_loop(
            simulation, site, loop.controller, loop.refs, progress=report, every=600
        )
        return result.kpis
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
    for caisson, share in kpis.caisson_run_share.items():
        table.add_row(f"{caisson} ran (IT power on)", f"{share:.1%}", "")
    return table

"""`boilerctl`: the maintenance and commissioning command of a digital-boiler site."""

from __future__ import annotations

from typing import Annotated

import typer

from controller.cli import (
    alarms,
    capacity,
    check_config,
    commission,
    demo,
    dump_config,
    historian,
    kpi,
    maps,
    plant,
    run,
    serve,
    sim,
)
from controller.logs import LEVELS, configure_logging

app = typer.Typer(
    name="boilerctl",
    help="Digital-boiler plant: supervisory controller, simulator and maintenance tools.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)
sim_app = typer.Typer(help="The simulated plant.", no_args_is_help=True)
app.add_typer(sim_app, name="sim")
historian_app = typer.Typer(help="The historian's spool: status and export.", no_args_is_help=True)
app.add_typer(historian_app, name="historian")
alarms_app = typer.Typer(
    help="Alarms now (list, ack, shelve: through the daemon), their journal and load.",
    no_args_is_help=True,
)
app.add_typer(alarms_app, name="alarms")
maps_app = typer.Typer(help="Device maps: show and validate.", no_args_is_help=True)
app.add_typer(maps_app, name="maps")
points_app = typer.Typer(
    help="The process image's points, through the daemon.", no_args_is_help=True
)
app.add_typer(points_app, name="points")


@app.callback()
def _options(
    log_level: Annotated[
        str, typer.Option("--log-level", help=f"One of {', '.join(LEVELS)}.", envvar="BOILER_LOG")
    ] = "info",
) -> None:
    if log_level not in LEVELS:
        raise typer.BadParameter(f"one of {', '.join(LEVELS)}", param_hint="--log-level")
    configure_logging(log_level)


app.command("check-config")(check_config.check_config)
app.command("commission")(commission.commission)
app.command("run")(run.run)
app.command("demo")(demo.demo)
sim_app.command("run")(sim.run)
sim_app.command("serve")(serve.serve)
historian_app.command("status")(historian.status)
historian_app.command("export")(historian.export)
app.command("status")(plant.status)
app.command("watch")(plant.watch)
app.command("set")(plant.set_setpoint)
app.command("override")(plant.override)
app.command("release")(plant.release)
app.command("mode")(plant.mode)
app.command("lockout")(plant.lockout)
app.command("unlock")(plant.unlock)
app.command("retry")(plant.retry)
app.command("reset-trip")(plant.reset_trip)
app.command("kpi")(kpi.kpi)
app.command("capacity")(capacity.capacity)
app.command("dump-config")(dump_config.dump_config)
maps_app.command("show")(maps.show)
maps_app.command("validate")(maps.validate)
points_app.command("read")(plant.points_read)
points_app.command("watch")(plant.points_watch)
alarms_app.command("list")(alarms.list_live)
alarms_app.command("ack")(alarms.acknowledge)
alarms_app.command("shelve")(alarms.shelve)
alarms_app.command("unshelve")(alarms.unshelve)
alarms_app.command("journal")(alarms.list_alarms)
alarms_app.command("stats")(alarms.stats)


def main() -> None:
    app()

"""`boilerctl`: the maintenance and commissioning command of a digital-boiler site."""

from __future__ import annotations

import typer

from controller.cli import check_config, sim

app = typer.Typer(
    name="boilerctl",
    help="Digital-boiler plant: supervisory controller, simulator and maintenance tools.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)
sim_app = typer.Typer(help="The simulated plant.", no_args_is_help=True)
app.add_typer(sim_app, name="sim")

app.command("check-config")(check_config.check_config)
app.command("demo")(sim.demo)
sim_app.command("run")(sim.run)


def main() -> None:
    app()

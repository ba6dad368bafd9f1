"""`boilerctl capacity`: where compute can go, from the running daemon (controller/capacity.py):
the IT power the site can take now with all its heat used, the most it can take with its dry
cooler, and the outlook for the next hours and tonight."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from controller.api import models as m
from controller.cli.remote import JsonOption, SiteOption, TokenOption, console, daemon
from controller.cli.views import local


def capacity(site: SiteOption, token_file: TokenOption = None, as_json: JsonOption = False) -> None:
    """IT power the site can take: now, the next 1, 6 and 24 hours, and tonight."""
    with daemon(site, token_file) as client:
        answer = client.get("/capacity", m.Capacity)
        zone = ZoneInfo(client.get("/status", m.Status).timezone)
    if as_json:
        typer.echo(answer.model_dump_json(indent=2))
        return
    table = Table(
        title=f"{answer.site_id}: where compute can go, at {local(answer.at, zone)} "
        f"(outdoor forecast: {answer.forecast})",
        title_justify="left",
    )
    for column in ("when", "heat demand kW", "heat-driven IT kW", "ceiling IT kW"):
        table.add_column(column, justify="left" if column == "when" else "right")
    table.add_row(
        "now", f"{answer.demand_kw:.1f}", *_pair(answer.heat_driven_kw, answer.ceiling_kw)
    )
    for window in answer.outlook:
        table.add_row(f"next {window.hours:g} h", *_window(window))
    night = answer.tonight
    table.add_row(f"tonight from {local(night.start, zone)} ({night.hours:g} h)", *_window(night))
    out = console()
    out.print(table)
    drawn = "unknown" if answer.it_power_kw is None else f"{answer.it_power_kw:.1f} kW"
    out.print(
        f"IT power drawn now {drawn}; caissons able to compute {answer.available_kw:.1f} kW; "
        f"the buffer tank can still take {answer.tank_room_kwh:.1f} kWh"
    )


def _pair(heat_driven: float, ceiling: float) -> tuple[str, str]:
    return f"{heat_driven:.1f}", f"{ceiling:.1f}"


def _window(window: m.CapacityWindow) -> tuple[str, str, str]:
    return (f"{window.demand_kw:.1f}", *_pair(window.heat_driven_kw, window.ceiling_kw))

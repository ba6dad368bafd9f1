"""`boilerctl kpi`: a period's KPIs from the running daemon, and optionally a PNG plot of supply
temperature, heat delivered and IT power over that period (the daemon's minute trend)."""

from __future__ import annotations

from datetime import timedelta, tzinfo
from enum import StrEnum
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from controller.api import models as m
from controller.cli.remote import JsonOption, SiteOption, TokenOption, console, daemon, fail
from controller.cli.views import local, number


class PeriodChoice(StrEnum):
    HOUR = "hour"
    DAY = "day"


SPAN = {PeriodChoice.HOUR: timedelta(hours=1), PeriodChoice.DAY: timedelta(days=1)}
ROWS = (
    ("heat delivered", "heat_delivered_kwh", "kWh", ".1f"),
    ("  of which reused from the servers", "heat_reused_kwh", "kWh", ".1f"),
    ("  of which from the backup boiler", "backup_heat_kwh", "kWh", ".1f"),
    ("heat dumped (dry cooler)", "heat_dumped_kwh", "kWh", ".1f"),
    ("IT energy", "it_energy_kwh", "kWh", ".1f"),
    ("pump energy", "pump_energy_kwh", "kWh", ".2f"),
    ("fan energy", "fan_energy_kwh", "kWh", ".2f"),
    ("ERF (reused / IT)", "erf", "", ".2f"),
    ("PUE", "pue", "", ".3f"),
    ("ERE", "ere", "", ".3f"),
    ("hours computing", "running_h", "h", ".2f"),
    ("supply in band, while computing", "in_band_share", "%", ".0f"),
    ("inputs valid", "coverage", "%", ".0f"),
)


def kpi(
    site: SiteOption,
    period: Annotated[PeriodChoice, typer.Option("--period", help="hour or day.")] = (
        PeriodChoice.DAY
    ),
    ago: Annotated[
        int, typer.Option("--ago", min=0, help="0: the period in progress; 1: the one before...")
    ] = 0,
    png: Annotated[
        Path | None, typer.Option("--png", help="Also plot the period to this PNG file.")
    ] = None,
    token_file: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """KPIs of a period (heat delivered, reused, dumped; energies; ERF, PUE, ERE; time in band)."""
    with daemon(site, token_file) as client:
        answer = client.get("/kpi", m.Kpi)
        zone = ZoneInfo(client.get("/status", m.Status).timezone)
    chosen = _pick(answer, period, ago)
    if png is not None:
        _plot(answer, chosen, SPAN[period], png, zone)
    if as_json:
        typer.echo(chosen.model_dump_json(indent=2))
        return
    console().print(_table(chosen, zone))
    if png is not None:
        typer.echo(f"plot written to {png}")


def _pick(answer: m.Kpi, period: PeriodChoice, ago: int) -> m.KpiView:
    periods = sorted(
        (p for p in answer.periods if p.period == period.value), key=lambda p: p.start, reverse=True
    )
    if ago >= len(periods):
        held = len(periods) - 1
        fail(
            f"--ago {ago}: the daemon holds {held} closed {period.value}(s) before this one "
            "(Grafana has the full record)"
        )
    return periods[ago]


def _table(k: m.KpiView, zone: tzinfo) -> Table:
    state = "closed" if k.closed else "in progress"
    table = Table(
        title=f"KPIs of the {k.period} from {local(k.start, zone)} ({state})", title_justify="left"
    )
    table.add_column("")
    table.add_column("value", justify="right")
    table.add_column("unit")
    for label, field, unit, fmt in ROWS:
        value = getattr(k, field)
        if unit == "%" and value is not None:
            value *= 100
        table.add_row(label, number(value, fmt), unit)
    return table


def _plot(answer: m.Kpi, k: m.KpiView, span: timedelta, path: Path, zone: tzinfo) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display on the edge box
    import matplotlib.pyplot as plt

    points = [p for p in answer.trend if k.start <= p.at < k.start + span]
    if not points:
        fail(f"--png: the daemon has no trend for the {k.period} from {local(k.start, zone)}")
    times = [p.at.astimezone(zone) for p in points]
    figure, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(10, 6), dpi=100)
    top.plot(times, [_nan(p.supply_degc) for p in points], color="tab:red", label="supply")
    low, high = answer.band_degc
    top.axhspan(low, high, color="tab:green", alpha=0.1, label=f"band {low:g}–{high:g} °C")
    top.set_ylabel("°C")
    top.legend(loc="upper left")
    bottom.plot(times, [_nan(p.delivered_kw) for p in points], label="heat delivered")
    bottom.plot(times, [_nan(p.it_power_kw) for p in points], label="IT power")
    bottom.set_ylabel("kW")
    bottom.legend(loc="upper left")
    figure.suptitle(f"{k.period} from {local(k.start, zone)}")
    figure.autofmt_xdate()
    try:
        figure.savefig(path, format="png")
    except OSError as error:
        fail(f"--png {path}: {error.strerror or error}")
    finally:
        plt.close(figure)


def _nan(value: float | None) -> float:
    return float("nan") if value is None else value

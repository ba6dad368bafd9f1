"""How the daemon's answers look on a terminal: one function per view, used by `status`, `watch`,
`points`, `alarms list` and the demo's live table."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, tzinfo

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from controller.api import models as m

__all__ = ["RenderableType", "ViewFactory"]  # and the views below

ViewFactory = Callable[[], RenderableType]
_PRIORITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan"}


def number(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def local(at: datetime | None, zone: tzinfo) -> str:
    return "-" if at is None else at.astimezone(zone).strftime("%d %b %H:%M:%S")


def status_view(status: m.Status, zone: tzinfo, title: str | None = None) -> RenderableType:
    """The site, its plant and caissons, the overrides in force and the devices not well."""
    parts: list[RenderableType] = [caisson_table(status, zone, title), plant_line(status)]
    if status.overrides:
        overrides = Table(title="Operator overrides", title_justify="left")
        for column in ("point", "value", "by", "remaining"):
            overrides.add_column(column)
        for o in status.overrides:
            overrides.add_row(o.point, f"{o.value:g} {o.unit}", o.user, _span(o.remaining_s))
        parts.append(overrides)
    unwell = [d for d in status.devices if d.health != "ok"]
    devices = ", ".join(f"{d.id} {d.health}" for d in unwell) or "all answering"
    a = status.alarms
    parts.append(
        Text(
            f"devices: {devices}\nalarms: {a.annunciated} shown, {a.unacknowledged} "
            f"unacknowledged, {a.shelved} shelved, {a.suppressed} suppressed\n"
            f"cycles {status.cycles}, overruns {status.overruns}"
            + (" — READ-ONLY: nothing is written" if status.read_only else "")
        )
    )
    return Group(*parts)


def plant_line(status: m.Status) -> Text:
    """What an operator looks at first: the building's supply against its band, outdoor, the
    tank, the day's heat, backup heat and ERF, and what is wrong in words."""
    plant = status.plant
    line = Text()
    if plant is not None:
        supply = number(plant.supply_degc, ".1f")
        band = plant.supply_band_degc
        in_band = (
            band is None or plant.supply_degc is None or band[0] <= plant.supply_degc <= band[1]
        )
        line.append("building supply ")
        line.append(f"{supply} °C", style="" if in_band else "bold red")
        if band is not None:
            line.append(f" (band {band[0]:g}–{band[1]:g} °C)")
        line.append(
            f" · outdoor {number(plant.outdoor_degc, '.1f')} °C"
            f" · tank top {number(plant.tank_top_degc, '.1f')} °C,"
            f" bottom {number(plant.tank_bottom_degc, '.1f')} °C\n"
            f"today: heat delivered {number(plant.heat_today_kwh, '.0f')} kWh,"
            f" backup heat {number(plant.backup_today_kwh, '.0f')} kWh,"
            f" ERF {number(plant.erf_today, '.2f')}\n"
        )
    if status.problems:
        line.append("wrong: ", style="bold red")
        line.append("; ".join(status.problems))
    else:
        line.append("nothing wrong", style="green")
    return line


def caisson_table(status: m.Status, zone: tzinfo, title: str | None = None) -> Table:
    plant = status.plant
    setpoints = ", ".join(
        f"{name} {value:g} {status.setpoint_units[name]}"
        for name, value in status.setpoints.items()
    )
    if plant is None:
        caption = "waiting for the first scan"
    else:
        caption = (
            f"plant {plant.control_mode.value}, mode {plant.mode}, "
            f"tank SoC {number(plant.soc_pct, '.0f')} %, load {number(plant.load_kw, '.1f')} kW, "
            f"IT target {plant.it_target_kw:.1f} kW, dry cooler {plant.dry_cooler_pct:.0f} %, "
            f"outlet setpoint in force {number(plant.outlet_setpoint_degc, '.1f')} °C"
            f"\nsetpoints: {setpoints}"
            # what the supervisor carries over a restart: the tank is charged for the next peak
            # while the day's came near capacity, lead and lag rotate on the run hours
            f"\nday's peak load {number(plant.day_peak_kw, '.1f')} kW · run hours: "
            + ", ".join(f"{c.id} {number(c.run_hours, '.1f')}" for c in status.caissons)
        )
    table = Table(
        title=title or f"{status.site} ({status.site_id}) at {local(status.at, zone)}",
        title_justify="left",
        caption=caption,
        caption_justify="left",
    )
    for column in ("caisson", "control", "PLC mode", "interlocks"):
        table.add_column(column)
    for column in ("outlet °C", "inlet °C", "flow L/min", "pump %", "cap kW", "IT kW", "alarms"):
        table.add_column(column, justify="right")
    table.add_column("running")
    for c in status.caissons:
        control = c.control_mode.value
        if c.locked_out and c.control_mode.value != "maintenance":
            control += " (locked out)"
        table.add_row(
            c.id,
            control,
            c.plc_mode or "?",
            ", ".join(c.interlocks) or "-",
            ("≈" if c.outlet_estimated else "") + number(c.outlet_degc, ".1f"),
            number(c.inlet_degc, ".1f"),
            number(c.flow_l_min, ".1f"),
            number(c.pump_pct, ".0f"),
            number(c.cap_kw, ".1f"),
            number(c.it_power_kw, ".1f"),
            str(c.alarms) if c.alarms else "-",
            _running(c),
        )
    return table


def _running(c: m.CaissonView) -> str:
    """yes (drawing a cap), idle (staged on, no cap), standby (its pump stopped), or no."""
    if c.running:
        return "yes"
    if c.pump_standby:
        return "standby"
    return "idle" if c.staged else "no"


def points_table(points: m.Points, zone: tzinfo) -> Table:
    table = Table(title_justify="left")
    for column in ("point", "value", "unit", "quality", "acquired", "w", "description"):
        table.add_column(column, justify="right" if column == "value" else "left")
    for p in points.points:
        quality = p.quality if p.reason is None else f"{p.quality} ({p.reason})"
        table.add_row(
            p.point,
            "-" if p.value is None else _value(p.value),
            p.unit,
            quality,
            local(p.timestamp, zone),
            "w" if p.writable else "",
            p.description,
        )
    return table


def alarms_table(alarms: m.Alarms, zone: tzinfo) -> Table:
    table = Table(title_justify="left")
    for column in ("alarm", "priority", "state", "active", "since", "message"):
        table.add_column(column)
    for a in alarms.alarms:
        state = a.state.replace("_", " ")
        if a.shelved_until is not None:
            state += f" until {local(a.shelved_until, zone)} ({a.shelve_reason})"
        if a.suppressed_by:
            state += f" ({a.suppressed_by})"
        table.add_row(
            a.alarm + (" (first out)" if a.first_out else ""),
            Text(a.priority, style=_PRIORITY_STYLE.get(a.priority, "")),
            state,
            "yes" if a.active else "no",
            local(a.since, zone),
            a.message,
        )
    return table


def _value(value: float | int | bool | str) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _span(seconds: float) -> str:
    seconds = round(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"

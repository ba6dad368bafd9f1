"""`boilerctl alarms`: the alarms now and the operator's actions on them (list, ack, shelve,
unshelve: through the running daemon), and the journal's history and alarm load (journal, stats:
read from the journal file, read-only, safe while the daemon runs and when it does not).
"""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Annotated, Any, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich.console import Console
from rich.table import Table

from controller.alarms.journal import JournalEntry, JournalReader, journal_path
from controller.alarms.metrics import AlarmLoad, alarm_load, transitions_from_entries
from controller.api import models as m
from controller.cli import views
from controller.cli.common import load_site_or_exit, span_seconds
from controller.cli.remote import (
    OptionalReason,
    ReasonOption,
    TokenOption,
    UserOption,
    act,
    build,
    console,
    daemon,
    emit,
    fail,
    parse_duration,
    user_name,
)
from controller.cli.remote import SiteOption as SiteOption_

EXIT_ERROR = 2
MAX_SHELVE = 86400.0  # s: a shelved alarm comes back within a day

SiteOption = Annotated[
    Path | None,
    typer.Option(
        "--site",
        envvar="BOILER_SITE",
        help="Site file: its journal in the state directory.",
    ),
]
JournalOption = Annotated[Path | None, typer.Option("--journal", help="A journal file, instead.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print a JSON object, for scripts.")]

_MARKS = {True: "[green]✓[/]", False: "[red]✗[/]", None: ""}
_SHORT_STATES = {
    "unacknowledged": "unack",
    "acknowledged": "ack",
    "returned_unacknowledged": "returned unack",
    "out_of_service": "out of service",
}


def parse_since(text: str, now: datetime, zone: tzinfo) -> datetime:
    """`--since`: a duration back from `now` (90s, 30m, 24h, 7d, 2w) or a date or time (ISO 8601,
    in `zone` unless it says its offset). ValueError for anything else."""
    seconds = span_seconds(text)
    if seconds is not None:
        span = timedelta(seconds=seconds)
        if span <= timedelta(0):
            raise ValueError(f"--since {text}: the duration must be positive")
        return now - span
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"--since {text}: give a duration (30m, 24h, 7d) or a date (2025-01-31, "
            "2025-01-31T08:00)"
        ) from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=zone)
    if at > now:
        raise ValueError(f"--since {text}: in the future")
    return at


def list_alarms(
    site: SiteOption = None,
    journal: JournalOption = None,
    since: Annotated[
        str, typer.Option("--since", help="How far back: 30m, 24h, 7d, or a date.")
    ] = "24h",
    every: Annotated[
        bool,
        typer.Option(
            "--all", help="Every entry: also mode changes, reloads and other operator actions."
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """The journal's alarm transitions and operator actions on alarms, newest first."""
    path, reader, zone = _open(site, journal, "journal")
    now = datetime.now(UTC)
    start = _since(since, now, zone, "journal")
    with closing(reader):
        entries = reader.entries(since=start, on_alarm=None if every else True)
    entries.reverse()
    if as_json:
        document = {
            "journal": str(path),
            "since": start.isoformat(),
            "entries": [_entry_json(entry) for entry in entries],
        }
        typer.echo(json.dumps(document, indent=2, ensure_ascii=False))
        return
    kind = "Journal" if every else "Alarm journal"
    title = f"{kind} since {_local(start, zone)} ({_zone_name(zone)}): {path}"
    table = Table(title=title, title_justify="left")
    table.add_column("time", no_wrap=True)
    for column in ("source", "name", "priority", "state", "message", "user / reason"):
        table.add_column(column)
    for entry in entries:
        change = ""
        if entry.before or entry.after:
            change = f"{_short(entry.before)} → {_short(entry.after)}"
        if entry.shelved_until is not None:
            change += f" until {_local(entry.shelved_until, zone)}"
        who = " / ".join(part for part in (entry.user, entry.reason) if part)
        table.add_row(
            _local(entry.at, zone),
            entry.source,
            entry.name if entry.on_alarm else f"{entry.kind}: {entry.name}",
            entry.priority,
            change,
            entry.message,
            who,
        )
    console = Console()
    console.print(table)
    if not entries:
        console.print("no entries")


def stats(
    site: SiteOption = None,
    journal: JournalOption = None,
    since: Annotated[
        str, typer.Option("--since", help="The period: 24h, 7d, 30d, or a date.")
    ] = "7d",
    as_json: JsonOption = False,
) -> None:
    """The alarm load of the period against EEMUA 191 / ISA-18.2's targets, and a verdict."""
    path, reader, zone = _open(site, journal, "stats")
    now = datetime.now(UTC)
    start = _since(since, now, zone, "stats")
    with closing(reader):
        # every transition, also before the period: an alarm may have been active since then
        transitions = transitions_from_entries(reader.entries(until=now, on_alarm=True))
    load = alarm_load(transitions, start, now)
    if as_json:
        typer.echo(json.dumps({"journal": str(path), **_load_json(load)}, indent=2))
        return
    console = Console()
    span = f"{_local(start, zone)} → {_local(now, zone)} ({_zone_name(zone)})"
    title = f"Alarm load {span}: {path}"
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("target (EEMUA 191 / ISA-18.2)")
    table.add_column("")
    for check in load.checks:
        table.add_row(check.metric, check.value, check.target, _MARKS[check.met])
    console.print(table)
    if load.top10:
        top = Table(title="Most frequent alarms", title_justify="left")
        top.add_column("alarm")
        top.add_column("annunciations", justify="right")
        top.add_column("share", justify="right")
        for alarm, count in load.top10:
            top.add_row(str(alarm), str(count), f"{count / load.annunciations:.0%}")
        console.print(top)
    for label, alarms in (("chattering", load.chattering), ("stale", load.stale)):
        if alarms:
            console.print(f"{label}: {', '.join(map(str, alarms))}")
    for flood in load.flood_episodes:
        console.print(
            f"flood {_local(flood.start, zone)} → {_local(flood.end, zone)}, "
            f"up to {flood.peak} alarms in 10 minutes"
        )
    if load.acceptable:
        console.print("[green]acceptable[/]: within the targets")
    else:
        console.print("[red]not acceptable[/]: " + "; ".join(load.reasons))


# ---------------------------------------------------------------------- helpers


def _open(
    site: Path | None, journal: Path | None, command: str
) -> tuple[Path, JournalReader, tzinfo]:
    if (site is None) == (journal is None):
        _fail(command, "give --site FILE or --journal FILE")
    zone: tzinfo = UTC
    if site is not None:
        loaded = load_site_or_exit(site)
        path = journal_path(loaded, os.environ)
        try:
            zone = ZoneInfo(loaded.config.site.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            _fail(command, f"{site}: unknown timezone {loaded.config.site.timezone!r}")
    else:
        assert journal is not None
        path = journal
    try:
        return path, JournalReader(path), zone
    except FileNotFoundError as error:
        _fail(command, str(error))
    except sqlite3.Error as error:
        _fail(command, f"{path}: not a readable journal ({error})")


def _since(text: str, now: datetime, zone: tzinfo, command: str) -> datetime:
    try:
        return parse_since(text, now, zone)
    except ValueError as error:
        _fail(command, str(error))


def _fail(command: str, message: str) -> NoReturn:
    typer.echo(f"alarms {command}: {message}", err=True)
    raise typer.Exit(EXIT_ERROR)


def _local(at: datetime, zone: tzinfo) -> str:
    return at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def _zone_name(zone: tzinfo) -> str:
    return zone.key if isinstance(zone, ZoneInfo) else "UTC"


def _short(state: str) -> str:
    """An alarm state as the table shows it (other values as they are)."""
    return _SHORT_STATES.get(state, state)


def _entry_json(entry: JournalEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": entry.at.isoformat(),
        "kind": entry.kind,
        "source": entry.source,
        "name": entry.name,
        "priority": entry.priority,
        "before": entry.before,
        "after": entry.after,
        "message": entry.message,
        "user": entry.user,
        "reason": entry.reason,
        "on_alarm": entry.on_alarm,
        "shelved_until": None if entry.shelved_until is None else entry.shelved_until.isoformat(),
    }


def _load_json(load: AlarmLoad) -> dict[str, Any]:
    return {
        "start": load.start.isoformat(),
        "end": load.end.isoformat(),
        "annunciations": load.annunciations,
        "per_10_min_mean": load.per_10_min_mean,
        "per_10_min_max": load.per_10_min_max,
        "floods": load.floods,
        "flood_episodes": [
            {"start": f.start.isoformat(), "end": f.end.isoformat(), "peak_10_min": f.peak}
            for f in load.flood_episodes
        ],
        "time_in_flood_s": load.time_in_flood.total_seconds(),
        "time_in_flood_share": load.time_in_flood_share,
        "peak_hourly": load.peak_hourly,
        "chattering": [str(alarm) for alarm in load.chattering],
        "stale": [str(alarm) for alarm in load.stale],
        "top10": [{"alarm": str(alarm), "count": count} for alarm, count in load.top10],
        "top10_share": load.top10_share,
        "priorities": {p.value: share for p, share in load.priorities.items()},
        "acceptable": load.acceptable,
        "reasons": load.reasons,
        "checks": [
            {"metric": c.metric, "value": c.value, "target": c.target, "met": c.met}
            for c in load.checks
        ],
    }


# ---------------------------------------------------------------- live, through the daemon


def list_live(
    site: SiteOption_,
    every: Annotated[bool, typer.Option("--all", help="Also the alarms in normal.")] = False,
    token_file: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """The alarms now (not normal: shown, shelved, suppressed, out of service), from the daemon."""
    with daemon(site, token_file) as client:
        answer = client.get("/alarms", m.Alarms, {"all": "true" if every else "false"})
        zone = ZoneInfo(client.get("/status", m.Status).timezone)
    emit(answer, as_json, lambda: console().print(views.alarms_table(answer, zone)))


def acknowledge(
    site: SiteOption_,
    alarms: Annotated[
        list[str], typer.Argument(help="SOURCE.NAME of each alarm, or a pattern: 'c2.*', '*'.")
    ],
    reason: OptionalReason = "",
    user: UserOption = None,
    token_file: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Acknowledge alarms (and reset latched ones whose condition has gone)."""
    request = build(m.AckRequest, user=user_name(user), reason=reason, alarms=alarms)
    act("/alarms/ack", request, site, token_file, as_json)


def shelve(
    site: SiteOption_,
    alarm: Annotated[str, typer.Argument(help="SOURCE.NAME of the alarm.")],
    lease: Annotated[str, typer.Option("--for", help="How long: 30m, 8h (at most 1 d).")],
    reason: ReasonOption,
    user: UserOption = None,
    token_file: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Hide a nuisance alarm for a while (critical alarms cannot be shelved)."""
    seconds = parse_duration(lease, "--for")
    if seconds > MAX_SHELVE:
        fail(f"--for {lease}: an alarm is shelved for at most {MAX_SHELVE / 3600:g} h")
    request = build(
        m.ShelveRequest, user=user_name(user), reason=reason, alarm=alarm, for_s=seconds
    )
    act("/alarms/shelve", request, site, token_file, as_json)


def unshelve(
    site: SiteOption_,
    alarm: Annotated[str, typer.Argument(help="SOURCE.NAME of the alarm.")],
    reason: OptionalReason = "",
    user: UserOption = None,
    token_file: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a shelved alarm again now."""
    request = build(m.UnshelveRequest, user=user_name(user), reason=reason, alarm=alarm)
    act("/alarms/unshelve", request, site, token_file, as_json)

"""`boilerctl commission --site FILE`: check that the maps match the real devices before the daemon
controls the plant.

Each device (or those named with --device) is reached through the controller's own drivers and
every point read once: raw registers, decoded value, unit, quality, and a verdict against the
point's expected range; for a value outside it, the common mapping mistakes that would explain it
(word order, address, scale, sign). OPC-UA devices: the session's security and the server's
certificate too. `--write-test` writes each writable point's present value back and reads it back,
each write journaled. Refused while a daemon runs for the site: never a second master.

Exit codes: 0 every device passed, 1 some did not, 2 bad input, 5 a daemon runs for the site.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Final, NoReturn

import typer
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from controller.api.endpoint import address_path
from controller.cli.common import load_site_or_exit
from controller.cli.remote import JsonOption, UserOption, console, fail, user_name
from controller.cli.run import AddressOption, EndpointOption, parse_addresses, parse_endpoints
from controller.commissioning.report import Commissioning, DeviceCheck, PointCheck, Reading
from controller.config.loader import LoadedSite
from controller.config.maps import ModbusMap, OpcUaMap
from controller.config.site import ModbusDevice

EXIT_FAILED: Final = 1
EXIT_BAD_INPUT: Final = 2
EXIT_DAEMON_RUNS: Final = 5
_VERDICT_STYLE: Final = {
    "plausible": "green",
    "unchecked": "",
    "implausible": "bold red",
    "unreadable": "bold red",
}


def commission(
    site: Annotated[
        Path, typer.Option("--site", envvar="BOILER_SITE", help="Site file to commission.")
    ],
    device: Annotated[
        list[str] | None,
        typer.Option("--device", help="Only this device (repeatable); default: every device."),
    ] = None,
    write_test: Annotated[
        bool,
        typer.Option(
            "--write-test",
            help="Also write each writable point's present value back and read it back "
            "(needs --reason; every write is journaled).",
        ),
    ] = False,
    reason: Annotated[
        str, typer.Option("--reason", "-r", help="Why, for the journal (needed by --write-test).")
    ] = "",
    user: UserOption = None,
    as_json: JsonOption = False,
    address: AddressOption = None,
    endpoint: EndpointOption = None,
) -> None:
    """Commission a site: every device reached and every point read through the controller's own
    drivers, judged against what a healthy plant shows, before the daemon runs it.

    Exit code 0 when every device passed, 1 when some did not, 2 on bad input, 5 when a daemon
    runs for the site (stop it first: commissioning must never be a second master).
    """
    loaded = load_site_or_exit(site)
    try:
        addresses = parse_addresses(loaded, address or [])
        endpoints = parse_endpoints(loaded, endpoint or [])
    except ValueError as error:
        fail(str(error), EXIT_BAD_INPUT)
    known = [d.id for d in loaded.config.devices]
    chosen = list(dict.fromkeys(device or known))
    unknown = [d for d in chosen if d not in known]
    if unknown:
        fail(
            f"no device {unknown[0]!r} in {site} (its devices: {', '.join(known)})",
            EXIT_BAD_INPUT,
        )
    if write_test and not reason.strip():
        fail(
            "--write-test writes to the devices: say why with --reason "
            "(kept in the journal with each write)",
            EXIT_BAD_INPUT,
        )
    who = user_name(user)
    with _exclusive(loaded) as journal:
        record = asyncio.run(
            _commission(loaded, chosen, addresses, endpoints, write_test, who, reason, journal)
        )
        journal.summary(record)
    if as_json:
        typer.echo(record.model_dump_json(indent=2))
    else:
        console().print(_view(record))
    if not record.passed:
        raise typer.Exit(EXIT_FAILED)


class _Journal:
    """The site's journal while commissioning runs: held (so no daemon can start meanwhile), and
    where each test write and the run itself are recorded."""

    def __init__(self, site: LoadedSite, user: str, reason: str) -> None:
        from controller.alarms.journal import Journal, journal_path

        self.path = journal_path(site, os.environ)
        self.journal = Journal(self.path)
        self.user = user
        self.reason = reason

    def write(
        self, device: str, point: str, value: Reading, back: Reading, passed: bool, message: str
    ) -> None:
        self.journal.record(
            "operator",
            datetime.now(UTC),
            device,
            f"write test {point}",
            f"{device}.{point} write test: {message}",
            before=repr(value),
            after=repr(back),
            user=self.user,
            reason=self.reason,
        )

    def summary(self, record: Commissioning) -> None:
        failed = [d.id for d in record.devices if not d.passed]
        self.journal.record(
            "commission",
            record.at,
            "commission",
            "commission",
            f"commissioning of {len(record.devices)} device(s)"
            + (f": {', '.join(failed)} did not pass" if failed else ": every device passed"),
            after="passed" if record.passed else "failed",
            user=record.user,
            reason=self.reason,
        )

    def close(self) -> None:
        self.journal.close()


@contextmanager
def _exclusive(site: LoadedSite) -> Iterator[_Journal]:
    """The site's journal, held for the run; exit 5 when a daemon runs for the site (it holds
    the journal, or its address file names a live process)."""
    from controller.alarms.journal import JournalBusyError

    slug = site.config.site.slug
    running = _daemon_pid(site)
    if running is not None:
        _daemon_runs(slug, f"pid {running}")
    try:
        journal = _Journal(site, "", "")
    except JournalBusyError:
        _daemon_runs(slug, "it holds the site's journal")
    except OSError as error:
        fail(
            f"cannot open the site's journal: {error.strerror or error} "
            "(run as the daemon's user, or root)",
            EXIT_BAD_INPUT,
        )
    try:
        yield journal
    finally:
        journal.close()


def _daemon_runs(slug: str, how: str) -> NoReturn:
    fail(
        f"a daemon runs for site {slug} ({how}): commissioning must never be a "
        "second master on the devices; stop the daemon first (systemctl stop, or Ctrl-C)",
        EXIT_DAEMON_RUNS,
    )


def _daemon_pid(site: LoadedSite) -> int | None:
    """The pid in the daemon's address file, if that process is alive."""
    try:
        document = json.loads(address_path(site, os.environ).read_text())
        pid = int(document["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None  # left behind by a killed daemon
    except PermissionError:
        return pid  # alive, another user's
    return pid


async def _commission(
    site: LoadedSite,
    devices: list[str],
    addresses: dict[str, tuple[str, int]],
    endpoints: dict[str, str],
    write_test: bool,
    user: str,
    reason: str,
    journal: _Journal,
) -> Commissioning:
    from controller.commissioning.modbus import check_modbus
    from controller.commissioning.opcua import check_opcua

    journal.user, journal.reason = user, reason
    at = datetime.now(UTC)
    writes = journal.write if write_test else None
    checks: list[DeviceCheck] = []
    for device_id in devices:  # one at a time: a gateway may take one connection only
        configured = site.config.device(device_id)
        device_map = site.device_map(device_id)
        if isinstance(configured, ModbusDevice):
            assert isinstance(device_map, ModbusMap)
            host, port = addresses.get(device_id, (configured.host, configured.port))
            checks.append(await check_modbus(configured, device_map, host, port, write_test=writes))
        else:
            assert isinstance(device_map, OpcUaMap)
            if device_id in endpoints:
                configured = configured.model_copy(update={"endpoint": endpoints[device_id]})
            checks.append(
                await check_opcua(configured, device_map, site.path.parent, write_test=writes)
            )
    return Commissioning(
        site=site.config.site.name,
        site_file=str(site.path),
        at=at,
        user=user,
        write_test=write_test,
        devices=checks,
        passed=all(c.passed for c in checks),
    )


# ---------------------------------------------------------------- the terminal


def _view(record: Commissioning) -> RenderableType:
    parts: list[RenderableType] = []
    for device in record.devices:
        parts += [_header(device), *_tables(device), Text("")]
    passed = sum(d.passed for d in record.devices)
    failed = ", ".join(d.id for d in record.devices if not d.passed)
    verdict = Text(
        f"{passed} of {len(record.devices)} device(s) passed"
        + ("" if record.passed else f"; {failed} did not"),
        style="bold green" if record.passed else "bold red",
    )
    return Group(*parts, verdict)


def _header(device: DeviceCheck) -> Text:
    line = Text(f"{device.id}", style="bold")
    line.append(f"  {device.protocol} {device.address}  ")
    line.append("PASSED" if device.passed else "FAILED", style="green" if device.passed else "red")
    details = []
    if device.round_trip_ms is not None:
        details.append(f"round trip {device.round_trip_ms:.1f} ms")
    if device.security is not None:
        details.append(f"security {device.security}")
    if device.server_certificate_sha1 is not None:
        details.append(f"server certificate SHA-1 {device.server_certificate_sha1}")
    if details:
        line.append("\n  " + ", ".join(details))
    if device.error is not None:
        line.append(f"\n  {device.error}", style="red")
    return line


def _tables(device: DeviceCheck) -> list[Table]:
    tables = []
    if device.points:
        points = Table(title_justify="left")
        for column in ("point", "where", "raw", "value", "unit", "quality", "expected", "verdict"):
            points.add_column(column, justify="right" if column == "value" else "left")
        for p in device.points:
            points.add_row(
                p.point,
                p.where,
                " ".join(p.raw),
                _value(p.value),
                p.unit,
                p.quality if p.reason is None else f"{p.quality} ({p.reason})",
                "" if p.expect is None else f"{p.expect[0]:g}..{p.expect[1]:g}",
                _verdict(p),
            )
        tables.append(points)
    if device.writes:
        writes = Table(title="write test", title_justify="left")
        for column in ("point", "value", "read back", "result"):
            writes.add_column(column)
        for w in device.writes:
            writes.add_row(
                w.point,
                _value(w.value),
                _value(w.read_back),
                Text(w.message, style="" if w.passed else "bold red"),
            )
        tables.append(writes)
    return tables


def _verdict(point: PointCheck) -> Text:
    text = point.verdict if not point.explanation else f"{point.verdict}: {point.explanation}"
    return Text(text, style=_VERDICT_STYLE.get(point.verdict, ""))


def _value(value: Reading) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)

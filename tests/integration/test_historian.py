"""The historian against real servers: the demo plant's data into InfluxDB 1.6.7 (v1 API) and
VictoriaMetrics (v2 API, through influxdb-client), across a database outage, a SIGKILL of the
daemon in the middle of a batch, and a refusal of our credentials.

"Produced" is what the daemon handed its writer (a spy on `submit()`), or, for the killed daemon,
what its spool file held when it died; "arrived" is read back with InfluxQL or VictoriaMetrics'
export API by tests/tsdb.py, which shares no code with the historian. A point is its series
(measurement and tags) and timestamp: the database keeps one per pair, so equal sets mean every
point arrived exactly once.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from structlog.testing import capture_logs

from controller.alarms.engine import AlarmEngine
from controller.alarms.model import AlarmId, State
from controller.config.loader import LoadedSite, load_site
from controller.config.site import Historian, InfluxV1Target, InfluxV2Target, SecretSource
from controller.daemon import Daemon
from controller.historian.spool import SpoolReader
from controller.historian.targets import V1Target, V2Target
from controller.historian.writer import Condition, HistorianWriter, WriterSettings
from simulators.devices.plant_server import SimulatedPlant
from simulators.lockstep import field_overrides
from tests.integration.test_daemon import BOILERCTL, start_daemon
from tests.plant_helpers import SITES, site_copy
from tests.tsdb import InfluxV1Server, running_influx, running_victoria

START = datetime(2026, 1, 15, 6, 0, tzinfo=UTC)
DB = "boiler"
WALL_LIMIT_S = 180.0  # a bound for each wait (a hang fails; not a timing assertion)

Point = tuple[str, frozenset[tuple[str, str]], int]  # measurement, tags, ns


def parse(line: str) -> tuple[str, frozenset[tuple[str, str]], list[str], int]:
    """(measurement, tags, field names, ns) of one of our lines (our keys hold no escapes)."""
    key, rest = line.split(" ", 1)
    assert "\\" not in key, line
    fields, stamp = rest.rsplit(" ", 1)
    measurement, *tags = key.split(",")
    names = [part.split("=", 1)[0] for part in _split_fields(fields)]
    pairs = frozenset((t.split("=", 1)[0], t.split("=", 1)[1]) for t in tags)
    return measurement, pairs, names, int(stamp)


def _split_fields(fields: str) -> list[str]:
    parts, current, quoted, escaped = [], "", False, False
    for char in fields:
        if escaped:
            current, escaped = current + char, False
        elif char == "\\":
            current, escaped = current + char, True
        elif char == '"':
            current, quoted = current + char, not quoted
        elif char == "," and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def points(lines: Iterable[str]) -> set[Point]:
    return {(m, tags, ns) for m, tags, _, ns in map(parse, lines)}


def stored(influx: InfluxV1Server, db: str = DB) -> set[Point]:
    found: set[Point] = set()
    for series in influx.query(db, "SHOW MEASUREMENTS"):
        for (measurement,) in series["values"]:
            for tags, ns in influx.timestamps(db, measurement):
                kept = frozenset((k, v) for k, v in tags.items() if v)
                found.add((measurement, kept, ns))
    return found


def with_historian(site: LoadedSite, **historian: object) -> LoadedSite:
    config = site.config.model_copy(update={"historian": Historian.model_validate(historian)})
    return replace(site, config=config)


async def until(condition: Callable[[], bool], what: str, limit: float = WALL_LIMIT_S) -> None:
    try:
        async with asyncio.timeout(limit):
            while not condition():
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"not seen within {limit} s: {what}") from None


class Spy:
    """Every line a writer was given."""

    def __init__(self, writer: HistorianWriter) -> None:
        self.lines: list[str] = []
        submit = writer.submit

        def spying(lines: Sequence[str]) -> None:
            self.lines.extend(lines)
            submit(lines)

        writer.submit = spying  # type: ignore[method-assign]


async def run_demo_daemon(
    site: LoadedSite, spool: Path, during: Callable[[Daemon], object]
) -> tuple[Daemon, Spy]:
    """The demo plant and an in-process daemon; `during(daemon)` is awaited while they run."""
    plant = SimulatedPlant(site, start=START, speed=1.0, ephemeral_ports=True)
    await plant.start()
    try:
        addresses, endpoints = field_overrides(plant)
        daemon = Daemon(site, addresses=addresses, endpoints=endpoints, spool=spool, environ={})
        spy = Spy(daemon.writer)
        await daemon.start()
        try:
            outcome = during(daemon)
            if asyncio.iscoroutine(outcome):
                await outcome
        finally:
            await daemon.stop()
    finally:
        await plant.stop()
    return daemon, spy


async def test_the_demo_plant_lands_in_influxdb_v1_and_in_a_v2_endpoint_point_for_point(
    tmp_path: Path,
) -> None:
    demo = load_site(SITES / "demo.yaml")
    with running_influx(tmp_path) as influx, running_victoria(tmp_path) as victoria:
        influx.create_database(DB)
        site = with_historian(
            demo,
            target={"api": "v1", "url": influx.url, "database": DB},
            batch_age="1 s",
        )

        async def a_while(daemon: Daemon) -> None:
            await until(lambda: daemon.cycle.cycles >= 25, "25 cycles")

        daemon, spy = await run_demo_daemon(site, tmp_path / "v1.spool", a_while)
        produced = points(spy.lines)
        assert daemon.writer.depth.points == 0  # all sent at stop
        assert stored(influx) == produced
        measurements = {m for m, _, _ in produced}
        assert {
            "caisson_skid",
            "compute_manager",
            "plant_skid",
            "heat_meter",
            "plant_control",
            "caisson_control",
            "controller",
            "device_health",
            "kpi",
            "event",
            "register_writes",
        } <= measurements

        # The same lines through influxdb-client's async client to a v2 endpoint.
        target = V2Target(
            InfluxV2Target(api="v2", url=victoria.url, org="boilers", bucket="demo"), token=None
        )
        writer = HistorianWriter(tmp_path / "v2.spool", 50e6, target, WriterSettings(500, 0.5))
        await writer.start()
        writer.submit(spy.lines)
        await until(lambda: writer.depth.points == 0 and writer.stats.sent_points > 0, "sent")
        await writer.stop()
        # VictoriaMetrics keeps a sample per field, named measurement_field, in milliseconds.
        expected = {
            (f"{m}_{name}", tags, ns // 1_000_000)
            for m, tags, names, ns in map(parse, spy.lines)
            for name in names
        }
        arrived = {
            (dict(labels)["__name__"], frozenset(kv for kv in labels if kv[0] != "__name__"), ms)
            for labels, ms in victoria.series_timestamps('{site="residence-les-tilleuls-demo"}')
        }
        assert arrived == expected


async def test_a_database_outage_of_a_minute_loses_nothing_and_duplicates_nothing(
    tmp_path: Path,
) -> None:
    demo = load_site(SITES / "demo.yaml")
    with running_influx(tmp_path) as influx:
        influx.create_database(DB)
        site = with_historian(
            demo, target={"api": "v1", "url": influx.url, "database": DB}, batch_age="1 s"
        )
        waited: dict[str, int] = {}

        async def outage(daemon: Daemon) -> None:
            writer = daemon.writer
            # The alarm counts from the first failed send, which may come a few seconds into
            # the outage on a busy machine: alarm after 20 s so that a 60 s outage raises it.
            writer.settings = replace(writer.settings, unreachable_alarm=20.0)
            await until(lambda: writer.stats.sent_points > 0, "first points delivered")
            influx.stop()
            outage_started = daemon.cycle.cycles
            await asyncio.sleep(60)
            waited["backlog"] = writer.depth.points
            waited["cycles"] = daemon.cycle.cycles - outage_started
            influx.start()
            await until(lambda: writer.depth.points == 0, "the backlog delivered")
            await until(lambda: Condition.UNREACHABLE not in writer.active, "condition gone")
            alarm = AlarmId("controller", str(Condition.UNREACHABLE))
            assert daemon.alarms is not None
            engine = daemon.alarms.engine
            await until(
                lambda: _state(engine, alarm) is State.RETURNED_UNACKNOWLEDGED, "alarm returned"
            )

        with capture_logs() as logs:
            _, spy = await run_demo_daemon(site, tmp_path / "outage.spool", outage)
        assert waited["cycles"] >= 30  # the plant ran on through the outage
        assert waited["backlog"] > 0  # and its data waited in the spool
        assert stored(influx) == points(spy.lines)
        # The alarm was raised during the outage and cleared after; both events arrived.
        events = influx.query(
            DB, "SELECT state FROM event WHERE \"name\" = 'historian_unreachable'"
        )
        states = [row[1] for row in events[0]["values"]]
        assert states == ["raised", "cleared"]
        # One warning when sending first fails and one alarm, not a line per retry (the suite
        # shows warnings and errors only).
        assert [e["event"] for e in logs if e["event"].startswith("historian_")] == [
            "historian_send_failed",
            "historian_unreachable",
        ]


async def test_wrong_credentials_alarm_keep_the_data_and_do_not_retry_in_a_loop(
    tmp_path: Path,
) -> None:
    lines = [f"probe,site=t value={i}.0 {1_700_000_000_000_000_000 + i}" for i in range(100)]
    with running_influx(tmp_path, auth=True, password="right-password") as influx:
        influx.create_database(DB)
        config = InfluxV1Target(
            api="v1",
            url=influx.url,
            database=DB,
            username="admin",
            password=SecretSource(env="INFLUX_PASSWORD"),
        )
        raised: list[tuple[Condition, bool, str]] = []
        slept: list[float] = []

        async def sleep(seconds: float) -> None:
            slept.append(seconds)
            await asyncio.sleep(0.2)  # a few real retries' worth, whatever the back-off says

        spool = tmp_path / "auth.spool"
        wrong = HistorianWriter(
            spool,
            50e6,
            V1Target(config, password="wrong-password"),
            WriterSettings(batch_points=1000, batch_age=0.1),
            on_condition=lambda c, active, message: raised.append((c, active, message)),
            sleep=sleep,
        )
        with capture_logs() as logs:
            await wrong.start()
            wrong.submit(lines)
            await until(lambda: len(slept) >= 3, "three refused attempts")
            await wrong.stop()
        assert raised[0][:2] == (Condition.REFUSED, True)
        message = raised[0][2]
        assert "HTTP 401" in message
        assert "authorization failed" in message
        assert slept[:3] == [60.0, 120.0, 240.0]  # a minute, then doubling: no tight loop
        assert wrong.depth.points == len(lines)  # kept
        refused = [e for e in logs if e["event"] == "historian_refused"]
        assert len(refused) == 1  # logged once, not per attempt
        assert "wrong-password" not in repr(logs)
        assert influx.count_points(DB, "probe") == 0

        # The operator fixes the password: the same spool delivers everything.
        right = HistorianWriter(
            spool, 50e6, V1Target(config, password="right-password"), WriterSettings(1000, 0.1)
        )
        await right.start()
        await until(lambda: right.depth.points == 0, "delivered")
        await right.stop()
        assert influx.count_points(DB, "probe") == len(lines)


async def test_a_daemon_killed_in_the_middle_of_a_batch_loses_nothing(tmp_path: Path) -> None:
    """SIGKILL while a batch is on the wire (the database read it and has not answered): the
    restarted daemon sends everything its spool held, into the real database."""
    received = asyncio.Event()

    async def black_hole(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        received.set()
        await asyncio.sleep(3600)  # never answers

    hole = await asyncio.start_server(black_hole, "127.0.0.1", 0)
    hole_port = hole.sockets[0].getsockname()[1]
    demo = load_site(SITES / "demo.yaml")
    plant = SimulatedPlant(demo, start=START, speed=1.0, ephemeral_ports=True)
    spool = tmp_path / "site.spool"
    log = tmp_path / "daemon.log"

    def site_file(url: str) -> Path:
        return site_copy(
            tmp_path,
            f"historian:\n  spool: {spool}\n  batch_age: 2 s\n"
            f"  target: {{api: v1, url: '{url}', database: {DB}, timeout: 10 min}}\n",
        )

    await plant.start()
    first = second = None
    try:
        with running_influx(tmp_path) as influx:
            influx.create_database(DB)
            first = await start_daemon(plant, log, site_file(f"http://127.0.0.1:{hole_port}"))
            await asyncio.wait_for(received.wait(), WALL_LIMIT_S)
            await asyncio.sleep(3)  # more cycles spooled behind the batch on the wire
            first.kill()
            await first.wait()
            reader = SpoolReader(spool)
            left = list(reader.lines())
            reader.close()
            assert len(left) > 100

            second = await start_daemon(plant, log, site_file(influx.url))
            await until(lambda: influx.count_points(DB, "controller") > 0, "delivery")
            await asyncio.sleep(3)
            second.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(second.wait(), WALL_LIMIT_S) == 0
            arrived = stored(influx)
    finally:
        for process in (first, second):
            if process is not None and process.returncode is None:
                process.kill()
                await process.wait()
        hole.close()
        await plant.stop()
    missing = points(left) - arrived
    assert not missing, sorted(missing)[:5]
    # The first daemon's data goes back to its start: its first control line is among them.
    first_control = min(ns for m, _, ns in points(left) if m == "plant_control")
    assert (
        "plant_control",
        frozenset({("site", "residence-les-tilleuls-demo")}),
        first_control,
    ) in (arrived)
    assert "Traceback" not in log.read_text()


def test_export_prints_the_spool_as_line_protocol(tmp_path: Path) -> None:
    """Covered with the demo (tests/integration/test_cli_demo.py); here the refusals."""
    result = subprocess.run(
        [str(BOILERCTL), "historian", "export", "--spool", str(tmp_path / "none.spool")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"historian export: {tmp_path / 'none.spool'}: no spool file"


def test_the_demo_writes_to_an_influxdb_it_is_given(tmp_path: Path) -> None:
    with running_influx(tmp_path) as influx:
        influx.create_database("demo")
        result = subprocess.run(
            [
                str(BOILERCTL),
                "--log-level",
                "warning",
                "demo",
                "--duration",
                "60",
                "--influx",
                influx.url,
                "--database",
                "demo",
            ],
            capture_output=True,
            text=True,
            timeout=WALL_LIMIT_S,
            check=False,
            env={**os.environ, "STATE_DIRECTORY": str(tmp_path / "state")},
        )
        assert result.returncode == 0, result.stderr
        sent = re.search(
            r"^historian: (\d+) sent to influxdb-v1 (\S+) db=demo$", result.stdout, re.M
        )
        assert sent is not None, result.stdout
        assert sent.group(2) == influx.url
        assert sum(len(influx.timestamps("demo", m)) for m in ("caisson_skid", "kpi")) > 0
        assert len(stored(influx, "demo")) <= int(sent.group(1))  # KPI points rewrite themselves
        assert "Traceback" not in result.stderr


async def test_a_missing_database_is_refused_alarmed_and_the_data_waits_for_it(
    tmp_path: Path,
) -> None:
    lines = [f"probe,site=t value={i}.0 {1_700_000_000_000_000_000 + i}" for i in range(50)]
    with running_influx(tmp_path) as influx:
        config = InfluxV1Target(api="v1", url=influx.url, database="not_yet")
        raised: list[tuple[Condition, bool, str]] = []
        slept: list[float] = []

        async def sleep(seconds: float) -> None:
            slept.append(seconds)
            await asyncio.sleep(3600)  # the next attempt would be much later

        spool = tmp_path / "missing.spool"
        writer = HistorianWriter(
            spool,
            50e6,
            V1Target(config),
            WriterSettings(batch_points=1000, batch_age=0.1),
            on_condition=lambda c, active, message: raised.append((c, active, message)),
            sleep=sleep,
        )
        await writer.start()
        writer.submit(lines)
        await until(lambda: bool(slept), "the refusal")
        await writer.stop()
        assert [(c, active) for c, active, _ in raised] == [(Condition.REFUSED, True)]
        assert "HTTP 404: database not found" in raised[0][2]
        assert writer.depth.points == len(lines)

        influx.create_database("not_yet")
        again = HistorianWriter(spool, 50e6, V1Target(config), WriterSettings(1000, 0.1))
        await again.start()
        await until(lambda: again.depth.points == 0, "delivered")
        await again.stop()
        assert influx.count_points("not_yet", "probe") == len(lines)


def _state(engine: AlarmEngine, alarm: AlarmId) -> State:
    return next(s.state for s in engine.status() if s.id == alarm)

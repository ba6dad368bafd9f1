"""A fleet of sites in one database: the demo, pool and warehouse daemons (`boilerctl run`, each
on its own simulated plant at ×5) writing at once into one real InfluxDB 1.6.7 (v1 API, each
site with its own write-only user, read back by Grafana's read-only one) and, in a second run,
one real VictoriaMetrics (v2 API). The pool's daemon is killed (SIGKILL) and restarted in the
middle; the warehouse's c2 pump trips.

"Produced" is what each daemon sent: a recording proxy per site sits between the daemon and
the database (the daemon knows only the proxy's URL); "arrived" is read back from the database
by tests/tsdb.py. A point is its series and timestamp, so equal sets mean every point arrived
exactly once. The fleet dashboard's queries and the band alert's run on the InfluxDB run's data,
first (its figures "now" are those of the past 5 minutes).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from controller.config.loader import LoadedSite, load_site
from controller.historian.lineprotocol import nanoseconds
from simulators.devices.plant_server import SimulatedPlant
from tests.grafana_queries import Query, alert_queries, dashboard_queries, expand, load_dashboards
from tests.integration.test_daemon import BOILERCTL, override_args
from tests.integration.test_historian import Point, parse, points, stored
from tests.plant_helpers import site_copy
from tests.tsdb import (
    InfluxV1Server,
    VictoriaMetricsServer,
    http_request,
    running_influx,
    running_victoria,
)

NAMES = ("demo", "pool", "warehouse")
KILLED = "pool"
TRIPPED = ("warehouse", "c2")  # a pump trips on this caisson during the InfluxDB run
SPEED = 5.0  # plant seconds per second
START = datetime(2026, 1, 15, 6, 0, tzinfo=UTC)
DB = "fleet"
ADMIN = ("admin", "admin-password")
GRAFANA = ("grafana", "grafana-password")
WALL_LIMIT_S = 240.0  # a bound for each wait (a hang fails; not a timing assertion)
# The pool runs on its own band here: panels and alert rules must use each site's.
POOL_SETPOINTS = "setpoints: {outlet: 62 degC, supply_low: 58 degC, supply_high: 68 degC}"


async def until(condition: Callable[[], bool], what: str) -> None:
    try:
        async with asyncio.timeout(WALL_LIMIT_S):
            while not condition():
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"not seen within {WALL_LIMIT_S} s: {what}") from None


# ---------------------------------------------------------------------- the recording proxy


class RecordingProxy:
    """An HTTP proxy to the database that keeps every line it was given."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.lines: list[str] = []
        self.paths: set[str] = set()  # the database's endpoints the daemon used
        self.refused = 0  # answers other than 2xx
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        self._session = aiohttp.ClientSession(auto_decompress=False)

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _forward(self, request: web.Request) -> web.Response:
        body = await request.read()  # aiohttp has undone the daemon's gzip
        self.lines += [line for line in body.decode().splitlines() if line]
        self.paths.add(request.path)
        dropped = ("host", "content-length", "content-encoding")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in dropped}
        assert self._session is not None
        async with self._session.request(
            request.method, self.upstream + request.path_qs, data=body, headers=headers
        ) as answer:
            payload = await answer.read()
            if answer.status >= 300:
                self.refused += 1
            return web.Response(
                status=answer.status, body=payload, content_type=answer.content_type
            )

    def count(self, measurement: str) -> int:
        return sum(line.startswith(f"{measurement},") for line in self.lines)


# ---------------------------------------------------------------------- the sites


@dataclass
class Site:
    name: str
    base: Path  # the site copy without a historian target (the plant's)
    loaded: LoadedSite
    plant: SimulatedPlant

    @property
    def slug(self) -> str:
        return self.loaded.config.site.slug


@dataclass
class Daemon:
    site: Site
    path: Path  # its site file for this run
    env: dict[str, str]
    log: Path
    proxy: RecordingProxy
    process: asyncio.subprocess.Process | None = None
    pids: list[int] = field(default_factory=list)

    async def start(self) -> None:
        with self.log.open("a") as stderr:
            self.process = await asyncio.create_subprocess_exec(
                str(BOILERCTL),
                "--log-level",
                "warning",
                "run",
                "--site",
                str(self.path),
                "--speed",
                str(SPEED),
                *override_args(self.site.plant),
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env=self.env,
            )
        self.pids.append(self.process.pid)

    async def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        await self.process.wait()

    async def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.process.wait(), WALL_LIMIT_S)

    def boilerctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BOILERCTL), *args, "--site", str(self.path)],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=60,
            check=False,
        )


@pytest.fixture(scope="module")
async def sites(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, Site]]:
    """The three plants, on free ports, running at ×SPEED for the whole module."""
    root = tmp_path_factory.mktemp("fleet-sites")
    made: dict[str, Site] = {}
    try:
        for name in NAMES:
            (root / name).mkdir()
            path = site_copy(root / name, name=name)
            if name == KILLED:
                text = path.read_text()
                old = "setpoints: {outlet: 65 degC, supply_low: 60 degC, supply_high: 70 degC}"
                assert old in text
                path.write_text(text.replace(old, POOL_SETPOINTS))
            loaded = load_site(path)
            plant = SimulatedPlant(loaded, start=START, speed=SPEED, ephemeral_ports=True)
            made[name] = Site(name, path, loaded, plant)
            await plant.start()
        yield made
    finally:
        for site in made.values():
            await site.plant.stop()


def delivered(daemon: Daemon, measurement: str, count: int) -> Callable[[], bool]:
    """The daemon's proxy has passed on `count` lines of `measurement` or more."""
    return lambda: daemon.proxy.count(measurement) >= count


@dataclass
class FleetRun:
    daemons: dict[str, Daemon]  # by site name
    outage: tuple[int, int]  # ns: the killed daemon's kill and restart
    exits: dict[str, int]
    capacity: dict[str, dict[str, Any]]  # `boilerctl capacity --json` of each, before the stop
    span_ms: tuple[int, int]  # the run's wall clock

    def produced(self, name: str) -> set[Point]:
        return points(self.daemons[name].proxy.lines)


async def run_fleet(
    sites: dict[str, Site],
    directory: Path,
    upstream: str,
    target: Callable[[Site, Path], str],
    during: Callable[[], None] = lambda: None,
) -> FleetRun:
    """The three daemons writing through their proxies to `upstream`; the pool's killed and
    restarted; `during()` once they all deliver."""
    started_ms = int(time.time() * 1000)
    state = directory / "state"
    daemons: dict[str, Daemon] = {}
    for name, site in sites.items():
        own = directory / name
        own.mkdir(parents=True)
        proxy = RecordingProxy(upstream)
        await proxy.start()
        text = site.base.read_text() + "\n" + target(site, own).replace("PROXY", proxy.url)
        path = own / "site.yaml"
        path.write_text(text)
        env = {**os.environ, "STATE_DIRECTORY": str(state)}
        daemons[name] = Daemon(site, path, env, own / "daemon.log", proxy)
    try:
        for daemon in daemons.values():
            await daemon.start()
        for name, d in daemons.items():
            await until(delivered(d, "controller", 2), f"{name} delivering")
        during()
        killed = daemons[KILLED]
        others = [d for name, d in daemons.items() if name != KILLED]
        seen = {d.site.name: d.proxy.count("controller") for d in others}
        await killed.kill()
        kill_ns = time.time_ns()
        for d in others:  # the others carry on through the pool's outage
            await until(
                delivered(d, "controller", seen[d.site.name] + 3), f"{d.site.name} in the outage"
            )
        restart_ns = time.time_ns()
        before = killed.proxy.count("controller")
        capacities = {name: d.proxy.count("capacity") for name, d in daemons.items()}
        await killed.start()
        await until(delivered(killed, "controller", before + 3), "the pool back")
        for name, d in daemons.items():  # a minute more of every site: capacity, KPIs...
            await until(delivered(d, "capacity", capacities[name] + 2), f"{name}'s capacity")
        capacity = {}
        for name, d in daemons.items():
            answer = d.boilerctl("capacity", "--json")
            assert answer.returncode == 0, answer.stderr
            capacity[name] = json.loads(answer.stdout)
        exits = {name: await d.stop() for name, d in daemons.items()}
    finally:
        for d in daemons.values():
            if d.process is not None and d.process.returncode is None:
                d.process.kill()
                await d.process.wait()
        for d in daemons.values():
            await d.proxy.stop()
    for d in daemons.values():
        assert "Traceback" not in d.log.read_text(), d.log.read_text()[-3000:]
    return FleetRun(
        daemons, (kill_ns, restart_ns), exits, capacity, (started_ms, int(time.time() * 1000))
    )


# ---------------------------------------------------------------------- InfluxDB 1.x


def influx_statement(influx: InfluxV1Server, statement: str) -> None:
    influx.query(None, statement)


@pytest.fixture(scope="module")
def influx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxV1Server]:
    directory = tmp_path_factory.mktemp("fleet-influx")
    with running_influx(directory, auth=True, username=ADMIN[0], password=ADMIN[1]) as server:
        server.create_database(DB)
        # README, "A fleet of sites": one write-only user per site, a read-only one for Grafana.
        for name in NAMES:
            influx_statement(server, f"CREATE USER \"site_{name}\" WITH PASSWORD '{name}-secret'")
            influx_statement(server, f'GRANT WRITE ON "{DB}" TO "site_{name}"')
        influx_statement(server, f"CREATE USER \"{GRAFANA[0]}\" WITH PASSWORD '{GRAFANA[1]}'")
        influx_statement(server, f'GRANT READ ON "{DB}" TO "{GRAFANA[0]}"')
        yield server


def v1_target(site: Site, directory: Path) -> str:
    secret = directory / "influx-password"
    secret.write_text(f"{site.name}-secret\n")
    secret.chmod(0o600)
    return (
        "historian:\n"
        f"  spool: {directory / 'site.spool'}\n"
        "  batch_age: 1 s\n"
        f"  target: {{api: v1, url: 'PROXY', database: {DB}, username: site_{site.name},\n"
        f"           password: {{file: {secret}}}}}\n"
    )


@pytest.fixture(scope="module")
async def influx_run(
    sites: dict[str, Site], influx: InfluxV1Server, tmp_path_factory: pytest.TempPathFactory
) -> FleetRun:
    name, caisson = TRIPPED
    index = [c.id for c in sites[name].loaded.config.caissons].index(caisson)
    model = sites[name].plant.model
    try:
        return await run_fleet(
            sites,
            tmp_path_factory.mktemp("fleet-v1"),
            influx.url,
            v1_target,
            during=lambda: model.trip_pump(index, True),
        )
    finally:
        model.trip_pump(index, False)


def grafana_query(influx: InfluxV1Server, influxql: str) -> list[dict[str, Any]]:
    """InfluxQL as Grafana's read-only user runs it."""
    result = http_request(
        f"{influx.url}/query",
        method="POST",
        params={"q": influxql, "db": DB, "u": GRAFANA[0], "p": GRAFANA[1], "epoch": "ns"},
    )
    assert result.status == 200, result.text
    series: list[dict[str, Any]] = []
    for statement in result.json().get("results", []):
        assert "error" not in statement, f"{influxql}: {statement['error']}"
        series.extend(statement.get("series", []))
    return series


# ---------------------------------------------------------------------- the fleet dashboard


FLEET_UID = "boiler-fleet-overview"


def fleet_queries() -> list[Query]:
    (board,) = [d for d in load_dashboards() if d["uid"] == FLEET_UID]
    return list(dashboard_queries(board))


@pytest.mark.timeout(900)  # the first to run: it waits for the three sites' run
@pytest.mark.parametrize("query", fleet_queries(), ids=lambda q: q.source)
def test_every_fleet_dashboard_query_gives_every_site(
    influx_run: FleetRun, influx: InfluxV1Server, sites: dict[str, Site], query: Query
) -> None:
    start_ms, end_ms = influx_run.span_ms
    # The run, and the day before: hourly and daily KPI points are stamped at their period's
    # start, before the run began.
    text = expand(
        query.text,
        start_ms=start_ms - 25 * 3600 * 1000,
        end_ms=end_ms,
        interval_s=10,
        variables={},
    )
    series = grafana_query(influx, text)
    assert series, f"{query.source}: no series for {text}"
    for one in series:
        assert one.get("values"), f"{query.source}: a series without rows ({text})"
        columns = one["columns"]
        assert any(
            v is not None
            for row in one["values"]
            for v, c in zip(row, columns, strict=True)
            if c != "time"
        ), f"{query.source}: only nulls ({text})"
    if re.search(r'GROUP BY [^()]*"site"[^()]*$', text):  # one row or line per site
        found = {s.get("tags", {}).get("site") for s in series}
        assert found == {s.slug for s in sites.values()}, f"{query.source}: {found}"


def test_the_supply_alert_compares_each_site_with_its_own_band(
    influx_run: FleetRun, influx: InfluxV1Server, sites: dict[str, Site]
) -> None:
    queries = {
        q.source.rsplit(" / ", 1)[1]: q
        for q in alert_queries()
        if q.source.startswith("alert rule boiler-supply-out-of-band")
    }
    now = int(time.time() * 1000)
    bands: dict[str, list[float]] = {}
    for ref in ("L", "H"):
        query = queries[ref]
        span = query.relative_seconds or 900
        start = now - span * 1000
        text = expand(query.text, start_ms=start, end_ms=now, interval_s=60, variables={})
        for series in grafana_query(influx, text):
            values = [row[1] for row in series["values"] if row[1] is not None]
            bands.setdefault(series["tags"]["site"], []).append(values[-1])
    assert bands == {
        s.slug: [s.loaded.config.setpoints.supply_low, s.loaded.config.setpoints.supply_high]
        for s in sites.values()
    }
    assert bands[sites[KILLED].slug] == [58.0, 68.0]  # the pool's own band, not 60-70


@pytest.mark.timeout(900)
def test_every_point_of_every_site_arrives_once_in_influxdb_tagged_with_its_site(
    influx_run: FleetRun, influx: InfluxV1Server, sites: dict[str, Site]
) -> None:
    arrived = stored(influx, DB)
    for name, daemon in influx_run.daemons.items():
        slug = sites[name].slug
        assert daemon.proxy.refused == 0, name  # its write-only user may write
        assert daemon.proxy.paths == {"/write"}, name  # the v1 API
        produced = influx_run.produced(name)
        assert produced, name
        # Every line a daemon sent carries its own site, and nothing else does.
        assert {dict(tags).get("site") for _, tags, _ in produced} == {slug}
        mine = {p for p in arrived if dict(p[1]).get("site") == slug}
        missing = produced - mine
        assert not missing, f"{name}: {sorted(missing)[:3]}"
        assert mine == produced, f"{name}: {sorted(mine - produced)[:3]} never sent"
    slugs = {s.slug for s in sites.values()}
    assert {dict(tags).get("site") for _, tags, _ in arrived} == slugs  # nobody else's points
    assert set(influx_run.exits.values()) == {0}


def test_the_pool_s_outage_does_not_disturb_the_other_sites(
    influx_run: FleetRun, influx: InfluxV1Server, sites: dict[str, Site]
) -> None:
    kill_ns, restart_ns = influx_run.outage
    for name in NAMES:
        slug = sites[name].slug
        rows = influx.query(
            DB, f'SELECT "cycles" FROM "controller" WHERE "site" = \'{slug}\' ORDER BY time'
        )[0]["values"]
        stamps = [t for t, _ in rows]
        cycles = [c for _, c in rows]
        during = [t for t in stamps if kill_ns < t < restart_ns]
        daemon = influx_run.daemons[name]
        if name == KILLED:
            assert len(daemon.pids) == 2  # killed, started again
            assert not during  # silent while it was down
            back = next(i for i, t in enumerate(stamps) if t > restart_ns)
            assert cycles[back] < cycles[back - 1]  # counting from 0 again
            assert stamps[-1] > restart_ns
        else:
            assert len(daemon.pids) == 1
            assert len(during) >= 3  # wrote all through the outage
            assert cycles == sorted(cycles)  # never restarted
            assert cycles[-1] > cycles[0]
        alarms = influx.query(
            DB,
            f'SELECT "state" FROM "event" WHERE "site" = \'{slug}\' AND "name" =~ /^historian_/',
        )
        assert alarms == [], f"{name}: the historian raised {alarms}"
    # The killed daemon's journal knows it started twice; the others', once.
    for name, daemon in influx_run.daemons.items():
        answer = daemon.boilerctl("alarms", "journal", "--all", "--json")
        assert answer.returncode == 0, answer.stderr
        starts = [e for e in json.loads(answer.stdout)["entries"] if e["name"] == "configuration"]
        assert len(starts) == (2 if name == KILLED else 1), name


def test_site_users_only_write_and_grafana_only_reads(influx: InfluxV1Server) -> None:
    probe = "probe,site=nobody value=1 1700000000000000000"
    refused = http_request(
        f"{influx.url}/query",
        method="POST",
        params={"q": 'SELECT * FROM "kpi" LIMIT 1', "db": DB, "u": "site_demo", "p": "demo-secret"},
    )
    assert refused.status == 403
    assert "not authorized" in refused.text
    written = http_request(
        f"{influx.url}/write",
        method="POST",
        params={"db": DB, "u": GRAFANA[0], "p": GRAFANA[1]},
        body=probe.encode(),
    )
    assert written.status == 403
    assert grafana_query(influx, 'SELECT count("cycles") FROM "controller"')  # it can read
    elsewhere = http_request(
        f"{influx.url}/query",
        method="POST",
        params={"q": "CREATE DATABASE other", "u": "site_demo", "p": "demo-secret"},
    )
    assert elsewhere.status == 403


def test_each_site_writes_its_band_setpoints_alarm_counts_and_capacity(
    influx_run: FleetRun, influx: InfluxV1Server, sites: dict[str, Site]
) -> None:
    for name, site in sites.items():
        slug = site.slug
        where = f"WHERE \"site\" = '{slug}'"
        (config,) = grafana_query(
            influx,
            'SELECT last("supply_low_c"), last("supply_high_c"), last("outlet_setpoint_c"), '
            f'last("fuel") FROM "site_config" {where}',
        )
        setpoints = site.loaded.config.setpoints
        assert config["values"][0][1:] == [
            setpoints.supply_low,
            setpoints.supply_high,
            setpoints.outlet,
            "gas",
        ]
        (counts,) = grafana_query(
            influx,
            'SELECT last("unack_high"), last("suppressed") FROM "alarm_counts" ' + where,
        )
        unack_high, suppressed = counts["values"][0][1:]
        if name == TRIPPED[0]:  # the pump trip: one alarm, its consequences suppressed
            assert unack_high >= 1
            assert suppressed >= 1
            raised = grafana_query(
                influx,
                f'SELECT "state" FROM "event" {where} AND "source" = \'{TRIPPED[1]}\' '
                'AND "state" = \'raised\' GROUP BY "name"',
            )
            names = {s["tags"]["name"] for s in raised}
            assert "pump_fault" in names
            # Its consequences (sites/warehouse.yaml: suppresses) are never annunciated. (On a
            # loaded machine the test's plants may answer late: a device's comm_lost is no
            # consequence of the trip.)
            assert not names & {"flow_lo", "interlock_active", "pump_speed_deviation"}, names
        (capacity,) = grafana_query(
            influx,
            'SELECT "heat_driven_kw", "ceiling_kw", "available_kw", "heat_driven_6h_kw", '
            f'"tonight_ceiling_kw", "forecast" FROM "capacity" {where} ORDER BY time DESC LIMIT 1',
        )
        _, heat_driven, ceiling, available, six_hours, tonight, forecast = capacity["values"][0]
        assert 0 <= heat_driven <= ceiling <= available
        assert 0 <= six_hours <= available
        assert 0 <= tonight <= available
        assert forecast == "persistence"
        site_file = site.loaded.config
        nominal = [site_file.caisson_type(c).it_power / 1e3 for c in site_file.caissons]
        tripped = TRIPPED[1] if name == TRIPPED[0] else None
        could = sum(p for c, p in zip(site_file.caissons, nominal, strict=True) if c.id != tripped)
        assert 0 < available <= could + 1e-9  # a tripped caisson cannot compute: left out
        # The local API gives the scheduler the same figures as the database.
        api = influx_run.capacity[name]
        assert api["site_id"] == slug
        assert [w["hours"] for w in api["outlook"]] == [1, 6, 24]
        assert len(api["steps"]) == 96
        at_ns = nanoseconds(datetime.fromisoformat(api["at"]))
        (same,) = grafana_query(
            influx,
            'SELECT "heat_driven_kw", "ceiling_kw", "heat_driven_6h_kw", "tonight_heat_driven_kw" '
            f'FROM "capacity" {where} AND time = {at_ns}',
        )
        _, *stored_figures = same["values"][0]
        six, tonight_window = api["outlook"][1], api["tonight"]
        assert stored_figures == pytest.approx(
            [
                api["heat_driven_kw"],
                api["ceiling_kw"],
                six["heat_driven_kw"],
                tonight_window["heat_driven_kw"],
            ]
        )


# ---------------------------------------------------------------------- VictoriaMetrics (v2)


@pytest.fixture(scope="module")
def victoria(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaMetricsServer]:
    with running_victoria(tmp_path_factory.mktemp("fleet-victoria")) as server:
        yield server


def v2_target(site: Site, directory: Path) -> str:
    token = directory / "influx-token"
    token.write_text(f"{site.name}-write-token\n")
    token.chmod(0o600)
    return (
        "historian:\n"
        f"  spool: {directory / 'site.spool'}\n"
        "  batch_age: 1 s\n"
        f"  target: {{api: v2, url: 'PROXY', org: boilers, bucket: {DB},\n"
        f"           token: {{file: {token}}}}}\n"
    )


@pytest.mark.timeout(900)
async def test_every_point_of_every_site_arrives_once_in_victoriametrics_over_v2(
    sites: dict[str, Site], victoria: VictoriaMetricsServer, tmp_path: Path
) -> None:
    run = await run_fleet(sites, tmp_path, victoria.url, v2_target)
    assert set(run.exits.values()) == {0}
    for name, daemon in run.daemons.items():
        slug = sites[name].slug
        assert daemon.proxy.refused == 0, name
        assert daemon.proxy.paths == {"/api/v2/write"}, name
        expected = {
            (f"{m}_{field_name}", tags, ns // 1_000_000)
            for m, tags, names, ns in map(parse, daemon.proxy.lines)
            for field_name in names
        }
        assert {dict(tags).get("site") for _, tags, _ in expected} == {slug}
        arrived = {
            (dict(labels)["__name__"], frozenset(kv for kv in labels if kv[0] != "__name__"), ms)
            for labels, ms in victoria.series_timestamps(f'{{site="{slug}"}}')
        }
        missing = expected - arrived
        assert not missing, f"{name}: {sorted(missing)[:3]}"
        assert arrived == expected, f"{name}: {sorted(arrived - expected)[:3]}"

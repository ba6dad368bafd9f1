"""Every query of the shipped site dashboards and alert rules, run on a real InfluxDB 1.6.7
holding a few minutes of the demo plant as the historian wrote them, with Grafana's macros
expanded as Grafana expands them (tests/grafana_queries.py). Each must return series with
values: a typo in a measurement, field or tag returns nothing, silently, in Grafana. The fleet
overview's queries run on three sites' data, in tests/integration/test_fleet.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from controller.config.loader import load_site
from controller.config.site import Historian
from controller.daemon import Daemon
from simulators.devices.plant_server import SimulatedPlant
from simulators.lockstep import field_overrides
from tests.grafana_queries import (
    Query,
    alert_queries,
    dashboard_queries,
    expand,
    load_dashboards,
)
from tests.plant_helpers import SITES
from tests.tsdb import InfluxV1Server, running_influx

DB = "boiler"
SPEED = 10.0  # plant seconds per second: several KPI and health intervals in a short run
RUN_S = 30.0  # wall seconds of plant data
INTERVAL_S = 10  # $__interval over the run, as Grafana would pick for a short range


@pytest.fixture(scope="module")
def influx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxV1Server]:
    with running_influx(tmp_path_factory.mktemp("grafana-influx")) as server:
        server.create_database(DB)
        yield server


@pytest.fixture(scope="module")
async def plant_data(
    influx: InfluxV1Server, tmp_path_factory: pytest.TempPathFactory
) -> tuple[int, int]:
    """The demo plant run by the daemon at ×10, its historian writing into `influx`; c3's
    compute manager gone for the second half, so that the alarm engine raises an alarm
    (communication lost) and clears it. (start, end) in epoch ms."""
    demo = load_site(SITES / "demo.yaml")
    historian = Historian.model_validate(
        {"target": {"api": "v1", "url": influx.url, "database": DB}, "batch_age": "1 s"}
    )
    site = replace(demo, config=demo.config.model_copy(update={"historian": historian}))
    start = datetime(2026, 1, 15, 6, 0, tzinfo=UTC)
    plant = SimulatedPlant(site, start=start, speed=SPEED, ephemeral_ports=True)
    started_ms = int(time.time() * 1000)
    await plant.start()
    try:
        addresses, endpoints = field_overrides(plant)
        daemon = Daemon(
            site,
            addresses=addresses,
            endpoints=endpoints,
            time_scale=SPEED,
            spool=tmp_path_factory.mktemp("spool") / "grafana.spool",
            environ={},
        )
        await daemon.start()
        try:
            await asyncio.sleep(RUN_S / 2)
            await plant.take_down("c3-compute")  # a real fault: a compute manager goes away
            await asyncio.sleep(RUN_S / 2)
            await plant.bring_back("c3-compute")
            await asyncio.sleep(3)
        finally:
            await daemon.stop()
    finally:
        await plant.stop()
    assert daemon.writer.depth.points == 0
    return started_ms, int(time.time() * 1000)


@pytest.fixture(scope="module")
def variables(influx: InfluxV1Server, plant_data: tuple[int, int]) -> dict[str, list[str]]:
    return variable_values(influx, plant_data)


def variable_values(influx: InfluxV1Server, span: tuple[int, int]) -> dict[str, list[str]]:
    """The template variables' values, from their own queries, in dashboard order (a variable
    may use the ones before it), as Grafana resolves them."""
    values: dict[str, list[str]] = {}
    for dashboard in load_dashboards():
        for query in dashboard_queries(dashboard):
            if query.variable is None or query.variable in values:
                continue
            text = expand(query.text, **_window(span), variables=values)
            series = influx.query(DB, text)
            found = sorted({str(row[-1]) for s in series for row in s.get("values", [])})
            assert found, f"{query.source}: no values for the variable ({text})"
            values[query.variable] = found[:1]  # the first value, Grafana's default selection
    return values


def _window(span: tuple[int, int]) -> dict[str, int]:
    return {"start_ms": span[0], "end_ms": span[1], "interval_s": INTERVAL_S}


FLEET = "boiler-fleet-overview"  # its queries: tests/integration/test_fleet.py


def all_queries() -> list[Query]:
    boards = [d for d in load_dashboards() if d["uid"] != FLEET]
    queries = [q for d in boards for q in dashboard_queries(d)]
    return queries + list(alert_queries())


def test_the_shipped_files_hold_queries() -> None:
    queries = all_queries()
    dashboards = {q.source.split(" / ")[0] for q in queries if q.source.startswith("dashboard")}
    assert len(dashboards) == 5  # a site's; the sixth, the fleet's, in test_fleet.py
    assert FLEET in {d["uid"] for d in load_dashboards()}
    assert sum(q.source.startswith("alert rule") for q in queries) >= 5


@pytest.mark.parametrize("query", all_queries(), ids=lambda q: q.source)
def test_every_query_returns_series_with_values(
    influx: InfluxV1Server,
    plant_data: tuple[int, int],
    variables: dict[str, list[str]],
    query: Query,
) -> None:
    if query.relative_seconds is not None:  # an alert rule looks back from now
        now = int(time.time() * 1000)
        span = (now - query.relative_seconds * 1000, now)
    else:  # the run, and the day before: hourly and daily KPI points are stamped at their
        # period's start, before the run began
        span = (plant_data[0] - 25 * 3600 * 1000, plant_data[1])
    text = expand(query.text, **_window(span), variables=variables)
    series = influx.query(DB, text)
    assert series, f"{query.source}: no series for {text}"
    for one in series:
        assert one.get("values"), f"{query.source}: a series without rows for {text}"
        assert _has_a_value(one), f"{query.source}: only nulls in {one.get('columns')} ({text})"


def _has_a_value(series: dict[str, Any]) -> bool:
    columns = series["columns"]
    data = [i for i, name in enumerate(columns) if name != "time"]
    return any(row[i] is not None for row in series["values"] for i in data)


def test_macro_expansion_follows_grafana() -> None:
    text = (
        'SELECT mean("outlet_temp") FROM "caisson_skid" WHERE $timeFilter AND '
        '"site" =~ /^$site$/ AND "caisson" =~ /^${caisson}$/ AND "device" = \'[[device]]\' '
        "GROUP BY time($__interval) fill(null)"
    )
    expanded = expand(
        text,
        start_ms=1000,
        end_ms=2000,
        interval_s=10,
        variables={"site": ["a.b"], "caisson": ["c1", "c2"], "device": ["c1-skid"]},
    )
    assert expanded == (
        'SELECT mean("outlet_temp") FROM "caisson_skid" WHERE time >= 1000ms and time <= 2000ms '
        'AND "site" =~ /^a\\.b$/ AND "caisson" =~ /^(c1|c2)$/ AND "device" = \'c1-skid\' '
        "GROUP BY time(10s) fill(null)"
    )
    with pytest.raises(ValueError, match=r"unexpanded macro \$unknown"):
        expand("SELECT 1 WHERE x = '$unknown'", start_ms=0, end_ms=1, interval_s=1, variables={})

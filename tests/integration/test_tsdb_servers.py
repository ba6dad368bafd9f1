"""The real time-series servers of tests/tsdb.py, and the server behaviour the project relies on.

InfluxDB 1.6.7 (v1 API) and VictoriaMetrics 1.79 run as our own subprocesses on free loopback
ports. Raw HTTP only here (no project code, no influxdb-client): these tests pin what the
servers do with the bodies we send (gzip, multi-member gzip, duplicates, field types,
timestamps) so a package upgrade that changes it fails here first.
"""

from __future__ import annotations

import gzip
import time
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tsdb import (
    INFLUXD,
    VICTORIA_METRICS,
    InfluxV1Server,
    VictoriaMetricsServer,
    http_request,
    running_influx,
    running_victoria,
)

# A fixed instant (2026-01-15T07:00:00Z) in ns: InfluxDB takes any time; VictoriaMetrics takes
# it while it is within the 100 y retention.
T0_NS = 1_768_460_400 * 10**9
SECOND_NS = 10**9
MS_NS = 10**6


def _require(binary: str | None, package: str) -> None:
    if binary is None:
        pytest.fail(
            f"{package} is not installed: run `bash scripts/test.sh` (it installs it as root)"
        )


@pytest.fixture
def influx(tmp_path: Path) -> Iterator[InfluxV1Server]:
    _require(INFLUXD, "influxdb")
    with running_influx(tmp_path) as server:
        server.create_database("plant")
        yield server


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[VictoriaMetricsServer]:
    _require(VICTORIA_METRICS, "victoria-metrics")
    with running_victoria(tmp_path) as server:
        yield server


def three_points(t0_ns: int = T0_NS) -> bytes:
    return (
        f"boiler,site=lyon,unit=b1 supply_temp=61.5,return_temp=45.0 {t0_ns}\n"
        f"boiler,site=lyon,unit=b1 supply_temp=62.0,return_temp=45.5 {t0_ns + SECOND_NS}\n"
        f"boiler,site=lyon,unit=b2 supply_temp=58.25,return_temp=44.0 {t0_ns}\n"
    ).encode()


def influx_write(server: InfluxV1Server, body: bytes, **headers: str) -> int:
    result = http_request(
        f"{server.url}/write",
        method="POST",
        params={"db": "plant", "precision": "ns", **server.credentials},
        body=body,
        headers={key.replace("_", "-"): value for key, value in headers.items()},
    )
    return result.status


# --- InfluxDB 1.6.7 ---------------------------------------------------------------------------


def test_influx_reports_its_version(influx: InfluxV1Server) -> None:
    result = http_request(f"{influx.url}/ping")
    assert result.status == 204
    assert result.headers["X-Influxdb-Version"].startswith("1.6.")
    # v2 write endpoint does not exist before 1.8
    assert http_request(f"{influx.url}/api/v2/write", method="POST", body=b"").status == 404


def test_influx_plain_write_reads_back(influx: InfluxV1Server) -> None:
    assert influx_write(influx, three_points()) == 204

    assert influx.count_points("plant", "boiler") == 3
    pairs = influx.timestamps("plant", "boiler")
    assert {(tags["unit"], time_ns) for tags, time_ns in pairs} == {
        ("b1", T0_NS),
        ("b1", T0_NS + SECOND_NS),
        ("b2", T0_NS),
    }
    assert all(tags == {"site": "lyon", "unit": tags["unit"]} for tags, _ in pairs)
    series = influx.query("plant", "SELECT supply_temp FROM boiler WHERE unit = 'b2'")
    assert series[0]["values"] == [[T0_NS, 58.25]]


def test_influx_gzip_body_lands(influx: InfluxV1Server) -> None:
    status = influx_write(influx, gzip.compress(three_points()), Content_Encoding="gzip")

    assert status == 204
    assert influx.count_points("plant", "boiler") == 3


def test_influx_reads_every_member_of_a_multi_member_gzip_body(influx: InfluxV1Server) -> None:
    # Two separately compressed batches concatenated: Go's gzip reader is multistream.
    first = gzip.compress(three_points(T0_NS))
    second = gzip.compress(three_points(T0_NS + 60 * SECOND_NS))

    status = influx_write(influx, first + second, Content_Encoding="gzip")

    assert status == 204
    assert influx.count_points("plant", "boiler") == 6
    assert influx.count_points("plant", "boiler", f"time >= {T0_NS + 60 * SECOND_NS}") == 3


def test_influx_same_series_and_timestamp_is_one_point(influx: InfluxV1Server) -> None:
    line = f"boiler,site=lyon,unit=b1 supply_temp=61.5 {T0_NS}\n"
    assert influx_write(influx, line.encode()) == 204
    assert influx_write(influx, line.encode()) == 204  # a retried batch
    newer = f"boiler,site=lyon,unit=b1 supply_temp=70.0 {T0_NS}\n"
    assert influx_write(influx, newer.encode()) == 204
    other_series = f"boiler,site=lyon,unit=b2 supply_temp=50.0 {T0_NS}\n"
    assert influx_write(influx, other_series.encode()) == 204

    assert influx.count_points("plant", "boiler", "unit = 'b1'") == 1
    assert influx.count_points("plant", "boiler") == 2
    # the last write of a field wins
    series = influx.query("plant", "SELECT supply_temp FROM boiler WHERE unit = 'b1'")
    assert series[0]["values"] == [[T0_NS, 70.0]]


def test_influx_stop_and_start_keeps_data_and_port(influx: InfluxV1Server) -> None:
    assert influx_write(influx, three_points()) == 204
    url = influx.url

    influx.stop()
    with pytest.raises(urllib.error.URLError):
        http_request(f"{url}/ping", timeout=2.0)
    influx.start()

    assert influx.url == url
    assert influx.count_points("plant", "boiler") == 3
    assert influx_write(influx, three_points(T0_NS + 60 * SECOND_NS)) == 204
    assert influx.count_points("plant", "boiler") == 6


def test_influx_auth_rejects_bad_credentials_with_401(tmp_path: Path) -> None:
    _require(INFLUXD, "influxdb")
    with running_influx(tmp_path, auth=True, password="s3cret") as server:
        server.create_database("plant")  # the helper passes the admin credentials
        write = f"{server.url}/write"
        body = three_points()

        wrong = http_request(
            write, method="POST", params={"db": "plant", "u": "admin", "p": "nope"}, body=body
        )
        missing = http_request(write, method="POST", params={"db": "plant"}, body=body)
        right = http_request(
            write, method="POST", params={"db": "plant", "u": "admin", "p": "s3cret"}, body=body
        )

        assert (wrong.status, missing.status, right.status) == (401, 401, 204)
        assert "authorization failed" in wrong.text
        assert server.count_points("plant", "boiler") == 3
        # the admin user persists in the meta dir: a restart needs no new set-up
        server.restart()
        assert server.count_points("plant", "boiler") == 3


# --- VictoriaMetrics 1.79 ---------------------------------------------------------------------


def vm_write(server: VictoriaMetricsServer, body: bytes, *, gzipped: bool = False) -> int:
    return http_request(
        f"{server.url}/api/v2/write",
        method="POST",
        params={"org": "x", "bucket": "y", "precision": "ns"},
        body=gzip.compress(body) if gzipped else body,
        headers={"Content-Encoding": "gzip"} if gzipped else {},
    ).status


def test_victoria_takes_v2_line_protocol_plain_and_gzip(victoria: VictoriaMetricsServer) -> None:
    assert vm_write(victoria, three_points()) == 204
    assert vm_write(victoria, three_points(T0_NS + 60 * SECOND_NS), gzipped=True) == 204

    samples = victoria.series_timestamps('{__name__="boiler_supply_temp"}')

    b1 = frozenset({("__name__", "boiler_supply_temp"), ("site", "lyon"), ("unit", "b1")})
    b2 = b1 - {("unit", "b1")} | {("unit", "b2")}
    t0_ms = T0_NS // MS_NS
    assert samples == {
        (b1, t0_ms),
        (b1, t0_ms + 1000),
        (b2, t0_ms),
        (b1, t0_ms + 60_000),
        (b1, t0_ms + 61_000),
        (b2, t0_ms + 60_000),
    }
    # one metric per measurement_field; org and bucket are not labels
    names = {series["metric"]["__name__"] for series in victoria.export('{site="lyon"}')}
    assert names == {"boiler_supply_temp", "boiler_return_temp"}
    assert victoria.count_samples('{site="lyon"}') == 12


def test_victoria_string_and_boolean_fields(victoria: VictoriaMetricsServer) -> None:
    body = (
        f'boiler,unit=b1 mode="auto",setpoint="42.5",pump_on=true,fault=f,starts=3i {T0_NS}\n'
    ).encode()
    assert vm_write(victoria, body) == 204

    values = {
        series["metric"]["__name__"]: series["values"] for series in victoria.export('{unit="b1"}')
    }

    # a string field is parsed as a number "best effort": text becomes 0, not dropped
    assert values["boiler_mode"] == [0]
    assert values["boiler_setpoint"] == [42.5]
    # booleans are 1 / 0, integers plain numbers
    assert values["boiler_pump_on"] == [1]
    assert values["boiler_fault"] == [0]
    assert values["boiler_starts"] == [3]


def test_victoria_keeps_duplicates_without_dedup_flag(tmp_path: Path) -> None:
    _require(VICTORIA_METRICS, "victoria-metrics")
    with running_victoria(tmp_path, dedup=False) as server:
        line = f"boiler,unit=b1 supply_temp=61.5 {T0_NS}\n".encode()
        for _ in range(3):
            assert vm_write(server, line) == 204

        (series,) = server.export('{__name__="boiler_supply_temp"}')

        assert series["timestamps"] == [T0_NS // MS_NS] * 3


def test_victoria_dedup_flag_keeps_one_sample_per_millisecond(
    victoria: VictoriaMetricsServer,
) -> None:
    assert victoria.dedup
    same = f"boiler,unit=b1 supply_temp=61.5 {T0_NS}\n".encode()
    for _ in range(3):
        assert vm_write(victoria, same) == 204
    # 1 ms apart: distinct samples; 1 µs apart: the same millisecond, one sample
    assert vm_write(victoria, f"boiler,unit=b1 supply_temp=1 {T0_NS + MS_NS}\n".encode()) == 204
    assert vm_write(victoria, f"boiler,unit=b2 supply_temp=1 {T0_NS}\n".encode()) == 204
    assert vm_write(victoria, f"boiler,unit=b2 supply_temp=2 {T0_NS + 1000}\n".encode()) == 204

    exported = {
        series["metric"]["unit"]: series["timestamps"]
        for series in victoria.export('{__name__="boiler_supply_temp"}')
    }

    t0_ms = T0_NS // MS_NS
    assert exported == {"b1": [t0_ms, t0_ms + 1], "b2": [t0_ms]}


def test_victoria_accepts_old_and_recent_timestamps_but_not_far_future(
    victoria: VictoriaMetricsServer,
) -> None:
    now_ns = time.time_ns()
    accepted = {
        "epoch_plus_1s": SECOND_NS,
        "y2000": 946_684_800 * SECOND_NS,
        "now": now_ns,
        "tomorrow": now_ns + 86_400 * SECOND_NS,
    }
    rejected = {"in_3_days": now_ns + 3 * 86_400 * SECOND_NS}
    body = "".join(f"probe,at={name} v=1 {ts}\n" for name, ts in {**accepted, **rejected}.items())
    assert vm_write(victoria, body.encode()) == 204  # rejected samples are dropped silently

    stored = {
        series["metric"]["at"]: series["timestamps"]
        for series in victoria.export(
            '{__name__="probe_v"}', end_ms=(now_ns // MS_NS) + 10 * 86_400_000
        )
    }

    assert stored == {name: [ts // MS_NS] for name, ts in accepted.items()}


def test_victoria_guesses_the_unit_when_precision_is_missing(
    victoria: VictoriaMetricsServer,
) -> None:
    # 1e9 ns is 1 s after the epoch; without `precision` VictoriaMetrics reads it as seconds.
    for params in ({}, {"precision": "ns"}):
        status = http_request(
            f"{victoria.url}/write",
            method="POST",
            params={"db": "plant", **params},
            body=f"guess,precision={params.get('precision', 'none')} v=1 1000000000\n".encode(),
        ).status
        assert status == 204

    stored = {
        series["metric"]["precision"]: series["timestamps"]
        for series in victoria.export('{__name__="guess_v"}')
    }

    assert stored == {"none": [1_000_000_000_000], "ns": [1000]}


def test_victoria_stop_and_start_keeps_data_and_port(victoria: VictoriaMetricsServer) -> None:
    assert vm_write(victoria, three_points()) == 204  # not flushed: a graceful stop saves it
    url = victoria.url

    victoria.stop()
    with pytest.raises(urllib.error.URLError):
        http_request(f"{url}/health", timeout=2.0)
    victoria.start()

    assert victoria.url == url
    assert victoria.count_samples('{__name__="boiler_supply_temp"}') == 3
    assert vm_write(victoria, three_points(T0_NS + 60 * SECOND_NS)) == 204
    assert victoria.count_samples('{__name__="boiler_supply_temp"}') == 6

"""Historian write throughput: sustained points per second into InfluxDB 1.x (v1 `/write`) and
into the v2 endpoint (`/api/v2/write`, VictoriaMetrics), with every point counted back.

The same N lines (caisson_skid-like: measurement, 3 tags, 5 float fields, a nanosecond timestamp;
100 series, one point per series and second, so nothing deduplicates), side by side in one run:
  ceiling          a bare http.client POST loop of pre-built bodies of `--batch` lines,
                   sequential, uncompressed and gzip (level 1, compressed beforehand)
  writer           our HistorianWriter, spool on, end to end: from the first submit() to
                   stats.sent_points == N; the producer submits `--batch` lines per call
                   - flat out: yields to the event loop between calls, never waits
                   - paced: submits the next call once the last one is spooled (chunks of
                     `--batch` lines, so batches of `--batch` points)
                   - backlog: the spool already holds the N points in chunks of 250 lines (a
                     busy cycle's worth, as after an outage), merged into batches of `--batch`
  client           (v2 only) influxdb-client's WriteApiAsync given one Point object per point,
                   then given the pre-built strings: what users would otherwise use
and, without a server, line formatting alone: our lineprotocol.line, the schema's Recorder on
the demo site's snapshots, influxdb-client's Point + to_line_protocol.

Every variant writes to its own database (InfluxDB) or `site` tag (VictoriaMetrics), and the
points the server holds are counted after it (a run whose data did not all arrive says so).

    .venv/bin/python bench/historian_speed.py [--points 1000000] [--batch 5000] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import platform
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync  # noqa: E402
from influxdb_client.client.write.point import Point  # noqa: E402
from influxdb_client.domain.write_precision import WritePrecision  # noqa: E402

from controller.config.loader import load_site  # noqa: E402
from controller.config.site import InfluxV1Target, InfluxV2Target  # noqa: E402
from controller.fieldbus.image import PointRef, Sample  # noqa: E402
from controller.historian.lineprotocol import line, series_key  # noqa: E402
from controller.historian.schema import Recorder  # noqa: E402
from controller.historian.spool import Spool, compress  # noqa: E402
from controller.historian.targets import Target, V1Target, V2Target  # noqa: E402
from controller.historian.writer import HistorianWriter, WriterSettings  # noqa: E402
from controller.logs import configure_logging  # noqa: E402
from tests.tsdb import (  # noqa: E402
    InfluxV1Server,
    VictoriaMetricsServer,
    running_influx,
    running_victoria,
)

MEASUREMENT = "caisson_skid"
FIELDS = ("inlet_temp", "outlet_temp", "flow", "pump_speed_feedback", "it_power")
SERIES = 100
ORG, BUCKET = "o", "b"
POINT_BUILD_MAX = 200_000  # Point objects built for the formatting-only row (≈ 50 k/s)
BACKLOG_CHUNK = 250  # lines per spool chunk in the backlog variant (one cycle's submit)
WRITER_MODES = {
    "flat": "writer, spool on, producer flat out",
    "paced": "writer, spool on, paced producer",
    "backlog": f"writer, backlog drain ({BACKLOG_CHUNK}-line chunks)",
}


# ---------------------------------------------------------------------- data


@dataclass(frozen=True)
class Data:
    """The values every variant writes: series index, timestamp (ns), 5 floats per point."""

    series: list[int]
    timestamps: list[int]
    values: list[tuple[float, float, float, float, float]]

    def __len__(self) -> int:
        return len(self.series)


def make_data(points: int) -> Data:
    """`points` points over SERIES series, one per series and second, ending an hour ago."""
    start_s = int(time.time()) - points // SERIES - 3600
    series = [i % SERIES for i in range(points)]
    timestamps = [(start_s + i // SERIES) * 1_000_000_000 for i in range(points)]
    values = [
        (
            50.0 + (i % 1000) / 100,
            60.0 + (i % 997) / 64,
            12.0 + (i % 89) / 8,
            40.0 + (i % 61),
            15.0 + (i % 257) / 32,
        )
        for i in range(points)
    ]
    return Data(series, timestamps, values)


def tags(site: str, s: int) -> dict[str, str]:
    return {"site": site, "caisson": f"c{s + 1}", "device": f"c{s + 1}-skid"}


def series_keys(site: str) -> list[str]:
    return [series_key(MEASUREMENT, tags(site, s)) for s in range(SERIES)]


def format_lines(data: Data, site: str) -> list[str]:
    """Our hot path: one line per point from its values (lineprotocol.line, as schema.py)."""
    keys = series_keys(site)
    lines = []
    for s, at, values in zip(data.series, data.timestamps, data.values, strict=True):
        text = line(keys[s], zip(FIELDS, values, strict=True), at)
        assert text is not None
        lines.append(text)
    return lines


def relabel(lines: Sequence[str], data: Data, site_from: str, site_to: str) -> list[str]:
    """The same lines with another `site` tag (fresh series for the next variant)."""
    old, new = series_keys(site_from), series_keys(site_to)
    return [new[s] + text[len(old[s]) :] for s, text in zip(data.series, lines, strict=True)]


def batches(lines: Sequence[str], size: int) -> list[list[str]]:
    return [list(lines[k : k + size]) for k in range(0, len(lines), size)]


def body(lines: Sequence[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def make_point(site: str, s: int, at: int, values: Sequence[float]) -> Point:
    point = Point(MEASUREMENT)
    for key, tag in tags(site, s).items():
        point.tag(key, tag)
    for name, value in zip(FIELDS, values, strict=True):
        point.field(name, value)
    return point.time(at, WritePrecision.NS)


# ---------------------------------------------------------------------- results


@dataclass
class Row:
    server: str
    variant: str
    posts: int | None  # requests sent
    points: int
    seconds: float
    verified: int | None = None  # points the server holds afterwards; None: no server
    note: str = ""

    @property
    def rate(self) -> float:
        return self.points / self.seconds if self.seconds > 0 else 0.0

    @property
    def complete(self) -> bool:
        return self.verified is None or self.verified == self.points


class Server:
    """One time-series server under test: where to POST, what a target is, how to count."""

    def __init__(self, name: str, influx: InfluxV1Server | None, vm: VictoriaMetricsServer | None):
        self.name, self.influx, self.vm = name, influx, vm

    @property
    def url(self) -> str:
        server = self.influx or self.vm
        assert server is not None
        return server.url

    def prepare(self, site: str) -> None:
        if self.influx is not None:
            self.influx.create_database(site)

    def write_path(self, site: str) -> str:
        if self.influx is not None:
            query = {"db": site, "precision": "ns"}
            return "/write?" + urllib.parse.urlencode(query)
        query = {"org": ORG, "bucket": BUCKET, "precision": "ns"}
        return "/api/v2/write?" + urllib.parse.urlencode(query)

    def target(self, site: str) -> Target:
        if self.influx is not None:
            return V1Target(InfluxV1Target(api="v1", url=self.url, database=site))
        return V2Target(InfluxV2Target(api="v2", url=self.url, org=ORG, bucket=BUCKET), token=None)

    def count(self, site: str) -> int:
        """Points the server holds for the variant (one field counted: every point has all)."""
        if self.influx is not None:
            rows = self.influx.query(site, f"SELECT COUNT({FIELDS[0]}) FROM {MEASUREMENT}")
            return int(rows[0]["values"][0][1]) if rows else 0
        assert self.vm is not None  # count_samples force-flushes first
        return self.vm.count_samples(f'{MEASUREMENT}_{FIELDS[0]}{{site="{site}"}}')


# ---------------------------------------------------------------------- variants


def ceiling(server: Server, site: str, bodies: Sequence[bytes], gzipped: bool) -> float:
    """Sequential POSTs of pre-built bodies on one keep-alive connection; seconds taken."""
    parsed = urllib.parse.urlsplit(server.url)
    connection = http.client.HTTPConnection(parsed.hostname or "", parsed.port, timeout=60)
    headers = {"Content-Type": "text/plain; charset=utf-8"}
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    path = server.write_path(site)
    began = time.perf_counter()
    for payload in bodies:
        connection.request("POST", path, payload, headers)
        response = connection.getresponse()
        answer = response.read()
        if response.status != 204:
            raise RuntimeError(f"{server.name} answered {response.status}: {answer[:200]!r}")
    seconds = time.perf_counter() - began
    connection.close()
    return seconds


class Recording:
    """A target that passes every body on and records the largest (compressed bytes)."""

    def __init__(self, target: Target) -> None:
        self.target, self.describe, self.largest = target, target.describe, 0

    async def send(self, body: bytes) -> None:
        self.largest = max(self.largest, len(body))
        await self.target.send(body)

    async def close(self) -> None:
        await self.target.close()


@dataclass
class WriterRun:
    seconds: float
    submit_seconds: float  # inside submit() calls
    produce_seconds: float  # first submit to the last submit's return
    batches: int
    sent: int
    failures: dict[str, int]
    largest_body: int  # bytes (gzip)


async def writer_run(
    target: Target, spool: Path, chunks: Sequence[list[str]], batch: int, mode: str
) -> WriterRun:
    """Our writer end to end; the clock stops when the server has acknowledged every point.
    In the backlog mode `chunks` are in the spool before the clock starts, and nothing is
    submitted."""
    total = sum(len(chunk) for chunk in chunks)
    if mode == "backlog":
        backlog = Spool(spool, 4e9)
        for chunk in chunks:
            backlog.append(chunk)
        backlog.close()
        chunks = []
    recording = Recording(target)
    writer = HistorianWriter(spool, 4e9, recording, WriterSettings(batch_points=batch))
    began = time.perf_counter()
    await writer.start()
    submit_seconds = 0.0
    submitted = 0
    for chunk in chunks:
        if mode == "paced":  # until the spool has committed what was submitted (no eviction here)
            while writer.depth.points + writer.stats.sent_points < submitted:
                await asyncio.sleep(0.0005)
        t0 = time.perf_counter()
        writer.submit(chunk)
        submit_seconds += time.perf_counter() - t0
        submitted += len(chunk)
        await asyncio.sleep(0)
    produced = time.perf_counter()
    deadline = began + 600.0
    while writer.stats.sent_points < total and time.perf_counter() < deadline:
        await asyncio.sleep(0.002)
    seconds = time.perf_counter() - began
    result = WriterRun(
        seconds,
        submit_seconds,
        produced - began,
        writer.stats.sent_batches,
        writer.stats.sent_points,
        dict(writer.stats.failures),
        recording.largest,
    )
    await writer.stop()
    return result


async def client_run(
    server: Server, site: str, data: Data, chunks: Sequence[list[str]] | None, batch: int
) -> float:
    """influxdb-client's async write API, one write() per batch: Point objects built from the
    values (chunks None), or the pre-built strings."""
    client = InfluxDBClientAsync(url=server.url, token="", org=ORG, timeout=60_000)
    write_api = client.write_api()
    began = time.perf_counter()
    if chunks is None:
        for k in range(0, len(data), batch):
            points = [
                make_point(site, data.series[i], data.timestamps[i], data.values[i])
                for i in range(k, min(k + batch, len(data)))
            ]
            await write_api.write(BUCKET, ORG, record=points)  # ns: the default
    else:
        for chunk in chunks:
            await write_api.write(BUCKET, ORG, record=chunk)  # ns: the default
    seconds = time.perf_counter() - began
    await client.close()
    return seconds


# ---------------------------------------------------------------------- formatting alone


def recorder_rounds(rounds: int) -> tuple[int, int, float]:
    """The schema's Recorder on the demo site: a snapshot of every historian point per round,
    new acquisition times each round. (lines, fields, seconds)."""
    site = load_site(ROOT / "sites" / "demo.yaml")
    recorder = Recorder(site)
    refs = [
        PointRef(device.id, point.id)
        for device in site.config.devices
        for point in site.device_map(device.id).points
        if point.historian
    ]
    start = datetime.now(UTC) - timedelta(days=1)
    snapshots = []
    for r in range(rounds):
        at = start + timedelta(seconds=r)
        snapshots.append(
            {ref: Sample.good(20.0 + (r * 7 + j) % 500 / 10, at) for j, ref in enumerate(refs)}
        )
    lines = 0
    began = time.perf_counter()
    for r, snapshot in enumerate(snapshots):
        out = recorder.samples(snapshot, start + timedelta(seconds=r))
        lines += len(out)
    seconds = time.perf_counter() - began
    fields = rounds * len(refs)
    return lines, fields, seconds


def point_objects(data: Data, site: str, count: int) -> float:
    """influxdb-client: a Point per point, then to_line_protocol; seconds for `count`."""
    began = time.perf_counter()
    for i in range(count):
        make_point(site, data.series[i], data.timestamps[i], data.values[i]).to_line_protocol()
    return time.perf_counter() - began


# ---------------------------------------------------------------------- a server's runs


def run_server(
    server: Server, data: Data, lines: list[str], batch: int, spool_dir: Path, repeat: int
) -> list[Row]:
    rows: list[Row] = []
    n = len(lines)
    prefix = "influx" if server.influx is not None else "vm"

    def site_of(variant: str, round_: int) -> str:
        return f"bench_{prefix}_{variant}_{round_}"

    def verify(row: Row, site: str) -> Row:
        row.verified = server.count(site)
        flag = "" if row.complete else f"  ** {row.points - (row.verified or 0):,} MISSING **"
        print(
            f"  {server.name:>16} {row.variant:<34} {row.points:>9,} points {row.seconds:7.2f} s "
            f"{row.rate:>10,.0f}/s  server holds {row.verified:,}{flag}",
            flush=True,
        )
        rows.append(row)
        return row

    for round_ in range(repeat):
        for gzipped in (False, True):
            variant = "ceiling: raw POST, " + ("gzip-1" if gzipped else "uncompressed")
            site = site_of("gzip" if gzipped else "raw", round_)
            server.prepare(site)
            chunks = batches(relabel(lines, data, "bench", site), batch)
            payloads = [body(chunk) for chunk in chunks]
            if gzipped:
                payloads = [compress(payload) for payload in payloads]
            del chunks
            seconds = ceiling(server, site, payloads, gzipped)
            verify(Row(server.name, variant, len(payloads), n, seconds), site)

        for mode, variant in WRITER_MODES.items():
            site = site_of(mode, round_)
            server.prepare(site)
            size = BACKLOG_CHUNK if mode == "backlog" else batch
            chunks = batches(relabel(lines, data, "bench", site), size)
            spool = spool_dir / f"{site}.sqlite"
            result = asyncio.run(writer_run(server.target(site), spool, chunks, batch, mode))
            del chunks
            note = (
                f"{result.sent // max(result.batches, 1):,} points a POST on average, largest "
                f"body {result.largest_body / 1e6:.1f} MB gzip"
            )
            if mode != "backlog":
                note += (
                    f"; submit() {result.submit_seconds / n * 1e9:.0f} ns a line "
                    f"({result.submit_seconds * 1e3:.1f} ms in all), last submit() returned "
                    f"after {result.produce_seconds:.2f} s"
                )
            if result.failures:
                note += f"; failures {result.failures}"
            if result.sent < n:
                note += f"; writer sent only {result.sent:,}"
            row = Row(server.name, variant, result.batches, n, result.seconds, note=note)
            verify(row, site)

        if server.vm is not None:
            site = site_of("points", round_)
            seconds = asyncio.run(client_run(server, site, data, None, batch))
            variant = "influxdb-client, Point objects"
            verify(Row(server.name, variant, -(-n // batch), n, seconds), site)
            site = site_of("strings", round_)
            chunks = batches(relabel(lines, data, "bench", site), batch)
            seconds = asyncio.run(client_run(server, site, data, chunks, batch))
            del chunks
            variant = "influxdb-client, pre-built strings"
            verify(Row(server.name, variant, -(-n // batch), n, seconds), site)
    return rows


# ---------------------------------------------------------------------- main


def machine() -> str:
    model = "?"
    try:
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                model = text.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{platform.machine()}, {os.cpu_count()} cores ({model}), "
        f"Python {platform.python_version()}"
    )


def print_table(rows: Sequence[Row]) -> None:
    best: dict[str, float] = {}
    for row in rows:
        if row.variant.startswith("ceiling"):
            best[row.server] = max(best.get(row.server, 0.0), row.rate)
    print("| server | variant | POSTs | points | s | points/s | × ceiling | server holds |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        ratio = f"{row.rate / best[row.server]:.2f}" if row.server in best else ""
        held = "–" if row.verified is None else f"{row.verified:,}"
        posts = "" if row.posts is None else f"{row.posts:,}"
        if not row.complete:
            held = f"**{held} (missing {row.points - (row.verified or 0):,})**"
        print(
            f"| {row.server} | {row.variant} | {posts} | {row.points:,} | {row.seconds:.2f} | "
            f"{row.rate:,.0f} | {ratio} | {held} |"
        )
    notes = [row for row in rows if row.note]
    if notes:
        print()
    for row in notes:
        print(f"- {row.server}, {row.variant}: {row.note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000, help="points per variant")
    parser.add_argument("--batch", type=int, default=5000, help="lines per POST / per submit()")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of the server variants")
    parser.add_argument("--rounds", type=int, default=2000, help="Recorder snapshots formatted")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--servers", nargs="+", choices=["influxdb", "victoria"], default=["influxdb", "victoria"]
    )
    args = parser.parse_args()
    configure_logging("warning")
    print(f"# historian write throughput, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"machine: {machine()}")
    print(f"{args.points:,} points per variant, {args.batch:,} lines per batch / submit()")
    print()

    data = make_data(args.points)
    rows: list[Row] = []
    began = time.perf_counter()
    lines = format_lines(data, "bench")
    seconds = time.perf_counter() - began
    size = sum(len(text) + 1 for text in lines)
    note = f"{size / len(lines):.0f} bytes a line; gzip-1 {len(compress(body(lines[:5000]))):,} B"
    note += f" per 5,000 lines against {len(body(lines[:5000])):,} B"
    rows.append(
        Row("(none)", "format: our lineprotocol.line", None, len(lines), seconds, note=note)
    )
    done, fields, seconds = recorder_rounds(args.rounds)
    note = f"{args.rounds} demo-site snapshots, {fields:,} fields: {fields / seconds:,.0f} fields/s"
    rows.append(Row("(none)", "format: our Recorder.samples", None, done, seconds, note=note))
    count = min(POINT_BUILD_MAX, len(data))
    seconds = point_objects(data, "bench", count)
    rows.append(Row("(none)", "format: influxdb-client Point", None, count, seconds))
    for row in rows:
        print(
            f"  {row.variant:<34} {row.points:>9,} lines {row.seconds:7.2f} s {row.rate:>10,.0f}/s"
        )

    with tempfile.TemporaryDirectory(prefix="historian-bench-") as tmp:
        directory = Path(tmp)
        if "influxdb" in args.servers:
            with running_influx(directory) as influx:
                server = Server("InfluxDB 1.6.7 v1", influx, None)
                rows += run_server(server, data, lines, args.batch, directory, args.repeat)
        if "victoria" in args.servers:
            with running_victoria(directory) as vm:
                server = Server("VictoriaMetrics v2", None, vm)
                rows += run_server(server, data, lines, args.batch, directory, args.repeat)

    print()
    print_table(rows)
    missing = [row for row in rows if not row.complete]
    if missing:
        print()
        print(f"WARNING: {len(missing)} variant(s) did not deliver every point (see the table)")
    if args.json:
        document = {
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": machine(),
            "points": args.points,
            "batch": args.batch,
            "rows": [asdict(row) | {"points_per_s": row.rate} for row in rows],
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""Real time-series servers for tests: InfluxDB 1.x (`influxd`) and VictoriaMetrics.

Each server runs as our own subprocess on free loopback ports, keeps its files (config, data, log)
in a directory the test gives it (a `tmp_path`), and is stopped by the test. `stop()` keeps the
data directory and the ports, so `start()` again brings back the SAME database on the SAME URL:
outage tests stop a server for a while and start it again. The Debian packages' system services
are never used.

The helpers read the servers with the standard library only (urllib), never with the project's
code or influxdb-client: they are an independent reader of what the code under test wrote.

Pytest fixtures belong in the test modules; `running_influx` and `running_victoria` are context
managers that start a server and always stop it.

Binaries: Debian packages `influxdb` (1.6.7: v1 API only, `/api/v2/write` is 404) and
`victoria-metrics` (1.79.5), listed in scripts/debian-packages.txt.
"""

from __future__ import annotations

import atexit
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.ports import LOOPBACK, free_port

INFLUXD: str | None = shutil.which("influxd")
VICTORIA_METRICS: str | None = shutil.which("victoria-metrics") or shutil.which(
    "victoria-metrics-prod"
)

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0


class ServerError(RuntimeError):
    """A test server failed to start or answered a helper's request with an error."""


@dataclass(frozen=True)
class HttpResult:
    """An HTTP answer of any status (4xx and 5xx are results here, not exceptions)."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.body)


Params = Mapping[str, str | Sequence[str]]


def http_request(
    url: str,
    *,
    method: str = "GET",
    params: Params | None = None,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
) -> HttpResult:
    """One HTTP request; returns the answer whatever its status.

    Connection failures (server down) raise `urllib.error.URLError` / `OSError`.
    A sequence value in `params` repeats the parameter (`match[]=a&match[]=b`).
    """
    if params:
        url = f"{url}?{urllib.parse.urlencode(params, doseq=True)}"
    request = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return HttpResult(response.status, dict(response.headers.items()), response.read())
    except urllib.error.HTTPError as error:
        with error:
            return HttpResult(error.code, dict(error.headers.items()), error.read())


def _lines_body(lines: str | bytes | Iterable[str]) -> bytes:
    if isinstance(lines, bytes):
        return lines
    if isinstance(lines, str):
        return lines.encode()
    return "".join(f"{line}\n" for line in lines).encode()


_running: set[_ServerProcess] = set()


@atexit.register
def _kill_leftovers() -> None:
    """Never leave a server behind a test run that forgot (or could not) stop it."""
    for server in list(_running):
        server.stop(timeout=2.0)


class _ServerProcess:
    """A server subprocess on a fixed loopback port, with its files in one directory."""

    name = "server"

    def __init__(self, directory: Path, binary: str | None) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.binary = binary
        self.port = free_port()
        self.log_path = self.directory / f"{self.name}.log"
        self.startup_seconds: float | None = None
        """How long the last `start()` waited for readiness."""
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.running and self._process is not None else None

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _is_ready(self) -> bool:
        raise NotImplementedError

    def _after_start(self) -> None:
        """Set-up that needs the server answering (runs on every start)."""

    def start(self) -> None:
        """Start the server (same port, same data as before a `stop()`); wait until it answers."""
        if self.running:
            raise ServerError(f"{self.name} is already running at {self.url}")
        if self.binary is None:
            raise ServerError(
                f"{self.name} is not installed: run `bash scripts/test.sh` as root (it installs "
                "the packages of scripts/debian-packages.txt)"
            )
        command = self._command()
        with self.log_path.open("ab") as log:
            log.write(f"=== {time.strftime('%H:%M:%S')} {' '.join(command)}\n".encode())
            log.flush()
            self._process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        _running.add(self)
        began = time.monotonic()
        while True:
            code = self._process.poll()
            if code is not None:
                self._process = None
                _running.discard(self)
                raise ServerError(
                    f"{self.name} exited with code {code} while starting; log tail:\n"
                    f"{self.log_tail()}"
                )
            if self._is_ready():
                break
            if time.monotonic() - began > START_TIMEOUT_S:
                self.stop()
                raise ServerError(
                    f"{self.name} did not answer at {self.url} within {START_TIMEOUT_S:.0f} s; "
                    f"log tail:\n{self.log_tail()}"
                )
            time.sleep(0.02)
        self.startup_seconds = time.monotonic() - began
        try:
            self._after_start()
        except BaseException:
            self.stop()
            raise

    def stop(self, *, timeout: float = STOP_TIMEOUT_S, kill: bool = False) -> None:
        """Stop the server: SIGTERM (graceful), then SIGKILL after `timeout` s.

        `kill=True` sends SIGKILL at once (a crash: no graceful flush). No-op if not running.
        The directory (data) and the port are kept for the next `start()`.
        """
        process, self._process = self._process, None
        _running.discard(self)
        if process is None:
            return
        if process.poll() is None:
            if kill:
                process.kill()
            else:
                process.terminate()
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _answers(self, path: str, status: int) -> bool:
        try:
            return http_request(self.url + path, timeout=1.0).status == status
        except OSError:  # URLError is an OSError: not listening yet
            return False


def _influxql_identifier(name: str) -> str:
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _influxql_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


class InfluxV1Server(_ServerProcess):
    """`influxd run` (InfluxDB 1.x, v1 HTTP API) with its meta, data and wal dirs in `directory`.

    `auth=True` sets `[http] auth-enabled = true`; the first `start()` then creates the admin
    user `username`/`password` (allowed without credentials while no admin exists), and the
    helper's own requests pass `u`/`p`. InfluxDB 1.6 accepts `u`/`p` query parameters or HTTP
    Basic auth; it answers 401 to the `Authorization: Token user:password` scheme (1.8+).

    Writes are not capped here beyond InfluxDB's own `[http] max-body-size` (25 MB by default).
    """

    name = "influxd"

    def __init__(
        self,
        directory: Path,
        *,
        auth: bool = False,
        username: str = "admin",
        password: str = "admin-password",
        binary: str | None = INFLUXD,
    ) -> None:
        super().__init__(directory, binary)
        self.rpc_port = free_port()
        while self.rpc_port == self.port:
            self.rpc_port = free_port()
        self.auth = auth
        self.username = username
        self.password = password
        self.config_path = self.directory / "influxdb.conf"
        self._admin_created = False

    def _write_config(self) -> None:
        d = self.directory
        self.config_path.write_text(
            f"""\
reporting-disabled = true
bind-address = "{LOOPBACK}:{self.rpc_port}"

[meta]
  dir = "{d / "meta"}"
  logging-enabled = false

[data]
  dir = "{d / "data"}"
  wal-dir = "{d / "wal"}"
  query-log-enabled = false

[monitor]
  store-enabled = false

[http]
  bind-address = "{LOOPBACK}:{self.port}"
  auth-enabled = {"true" if self.auth else "false"}
  log-enabled = false
  pprof-enabled = false

[logging]
  level = "warn"
  suppress-logo = true

[continuous_queries]
  log-enabled = false
"""
        )

    def _command(self) -> list[str]:
        self._write_config()
        assert self.binary is not None
        return [self.binary, "run", "-config", str(self.config_path)]

    def _is_ready(self) -> bool:
        return self._answers("/ping", 204)

    def _after_start(self) -> None:
        if self.auth and not self._admin_created:
            statement = (
                f"CREATE USER {_influxql_identifier(self.username)} WITH PASSWORD "
                f"{_influxql_string(self.password)} WITH ALL PRIVILEGES"
            )
            result = http_request(f"{self.url}/query", method="POST", params={"q": statement})
            _raise_for_influx_error(result, statement)
            self._admin_created = True

    @property
    def credentials(self) -> dict[str, str]:
        """The `u`/`p` query parameters of the helper's requests (empty without auth)."""
        return {"u": self.username, "p": self.password} if self.auth else {}

    def query(self, db: str | None, influxql: str, *, epoch: str = "ns") -> list[dict[str, Any]]:
        """Run InfluxQL (POST /query); the series of all statements, in order.

        Each series is InfluxDB's JSON: `name`, `tags` (with GROUP BY), `columns`, `values`;
        times are integers in `epoch` units. Raises `ServerError` with InfluxDB's error text.
        """
        params = {"q": influxql, "epoch": epoch, **self.credentials}
        if db is not None:
            params["db"] = db
        result = http_request(f"{self.url}/query", method="POST", params=params)
        payload = _raise_for_influx_error(result, influxql)
        series: list[dict[str, Any]] = []
        for statement in payload.get("results", []):
            series.extend(statement.get("series", []))
        return series

    def create_database(self, name: str) -> None:
        self.query(None, f"CREATE DATABASE {_influxql_identifier(name)}")

    def write(self, db: str, lines: str | bytes | Iterable[str], *, precision: str = "ns") -> None:
        """POST line protocol to /write; raises `ServerError` unless InfluxDB answers 204."""
        result = http_request(
            f"{self.url}/write",
            method="POST",
            params={"db": db, "precision": precision, **self.credentials},
            body=_lines_body(lines),
        )
        if result.status != 204:
            raise ServerError(f"InfluxDB /write answered {result.status}: {result.text.strip()}")

    def timestamps(
        self, db: str, measurement: str, where: str = ""
    ) -> list[tuple[dict[str, str], int]]:
        """(tags, time in ns) of every stored point of `measurement` (optionally `WHERE where`).

        InfluxDB keeps one point per series + timestamp, so this list has no duplicates.
        """
        condition = f" WHERE {where}" if where else ""
        statement = f"SELECT * FROM {_influxql_identifier(measurement)}{condition} GROUP BY *"
        pairs: list[tuple[dict[str, str], int]] = []
        for series in self.query(db, statement, epoch="ns"):
            tags: dict[str, str] = dict(series.get("tags") or {})
            time_column = series["columns"].index("time")
            pairs.extend((dict(tags), int(row[time_column])) for row in series["values"])
        return pairs

    def count_points(self, db: str, measurement: str, where: str = "") -> int:
        """Stored points (distinct series + timestamp) of `measurement`."""
        return len(self.timestamps(db, measurement, where))


def _raise_for_influx_error(result: HttpResult, statement: str) -> dict[str, Any]:
    try:
        payload: dict[str, Any] = result.json()
    except ValueError:
        payload = {}
    errors = [payload["error"]] if "error" in payload else []
    errors += [r["error"] for r in payload.get("results", []) if "error" in r]
    if result.status != 200 or errors:
        detail = "; ".join(errors) or result.text.strip()
        raise ServerError(f"InfluxDB answered {result.status} to {statement!r}: {detail}")
    return payload


class VictoriaMetricsServer(_ServerProcess):
    """Single-node VictoriaMetrics with its storage in `directory / "data"`.

    Timestamps tests may use: VictoriaMetrics stores milliseconds and rejects (silently: the
    write still answers 204, the server logs a warning) samples older than
    `now - retentionPeriod` or newer than `now + 2 days`, and negative ones. With the default
    `retention="100y"` anything from 1970-01-01 to now + 2 days is accepted. Nanosecond
    timestamps are truncated to the millisecond, so samples of one series less than 1 ms apart
    collide. Send `precision` explicitly on line-protocol writes: without it VictoriaMetrics
    guesses the unit from the magnitude (< 1e11 seconds, < 1e14 ms, < 1e17 µs, else ns).

    Duplicates: without deduplication VictoriaMetrics keeps every sample written for the same
    series + timestamp (export returns them all). `dedup=True` (default) passes
    `-dedup.minScrapeInterval=1ms`, which keeps one sample per series per millisecond, applied
    at query/export time and in background merges; which of the duplicates survives is not
    specified by 1.79 (not necessarily the last written). `dedup=False` shows the raw storage.

    Also: `-search.disableCache` and `-search.latencyOffset=0s`, so that back-filled or fresh
    points show in /api/v1/query at once; `-loggerLevel=WARN`.
    """

    name = "victoria-metrics"

    def __init__(
        self,
        directory: Path,
        *,
        dedup: bool = True,
        retention: str = "100y",
        extra_args: Sequence[str] = (),
        binary: str | None = VICTORIA_METRICS,
    ) -> None:
        super().__init__(directory, binary)
        self.dedup = dedup
        self.retention = retention
        self.extra_args = list(extra_args)
        self.storage_path = self.directory / "data"

    def _command(self) -> list[str]:
        assert self.binary is not None
        command = [
            self.binary,
            f"-storageDataPath={self.storage_path}",
            f"-httpListenAddr={LOOPBACK}:{self.port}",
            f"-retentionPeriod={self.retention}",
            "-search.disableCache",
            "-search.latencyOffset=0s",
            "-loggerLevel=WARN",
        ]
        if self.dedup:
            command.append("-dedup.minScrapeInterval=1ms")
        return command + self.extra_args

    def _is_ready(self) -> bool:
        return self._answers("/health", 200)

    def write(
        self,
        lines: str | bytes | Iterable[str],
        *,
        precision: str = "ns",
        path: str = "/api/v2/write",
        params: Mapping[str, str] | None = None,
    ) -> None:
        """POST line protocol (default to /api/v2/write); raises unless the answer is 204."""
        result = http_request(
            self.url + path,
            method="POST",
            params={"org": "test", "bucket": "test", "precision": precision, **(params or {})},
            body=_lines_body(lines),
        )
        if result.status != 204:
            raise ServerError(f"VictoriaMetrics {path} answered {result.status}: {result.text}")

    def force_flush(self) -> None:
        """Make every write received so far searchable (GET /internal/force_flush)."""
        result = http_request(f"{self.url}/internal/force_flush")
        if result.status != 200:
            raise ServerError(f"force_flush answered {result.status}: {result.text}")

    def export(
        self,
        match: str,
        *,
        start_ms: int = 0,
        end_ms: int | None = None,
        flush: bool = True,
    ) -> list[dict[str, Any]]:
        """/api/v1/export for the series selector `match` (e.g. `{__name__=~"boiler_.*"}`).

        One dict per series: `metric` (labels, with `__name__`), `values`, `timestamps` (ms).
        `end_ms` defaults to now + 3 days: VictoriaMetrics' own default end (now) hides the
        freshest points. `flush` calls `force_flush()` first.
        """
        if flush:
            self.force_flush()
        if end_ms is None:
            end_ms = int(time.time() * 1000) + 3 * 86_400_000
        result = http_request(
            f"{self.url}/api/v1/export",
            params={"match[]": match, "start": str(start_ms / 1000), "end": str(end_ms / 1000)},
            timeout=60.0,
        )
        if result.status != 200:
            raise ServerError(f"export of {match!r} answered {result.status}: {result.text}")
        return [json.loads(line) for line in result.text.splitlines() if line.strip()]

    def series_timestamps(self, match: str) -> set[tuple[frozenset[tuple[str, str]], int]]:
        """Distinct (labels incl. `__name__`, timestamp ms) of the samples matching `match`."""
        return {
            (frozenset(series["metric"].items()), int(timestamp))
            for series in self.export(match)
            for timestamp in series["timestamps"]
        }

    def count_samples(self, match: str) -> int:
        """Samples exported for `match`, duplicates included (if `dedup=False`)."""
        return sum(len(series["timestamps"]) for series in self.export(match))


@contextmanager
def running_influx(
    tmp_path: Path,
    *,
    auth: bool = False,
    username: str = "admin",
    password: str = "admin-password",
) -> Iterator[InfluxV1Server]:
    """An `InfluxV1Server` in `tmp_path / "influxdb"`, started, and stopped on exit."""
    server = InfluxV1Server(tmp_path / "influxdb", auth=auth, username=username, password=password)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def running_victoria(
    tmp_path: Path, *, dedup: bool = True, extra_args: Sequence[str] = ()
) -> Iterator[VictoriaMetricsServer]:
    """A `VictoriaMetricsServer` in `tmp_path / "victoria-metrics"`, started, stopped on exit."""
    server = VictoriaMetricsServer(
        tmp_path / "victoria-metrics", dedup=dedup, extra_args=extra_args
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()

"""Building blocks for tests of the maintenance commands: the demo plant simulated on real sockets
in this process, `boilerctl run` against it as a subprocess with its own state directory, and
`boilerctl` commands run as an engineer runs them (the installed console script, same state
directory). Everything here is async: the simulated plant answers from this process's event loop,
so nothing may block it (a blocking `subprocess.run` would freeze the plant's devices)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Mapping
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from controller.alarms.journal import JournalEntry, JournalReader, journal_path
from controller.api.endpoint import address_path, read_address, token_path
from controller.config.loader import LoadedSite, load_site
from simulators.devices.plant_server import SimulatedPlant
from tests.integration.test_daemon import override_args
from tests.plant_helpers import ROOT, SITES

BOILERCTL = Path(sys.executable).with_name("boilerctl")
DEMO = SITES / "demo.yaml"
START = datetime(2026, 1, 15, 6, 0, tzinfo=UTC)
WALL_LIMIT_S = 60.0  # a bound for each wait and each command: a hang fails, it is not a timing test
API = "/api/v1"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The environment a test's commands must not inherit from whoever runs the tests.
_FOREIGN = ("BOILER_SITE", "BOILER_TOKEN_FILE", "BOILER_LOG", "STATE_DIRECTORY")

T = TypeVar("T")


@dataclass(frozen=True)
class Run:
    """A finished `boilerctl` command."""

    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return (
            f"boilerctl {' '.join(self.args)} → exit {self.code}\n"
            f"stdout: {self.stdout}\nstderr: {self.stderr}"
        )

    def ok(self) -> Run:
        assert self.code == 0, str(self)
        assert "Traceback" not in self.stderr, str(self)
        return self

    def json(self) -> Any:
        self.ok()
        return json.loads(self.stdout)

    def refused(self, code: int) -> str:
        """The one line on stderr of a command that exits `code`; nothing on stdout."""
        assert self.code == code, str(self)
        assert "Traceback" not in self.stderr, str(self)
        assert self.stdout == "", str(self)
        lines = self.stderr.splitlines()
        assert len(lines) == 1, str(self)
        return lines[0]


async def boilerctl(*args: str, env: Mapping[str, str]) -> Run:
    """Run `boilerctl ARGS` (not blocking the loop); killed and failed after WALL_LIMIT_S."""
    process = await asyncio.create_subprocess_exec(
        str(BOILERCTL),
        *args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=dict(env),
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), WALL_LIMIT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"boilerctl {' '.join(args)}: no answer in {WALL_LIMIT_S} s") from None
    assert process.returncode is not None
    return Run(tuple(args), process.returncode, out.decode(), err.decode())


def clean_environment(state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _FOREIGN}
    env["STATE_DIRECTORY"] = str(state)
    env["COLUMNS"] = "200"
    return env


async def until(probe: Callable[[], Awaitable[T | None]], what: str) -> T:
    """Poll `probe` until it gives something truthy, which is returned; fails after WALL_LIMIT_S
    (a bound against hangs, not a timing assertion)."""
    last: T | None = None
    try:
        async with asyncio.timeout(WALL_LIMIT_S):
            while True:
                last = await probe()
                if last:
                    return last
                await asyncio.sleep(0.25)
    except TimeoutError:
        raise AssertionError(f"not seen within {WALL_LIMIT_S} s: {what} (last: {last!r})") from None


async def until_holds(condition: Callable[[], bool], what: str) -> None:
    """`until` for a plain condition (one that awaits nothing, e.g. on the plant model)."""

    async def probe() -> bool:
        return condition()

    await until(probe, what)


async def gather_limited(coroutines: Iterable[Coroutine[Any, Any, T]], limit: int = 3) -> list[T]:
    """The coroutines' results in order, at most `limit` running at once (2 cores here: the
    commands' start-up is CPU bound, and the plant and the daemon need their share)."""
    gate = asyncio.Semaphore(limit)

    async def gated(coroutine: Coroutine[Any, Any, T]) -> T:
        async with gate:
            return await coroutine

    return list(await asyncio.gather(*(gated(c) for c in coroutines)))


def caisson(status: Mapping[str, Any], caisson_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in status["caissons"] if c["id"] == caisson_id)
    return found


def override_of(status: Mapping[str, Any], point: str) -> dict[str, Any] | None:
    return next((o for o in status["overrides"] if o["point"] == point), None)


class Harness:
    """The demo plant (in this process, real sockets, real time) and one `boilerctl run` of it
    at a time (a subprocess) keeping its state in `state`."""

    def __init__(self, plant: SimulatedPlant, state: Path, log: Path) -> None:
        self.plant = plant
        self.site: LoadedSite = plant.site
        self.state = state
        self.log = log
        self.env = clean_environment(state)
        self.daemon: asyncio.subprocess.Process | None = None

    # ------------------------------------------------------------------ files

    @property
    def address_file(self) -> Path:
        return address_path(self.site, self.env)

    @property
    def token_file(self) -> Path:
        return token_path(self.site, self.env)

    @property
    def journal_file(self) -> Path:
        return journal_path(self.site, self.env)

    def journal(self, kind: str | None = "operator") -> list[JournalEntry]:
        """The journal's entries of `kind`, oldest first, read as `boilerctl alarms` reads it."""
        with closing(JournalReader(self.journal_file)) as reader:
            return reader.entries(kind=kind)

    # ------------------------------------------------------------------ commands

    async def cli(self, *args: str, env: Mapping[str, str] | None = None) -> Run:
        """`boilerctl ARGS --site <demo>` with the daemon's state directory."""
        return await boilerctl(*args, "--site", str(DEMO), env=env or self.env)

    async def api(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        token: str | None = "",
    ) -> tuple[int, Any]:
        """A raw request to the daemon's API: (HTTP status, JSON answer). token "" sends the
        site's token, None no Authorization header."""
        address = read_address(self.address_file)
        assert address is not None, f"no {self.address_file}: the daemon is not running"
        assert address.url is not None, "the demo site serves its API on TCP"
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token or self.token()}"
        timeout = aiohttp.ClientTimeout(total=10)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.request(method, address.url + path, data=body, headers=headers) as response,
        ):
            return response.status, json.loads(await response.text())

    def token(self) -> str:
        return self.token_file.read_text().strip()

    async def post(self, path: str, **body: Any) -> Any:
        """An action through the API (for a test's set-up and clean-up), which must succeed."""
        status, answer = await self.api("POST", API + path, json.dumps(body).encode())
        assert status == 200, (path, body, answer)
        return answer

    async def status(self) -> dict[str, Any]:
        """GET /status: the document `boilerctl status --json` prints."""
        code, answer = await self.api("GET", API + "/status")
        assert code == 200, answer
        result: dict[str, Any] = answer
        return result

    async def wait_status(
        self, condition: Callable[[dict[str, Any]], bool], what: str
    ) -> dict[str, Any]:
        """The first status that meets `condition` (polled through the API: a `boilerctl`
        process costs a second of CPU on this machine); fails after WALL_LIMIT_S."""

        async def probe() -> dict[str, Any] | None:
            status = await self.status()
            return status if condition(status) else None

        return await until(probe, what)

    async def alarm(self, alarm: str) -> dict[str, Any]:
        code, answer = await self.api("GET", API + "/alarms?all=true")
        assert code == 200, answer
        found: dict[str, Any] = next(a for a in answer["alarms"] if a["alarm"] == alarm)
        return found

    # ------------------------------------------------------------------ the plant

    def command(self, caisson_id: str, what: str) -> float:
        """What the daemon last wrote to a caisson, as the simulated PLC holds it (SI)."""
        values = getattr(self.plant.model.commands, what)
        return float(values[self.plant.model.ids.index(caisson_id)])

    # ------------------------------------------------------------------ the daemon

    async def start_daemon(self) -> None:
        """`boilerctl run`, until it controls every caisson (PLCs in remote) and every device
        answers."""
        assert self.daemon is None
        with self.log.open("a") as stderr:
            self.daemon = await asyncio.create_subprocess_exec(
                str(BOILERCTL),
                "--log-level",
                "info",
                "run",
                "--site",
                str(DEMO),
                *override_args(self.plant),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env=self.env,
            )
        daemon = self.daemon

        async def ready() -> bool:
            assert daemon.returncode is None, f"the daemon exited: {self.log.read_text()[-3000:]}"
            if read_address(self.address_file) is None:
                return False
            try:
                status = await self.status()
            except (aiohttp.ClientError, OSError):
                return False
            return (
                status["plant"] is not None
                and all(c["initialised"] and c["plc_mode"] == "remote" for c in status["caissons"])
                and all(d["health"] == "ok" for d in status["devices"])
            )

        await until(ready, "the daemon controls the plant")

    async def stop_daemon(self, sig: signal.Signals = signal.SIGTERM) -> int:
        """Signal the daemon and wait for it; its exit code."""
        daemon, self.daemon = self.daemon, None
        assert daemon is not None
        if daemon.returncode is None:
            daemon.send_signal(sig)
        try:
            return await asyncio.wait_for(daemon.wait(), WALL_LIMIT_S)
        except TimeoutError:
            daemon.kill()
            await daemon.wait()
            raise AssertionError(f"the daemon did not stop on {sig.name}") from None


@asynccontextmanager
async def running_harness(directory: Path) -> AsyncIterator[Harness]:
    """The demo plant and its daemon, state and log in `directory`; both stopped on exit."""
    plant = SimulatedPlant(load_site(DEMO), start=START, speed=1.0, ephemeral_ports=True)
    await plant.start()
    harness = Harness(plant, directory / "state", directory / "daemon.log")
    try:
        await harness.start_daemon()
        yield harness
    finally:
        try:
            if harness.daemon is not None:
                await harness.stop_daemon()
        finally:
            await plant.stop()

"""The scan cycle on a fake clock with a fake supervisor and fake device writers; the systemd
notifications on a real unix datagram socket."""

from __future__ import annotations

import asyncio
import io
import socket
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from controller.control.arbiter import Source, Write
from controller.control.dispatch import Mode
from controller.control.supervisor import PlantStatus, ScanResult
from controller.cycle import Cycle, DeviceWriter
from controller.fieldbus.image import PointRef, Sample
from controller.fieldbus.modbus_driver import WriteError
from controller.logs import configure_logging
from controller.systemd import Notifier


@pytest.fixture(autouse=True)
def every_level() -> Iterator[None]:
    """Info and debug events reach capture_logs (the suite logs warnings and above)."""
    configure_logging("debug", json_lines=True, stream=io.StringIO())
    yield
    configure_logging("warning", json_lines=False)


STATUS = PlantStatus(Mode.HEAT, 0.0, None, None, 0.0, ())


def write(device: str, point: str, value: float = 1.0) -> Write:
    return Write(PointRef(device, point), value, value, False, Source.AUTO, "test", False)


class FakeTime:
    """Monotonic time that moves only when someone sleeps (or a fake scan says it took long)."""

    def __init__(self) -> None:
        self.now = 100.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0.001)  # a little real time: tasks that are merely ready finish


class FakeSupervisor:
    """Returns the writes it is given for each scan; records scans and confirmations."""

    def __init__(
        self,
        time: FakeTime,
        writes: Callable[[int], list[Write]] = lambda _: [],
        durations: Mapping[int, float] | None = None,
        stop_after: tuple[Cycle, int] | None = None,
    ) -> None:
        self.time = time
        self.writes = writes
        self.durations = durations or {}
        self.scans: list[float] = []
        self.confirmed: list[tuple[Write, float]] = []
        self.stop_after = stop_after

    def scan(self, snapshot: Mapping[PointRef, Sample], now: float) -> ScanResult:
        index = len(self.scans)
        self.scans.append(now)
        self.time.now += self.durations.get(index, 0.0)  # this scan took so long
        if self.stop_after is not None and len(self.scans) >= self.stop_after[1]:
            self.stop_after[0].stop()
        return ScanResult(self.writes(index), STATUS)

    def confirm(self, write: Write, now: float) -> None:
        self.confirmed.append((write, now))


class NoImage:
    def snapshot(self) -> Mapping[PointRef, Sample]:
        return {}


class Recorder:
    """Device writers that record what they were sent; `fail` makes a point's writes raise."""

    def __init__(self) -> None:
        self.sent: list[Write] = []
        self.fail: set[str] = set()

    def writer(self) -> DeviceWriter:
        async def send(w: Write) -> None:
            await asyncio.sleep(0)
            if w.ref.point in self.fail:
                raise WriteError(f"{w.ref}: the device refused {w.value}")
            self.sent.append(w)

        return send


def make_cycle(
    time: FakeTime,
    supervisor: FakeSupervisor,
    writers: Mapping[str, DeviceWriter] | None = None,
    **options: bool | float | Notifier,
) -> Cycle:
    return Cycle(
        supervisor,
        NoImage(),
        writers or {},
        period=1.0,
        clock=time.clock,
        sleep=time.sleep,
        **options,  # type: ignore[arg-type]
    )


async def run_cycles(
    time: FakeTime, supervisor: FakeSupervisor, count: int, **options: object
) -> Cycle:
    cycle = make_cycle(time, supervisor, **options)  # type: ignore[arg-type]
    supervisor.stop_after = (cycle, count)
    await asyncio.wait_for(cycle.run(), 10)
    return cycle


async def test_cycles_tick_on_the_fixed_period() -> None:
    time = FakeTime()
    supervisor = FakeSupervisor(time, durations={0: 0.3, 1: 0.1})
    cycle = await run_cycles(time, supervisor, 4)
    assert supervisor.scans == [100.0, 101.0, 102.0, 103.0]
    assert (cycle.cycles, cycle.overruns, cycle.missed_ticks) == (4, 0, 0)


async def test_an_overrun_is_counted_and_the_ticks_it_missed_are_skipped() -> None:
    time = FakeTime()
    supervisor = FakeSupervisor(time, durations={1: 2.5})  # the second scan takes 2.5 periods
    with capture_logs() as logs:
        cycle = await run_cycles(time, supervisor, 5)
    # 101 overran to 103.5: ticks 102 and 103 are not run late one after the other (no bunching);
    # the schedule restarts from the end of the long cycle
    assert supervisor.scans == [100.0, 101.0, 103.5, 104.5, 105.5]
    assert cycle.overruns == 1
    assert cycle.missed_ticks == 1  # 103 (102 ran late, at 103.5)
    overruns = [e for e in logs if e["event"] == "cycle_overrun"]
    assert len(overruns) == 1
    assert overruns[0]["log_level"] == "warning"


async def test_writes_go_per_device_in_order_and_are_confirmed() -> None:
    time = FakeTime()
    recorder = Recorder()
    writes = [write("a", "speed"), write("b", "cap"), write("a", "heartbeat"), write("b", "beat")]
    supervisor = FakeSupervisor(time, lambda i: writes if i == 0 else [])
    cycle = await run_cycles(
        time, supervisor, 1, writers={"a": recorder.writer(), "b": recorder.writer()}
    )
    assert [w.ref.point for w in recorder.sent if w.ref.device == "a"] == ["speed", "heartbeat"]
    assert [w.ref.point for w in recorder.sent if w.ref.device == "b"] == ["cap", "beat"]
    assert [w for w, _ in supervisor.confirmed] == recorder.sent
    assert cycle.writes_sent == 4


async def test_read_only_sends_nothing_logs_each_write_and_confirms_it() -> None:
    time = FakeTime()
    recorder = Recorder()
    writes = [write("a", "speed", 0.42), write("a", "heartbeat", 7)]
    supervisor = FakeSupervisor(time, lambda _: writes)
    with capture_logs() as logs:
        cycle = await run_cycles(
            time, supervisor, 2, writers={"a": recorder.writer()}, read_only=True
        )
    assert recorder.sent == []
    assert cycle.writes_sent == 0
    assert [w for w, _ in supervisor.confirmed] == writes * 2
    would = [e for e in logs if e["event"] == "would_write"]
    assert len(would) == 4
    assert would[0] == {
        "event": "would_write",
        "log_level": "info",
        "device": "a",
        "point": "speed",
        "value": 0.42,
        "source": "auto",
        "reason": "test",
    }


async def test_a_failing_write_is_counted_not_confirmed_and_logged_once_per_streak() -> None:
    time = FakeTime()
    recorder = Recorder()
    recorder.fail.add("speed")
    writes = [write("a", "speed"), write("a", "heartbeat"), write("b", "cap")]
    supervisor = FakeSupervisor(time, lambda _: writes)
    cycle = make_cycle(time, supervisor, {"a": recorder.writer(), "b": recorder.writer()})
    with capture_logs() as logs:
        for _ in range(3):
            await cycle.tick(time.clock())
        recorder.fail.clear()
        await cycle.tick(time.clock())
    assert cycle.write_failures == {"a": 3}
    # the device's later writes (its heartbeat) wait for its failed setpoint: not sent
    assert cycle.writes_skipped == {"a": 3}
    assert [w.ref.point for w in recorder.sent if w.ref.device == "a"] == ["speed", "heartbeat"]
    assert [w.ref.point for w in recorder.sent if w.ref.device == "b"] == ["cap"] * 4
    confirmed = [w.ref.point for w, _ in supervisor.confirmed]
    assert confirmed.count("speed") == 1  # the last cycle's only
    failures = [e for e in logs if e["event"] == "write_failed"]
    assert len(failures) == 1
    assert failures[0]["device"] == "a"
    assert failures[0]["point"] == "speed"
    assert failures[0]["error"] == "a.speed: the device refused 1.0"
    recovered = [e for e in logs if e["event"] == "device_writes_recovered"]
    assert recovered == [
        {"event": "device_writes_recovered", "log_level": "info", "device": "a", "failures": 3}
    ]


async def test_a_slow_device_does_not_hold_the_cycle_of_the_others() -> None:
    time = FakeTime()
    recorder = Recorder()
    release = asyncio.Event()

    async def stuck(w: Write) -> None:
        await release.wait()
        recorder.sent.append(w)

    writes = [write("slow", "speed"), write("fast", "cap")]
    supervisor = FakeSupervisor(time, lambda _: writes)
    cycle = make_cycle(time, supervisor, {"slow": stuck, "fast": recorder.writer()})
    await asyncio.wait_for(cycle.tick(time.clock(), deadline=time.clock() + 1.0), 5)
    await asyncio.wait_for(cycle.tick(time.clock(), deadline=time.clock() + 1.0), 5)
    assert [w.ref.device for w in recorder.sent] == ["fast", "fast"]
    assert cycle.writes_skipped == {"slow": 1}  # its second cycle's write: still busy
    release.set()
    await asyncio.sleep(0.01)
    assert [w.ref.device for w in recorder.sent] == ["fast", "fast", "slow"]
    await cycle.tick(time.clock(), deadline=time.clock() + 1.0)
    assert [w.ref.device for w in recorder.sent][-2:] in (["slow", "fast"], ["fast", "slow"])
    await cycle.close()


async def test_a_scan_that_raises_is_counted_and_the_cycle_goes_on() -> None:
    time = FakeTime()

    def writes(index: int) -> list[Write]:
        if index == 1:
            raise RuntimeError("a bug")
        return []

    supervisor = FakeSupervisor(time, writes)
    with capture_logs() as logs:
        cycle = await run_cycles(time, supervisor, 3)
    assert cycle.scan_failures == 1
    assert cycle.cycles == 3
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["scan_failed"]


# ------------------------------------------------------------------ systemd


@pytest.fixture(params=["path", "abstract"])
def notify_socket(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, socket.socket]]:
    """A unix datagram socket as systemd listens on, and NOTIFY_SOCKET's value for it."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if request.param == "path":
        address = str(tmp_path / "notify")
        server.bind(address)
    else:
        address = f"@boiler-test-{uuid.uuid4().hex}"
        server.bind("\0" + address[1:])
    server.settimeout(5)
    yield address, server
    server.close()


async def test_watchdog_datagrams_ready_each_cycle_and_stopping(
    notify_socket: tuple[str, socket.socket],
) -> None:
    address, server = notify_socket
    time = FakeTime()
    notifier = Notifier(address)
    await run_cycles(time, FakeSupervisor(time), 3, notifier=notifier)
    notifier.close()
    received = [server.recv(256).decode() for _ in range(5)]
    assert received == ["READY=1", "WATCHDOG=1", "WATCHDOG=1", "WATCHDOG=1", "STOPPING=1"]


def test_the_notifier_reads_notify_socket_and_does_nothing_without_it(
    monkeypatch: pytest.MonkeyPatch, notify_socket: tuple[str, socket.socket]
) -> None:
    address, server = notify_socket
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert not Notifier.from_environment().notify("READY=1")
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    notifier = Notifier.from_environment()
    assert notifier.notify("READY=1")
    assert server.recv(256) == b"READY=1"
    notifier.close()


def test_an_unreachable_notify_socket_is_logged_once_and_not_raised(tmp_path: Path) -> None:
    notifier = Notifier(str(tmp_path / "nobody-listens"))
    with capture_logs() as logs:
        assert not notifier.notify("WATCHDOG=1")
        assert not notifier.notify("WATCHDOG=1")
    assert [e["event"] for e in logs] == ["systemd_notify_failed"]
    notifier.close()


async def test_late_cycles_at_start_up_are_not_overruns() -> None:
    time = FakeTime()
    # the second cycle waits 6 periods for the sessions to open; the sixth overruns for real
    supervisor = FakeSupervisor(time, durations={1: 6.0, 5: 2.5})
    with capture_logs() as logs:
        cycle = await run_cycles(time, supervisor, 8, startup_cycles=3)
    assert supervisor.scans == [100.0, 101.0, 107.0, 108.0, 109.0, 110.0, 112.5, 113.5]
    assert (cycle.overruns, cycle.missed_ticks) == (1, 1)  # the sixth cycle only
    late = [e for e in logs if e["event"] == "cycle_late_at_start"]
    assert [(e["cycle"], e["log_level"]) for e in late] == [(2, "debug")]
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["cycle_overrun"]

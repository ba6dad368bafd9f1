"""The historian writer: batching, back-off, alarms and restarts, on a real spool file.

The fake target stands for the network only (what a server answers, scripted per attempt); the
spool is the real SQLite file. The real servers (InfluxDB v1 and v2 APIs) are exercised in
tests/integration. Time is injected: `clock` is a fake wall clock (spool ages, how long delivery
has been failing) and `sleep` records the back-off delays instead of waiting them.
"""

from __future__ import annotations

import asyncio
import gzip
import inspect
import os
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import pytest

from controller.historian.spool import Spool, SpoolReader
from controller.historian.targets import DeliveryError, Failure
from controller.historian.writer import Condition, HistorianWriter, WriterSettings

LIMIT = 1e9
Outcome = Callable[[list[str]], DeliveryError | None]


def lines_of(count: int, tag: str = "m") -> list[str]:
    return [f"{tag},n={i} v={os.urandom(8).hex()}i {i}" for i in range(count)]


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Sleep:
    """Records each requested delay; `clock` (if given) moves on by it, as if it had passed."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.delays: list[float] = []
        self.clock = clock

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        if self.clock is not None:
            self.clock.now += delay
        await asyncio.sleep(0)


class FakeTarget:
    """Stands for the network: each attempt's lines are recorded; `outcome` decides whether the
    "server" takes them (None) or answers with an error."""

    describe = "fake target"

    def __init__(self, outcome: Outcome | None = None) -> None:
        self.outcome: Outcome = outcome or (lambda lines: None)
        self.attempts: list[list[str]] = []
        self.batches: list[list[str]] = []  # taken
        self.closed = 0
        self.on_attempt: Callable[[], None] = lambda: None

    @property
    def delivered(self) -> list[str]:
        return [line for batch in self.batches for line in batch]

    async def send(self, body: bytes) -> None:
        lines = gzip.decompress(body).decode().splitlines()
        self.attempts.append(lines)
        self.on_attempt()
        error = self.outcome(lines)
        if error is not None:
            raise error
        self.batches.append(lines)

    async def close(self) -> None:
        self.closed += 1


def scripted(*errors: DeliveryError) -> Outcome:
    """These answers in turn, then success."""
    pending = list(errors)

    def outcome(lines: list[str]) -> DeliveryError | None:
        return pending.pop(0) if pending else None

    return outcome


def down() -> DeliveryError:
    return DeliveryError(Failure.UNREACHABLE, "connection refused")


def refused() -> DeliveryError:
    return DeliveryError(Failure.REFUSED, "HTTP 401: unauthorized", status=401)


class Conditions:
    """Records the writer's alarms, and when (by `clock`, if given) each was raised or cleared."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.calls: list[tuple[Condition, bool]] = []
        self.times: list[float] = []
        self.clock = clock

    def __call__(self, condition: Condition, active: bool, message: str) -> None:
        assert message or not active  # a raised alarm says what
        self.calls.append((condition, active))
        self.times.append(self.clock() if self.clock else 0.0)


async def until(check: Callable[[], bool], what: str) -> None:
    """Yield to the writer's tasks (and its spool thread) until `check()` holds. The bound only
    turns a hang into a failure; no test depends on how fast anything is."""
    for _ in range(20_000):
        if check():
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"never happened: {what}")


async def delivered(writer: HistorianWriter, target: FakeTarget, lines: list[str]) -> None:
    """Until the target has taken exactly `lines` and the writer has seen every answer (so
    that stopping it then does not resend a batch whose answer was still on its way)."""
    await until(
        lambda: target.delivered == lines and writer.stats.sent_points == len(lines),
        f"{len(lines)} lines delivered",
    )


@asynccontextmanager
async def running(writer: HistorianWriter) -> AsyncIterator[HistorianWriter]:
    await writer.start()
    try:
        yield writer
    finally:
        if writer.running:
            await writer.stop()


def make_writer(
    path: Path,
    target: FakeTarget | None,
    *,
    clock: Clock | None = None,
    sleep: Sleep | None = None,
    conditions: Conditions | None = None,
    limit: float = LIMIT,
    **settings: float,
) -> HistorianWriter:
    options: dict[str, float] = {"batch_points": 10, "batch_age": 0.0}
    options.update(settings)
    return HistorianWriter(
        path,
        limit,
        target,
        WriterSettings(**options),  # type: ignore[arg-type]
        on_condition=conditions or Conditions(),
        clock=clock or Clock(),
        sleep=sleep or Sleep(),
    )


def spooled(writer: HistorianWriter) -> bool:
    """Everything submitted is in the spool or delivered."""
    return writer.stats.submitted_points == writer.stats.sent_points + writer.depth.points + (
        writer.depth.rejected_points
    )


def reader_lines(path: Path, *, rejected: bool = False) -> list[str]:
    reader = SpoolReader(path)
    try:
        return list(reader.lines(rejected=rejected))
    finally:
        reader.close()


def saved_state(path: Path) -> dict[str, str]:
    """The spool file's saved state, read as another process would."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return dict(db.execute("SELECT key, value FROM state").fetchall())
    finally:
        db.close()


def waiting_points(path: Path) -> int:
    reader = SpoolReader(path)
    try:
        return reader.depth()[0]
    finally:
        reader.close()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "site.spool"


# ------------------------------------------------------------------ delivery


async def test_every_line_is_delivered_once_and_in_order(path: Path) -> None:
    target = FakeTarget()
    submitted: list[str] = []
    async with running(make_writer(path, target)) as writer:
        for call in range(40):
            lines = lines_of(1 + call % 7, tag=f"c{call}")
            submitted += lines
            writer.submit(lines)
            if call % 5 == 0:  # some calls meet in one chunk, others not
                await until(lambda: spooled(writer), "spooled")
        await delivered(writer, target, submitted)
        assert writer.stats.sent_batches == len(target.batches) > 1
        assert writer.depth.points == 0
    assert target.delivered == submitted  # nothing sent twice, even at stop
    assert target.closed == 1
    assert writer.active == set()


async def test_batches_by_size_never_split_a_chunk(path: Path) -> None:
    clock = Clock()
    target = FakeTarget()
    submitted: list[str] = []
    # batch_age far away: only the size sends (the fake clock does not move)
    async with running(make_writer(path, target, clock=clock, batch_age=1000.0)) as writer:
        for call in range(9):
            lines = lines_of(3, tag=f"c{call}")  # 27 lines in chunks of 3
            submitted += lines
            writer.submit(lines)
            await until(lambda: spooled(writer), "the call's lines spooled")
        # ≥ 10 waiting triggers a send; a batch takes whole chunks up to 10 points: 3 of 3
        await delivered(writer, target, submitted[:18])
        assert [len(batch) for batch in target.batches] == [9, 9]
        assert writer.depth.points == 9  # below batch_points: waits for its age
        for _ in range(20):
            await asyncio.sleep(0)
        assert len(target.batches) == 2

        clock.now += 1000.0
        writer.remember("wake", "1")  # a flush wakes the sender, which sees the age
        await delivered(writer, target, submitted)
        assert [len(batch) for batch in target.batches] == [9, 9, 9]
    assert all(len(attempt) <= 10 for attempt in target.attempts)


async def test_batches_by_age(path: Path) -> None:
    clock = Clock()
    target = FakeTarget()
    async with running(make_writer(path, target, clock=clock, batch_age=5.0)) as writer:
        lines = lines_of(4)
        writer.submit(lines)
        await until(lambda: writer.depth.points == 4, "spooled")
        clock.now += 4.0  # not yet 5 s old
        writer.remember("wake", "1")  # a flush wakes the sender, which looks at the age
        await until(lambda: saved_state(path).get("wake") == "1", "flushed")
        for _ in range(20):
            await asyncio.sleep(0)
        assert target.attempts == []

        clock.now += 1.0  # 5 s old now
        writer.remember("wake", "2")
        await delivered(writer, target, lines)
        assert len(target.batches) == 1


async def test_stop_drains_what_waits(path: Path) -> None:
    target = FakeTarget()
    writer = make_writer(path, target, batch_age=1000.0)
    async with running(writer):
        writer.submit(lines := lines_of(3))
    # stop() spooled and sent them although neither size nor age was reached
    assert target.delivered == lines
    assert waiting_points(path) == 0


# ------------------------------------------------------------------ failures


async def test_retry_after_is_honoured(path: Path) -> None:
    sleep = Sleep()
    target = FakeTarget(
        scripted(DeliveryError(Failure.UNREACHABLE, "HTTP 429", status=429, retry_after=7.0))
    )
    async with running(make_writer(path, target, sleep=sleep)) as writer:
        writer.submit(lines := lines_of(5))
        await delivered(writer, target, lines)
    assert sleep.delays == [7.0]
    assert len(target.attempts) == 2


async def test_retry_after_is_capped(path: Path) -> None:
    sleep = Sleep()
    target = FakeTarget(
        scripted(DeliveryError(Failure.UNREACHABLE, "HTTP 503", status=503, retry_after=1e6))
    )
    async with running(make_writer(path, target, sleep=sleep, retry_after_cap=90.0)) as writer:
        writer.submit(lines := lines_of(5))
        await delivered(writer, target, lines)
    assert sleep.delays == [90.0]


async def test_unreachable_backs_off_alarms_late_and_loses_nothing(path: Path) -> None:
    clock = Clock()
    sleep = Sleep(clock)  # the fake time moves on by each back-off
    conditions = Conditions(clock)
    start = clock.now
    alarm_after, back = 30.0, 100.0
    attempts: list[tuple[float, bool]] = []  # (when, alarm active as the attempt starts)

    def outcome(lines: list[str]) -> DeliveryError | None:
        attempts.append((clock.now, Condition.UNREACHABLE in writer.active))
        return down() if clock.now < start + back else None

    target = FakeTarget(outcome)
    writer = make_writer(
        path,
        target,
        clock=clock,
        sleep=sleep,
        conditions=conditions,
        retry_base=1.0,
        retry_cap=4.0,
        unreachable_alarm=alarm_after,
        batch_points=1000,
        backlog_alarm=1e9,
    )
    submitted: list[str] = []
    async with running(writer):
        for call in range(5):
            writer.submit(lines := lines_of(3, tag=f"c{call}"))
            submitted += lines
            await until(lambda: spooled(writer), "spooled")
        await delivered(writer, target, submitted)
        assert writer.active == set()

    failures = len(sleep.delays)
    assert failures == len(attempts) - 1
    assert failures >= back / 4.0  # waits of at most 4 s had to cover 100 s
    # exponential back-off with full jitter: the n-th wait within (0, min(cap, base·2ⁿ)]
    for n, delay in enumerate(sleep.delays):
        assert 0 < delay <= min(4.0, 1.0 * 2**n), (n, delay)
    assert len(set(sleep.delays)) > 1  # jittered, not a fixed beat

    # the alarm: raised once, not before 30 s of failing, and at the latest by the first
    # failure that came 30 s or more after the first one
    assert conditions.calls == [(Condition.UNREACHABLE, True), (Condition.UNREACHABLE, False)]
    first = attempts[0][0]
    raised_at, cleared_at = conditions.times
    assert raised_at - first >= alarm_after
    late_failure = next(when for when, _ in attempts[:-1] if when - first >= alarm_after)
    assert raised_at <= late_failure
    for k, (when, active) in enumerate(attempts):  # as each attempt saw it
        assert when >= raised_at if active else when <= raised_at, k
    assert cleared_at == attempts[-1][0]  # by the first success
    assert writer.stats.failures == {Failure.UNREACHABLE: failures}
    assert target.delivered == submitted


async def test_unreachable_alarm_not_raised_before_its_delay(path: Path) -> None:
    clock = Clock()
    conditions = Conditions()
    seen: list[set[Condition]] = []

    def outcome(lines: list[str]) -> DeliveryError | None:
        if len(target.attempts) <= 4:
            clock.now += 10.0  # each failed attempt 10 s later than the last: 0, 10, 20, 30
            return down()
        return None

    target = FakeTarget(outcome)
    target.on_attempt = lambda: seen.append(set(writer.active))
    writer = make_writer(path, target, clock=clock, conditions=conditions, unreachable_alarm=25.0)
    async with running(writer):
        writer.submit(lines := lines_of(2))
        await delivered(writer, target, lines)
    # the clock moves 10 s before each answer: the failures come 0, 10, 20 and 30 s after the
    # first one
    assert seen[:4] == [set(), set(), set(), set()]
    assert seen[4] == {Condition.UNREACHABLE}  # raised by the 4th failure (30 s ≥ 25 s)
    assert conditions.calls == [(Condition.UNREACHABLE, True), (Condition.UNREACHABLE, False)]


async def test_refused_alarms_at_once_keeps_the_data_and_backs_off_doubling(path: Path) -> None:
    sleep = Sleep()
    conditions = Conditions()
    target = FakeTarget(scripted(*(refused() for _ in range(7))))
    spool_seen: list[int] = []
    active_seen: list[set[Condition]] = []

    def observe() -> None:
        spool_seen.append(waiting_points(path))
        active_seen.append(set(writer.active))

    target.on_attempt = observe
    writer = HistorianWriter(
        path,
        LIMIT,
        target,
        WriterSettings(batch_points=10, batch_age=0.0),  # default refusal timings
        on_condition=conditions,
        clock=Clock(),
        sleep=sleep,
    )
    async with running(writer):
        writer.submit(lines := lines_of(6))
        await delivered(writer, target, lines)
    # 60 s after the first refusal, doubling, capped at 600 s: no tight loop
    assert sleep.delays == [60.0, 120.0, 240.0, 480.0, 600.0, 600.0, 600.0]
    assert spool_seen == [6] * 8  # every attempt found the data still in the spool
    assert active_seen[0] == set()
    assert all(active == {Condition.REFUSED} for active in active_seen[1:])  # at once
    assert conditions.calls == [(Condition.REFUSED, True), (Condition.REFUSED, False)]
    assert writer.stats.failures == {Failure.REFUSED: 7}


async def test_refusal_delay_starts_over_after_a_success(path: Path) -> None:
    sleep = Sleep()
    target = FakeTarget(scripted(refused(), refused()))
    async with running(make_writer(path, target, sleep=sleep, refused_retry=5.0)) as writer:
        writer.submit(first := lines_of(2, tag="a"))
        await delivered(writer, target, first)
        target.outcome = scripted(refused())
        writer.submit(second := lines_of(2, tag="b"))
        await delivered(writer, target, first + second)
    assert sleep.delays == [5.0, 10.0, 5.0]


async def test_malformed_batch_is_set_aside_and_later_batches_delivered(path: Path) -> None:
    conditions = Conditions()
    target = FakeTarget(
        scripted(DeliveryError(Failure.MALFORMED, "HTTP 400: unable to parse", status=400))
    )
    async with running(make_writer(path, target, conditions=conditions)) as writer:
        writer.submit(bad := lines_of(3, tag="bad"))
        await until(lambda: writer.depth.rejected_points == 3, "set aside")
        assert Condition.REJECTED_DATA in writer.active
        assert writer.depth.points == 0
        writer.submit(good := lines_of(4, tag="good"))
        await delivered(writer, target, good)
    assert target.attempts == [bad, good]  # never resent
    assert reader_lines(path, rejected=True) == bad  # kept for export
    assert reader_lines(path) == []
    assert conditions.calls[0] == (Condition.REJECTED_DATA, True)


async def test_too_large_halves_the_batch_and_delivers_everything(path: Path) -> None:
    clock = Clock()
    lines = lines_of(16)
    spool = Spool(path, LIMIT, clock=clock)  # left by an earlier run: 16 chunks of one line
    for line in lines:
        spool.append([line])
    spool.close()

    def outcome(batch: list[str]) -> DeliveryError | None:
        if len(batch) > 4:
            return DeliveryError(Failure.TOO_LARGE, "HTTP 413", status=413)
        return None

    sleep = Sleep()
    target = FakeTarget(outcome)
    writer = make_writer(path, target, clock=clock, sleep=sleep, batch_points=16)
    async with running(writer):
        await delivered(writer, target, lines)
    assert [len(attempt) for attempt in target.attempts] == [16, 8, 4, 4, 4, 4]
    assert sleep.delays == []  # retried at once, smaller
    assert writer.depth.rejected_points == 0


async def test_a_single_chunk_too_large_is_set_aside(path: Path) -> None:
    def outcome(batch: list[str]) -> DeliveryError | None:
        if len(batch) > 4:
            return DeliveryError(Failure.TOO_LARGE, "HTTP 413", status=413)
        return None

    target = FakeTarget(outcome)
    async with running(make_writer(path, target)) as writer:
        writer.submit(big := lines_of(6, tag="big"))  # one chunk: cannot be made smaller
        await until(lambda: writer.depth.rejected_points == 6, "set aside")
        writer.submit(small := lines_of(2, tag="small"))
        await delivered(writer, target, small)
    assert target.attempts == [big, small]
    assert reader_lines(path, rejected=True) == big


async def test_eviction_with_a_target_raises_spool_evicting(path: Path) -> None:
    conditions = Conditions()
    up = False
    target = FakeTarget(lambda lines: None if up else down())
    limit = 20_000
    writer = make_writer(
        path, target, conditions=conditions, limit=limit, batch_points=50, batch_age=1e9
    )
    async with running(writer):
        submitted: list[str] = []
        while writer.depth.evicted_points == 0:
            writer.submit(lines := lines_of(10))
            submitted += lines
            await until(partial(spooled_or_evicted, writer, len(submitted)), "spooled")
        assert Condition.SPOOL_EVICTING in writer.active
        assert writer.depth.bytes <= limit
        assert target.batches == []
        kept = reader_lines(path)
        assert kept == submitted[-len(kept) :]  # the oldest went

        up = True
        writer.remember("wake", "1")
        await until(lambda: writer.depth.points < 50, "the backlog sent")
        assert target.delivered == kept[: len(target.delivered)]
        assert Condition.SPOOL_EVICTING not in writer.active  # well below the limit again
    assert conditions.calls == [(Condition.SPOOL_EVICTING, True), (Condition.SPOOL_EVICTING, False)]


def spooled_or_evicted(writer: HistorianWriter, submitted: int) -> bool:
    return writer.depth.points + writer.depth.evicted_points == submitted


async def test_eviction_without_a_target_is_no_alarm(path: Path) -> None:
    conditions = Conditions()
    writer = make_writer(path, None, conditions=conditions, limit=4000)
    async with running(writer):
        submitted = 0
        while writer.depth.evicted_points == 0:
            writer.submit(lines_of(20))
            submitted += 20
            await until(partial(spooled_or_evicted, writer, submitted), "spooled")
    assert conditions.calls == []  # spool-only by design keeps the newest data


# ------------------------------------------------------------------ restarts


async def test_stop_with_a_dead_target_keeps_the_data_for_the_next_run(path: Path) -> None:
    dead = FakeTarget(lambda lines: down())
    first = make_writer(path, dead, batch_age=1000.0)
    await first.start()
    first.submit(lines := lines_of(7))
    await first.stop()  # must not raise: the target's failure is no failure of stop()
    assert not first.running
    assert dead.closed == 1
    assert reader_lines(path) == lines

    alive = FakeTarget()
    async with running(make_writer(path, alive)) as second:
        assert second.depth.points == 7  # known at start
        await delivered(second, alive, lines)
    assert waiting_points(path) == 0
    assert alive.delivered == lines


async def test_remembered_state_is_recalled_by_the_next_writer(path: Path) -> None:
    async with running(make_writer(path, None)) as first:
        assert first.recalled == {}
        first.remember("kpi", '{"hour": {"start": "2026-01-15T06:00:00+00:00"}}')
        first.remember("other", "1")
        first.remember("other", "2")  # the latest value wins
    async with running(make_writer(path, FakeTarget())) as second:
        assert second.recalled == {
            "kpi": '{"hour": {"start": "2026-01-15T06:00:00+00:00"}}',
            "other": "2",
        }


async def test_submit_never_waits_for_the_spool(path: Path) -> None:
    assert not inspect.iscoroutinefunction(HistorianWriter.submit)
    target = FakeTarget()
    async with running(make_writer(path, target, max_pending=50)) as writer:
        # Hold the spool's one thread (as a stalled disk would): submit() still returns.
        release = threading.Event()
        held = asyncio.get_running_loop().run_in_executor(writer._executor, release.wait)
        first = lines_of(30, tag="old")
        second = lines_of(40, tag="new")
        writer.submit(first)
        writer.submit(second)  # past max_pending: the oldest lines in memory are dropped
        assert writer.stats.submitted_points == 70
        assert writer.stats.dropped_points == 20
        for _ in range(20):
            await asyncio.sleep(0)
        assert target.attempts == []
        assert waiting_points(path) == 0  # nothing could reach the disk yet
        release.set()
        await held
        await delivered(writer, target, (first + second)[20:])

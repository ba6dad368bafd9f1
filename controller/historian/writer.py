"""The historian writer: lines from the cycle → durable spool → InfluxDB, never blocking the cycle.

`submit()` is all the cycle calls: it appends lines to a list in memory and wakes the spooler,
which commits them to the spool (on the spool's own thread) as soon as it can, so a crash loses at
most the few milliseconds between the two. The sender takes batches from the spool, oldest first,
once `batch_points` are waiting or the oldest waiting point is `batch_age` old, and removes a batch
only when the database has acknowledged it: delivery is at least once, and a batch sent twice
lands once because a point is its series and timestamp.

What the database answers decides what happens next (targets.Failure):
- unreachable (no answer, 5xx, 429): retry after an exponential back-off with jitter, or after
  the server's Retry-After; alarm once delivery has failed for `unreachable_alarm` seconds;
- refused (401, 403, 404...): alarm at once, keep the data, retry every `refused_retry` seconds
  (doubling) — an operator must fix the credentials or names;
- malformed (400): the batch is set aside in the spool (exportable, never resent), alarm;
- too large (413): smaller batches from then on.
The spool's eviction (past its size limit) and a growing backlog are alarmed too. Alarms are
`Condition`s given to `on_condition` (raised and cleared), and logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import ParamSpec, TypeVar

import structlog

from controller.fieldbus.health import Backoff
from controller.historian.spool import Batch, Spool, SpoolDepth
from controller.historian.targets import DeliveryError, Failure, Target

log = structlog.get_logger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


class Condition(StrEnum):
    """The historian's own alarm conditions."""

    UNREACHABLE = "historian_unreachable"
    REFUSED = "historian_refused"
    REJECTED_DATA = "historian_rejected_data"
    SPOOL_EVICTING = "historian_spool_evicting"
    SPOOL_GROWING = "historian_spool_growing"


ConditionHandler = Callable[[Condition, bool, str], None]


@dataclass(frozen=True)
class WriterSettings:
    batch_points: int = 5000
    batch_age: float = 5.0  # s
    retry_base: float = 1.0  # s: back-off after the first failure (full jitter up to it)
    retry_cap: float = 30.0
    refused_retry: float = 60.0  # s after a refusal, doubling up to `refused_cap`
    refused_cap: float = 600.0
    retry_after_cap: float = 600.0  # a server's Retry-After is honoured up to this
    unreachable_alarm: float = 60.0  # s of failed delivery before the alarm
    backlog_alarm: float = 300.0  # s: the oldest waiting point older than this → alarm
    max_pending: int = 1_000_000  # lines in memory if the spool's disk stalls (oldest dropped)
    drain_timeout: float = 2.0  # s spent sending what is left at stop


@dataclass
class WriterStats:
    submitted_points: int = 0
    sent_points: int = 0
    sent_batches: int = 0
    failures: dict[str, int] = field(default_factory=dict)  # by Failure kind
    dropped_points: int = 0  # from memory, the spool's disk stalled
    last_error: str | None = None


def _no_handler(condition: Condition, active: bool, message: str) -> None:
    pass


class HistorianWriter:
    def __init__(
        self,
        spool_path: Path,
        spool_limit: float,
        target: Target | None,
        settings: WriterSettings | None = None,
        *,
        on_condition: ConditionHandler = _no_handler,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """clock: wall-clock seconds (spool ages). sleep: the back-off waits (tests record them)."""
        self.spool_path = spool_path
        self.spool_limit = spool_limit
        self.target = target
        self.settings = settings or WriterSettings()
        self.stats = WriterStats()
        self.depth = SpoolDepth(0, 0, 0, None, 0, 0)
        self.active: set[Condition] = set()
        self.on_condition = on_condition
        self._clock, self._sleep = clock, sleep
        self._pending: list[str] = []
        self._state: dict[str, str] = {}  # to save with the next flush
        self.recalled: dict[str, str] = {}  # state saved by an earlier run, read at start
        self._wake = asyncio.Event()
        self._spooled = asyncio.Event()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="historian-spool")
        self._spool: Spool | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._max_points = self.settings.batch_points
        self._failing_since: float | None = None  # first failure of the present streak
        self._unreachable_since: float | None = None  # first "unreachable" of the streak
        self._draining = False

    # ------------------------------------------------------------------ the cycle's side

    def submit(self, lines: Sequence[str]) -> None:
        """Queue lines for the spool. Never blocks, never raises on I/O."""
        if not lines:
            return
        self._pending.extend(lines)
        self.stats.submitted_points += len(lines)
        excess = len(self._pending) - self.settings.max_pending
        if excess > 0:
            del self._pending[:excess]
            self.stats.dropped_points += excess
            log.error("historian_memory_full", dropped_points=excess, spool=str(self.spool_path))
        self._wake.set()

    def remember(self, key: str, value: str) -> None:
        """Save a small state durably with the next flush (read back as `recalled` at start)."""
        self._state[key] = value
        self._wake.set()

    # ------------------------------------------------------------------ life cycle

    @property
    def running(self) -> bool:
        """Started and not yet stopped."""
        return self._spool is not None

    async def start(self) -> None:
        """Open the spool (what an earlier run left in it is sent first) and start the tasks."""
        self._spool = await self._io(Spool, self.spool_path, self.spool_limit, clock=self._clock)
        self.depth = await self._io(self._spool.depth)
        self.recalled = await self._io(self._spool.saved_state)
        log.info(
            "historian_started",
            target=self.target.describe if self.target else None,
            spool=str(self.spool_path),
            waiting_points=self.depth.points,
        )
        self._tasks = [asyncio.create_task(self._spool_loop(), name="historian-spool")]
        if self.target is not None:
            self._tasks.append(asyncio.create_task(self._send_loop(), name="historian-send"))

    async def stop(self) -> None:
        """Spool what is queued, send what can be sent within `drain_timeout`, close."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._spool is None:
            self._executor.shutdown()
            return
        await self._flush()
        if self.target is not None and self.depth.points:
            self._draining = True
            # A last try, briefly: what is not taken stays in the spool for the next start.
            with contextlib.suppress(TimeoutError, DeliveryError):
                await asyncio.wait_for(self._drain(), self.settings.drain_timeout)
        if self.target is not None:
            await self.target.close()
        await self._io(self._spool.close)
        self._spool = None
        self._executor.shutdown()
        log.info(
            "historian_stopped",
            sent_points=self.stats.sent_points,
            waiting_points=self.depth.points,
        )

    async def _io(self, function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run a spool call on the spool's thread (SQLite and gzip stay off the event loop)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, partial(function, *args, **kwargs))

    # ------------------------------------------------------------------ spooling

    async def _spool_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._flush()

    async def _flush(self) -> None:
        assert self._spool is not None
        lines, self._pending = self._pending, []
        state, self._state = self._state, {}
        for key, value in state.items():
            await self._io(self._spool.save_state, key, value)
        if lines:
            evicted = await self._io(self._spool.append, lines, self.settings.batch_points)
            if evicted:
                self._evicted(evicted)
        self.depth = await self._io(self._spool.depth)
        self._check_spool()
        self._check_delivery()
        self._spooled.set()

    def _evicted(self, points: int) -> None:
        if self.target is None:  # spool-only by design: it keeps the newest data
            log.info("historian_spool_full", evicted_points=points, limit_bytes=self.spool_limit)
            return
        self._raise(
            Condition.SPOOL_EVICTING,
            f"historian spool full ({self.spool_limit / 1e6:.0f} MB): oldest data evicted",
            evicted_points=points,
        )

    def _check_spool(self) -> None:
        if self.target is None:
            return
        if Condition.SPOOL_EVICTING in self.active and self.depth.bytes < 0.9 * self.spool_limit:
            self._clear(Condition.SPOOL_EVICTING)
        age = self.waiting_age()
        if age is not None and age > self.settings.backlog_alarm:
            self._raise(
                Condition.SPOOL_GROWING,
                f"historian behind: oldest unsent data {age / 60:.0f} min old",
                waiting_points=self.depth.points,
            )
        elif Condition.SPOOL_GROWING in self.active and (age is None or age < 60.0):
            self._clear(Condition.SPOOL_GROWING)

    def _check_delivery(self) -> None:
        """Alarm a delivery failing for `unreachable_alarm` seconds (checked every flush, so the
        alarm does not wait for the next retry)."""
        if self._unreachable_since is None or self.target is None:
            return
        failing_for = self._clock() - self._unreachable_since
        if failing_for >= self.settings.unreachable_alarm:
            self._raise(
                Condition.UNREACHABLE,
                f"{self.target.describe} unreachable for {failing_for:.0f} s: "
                f"{self.stats.last_error}",
            )

    def waiting_age(self) -> float | None:
        """Seconds since the oldest waiting point was spooled; None when nothing waits."""
        if self.depth.oldest is None:
            return None
        return max(self._clock() - self.depth.oldest, 0.0)

    # ------------------------------------------------------------------ sending

    async def _send_loop(self) -> None:
        unreachable = Backoff(base=self.settings.retry_base, cap=self.settings.retry_cap)
        refused = self.settings.refused_retry
        while True:
            self._spooled.clear()
            if not self._due():
                age = self.waiting_age()
                timeout = None if age is None else max(self.settings.batch_age - age, 0.01)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._spooled.wait(), timeout)
                continue
            try:
                await self._send_one()
            except DeliveryError as error:
                delay = self._failed(error, unreachable, refused)
                if error.kind is Failure.REFUSED:
                    refused = min(refused * 2, self.settings.refused_cap)
                if delay:
                    await self._sleep(delay)
                continue
            unreachable.reset()
            refused = self.settings.refused_retry

    def _due(self) -> bool:
        if self.depth.points == 0:
            return False
        if self._draining or self.depth.points >= self._max_points:
            return True
        age = self.waiting_age()
        return age is not None and age >= self.settings.batch_age

    async def _drain(self) -> None:
        while self.depth.points:
            await self._send_one()

    async def _send_one(self) -> None:
        assert self._spool is not None
        assert self.target is not None
        batch = await self._io(self._spool.take, self._max_points)
        if batch is None:
            self.depth = await self._io(self._spool.depth)
            return
        try:
            await self.target.send(batch.body)
        except DeliveryError as error:
            if error.kind is Failure.MALFORMED or (
                error.kind is Failure.TOO_LARGE and len(batch.ids) == 1
            ):
                await self._set_aside(batch, error)
            raise
        await self._io(self._spool.remove, batch.ids)
        self.depth = await self._io(self._spool.depth)
        self.stats.sent_points += batch.points
        self.stats.sent_batches += 1
        if self._failing_since is not None:
            log.info("historian_delivering", target=self.target.describe, points=batch.points)
        self._failing_since = self._unreachable_since = None
        self.stats.last_error = None
        for condition in (Condition.UNREACHABLE, Condition.REFUSED, Condition.REJECTED_DATA):
            self._clear(condition)
        self._check_spool()

    async def _set_aside(self, batch: Batch, error: DeliveryError) -> None:
        assert self._spool is not None
        await self._io(self._spool.reject, batch.ids, str(error))
        self.depth = await self._io(self._spool.depth)

    def _failed(self, error: DeliveryError, unreachable: Backoff, refused: float) -> float:
        """Count, log and alarm a failed send; the delay before the next attempt."""
        assert self.target is not None
        kind = error.kind
        self.stats.failures[kind] = self.stats.failures.get(kind, 0) + 1
        first = self._failing_since is None
        if first:
            self._failing_since = self._clock()
        self.stats.last_error = str(error)
        fields = {
            "target": self.target.describe,
            "error": str(error),
            "kind": str(kind),
            "waiting_points": self.depth.points,
        }
        if kind is Failure.MALFORMED:
            self._raise(
                Condition.REJECTED_DATA,
                f"historian refused a batch as malformed, set aside in the spool: {error}",
            )
            return 0.0
        if kind is Failure.TOO_LARGE:
            self._max_points = max(1, self._max_points // 2)
            log.warning("historian_batch_too_large", **fields, batch_points=self._max_points)
            return 0.0
        if kind is Failure.REFUSED:
            self._raise(Condition.REFUSED, f"{self.target.describe} refuses our data: {error}")
            return refused if error.retry_after is None else self._capped(error.retry_after)
        # unreachable: alarmed by _check_delivery once it has lasted
        if self._unreachable_since is None:
            self._unreachable_since = self._clock()
        if first:
            log.warning("historian_send_failed", **fields)
        self._check_delivery()
        if error.retry_after is not None:
            return self._capped(error.retry_after)
        return unreachable.next_delay()

    def _capped(self, retry_after: float) -> float:
        return min(retry_after, self.settings.retry_after_cap)

    # ------------------------------------------------------------------ alarms

    def _raise(self, condition: Condition, message: str, **fields: object) -> None:
        if condition in self.active:
            return
        self.active.add(condition)
        log.error(str(condition), message=message, **fields)
        self.on_condition(condition, True, message)

    def _clear(self, condition: Condition) -> None:
        if condition not in self.active:
            return
        self.active.discard(condition)
        log.info(f"{condition}_cleared")
        self.on_condition(condition, False, "")

"""The scan cycle: snapshot → supervisor scan → one write phase, on a fixed period. Thin I/O.

Each tick takes a frozen snapshot of the process image, lets the supervisor decide (pure), then
sends the writes: devices concurrently, the writes of one device in order. A device's writes stop
at its first failure: the ones after it (its heartbeat and remote request come last) are not sent
this cycle, so a PLC never hears "alive" or "take my setpoints" after a setpoint it did not get; its
lease lapses instead and its local safe mode takes over. Only confirmed writes are confirmed to the
supervisor; the others it proposes again.

The write phase waits until the next tick is due (at least half a period). A device still busy
then (a silent device costs a timeout or two) finishes in the background and is skipped by the
next cycles until it is done, so one dead device never holds the others' cycle.

Ticks are fixed on the injected monotonic clock. A cycle that ends after the next tick was due is
an overrun: the next cycle starts at once and the schedule restarts from there, so cycles never
bunch up to catch up (the ticks it jumped over are counted as missed). The first `startup_cycles`
cycles are start-up (sessions opening, first reads): a late one restarts the schedule the same
way but is not an overrun (logged at debug, not counted, not alarmed).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import Protocol

import structlog

from controller.control.arbiter import Write
from controller.control.supervisor import PlantStatus, ScanResult
from controller.fieldbus.field_io import FieldIO
from controller.fieldbus.image import PointRef, Sample
from controller.fieldbus.modbus_driver import ModbusDeviceDriver, WriteError
from controller.fieldbus.opcua_driver import OpcUaDriver, OpcUaWriteError
from controller.systemd import Notifier

log = structlog.get_logger(__name__)

DeviceWriter = Callable[[Write], Awaitable[None]]
# Told each cycle's snapshot and decision before the writes (the historian); must not block.
ScanObserver = Callable[[Mapping[PointRef, Sample], ScanResult], None]
# What a device's writer raises for a write that was not made: logged in one line.
EXPECTED_WRITE_ERRORS: tuple[type[Exception], ...] = (WriteError, OpcUaWriteError, ValueError)


class Scanner(Protocol):
    """The supervisor as the cycle uses it."""

    def scan(self, snapshot: Mapping[PointRef, Sample], now: float) -> ScanResult: ...

    def confirm(self, write: Write, now: float) -> None: ...


class SnapshotSource(Protocol):
    def snapshot(self) -> Mapping[PointRef, Sample]: ...


async def _modbus_write(driver: ModbusDeviceDriver, write: Write) -> None:
    await driver.write(write.ref.point, write.value, verify=write.verify)


async def _opcua_write(driver: OpcUaDriver, write: Write) -> None:
    await driver.write(write.ref.point, write.value)


def field_writers(field_io: FieldIO) -> dict[str, DeviceWriter]:
    """A writer per device of the field I/O: Modbus (read back when the write asks) and OPC-UA."""
    writers: dict[str, DeviceWriter] = {
        device: partial(_modbus_write, driver) for device, driver in field_io.modbus.drivers.items()
    }
    writers.update({device: partial(_opcua_write, d) for device, d in field_io.opcua.items()})
    return writers


class Cycle:
    """The scan cycle of one site. `run()` until `stop()`; `tick()` runs one cycle (lockstep).

    Counters for operators: `cycles`, `overruns`, `missed_ticks`, `scan_failures`, `writes_sent`,
    `write_failures` and `writes_skipped` by device; `status` is the last PlantStatus.
    """

    def __init__(
        self,
        supervisor: Scanner,
        image: SnapshotSource,
        writers: Mapping[str, DeviceWriter],
        *,
        period: float = 1.0,
        read_only: bool = False,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        notifier: Notifier | None = None,
        observers: Sequence[ScanObserver] = (),
        startup_cycles: int = 0,
    ) -> None:
        """read_only: commissioning: compute and log every would-be write, send none. clock and
        sleep: monotonic seconds, the supervisor's time (accelerated simulations scale both).
        startup_cycles: the first cycles, whose lateness is start-up and not an overrun."""
        if period <= 0:
            raise ValueError("the cycle period must be positive")
        self.supervisor = supervisor
        self.image = image
        self.writers = dict(writers)
        self.period = period
        self.read_only = read_only
        self._clock, self._sleep = clock, sleep
        self.notifier = notifier or Notifier(None)
        self.observers = list(observers)
        self.startup_cycles = startup_cycles
        self.cycles = 0
        self.overruns = 0
        self.missed_ticks = 0
        self.scan_failures = 0
        self.observer_failures = 0
        self.writes_sent = 0
        self.write_failures: Counter[str] = Counter()
        self.writes_skipped: Counter[str] = Counter()  # after a failure, or device still busy
        self.status: PlantStatus | None = None
        self.last_duration = 0.0  # s, of the last cycle
        self._stopping = False
        self._ready = False
        self._busy: dict[str, asyncio.Task[None]] = {}  # devices whose writes are in progress
        self._failing: dict[str, int] = {}  # device → failures in its present streak
        self._delayed: set[str] = set()  # devices skipped because still busy (logged once)
        self._overrun_streak = 0

    # ------------------------------------------------------------------ the loop

    async def run(self) -> None:
        """Cycles on the fixed period until `stop()` (or cancellation)."""
        self._stopping = False
        next_tick = self._clock()
        try:
            while not self._stopping:
                started = self._clock()
                next_tick += self.period
                if await self.tick(started, deadline=next_tick):
                    if not self._ready:
                        self._ready = True
                        self.notifier.ready()
                    self.notifier.watchdog()
                end = self._clock()
                self.last_duration = end - started
                if end > next_tick and self.cycles <= self.startup_cycles:
                    log.debug("cycle_late_at_start", cycle=self.cycles, late_by=end - next_tick)
                    next_tick = end  # the schedule restarts here, as after an overrun
                elif end > next_tick:
                    next_tick = self._overran(end, next_tick)
                elif self._overrun_streak:
                    log.info("cycle_on_time", overruns_in_streak=self._overrun_streak)
                    self._overrun_streak = 0
                if self._stopping:
                    break
                await self._sleep(max(next_tick - end, 0.0))
        finally:
            self.notifier.stopping()
            await self.close()

    @property
    def overrun_streak(self) -> int:
        """Cycles in a row that overran their period, up to the last one."""
        return self._overrun_streak

    @property
    def write_failure_streaks(self) -> dict[str, int]:
        """Devices whose writes are failing now, with the failures in a row."""
        return dict(self._failing)

    def stop(self) -> None:
        """Ask `run()` to return after the present cycle (a cancellation also works)."""
        self._stopping = True

    async def close(self) -> None:
        """Cancel and await the write tasks still in progress (run() does it on the way out)."""
        tasks = list(self._busy.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._busy.clear()

    def _overran(self, end: float, next_tick: float) -> float:
        """Count an overrun; the schedule restarts at `end` (no catching up)."""
        missed = int((end - next_tick) // self.period)
        self.overruns += 1
        self.missed_ticks += missed
        self._overrun_streak += 1
        event = log.warning if self._overrun_streak == 1 else log.debug
        event(
            "cycle_overrun",
            duration=round(self.last_duration, 4),
            late_by=round(end - next_tick, 4),  # past the tick it should have ended by
            period=self.period,
            missed_ticks=missed,
            overruns=self.overruns,
        )
        return end

    # ------------------------------------------------------------------ one cycle

    async def tick(self, now: float, deadline: float | None = None) -> bool:
        """One cycle at monotonic time `now`: snapshot, scan, write phase. The write phase waits
        for every device when `deadline` is None (lockstep), else until `deadline` (see the module
        docstring). False when the scan failed (nothing was written)."""
        self.cycles += 1
        snapshot = self.image.snapshot()
        try:
            result = self.supervisor.scan(snapshot, now)
        except Exception:  # a bug: no writes this cycle, the PLCs' leases will say so
            self.scan_failures += 1
            log.exception("scan_failed", cycle=self.cycles)
            return False
        self.status = result.status
        for observer in self.observers:
            try:
                observer(snapshot, result)
            except Exception:  # a bug on the historian's side must not stop control
                self.observer_failures += 1
                if self.observer_failures == 1 or self.observer_failures % 3600 == 0:
                    log.exception("scan_observer_failed", failures=self.observer_failures)
        if self.read_only:
            self._pretend(result.writes, now)
        else:
            await self._write_phase(result.writes, now, deadline)
        return True

    def _pretend(self, writes: Sequence[Write], now: float) -> None:
        for write in writes:
            log.info(
                "would_write",
                device=write.ref.device,
                point=write.ref.point,
                value=write.value,
                source=write.source.label,
                reason=write.reason,
            )
            self.supervisor.confirm(write, now)

    async def _write_phase(
        self, writes: Sequence[Write], now: float, deadline: float | None
    ) -> None:
        by_device: dict[str, list[Write]] = {}
        for write in writes:
            by_device.setdefault(write.ref.device, []).append(write)
        started: list[asyncio.Task[None]] = []
        for device, device_writes in by_device.items():
            if device in self._busy:
                self._still_busy(device, len(device_writes))
                continue
            if device in self._delayed:
                self._delayed.discard(device)
                log.info("device_writes_resumed", device=device)
            task = asyncio.create_task(
                self._write_device(device, device_writes, now), name=f"write-{device}"
            )
            self._busy[device] = task
            task.add_done_callback(partial(self._done, device))
            started.append(task)
        if not started:
            return
        if deadline is None:
            await asyncio.wait(started)
            return
        await self._wait_until(started, max(deadline, self._clock() + self.period / 2))

    async def _wait_until(self, tasks: list[asyncio.Task[None]], deadline: float) -> None:
        """Until every task is done or the injected clock reaches `deadline`."""
        timer = asyncio.create_task(self._nap(max(deadline - self._clock(), 0.0)))
        pending: set[asyncio.Task[None]] = set(tasks)
        try:
            while pending and not timer.done():
                done, _ = await asyncio.wait({*pending, timer}, return_when=asyncio.FIRST_COMPLETED)
                pending -= done
        finally:
            timer.cancel()
            await asyncio.gather(timer, return_exceptions=True)

    async def _nap(self, seconds: float) -> None:
        await self._sleep(seconds)

    def _done(self, device: str, task: asyncio.Task[None]) -> None:
        if self._busy.get(device) is task:
            del self._busy[device]

    def _still_busy(self, device: str, count: int) -> None:
        self.writes_skipped[device] += count
        if device not in self._delayed:
            self._delayed.add(device)
            log.warning(
                "device_writes_delayed", device=device, reason="previous writes in progress"
            )

    async def _write_device(self, device: str, writes: list[Write], now: float) -> None:
        """The writes of one device, in order, up to the first failure."""
        writer = self.writers.get(device)
        for index, write in enumerate(writes):
            try:
                if writer is None:
                    raise ValueError(f"{device}: no such device in the field I/O")
                await writer(write)
            except Exception as error:
                self._failed(write, error)
                self.writes_skipped[device] += len(writes) - index - 1
                return
            self.writes_sent += 1
            self.supervisor.confirm(write, now)
            log.debug(
                "write",
                device=device,
                point=write.ref.point,
                value=write.value,
                renewal=write.renewal,
            )
            streak = self._failing.pop(device, 0)
            if streak:
                log.info("device_writes_recovered", device=device, failures=streak)

    def _failed(self, write: Write, error: Exception) -> None:
        device = write.ref.device
        self.write_failures[device] += 1
        streak = self._failing.get(device, 0) + 1
        self._failing[device] = streak
        if streak > 1:  # logged once per streak
            return
        fields = {
            "device": device,
            "point": write.ref.point,
            "value": write.value,
            "error": str(error) or type(error).__name__,
        }
        if isinstance(error, EXPECTED_WRITE_ERRORS):
            log.warning("write_failed", **fields)
        else:
            log.error("write_failed", **fields, exc_info=error)

"""One Modbus device (a unit id on its endpoint's connection): polls its points, writes setpoints.

Every poll reads the device's read plan (fast points every poll, all points every `slow_every`
polls) and publishes a Sample per point:
- a read that succeeds: GOOD, or BAD SENSOR_FAULT for a sentinel, NaN or ±inf;
- an exception reply: BAD DEVICE_EXCEPTION (illegal data address: the plan splits the block and
  learns; a point proven at an illegal address is BAD ILLEGAL_ADDRESS);
- no usable answer (timeout, refused, mismatched reply): the point's last sample stands for
  `stale_after - 1` missed polls, then turns STALE, and BAD COMM_LOST once the device has failed.
A poll stops at the first request that gets no answer, so a failed device is probed with a single
request per poll: a dead device costs one timeout per poll, and never the other devices' time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from controller.config.maps import ModbusMap, ModbusPoint, PollClass, Table
from controller.fieldbus.codec import CodecError, decode, encode
from controller.fieldbus.health import DeviceHealth, Health
from controller.fieldbus.image import PointRef, ProcessImage, Quality, Reason, Sample
from controller.fieldbus.modbus_transport import (
    ILLEGAL_DATA_ADDRESS,
    ExceptionReplyError,
    ModbusConnection,
    TransportError,
)
from controller.fieldbus.planner import ReadBlock, ReadPlan

log = structlog.get_logger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


class WriteError(Exception):
    """A write that was refused, not confirmed, or read back different."""


@dataclass(frozen=True)
class DriverSettings:
    stale_after: int = 3  # missed polls before a sample turns STALE
    slow_every: int = 10  # polls between two reads of the slow points
    max_gap: int = 8  # registers a read may bridge
    max_registers: int = 125


class ModbusDeviceDriver:
    def __init__(
        self,
        device_id: str,
        unit_id: int,
        device_map: ModbusMap,
        connection: ModbusConnection,
        image: ProcessImage,
        *,
        settings: DriverSettings | None = None,
        max_registers: int | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.device_id = device_id
        self.unit_id = unit_id
        self.device_map = device_map
        self.connection = connection
        self.image = image
        self.settings = settings or DriverSettings()
        self.clock = clock
        self.health = DeviceHealth(fail_after=self.settings.stale_after)
        limit = max_registers or min(device_map.max_registers_per_read, self.settings.max_registers)
        # Two plans: the fast points alone, and every point for the polls where the slow ones are
        # due too (planned together they coalesce into the fewest requests).
        fast = [p for p in device_map.points if p.poll is PollClass.FAST]
        self._fast_plan = ReadPlan(
            device_map, fast, max_registers=limit, max_gap=self.settings.max_gap
        )
        self._full_plan = ReadPlan(
            device_map, device_map.points, max_registers=limit, max_gap=self.settings.max_gap
        )
        self._missed: dict[str, int] = {}
        self._last: dict[str, Sample] = {}
        self.polls = 0
        at = clock()
        for point in device_map.points:
            self._publish(point, Sample.bad(Reason.NOT_CONNECTED, at))

    async def poll(self) -> None:
        """One poll of the device (the caller paces polls; see the module docstring)."""
        plan = self._full_plan if self.polls % self.settings.slow_every == 0 else self._fast_plan
        self.polls += 1
        # copied: a report to the plan may replace its blocks mid-poll
        blocks = list(plan.blocks)
        # A failed device gets one probe; a device that stops answering mid-poll is not asked the
        # rest: either way a poll without an answer costs one timeout and counts one failure.
        for index, block in enumerate(blocks):
            error = await self._read(plan, block)
            if error is not None:  # every point ages, slow ones included: the device is silent
                self.health.failure(error.kind)
                answered = {p.id for b in blocks[:index] for p in b.points}
                self._miss(p for p in self.device_map.points if p.id not in answered)
                return
        self.health.success()
        for point in plan.unreadable:
            self._publish(point, Sample.bad(Reason.ILLEGAL_ADDRESS, self.clock()))

    async def _read(self, plan: ReadPlan, block: ReadBlock) -> TransportError | None:
        """Read one block and publish its points; the error when the device did not answer."""
        try:
            words = await self.connection.read(block.table, self.unit_id, block.start, block.count)
        except ExceptionReplyError as reply:  # an answer: the device is alive but refuses
            self.health.count("exception_reply")
            if reply.code == ILLEGAL_DATA_ADDRESS:
                plan.illegal_address(block)
            at = self.clock()
            for point in block.points:
                self._publish(point, Sample.bad(Reason.DEVICE_EXCEPTION, at))
            return None
        except TransportError as error:
            log.debug("modbus read failed", device=self.device_id, error=str(error))
            return error
        plan.succeeded(block)
        at = self.clock()
        for point in block.points:
            self._publish(point, self._sample(point, block, words, at))
        return None

    def _sample(
        self, point: ModbusPoint, block: ReadBlock, words: list[int] | list[bool], at: datetime
    ) -> Sample:
        offset = block.offset_of(point)
        if point.table.is_bit_table:
            return Sample.good(bool(words[offset]), at)
        registers = [int(w) for w in words[offset : offset + point.register_count]]
        return self._decoded(point, registers, at)

    def _decoded(self, point: ModbusPoint, registers: list[int], at: datetime) -> Sample:
        try:
            value = decode(point, self.device_map.byte_order(point), registers)
        except CodecError:
            return Sample.bad(Reason.DECODE_ERROR, at)
        if value is None:
            return Sample.bad(Reason.SENSOR_FAULT, at)
        return Sample.good(value, at)

    async def read_now(self, point_id: str) -> Sample:
        """One point read from the device now, in one request of its own (an engineer's action
        needs the present value, not the last poll's). No answer: BAD COMM_LOST; an exception
        reply: BAD DEVICE_EXCEPTION. The process image is left to the polls."""
        point = self.device_map.point(point_id)
        count = 1 if point.table.is_bit_table else point.register_count
        address = self.device_map.wire_address(point)
        try:
            words = await self.connection.read(point.table, self.unit_id, address, count)
        except ExceptionReplyError:
            return Sample.bad(Reason.DEVICE_EXCEPTION, self.clock())
        except TransportError:
            return Sample.bad(Reason.COMM_LOST, self.clock())
        if point.table.is_bit_table:
            return Sample.good(bool(words[0]), self.clock())
        return self._decoded(point, [int(w) for w in words], self.clock())

    def _miss(self, points: Iterable[ModbusPoint]) -> None:
        for point in points:
            missed = self._missed.get(point.id, 0) + 1
            self._missed[point.id] = missed
            last = self._last[point.id]
            if self.health.state is Health.FAILED:
                self._store(point, Sample.bad(Reason.COMM_LOST, self.clock()))
            elif missed >= self.settings.stale_after and last.quality is Quality.GOOD:
                self._store(point, last.stale())

    def _publish(self, point: ModbusPoint, sample: Sample) -> None:
        self._missed[point.id] = 0
        self._store(point, sample)

    def _store(self, point: ModbusPoint, sample: Sample) -> None:
        self._last[point.id] = sample
        self.image.publish(PointRef(self.device_id, point.id), sample)

    # ------------------------------------------------------------------ writes

    async def write(
        self, point_id: str, value: float | int | bool, *, verify: bool = False
    ) -> None:
        """Write one point in its unit, within its limits; `verify` reads it back.

        A write that gets no answer is sent again once only if the point is idempotent (an
        absolute setpoint); otherwise WriteError says it is unconfirmed.
        """
        point = self.device_map.point(point_id)
        where = f"{self.device_id}.{point_id}"
        if not point.writable:
            raise WriteError(f"{where} is read-only")
        if point.limits is not None and not point.limits.min <= float(value) <= point.limits.max:
            raise WriteError(
                f"{where}: {value} is outside its limits {point.limits.min}..{point.limits.max}"
            )
        address = self.device_map.wire_address(point)
        attempts = 2 if point.idempotent else 1
        for attempt in range(attempts):
            try:
                await self._send(point, address, value)
                break
            except ExceptionReplyError as reply:
                raise WriteError(f"{where}: the device refused {value} ({reply})") from None
            except TransportError as error:
                if attempt + 1 == attempts:
                    raise WriteError(f"{where}: write of {value} unconfirmed ({error})") from None
        if verify:
            await self._verify(point, address, value, where)

    async def _send(self, point: ModbusPoint, address: int, value: float | int | bool) -> None:
        if point.table is Table.COIL:
            await self.connection.write_coil(self.unit_id, address, bool(value))
        else:
            words = encode(point, self.device_map.byte_order(point), value)
            await self.connection.write_registers(self.unit_id, address, words)

    async def _verify(
        self, point: ModbusPoint, address: int, value: float | int | bool, where: str
    ) -> None:
        try:
            words = await self.connection.read(
                point.table,
                self.unit_id,
                address,
                1 if point.table.is_bit_table else point.register_count,
            )
        except TransportError as error:
            raise WriteError(f"{where}: read-back failed ({error})") from None
        if point.table.is_bit_table:
            back: object = bool(words[0])
        else:
            back = decode(point, self.device_map.byte_order(point), [int(w) for w in words])
        wanted = (
            value
            if point.table.is_bit_table
            else decode(
                point,
                self.device_map.byte_order(point),
                encode(point, self.device_map.byte_order(point), value),
            )
        )
        if back != wanted:
            raise WriteError(f"{where}: wrote {value}, read back {back}")

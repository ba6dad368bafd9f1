"""Commissioning one Modbus device through the controller's own transport and codec: can it be
reached (and if not, why), how long a request takes, every point read once with its raw
registers, decoded, judged against its expected range; an implausible point read again one
register below and above, to name the mapping mistake that explains it. With a write test, each
writable point gets the value it holds written back and read back (through the driver's write,
limits and read-back included).
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from controller.commissioning.plausibility import explain, modbus_variants, plausible
from controller.commissioning.report import (
    DeviceCheck,
    PointCheck,
    Reading,
    VariantView,
    WriteCheck,
)
from controller.config.maps import ModbusMap, ModbusPoint
from controller.config.site import ModbusDevice
from controller.fieldbus.codec import CodecError, decode
from controller.fieldbus.health import Backoff
from controller.fieldbus.image import ProcessImage
from controller.fieldbus.modbus_driver import ModbusDeviceDriver, WriteError
from controller.fieldbus.modbus_transport import (
    ILLEGAL_DATA_ADDRESS,
    ExceptionReplyError,
    ModbusConnection,
    NotConnectedError,
    RequestTimeoutError,
    TransportError,
)

GATEWAY_TARGET_FAILED: Final = 11  # exception 0x0B: nothing answers at that unit id
# A write to journal: (device, point, value, read back, passed, message).
WriteJournal = Callable[[str, str, Reading, Reading, bool, str], None]
_EXCEPTIONS: Final = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    6: "server device busy",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}


class _UnansweredError(Exception):
    """The device stopped answering: the rest of its points are not asked."""


@dataclass
class _Reader:
    """Reads through one connection, timing each request."""

    connection: ModbusConnection
    unit: int
    times: list[float] = field(default_factory=list)

    async def read(self, point: ModbusPoint, wire: int) -> list[int] | list[bool]:
        count = 1 if point.table.is_bit_table else point.register_count
        started = time.monotonic()
        try:
            words = await self.connection.read(point.table, self.unit, wire, count)
        finally:
            self.times.append(time.monotonic() - started)
        return words


async def check_modbus(
    device: ModbusDevice,
    device_map: ModbusMap,
    host: str,
    port: int,
    *,
    write_test: WriteJournal | None = None,
) -> DeviceCheck:
    """The device's commissioning check (see the module docstring)."""
    where = f"{host}:{port} unit {device.unit_id}"

    def unreachable(error: str) -> DeviceCheck:
        return _device(device, where, error=error, reachable=False)

    refused = await _tcp_probe(host, port, device.timeout)
    if refused is not None:
        return unreachable(f"{device.id}: {refused}")
    connection = ModbusConnection(
        host,
        port,
        timeout=device.timeout,
        request_gap=device.request_gap,
        backoff=Backoff(base=0.0, cap=0.0, floor=0.0),
    )
    reader = _Reader(connection, device.unit_id)
    points: list[PointCheck] = []
    error: str | None = None
    try:
        for point in device_map.points:
            try:
                points.append(await _check_point(reader, device_map, point))
            except _UnansweredError as stop:
                error = f"{device.id}: {stop}"
                if not points:
                    return unreachable(error)
                break
        writes = (
            await _write_back(device, device_map, connection, points, write_test)
            if write_test is not None and error is None
            else []
        )
    finally:
        await connection.close()
    rtt = statistics.median(reader.times) * 1e3 if reader.times else None
    passed = error is None and all(p.passed for p in points) and all(w.passed for w in writes)
    return _device(
        device,
        where,
        reachable=True,
        error=error,
        rtt=rtt,
        points=points,
        writes=writes,
        passed=passed,
    )


def _device(
    device: ModbusDevice,
    where: str,
    *,
    reachable: bool,
    error: str | None,
    rtt: float | None = None,
    points: list[PointCheck] | None = None,
    writes: list[WriteCheck] | None = None,
    passed: bool = False,
) -> DeviceCheck:
    return DeviceCheck(
        id=device.id,
        protocol="modbus",
        address=where,
        reachable=reachable,
        error=error,
        round_trip_ms=rtt,
        security=None,
        server_certificate_sha1=None,
        server_certificate_sha256=None,
        points=points or [],
        writes=writes or [],
        passed=passed,
    )


async def _tcp_probe(host: str, port: int, timeout: float) -> str | None:
    """Why a TCP connection to host:port cannot be opened, in a sentence; None when it can."""
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(host, port)
    except TimeoutError:
        return (
            f"{host}:{port} did not accept a connection within {timeout:g} s: check the address, "
            "the network and that the device is on"
        )
    except ConnectionRefusedError:
        return (
            f"{host}:{port} refused the connection: nothing listens there (check the port, "
            "and that the device or its gateway is on)"
        )
    except OSError as exc:
        return f"cannot reach {host}:{port}: {exc.strerror or exc}: check the address"
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return None


async def _check_point(reader: _Reader, device_map: ModbusMap, point: ModbusPoint) -> PointCheck:
    wire = device_map.wire_address(point)
    where = f"{point.table} {point.address}"
    expect = (point.expect.min, point.expect.max) if point.expect is not None else None

    def unreadable(reason: str, explanation: str) -> PointCheck:
        return PointCheck(
            point=point.id,
            where=where,
            unit=point.unit,
            raw=[],
            value=None,
            quality="bad",
            reason=reason,
            expect=expect,
            verdict="unreadable",
            explanation=explanation,
            variants=[],
        )

    try:
        words = await reader.read(point, wire)
    except ExceptionReplyError as reply:
        return _refused(reader.unit, point, wire, reply.code, unreadable)
    except RequestTimeoutError:
        raise _UnansweredError(
            f"no answer to a request for unit {reader.unit} within "
            f"{reader.connection.timeout:g} s: check unit_id, and that the device speaks Modbus "
            "TCP on this port"
        ) from None
    except (NotConnectedError, TransportError) as exc:
        raise _UnansweredError(f"the connection failed: {exc}") from None
    if point.table.is_bit_table:
        bit = bool(words[0])
        return PointCheck(
            point=point.id,
            where=where,
            unit=point.unit,
            raw=[str(int(bit))],
            value=bit,
            quality="good",
            reason=None,
            expect=expect,
            verdict="unchecked",
            explanation="",
            variants=[],
        )
    registers = [int(w) for w in words]
    raw = [f"0x{r:04X}" for r in registers]
    try:
        value = decode(point, device_map.byte_order(point), registers)
    except CodecError as exc:
        return unreadable("decode_error", str(exc)).model_copy(update={"raw": raw})
    if value is None:
        return unreadable(
            "sensor_fault",
            f"reads the sensor-fault code {' '.join(raw)}: check the sensor and its wiring",
        ).model_copy(update={"raw": raw})
    verdict = plausible(point, value)
    variants = []
    explanation = ""
    if verdict is False:
        neighbours = await _neighbours(reader, point, wire)
        variants = modbus_variants(device_map, point, registers, neighbours)
        explanation = explain(point, value, variants)
    return PointCheck(
        point=point.id,
        where=where,
        unit=point.unit,
        raw=raw,
        value=value,
        quality="good",
        reason=None,
        expect=expect,
        verdict={None: "unchecked", True: "plausible", False: "implausible"}[verdict],
        explanation=explanation,
        variants=[VariantView(field=v.field, change=v.change, value=v.value) for v in variants],
    )


def _refused(
    unit: int,
    point: ModbusPoint,
    wire: int,
    code: int,
    unreadable: Callable[[str, str], PointCheck],
) -> PointCheck:
    if code == GATEWAY_TARGET_FAILED:
        raise _UnansweredError(
            f"nothing answers at unit {unit} behind this gateway (exception 11): check unit_id "
            "and the serial side (wiring, baud rate, the device's address)"
        )
    name = _EXCEPTIONS.get(code, "exception")
    if code == ILLEGAL_DATA_ADDRESS:
        return unreadable(
            f"illegal_address (exception {code})",
            f"the device has no {point.table} register at wire offset {wire}: check `address` "
            "and the map's `addressing`",
        )
    return unreadable(
        f"device_exception {code}", f"the device refused the read: {name} (exception {code})"
    )


async def _neighbours(reader: _Reader, point: ModbusPoint, wire: int) -> dict[int, list[int]]:
    """The registers one below and one above the point's, where the device has them."""
    found: dict[int, list[int]] = {}
    for offset in (-1, 1):
        start = wire + offset
        if not 0 <= start <= 65536 - point.register_count:
            continue
        try:
            found[offset] = [int(w) for w in await reader.read(point, start)]
        except ExceptionReplyError:
            continue
        except TransportError as exc:
            raise _UnansweredError(f"the connection failed: {exc}") from None
    return found


async def _write_back(
    device: ModbusDevice,
    device_map: ModbusMap,
    connection: ModbusConnection,
    points: list[PointCheck],
    journal: WriteJournal,
) -> list[WriteCheck]:
    """Each writable point's present value written back and read back, in the map's order;
    every write journaled."""
    driver = ModbusDeviceDriver(device.id, device.unit_id, device_map, connection, ProcessImage())
    read = {p.point: p for p in points}
    checks = []
    for point in device_map.points:
        if not point.writable or point.id not in read:
            continue
        found = read[point.id]
        value = found.value
        if found.quality != "good" or not isinstance(value, int | float):
            checks.append(
                WriteCheck(
                    point=point.id,
                    value=value,
                    read_back=None,
                    passed=False,
                    message="not written: no valid value read to write back",
                )
            )
            continue
        checks.append(await _write_one(driver, point, value, journal))
    return checks


async def _write_one(
    driver: ModbusDeviceDriver,
    point: ModbusPoint,
    value: float | int | bool,
    journal: WriteJournal,
) -> WriteCheck:
    try:
        await driver.write(point.id, value, verify=True)
    except WriteError as exc:
        check = WriteCheck(
            point=point.id, value=value, read_back=None, passed=False, message=str(exc)
        )
    else:
        check = WriteCheck(
            point=point.id,
            value=value,
            read_back=value,
            passed=True,
            message=f"wrote {value!r}, read back the same",
        )
    journal(driver.device_id, point.id, value, check.read_back, check.passed, check.message)
    return check

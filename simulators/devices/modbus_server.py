"""Simulated Modbus TCP devices: pymodbus servers whose registers are the plant model's values.

Each unit's register tables are built from its device map: every point's registers exist, other
addresses answer "illegal data address" as real PLCs do. pymodbus calls `UnitRegisters.access` on
every request: a read first refreshes the table from the plant model, so a reply is never older
than the last plant step; a write is decoded, checked against the points' limits (a value out of
range gets exception 3 and is not applied, for every point of the request alike), counted per
register (flash-wear accounting), and passed to the plant model.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

import structlog
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType as SimType
from pymodbus.simulator import SimData, SimDevice

from controller.config.maps import (
    INTEGER_RANGE,
    ByteOrder,
    DataType,
    ModbusMap,
    ModbusPoint,
    Table,
)
from controller.fieldbus.codec import CodecError, Value, decode, encode
from simulators.devices.bindings import DeviceBinding
from simulators.devices.faults import EndpointFaults
from simulators.devices.gateway import ModbusGateway

log = structlog.get_logger(__name__)

_TABLE_OF_FUNCTION = {
    1: Table.COIL,
    5: Table.COIL,
    15: Table.COIL,
    2: Table.DISCRETE,
    3: Table.HOLDING,
    6: Table.HOLDING,
    16: Table.HOLDING,
    23: Table.HOLDING,
    4: Table.INPUT,
}
_BLOCK_ORDER = (Table.COIL, Table.DISCRETE, Table.HOLDING, Table.INPUT)  # SimDevice's tuple order
BACKEND_HOST = "127.0.0.1"


@dataclass(frozen=True)
class UnitDevice:
    """One device behind an endpoint: its unit id, map and plant binding."""

    unit_id: int
    device_map: ModbusMap
    binding: DeviceBinding


@dataclass
class UnitRegisters:
    """The register image of one unit and the handler of every access to it."""

    unit: UnitDevice
    write_counts: Counter[tuple[Table, int]] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        device_map = self.unit.device_map
        self._points: dict[Table, list[tuple[int, ModbusPoint]]] = {t: [] for t in Table}
        for point in device_map.points:
            self._points[point.table].append((device_map.wire_address(point), point))

    def sim_device(self) -> SimDevice:
        coils, discrete, holding, inputs = (self._block(table) for table in _BLOCK_ORDER)
        return SimDevice(
            id=self.unit.unit_id, simdata=(coils, discrete, holding, inputs), action=self.access
        )

    def _block(self, table: Table) -> list[SimData]:
        points = self._points[table]
        if not points:  # pymodbus wants a block anyway; access() refuses every address of it
            kind = SimType.BITS if table.is_bit_table else SimType.INVALID
            return [SimData(0, count=16 if table.is_bit_table else 1, datatype=kind)]
        if table.is_bit_table:  # bits live in registers of 16; address // 16 is the register
            registers = max(address for address, _ in points) // 16 + 1
            return [SimData(0, count=16 * registers, values=False, datatype=SimType.BITS)]
        return [
            SimData(start, count=end - start, datatype=SimType.REGISTERS, readonly=not writable)
            for start, end, writable in _spans(points)
        ]

    async def access(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """pymodbus's hook: before a read, refresh; before a write, check and apply."""
        table = _TABLE_OF_FUNCTION.get(function_code)
        if table is None:
            return ExcCodes.ILLEGAL_FUNCTION
        if not self._points[table]:
            return ExcCodes.ILLEGAL_ADDRESS
        if set_values is None:
            self._refresh(table, start_address, registers)
            return None
        if table.is_bit_table:
            return self._write_bits(address, [bool(v) for v in set_values])
        return self._write_registers(
            address, start_address, registers, [int(v) for v in set_values]
        )

    # ------------------------------------------------------------------ reads

    def _refresh(self, table: Table, start: int, registers: list[int]) -> None:
        order_of = self.unit.device_map.byte_order
        binding = self.unit.binding
        bits: list[tuple[int, ModbusPoint, Value]] = []
        for address, point in self._points[table]:
            value = binding.read(point.id)
            if table.is_bit_table:
                _set_bit(registers, address // 16 - start, address % 16, bool(value))
            elif point.type is DataType.BIT:
                bits.append((address, point, value))
            else:
                words = _encode_saturated(point, order_of(point), value)
                registers[address - start : address - start + len(words)] = words
        for address, point, value in bits:  # after the word points that share their register
            mask = encode(point, order_of(point), True)[0]
            index = address - start
            registers[index] = registers[index] | mask if value else registers[index] & ~mask

    # ------------------------------------------------------------------ writes

    def _write_registers(
        self, address: int, start: int, registers: Sequence[int], values: list[int]
    ) -> ExcCodes | None:
        end = address + len(values)
        after = list(registers)
        after[address - start : end - start] = values
        accepted: list[tuple[ModbusPoint, Value]] = []
        for point_address, point in self._points[Table.HOLDING]:
            point_end = point_address + point.register_count
            if point_end <= address or point_address >= end:
                continue
            if point_address < address or point_end > end:  # half of a multi-register value
                return self._refuse(point, "partial write", ExcCodes.ILLEGAL_ADDRESS)
            order = self.unit.device_map.byte_order(point)
            value = decode(point, order, after[point_address - start : point_end - start])
            if not _within_limits(point, value):
                return self._refuse(point, f"value {value!r} outside its limits")
            accepted.append((point, value))
        for point, value in accepted:
            self.unit.binding.write(point.id, value)
        for register in range(address, end):
            self.write_counts[Table.HOLDING, register] += 1
        return None

    def _write_bits(self, address: int, values: list[bool]) -> ExcCodes | None:
        written = {
            a: p for a, p in self._points[Table.COIL] if address <= a < address + len(values)
        }
        for coil, point in written.items():
            self.unit.binding.write(point.id, values[coil - address])
        for coil in range(address, address + len(values)):
            self.write_counts[Table.COIL, coil] += 1
        return None

    def _refuse(
        self, point: ModbusPoint, why: str, code: ExcCodes = ExcCodes.ILLEGAL_VALUE
    ) -> ExcCodes:
        log.info("write refused", device=self.unit.binding.device_id, point=point.id, why=why)
        return code


def _spans(points: list[tuple[int, ModbusPoint]]) -> list[tuple[int, int, bool]]:
    """Contiguous register ranges (start, end, any point writable) covered by the points."""
    spans: list[tuple[int, int, bool]] = []
    for address, point in sorted(points, key=lambda item: item[0]):
        end = address + point.register_count
        if spans and address <= spans[-1][1]:
            start, last_end, writable = spans[-1]
            spans[-1] = (start, max(last_end, end), writable or point.writable)
        else:
            spans.append((address, end, point.writable))
    return spans


def _set_bit(registers: list[int], index: int, bit: int, value: bool) -> None:
    registers[index] = registers[index] | (1 << bit) if value else registers[index] & ~(1 << bit)


def _within_limits(point: ModbusPoint, value: Value) -> bool:
    if point.limits is None:
        return value is not None
    return isinstance(value, int | float) and point.limits.min <= value <= point.limits.max


def _encode_saturated(point: ModbusPoint, order: ByteOrder, value: Value) -> list[int]:
    """Like a transmitter at the end of its range: a value the type cannot hold is clipped (short
    of any sentinel at the edge, which would read as a sensor fault)."""
    try:
        return encode(point, order, value)
    except CodecError:
        if point.type not in INTEGER_RANGE or not isinstance(value, int | float):
            raise
        low, high = INTEGER_RANGE[point.type]
        raw_low = next(r for r in range(low, high) if r not in point.invalid)
        raw_high = next(r for r in range(high, low, -1) if r not in point.invalid)
        raw = raw_low if (value - point.offset) / point.scale < raw_low else raw_high
        return encode(point, order, raw * point.scale + point.offset)


class ModbusEndpoint:
    """One host:port of the simulated plant: a pymodbus server holding every unit id behind that
    address, on a private loopback port, fronted by a fault-injecting gateway on the public one."""

    def __init__(
        self, host: str, port: int, units: list[UnitDevice], faults: EndpointFaults | None = None
    ) -> None:
        self.listen = (host, port)
        self.units = {unit.unit_id: UnitRegisters(unit) for unit in units}
        self.faults = faults or EndpointFaults()
        self._backend: ModbusTcpServer | None = None
        self.gateway: ModbusGateway | None = None

    @property
    def host(self) -> str:
        return self.listen[0]

    @property
    def port(self) -> int:
        """The bound port (the configured one, or the one picked for port 0)."""
        return self.gateway.port if self.gateway is not None else self.listen[1]

    async def start(self) -> None:
        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)  # it logs every frame otherwise
        devices = [registers.sim_device() for registers in self.units.values()]
        self._backend = ModbusTcpServer(devices, address=(BACKEND_HOST, 0))
        await self._backend.serve_forever(background=True)
        listener = cast(asyncio.Server, self._backend.transport)  # pymodbus listens with asyncio
        backend_port = listener.sockets[0].getsockname()[1]
        self.gateway = ModbusGateway(
            *self.listen,
            BACKEND_HOST,
            backend_port,
            faults=self.faults,
            units=frozenset(self.units),
        )
        await self.gateway.start()
        log.info("modbus endpoint up", host=self.host, port=self.port, units=sorted(self.units))

    def apply_faults(self) -> None:
        """Make in-place changes to `faults` take effect now rather than at the gateway's next
        poll (closing connections, the port)."""
        if self.gateway is not None:
            self.gateway.faults = self.faults

    async def stop(self) -> None:
        if self.gateway is not None:
            await self.gateway.stop()
        if self._backend is not None:
            await self._backend.shutdown()
            self._backend = None

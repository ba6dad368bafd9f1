"""Our Modbus client side against a Modbus TCP server not written in Python (jsmodbus).

The heat meter's values are encoded with `struct` (tests/node_modbus.py), served by jsmodbus as
plain registers, read with pymodbus's client and decoded with our codec and map: a mistake in the
codec's word order, scaling or the map's one-based addressing cannot cancel out against itself.
Raw frames are built and parsed here with struct.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Final

import pytest
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.pdu import ExceptionResponse

from controller.config.loader import load_map
from controller.config.maps import DataType, ModbusMap
from controller.fieldbus.codec import decode, encode
from tests import node_modbus
from tests.node_modbus import (
    HEAT_METER_MAP,
    HOST,
    NodeModbusServerError,
    heat_meter_registers,
    node_modbus_server,
)

UNIT: Final = 2  # the heat meter's unit id in the demo site
HEAT_METER_VALUES: Final[dict[str, float | int]] = {
    "flow": 1.734,  # m3/h
    "power": 28.4,  # kW
    "forward_temp": 64.8,  # degC
    "return_temp": 55.1,  # degC
    "energy": 123456,  # kWh
    "volume": 9876.54,  # m3, raw 987654 at scale 0.01
}
TIMEOUT: Final = 2.0  # s, for any answer that must come


def heat_meter_map() -> ModbusMap:
    device_map = load_map(HEAT_METER_MAP)
    assert isinstance(device_map, ModbusMap)
    return device_map


def float32(value: float) -> float:
    """`value` rounded to the nearest float32, as the meter carries it."""
    (rounded,) = struct.unpack(">f", struct.pack(">f", value))
    return float(rounded)


def mbap(transaction_id: int, unit: int, pdu: bytes) -> bytes:
    return struct.pack(">HHHB", transaction_id, 0, len(pdu) + 1, unit) + pdu


@asynccontextmanager
async def modbus_client(port: int) -> AsyncIterator[AsyncModbusTcpClient]:
    client = AsyncModbusTcpClient(HOST, port=port, timeout=TIMEOUT, retries=0, reconnect_delay=0)
    assert await client.connect()
    try:
        yield client
    finally:
        client.close()


@asynccontextmanager
async def raw_connection(
    port: int,
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        yield reader, writer
    finally:
        writer.close()
        with suppress(OSError):
            await writer.wait_closed()


async def raw_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, transaction_id: int, pdu: bytes
) -> bytes:
    """The answer's PDU to `pdu`, sent to UNIT; checks the answer's MBAP header."""
    writer.write(mbap(transaction_id, UNIT, pdu))
    async with asyncio.timeout(TIMEOUT):
        header = await reader.readexactly(7)
        answer_id, protocol_id, length, unit = struct.unpack(">HHHB", header)
        assert (answer_id, protocol_id, unit) == (transaction_id, 0, UNIT)
        return await reader.readexactly(length - 1)


async def assert_heat_meter_values(port: int) -> None:
    """Every heat-meter point, read point by point and in one block, decodes to its value."""
    device_map = heat_meter_map()
    expected = {
        point_id: float32(value) if device_map.point(point_id).type is DataType.FLOAT32 else value
        for point_id, value in HEAT_METER_VALUES.items()
    }
    async with modbus_client(port) as client:
        for point in device_map.points:
            wire = device_map.wire_address(point)
            result = await client.read_input_registers(
                wire, count=point.register_count, device_id=UNIT
            )
            assert not result.isError(), (point.id, result)
            value = decode(point, device_map.byte_order(point), result.registers)
            assert value == expected[point.id], (point.id, result.registers)
            assert type(value) is type(expected[point.id]), point.id
        # As the controller polls the meter: registers 1-12 in one read.
        block = await client.read_input_registers(0, count=12, device_id=UNIT)
    assert not block.isError(), block
    for point in device_map.points:
        wire = device_map.wire_address(point)
        registers = block.registers[wire : wire + point.register_count]
        assert decode(point, device_map.byte_order(point), registers) == expected[point.id]


def test_reference_encoding_is_one_based_cdab() -> None:
    """The independent encoding itself, on values whose registers are known by heart."""
    # float32 1.0 is 0x3F800000: words 3F80 0000, low word first; register 1 is wire offset 0.
    assert heat_meter_registers({"flow": 1.0}) == {"input": {0: 0x0000, 1: 0x3F80}}
    assert heat_meter_registers({"energy": 0x0001_0002}) == {"input": {8: 0x0002, 9: 0x0001}}
    # volume: scale 0.01, so 9876.54 m3 is raw 987654 = 0x000F_1206.
    assert heat_meter_registers({"volume": 9876.54}) == {"input": {10: 0x1206, 11: 0x000F}}


async def test_heat_meter_values_read_through_our_codec() -> None:
    registers = heat_meter_registers(HEAT_METER_VALUES)
    assert sorted(registers["input"]) == list(range(12))
    async with node_modbus_server(registers, unit=UNIT) as port:
        await assert_heat_meter_values(port)


async def test_a_read_of_125_registers() -> None:
    """The longest read Modbus allows, from both register tables; one more is refused."""
    values = {address: (7919 * address + 17) % 65536 for address in range(300, 425)}
    async with node_modbus_server({"input": values, "holding": values}, unit=UNIT) as port:
        async with modbus_client(port) as client:
            for read in (client.read_input_registers, client.read_holding_registers):
                result = await read(300, count=125, device_id=UNIT)
                assert not result.isError(), result
                assert result.registers == list(values.values())
        async with raw_connection(port) as (reader, writer):
            assert await raw_request(reader, writer, 1, struct.pack(">BHH", 4, 300, 126)) == bytes(
                [0x84, 0x03]
            )


async def test_other_unit_ids_get_the_gateway_exception() -> None:
    async with node_modbus_server(heat_meter_registers(HEAT_METER_VALUES), unit=UNIT) as port:
        async with modbus_client(port) as client:
            result = await client.read_input_registers(0, count=2, device_id=1)
            assert isinstance(result, ExceptionResponse)
            assert result.exception_code == 0x0B  # gateway target device failed to respond
        await assert_heat_meter_values(port)


async def test_survives_garbage_and_bad_requests() -> None:
    """Bytes that are not Modbus TCP end their connection; well-framed bad requests get the
    standard exceptions on a connection that stays up; the server answers afterwards. (On leaving,
    node_modbus_server also fails the test if the server died or reported an internal error.)"""
    async with node_modbus_server(heat_meter_registers(HEAT_METER_VALUES), unit=UNIT) as port:
        async with raw_connection(port) as (reader, writer):
            writer.write(bytes(range(256)) * 4)  # protocol id 0x0203: not Modbus TCP
            async with asyncio.timeout(TIMEOUT):
                with suppress(ConnectionResetError):
                    assert await reader.read() == b""  # closed by the server
        async with raw_connection(port) as (reader, writer):
            writer.write(b"\x00\x01\x00\x00\x00")  # half a header, then the client goes away
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(b"\x00\x02\x00\x00")
        await asyncio.sleep(0.1)  # the server has read it and waits for more when the reset comes
        linger_zero = struct.pack("ii", 1, 0)  # close with a reset (RST), not a FIN
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger_zero)
        writer.transport.abort()
        async with raw_connection(port) as (reader, writer):
            refused = {
                struct.pack(">BHH", 4, 0, 2000): 0x03,  # more than 125 registers
                struct.pack(">BHH", 4, 0, 0): 0x03,  # none
                struct.pack(">BHH", 3, 65535, 2): 0x02,  # beyond the last register
                struct.pack(">BH", 4, 0): 0x03,  # truncated
                struct.pack(">BHHB", 16, 0, 2, 3) + b"\x00\x01\x00": 0x03,  # byte count wrong
                struct.pack(">BHH", 5, 0, 0x1234): 0x03,  # a coil is FF00 or 0000
                b"\x7f\x00\x00": 0x01,  # no such function
                b"\x2b\x0e\x01\x00": 0x01,  # device identification: not served
            }
            for transaction_id, (pdu, code) in enumerate(refused.items(), start=1):
                answer = await raw_request(reader, writer, transaction_id, pdu)
                assert answer == bytes([pdu[0] | 0x80, code]), pdu.hex()
            assert await raw_request(reader, writer, 99, struct.pack(">BHH", 4, 8, 2)) == (
                struct.pack(">BBHH", 4, 4, 0xE240, 0x0001)  # energy 123456 = 0x0001E240, CDAB
            )
        await assert_heat_meter_values(port)


async def test_a_missing_node_fails_with_the_way_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(node_modbus.shutil, "which", lambda _name: None)
    with pytest.raises(NodeModbusServerError, match=r"bash scripts/test\.sh"):
        async with node_modbus_server({}):
            pass


SKID_MAP: Final = node_modbus.ROOT / "plc_maps" / "caisson_skid.yaml"


async def test_the_pump_sequence_and_loading_unit_points_through_our_codec() -> None:
    """The caisson skid's pump-sequence status word (bits standby and flow proven), its loading
    unit's valve (0.1 %) and its inlet setpoint (int16, 0.1 degC), encoded with struct here and
    served by jsmodbus: decoded by our codec from the map they read as the controller does, and a
    setpoint our codec encodes lands as the register the PLC expects."""
    device_map = load_map(SKID_MAP)
    assert isinstance(device_map, ModbusMap)
    registers = {
        "input": {10: 437, 11: 0b10},  # valve 43.7 %, flow proven, not standing by
        "holding": {4: struct.unpack(">H", struct.pack(">h", 487))[0]},  # 48.7 degC
        "coils": {2: 1},  # standby requested
    }
    expected = {
        "mixing_valve": 43.7,
        "caisson_status": 2,
        "standby": False,
        "flow_proven": True,
    }
    async with node_modbus_server(registers, unit=1) as port, modbus_client(port) as client:
        block = await client.read_input_registers(10, count=2, device_id=1)
        assert not block.isError(), block
        for point_id, value in expected.items():
            point = device_map.point(point_id)
            raw = block.registers[device_map.wire_address(point) - 10 :][:1]
            assert decode(point, device_map.byte_order(point), raw) == value, point_id
        inlet = device_map.point("inlet_setpoint")
        held = await client.read_holding_registers(4, count=1, device_id=1)
        assert decode(inlet, device_map.byte_order(inlet), held.registers) == 48.7
        coil = await client.read_coils(2, count=1, device_id=1)
        assert coil.bits[0] is True
        # A sub-zero setpoint would be nonsense, but the sign must survive: -5.5 degC.
        written = await client.write_register(
            4, encode(inlet, device_map.byte_order(inlet), -5.5)[0], device_id=1
        )
        assert not written.isError(), written
        held = await client.read_holding_registers(4, count=1, device_id=1)
        assert struct.unpack(">h", struct.pack(">H", held.registers[0]))[0] == -55

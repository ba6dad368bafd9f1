"""ModbusGateway over real sockets, in front of a real pymodbus server.

Each fault is shown on the wire (raw sockets where the bytes matter, pymodbus's client where what a
Modbus master sees matters), next to a client the fault must leave alone, and then cleared. Frames
are built and parsed here with struct, not with the gateway's own code, so that a mistake shared
by both sides cannot pass.
"""

from __future__ import annotations

import asyncio
import random
import struct
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import NamedTuple, cast

import pytest
from pydantic import ValidationError
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusIOException
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from simulators.devices.faults import EndpointFaults, UnitFaults
from simulators.devices.gateway import FAULT_POLL_INTERVAL, ModbusGateway
from tests.ports import free_port

HOST = "127.0.0.1"
UNIT_A, UNIT_B = 1, 2
VALUES = {UNIT_A: [100 + i for i in range(10)], UNIT_B: [200 + i for i in range(10)]}
FRAME_TIMEOUT = 0.3  # the gateways' here
BACKEND_TIMEOUT = 0.3
CLIENT_TIMEOUT = 0.3  # pymodbus clients'
QUIET = 0.3  # how long a test listens before it concludes that no answer is coming
ANSWER_TIMEOUT = 2.0  # a generous bound for answers that must come
MAX_READ = 4096


# Frames, built independently of the gateway


def mbap(transaction_id: int, unit: int, pdu: bytes, protocol_id: int = 0) -> bytes:
    return struct.pack(">HHHB", transaction_id, protocol_id, len(pdu) + 1, unit) + pdu


def read_pdu(address: int, count: int = 1) -> bytes:
    return struct.pack(">BHH", 3, address, count)


def registers_pdu(values: list[int]) -> bytes:
    return struct.pack(f">BB{len(values)}H", 3, 2 * len(values), *values)


def write_pdu(address: int, value: int) -> bytes:
    """Write single register; its answer echoes it."""
    return struct.pack(">BHH", 6, address, value)


class Answer(NamedTuple):
    transaction_id: int
    unit: int
    pdu: bytes


class RawClient:
    """A Modbus TCP client that shows the bytes: no transaction id checks, no retries."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def send(self, transaction_id: int, unit: int, pdu: bytes, protocol_id: int = 0) -> None:
        self.writer.write(mbap(transaction_id, unit, pdu, protocol_id))

    async def receive(self, timeout: float = ANSWER_TIMEOUT) -> Answer:
        async with asyncio.timeout(timeout):
            header = await self.reader.readexactly(7)
            transaction_id, protocol_id, length, unit = struct.unpack(">HHHB", header)
            assert protocol_id == 0
            return Answer(transaction_id, unit, await self.reader.readexactly(length - 1))

    async def request(self, transaction_id: int, unit: int, pdu: bytes) -> Answer:
        self.send(transaction_id, unit, pdu)
        return await self.receive()

    async def next_bytes(self, timeout: float = QUIET) -> bytes | None:
        """Whatever arrives within `timeout`: None if nothing, b"" if the gateway closed."""
        try:
            async with asyncio.timeout(timeout):
                return await self.reader.read(MAX_READ)
        except TimeoutError:
            return None
        except ConnectionResetError:  # closed with our bytes unread: a reset, not a FIN
            return b""

    async def closed_by_gateway(self, timeout: float = ANSWER_TIMEOUT) -> bool:
        return await self.next_bytes(timeout) == b""


@asynccontextmanager
async def raw_client(port: int) -> AsyncIterator[RawClient]:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        yield RawClient(reader, writer)
    finally:
        writer.close()
        with suppress(OSError):
            await writer.wait_closed()


@asynccontextmanager
async def modbus_client(port: int) -> AsyncIterator[AsyncModbusTcpClient]:
    client = AsyncModbusTcpClient(
        HOST, port=port, timeout=CLIENT_TIMEOUT, retries=0, reconnect_delay=0
    )
    assert await client.connect()
    try:
        yield client
    finally:
        client.close()


async def read_registers(port: int, unit: int, address: int = 0, count: int = 10) -> list[int]:
    """Registers read with pymodbus's client (from a gateway or straight from the backend)."""
    async with modbus_client(port) as client:
        result = await client.read_holding_registers(address, count=count, device_id=unit)
    assert not result.isError(), result
    return list(result.registers)


async def served(port: int, unit: int = UNIT_B) -> bool:
    """Whether a new connection to `port` gets `unit`'s registers."""
    return await read_registers(port, unit) == VALUES[unit]


async def eventually(condition: Callable[[], bool], timeout: float = ANSWER_TIMEOUT) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(FAULT_POLL_INTERVAL / 2)


# Servers


@dataclass
class Backend:
    server: ModbusTcpServer
    port: int


async def start_backend(port: int = 0) -> Backend:
    devices = [
        SimDevice(id=unit, simdata=[SimData(address=0, values=values, datatype=DataType.REGISTERS)])
        for unit, values in VALUES.items()
    ]
    server = ModbusTcpServer(devices, address=(HOST, port))
    await server.serve_forever(background=True)
    listener = cast(asyncio.Server, server.transport)
    return Backend(server, listener.sockets[0].getsockname()[1])


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    started = await start_backend()
    yield started
    await started.server.shutdown()


@asynccontextmanager
async def running_gateway(backend_port: int) -> AsyncIterator[ModbusGateway]:
    gateway = ModbusGateway(
        HOST,
        0,
        HOST,
        backend_port,
        rng_seed=7,
        frame_timeout=FRAME_TIMEOUT,
        backend_timeout=BACKEND_TIMEOUT,
    )
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()


@pytest.fixture
async def gateway(backend: Backend) -> AsyncIterator[ModbusGateway]:
    async with running_gateway(backend.port) as started:
        yield started


@pytest.fixture
async def other_gateway(backend: Backend) -> AsyncIterator[ModbusGateway]:
    """Another endpoint on the same backend: endpoint-wide faults must leave it alone."""
    async with running_gateway(backend.port) as started:
        yield started


@asynccontextmanager
async def mute_backend() -> AsyncIterator[int]:
    """A TCP server that accepts connections and never answers."""
    writers: list[asyncio.StreamWriter] = []
    server = await asyncio.start_server(lambda _reader, writer: writers.append(writer), HOST, 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for writer in writers:
            writer.close()


# Forwarding


async def test_forwards_reads_writes_and_the_backends_own_exceptions(
    gateway: ModbusGateway, backend: Backend
) -> None:
    async with modbus_client(gateway.port) as client:
        for unit, values in VALUES.items():
            result = await client.read_holding_registers(0, count=10, device_id=unit)
            assert result.registers == values
        assert not (await client.write_register(3, 999, device_id=UNIT_A)).isError()
        beyond = await client.read_holding_registers(0, count=11, device_id=UNIT_A)
        assert beyond.isError()
        assert beyond.exception_code == 2  # illegal data address, from the backend
    assert (await read_registers(backend.port, UNIT_A))[3] == 999

    unknown_function = bytes([0x55, 0x00])
    async with raw_client(gateway.port) as via_gateway, raw_client(backend.port) as direct:
        answer = await via_gateway.request(0xBEEF, UNIT_B, read_pdu(2, 2))
        assert answer == Answer(0xBEEF, UNIT_B, registers_pdu(VALUES[UNIT_B][2:4]))
        assert await via_gateway.request(7, UNIT_A, unknown_function) == await direct.request(
            7, UNIT_A, unknown_function
        )
    assert gateway.requests == 6  # 4 through pymodbus, 2 raw
    assert gateway.malformed_frames == gateway.backend_failures == 0


async def test_pipelined_requests_are_answered_in_order(gateway: ModbusGateway) -> None:
    async with raw_client(gateway.port) as client:
        client.writer.write(
            mbap(1, UNIT_A, read_pdu(0))
            + mbap(2, UNIT_B, read_pdu(1))
            + mbap(3, UNIT_A, read_pdu(2))
        )
        answers = [await client.receive() for _ in range(3)]
    assert answers == [
        Answer(1, UNIT_A, registers_pdu([VALUES[UNIT_A][0]])),
        Answer(2, UNIT_B, registers_pdu([VALUES[UNIT_B][1]])),
        Answer(3, UNIT_A, registers_pdu([VALUES[UNIT_A][2]])),
    ]


# Endpoint faults


async def test_refuse_closes_the_port_and_open_connections_until_cleared(
    gateway: ModbusGateway, other_gateway: ModbusGateway
) -> None:
    port = gateway.port
    async with raw_client(port) as connected:
        assert (await connected.request(1, UNIT_A, read_pdu(0))).transaction_id == 1
        gateway.faults = EndpointFaults(unreachable="refuse")  # a new object applies at once
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection(HOST, port)
        assert await connected.closed_by_gateway()
    assert await served(other_gateway.port)

    gateway.faults.unreachable = None  # in place: the port reopens within the poll interval
    await eventually(lambda: gateway.listening)
    assert gateway.port == port
    assert await served(port)


async def test_a_gateway_started_under_refuse_binds_its_port_and_refuses(
    backend: Backend,
) -> None:
    faults = EndpointFaults(unreachable="refuse")
    gateway = ModbusGateway(HOST, 0, HOST, backend.port, faults=faults)
    await gateway.start()
    try:
        assert gateway.port != 0
        assert not gateway.listening
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection(HOST, gateway.port)
        faults.unreachable = None  # the caller's object is the gateway's live state
        await eventually(lambda: gateway.listening)
        assert await served(gateway.port)
    finally:
        await gateway.stop()


async def test_drop_accepts_then_closes_every_connection_until_cleared(
    gateway: ModbusGateway, other_gateway: ModbusGateway
) -> None:
    async with raw_client(gateway.port) as connected:
        assert (await connected.request(1, UNIT_A, read_pdu(0))).transaction_id == 1
        gateway.faults.unreachable = "drop"
        assert await connected.closed_by_gateway()
        async with raw_client(gateway.port) as newcomer:  # the connect itself succeeds
            assert await newcomer.closed_by_gateway()
        assert await served(other_gateway.port)
    assert gateway.connections_rejected == 1

    gateway.faults.unreachable = None
    assert await served(gateway.port)


async def test_max_connections_closes_the_extra_ones_and_serves_the_others(
    gateway: ModbusGateway,
) -> None:
    gateway.faults.max_connections = 2
    async with raw_client(gateway.port) as first, raw_client(gateway.port) as second:
        for client in (first, second):  # answered, so accepted before the third connects
            assert (await client.request(1, UNIT_A, read_pdu(0))).transaction_id == 1
        async with raw_client(gateway.port) as third:
            assert await third.closed_by_gateway()
        assert await first.request(2, UNIT_B, read_pdu(0)) == Answer(
            2, UNIT_B, registers_pdu([VALUES[UNIT_B][0]])
        )
        assert (await second.request(2, UNIT_A, read_pdu(1))).transaction_id == 2
        assert gateway.connections_rejected == 1

        gateway.faults.max_connections = None
        async with raw_client(gateway.port) as third_again:
            assert (await third_again.request(1, UNIT_A, read_pdu(0))).transaction_id == 1
        assert gateway.connections_accepted == 3


async def test_a_freed_connection_slot_is_given_to_the_next_client(gateway: ModbusGateway) -> None:
    gateway.faults.max_connections = 1
    async with raw_client(gateway.port) as first:
        assert (await first.request(1, UNIT_A, read_pdu(0))).transaction_id == 1
    await eventually(lambda: gateway.open_connections == 0)
    assert await served(gateway.port)


async def test_idle_timeout_closes_idle_connections_and_spares_busy_ones(
    gateway: ModbusGateway,
) -> None:
    idle_timeout = 0.4
    gateway.faults.idle_timeout = idle_timeout

    async def stay_busy(client: RawClient) -> None:
        for transaction_id in range(8):  # 0.8 s, a request every 0.1 s
            answer = await client.request(transaction_id, UNIT_B, read_pdu(0))
            assert answer.transaction_id == transaction_id
            await asyncio.sleep(0.1)

    async with raw_client(gateway.port) as idle, raw_client(gateway.port) as busy:
        await idle.request(1, UNIT_A, read_pdu(0))
        last_answer = time.monotonic()
        busy_task = asyncio.create_task(stay_busy(busy))
        assert await idle.closed_by_gateway()
        assert time.monotonic() - last_answer >= idle_timeout - FAULT_POLL_INTERVAL
        await busy_task

    gateway.faults.idle_timeout = None
    async with raw_client(gateway.port) as quiet:
        assert await quiet.next_bytes(idle_timeout + 0.2) is None  # neither closed nor answered
        assert (await quiet.request(3, UNIT_A, read_pdu(0))).transaction_id == 3


async def test_garbage_frames_replace_the_answers_of_this_endpoint_only(
    gateway: ModbusGateway, other_gateway: ModbusGateway, backend: Backend
) -> None:
    gateway.faults.garbage_frames = True
    request = write_pdu(4, 4444)
    async with raw_client(gateway.port) as client:
        client.send(1, UNIT_A, request)
        garbage = await client.next_bytes(ANSWER_TIMEOUT)
        assert garbage
        assert garbage != mbap(1, UNIT_A, request)
        assert (await read_registers(backend.port, UNIT_A))[4] == 4444  # it was forwarded
        assert await served(other_gateway.port)

        gateway.faults.garbage_frames = False
        assert await client.request(2, UNIT_A, read_pdu(4)) == Answer(
            2, UNIT_A, registers_pdu([4444])
        )


# Unit faults


async def test_delay_slows_one_unit_while_others_answer_at_once(gateway: ModbusGateway) -> None:
    delay = 0.5
    gateway.faults.units[UNIT_A] = UnitFaults(delay=delay)
    async with raw_client(gateway.port) as slow, raw_client(gateway.port) as other:
        started = time.monotonic()
        slow_answer = asyncio.create_task(slow.request(1, UNIT_A, read_pdu(0)))
        assert await other.request(1, UNIT_B, read_pdu(0)) == Answer(
            1, UNIT_B, registers_pdu([VALUES[UNIT_B][0]])
        )
        assert not slow_answer.done()
        assert await slow_answer == Answer(1, UNIT_A, registers_pdu([VALUES[UNIT_A][0]]))
        assert time.monotonic() - started >= delay

    async with modbus_client(gateway.port) as client:
        with pytest.raises(ModbusIOException):  # a client with a shorter timeout gives up
            await client.read_holding_registers(0, count=1, device_id=UNIT_A)

    del gateway.faults.units[UNIT_A]
    assert await served(gateway.port, UNIT_A)


async def test_a_silent_unit_answers_nothing_and_applies_no_write(
    gateway: ModbusGateway, backend: Backend
) -> None:
    gateway.faults.units[UNIT_A] = UnitFaults(silent=True)
    async with raw_client(gateway.port) as client:
        client.send(1, UNIT_A, write_pdu(5, 5555))
        assert await client.next_bytes() is None
        assert await client.request(2, UNIT_B, read_pdu(5)) == Answer(
            2, UNIT_B, registers_pdu([VALUES[UNIT_B][5]])
        )
    assert (await read_registers(backend.port, UNIT_A))[5] == VALUES[UNIT_A][5]
    async with modbus_client(gateway.port) as modbus:
        with pytest.raises(ModbusIOException):
            await modbus.read_holding_registers(0, count=1, device_id=UNIT_A)

    gateway.faults.units.clear()
    async with raw_client(gateway.port) as client:
        assert await client.request(3, UNIT_A, write_pdu(5, 5555)) == Answer(
            3, UNIT_A, write_pdu(5, 5555)
        )
    assert (await read_registers(backend.port, UNIT_A))[5] == 5555


async def test_an_exception_code_is_answered_without_forwarding(
    gateway: ModbusGateway, backend: Backend
) -> None:
    gateway.faults.default_unit = UnitFaults(exception_code=0x06)  # server device busy
    gateway.faults.units[UNIT_B] = UnitFaults()
    async with raw_client(gateway.port) as client:
        assert await client.request(1, UNIT_A, write_pdu(6, 6666)) == Answer(
            1, UNIT_A, bytes([0x86, 0x06])
        )
        assert (await client.request(2, UNIT_B, read_pdu(6))).pdu == registers_pdu(
            [VALUES[UNIT_B][6]]
        )
    assert (await read_registers(backend.port, UNIT_A))[6] == VALUES[UNIT_A][6]
    async with modbus_client(gateway.port) as modbus:
        result = await modbus.read_holding_registers(0, count=1, device_id=UNIT_A)
        assert result.isError()
        assert result.exception_code == 0x06

    gateway.faults.default_unit.exception_code = None
    assert await served(gateway.port, UNIT_A)


async def test_late_replies_arrive_after_the_next_request(gateway: ModbusGateway) -> None:
    gateway.faults.units[UNIT_A] = UnitFaults(late_replies=True)
    a0, a1 = (registers_pdu([VALUES[UNIT_A][i]]) for i in (0, 1))
    async with raw_client(gateway.port) as client:
        client.send(1, UNIT_A, read_pdu(0))
        assert await client.next_bytes() is None  # held back
        client.send(2, UNIT_A, read_pdu(1))
        assert await client.receive() == Answer(1, UNIT_A, a0)  # the previous request's answer
        assert await client.next_bytes() is None  # and the second one's is held back in turn
        client.send(3, UNIT_B, read_pdu(0))  # another unit: answered at once, after the held one
        assert await client.receive() == Answer(2, UNIT_A, a1)
        assert await client.receive() == Answer(3, UNIT_B, registers_pdu([VALUES[UNIT_B][0]]))

        gateway.faults.units[UNIT_A].late_replies = False
        assert await client.request(4, UNIT_A, read_pdu(0)) == Answer(4, UNIT_A, a0)


async def test_wrong_transaction_id_on_one_unit(gateway: ModbusGateway) -> None:
    gateway.faults.units[UNIT_A] = UnitFaults(wrong_transaction_id=True)
    async with raw_client(gateway.port) as client:
        answer = await client.request(0x0102, UNIT_A, read_pdu(0))
        assert answer.transaction_id != 0x0102
        assert answer.pdu == registers_pdu([VALUES[UNIT_A][0]])
        assert (await client.request(0x0103, UNIT_B, read_pdu(0))).transaction_id == 0x0103
    async with modbus_client(gateway.port) as modbus:
        with pytest.raises(ModbusIOException):  # pymodbus discards it, then times out
            await modbus.read_holding_registers(0, count=1, device_id=UNIT_A)

    gateway.faults.units[UNIT_A].wrong_transaction_id = False
    assert await served(gateway.port, UNIT_A)


# Backend failures


async def test_a_backend_that_refuses_connections_gives_exception_0x0b() -> None:
    async with running_gateway(free_port()) as gateway, modbus_client(gateway.port) as client:
        for _ in range(2):
            result = await client.read_holding_registers(0, count=1, device_id=UNIT_A)
            assert result.isError()
            assert result.exception_code == 0x0B
    assert gateway.backend_failures == 2


async def test_a_backend_that_never_answers_gives_exception_0x0b() -> None:
    async with mute_backend() as port, running_gateway(port) as gateway:
        async with raw_client(gateway.port) as client:
            for transaction_id in (1, 2):
                assert await client.request(transaction_id, UNIT_A, read_pdu(0)) == Answer(
                    transaction_id, UNIT_A, bytes([0x83, 0x0B])
                )
        assert gateway.backend_failures == 2


async def test_a_backend_that_goes_away_and_returns() -> None:
    backend = await start_backend()
    async with running_gateway(backend.port) as gateway, raw_client(gateway.port) as client:
        assert (await client.request(1, UNIT_A, read_pdu(0))).pdu == registers_pdu([100])
        await backend.server.shutdown()
        assert await client.request(2, UNIT_A, read_pdu(0)) == Answer(
            2, UNIT_A, bytes([0x83, 0x0B])
        )

        backend = await start_backend(backend.port)
        try:
            assert (await client.request(3, UNIT_A, read_pdu(0))).pdu == registers_pdu([100])
        finally:
            await backend.server.shutdown()


# Malformed input

MALFORMED = {
    "length 0": struct.pack(">HHH", 1, 0, 0),
    "length 1": struct.pack(">HHHB", 1, 0, 1, UNIT_A),
    "length 255": struct.pack(">HHHB", 1, 0, 255, UNIT_A) + bytes(254),
    "length 65535": struct.pack(">HHH", 1, 0, 0xFFFF) + bytes(100),
    "partial header, then silence": b"\x00\x01\x00",
    "partial body, then silence": mbap(1, UNIT_A, read_pdu(0))[:-2],
}


@pytest.mark.parametrize("data", MALFORMED.values(), ids=MALFORMED.keys())
async def test_an_unframeable_stream_closes_its_connection_only(
    gateway: ModbusGateway, data: bytes
) -> None:
    async with raw_client(gateway.port) as bystander, raw_client(gateway.port) as offender:
        assert (await bystander.request(1, UNIT_B, read_pdu(0))).transaction_id == 1
        offender.writer.write(data)
        assert await offender.closed_by_gateway()
        assert (await bystander.request(2, UNIT_B, read_pdu(0))).transaction_id == 2
    assert gateway.malformed_frames == 1
    assert gateway.running


async def test_a_stream_that_ends_inside_a_frame_is_counted(gateway: ModbusGateway) -> None:
    async with raw_client(gateway.port) as client:
        client.writer.write(mbap(1, UNIT_A, read_pdu(0))[:5])
        client.writer.write_eof()
        assert await client.closed_by_gateway()
    assert gateway.malformed_frames == 1


async def test_a_frame_of_another_protocol_is_dropped_and_the_connection_kept(
    gateway: ModbusGateway,
) -> None:
    async with raw_client(gateway.port) as client:
        client.send(1, UNIT_A, read_pdu(0), protocol_id=1)
        assert await client.next_bytes() is None
        assert (await client.request(2, UNIT_A, read_pdu(0))).transaction_id == 2
    assert gateway.malformed_frames == 1
    assert gateway.requests == 1


FUZZ_SECONDS = 3.0
FUZZ_CONNECTIONS = 6


def random_chunk(rng: random.Random) -> bytes:
    """Bytes a confused or hostile client might send, from pure noise to valid requests."""
    transaction_id = rng.randrange(0x10000)
    unit = rng.choice([UNIT_A, UNIT_B, rng.randrange(256)])
    pdu = rng.randbytes(rng.randint(1, 253))
    match rng.randrange(5):
        case 0:
            return rng.randbytes(rng.randint(1, 300))
        case 1:  # well framed, random PDU: forwarded, answered by the backend
            return mbap(transaction_id, unit, pdu)
        case 2:  # a header with random protocol id and length, then a random body
            protocol_id = rng.choice([0, rng.randrange(0x10000)])
            return struct.pack(">HHH", transaction_id, protocol_id, rng.randrange(0x10000)) + pdu
        case 3:
            return mbap(transaction_id, unit, read_pdu(rng.randrange(12), rng.randint(1, 12)))
        case _:  # a valid request cut short: the rest may follow in the next chunk, or not
            return mbap(transaction_id, unit, read_pdu(0))[: rng.randint(1, 11)]


async def fuzz_connections(port: int, rng: random.Random, until: float) -> None:
    """Send random chunks, reading whatever comes back; reconnect whenever the gateway closes."""
    loop = asyncio.get_running_loop()
    while loop.time() < until:
        async with raw_client(port) as client:
            with suppress(ConnectionError):
                while loop.time() < until:
                    client.writer.write(random_chunk(rng))
                    await client.writer.drain()
                    if await client.next_bytes(rng.choice([0.001, 0.01, 0.05])) == b"":
                        break


async def test_random_bytes_on_many_connections_never_hurt_the_gateway(
    gateway: ModbusGateway, backend: Backend
) -> None:
    until = asyncio.get_running_loop().time() + FUZZ_SECONDS
    await asyncio.gather(
        *(
            fuzz_connections(gateway.port, random.Random(seed), until)
            for seed in range(FUZZ_CONNECTIONS)
        )
    )
    assert gateway.running
    assert gateway.listening
    assert gateway.malformed_frames > 0
    assert gateway.requests > 0
    for unit in VALUES:  # random writes may have changed registers: compare with the backend
        assert await read_registers(gateway.port, unit) == await read_registers(backend.port, unit)
    async with raw_client(gateway.port) as client:
        assert await client.request(9, UNIT_A, write_pdu(0, 1234)) == Answer(
            9, UNIT_A, write_pdu(0, 1234)
        )
        assert await client.request(10, UNIT_A, read_pdu(0)) == Answer(
            10, UNIT_A, registers_pdu([1234])
        )


# Lifecycle


def test_fault_changes_are_validated() -> None:
    faults = EndpointFaults()
    with pytest.raises(ValidationError):
        faults.default_unit.delay = -1
    with pytest.raises(ValidationError):
        faults.default_unit.exception_code = 0
    with pytest.raises(ValidationError):
        faults.max_connections = 0
    with pytest.raises(ValidationError):
        EndpointFaults.model_validate({"unreachable": "sometimes"})
    with pytest.raises(ValidationError):
        EndpointFaults.model_validate({"units": {256: {}}})


async def test_stop_closes_everything_leaves_no_task_and_is_idempotent(backend: Backend) -> None:
    gateway = ModbusGateway(HOST, 0, HOST, backend.port)
    await gateway.start()
    async with raw_client(gateway.port) as client, raw_client(gateway.port) as stalled:
        assert (await client.request(1, UNIT_A, read_pdu(0))).transaction_id == 1
        stalled.writer.write(b"\x00\x01")
        await eventually(lambda: gateway.open_connections == 2)
        await gateway.stop()
        assert await client.closed_by_gateway()
        assert await stalled.closed_by_gateway()
    await gateway.stop()
    assert not gateway.running
    assert not gateway.listening
    assert gateway.open_connections == 0
    leftovers = [t for t in asyncio.all_tasks() if (t.get_name() or "").startswith("gateway-")]
    assert leftovers == []
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(HOST, gateway.port)

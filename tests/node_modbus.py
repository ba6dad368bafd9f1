"""A Modbus TCP server not written in Python, for peer tests of our Modbus client code.

`node_modbus_server` runs tests/peers/modbus_server.mjs (jsmodbus) on a free port with the given
register contents, plain uint16 per wire address, and yields the port. `heat_meter_registers`
encodes heat-meter values into such contents with `struct`, independently of
controller.fieldbus.codec, so that a test decoding them with our codec checks the codec (and the
map's addressing) against a second implementation rather than against itself.

    async with node_modbus_server(heat_meter_registers({"flow": 1.7}), unit=2) as port:
        ...  # read input registers 0-11 of unit 2 at 127.0.0.1:port

The server keeps holding registers and coils written to it (functions 5, 6, 15, 16), spans the
whole address space of every table (zero where not given), answers malformed requests with the
standard exceptions and drops connections that do not speak Modbus TCP. See the program's header
for the details of what jsmodbus does on its own and what is guarded in front of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import signal
import struct
import tempfile
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final

from controller.config.loader import load_map
from controller.config.maps import Addressing, ByteOrder, DataType, ModbusMap

ROOT: Final = Path(__file__).resolve().parent.parent
PEERS: Final = ROOT / "tests" / "peers"
SERVER_SCRIPT: Final = PEERS / "modbus_server.mjs"
HEAT_METER_MAP: Final = ROOT / "plc_maps" / "heat_meter.yaml"
HOST: Final = "127.0.0.1"
STARTUP_TIMEOUT: Final = 15.0  # s, until the server prints its port
STOP_TIMEOUT: Final = 5.0  # s, after SIGTERM before SIGKILL
STDERR_KEPT: Final = 64 * 1024  # bytes of the server's stderr kept for error messages
INLINE_LIMIT: Final = 64 * 1024  # larger register contents go through a file, not argv
INTERNAL_ERROR: Final = b"modbus_server: internal error"
TABLES: Final = frozenset({"input", "holding", "coils", "discrete"})

Registers = Mapping[str, Mapping[int, int]]


class NodeModbusServerError(RuntimeError):
    """The Node Modbus server could not start, or failed while a test used it."""


@asynccontextmanager
async def node_modbus_server(
    registers: Registers, *, unit: int | None = None, startup_timeout: float = STARTUP_TIMEOUT
) -> AsyncIterator[int]:
    """Run the jsmodbus server on 127.0.0.1 with `registers` and yield its port.

    `registers` maps a table ("input", "holding"; also "coils", "discrete" with 0/1) to
    {wire address: uint16}. With `unit`, only that unit id is answered; others get exception 0x0B.
    On leaving, the server is stopped (SIGTERM, then SIGKILL). Raises NodeModbusServerError, with
    the server's stderr, if it does not start, or - when the body itself succeeded - if it died
    during the body, did not exit cleanly, or reported an internal error (a request it mishandled).
    """
    command = [*_node_command(), "--exit-with-stdin"]
    if unit is not None:
        command += ["--unit", str(unit)]
    spec = _spec(registers)
    with contextlib.ExitStack() as files:
        if len(spec) <= INLINE_LIMIT:
            command += ["--registers", spec]
        else:
            file = files.enter_context(_temporary_json(spec))
            command += ["--registers-file", str(file)]
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE,  # its end of file tells the server that we are gone
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stderr = bytearray()
        drains = [asyncio.create_task(_drain(process.stderr, stderr))]
        try:
            port = await _port(process, startup_timeout)
        except _StartError as failure:
            await _stop(process, drains)  # and so the whole of its stderr
            raise NodeModbusServerError(_failure(str(failure), stderr)) from None
        except BaseException:
            await _stop(process, drains)
            raise
    drains.append(asyncio.create_task(_drain(process.stdout, bytearray())))
    try:
        yield port
    except BaseException:
        await _stop(process, drains)
        raise
    died = process.returncode
    await _stop(process, drains)
    if died is not None:
        raise NodeModbusServerError(_failure(f"exited with code {died} while in use", stderr))
    if process.returncode != 0:
        raise NodeModbusServerError(
            _failure(f"exited with code {process.returncode} on SIGTERM", stderr)
        )
    if INTERNAL_ERROR in stderr:
        raise NodeModbusServerError(_failure("reported an internal error", stderr))


def heat_meter_registers(values: Mapping[str, float | int]) -> dict[str, dict[int, int]]:
    """The input registers that carry `values` (point id -> value in the point's unit) in the
    heat meter's map, encoded with `struct` and not with our codec.

    raw = (value - offset) / scale, rounded for the integer types; the raw number's big-endian
    bytes A B C D are cut into two registers in the map's order (CDAB: the low word C D first);
    the first register is at wire offset address - 1 in a one-based map.
    """
    device_map = load_map(HEAT_METER_MAP)
    assert isinstance(device_map, ModbusMap), HEAT_METER_MAP
    tables: dict[str, dict[int, int]] = {}
    for point_id, value in values.items():
        point = device_map.point(point_id)
        raw = (value - point.offset) / point.scale
        if point.type is DataType.FLOAT32:
            data = struct.pack(">f", raw)
        elif point.type is DataType.UINT32:
            data = struct.pack(">I", round(raw))
        else:
            raise ValueError(f"point {point_id!r}: {point.type} is not a heat-meter type")
        words = _words_32(data, point.order or device_map.order)
        one_based = device_map.addressing is Addressing.ONE_BASED
        start = point.address - 1 if one_based else point.address
        table = tables.setdefault(str(point.table), {})
        for offset, word in enumerate(words):
            table[start + offset] = word
    return tables


def _words_32(data: bytes, order: ByteOrder) -> tuple[int, int]:
    """The two registers of the big-endian bytes A B C D in `order`."""
    high, low = struct.unpack(">HH", data)  # AB, CD
    swapped_high, swapped_low = struct.unpack("<HH", data)  # BA, DC
    words = {
        ByteOrder.ABCD: (high, low),
        ByteOrder.CDAB: (low, high),
        ByteOrder.BADC: (swapped_high, swapped_low),
        ByteOrder.DCBA: (swapped_low, swapped_high),
    }
    return words[order]


def _node_command() -> list[str]:
    node = shutil.which("node")
    if node is None:
        raise NodeModbusServerError(
            "Node.js (`node`) is not on PATH: the jsmodbus peer tests need it. "
            "Run `bash scripts/test.sh`, which installs the test peers."
        )
    if not (PEERS / "node_modules" / "jsmodbus").is_dir():
        raise NodeModbusServerError(
            f"jsmodbus is not installed in {PEERS / 'node_modules'}: "
            "run `bash scripts/test.sh`, which installs the test peers (npm ci in tests/peers)."
        )
    return [node, str(SERVER_SCRIPT)]


def _spec(registers: Registers) -> str:
    unknown = set(registers) - TABLES
    if unknown:
        raise ValueError(f"unknown tables {sorted(unknown)}: use {sorted(TABLES)}")
    return json.dumps(
        {
            table: {str(address): value for address, value in sorted(entries.items())}
            for table, entries in registers.items()
        },
        separators=(",", ":"),
    )


@contextlib.contextmanager
def _temporary_json(text: str) -> Iterator[Path]:
    """A file holding `text`, removed on leaving (the server reads it before it listens)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="modbus-registers-") as file:
        file.write(text)
        file.flush()
        yield Path(file.name)


class _StartError(Exception):
    """Why the server did not start; its stderr is added once it has been read to the end."""


async def _port(process: asyncio.subprocess.Process, timeout: float) -> int:
    assert process.stdout is not None
    try:
        async with asyncio.timeout(timeout):
            line = await process.stdout.readline()
            if not line:
                code = await process.wait()
                raise _StartError(f"exited with code {code} before listening")
    except TimeoutError:
        raise _StartError(f"did not print its port within {timeout:g} s") from None
    try:
        port = json.loads(line)["port"]
    except (ValueError, KeyError, TypeError):
        port = None
    if not isinstance(port, int):
        raise _StartError(f"printed {line!r}, not its port")
    return port


async def _drain(stream: asyncio.StreamReader | None, kept: bytearray) -> None:
    """Read `stream` to its end (a full pipe would block the server), keeping its last bytes."""
    assert stream is not None
    while chunk := await stream.read(4096):
        kept += chunk
        del kept[:-STDERR_KEPT]


async def _stop(process: asyncio.subprocess.Process, drains: list[asyncio.Task[None]]) -> None:
    if process.stdin is not None:
        process.stdin.close()
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(STOP_TIMEOUT):
                await process.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    # The pipes close with the process: the drains end on their own, with everything it wrote.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(STOP_TIMEOUT):
            await asyncio.gather(*drains, return_exceptions=True)
    for drain in drains:
        drain.cancel()


def _failure(what: str, stderr: bytearray) -> str:
    text = stderr.decode("utf-8", errors="replace").strip() or "(nothing)"
    return f"the Node Modbus server ({SERVER_SCRIPT.name}) {what}; its stderr:\n{text}"

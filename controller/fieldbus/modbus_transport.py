"""One Modbus TCP connection per host:port, shared by its unit ids: pymodbus behind a thin adapter.

One request in flight (a lock), an optional minimum gap between requests (serial gateways), a
timeout per request, no automatic resend (pymodbus's `retries` would send a timed-out write twice),
and a reconnect on a capped, jittered back-off. A reply whose transaction or unit id does not match
is counted and the connection is dropped: the late reply it probably was must not be taken for the
answer to the next request. pymodbus's API moves between minor versions; only this module uses it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusIOException
from pymodbus.pdu import ModbusPDU

from controller.config.maps import Table
from controller.fieldbus.health import Backoff

log = structlog.get_logger(__name__)


class TransportError(Exception):
    """A request that got no usable answer."""

    kind = "error"


class NotConnectedError(TransportError):
    kind = "not_connected"


class RequestTimeoutError(TransportError):
    kind = "timeout"


class MismatchedReplyError(TransportError):
    kind = "mismatched_reply"


class ExceptionReplyError(TransportError):
    """The device answered with a Modbus exception (an answer: the device is alive)."""

    kind = "exception_reply"

    def __init__(self, code: int) -> None:
        super().__init__(f"Modbus exception {code}")
        self.code = code


ILLEGAL_DATA_ADDRESS = 2


@dataclass
class TransportCounters:
    requests: int = 0
    timeouts: int = 0
    mismatched_replies: int = 0
    exception_replies: int = 0
    connects: int = 0
    connect_failures: int = 0


@dataclass
class ModbusConnection:
    host: str
    port: int
    timeout: float = 1.0
    request_gap: float = 0.0
    backoff: Backoff = field(default_factory=Backoff)
    clock: Callable[[], float] = time.monotonic
    counters: TransportCounters = field(default_factory=TransportCounters)

    def __post_init__(self) -> None:
        self._client: AsyncModbusTcpClient | None = None
        self._sent_id: bytes = b""  # transaction id of the request in flight
        self._mismatch_seen = False
        self._lock = asyncio.Lock()
        self._next_attempt = 0.0
        self._last_request_end = -1e9
        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)  # it logs every frame otherwise

    async def read(self, table: Table, unit: int, start: int, count: int) -> list[int] | list[bool]:
        """Registers (holding, input) or bits (coil, discrete) from `start` (wire address)."""
        response = await self._request(
            lambda c: _READERS[table](c, start, count, unit), _READ_FUNCTION[table]
        )
        if table.is_bit_table:
            return list(response.bits[:count])
        return list(response.registers)

    async def write_registers(self, unit: int, start: int, values: list[int]) -> None:
        if len(values) == 1:
            await self._request(lambda c: c.write_register(start, values[0], device_id=unit), 6)
        else:
            await self._request(lambda c: c.write_registers(start, values, device_id=unit), 16)

    async def write_coil(self, unit: int, address: int, value: bool) -> None:
        await self._request(lambda c: c.write_coil(address, value, device_id=unit), 5)

    async def close(self) -> None:
        async with self._lock:
            self._drop()

    def retry(self) -> None:
        """Connect at the next request instead of when the back-off allows (the device has been
        fixed): the back-off starts again from its base. Shared by every unit id behind it."""
        self.backoff.reset()
        self._next_attempt = 0.0

    async def _request(
        self, call: Callable[[AsyncModbusTcpClient], Awaitable[ModbusPDU]], function: int
    ) -> ModbusPDU:
        async with self._lock:
            client = await self._connected()
            wait = self._last_request_end + self.request_gap - self.clock()
            if wait > 0:
                await asyncio.sleep(wait)
            self.counters.requests += 1
            self._mismatch_seen = False
            try:
                response = await call(client)
            except ModbusIOException as error:
                self._drop()
                raise self._classify(error) from None
            except (ConnectionException, OSError) as error:
                self._drop()
                raise NotConnectedError(str(error)) from None
            finally:
                self._last_request_end = self.clock()
            if self._mismatch_seen:  # a wrong reply was dropped before the right one came
                self.counters.mismatched_replies += 1
        if response.function_code & 0x7F != function:  # the answer to some other question
            self.counters.mismatched_replies += 1
            await self.close()
            raise MismatchedReplyError(f"function {response.function_code} answered {function}")
        if response.isError():
            self.counters.exception_replies += 1
            raise ExceptionReplyError(int(getattr(response, "exception_code", 0)))
        return response

    def _classify(self, error: ModbusIOException) -> TransportError:
        text = str(error)
        if self._mismatch_seen or "transaction id" in text or "device id" in text:
            self.counters.mismatched_replies += 1
            return MismatchedReplyError(text)
        self.counters.timeouts += 1
        return RequestTimeoutError(f"{self.host}:{self.port}: no answer in {self.timeout} s")

    async def _connected(self) -> AsyncModbusTcpClient:
        if self._client is not None and self._client.connected:
            return self._client
        now = self.clock()
        if now < self._next_attempt:
            raise NotConnectedError(f"{self.host}:{self.port}: reconnecting")
        client = AsyncModbusTcpClient(
            self.host,
            port=self.port,
            timeout=self.timeout,
            retries=0,
            reconnect_delay=0,
            reconnect_delay_max=0,
            trace_packet=self._watch,
        )
        try:
            connected = await asyncio.wait_for(client.connect(), self.timeout)
        except (TimeoutError, OSError):
            connected = False
        if not connected:
            client.close()
            self.counters.connect_failures += 1
            self._next_attempt = now + self.backoff.next_delay()
            raise NotConnectedError(f"{self.host}:{self.port}: cannot connect")
        self.counters.connects += 1
        self.backoff.reset()
        self._client = client
        log.info("modbus connected", host=self.host, port=self.port)
        return client

    def _watch(self, sending: bool, packet: bytes) -> bytes:
        """pymodbus's frame hook: remember the id sent; note a reply that carries another one
        (pymodbus drops it: counted once per request, answered or not)."""
        if sending:
            self._sent_id = packet[:2]
        elif len(packet) >= 2 and packet[:2] != self._sent_id:
            self._mismatch_seen = True
        return packet

    def _drop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


_READ_FUNCTION = {Table.COIL: 1, Table.DISCRETE: 2, Table.HOLDING: 3, Table.INPUT: 4}
_READERS: dict[Table, Callable[[AsyncModbusTcpClient, int, int, int], Awaitable[ModbusPDU]]] = {
    Table.HOLDING: lambda c, s, n, u: c.read_holding_registers(s, count=n, device_id=u),
    Table.INPUT: lambda c, s, n, u: c.read_input_registers(s, count=n, device_id=u),
    Table.COIL: lambda c, s, n, u: c.read_coils(s, count=n, device_id=u),
    Table.DISCRETE: lambda c, s, n, u: c.read_discrete_inputs(s, count=n, device_id=u),
}

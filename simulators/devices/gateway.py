"""A Modbus TCP gateway in front of a simulated device, misbehaving the way field devices do.

pymodbus's server answers every well-formed request at once and correctly; real devices and
serial-to-TCP gateways refuse connections, limit them, close idle ones, answer late, not at all, or
with the wrong transaction id (DOMAIN.md, "Field devices and their quirks"). Every simulated Modbus
endpoint is therefore served through a `ModbusGateway`: it splits each client's byte stream into
MBAP frames, forwards each request to the backend (the pymodbus server) over one backend connection
per client connection, and applies the endpoint's current `EndpointFaults` to connections,
requests and answers.

Bad input never leaves a connection's own task: a frame that is not Modbus (protocol id != 0) is
dropped, a stream that cannot be framed (length outside 2..254, a frame left incomplete for
`frame_timeout`) closes that connection, and a backend that fails is reported to the client as
exception 0x0B.
"""

from __future__ import annotations

import asyncio
import random
import struct
from dataclasses import dataclass, replace
from typing import Final

import structlog

from simulators.devices.faults import EndpointFaults, UnitFaults

_LOG = structlog.get_logger(__name__)

HEADER: Final = struct.Struct(">HHH")  # transaction id, protocol id, length (unit id + PDU)
MIN_LENGTH: Final = 2  # unit id + function code
MAX_LENGTH: Final = 254  # unit id + a 253-byte PDU: a 260-byte ADU
MAX_ADU: Final = HEADER.size + MAX_LENGTH
MODBUS_PROTOCOL_ID: Final = 0
# Modbus Application Protocol v1.1b3, §7: "no response was obtained from the target device".
GATEWAY_TARGET_FAILED: Final = 0x0B
WRONG_ID_MASK: Final = 0x8000  # flips the top bit: differs from the request's id and its neighbours
FAULT_POLL_INTERVAL: Final = 0.02  # s; how soon in-place fault changes reach open connections


class MalformedStreamError(Exception):
    """The bytes on a connection cannot be split into Modbus TCP frames."""


class BackendError(Exception):
    """The backend closed the connection or answered something other than the request's answer."""


@dataclass(frozen=True)
class Frame:
    """One Modbus TCP application data unit (MBAP header + PDU)."""

    transaction_id: int
    protocol_id: int
    unit: int
    pdu: bytes

    def encode(self) -> bytes:
        header = HEADER.pack(self.transaction_id, self.protocol_id, len(self.pdu) + 1)
        return header + bytes([self.unit]) + self.pdu

    def exception(self, code: int) -> Frame:
        """The exception response to this request."""
        return replace(self, pdu=bytes([self.pdu[0] | 0x80, code]))


async def read_frame(reader: asyncio.StreamReader, frame_timeout: float) -> Frame | None:
    """The next frame on `reader`; None when the stream ends between frames.

    Waits as long as it takes for a frame to start (idle connections are closed by the gateway's
    fault watcher, if at all); once it has started, the rest must arrive within `frame_timeout`.
    """
    first = await reader.read(1)
    if not first:
        return None
    try:
        async with asyncio.timeout(frame_timeout):
            header = first + await reader.readexactly(HEADER.size - 1)
            transaction_id, protocol_id, length = HEADER.unpack(header)
            if not MIN_LENGTH <= length <= MAX_LENGTH:
                raise MalformedStreamError(f"length {length} outside {MIN_LENGTH}..{MAX_LENGTH}")
            body = await reader.readexactly(length)
    except TimeoutError as exc:
        raise MalformedStreamError(f"frame incomplete after {frame_timeout} s") from exc
    except asyncio.IncompleteReadError as exc:
        raise MalformedStreamError("stream ended inside a frame") from exc
    return Frame(transaction_id, protocol_id, body[0], body[1:])


def _peer(writer: asyncio.StreamWriter) -> str:
    host, port, *_ = writer.get_extra_info("peername") or ("?", 0)
    return f"{host}:{port}"


@dataclass(eq=False)
class _Client:
    """One client connection and what the gateway keeps for it."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    peer: str
    idle_since: float | None  # loop time the last exchange ended; None while handling a request
    backend: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    held_reply: bytes | None = None  # late_replies: the answer waiting for the next request

    def close_backend(self) -> None:
        if self.backend is not None:
            self.backend[1].close()
            self.backend = None

    def close(self) -> None:
        self.close_backend()
        self.writer.close()


class ModbusGateway:
    """Serves Modbus TCP on (listen_host, listen_port), forwarding to a backend, with faults.

    `faults` may be mutated in place or replaced while clients are connected: new connections and
    requests see the current state at once; closing open connections (unreachable, idle_timeout)
    and reopening the port after `refuse` is cleared happen within FAULT_POLL_INTERVAL, or at once
    when a new `EndpointFaults` is assigned. listen_host should name one address, so that port 0
    gives one port. Each client connection gets its own backend connection, opened on its first
    forwarded request; requests on a connection are handled one at a time, in order.

    `frame_timeout` bounds the time from a frame's first byte to its last. `backend_timeout`
    bounds one backend exchange (connect, send, answer); it should be shorter than the clients'
    own timeout, so that they see exception 0x0B rather than a timeout when the backend fails.
    `units`, when given, are the unit ids behind the gateway: a request for any other is answered
    0x0B without reaching the backend, as a serial gateway answers for a device it does not have.

    Counters (read them; only the gateway updates them): `requests` (well-framed Modbus requests
    received), `connections_accepted`, `connections_rejected` (closed at once by `drop`,
    `refuse` or `max_connections`), `malformed_frames` (frames dropped or streams closed as
    unframeable), `backend_failures` (requests answered 0x0B).
    """

    def __init__(
        self,
        listen_host: str,
        listen_port: int,
        backend_host: str,
        backend_port: int,
        faults: EndpointFaults | None = None,
        rng_seed: int | None = None,
        *,
        units: frozenset[int] | None = None,
        frame_timeout: float = 1.0,
        backend_timeout: float = 1.0,
    ) -> None:
        self._host = listen_host
        self._port = listen_port
        self._backend_address = (backend_host, backend_port)
        self._units = units
        self._faults = EndpointFaults() if faults is None else faults
        self._rng = random.Random(rng_seed)
        self._frame_timeout = frame_timeout
        self._backend_timeout = backend_timeout
        self._server: asyncio.Server | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._clients: dict[_Client, asyncio.Task[None]] = {}
        self._log = _LOG.bind(backend=f"{backend_host}:{backend_port}")
        self._reopen_failed = False  # log a port that cannot be reopened once, not every poll
        self.requests = 0
        self.connections_accepted = 0
        self.connections_rejected = 0
        self.malformed_frames = 0
        self.backend_failures = 0

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        """The listening port (the bound one when constructed with port 0 and started)."""
        return self._port

    @property
    def listening(self) -> bool:
        """Whether the port accepts connections (False before start, after stop, under refuse)."""
        return self._server is not None and self._server.is_serving()

    @property
    def running(self) -> bool:
        """Started and not stopped, and the task that applies fault changes is alive."""
        return self._watcher is not None and not self._watcher.done()

    @property
    def open_connections(self) -> int:
        return len(self._clients)

    @property
    def faults(self) -> EndpointFaults:
        return self._faults

    @faults.setter
    def faults(self, faults: EndpointFaults) -> None:
        self._faults = faults
        if self._watcher is not None:
            self._enforce_faults()

    async def start(self) -> None:
        """Bind the port (so that port 0 is resolved even under `refuse`) and start serving."""
        if self._watcher is not None:
            raise RuntimeError("gateway already started")
        await self._open_listener()
        self._log = self._log.bind(gateway=f"{self._host}:{self._port}")
        self._watcher = asyncio.create_task(self._watch_faults(), name=f"gateway-{self._port}")
        self._enforce_faults()
        self._log.info("gateway started")

    async def stop(self) -> None:
        """Close the port, every client and backend connection, and await every task; idempotent."""
        if self._watcher is None:
            return
        tasks = [self._watcher, *self._clients.values()]
        self._watcher = None
        self._close_listener()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._log.info("gateway stopped", requests=self.requests)

    # Listener and connections

    async def _open_listener(self) -> None:
        # Bound but not yet serving, the server is kept before the first await that could be
        # cancelled (by stop) or overtaken (by refuse), so that neither can leave it listening.
        server = await asyncio.start_server(
            self._on_connect, self._host, self._port, start_serving=False
        )
        self._server = server
        self._port = server.sockets[0].getsockname()[1]
        await server.start_serving()

    def _close_listener(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Accept a connection: serve it in an owned task, or close it at once."""
        peer = _peer(writer)
        reason = self._rejection()
        if reason is not None:
            self.connections_rejected += 1
            self._log.info("connection rejected", peer=peer, reason=reason)
            writer.close()
            self._enforce_faults()  # under refuse, this one got in before the port was closed
            return
        self.connections_accepted += 1
        self._log.info("connection accepted", peer=peer)
        client = _Client(reader, writer, peer, idle_since=asyncio.get_running_loop().time())
        task = asyncio.create_task(self._serve(client), name=f"gateway-{self._port}-{peer}")
        # A done callback rather than a finally: a task cancelled before it starts runs no finally.
        task.add_done_callback(lambda _: self._forget(client))
        self._clients[client] = task

    def _forget(self, client: _Client) -> None:
        del self._clients[client]
        client.close()
        self._log.info("connection closed", peer=client.peer)

    def _rejection(self) -> str | None:
        """Why a new connection must be closed at once, if it must."""
        if self._watcher is None:
            return "gateway stopped"
        faults = self._faults
        if faults.unreachable is not None:
            return f"unreachable: {faults.unreachable}"
        if faults.max_connections is not None and len(self._clients) >= faults.max_connections:
            return f"max_connections: {faults.max_connections}"
        return None

    def _enforce_faults(self) -> None:
        """Close the port under `refuse`, and the connections the current faults no longer allow."""
        if self._faults.unreachable == "refuse":
            self._close_listener()
        now = asyncio.get_running_loop().time()
        for client, task in list(self._clients.items()):
            reason = self._closing_reason(client, now)
            if reason is not None and not task.done() and not task.cancelling():
                self._log.info("closing connection", peer=client.peer, reason=reason)
                task.cancel()

    def _closing_reason(self, client: _Client, now: float) -> str | None:
        faults = self._faults
        if faults.unreachable is not None:
            return f"unreachable: {faults.unreachable}"
        idle = faults.idle_timeout
        if idle is not None and client.idle_since is not None and now - client.idle_since >= idle:
            return f"idle for {idle} s"
        return None

    async def _watch_faults(self) -> None:
        """Apply in-place fault changes to the port and to open connections, and reopen the port."""
        while self._watcher is not None:  # stop() clears it before cancelling (see ModbusIO.stop)
            self._enforce_faults()
            if self._faults.unreachable != "refuse" and self._server is None:
                await self._reopen_listener()
            await asyncio.sleep(FAULT_POLL_INTERVAL)

    async def _reopen_listener(self) -> None:
        try:
            await self._open_listener()
        except OSError as exc:  # someone else took the port meanwhile: try again next time
            if not self._reopen_failed:
                self._log.warning("cannot reopen the port; retrying", error=str(exc))
            self._reopen_failed = True
        else:
            self._reopen_failed = False
            self._log.info("listening again")

    # Requests

    async def _serve(self, client: _Client) -> None:
        """Handle a client's requests until it leaves, breaks framing or a fault closes it."""
        try:
            loop = asyncio.get_running_loop()
            while (frame := await read_frame(client.reader, self._frame_timeout)) is not None:
                client.idle_since = None
                await self._handle(client, frame)
                client.idle_since = loop.time()
        except MalformedStreamError as exc:
            self.malformed_frames += 1
            self._log.info("closing unframeable connection", peer=client.peer, reason=str(exc))
        except OSError as exc:
            self._log.info("connection lost", peer=client.peer, error=repr(exc))
        except Exception:  # a bug must cost this connection only, and be seen
            self._log.exception("connection handler failed", peer=client.peer)

    async def _handle(self, client: _Client, frame: Frame) -> None:
        if frame.protocol_id != MODBUS_PROTOCOL_ID:
            self.malformed_frames += 1
            self._log.debug("frame dropped", peer=client.peer, protocol_id=frame.protocol_id)
            return
        self.requests += 1
        unit = self._faults.for_unit(frame.unit)
        self._log.debug(
            "request",
            peer=client.peer,
            transaction_id=frame.transaction_id,
            unit=frame.unit,
            function_code=frame.pdu[0],
        )
        await self._release_held_reply(client)
        if unit.silent:
            self._log.debug("request left unanswered", peer=client.peer, unit=frame.unit)
            return
        reply = await self._reply(client, frame, unit)
        if unit.delay > 0:
            await asyncio.sleep(unit.delay)
        data = self._wire_bytes(reply, unit)
        if unit.late_replies:
            client.held_reply = data
        else:
            await self._send(client, data)

    async def _reply(self, client: _Client, frame: Frame, unit: UnitFaults) -> Frame:
        if unit.exception_code is not None:
            return frame.exception(unit.exception_code)
        if self._units is not None and frame.unit not in self._units:
            return frame.exception(GATEWAY_TARGET_FAILED)  # no such device behind this gateway
        try:
            return await self._forward(client, frame)
        except (OSError, MalformedStreamError, BackendError) as exc:  # OSError: timeouts too
            self.backend_failures += 1
            self._log.info("backend failed", peer=client.peer, error=repr(exc))
            client.close_backend()  # a late answer on it would be taken for the next one's
            return frame.exception(GATEWAY_TARGET_FAILED)

    async def _forward(self, client: _Client, frame: Frame) -> Frame:
        async with asyncio.timeout(self._backend_timeout):
            if client.backend is None:
                client.backend = await asyncio.open_connection(*self._backend_address)
                self._log.info("backend connected", peer=client.peer)
            reader, writer = client.backend
            writer.write(frame.encode())
            await writer.drain()
            reply = await read_frame(reader, self._backend_timeout)
        if reply is None:
            raise BackendError("backend closed the connection")
        if (reply.transaction_id, reply.protocol_id, reply.unit) != (
            frame.transaction_id,
            MODBUS_PROTOCOL_ID,
            frame.unit,
        ):
            raise BackendError(f"backend answered another request: {reply}")
        return reply

    def _wire_bytes(self, reply: Frame, unit: UnitFaults) -> bytes:
        """The bytes sent for `reply`: random ones under garbage_frames, else the encoded frame."""
        if self._faults.garbage_frames:
            return self._rng.randbytes(self._rng.randint(1, MAX_ADU))
        if unit.wrong_transaction_id:
            reply = replace(reply, transaction_id=reply.transaction_id ^ WRONG_ID_MASK)
        return reply.encode()

    async def _release_held_reply(self, client: _Client) -> None:
        if client.held_reply is not None:
            data, client.held_reply = client.held_reply, None
            self._log.debug("late reply sent", peer=client.peer)
            await self._send(client, data)

    @staticmethod
    async def _send(client: _Client, data: bytes) -> None:
        client.writer.write(data)
        await client.writer.drain()

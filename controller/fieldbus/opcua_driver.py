"""OPC-UA driver: one connection to one OPC-UA device (e.g. a caisson's compute manager).

One owned background task per driver connects, resolves the map's namespace index and every
point's node (browse path in that namespace, or node id), and subscribes: one subscription per
poll class, with that class's interval as publishing and sampling interval. Data-change callbacks
only convert the DataValue into a Sample and publish it into the ProcessImage (a dictionary
assignment: no awaits, no I/O). Where the server refuses a subscription (or single monitored
items), those points are read periodically at their class's interval instead, in the same task.

Status code → Sample (`opcua_values.to_sample`):
- Good (any Good sub-code): GOOD, stamped with the DataValue's SourceTimestamp, else its
  ServerTimestamp, else the driver's clock, as UTC. A value that is not of the point's type is
  BAD DECODE_ERROR; a NaN or ±inf float is BAD SENSOR_FAULT.
- Uncertain: STALE with the reported value (shown, never used: control treats STALE like BAD), the
  reason from the sub-code (last usable value → COMM_LOST, engineering units exceeded / over or
  under range → OUT_OF_RANGE, any other → SENSOR_FAULT). An uncertain value that is itself invalid
  is BAD as above. The image has no UNCERTAIN quality; STALE is its only "show, do not use" state.
- Bad: BAD, no value, reason by status (`opcua_values.BAD_REASONS`): communication statuses →
  COMM_LOST, BadOutOfRange → OUT_OF_RANGE, sensor/device failure → SENSOR_FAULT, unknown node →
  ILLEGAL_ADDRESS, BadWaitingForInitialData → NOT_CONNECTED, type/decoding errors → DECODE_ERROR,
  any other Bad → DEVICE_EXCEPTION (the device answered with a fault status).
- Before the first value: BAD NOT_CONNECTED.

Connection loss and reconnect (done here rather than by asyncua's `auto_reconnect`, so that the
house Backoff (jittered, capped) and DeviceHealth apply, the namespace index and nodes are
resolved again after a server restart, and security errors are reported in words): asyncua's
connection supervisor detects a closed socket at once and a silent server within `device.timeout`
(its server-state probe); the driver then drops the client and counts a failure. Each failed
connection attempt counts another, with a Backoff delay between attempts; `retry()` cuts the delay
short and resets the back-off (the device has been fixed: try now). A successful session
(connected, nodes resolved, subscribed) resets both. The STALE rule: while health is SUSPECT
(fewer than `fail_after` consecutive failures) every point keeps its last good value as STALE
(`Sample.stale()`, original timestamp); once health is FAILED every point is BAD COMM_LOST. So a
STALE value lasts at most `fail_after` attempts, about fail_after × (device.timeout + backoff cap).
A new session sends every monitored item's present value, which makes the points GOOD again.

Security (device.security): Basic256Sha256 with Sign or SignAndEncrypt, the client certificate and
key and the trusted (pinned) server certificate read from the site file's paths, resolved against
`base_dir`; the client's application URI is the certificate's. Problems with those files (missing,
unreadable, expired, key of another certificate, no URI) make `start()` raise OpcUaSecurityError:
the daemon refuses to start on them. Problems only the server can reveal (it does not trust our
certificate, its certificate is not the configured one, it offers no such endpoint) are set as the
one-line `last_error`, logged and counted in `health.errors`, while the task keeps retrying with
back-off: an operator who fixes the server's trust list needs no controller restart.

Writes (`write`) are checked locally (writable, type, range, limits) before anything is sent, and
are never retried: the caller (the arbiter) decides.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, cast

import structlog
from asyncua import ua
from asyncua.client.client import Client
from asyncua.client.ua_client import UaClientState
from asyncua.common.node import Node
from asyncua.common.subscription import DataChangeNotif, Subscription
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from asyncua.crypto.uacrypto import CertProperties
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.object_ids import ObjectIds
from asyncua.ua.uaerrors import UaError, UaStatusCodeError

from controller.config.maps import OpcUaMap, OpcUaPoint, PollClass
from controller.config.site import OpcUaDevice, SecurityMode
from controller.fieldbus.health import Backoff, DeviceHealth, Health
from controller.fieldbus.image import PointRef, ProcessImage, Quality, Reason, Sample, Value
from controller.fieldbus.opcua_security import (
    Credentials,
    OpcUaSecurityError,
    first_certificate,
    load_credentials,
    thumbprint,
)
from controller.fieldbus.opcua_values import (
    status_name,
    to_sample,
    write_variant,
)

log = structlog.get_logger(__name__)

# Map data type → OPC-UA built-in type of the node's value.
_SECURITY_MODES: Final[dict[SecurityMode, ua.MessageSecurityMode]] = {
    SecurityMode.SIGN: ua.MessageSecurityMode.Sign,
    SecurityMode.SIGN_AND_ENCRYPT: ua.MessageSecurityMode.SignAndEncrypt,
}


class OpcUaWriteError(Exception):
    """A write the server refused (or could not be sent); the message is one line."""

    def __init__(self, message: str, status: str | None = None) -> None:
        super().__init__(message)
        self.status = status  # the OPC-UA status name, when the server answered


class OpcUaConnectError(Exception):
    """No session could be had (commissioning's one session): the message is the sentence the
    driver's `last_error` would say, naming what to do."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class SessionInfo:
    """What one session found (commissioning): the security it runs with, the server's
    certificate, the time one read request takes, and each point's node."""

    endpoint: str
    policy: str  # None, Basic256Sha256
    mode: str  # None, Sign, SignAndEncrypt
    server_certificate: bytes | None  # DER, as the server presents it in its endpoints
    round_trip: float  # s, one Read request
    nodes: dict[str, str]  # point id → node id
    unresolved: dict[str, str]  # point id → the server's status for its browse path or node id


@dataclass
class OpcUaCounters:
    """What the driver did, for operators (errors by kind are in `DeviceHealth.errors`)."""

    updates: int = 0  # data-change notifications received
    reads: int = 0  # values read by polling
    connects: int = 0  # sessions established
    reconnects: int = 0  # sessions established after the first one
    writes: int = 0  # writes the server accepted
    writes_refused: int = 0  # writes refused locally or by the server


# ---------------------------------------------------------------- connection state


class _AttemptError(Exception):
    """An expected failure of a connection attempt or session: kind (for counters) and message."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class _Session:
    """One connection: the client, the resolved nodes and how each poll class is served."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.lost = asyncio.Event()
        self.lost_reason = "connection lost"
        self.alive = True  # False once the driver has given the session up: late callbacks drop
        self.nodes: dict[str, ua.NodeId] = {}
        self.points_by_node: dict[ua.NodeId, OpcUaPoint] = {}
        self.polled: dict[PollClass, list[OpcUaPoint]] = {}
        self.subscribed: dict[PollClass, int] = {}  # monitored items per class
        self.unresolved: dict[str, str] = {}  # point id → the server's status for its node

    def signal_lost(self, reason: str) -> None:
        if not self.lost.is_set():
            self.lost_reason = reason
            self.lost.set()

    async def on_connection_lost(self, exc: Exception) -> None:
        """asyncua's connection_lost_callback: only records the loss."""
        self.signal_lost(f"connection lost ({type(exc).__name__}: {exc})".replace(": )", ")"))


class _ChangeHandler:
    """asyncua subscription handler. Runs on the loop; never awaits: converts and publishes."""

    def __init__(self, driver: OpcUaDriver, session: _Session) -> None:
        self._driver = driver
        self._session = session

    def datachange_notification(self, node: Node, val: Any, data: DataChangeNotif) -> None:
        if not self._session.alive:
            return
        point = self._session.points_by_node.get(node.nodeid)
        value: ua.DataValue | None = data.monitored_item.Value
        if point is None or value is None:
            return
        self._driver._received(point, value, polled=False)

    def status_change_notification(self, status: ua.StatusChangeNotification) -> None:
        if self._session.alive and not status.Status.is_good():
            self._session.signal_lost(f"subscription ended ({status_name(status.Status)})")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class OpcUaDriver:
    """The driver of one OPC-UA device; see the module docstring.

    `start()` starts the owned task, `stop()` ends it (idempotent). `samples` is the driver's latest
    sample per point id (the same ones it publishes), `last_error` the latest connection or
    security problem in one line (None while connected), `counters` and `health` are for
    operators.
    """

    def __init__(
        self,
        device: OpcUaDevice,
        device_map: OpcUaMap,
        image: ProcessImage,
        *,
        base_dir: Path,
        clock: Callable[[], datetime] = _utc_now,
        fast_interval: float = 1.0,
        slow_interval: float = 10.0,
        backoff: Backoff | None = None,
        health: DeviceHealth | None = None,
    ) -> None:
        if fast_interval <= 0 or slow_interval <= 0:
            raise ValueError(f"{device.id}: poll intervals must be positive")
        self.device = device
        self.device_map = device_map
        self.image = image
        self.base_dir = base_dir
        self.clock = clock
        self.intervals: dict[PollClass, float] = {
            PollClass.FAST: fast_interval,
            PollClass.SLOW: slow_interval,
        }
        self.backoff = backoff if backoff is not None else Backoff()
        self.health = health if health is not None else DeviceHealth()
        self.counters = OpcUaCounters()
        self.last_error: str | None = None
        self._points: dict[str, OpcUaPoint] = {p.id: p for p in device_map.points}
        self._refs: dict[str, PointRef] = {
            p.id: PointRef(device.id, p.id) for p in device_map.points
        }
        self._samples: dict[str, Sample] = {}
        self._credentials: Credentials | None = None
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._session: _Session | None = None
        self._retry_now = asyncio.Event()  # set by retry(): the back-off delay ends at once
        self._log = log.bind(device=device.id, endpoint=device.endpoint)

    # ------------------------------------------------------------------ lifecycle

    @property
    def samples(self) -> Mapping[str, Sample]:
        """The latest sample of every point, by point id (read-only view)."""
        return MappingProxyType(self._samples)

    @property
    def connected(self) -> bool:
        return self._session is not None

    @property
    def polled_classes(self) -> frozenset[PollClass]:
        """Poll classes read periodically in the present session (the server refused to
        subscribe them, or some of their points)."""
        session = self._session
        return frozenset(session.polled) if session is not None else frozenset()

    async def start(self) -> None:
        """Check the security files (OpcUaSecurityError), mark every point NOT_CONNECTED and
        start the connection task. Connection problems do not raise: see `last_error`."""
        if self._task is not None:
            raise RuntimeError(f"{self.device.id}: the OPC-UA driver is already running")
        security = self.device.security
        if security is not None:
            self._credentials = await asyncio.to_thread(
                load_credentials, self.device.id, security, self.base_dir, self.clock()
            )
        now = self.clock()
        self._publish_all(
            {point_id: Sample.bad(Reason.NOT_CONNECTED, now) for point_id in self._points}
        )
        self._task = asyncio.create_task(self._run(), name=f"opcua-{self.device.id}")
        self._log.info(
            "opcua_driver_started",
            points=len(self._points),
            security=f"Basic256Sha256/{security.mode}" if security is not None else "None",
        )

    def retry(self) -> None:
        """Try to connect now rather than when the back-off delay ends, and start the back-off
        again from its base. Health is left as it is: only a session makes the device ok. No
        effect on a connected session."""
        self.backoff.reset()
        if self._session is None:
            self._retry_now.set()

    async def stop(self) -> None:
        """Cancel and await the task, close the connection; every point becomes BAD
        NOT_CONNECTED (nothing keeps it fresh any more). Safe to call twice."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True  # as well as the cancel, which an inner wait_for may swallow
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
        now = self.clock()
        self._publish_all(
            {point_id: Sample.bad(Reason.NOT_CONNECTED, now) for point_id in self._points}
        )
        self._log.info("opcua_driver_stopped")

    # ------------------------------------------------------------------ writes

    async def write(self, point_id: str, value: Value) -> None:
        """Write `value` (in the point's unit) to a rw point. Checked locally first (ValueError);
        a Bad status from the server, or no connection, raises OpcUaWriteError. Not retried."""
        point = self._points.get(point_id)
        if point is None:
            raise ValueError(
                f"{self.device.id}: no point {point_id!r} in map {self.device_map.device_type}"
            )
        try:
            variant = write_variant(self.device.id, point, value)
        except ValueError:
            self.counters.writes_refused += 1
            raise
        session = self._session
        if session is None:
            self._count_error("write_failed")
            raise OpcUaWriteError(
                f"{self.device.id}: {point_id} = {value!r} not written: not connected"
            )
        node_id = session.nodes.get(point_id)
        if node_id is None:
            self._count_error("write_failed")
            raise OpcUaWriteError(
                f"{self.device.id}: {point_id} = {value!r} not written: "
                "the server has no node for it (see opcua_point_unresolved in the log)"
            )
        try:
            async with asyncio.timeout(self.device.timeout):
                statuses = await session.client.uaclient.write_attributes(
                    [node_id], [ua.DataValue(variant)], AttributeIds.Value
                )
        except UaStatusCodeError as exc:
            status = status_name(ua.StatusCode(ua.UInt32(exc.code)))
            self.counters.writes_refused += 1
            self._count_error("write_refused")
            self._log.warning("opcua_write_refused", point=point_id, value=value, status=status)
            raise OpcUaWriteError(
                f"{self.device.id}: {point_id} = {value!r} refused by the server: {status}", status
            ) from None
        except (OSError, UaError) as exc:  # TimeoutError and ConnectionError included
            self._count_error("write_failed")
            raise OpcUaWriteError(
                f"{self.device.id}: {point_id} = {value!r} not written: "
                f"{type(exc).__name__} {exc}".rstrip()
            ) from None
        status_code = statuses[0]
        if not status_code.is_good():
            status = status_name(status_code)
            self.counters.writes_refused += 1
            self._count_error("write_refused")
            self._log.warning("opcua_write_refused", point=point_id, value=value, status=status)
            raise OpcUaWriteError(
                f"{self.device.id}: {point_id} = {value!r} refused by the server: {status}", status
            )
        self.counters.writes += 1
        self._log.debug("opcua_write", point=point_id, value=value)

    # ------------------------------------------------------------------ one session

    @asynccontextmanager
    async def one_session(self) -> AsyncIterator[SessionInfo]:
        """One session outside the driver's task, for commissioning: connect (the security files
        checked first: OpcUaSecurityError), resolve every point's node, yield what was found;
        `read_once()` and `write()` work meanwhile. OpcUaConnectError, in the driver's words,
        when no session can be had. Closed on the way out. Not while `start()`ed."""
        if self._task is not None:
            raise RuntimeError(f"{self.device.id}: the driver's own task holds the session")
        security = self.device.security
        credentials = None
        if security is not None:
            credentials = await asyncio.to_thread(
                load_credentials, self.device.id, security, self.base_dir, self.clock()
            )
        self._credentials = credentials
        session: _Session | None = None
        try:
            if credentials is not None:
                await self._check_server_endpoint(credentials)
            client = await self._client(credentials)
            try:
                await client.connect()
            except BaseException:
                client.disconnect_socket()
                raise
            session = _Session(client)
            await self._resolve(session)
            info = await self._session_info(session)
        except Exception as exc:
            if session is not None:
                await self._close(session.client)
            raise OpcUaConnectError(*self._describe(exc)) from None
        self._session = session
        try:
            yield info
        finally:
            self._end(session)
            await self._close(session.client)

    async def _session_info(self, session: _Session) -> SessionInfo:
        client = session.client
        policy = client.security_policy
        started = asyncio.get_running_loop().time()
        now = ua.NodeId(ua.Int32(ObjectIds.Server_ServerStatus_CurrentTime))
        await client.get_node(now).read_value()
        round_trip = asyncio.get_running_loop().time() - started
        mode = policy.Mode if policy.Mode is not None else ua.MessageSecurityMode.None_
        endpoints = await client.get_endpoints()
        matching = [
            e for e in endpoints if e.SecurityPolicyUri == policy.URI and e.SecurityMode == mode
        ] or list(endpoints)
        certificate = next((e.ServerCertificate for e in matching if e.ServerCertificate), None)
        return SessionInfo(
            endpoint=self.device.endpoint,
            policy=policy.URI.rsplit("#", 1)[-1],
            mode=mode.name.rstrip("_"),
            server_certificate=first_certificate(certificate) if certificate else None,
            round_trip=round_trip,
            nodes={point: node.to_string() for point, node in session.nodes.items()},
            unresolved=dict(session.unresolved),
        )

    # ------------------------------------------------------------------ the task

    async def _run(self) -> None:
        while not self._stopping:
            await self._session_once()
            await self._pause(self.backoff.next_delay())

    async def _pause(self, delay: float) -> None:
        """Wait `delay` seconds between two connection attempts, or until retry()."""
        try:
            async with asyncio.timeout(delay):
                await self._retry_now.wait()
        except TimeoutError:
            pass
        self._retry_now.clear()

    async def _session_once(self) -> None:
        """One connection: connect, resolve, subscribe, serve until lost. Its failure is counted
        and applied to the samples at once, before the (possibly slow) close."""
        session: _Session | None = None
        try:
            credentials = self._credentials
            if credentials is not None:
                await self._check_server_endpoint(credentials)
            client = await self._client(credentials)
            session = _Session(client)
            client.connection_lost_callback = session.on_connection_lost
            try:
                await client.connect()
            except BaseException:
                session = None  # no session to close; the socket, asyncua closes on errors only:
                client.disconnect_socket()
                raise
            await self._resolve(session)
            await self._subscribe(session)
            self._established(session)
            await self._serve(session)
        except Exception as exc:
            self._end(session)
            kind, message = self._describe(exc)
            self._failed(kind, message)
        finally:
            self._end(session)
            if session is not None:
                await self._close(session.client)

    async def _client(self, credentials: Credentials | None) -> Client:
        client = Client(
            self.device.endpoint,
            timeout=self.device.timeout,
            watchdog_intervall=self.device.timeout,  # the server-state probe that detects a hang
        )
        client.session_timeout = 60_000  # ms: a lost client's session does not linger for an hour
        client.name = client.description = f"digital-boiler controller ({self.device.id})"
        if credentials is not None:
            client.application_uri = credentials.application_uri
            await client.set_security(
                SecurityPolicyBasic256Sha256,
                CertProperties(credentials.certificate_der, extension="der"),
                CertProperties(credentials.private_key_der, extension="der"),
                server_certificate=CertProperties(credentials.server_certificate_der, "der"),
                mode=_SECURITY_MODES[credentials.mode],
            )
        return client

    def _end(self, session: _Session | None) -> None:
        """Give a session up: late notifications of it are dropped from now on."""
        if session is not None:
            session.alive = False
            if self._session is session:
                self._session = None

    def _established(self, session: _Session) -> None:
        if self.counters.connects > 0:
            self.counters.reconnects += 1
        self.counters.connects += 1
        self.health.success()
        self.backoff.reset()
        self._retry_now.clear()  # a retry() asked during the attempt is served
        self.last_error = None
        self._session = session
        self._log.info(
            "opcua_connected",
            subscribed={str(c): n for c, n in session.subscribed.items()},
            polled={str(c): len(p) for c, p in session.polled.items()},
            reconnects=self.counters.reconnects,
        )

    async def _serve(self, session: _Session) -> None:
        """Wait for the session's loss, reading the polled classes when they are due."""
        loop = asyncio.get_running_loop()
        due = dict.fromkeys(session.polled, loop.time())
        while not self._stopping:
            wait = max(0.0, min(due.values()) - loop.time()) if due else None
            try:
                async with asyncio.timeout(wait):
                    await session.lost.wait()
            except TimeoutError:
                pass
            if session.lost.is_set():
                raise _AttemptError("connection_lost", f"{self.device.id}: {session.lost_reason}")
            now = loop.time()
            for poll_class, at in due.items():
                if at <= now:
                    await self._poll(session, poll_class)
                    due[poll_class] = max(at + self.intervals[poll_class], now)

    async def read_once(self) -> None:
        """Read every point the session resolved, both poll classes, once (lockstep runs and
        on-demand refreshes). Nothing when not connected; a failed read is left to the session
        task, which sees the loss and reconnects."""
        session = self._session
        if session is None:
            return
        try:
            async with asyncio.timeout(self.device.timeout):
                for poll_class in PollClass:
                    await self._poll(session, poll_class, every_point=True)
        except (OSError, UaError) as exc:  # TimeoutError and ConnectionError included
            self._log.debug("opcua_read_failed", error=f"{type(exc).__name__}: {exc}")

    async def _poll(
        self, session: _Session, poll_class: PollClass, *, every_point: bool = False
    ) -> None:
        """Read the class's polled points (subscription refused), or with `every_point` all its
        resolved points."""
        if every_point:
            points = [
                p for p in self.device_map.points if p.poll is poll_class and p.id in session.nodes
            ]
        else:
            points = session.polled[poll_class]
        if not points:
            return
        node_ids = [session.nodes[p.id] for p in points]
        values = await session.client.uaclient.read_attributes(node_ids, AttributeIds.Value)
        if session.alive:
            for point, value in zip(points, values, strict=True):
                self._received(point, value, polled=True)

    # ------------------------------------------------------------------ set-up steps

    async def _resolve(self, session: _Session) -> None:
        """Every point's node id, from a fresh namespace array (indexes may change on restart)."""
        namespaces: Sequence[str] = await session.client.get_namespace_array()
        browsed = [p for p in self.device_map.points if p.browse_path is not None]
        unresolved: dict[str, str] = {}
        if browsed:
            if self.device_map.namespace not in namespaces:
                raise _AttemptError(
                    "namespace_missing",
                    f"{self.device.id}: the server at {self.device.endpoint} has no namespace "
                    f"{self.device_map.namespace} (is it a {self.device_map.device_type}?)",
                )
            index = list(namespaces).index(self.device_map.namespace)
            results = await session.client.uaclient.translate_browsepaths_to_nodeids(
                [_browse_path(p, index) for p in browsed]
            )
            for point, result in zip(browsed, results, strict=True):
                if result.StatusCode.is_good() and result.Targets:
                    target = result.Targets[0].TargetId
                    session.nodes[point.id] = ua.NodeId(
                        target.Identifier, target.NamespaceIndex, target.NodeIdType
                    )
                else:
                    unresolved[point.id] = status_name(result.StatusCode)
        for point in self.device_map.points:
            if point.node_id is not None:
                node_id = _parse_node_id(point.node_id, namespaces)
                if node_id is None:
                    unresolved[point.id] = "BadNodeIdUnknown"
                else:
                    session.nodes[point.id] = node_id
        session.points_by_node = {session.nodes[p]: self._points[p] for p in session.nodes}
        session.unresolved = unresolved
        now = self.clock()
        for point_id, status in unresolved.items():
            self._count_error("unresolved_node")
            self._log.warning("opcua_point_unresolved", point=point_id, status=status)
            self._publish(point_id, Sample.bad(Reason.ILLEGAL_ADDRESS, now))

    async def _subscribe(self, session: _Session) -> None:
        """One subscription per poll class; what the server refuses is polled instead."""
        handler = _ChangeHandler(self, session)
        for poll_class in PollClass:
            points = [
                p for p in self.device_map.points if p.poll is poll_class and p.id in session.nodes
            ]
            if not points:
                continue
            period = self.intervals[poll_class] * 1000.0  # ms
            try:
                subscription = await session.client.create_subscription(period, handler)
            except UaStatusCodeError as exc:
                self._refused(session, poll_class, points, ua.StatusCode(ua.UInt32(exc.code)))
                continue
            nodes = [session.client.get_node(session.nodes[p.id]) for p in points]
            try:
                results = await subscription.subscribe_data_change(
                    nodes, sampling_interval=ua.Double(period)
                )
            except UaStatusCodeError as exc:
                await _delete_quietly(subscription)
                self._refused(session, poll_class, points, ua.StatusCode(ua.UInt32(exc.code)))
                continue
            refused = [
                (p, r) for p, r in zip(points, results, strict=True) if isinstance(r, ua.StatusCode)
            ]
            session.subscribed[poll_class] = len(points) - len(refused)
            for point, status in refused:
                self._refused(session, poll_class, [point], status)

    def _refused(
        self,
        session: _Session,
        poll_class: PollClass,
        points: list[OpcUaPoint],
        status: ua.StatusCode,
    ) -> None:
        self._count_error("subscription_refused")
        self._log.warning(
            "opcua_subscription_refused",
            poll_class=str(poll_class),
            points=[p.id for p in points],
            status=status_name(status),
            fallback="polling",
            interval=self.intervals[poll_class],
        )
        session.polled.setdefault(poll_class, []).extend(points)

    async def _check_server_endpoint(self, credentials: Credentials) -> None:
        """Ask the server (over an unsecured channel, as discovery does) for its endpoints: is
        there one with our policy and mode, and does it carry the configured certificate?
        Without this, a wrong server certificate only shows as a timeout. A server that refuses
        unsecured channels even for discovery is not asked: the secure channel checks its
        certificate anyway."""
        probe = Client(self.device.endpoint, timeout=self.device.timeout)
        try:
            endpoints = await probe.connect_and_get_server_endpoints()
        except (AssertionError, UaStatusCodeError) as exc:
            if not isinstance(exc, UaStatusCodeError) and not _refused_channel(exc):
                raise
            self._log.debug("opcua_discovery_refused", error=f"{type(exc).__name__}: {exc}")
            return
        mode = _SECURITY_MODES[credentials.mode]
        matching = [
            e
            for e in endpoints
            if e.SecurityPolicyUri == SecurityPolicyBasic256Sha256.URI and e.SecurityMode == mode
        ]
        if not matching:
            offered = sorted(
                {
                    f"{e.SecurityPolicyUri.rsplit('#', 1)[-1]}/{e.SecurityMode.name}"
                    for e in endpoints
                }
            )
            raise _AttemptError(
                "no_secure_endpoint",
                f"{self.device.id}: the server at {self.device.endpoint} offers no Basic256Sha256 "
                f"{credentials.mode} endpoint (it offers {', '.join(offered) or 'none'})",
            )
        offered_der = matching[0].ServerCertificate or b""
        if not offered_der.startswith(credentials.server_certificate_der):
            raise _AttemptError(
                "server_certificate_mismatch",
                f"{self.device.id}: the server's certificate (SHA-1 "
                f"{thumbprint(first_certificate(offered_der))}) is not the configured "
                f"server_certificate {credentials.server_certificate_path} (SHA-1 "
                f"{thumbprint(credentials.server_certificate_der)}): check the endpoint, or "
                "replace the file with the server's certificate if it was renewed",
            )

    async def _close(self, client: Client) -> None:
        """Close the client and its tasks, bounded by the device timeout. A cancellation (stop)
        arriving meanwhile waits for the close to finish, then goes on: no client task is left
        behind."""
        closing = asyncio.ensure_future(self._close_client(client))
        try:
            await asyncio.shield(closing)
        except asyncio.CancelledError:
            await closing
            raise

    async def _close_client(self, client: Client) -> None:
        try:
            async with asyncio.timeout(self.device.timeout):
                if client.state is UaClientState.CONNECTED:
                    await client.disconnect()
                else:  # the transport is gone: stop the client's tasks, skip the goodbyes
                    try:
                        await client.close_session()
                    finally:
                        client.disconnect_socket()
        except Exception as exc:
            self._log.debug("opcua_close", error=f"{type(exc).__name__}: {exc}")

    # ------------------------------------------------------------------ samples and health

    def _received(self, point: OpcUaPoint, data: ua.DataValue, *, polled: bool) -> None:
        """A value from the server (notification or read): convert and publish. No awaits."""
        if polled:
            self.counters.reads += 1
        else:
            self.counters.updates += 1
        self._publish(point.id, to_sample(point, data, self.clock()))

    def _failed(self, kind: str, message: str) -> None:
        """A lost session or failed attempt: count it, apply the STALE/BAD rule, report it."""
        previous = self.health.state
        self.health.failure(kind)
        repeated = message == self.last_error
        self.last_error = message
        now = self.clock()
        if self.health.state is Health.FAILED:
            self._publish_all(
                {
                    point_id: sample
                    if sample.quality is Quality.BAD and sample.reason is Reason.COMM_LOST
                    else Sample.bad(Reason.COMM_LOST, now)
                    for point_id, sample in self._samples.items()
                }
            )
        else:
            self._publish_all(
                {
                    point_id: sample.stale(Reason.COMM_LOST)
                    for point_id, sample in self._samples.items()
                }
            )
        event = self._log.debug if repeated else self._log.warning
        event(
            "opcua_connection_failed",
            kind=kind,
            error=message,
            health=str(self.health.state),
            consecutive_failures=self.health.consecutive_failures,
        )
        if self.health.state is Health.FAILED and previous is not Health.FAILED:
            self._log.error("opcua_device_failed", error=message)

    def _describe(self, exc: Exception) -> tuple[str, str]:
        """(kind, one-line message) of an exception from a connection attempt or session."""
        if isinstance(exc, _AttemptError):
            return exc.kind, exc.message
        device, url = self.device.id, self.device.endpoint
        credentials = self._credentials
        certificate = credentials.certificate_path if credentials is not None else None
        if _refused_channel(exc) and credentials is not None:
            # node-opcua answers OpenSecureChannel with a ServiceFault (BadSecurityChecksFailed)
            # for a certificate it does not trust; asyncua cannot decode it and asserts
            return (
                "certificate_untrusted",
                f"{device}: the server at {url} refused a secure channel with our certificate "
                f"{certificate}: add it to the server's trust list",
            )
        if _refused_channel(exc):
            return (
                "no_endpoint",
                f"{device}: the server at {url} refused an unsecured channel: configure "
                "security for this device in the site file",
            )
        if isinstance(exc, UaStatusCodeError):
            status = status_name(ua.StatusCode(ua.UInt32(exc.code)))
            if credentials is None and status in (
                "BadSecurityModeRejected",
                "BadSecurityPolicyRejected",
            ):
                return (
                    "no_endpoint",
                    f"{device}: the server at {url} refuses unsecured sessions "
                    f"({status}): configure security for this device in the site file",
                )
            if status == "BadCertificateUntrusted":
                return (
                    "certificate_untrusted",
                    f"{device}: the server does not trust our certificate {certificate}: "
                    "add it to the server's trust list",
                )
            if status.startswith("BadCertificate") or status == "BadSecurityChecksFailed":
                return (
                    "certificate_refused",
                    f"{device}: the server refused our certificate {certificate}: {status}",
                )
            return "service_error", f"{device}: the server at {url} answered {status}"
        if isinstance(exc, TimeoutError):
            return "timeout", f"{device}: {url} did not answer within {self.device.timeout:g} s"
        if isinstance(exc, ConnectionRefusedError):
            return "connection_refused", f"{device}: {url} refused the connection"
        if isinstance(exc, ConnectionError):
            return "connection_lost", f"{device}: connection to {url} lost ({exc})"
        if isinstance(exc, OSError):
            return "connect_failed", f"{device}: cannot reach {url}: {exc.strerror or exc}"
        text = str(exc)
        if text == "Server certificate mismatch" and credentials is not None:
            return (
                "server_certificate_mismatch",
                f"{device}: the server's certificate is not the configured server_certificate "
                f"{credentials.server_certificate_path}",
            )
        if text.startswith("No matching endpoints") and credentials is None:
            return (
                "no_endpoint",
                f"{device}: the server at {url} offers no unsecured endpoint: "
                "configure security for this device in the site file",
            )
        self._log.error("opcua_unexpected_error", exc_info=exc)
        return "error", f"{device}: {type(exc).__name__}: {text}".replace("\n", " ")

    def _count_error(self, kind: str) -> None:
        """Count an error that says nothing about the connection (health state unchanged)."""
        self.health.count(kind)

    def _publish(self, point_id: str, sample: Sample) -> None:
        self._samples[point_id] = sample
        self.image.publish(self._refs[point_id], sample)

    def _publish_all(self, samples: Mapping[str, Sample]) -> None:
        self._samples.update(samples)
        self.image.publish_many({self._refs[point_id]: s for point_id, s in samples.items()})


# ---------------------------------------------------------------- asyncua helpers


# asyncua annotates booleans as its marker class ua.Boolean; the wire format takes bools.
_FALSE: Final = cast(ua.Boolean, False)
_TRUE: Final = cast(ua.Boolean, True)


def _browse_path(point: OpcUaPoint, namespace_index: int) -> ua.BrowsePath:
    assert point.browse_path is not None
    elements = [
        ua.RelativePathElement(
            ReferenceTypeId=ua.NodeId(ua.Int32(ObjectIds.HierarchicalReferences)),
            IsInverse=_FALSE,
            IncludeSubtypes=_TRUE,
            TargetName=ua.QualifiedName(name, namespace_index),
        )
        for name in point.browse_path
    ]
    return ua.BrowsePath(
        StartingNode=ua.NodeId(ua.Int32(ObjectIds.ObjectsFolder)),
        RelativePath=ua.RelativePath(Elements=elements),
    )


def _parse_node_id(text: str, namespaces: Sequence[str]) -> ua.NodeId | None:
    """A map's node id (`ns=` index or `nsu=` URI) for this server; None if its namespace is
    unknown there."""
    parsed = ua.NodeId.from_string(text)
    if isinstance(parsed, ua.ExpandedNodeId) and parsed.NamespaceUri:
        if parsed.NamespaceUri not in namespaces:
            return None
        index = list(namespaces).index(parsed.NamespaceUri)
        return ua.NodeId(parsed.Identifier, ua.Int16(index), parsed.NodeIdType)
    if parsed.NamespaceIndex >= len(namespaces):
        return None
    return ua.NodeId(parsed.Identifier, parsed.NamespaceIndex, parsed.NodeIdType)


def _refused_channel(exc: BaseException) -> bool:
    """asyncua's AssertionError when a server answers OpenSecureChannel with a ServiceFault (a
    refusal) instead of a response: asyncua cannot decode it, and asserts in
    open_secure_channel."""
    if not isinstance(exc, AssertionError):
        return False
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and frames[-1].name == "open_secure_channel"


async def _delete_quietly(subscription: Subscription) -> None:
    try:
        await subscription.delete()
    except (UaError, OSError, ConnectionError) as exc:
        log.debug("opcua_subscription_delete_failed", error=str(exc))


__all__ = [
    "OpcUaConnectError",
    "OpcUaCounters",
    "OpcUaDriver",
    "OpcUaSecurityError",
    "OpcUaWriteError",
    "SessionInfo",
]

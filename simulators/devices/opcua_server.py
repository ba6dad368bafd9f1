"""Simulated compute manager: an OPC-UA server built from a device map and a plant binding.

One `ComputeManagerServer` serves one device (the compute manager of one caisson). Its address
space has one variable per map point, at the point's browse path under the Objects folder (every
browse name in the map's namespace, whose index is registered at start and never assumed) or at
the point's own node id; the variable has the map's data type and, where the unit is known,
an EngineeringUnits property. Values come from the `DeviceBinding`: `refresh()` reads every point
and writes the values that changed into the nodes, which is what subscribed clients see. The plant
runner calls it after each plant step.

Client writes are intercepted before they reach the address space (see `_GuardedAttributeService`):
a write to a read-only point is refused with BadNotWritable, a value of the wrong type with
BadTypeMismatch, a value outside the point's limits with BadOutOfRange; an accepted write goes to
`binding.write` and counts in `write_counts`, even when it repeats the present value (a lease is
renewed by rewriting it). The node then shows the value the binding reads back.

Cost: asyncua's `Server.init()` loads the standard address space and takes 1.5-2.4 s, so `start()`
does too; `stop()` takes a few milliseconds (the server's clock task is cancelled rather than
left to finish its one-second sleep). Start servers once per test module or session.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, cast

import structlog
from asyncua import ua
from asyncua.common.node import Node
from asyncua.crypto import uacrypto
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.crypto.truststore import TrustStore
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions
from asyncua.server.address_space import AddressSpace, AttributeService
from asyncua.server.server import Server
from cryptography import x509

from controller.config.maps import OpcUaMap, OpcUaPoint
from controller.config.site import SecurityMode
from controller.fieldbus.opcua_values import VARIANT_TYPES
from simulators.devices.bindings import DeviceBinding, Value

log = structlog.get_logger(__name__)


# Point units as UNECE Recommendation 20 common codes, the OPC UA EngineeringUnits convention.
UNECE_NAMESPACE: Final = "http://www.opcfoundation.org/UA/units/un/cefact"
UNECE_CODES: Final[dict[str, tuple[str, str]]] = {
    "degC": ("CEL", "degree Celsius"),
    "K": ("KEL", "kelvin"),
    "L/min": ("L2", "litre per minute"),
    "m3/h": ("MQH", "cubic metre per hour"),
    "m3": ("MTQ", "cubic metre"),
    "W": ("WTT", "watt"),
    "kW": ("KWT", "kilowatt"),
    "kWh": ("KWH", "kilowatt hour"),
    "MWh": ("MWH", "megawatt hour"),
    "bar": ("BAR", "bar"),
    "kPa": ("KPA", "kilopascal"),
    "%": ("P1", "percent"),
    "rpm": ("RPM", "revolutions per minute"),
    "s": ("SEC", "second"),
    "Hz": ("HTZ", "hertz"),
    "V": ("VLT", "volt"),
    "A": ("AMP", "ampere"),
    "1": ("C62", "one"),
    "count": ("C62", "one"),
}

_SECURE_POLICIES: Final[dict[SecurityMode, ua.SecurityPolicyType]] = {
    SecurityMode.SIGN: ua.SecurityPolicyType.Basic256Sha256_Sign,
    SecurityMode.SIGN_AND_ENCRYPT: ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
}

_ADMIN: Final = User(role=UserRole.Admin)  # AttributeService.write's own default caller


def engineering_units(unit: str) -> ua.EUInformation | None:
    """The EUInformation of a point unit, or None for units without a UNECE code (bool)."""
    entry = UNECE_CODES.get(unit)
    if entry is None:
        return None
    code, description = entry
    unit_id = 0
    for char in code:  # OPC UA Part 8: the common code's characters, one byte each, big-endian
        unit_id = (unit_id << 8) | ord(char)
    return ua.EUInformation(
        NamespaceUri=UNECE_NAMESPACE,
        UnitId=unit_id,
        DisplayName=ua.LocalizedText(unit),
        Description=ua.LocalizedText(description),
    )


@dataclass(frozen=True)
class ServerSecurity:
    """How a simulated server secures its endpoint (policy Basic256Sha256).

    certificate, private_key: the server's pair (see certificates.make_certificate); the server's
        application URI is taken from the certificate, as clients check that they match.
    modes: the secure modes offered (Sign and/or SignAndEncrypt).
    allow_unsecured: also offer the NoSecurity endpoint (its clients present no certificate, so
        the trust list does not apply to them).
    trusted_certificates: client certificates (or folders of .der/.pem files, or CA certificates)
        the server trusts; a client presenting any other certificate is refused at session
        creation with BadCertificateUntrusted. None: any client certificate is accepted.
    """

    certificate: Path
    private_key: Path
    modes: tuple[SecurityMode, ...] = (SecurityMode.SIGN_AND_ENCRYPT,)
    allow_unsecured: bool = False
    trusted_certificates: tuple[Path, ...] | None = None

    def __post_init__(self) -> None:
        if not self.modes:
            raise ValueError("ServerSecurity needs at least one secure mode")

    @property
    def policies(self) -> list[ua.SecurityPolicyType]:
        policies = [_SECURE_POLICIES[mode] for mode in dict.fromkeys(self.modes)]
        if self.allow_unsecured:
            policies.append(ua.SecurityPolicyType.NoSecurity)
        return policies


class _PathTrustStore(TrustStore):
    """asyncua's TrustStore reads folders only; this one also takes certificate files."""

    async def _load_trust_location(self, location: Path) -> list[x509.Certificate]:
        if location.is_file():
            return [await _load_certificate(location)]
        if not location.is_dir():
            raise FileNotFoundError(f"trusted certificate {location}: no such file or folder")
        return await super()._load_trust_location(location)


WriteHandler = Callable[[ua.DataValue], Awaitable[ua.StatusCode]]


class _GuardedAttributeService(AttributeService):
    """The server's Write service with a handler in front of the nodes that carry map points.

    asyncua has no per-node write hook that can refuse a write: a value setter's result is
    ignored, and PreWrite callbacks cannot change the results. Every client Write, from every
    session, goes through `InternalServer.attribute_service.write`, so the server replaces that
    service with this one. Value writes to a point's node go to its handler, which returns the
    status for that item; every other item is passed on to asyncua unchanged.
    """

    def __init__(self, aspace: AddressSpace, handlers: dict[ua.NodeId, WriteHandler]) -> None:
        super().__init__(aspace)
        self._handlers = handlers

    async def write(self, params: ua.WriteParameters, user: User = _ADMIN) -> list[ua.StatusCode]:
        results: list[ua.StatusCode | None] = []
        passed_on: list[tuple[int, ua.WriteValue]] = []
        for index, item in enumerate(params.NodesToWrite):
            handler = self._handlers.get(item.NodeId)
            if handler is None or item.AttributeId != ua.AttributeIds.Value:
                results.append(None)
                passed_on.append((index, item))
            else:
                results.append(await handler(item.Value))
        if passed_on:
            rest = ua.WriteParameters(NodesToWrite=[item for _, item in passed_on])
            for (index, _), status in zip(passed_on, await super().write(rest, user), strict=True):
                results[index] = status
        return [status if status is not None else _status("BadInternalError") for status in results]


def _status(name: str) -> ua.StatusCode:
    return ua.StatusCode(getattr(ua.StatusCodes, name))


def _utc_now() -> datetime:
    return datetime.now(UTC)


async def _load_certificate(path: Path) -> x509.Certificate:
    certificate: x509.Certificate = await uacrypto.load_certificate(path)
    return certificate


def certificate_application_uri(certificate: x509.Certificate) -> str:
    """The application URI a certificate was made for (its first URI subject alternative name)."""
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        names = None
    uris = names.value.get_values_for_type(x509.UniformResourceIdentifier) if names else []
    if not uris:
        raise ValueError("the certificate names no application URI (subject alternative name)")
    return uris[0]


def _same(a: Value, b: Value) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


@dataclass
class _PointNode:
    point: OpcUaPoint
    node_id: ua.NodeId
    variant_type: ua.VariantType
    last: Value = None
    published: bool = False


@dataclass
class _Running:
    server: Server
    namespace_index: int
    endpoint: str
    nodes: dict[str, _PointNode] = field(default_factory=dict)


class ComputeManagerServer:
    """An OPC-UA server for one compute manager, backed by the plant through `binding`.

    `port=0` binds a free port; `endpoint` then gives the URL with the bound port. `start()` takes
    about 2 s (asyncua's standard address space), `stop()` is idempotent.
    """

    def __init__(
        self,
        device_id: str,
        device_map: OpcUaMap,
        binding: DeviceBinding,
        host: str = "127.0.0.1",
        port: int = 0,
        security: ServerSecurity | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.device_id = device_id
        self.device_map = device_map
        self.binding = binding
        self.host = host
        self.port = port
        self.security = security
        self._clock = clock
        self._running: _Running | None = None
        self._stopped = False
        # Accepted client writes by point id (refused writes do not count).
        self.write_counts: dict[str, int] = {p.id: 0 for p in device_map.points if p.writable}

    # ------------------------------------------------------------------ lifecycle

    @property
    def endpoint(self) -> str:
        """The endpoint URL clients connect to, with the bound port."""
        return self._state().endpoint

    @property
    def namespace_index(self) -> int:
        """The index the server gave the map's namespace URI."""
        return self._state().namespace_index

    def node_id(self, point_id: str) -> ua.NodeId:
        return self._state().nodes[point_id].node_id

    async def start(self) -> None:
        if self._running is not None or self._stopped:
            raise RuntimeError(f"{self.device_id}: an OPC-UA server starts once")
        server = Server()
        await server.init()  # 1.5-2.4 s
        try:
            await self._configure(server)
            namespace_index = await server.register_namespace(self.device_map.namespace)
            nodes = await self._build_address_space(server, namespace_index)
            handlers: dict[ua.NodeId, WriteHandler] = {
                node.node_id: self._write_handler(node) for node in nodes.values()
            }
            iserver = server.iserver
            iserver.attribute_service = _GuardedAttributeService(iserver.aspace, handlers)
            self._running = _Running(server, namespace_index, "", nodes)
            await self.refresh()
            await server.start()
        except BaseException:
            self._running = None
            await _stop_quietly(server)
            raise
        self._running.endpoint = self._publish_endpoint(server)
        log.info(
            "opcua_server_started",
            device=self.device_id,
            endpoint=self._running.endpoint,
            namespace_index=namespace_index,
            points=len(nodes),
            security=[policy.name for policy in self._policies()],
        )

    async def stop(self) -> None:
        """Close every client connection and the listening socket; safe to call twice."""
        running, self._running = self._running, None
        self._stopped = True
        if running is None:
            return
        await _stop_quietly(running.server)
        log.info("opcua_server_stopped", device=self.device_id, endpoint=running.endpoint)

    async def __aenter__(self) -> ComputeManagerServer:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ values

    async def refresh(self) -> int:
        """Read every point from the binding and write the changed values into the nodes.

        Returns how many nodes were written. Does nothing once the server has stopped.
        """
        if self._running is None:
            return 0
        written = 0
        for node in self._running.nodes.values():
            if await self._publish(node, self.binding.read(node.point.id)):
                written += 1
        return written

    async def _publish(self, node: _PointNode, value: Value) -> bool:
        if node.published and _same(value, node.last):
            return False
        assert self._running is not None
        now = cast(ua.DateTime, self._clock())
        if value is None:  # the device reports a sensor at its fault code
            data = ua.DataValue(
                StatusCode=_status("BadSensorFailure"), SourceTimestamp=now, ServerTimestamp=now
            )
        else:
            variant = ua.Variant(_coerce(value, node.variant_type), node.variant_type)
            data = ua.DataValue(Value=variant, SourceTimestamp=now, ServerTimestamp=now)
        aspace = self._running.server.iserver.aspace
        status = await aspace.write_attribute_value(node.node_id, ua.AttributeIds.Value, data)
        if not status.is_good():
            log.error(
                "opcua_publish_failed",
                device=self.device_id,
                point=node.point.id,
                value=value,
                status=status.name,
            )
            return False
        node.last, node.published = value, True
        return True

    def _write_handler(self, node: _PointNode) -> WriteHandler:
        async def handle(data: ua.DataValue) -> ua.StatusCode:
            return await self._client_write(node, data)

        return handle

    async def _client_write(self, node: _PointNode, data: ua.DataValue) -> ua.StatusCode:
        point = node.point
        refusal, value = _check_write(point, node.variant_type, data)
        if refusal is not None:
            log.warning(
                "opcua_write_refused",
                device=self.device_id,
                point=point.id,
                value=_describe(data),
                status=refusal,
            )
            return _status(refusal)
        try:
            self.binding.write(point.id, value)
        except Exception:
            log.exception("opcua_write_failed", device=self.device_id, point=point.id, value=value)
            return _status("BadInternalError")
        self.write_counts[point.id] += 1
        log.debug(
            "opcua_write",
            device=self.device_id,
            point=point.id,
            value=value,
            count=self.write_counts[point.id],
        )
        await self._publish(node, self.binding.read(point.id))
        return ua.StatusCode()

    # ------------------------------------------------------------------ set-up

    def _state(self) -> _Running:
        if self._running is None:
            raise RuntimeError(f"{self.device_id}: the OPC-UA server is not running")
        return self._running

    def _policies(self) -> list[ua.SecurityPolicyType]:
        if self.security is None:
            return [ua.SecurityPolicyType.NoSecurity]
        return self.security.policies

    async def _configure(self, server: Server) -> None:
        server.set_endpoint(_url(self.host, self.port))
        server.set_server_name(f"digital-boiler simulated {self.device_map.device_type}")
        server.allow_remote_admin(False)  # no "admin" user name that skips access levels
        server.set_identity_tokens([ua.AnonymousIdentityToken])
        server.set_security_policy(self._policies())
        security = self.security
        if security is None:
            await server.set_application_uri(f"urn:digital-boiler:simulator:{self.device_id}")
            return
        certificate = await _load_certificate(security.certificate)
        await server.load_certificate(str(security.certificate))
        await server.load_private_key(str(security.private_key))
        await server.set_application_uri(certificate_application_uri(certificate))
        if security.trusted_certificates is not None:
            store = _PathTrustStore(list(security.trusted_certificates), [])
            await store.load()
            options = (
                CertificateValidatorOptions.TRUSTED_VALIDATION
                | CertificateValidatorOptions.PEER_CLIENT
            )
            server.set_certificate_validator(CertificateValidator(options, store))

    async def _build_address_space(
        self, server: Server, namespace_index: int
    ) -> dict[str, _PointNode]:
        objects = server.nodes.objects
        folders: dict[tuple[str, ...], Node] = {(): objects}
        variables: set[tuple[str, ...]] = set()
        nodes: dict[str, _PointNode] = {}
        for point in self.device_map.points:
            variant_type = VARIANT_TYPES[point.type]
            if point.browse_path is not None:
                path = tuple(point.browse_path)
                if path in variables or path in folders:
                    raise ValueError(f"point {point.id!r}: browse path {'/'.join(path)} is taken")
                parent = await _folder(folders, path[:-1], namespace_index)
                node_id = _string_node_id(".".join(path), namespace_index)
                name = ua.QualifiedName(path[-1], namespace_index)
                variables.add(path)
            else:
                assert point.node_id is not None
                parent = objects
                node_id = await _resolve_node_id(server, point)
                name = ua.QualifiedName(point.id, namespace_index)
            variable = await parent.add_variable(
                node_id, name, _zero(variant_type), variant_type, _data_type(variant_type)
            )
            await variable.write_attribute(
                ua.AttributeIds.Description,
                ua.DataValue(ua.Variant(ua.LocalizedText(point.description))),
            )
            if point.writable:
                await variable.set_writable()
            units = engineering_units(point.unit)
            if units is not None:
                await variable.add_property(
                    ua.NodeId(NamespaceIndex=ua.Int16(namespace_index)),  # id left to the server
                    ua.QualifiedName("EngineeringUnits", 0),
                    units,
                    ua.VariantType.ExtensionObject,
                    ua.NodeId(ua.Int32(ua.ObjectIds.EUInformation)),
                )
            nodes[point.id] = _PointNode(point, node_id, variant_type)
        return nodes

    def _publish_endpoint(self, server: Server) -> str:
        """The URL with the bound port, also in the endpoint descriptions clients discover."""
        assert server.bserver is not None
        url = _url(self.host, server.bserver.port)
        server.set_endpoint(url)
        for description in server.iserver.endpoints:
            description.EndpointUrl = url
            description.Server.DiscoveryUrls = [url]
        return url


def _check_write(
    point: OpcUaPoint, variant_type: ua.VariantType, data: ua.DataValue
) -> tuple[str | None, Value]:
    """(refusal status name or None, value to write) for a client's write of `data`."""
    if not point.writable:
        return "BadNotWritable", None
    if data.StatusCode is not None and not data.StatusCode.is_good():
        return "BadWriteNotSupported", None  # a setpoint is a value, not a status
    variant = data.Value
    if variant is None or variant.VariantType != variant_type or variant.is_array:
        return "BadTypeMismatch", None
    value = variant.Value
    if not isinstance(value, bool | int | float | str):
        return "BadTypeMismatch", None
    if isinstance(value, float) and not math.isfinite(value):
        return "BadOutOfRange", None
    limits = point.limits
    if limits is None or isinstance(value, str | bool):
        return None, value
    if not limits.min <= value <= limits.max:
        return "BadOutOfRange", None
    return None, value


def _describe(data: ua.DataValue) -> str:
    variant = data.Value
    if variant is None:
        return "(no value)"
    return f"{variant.Value!r} ({variant.VariantType.name})"


def _coerce(value: Value, variant_type: ua.VariantType) -> Value:
    if variant_type in (ua.VariantType.Float, ua.VariantType.Double):
        return float(value) if value is not None and not isinstance(value, str) else value
    if variant_type is ua.VariantType.Boolean:
        return bool(value)
    if variant_type is ua.VariantType.String:
        return str(value)
    return round(value) if isinstance(value, int | float) else value


def _zero(variant_type: ua.VariantType) -> Value:
    if variant_type is ua.VariantType.Boolean:
        return False
    if variant_type is ua.VariantType.String:
        return ""
    if variant_type in (ua.VariantType.Float, ua.VariantType.Double):
        return 0.0
    return 0


def _string_node_id(identifier: str, namespace_index: int) -> ua.NodeId:
    return ua.NodeId(ua.String(identifier), ua.Int16(namespace_index))


def _data_type(variant_type: ua.VariantType) -> ua.NodeId:
    """The DataType node of a built-in type (ns 0, id = the VariantType's value)."""
    return ua.NodeId(ua.Int32(variant_type.value))


def _url(host: str, port: int) -> str:
    return f"opc.tcp://[{host}]:{port}" if ":" in host else f"opc.tcp://{host}:{port}"


async def _folder(folders: dict[tuple[str, ...], Node], path: tuple[str, ...], ns: int) -> Node:
    """The object at `path` under Objects, made (with its parents) on first use."""
    known = folders.get(path)
    if known is not None:
        return known
    parent = await _folder(folders, path[:-1], ns)
    folder = await parent.add_object(
        _string_node_id(".".join(path), ns), ua.QualifiedName(path[-1], ns)
    )
    folders[path] = folder
    return folder


async def _resolve_node_id(server: Server, point: OpcUaPoint) -> ua.NodeId:
    """The point's node id; a `nsu=` namespace URI is registered, an `ns=` index must exist."""
    assert point.node_id is not None
    parsed = ua.NodeId.from_string(point.node_id)
    if isinstance(parsed, ua.ExpandedNodeId) and parsed.NamespaceUri:
        index = await server.register_namespace(parsed.NamespaceUri)
        return ua.NodeId(parsed.Identifier, ua.Int16(index), parsed.NodeIdType)
    namespaces: Sequence[str] = await server.get_namespace_array()
    if not 0 < parsed.NamespaceIndex < len(namespaces):
        raise ValueError(
            f"point {point.id!r}: node id {point.node_id} names namespace index "
            f"{parsed.NamespaceIndex}, but the server's namespaces are {list(namespaces)} "
            f"(write the node id with nsu=<uri> to make it independent of the index)"
        )
    return parsed


async def _stop_quietly(server: Server) -> None:
    """Stop an asyncua server, without waiting out its clock task's one-second sleep."""
    iserver = server.iserver
    clock_task = iserver.time_task
    if clock_task is not None:
        iserver.time_task = None
        clock_task.cancel()
        try:
            await clock_task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
    await server.stop()

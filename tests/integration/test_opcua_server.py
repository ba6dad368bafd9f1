"""The simulated compute manager's OPC-UA server, over real sockets.

Clients: asyncua (Python) and node-opcua (Node.js, tests/peers/opcua_client.mjs), an independent
implementation that guards against a mistake both Python sides would share. The servers are
started once for the module (asyncua's Server.init() takes about 2 s each): a plain one for c1's
compute manager and a Basic256Sha256 SignAndEncrypt one, trusting two client certificates, for
c2's. Both serve the same plant run, which the tests advance explicitly.
"""

from __future__ import annotations

import asyncio
import json
import math
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.node import Node
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256, SecurityPolicyNone

from controller.config.maps import DataType, OpcUaMap
from controller.config.site import SecurityMode
from simulators.devices.bindings import DeviceBinding, Value
from simulators.devices.opcua_server import ComputeManagerServer, ServerSecurity
from tests.opcua_support import Pair, Plant, demo_plant, make_pair, opcua_map

ROOT = Path(__file__).resolve().parents[2]
PEERS = ROOT / "tests" / "peers"
NODE_CLIENT = PEERS / "opcua_client.mjs"
NODE_TIMEOUT = 30.0  # s, for one node-opcua run (it gives up itself after NODE_TIMEOUT - 5)

VARIANT_OF = {
    DataType.FLOAT64: ua.VariantType.Double,
    DataType.UINT32: ua.VariantType.UInt32,
    DataType.BOOL: ua.VariantType.Boolean,
}


@dataclass(frozen=True)
class Certificates:
    folder: Path
    server: Pair
    node_client: Pair
    python_client: Pair
    intruder: Pair  # a valid certificate the secure server does not trust


@pytest.fixture(scope="module")
def plant() -> Plant:
    return demo_plant()


@pytest.fixture(scope="module")
async def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    folder = tmp_path_factory.mktemp("opcua-pki")

    async def pair(name: str) -> Pair:
        return await make_pair(folder, name)

    return Certificates(
        folder,
        server=await pair("server"),
        node_client=await pair("node-client"),
        python_client=await pair("python-client"),
        intruder=await pair("intruder"),
    )


@pytest.fixture(scope="module")
async def plain_server(plant: Plant) -> AsyncIterator[ComputeManagerServer]:
    binding = plant.bindings["c1-compute"]
    server = ComputeManagerServer("c1-compute", opcua_map(binding), binding, "127.0.0.1", 0)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture(scope="module")
async def secure_server(
    plant: Plant, certificates: Certificates
) -> AsyncIterator[ComputeManagerServer]:
    binding = plant.bindings["c2-compute"]
    security = ServerSecurity(
        certificates.server.cert,
        certificates.server.key,
        modes=(SecurityMode.SIGN_AND_ENCRYPT,),
        allow_unsecured=False,
        trusted_certificates=(certificates.node_client.cert, certificates.python_client.cert),
    )
    server = ComputeManagerServer(
        "c2-compute", opcua_map(binding), binding, "127.0.0.1", 0, security
    )
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture(scope="module")
async def client(plain_server: ComputeManagerServer) -> AsyncIterator[Client]:
    async with Client(plain_server.endpoint, timeout=5) as connected:
        yield connected


async def _node_at(client: Client, namespace_uri: str, browse_path: list[str]) -> Node:
    index = await client.get_namespace_index(namespace_uri)
    return await client.nodes.objects.get_child([f"{index}:{name}" for name in browse_path])


async def _power_cap(client: Client, plain_server: ComputeManagerServer) -> Node:
    return await _node_at(client, plain_server.device_map.namespace, ["ComputeManager", "PowerCap"])


def _same(a: Value, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


# ---------------------------------------------------------------- Python client


async def test_port_zero_binds_a_port_that_discovery_reports(
    plain_server: ComputeManagerServer, client: Client
) -> None:
    port = int(plain_server.endpoint.rsplit(":", 1)[1])
    assert port > 0
    endpoints = await client.get_endpoints()
    assert {e.EndpointUrl for e in endpoints} == {plain_server.endpoint}
    assert {e.SecurityPolicyUri for e in endpoints} == {SecurityPolicyNone.URI}


async def test_every_point_reads_the_binding_value_by_browse_path(
    plant: Plant, plain_server: ComputeManagerServer, client: Client
) -> None:
    device_map, binding = plain_server.device_map, plain_server.binding
    plant.advance(3)
    await plain_server.refresh()
    index = await client.get_namespace_index(device_map.namespace)
    assert index == plain_server.namespace_index
    for point in device_map.points:
        assert point.browse_path is not None
        node = await _node_at(client, device_map.namespace, point.browse_path)
        data = await node.read_data_value()
        assert data.Value is not None
        expected = binding.read(point.id)
        assert _same(expected, data.Value.Value), (point.id, expected, data.Value.Value)
        assert data.Value.VariantType == VARIANT_OF[point.type], point.id
        assert await node.read_data_type_as_variant_type() == VARIANT_OF[point.type]
        assert (await node.read_browse_name()).NamespaceIndex == index
        writable = ua.AccessLevel.CurrentWrite in await node.get_access_level()
        assert writable == point.writable, point.id
    it_power = await _node_at(client, device_map.namespace, ["ComputeManager", "ItPower"])
    units = await (await it_power.get_child("0:EngineeringUnits")).read_value()
    assert units.DisplayName.Text == "kW"
    assert units.UnitId == 4937556  # UNECE "KWT"


class _Changes:
    """asyncua subscription handler: data-change values, in arrival order."""

    def __init__(self) -> None:
        self.values: asyncio.Queue[Any] = asyncio.Queue()

    def datachange_notification(self, node: Node, val: Any, data: Any) -> None:
        self.values.put_nowait(val)


async def test_subscription_sees_the_plant_change_after_refresh(
    plant: Plant, plain_server: ComputeManagerServer, client: Client
) -> None:
    binding = plain_server.binding
    node = await _node_at(
        client, plain_server.device_map.namespace, ["ComputeManager", "ChipTempMax"]
    )
    changes = _Changes()
    subscription = await client.create_subscription(20, changes)
    try:
        await subscription.subscribe_data_change(node)
        async with asyncio.timeout(5):
            initial = await changes.values.get()
        assert initial == binding.read("chip_temp_max")
        plant.advance(10)
        assert await plain_server.refresh() >= 1
        async with asyncio.timeout(5):
            changed = await changes.values.get()
        assert changed != initial
        assert changed == binding.read("chip_temp_max")
    finally:
        await subscription.delete()


async def test_power_cap_write_lands_in_the_plant_and_counts_every_renewal(
    plant: Plant, plain_server: ComputeManagerServer, client: Client
) -> None:
    commands = plant.run.model.commands
    power_cap = await _power_cap(client, plain_server)
    before = plain_server.write_counts["power_cap"]

    await power_cap.write_value(ua.DataValue(ua.Variant(12.5, ua.VariantType.Double)))
    assert commands.compute_cap[0] == 12_500.0  # W
    assert plain_server.write_counts["power_cap"] == before + 1
    assert await power_cap.read_value() == 12.5

    plant.advance(2)
    await power_cap.write_value(ua.DataValue(ua.Variant(12.5, ua.VariantType.Double)))
    # the same value again still reaches the plant: it renews the lease
    assert plain_server.write_counts["power_cap"] == before + 2
    assert commands.compute_cap_renewed_at[0] == plant.run.model.time


@pytest.mark.parametrize("kw", [25.5, -1.0, math.nan, math.inf])
async def test_power_cap_outside_limits_is_refused_and_not_applied(
    plant: Plant, plain_server: ComputeManagerServer, client: Client, kw: float
) -> None:
    commands = plant.run.model.commands
    power_cap = await _power_cap(client, plain_server)
    await power_cap.write_value(ua.DataValue(ua.Variant(10.0, ua.VariantType.Double)))
    count = plain_server.write_counts["power_cap"]

    with pytest.raises(ua.uaerrors.BadOutOfRange):
        await power_cap.write_value(ua.DataValue(ua.Variant(kw, ua.VariantType.Double)))
    assert commands.compute_cap[0] == 10_000.0
    assert plain_server.write_counts["power_cap"] == count
    assert await power_cap.read_value() == 10.0


async def test_power_cap_of_the_wrong_type_is_refused(
    plant: Plant, plain_server: ComputeManagerServer, client: Client
) -> None:
    power_cap = await _power_cap(client, plain_server)
    count = plain_server.write_counts["power_cap"]
    cap = plant.run.model.commands.compute_cap[0]
    for variant in (
        ua.Variant(10.0, ua.VariantType.Float),
        ua.Variant(10, ua.VariantType.Int32),
        ua.Variant("10", ua.VariantType.String),
    ):
        with pytest.raises(ua.uaerrors.BadTypeMismatch):
            await power_cap.write_value(ua.DataValue(variant))
    assert plant.run.model.commands.compute_cap[0] == cap
    assert plain_server.write_counts["power_cap"] == count


async def test_read_only_points_refuse_writes(
    plant: Plant, plain_server: ComputeManagerServer, client: Client
) -> None:
    namespace = plain_server.device_map.namespace
    it_power = await _node_at(client, namespace, ["ComputeManager", "ItPower"])
    throttling = await _node_at(client, namespace, ["ComputeManager", "Throttling"])
    await plain_server.refresh()
    before = await it_power.read_value()
    with pytest.raises(ua.uaerrors.BadNotWritable):
        await it_power.write_value(ua.DataValue(ua.Variant(1.0, ua.VariantType.Double)))
    with pytest.raises(ua.uaerrors.BadNotWritable):
        await throttling.write_value(ua.DataValue(ua.Variant(True, ua.VariantType.Boolean)))
    assert await it_power.read_value() == before


async def test_stop_is_idempotent_and_refresh_after_stop_does_nothing(plant: Plant) -> None:
    binding = plant.bindings["c3-compute"]
    server = ComputeManagerServer("c3-compute", opcua_map(binding), binding)
    await server.stop()
    await server.stop()
    assert await server.refresh() == 0
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.endpoint


async def test_node_id_points_and_a_generic_map() -> None:
    """Points at their own node ids (ns= index, nsu= URI), a deeper browse path, a rw bool."""
    device_map = OpcUaMap.model_validate(
        {
            "protocol": "opcua",
            "device_type": "test-device",
            "namespace": "urn:digital-boiler:test-device",
            "points": [
                {"id": "load", "node_id": "ns=2;i=5001", "type": "uint32", "unit": "count"},
                {
                    "id": "setpoint",
                    "node_id": "nsu=urn:digital-boiler:other;s=Loop.Setpoint",
                    "type": "float32",
                    "unit": "degC",
                    "access": "rw",
                    "limits": {"min": 20, "max": 80},
                },
                {
                    "id": "enable",
                    "browse_path": ["Plant", "Caisson", "Enable"],
                    "type": "bool",
                    "unit": "bool",
                    "access": "rw",
                },
            ],
        }
    )
    state: dict[str, Value] = {"load": 7, "setpoint": 60.0, "enable": False}

    def reader(point_id: str) -> Callable[[], Value]:
        return lambda: state[point_id]

    def writer(point_id: str) -> Callable[[Value], None]:
        return lambda value: state.__setitem__(point_id, value)

    readers = {point_id: reader(point_id) for point_id in state}
    writers = {point_id: writer(point_id) for point_id in ("setpoint", "enable")}
    binding = DeviceBinding("test-device", device_map, readers, writers)
    server = ComputeManagerServer("test-device", device_map, binding)
    async with server, Client(server.endpoint, timeout=5) as client:
        other = await client.get_namespace_index("urn:digital-boiler:other")
        load = client.get_node("ns=2;i=5001")
        setpoint = client.get_node(f"ns={other};s=Loop.Setpoint")
        enable = await _node_at(client, device_map.namespace, ["Plant", "Caisson", "Enable"])
        assert server.namespace_index == 2
        assert await load.read_value() == 7
        assert await load.read_data_type_as_variant_type() == ua.VariantType.UInt32
        assert await setpoint.read_value() == 60.0

        await setpoint.write_value(ua.DataValue(ua.Variant(65.5, ua.VariantType.Float)))
        await enable.write_value(ua.DataValue(ua.Variant(True, ua.VariantType.Boolean)))
        assert state["setpoint"] == 65.5
        assert state["enable"] is True
        assert server.write_counts == {"setpoint": 1, "enable": 1}
        with pytest.raises(ua.uaerrors.BadOutOfRange):
            await setpoint.write_value(ua.DataValue(ua.Variant(90.0, ua.VariantType.Float)))
        with pytest.raises(ua.uaerrors.BadTypeMismatch):
            await enable.write_value(ua.DataValue(ua.Variant(0, ua.VariantType.Int32)))
        with pytest.raises(ua.uaerrors.BadNotWritable):
            await load.write_value(ua.DataValue(ua.Variant(1, ua.VariantType.UInt32)))

        state["load"] = 9
        assert await server.refresh() == 1  # only the value that changed
        assert await load.read_value() == 9


# ---------------------------------------------------------------- security


async def _secure_client(
    server: ComputeManagerServer, pair: Pair, certificates: Certificates
) -> Client:
    client = Client(server.endpoint, timeout=5)
    client.application_uri = pair.uri
    await client.set_security(
        SecurityPolicyBasic256Sha256,
        str(pair.cert),
        str(pair.key),
        server_certificate=str(certificates.server.cert),
        mode=ua.MessageSecurityMode.SignAndEncrypt,
    )
    return client


async def test_trusted_python_client_reads_over_sign_and_encrypt(
    plant: Plant, secure_server: ComputeManagerServer, certificates: Certificates
) -> None:
    await secure_server.refresh()
    client = await _secure_client(secure_server, certificates.python_client, certificates)
    async with client:
        node = await _node_at(
            client, secure_server.device_map.namespace, ["ComputeManager", "ChipTempMax"]
        )
        assert await node.read_value() == secure_server.binding.read("chip_temp_max")


async def test_untrusted_client_is_rejected(
    secure_server: ComputeManagerServer, certificates: Certificates
) -> None:
    client = await _secure_client(secure_server, certificates.intruder, certificates)
    with pytest.raises(ua.uaerrors.BadCertificateUntrusted, match="not trusted"):
        await client.connect()


async def test_plain_client_finds_no_endpoint_on_a_secure_only_server(
    secure_server: ComputeManagerServer,
) -> None:
    endpoints = await Client(secure_server.endpoint, timeout=5).connect_and_get_server_endpoints()
    assert {e.SecurityMode for e in endpoints} == {ua.MessageSecurityMode.SignAndEncrypt}
    assert {e.EndpointUrl for e in endpoints} == {secure_server.endpoint}


# ---------------------------------------------------------------- node-opcua peer


def _node_command() -> list[str]:
    node = shutil.which("node")
    if node is None:
        pytest.fail(
            "Node.js (`node`) is not on PATH: the node-opcua peer test needs it. "
            "Run `bash scripts/test.sh`, which installs the test peers."
        )
    if not (PEERS / "node_modules" / "node-opcua-client").is_dir():
        pytest.fail(
            f"node-opcua is not installed in {PEERS / 'node_modules'}: "
            "run `bash scripts/test.sh`, which installs the test peers (npm ci in tests/peers)."
        )
    return [node, str(NODE_CLIENT)]


async def _node_opcua_session(
    plant: Plant,
    server: ComputeManagerServer,
    certificates: Certificates,
    mode: str,
    changes: int,
) -> tuple[dict[str, Any], list[Value]]:
    """Run the node-opcua client on ChipTempMax while the plant advances.

    Returns its JSON result and every value the server published meanwhile.
    """
    command = _node_command()
    pair = certificates.node_client
    pki = certificates.folder / f"node-pki-{mode}"
    published: list[Value] = []

    async def publish() -> None:
        await server.refresh()
        published.append(server.binding.read("chip_temp_max"))

    await publish()
    process = await asyncio.create_subprocess_exec(
        *command,
        "--endpoint",
        server.endpoint,
        "--namespace",
        server.device_map.namespace,
        "--browse-path",
        "ComputeManager/ChipTempMax",
        "--mode",
        mode,
        "--cert",
        str(pair.cert),
        "--key",
        str(pair.key),
        "--application-uri",
        pair.uri,
        "--pki",
        str(pki),
        "--changes",
        str(changes),
        "--timeout",
        str(NODE_TIMEOUT - 5),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    output = asyncio.ensure_future(process.communicate())
    try:
        async with asyncio.timeout(NODE_TIMEOUT):
            while not output.done():
                plant.advance(2)
                await publish()
                await asyncio.wait([output], timeout=0.1)
    except TimeoutError:
        process.kill()
        stdout, stderr = await output
        pytest.fail(f"node-opcua client hung for {NODE_TIMEOUT} s; stderr:\n{stderr.decode()}")
    stdout, stderr = output.result()
    assert process.returncode == 0, f"node-opcua client failed:\n{stderr.decode()}"
    return json.loads(stdout.decode().strip().splitlines()[-1]), published


def _check_node_result(
    result: dict[str, Any], server: ComputeManagerServer, published: list[Value], changes: int
) -> None:
    assert result["namespace_index"] == server.namespace_index
    assert result["node_id"] == f"ns={server.namespace_index};s=ComputeManager.ChipTempMax"
    assert result["read"]["status"] == "Good"
    assert result["read"]["data_type"] == "Double"
    assert result["read"]["value"] in published
    notifications = result["notifications"]
    assert len(notifications) == changes
    values = [n["value"] for n in notifications]
    assert all(n["status"] == "Good" for n in notifications)
    assert all(value in published for value in values)
    assert len(set(values)) == changes  # each one a change


async def test_node_opcua_reads_and_subscribes_without_security(
    plant: Plant, plain_server: ComputeManagerServer, certificates: Certificates
) -> None:
    result, published = await _node_opcua_session(
        plant, plain_server, certificates, "none", changes=3
    )
    _check_node_result(result, plain_server, published, changes=3)


async def test_node_opcua_reads_and_subscribes_over_sign_and_encrypt(
    plant: Plant, secure_server: ComputeManagerServer, certificates: Certificates
) -> None:
    result, published = await _node_opcua_session(
        plant, secure_server, certificates, "SignAndEncrypt", changes=3
    )
    _check_node_result(result, secure_server, published, changes=3)

"""The controller's OPC-UA driver against the simulated compute manager, over real sockets.

Servers are shared per module where the tests allow it (asyncua's Server.init() takes about 2 s):
a plain one for c1's compute manager and a Basic256Sha256 one (Sign and SignAndEncrypt) for c2's,
trusting one client certificate. The restart test runs its own pair for c3 (stop, then a new
server on the same port). Short intervals and back-offs keep the module at a few seconds beyond
the server start-ups; waits are bounded loops on observable state, never fixed sleeps.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from asyncua import ua

from controller.config.maps import Limits, OpcUaMap, OpcUaPoint, PollClass
from controller.config.site import OpcUaDevice, OpcUaSecurity, SecurityMode
from controller.fieldbus.health import Backoff, DeviceHealth, Health
from controller.fieldbus.image import PointRef, ProcessImage, Quality, Reason, Sample
from controller.fieldbus.opcua_driver import OpcUaDriver, OpcUaSecurityError, OpcUaWriteError
from controller.fieldbus.opcua_values import to_sample
from simulators.devices.bindings import DeviceBinding, Value
from simulators.devices.opcua_server import ComputeManagerServer, ServerSecurity
from tests.opcua_support import Pair, Plant, demo_plant, make_pair, opcua_map
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
FAST = 0.1  # s, fast poll class interval in these tests
SLOW = 0.3  # s
WAIT = 10.0  # s, upper bound of every wait (they normally end within a fraction of a second)


@dataclass(frozen=True)
class Certificates:
    folder: Path  # the "site folder" the drivers' relative paths start from
    server: Pair
    client: Pair
    intruder: Pair  # a valid certificate the secure server does not trust


class RecordingImage(ProcessImage):
    """A process image that also keeps every publication, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.history: list[tuple[PointRef, Sample]] = []

    def publish(self, ref: PointRef, sample: Sample) -> None:
        self.history.append((ref, sample))
        super().publish(ref, sample)

    def publish_many(self, samples: Any) -> None:
        self.history.extend(samples.items())
        super().publish_many(samples)

    def qualities(self, ref: PointRef) -> list[Quality]:
        """The qualities `ref` went through, consecutive repeats folded."""
        seen: list[Quality] = []
        for published, sample in self.history:
            if published == ref and (not seen or seen[-1] is not sample.quality):
                seen.append(sample.quality)
        return seen


@dataclass
class RecordingHealth(DeviceHealth):
    """DeviceHealth that keeps the state after every success and failure."""

    states: list[Health] = field(default_factory=list)

    def success(self) -> None:
        super().success()
        self.states.append(self.state)

    def failure(self, kind: str) -> None:
        super().failure(kind)
        self.states.append(self.state)


@pytest.fixture(scope="module")
def plant() -> Plant:
    return demo_plant()


@pytest.fixture(scope="module")
async def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    folder = tmp_path_factory.mktemp("opcua-driver-pki")

    async def pair(name: str) -> Pair:
        return await make_pair(folder, name)

    return Certificates(
        folder,
        server=await pair("server"),
        client=await pair("controller"),
        intruder=await pair("intruder"),
    )


@pytest.fixture(scope="module")
async def plain_server(plant: Plant) -> AsyncIterator[ComputeManagerServer]:
    binding = plant.bindings["c1-compute"]
    server = ComputeManagerServer("c1-compute", opcua_map(binding), binding)
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
        modes=(SecurityMode.SIGN, SecurityMode.SIGN_AND_ENCRYPT),
        trusted_certificates=(certificates.client.cert,),
    )
    server = ComputeManagerServer("c2-compute", opcua_map(binding), binding, security=security)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def _device(
    server: ComputeManagerServer, security: OpcUaSecurity | None = None, timeout: float = 2.0
) -> OpcUaDevice:
    return OpcUaDevice.model_validate(
        {
            "id": server.device_id,
            "protocol": "opcua",
            "map": "compute_manager",
            "endpoint": server.endpoint,
            "timeout": f"{timeout:g} s",
            "security": security,
        }
    )


def _security(
    certificates: Certificates,
    client: Pair,
    server_certificate: Path | None = None,
    mode: SecurityMode = SecurityMode.SIGN_AND_ENCRYPT,
) -> OpcUaSecurity:
    """Security with paths relative to the certificates folder, as a site file writes them."""

    def relative(path: Path) -> str:
        return str(path.relative_to(certificates.folder))

    return OpcUaSecurity(
        mode=mode,
        certificate=relative(client.cert),
        private_key=relative(client.key),
        server_certificate=relative(server_certificate or certificates.server.cert),
    )


def _driver(
    device: OpcUaDevice,
    device_map: OpcUaMap,
    image: ProcessImage | None = None,
    base_dir: Path = ROOT,
    health: DeviceHealth | None = None,
) -> OpcUaDriver:
    return OpcUaDriver(
        device,
        device_map,
        image if image is not None else ProcessImage(),
        base_dir=base_dir,
        fast_interval=FAST,
        slow_interval=SLOW,
        backoff=Backoff(base=0.05, cap=0.5),
        health=health if health is not None else DeviceHealth(fail_after=3),
    )


@pytest.fixture
async def running() -> AsyncIterator[list[OpcUaDriver]]:
    """Drivers a test starts are stopped when it ends, even when it fails."""
    drivers: list[OpcUaDriver] = []
    try:
        yield drivers
    finally:
        for driver in drivers:
            await driver.stop()


async def _started(running: list[OpcUaDriver], driver: OpcUaDriver) -> OpcUaDriver:
    running.append(driver)
    await driver.start()
    return driver


async def _eventually(
    condition: Callable[[], bool], what: str, state: Callable[[], object] = lambda: None
) -> None:
    try:
        async with asyncio.timeout(WAIT):
            while not condition():
                await asyncio.sleep(0.01)
    except TimeoutError:
        pytest.fail(f"not within {WAIT} s: {what}; state: {state()}")


def _same(a: Value, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def _matches_plant(driver: OpcUaDriver, binding: DeviceBinding) -> bool:
    return all(
        sample.quality is Quality.GOOD and _same(binding.read(point_id), sample.value)
        for point_id, sample in driver.samples.items()
    )


def _qualities(driver: OpcUaDriver) -> dict[str, str]:
    return {
        point_id: f"{sample.quality}/{sample.reason}" for point_id, sample in driver.samples.items()
    }


# ---------------------------------------------------------------- subscriptions


async def test_every_point_arrives_good_and_equal_to_the_plant(
    plant: Plant, plain_server: ComputeManagerServer, running: list[OpcUaDriver]
) -> None:
    binding = plain_server.binding
    await plain_server.refresh()  # other tests advance the plant
    image = ProcessImage()
    driver = _driver(_device(plain_server), plain_server.device_map, image)
    await driver.start()
    running.append(driver)
    # before the first value: every point is in the image, BAD NOT_CONNECTED
    first = image.snapshot()
    assert set(first) == {PointRef("c1-compute", p.id) for p in plain_server.device_map.points}
    assert {(s.quality, s.reason) for s in first.values()} <= {
        (Quality.BAD, Reason.NOT_CONNECTED),
        (Quality.GOOD, None),
    }

    await _eventually(lambda: _matches_plant(driver, binding), "all GOOD", lambda: driver.samples)
    snapshot = image.snapshot()
    for point in plain_server.device_map.points:
        sample = snapshot[PointRef("c1-compute", point.id)]
        assert sample.quality is Quality.GOOD
        assert _same(binding.read(point.id), sample.value), point.id
        assert sample.timestamp.tzinfo is not None
        assert sample.timestamp.utcoffset() == timedelta(0)
        assert abs(datetime.now(UTC) - sample.timestamp) < timedelta(minutes=5)
    assert driver.polled_classes == frozenset()
    assert driver.counters.updates >= len(plain_server.device_map.points)
    assert driver.counters.reads == 0
    assert driver.health.state is Health.OK
    assert driver.last_error is None


async def test_a_plant_change_arrives_as_an_update(
    plant: Plant, plain_server: ComputeManagerServer, running: list[OpcUaDriver]
) -> None:
    binding = plain_server.binding
    await plain_server.refresh()  # other tests advance the plant
    driver = await _started(running, _driver(_device(plain_server), plain_server.device_map))
    await _eventually(lambda: _matches_plant(driver, binding), "all GOOD", lambda: driver.samples)
    before = driver.samples["chip_temp_max"]
    updates = driver.counters.updates

    plant.advance(10)
    assert await plain_server.refresh() >= 1
    expected = binding.read("chip_temp_max")
    assert expected != before.value
    await _eventually(
        lambda: driver.samples["chip_temp_max"].value == expected,
        "the new chip temperature",
        lambda: driver.samples["chip_temp_max"],
    )
    after = driver.samples["chip_temp_max"]
    assert after.quality is Quality.GOOD
    assert after.timestamp > before.timestamp
    assert driver.counters.updates > updates
    await _eventually(lambda: _matches_plant(driver, binding), "all points follow the plant")


async def test_polling_takes_over_when_the_server_refuses_subscriptions(
    plant: Plant, plain_server: ComputeManagerServer, running: list[OpcUaDriver]
) -> None:
    binding = plain_server.binding
    await plain_server.refresh()  # other tests advance the plant
    # a server at its subscription limit refuses CreateSubscription (BadTooManySubscriptions)
    iserver = plain_server._state().server.iserver
    limit = iserver.max_subscriptions
    iserver.max_subscriptions = 0
    try:
        driver = await _started(running, _driver(_device(plain_server), plain_server.device_map))
        await _eventually(lambda: driver.connected, "connected", lambda: driver.last_error)
    finally:
        iserver.max_subscriptions = limit
    assert driver.polled_classes == {PollClass.FAST, PollClass.SLOW}
    assert driver.health.errors["subscription_refused"] == 2
    await _eventually(lambda: _matches_plant(driver, binding), "all GOOD by polling")

    plant.advance(10)
    await plain_server.refresh()
    expected = binding.read("it_power")
    await _eventually(lambda: driver.samples["it_power"].value == expected, "a polled change")
    await _eventually(lambda: _matches_plant(driver, binding), "all points follow the plant")
    assert driver.counters.reads > len(plain_server.device_map.points)
    assert driver.counters.updates == 0


async def test_node_ids_resolve_and_points_the_server_lacks_are_bad(
    plant: Plant, plain_server: ComputeManagerServer, running: list[OpcUaDriver]
) -> None:
    """The same server through a map of node ids (by namespace URI and by index), with two
    points it does not have: those are BAD ILLEGAL_ADDRESS, the others GOOD."""
    await plain_server.refresh()
    index = plain_server.namespace_index
    device_map = OpcUaMap.model_validate(
        {
            "protocol": "opcua",
            "device_type": "compute-manager-by-id",
            "namespace": plain_server.device_map.namespace,
            "points": [
                {
                    "id": "it_power",
                    "node_id": f"nsu={plain_server.device_map.namespace};s=ComputeManager.ItPower",
                    "type": "float64",
                    "unit": "kW",
                },
                {
                    "id": "jobs_running",
                    "node_id": f"ns={index};s=ComputeManager.JobsRunning",
                    "type": "uint32",
                    "unit": "count",
                    "poll": "slow",
                },
                {"id": "missing", "browse_path": ["ComputeManager", "Missing"], "type": "bool"},
                {"id": "elsewhere", "node_id": "nsu=urn:nowhere;i=1", "type": "int32"},
            ],
        }
    )
    driver = await _started(running, _driver(_device(plain_server), device_map))
    await _eventually(
        lambda: all(s.quality is Quality.GOOD for p, s in driver.samples.items() if "_" in p),
        "the two known points GOOD",
        lambda: _qualities(driver),
    )
    binding = plain_server.binding
    assert driver.samples["it_power"].value == binding.read("it_power")
    assert driver.samples["jobs_running"].value == binding.read("jobs_running")
    for point_id in ("missing", "elsewhere"):
        assert driver.samples[point_id].quality is Quality.BAD
        assert driver.samples[point_id].reason is Reason.ILLEGAL_ADDRESS
    assert driver.health.errors["unresolved_node"] == 2
    assert driver.health.state is Health.OK


# ---------------------------------------------------------------- writes


async def test_power_cap_write_within_limits_lands_in_the_plant(
    plant: Plant, plain_server: ComputeManagerServer, running: list[OpcUaDriver]
) -> None:
    driver = await _started(running, _driver(_device(plain_server), plain_server.device_map))
    await _eventually(lambda: driver.connected, "connected", lambda: driver.last_error)
    count = plain_server.write_counts["power_cap"]

    await driver.write("power_cap", 12.5)
    assert plant.run.model.commands.compute_cap[0] == 12_500.0  # W
    assert plain_server.write_counts["power_cap"] == count + 1
    await driver.write("power_cap", 11)  # an int is a number for a float64 point
    assert plant.run.model.commands.compute_cap[0] == 11_000.0
    await _eventually(lambda: driver.samples["power_cap"].value == 11.0, "the new cap read back")
    assert driver.counters.writes == 2


@pytest.mark.parametrize(
    ("point_id", "value", "message"),
    [
        (
            "power_cap",
            25.5,
            "c1-compute: power_cap = 25.5 kW is outside its limits 0..25 kW: not written",
        ),
        (
            "power_cap",
            -1,
            "c1-compute: power_cap = -1 kW is outside its limits 0..25 kW: not written",
        ),
        ("power_cap", math.nan, "c1-compute: power_cap = nan: needs a finite number"),
        ("power_cap", "10", "c1-compute: power_cap = '10': needs a number (float64)"),
        ("power_cap", True, "c1-compute: power_cap = True: needs a number (float64)"),
        ("it_power", 1.0, "c1-compute: it_power is read-only (access r): not written"),
        ("no_such_point", 1.0, "c1-compute: no point 'no_such_point' in map compute-manager"),
    ],
)
async def test_a_bad_write_is_refused_locally_and_never_sent(
    plant: Plant,
    plain_server: ComputeManagerServer,
    running: list[OpcUaDriver],
    point_id: str,
    value: Any,
    message: str,
) -> None:
    driver = await _started(running, _driver(_device(plain_server), plain_server.device_map))
    await _eventually(lambda: driver.connected, "connected", lambda: driver.last_error)
    await driver.write("power_cap", 10.0)
    counts = dict(plain_server.write_counts)

    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        await driver.write(point_id, value)
    assert plain_server.write_counts == counts
    assert plant.run.model.commands.compute_cap[0] == 10_000.0


async def test_a_write_the_server_refuses_raises_with_the_status(
    plant: Plant, plain_server: ComputeManagerServer, running: list[OpcUaDriver]
) -> None:
    # a map whose limits are wider than the device's: the device itself refuses
    device_map = plain_server.device_map
    wider = device_map.model_copy(
        update={
            "points": [
                p.model_copy(update={"limits": Limits(min=0, max=30)}) if p.writable else p
                for p in device_map.points
            ]
        }
    )
    driver = await _started(running, _driver(_device(plain_server), wider))
    await _eventually(lambda: driver.connected, "connected", lambda: driver.last_error)
    await driver.write("power_cap", 10.0)
    count = plain_server.write_counts["power_cap"]

    with pytest.raises(OpcUaWriteError) as refused:
        await driver.write("power_cap", 28.0)
    assert str(refused.value) == "c1-compute: power_cap = 28.0 refused by the server: BadOutOfRange"
    assert refused.value.status == "BadOutOfRange"
    assert plain_server.write_counts["power_cap"] == count
    assert plant.run.model.commands.compute_cap[0] == 10_000.0
    assert driver.health.errors["write_refused"] == 1
    assert driver.health.state is Health.OK  # the device answered: not a health problem


# ---------------------------------------------------------------- connection loss


async def test_server_restart_stale_then_bad_then_reconnect_and_resubscribe(
    plant: Plant, running: list[OpcUaDriver]
) -> None:
    binding = plant.bindings["c3-compute"]
    device_map = opcua_map(binding)
    first = ComputeManagerServer("c3-compute", device_map, binding)
    await first.start()
    endpoint = first.endpoint
    try:
        image, health = RecordingImage(), RecordingHealth(fail_after=3)
        driver = await _started(running, _driver(_device(first), device_map, image, health=health))
        await _eventually(
            lambda: _matches_plant(driver, binding), "all GOOD", lambda: driver.last_error
        )
        good = dict(driver.samples)
    finally:
        await first.stop()

    # the server is gone: STALE (last good value, original timestamp) while SUSPECT ...
    await _eventually(
        lambda: all(s.quality is Quality.BAD for s in driver.samples.values()),
        "every point BAD",
        lambda: _qualities(driver),
    )
    for point_id, sample in good.items():
        ref = PointRef("c3-compute", point_id)
        assert image.qualities(ref)[-3:] == [Quality.GOOD, Quality.STALE, Quality.BAD], point_id
        stale = next(s for r, s in image.history if r == ref and s.quality is Quality.STALE)
        assert (stale.value, stale.timestamp, stale.reason) == (
            sample.value,
            sample.timestamp,
            Reason.COMM_LOST,
        )
        # ... and BAD COMM_LOST once FAILED
        assert driver.samples[point_id].reason is Reason.COMM_LOST
    assert health.states[:4] == [Health.OK, Health.SUSPECT, Health.SUSPECT, Health.FAILED]
    assert health.state is Health.FAILED
    assert health.errors["connection_lost"] == 1
    refused = f"c3-compute: {endpoint} refused the connection"
    await _eventually(lambda: driver.last_error == refused, refused, lambda: driver.last_error)
    assert health.errors["connection_refused"] >= 2

    # a new server on the same port: the driver reconnects, resolves and subscribes again
    plant.advance(30)
    port = int(endpoint.rsplit(":", 1)[1])
    second = ComputeManagerServer("c3-compute", device_map, binding, port=port)
    await second.start()
    try:
        assert second.endpoint == endpoint
        await _eventually(
            lambda: _matches_plant(driver, binding), "all GOOD again", lambda: _qualities(driver)
        )
        assert health.state is Health.OK
        assert driver.last_error is None
        assert driver.counters.reconnects == 1
        assert driver.counters.connects == 2

        plant.advance(10)
        assert await second.refresh() >= 1
        expected = binding.read("chip_temp_max")
        await _eventually(
            lambda: driver.samples["chip_temp_max"].value == expected, "a change after restart"
        )
        await _eventually(lambda: _matches_plant(driver, binding), "all follow the new server")
        await driver.write("power_cap", 9.0)
        assert plant.run.model.commands.compute_cap[2] == 9_000.0
    finally:
        await driver.stop()
        await second.stop()
    assert all(
        (s.quality, s.reason) == (Quality.BAD, Reason.NOT_CONNECTED)
        for s in driver.samples.values()
    )


class FreezableProxy:
    """A TCP relay to a server that can go silent without closing anything, as a pulled cable
    or a hung server looks to the client: bytes are dropped while frozen."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.frozen = False
        self.port = 0
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.append(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
            self._writers.append(up_writer)
            await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))
        except OSError:
            writer.close()
        finally:
            self._handlers.discard(task)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                if not self.frozen:
                    sink.write(data)
                    await sink.drain()
        except OSError:
            pass
        finally:
            sink.close()


async def test_a_silent_server_is_detected_by_keepalive_and_recovered(
    plant: Plant, plain_server: ComputeManagerServer, running: list[OpcUaDriver]
) -> None:
    binding = plain_server.binding
    await plain_server.refresh()  # other tests advance the plant
    proxy = FreezableProxy(int(plain_server.endpoint.rsplit(":", 1)[1]))
    await proxy.start()
    try:
        device = _device(plain_server, timeout=0.5).model_copy(
            update={"endpoint": f"opc.tcp://127.0.0.1:{proxy.port}"}
        )
        driver = await _started(running, _driver(device, plain_server.device_map))
        await _eventually(
            lambda: _matches_plant(driver, binding), "all GOOD", lambda: driver.last_error
        )

        proxy.frozen = True  # nothing closes: only the keep-alive probe can tell
        await _eventually(
            lambda: all(s.quality is Quality.BAD for s in driver.samples.values()),
            "every point BAD",
            lambda: _qualities(driver),
        )
        assert driver.health.errors["connection_lost"] == 1
        assert driver.health.errors["timeout"] >= 2
        assert driver.last_error == f"c1-compute: {device.endpoint} did not answer within 0.5 s"

        proxy.frozen = False
        plant.advance(5)
        await plain_server.refresh()
        await _eventually(
            lambda: _matches_plant(driver, binding), "all GOOD again", lambda: _qualities(driver)
        )
        assert driver.health.state is Health.OK
        await driver.stop()
    finally:
        await proxy.close()


async def test_an_unreachable_device_goes_from_not_connected_to_comm_lost(
    plant: Plant, running: list[OpcUaDriver]
) -> None:
    port = free_port()  # nobody listens on it
    device = OpcUaDevice(
        id="c9-compute",
        protocol="opcua",
        map="compute_manager",
        endpoint=f"opc.tcp://127.0.0.1:{port}",
    )
    image = RecordingImage()
    driver = await _started(
        running, _driver(device, opcua_map(plant.bindings["c1-compute"]), image)
    )
    await _eventually(
        lambda: driver.health.state is Health.FAILED, "FAILED", lambda: driver.last_error
    )
    assert driver.last_error == f"c9-compute: opc.tcp://127.0.0.1:{port} refused the connection"
    reasons = {s.reason for s in driver.samples.values()}
    assert reasons == {Reason.COMM_LOST}
    assert {s.reason for _, s in image.history} == {Reason.NOT_CONNECTED, Reason.COMM_LOST}
    assert not any(
        s.quality is Quality.GOOD or s.quality is Quality.STALE for _, s in image.history
    )
    await driver.stop()
    await driver.stop()  # idempotent
    with pytest.raises(
        OpcUaWriteError, match=re.escape("c9-compute: power_cap = 1.0 not written: not connected")
    ):
        await driver.write("power_cap", 1.0)


# ---------------------------------------------------------------- security


@pytest.mark.parametrize("mode", [SecurityMode.SIGN_AND_ENCRYPT, SecurityMode.SIGN])
async def test_secure_session_with_a_trusted_certificate(
    plant: Plant,
    secure_server: ComputeManagerServer,
    certificates: Certificates,
    running: list[OpcUaDriver],
    mode: SecurityMode,
) -> None:
    binding = secure_server.binding
    await secure_server.refresh()
    security = _security(certificates, certificates.client, mode=mode)
    driver = await _started(
        running,
        _driver(
            _device(secure_server, security),
            secure_server.device_map,
            base_dir=certificates.folder,
        ),
    )
    await _eventually(
        lambda: _matches_plant(driver, binding), "all GOOD", lambda: driver.last_error
    )
    plant.advance(10)
    await secure_server.refresh()
    expected = binding.read("chip_temp_max")
    await _eventually(lambda: driver.samples["chip_temp_max"].value == expected, "an update")
    await driver.write("power_cap", 15.0)
    assert plant.run.model.commands.compute_cap[1] == 15_000.0
    assert driver.last_error is None


async def test_an_untrusted_client_certificate_is_refused_with_a_clear_error(
    plant: Plant,
    secure_server: ComputeManagerServer,
    certificates: Certificates,
    running: list[OpcUaDriver],
) -> None:
    security = _security(certificates, certificates.intruder)
    driver = await _started(
        running,
        _driver(
            _device(secure_server, security),
            secure_server.device_map,
            base_dir=certificates.folder,
        ),
    )
    await _eventually(
        lambda: driver.health.state is Health.FAILED, "FAILED", lambda: driver.last_error
    )
    assert driver.last_error == (
        f"c2-compute: the server does not trust our certificate {certificates.intruder.cert}: "
        "add it to the server's trust list"
    )
    assert driver.health.errors["certificate_untrusted"] >= 3
    assert not driver.connected
    assert all(s.quality is Quality.BAD for s in driver.samples.values())


async def test_a_server_certificate_other_than_the_configured_one_is_named(
    secure_server: ComputeManagerServer,
    certificates: Certificates,
    running: list[OpcUaDriver],
) -> None:
    security = _security(
        certificates, certificates.client, server_certificate=certificates.intruder.cert
    )
    driver = await _started(
        running,
        _driver(
            _device(secure_server, security),
            secure_server.device_map,
            base_dir=certificates.folder,
        ),
    )
    await _eventually(lambda: driver.last_error is not None, "an error")
    message = driver.last_error
    assert message is not None
    assert message.startswith("c2-compute: the server's certificate (SHA-1 ")
    assert f"is not the configured server_certificate {certificates.intruder.cert}" in message
    assert "\n" not in message
    assert driver.health.errors["server_certificate_mismatch"] >= 1


async def test_a_missing_certificate_file_is_named_by_start(
    secure_server: ComputeManagerServer, certificates: Certificates
) -> None:
    security = OpcUaSecurity(
        certificate="own/nowhere.der",
        private_key="own/controller.key.pem",
        server_certificate="own/server.der",
    )
    driver = _driver(
        _device(secure_server, security), secure_server.device_map, base_dir=certificates.folder
    )
    with pytest.raises(OpcUaSecurityError) as refused:
        await driver.start()
    missing = certificates.folder / "own" / "nowhere.der"
    assert str(refused.value) == f"c2-compute: client certificate {missing} does not exist"
    await driver.stop()  # never started: nothing to do


async def test_a_key_of_another_certificate_is_named_by_start(
    secure_server: ComputeManagerServer, certificates: Certificates
) -> None:
    security = OpcUaSecurity(
        certificate="own/controller.der",
        private_key="own/intruder.key.pem",
        server_certificate="own/server.der",
    )
    driver = _driver(
        _device(secure_server, security), secure_server.device_map, base_dir=certificates.folder
    )
    with pytest.raises(OpcUaSecurityError) as refused:
        await driver.start()
    folder = certificates.folder / "own"
    assert str(refused.value) == (
        f"c2-compute: private key {folder / 'intruder.key.pem'} does not belong to certificate "
        f"{folder / 'controller.der'}"
    )


async def test_a_plain_driver_on_a_secure_only_server_says_to_configure_security(
    secure_server: ComputeManagerServer, running: list[OpcUaDriver]
) -> None:
    driver = await _started(running, _driver(_device(secure_server), secure_server.device_map))
    await _eventually(lambda: driver.last_error is not None, "an error")
    assert driver.last_error == (
        f"c2-compute: the server at {secure_server.endpoint} offers no unsecured endpoint: "
        "configure security for this device in the site file"
    )


# ---------------------------------------------------------------- status → sample, no server

POINT = OpcUaPoint(id="temp", browse_path=["T"], type="float64", unit="degC")
COUNT = OpcUaPoint(id="jobs", browse_path=["J"], type="uint32", unit="count")
NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
SOURCE = datetime(2026, 1, 15, 11, 59, 58, tzinfo=UTC)


def _data(value: Any, kind: ua.VariantType, status: str = "Good", **stamps: Any) -> ua.DataValue:
    return ua.DataValue(
        Value=ua.Variant(value, kind),
        StatusCode=ua.StatusCode(getattr(ua.StatusCodes, status)),
        **stamps,
    )


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (_data(61.5, ua.VariantType.Double, SourceTimestamp=SOURCE), Sample.good(61.5, SOURCE)),
        (_data(61.5, ua.VariantType.Double, ServerTimestamp=SOURCE), Sample.good(61.5, SOURCE)),
        (_data(61.5, ua.VariantType.Double), Sample.good(61.5, NOW)),
        (
            _data(None, ua.VariantType.Null, "BadSensorFailure", SourceTimestamp=SOURCE),
            Sample.bad(Reason.SENSOR_FAULT, SOURCE),
        ),
        (_data(None, ua.VariantType.Null, "BadOutOfRange"), Sample.bad(Reason.OUT_OF_RANGE, NOW)),
        (
            _data(None, ua.VariantType.Null, "BadCommunicationError"),
            Sample.bad(Reason.COMM_LOST, NOW),
        ),
        (
            _data(None, ua.VariantType.Null, "BadNodeIdUnknown"),
            Sample.bad(Reason.ILLEGAL_ADDRESS, NOW),
        ),
        (
            _data(None, ua.VariantType.Null, "BadInternalError"),
            Sample.bad(Reason.DEVICE_EXCEPTION, NOW),
        ),
        (
            _data(61.5, ua.VariantType.Double, "UncertainLastUsableValue", SourceTimestamp=SOURCE),
            Sample(61.5, Quality.STALE, SOURCE, Reason.COMM_LOST),
        ),
        (
            _data(99.0, ua.VariantType.Double, "UncertainEngineeringUnitsExceeded"),
            Sample(99.0, Quality.STALE, NOW, Reason.OUT_OF_RANGE),
        ),
        (
            _data(61.5, ua.VariantType.Double, "UncertainSensorNotAccurate"),
            Sample(61.5, Quality.STALE, NOW, Reason.SENSOR_FAULT),
        ),
        (_data(math.nan, ua.VariantType.Double), Sample.bad(Reason.SENSOR_FAULT, NOW)),
        (_data(-math.inf, ua.VariantType.Double), Sample.bad(Reason.SENSOR_FAULT, NOW)),
        (_data("61.5", ua.VariantType.String), Sample.bad(Reason.DECODE_ERROR, NOW)),
        (_data(None, ua.VariantType.Null), Sample.bad(Reason.DECODE_ERROR, NOW)),
    ],
)
def test_status_and_value_to_sample(data: ua.DataValue, expected: Sample) -> None:
    assert to_sample(POINT, data, NOW) == expected


def test_integer_points_take_integers_in_range_only() -> None:
    assert to_sample(COUNT, _data(7, ua.VariantType.UInt32), NOW) == Sample.good(7, NOW)
    assert to_sample(COUNT, _data(-1, ua.VariantType.Int32), NOW).reason is Reason.DECODE_ERROR
    assert to_sample(COUNT, _data(7.0, ua.VariantType.Double), NOW).reason is Reason.DECODE_ERROR
    assert to_sample(COUNT, _data(True, ua.VariantType.Boolean), NOW).reason is Reason.DECODE_ERROR

"""Our OPC-UA driver against a compute manager not written in Python: a node-opcua server
(tests/peers/opcua_server.mjs), Basic256Sha256 SignAndEncrypt only, trusting one client
certificate. A trusted session reads and writes; an untrusted certificate and a device configured
without security are refused, and the driver says so in a sentence that says what to do (asyncua
alone reports "AssertionError: " for the first, raw BadSecurityModeRejected for the second)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from controller.config.loader import load_map
from controller.config.maps import OpcUaMap
from controller.config.site import OpcUaDevice
from controller.fieldbus.health import Backoff, DeviceHealth, Health
from controller.fieldbus.image import ProcessImage, Quality
from controller.fieldbus.opcua_driver import OpcUaDriver
from tests.node_opcua import compute_manager_variables, node_opcua_server
from tests.opcua_support import Pair, make_pair
from tests.plant_helpers import ROOT

WAIT = 20.0  # s, bound of each wait (not a timing assertion)
VALUES: dict[str, float | int | bool] = {
    "it_power": 17.5,
    "power_cap": 20.0,
    "available_power": 19.0,
    "jobs_queued": 12,
    "jobs_running": 44,
    "chip_temp_max": 71.5,
    "throttling": False,
}
MAP = load_map(ROOT / "plc_maps" / "compute_manager.yaml")


@dataclass(frozen=True)
class Peer:
    url: str
    folder: Path  # certificates, as a site folder holds them
    server: Pair
    client: Pair  # trusted by the server
    intruder: Pair  # a valid certificate it does not trust


@pytest.fixture(scope="module")
async def peer(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Peer]:
    folder = tmp_path_factory.mktemp("node-opcua")
    server = await make_pair(folder, "node-server")
    client = await make_pair(folder, "controller")
    intruder = await make_pair(folder, "intruder")
    variables = compute_manager_variables(VALUES)
    async with node_opcua_server(folder / "pki", server, variables, trust=[client.cert]) as url:
        yield Peer(url, folder, server, client, intruder)


def device(peer: Peer, client: Pair | None) -> OpcUaDevice:
    security = None
    if client is not None:
        security = {
            "mode": "SignAndEncrypt",
            "certificate": str(client.cert.relative_to(peer.folder)),
            "private_key": str(client.key.relative_to(peer.folder)),
            "server_certificate": str(peer.server.cert.relative_to(peer.folder)),
        }
    return OpcUaDevice.model_validate(
        {
            "id": "c1-compute",
            "protocol": "opcua",
            "map": "compute_manager",
            "endpoint": peer.url,
            "timeout": "3 s",
            "security": security,
        }
    )


Start = Callable[..., OpcUaDriver]


@pytest.fixture
async def started(peer: Peer) -> AsyncIterator[Start]:
    """Makes drivers of `client` (None: no security) on the peer (or `server`), stopped after
    the test."""
    drivers: list[OpcUaDriver] = []

    def start(client: Pair | None, server: Peer | None = None) -> OpcUaDriver:
        assert isinstance(MAP, OpcUaMap)
        driver = OpcUaDriver(
            device(server or peer, client),
            MAP,
            ProcessImage(),
            base_dir=peer.folder,
            fast_interval=0.2,
            slow_interval=0.5,
            backoff=Backoff(base=0.1, cap=0.5),
            health=DeviceHealth(fail_after=2),
        )
        drivers.append(driver)
        return driver

    try:
        yield start
    finally:
        for driver in drivers:
            await driver.stop()


async def eventually(condition: Callable[[], bool], what: str) -> None:
    try:
        async with asyncio.timeout(WAIT):
            while not condition():
                await asyncio.sleep(0.05)
    except TimeoutError:
        pytest.fail(f"not within {WAIT} s: {what}")


async def test_a_trusted_certificate_reads_every_point_and_writes_the_cap(
    peer: Peer, started: Start
) -> None:
    driver = started(peer.client)
    await driver.start()
    await eventually(
        lambda: all(s.quality is Quality.GOOD for s in driver.samples.values()), "every point"
    )
    assert {point: s.value for point, s in driver.samples.items()} == VALUES
    await driver.write("power_cap", 12.5)
    await eventually(lambda: driver.samples["power_cap"].value == 12.5, "the cap written back")
    assert driver.last_error is None


async def test_an_untrusted_certificate_is_refused_in_a_sentence_not_an_assertion(
    peer: Peer, started: Start
) -> None:
    driver = started(peer.intruder)
    await driver.start()
    await eventually(lambda: driver.health.state is Health.FAILED, "the device failed")
    assert driver.last_error == (
        f"c1-compute: the server at {peer.url} refused a secure channel with our certificate "
        f"{peer.intruder.cert}: add it to the server's trust list"
    )
    assert driver.health.errors["certificate_untrusted"] >= 2
    assert all(s.quality is Quality.BAD for s in driver.samples.values())


async def test_a_device_without_security_is_told_to_configure_it(
    peer: Peer, started: Start
) -> None:
    driver = started(None)
    await driver.start()
    await eventually(lambda: driver.last_error is not None, "an error")
    assert driver.last_error == (
        f"c1-compute: the server at {peer.url} refuses unsecured sessions "
        "(BadSecurityModeRejected): configure security for this device in the site file"
    )
    assert "no_endpoint" in driver.health.errors


async def test_a_server_refusing_unsecured_discovery_still_gets_a_secure_session(
    peer: Peer, started: Start, tmp_path: Path
) -> None:
    """The driver asks for the server's endpoints over an unsecured channel before its secure
    session (to name a wrong server certificate); a server that refuses that channel is not
    asked, and the secure channel itself checks the certificate."""
    variables = compute_manager_variables(VALUES)
    async with node_opcua_server(
        tmp_path / "pki", peer.server, variables, trust=[peer.client.cert], discovery=False
    ) as url:
        closed = Peer(url, peer.folder, peer.server, peer.client, peer.intruder)
        driver = started(peer.client, closed)
        await driver.start()
        await eventually(lambda: driver.connected, "a secure session")
        await eventually(lambda: driver.samples["it_power"].value == VALUES["it_power"], "values")
        await driver.stop()

"""`FieldIO.retry(device)`: a device whose back-off has grown reconnects at once when asked.

Real sockets against the simulated plant. Every connection backs off an hour after a failure
(base, cap and floor 3600 s), so a device that comes back is reconnected within these tests only
by `retry()`: the assertions are on states, never on durations.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest

from controller.config.loader import LoadedSite, load_site
from controller.fieldbus.field_io import FieldIO
from controller.fieldbus.health import Backoff, Health
from controller.fieldbus.image import ProcessImage, Quality
from controller.fieldbus.modbus_driver import ModbusDeviceDriver
from simulators.devices.faults import EndpointFaults
from simulators.devices.modbus_server import ModbusEndpoint
from simulators.devices.plant_server import SimulatedPlant
from tests.plant_helpers import SITES

START = datetime(2026, 1, 15, 8, tzinfo=UTC)
WAIT = 20.0  # s, upper bound of every wait (an OPC-UA server takes about 2 s to start)


def an_hour() -> Backoff:
    return Backoff(base=3600.0, cap=3600.0, floor=3600.0)


@pytest.fixture(scope="module")
def site() -> LoadedSite:
    return load_site(SITES / "demo.yaml")


@pytest.fixture
async def plant(site: LoadedSite, request: pytest.FixtureRequest) -> AsyncIterator[SimulatedPlant]:
    simulated = SimulatedPlant(
        site, start=START, speed=None, ephemeral_ports=True, opcua=request.param == "opcua"
    )
    await simulated.start()
    try:
        yield simulated
    finally:
        await simulated.stop()


def field_io(site: LoadedSite, plant: SimulatedPlant, image: ProcessImage) -> FieldIO:
    """The site's devices at the plant's addresses (OPC-UA devices the plant does not serve stay
    at the site file's: never started in the Modbus tests); every poll reads every point."""
    return FieldIO(
        site,
        image,
        addresses={d.device: (d.host, d.port) for d in plant.listing() if d.unit_id is not None},
        endpoints={d.device: d.endpoint for d in plant.listing() if d.unit_id is None},
        slow_every=1,
        backoff=an_hour,
    )


async def eventually(condition: Callable[[], bool], what: str) -> None:
    try:
        async with asyncio.timeout(WAIT):
            while not condition():
                await asyncio.sleep(0.01)
    except TimeoutError:
        pytest.fail(f"not within {WAIT} s: {what}")


def qualities(image: ProcessImage, device: str) -> set[Quality]:
    return {s.quality for ref, s in image.snapshot().items() if ref.device == device}


async def set_refused(endpoint: ModbusEndpoint, refused: bool) -> None:
    """Close (refuse) or reopen the endpoint's port, and wait until it is so."""
    endpoint.faults = EndpointFaults(unreachable="refuse" if refused else None)
    endpoint.apply_faults()
    assert endpoint.gateway is not None
    gateway = endpoint.gateway
    await eventually(lambda: gateway.listening is not refused, f"listening is {not refused}")


@pytest.mark.parametrize("plant", ["modbus"], indirect=True)
async def test_a_modbus_device_reconnects_on_retry_before_its_backoff_ends(
    site: LoadedSite, plant: SimulatedPlant
) -> None:
    image = ProcessImage()
    io = field_io(site, plant, image)
    driver: ModbusDeviceDriver = io.modbus.drivers["c1-skid"]
    connection = driver.connection
    try:
        await set_refused(plant.endpoint_of("c1-skid"), refused=True)
        await io.refresh()
        assert connection.counters.connect_failures == 1
        assert qualities(image, "c2-skid") == {Quality.GOOD}

        await set_refused(plant.endpoint_of("c1-skid"), refused=False)
        for _ in range(3):  # the device is back, but its connection waits an hour
            await io.refresh()
        assert (connection.counters.connects, connection.counters.connect_failures) == (0, 1)
        assert Quality.GOOD not in qualities(image, "c1-skid")
        assert driver.health.state is Health.FAILED

        io.retry("c1-skid")
        assert driver.health.state is Health.FAILED  # health stays honest until it answers
        await io.refresh()
        assert connection.counters.connects == 1
        assert qualities(image, "c1-skid") == {Quality.GOOD}
        assert driver.health.state is Health.OK
    finally:
        await io.stop()


@pytest.mark.parametrize("plant", ["opcua"], indirect=True)
async def test_an_opcua_device_reconnects_on_retry_before_its_backoff_ends(
    site: LoadedSite, plant: SimulatedPlant
) -> None:
    image = ProcessImage()
    io = field_io(site, plant, image)
    await plant.take_down("c1-compute")  # its port closed
    driver = io.opcua["c1-compute"]
    try:
        await io.start(poll=False)
        await eventually(lambda: driver.health.errors.get("connection_refused") == 1, "refused")
        await plant.bring_back("c1-compute")  # a new server on the same port
        await eventually(lambda: qualities(image, "c2-compute") == {Quality.GOOD}, "c2 GOOD")
        assert not driver.connected  # the back-off holds it for an hour

        io.retry("c1-compute")
        await eventually(lambda: qualities(image, "c1-compute") == {Quality.GOOD}, "c1 GOOD")
        assert driver.health.errors["connection_refused"] == 1  # no attempt but the retry
        assert driver.counters.connects == 1
        assert driver.health.state is Health.OK
    finally:
        await io.stop()


@pytest.mark.parametrize("plant", ["modbus"], indirect=True)
async def test_retry_of_an_unknown_device_names_the_known_ones(
    site: LoadedSite, plant: SimulatedPlant
) -> None:
    io = field_io(site, plant, ProcessImage())
    with pytest.raises(KeyError) as error:
        io.retry("c9-skid")
    assert str(error.value) == (
        "no device 'c9-skid'; the site's devices: c1-skid, c2-skid, c3-skid, plant-skid, "
        "heat-meter, c1-compute, c2-compute, c3-compute"
    )

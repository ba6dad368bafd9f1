"""The controller's Modbus drivers against the simulated plant on real sockets, faults included."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest

from controller.config.loader import LoadedSite, load_site
from controller.config.maps import Table
from controller.fieldbus.field_io import FieldIO
from controller.fieldbus.health import Backoff, Health
from controller.fieldbus.image import PointRef, ProcessImage, Quality, Reason, Sample
from controller.fieldbus.modbus_driver import DriverSettings, WriteError
from controller.fieldbus.modbus_io import ModbusIO
from simulators.devices.faults import EndpointFaults, UnitFaults
from simulators.devices.plant_server import SimulatedPlant
from tests.node_modbus import heat_meter_registers, node_modbus_server
from tests.plant_helpers import SITES

START = datetime(2026, 1, 15, 8, tzinfo=UTC)
TIMEOUT = 0.3  # s: the drivers' request timeout in these tests
MODBUS_DEVICES = ("c1-skid", "c2-skid", "c3-skid", "plant-skid", "heat-meter")


@pytest.fixture(scope="module")
def site() -> LoadedSite:
    return load_site(SITES / "demo.yaml")


@pytest.fixture(scope="module")
async def plant(site: LoadedSite) -> AsyncIterator[SimulatedPlant]:
    simulated = SimulatedPlant(site, start=START, speed=None, ephemeral_ports=True, opcua=False)
    await simulated.start()
    await simulated.advance(120)
    yield simulated
    await simulated.stop()


@pytest.fixture
async def fieldbus(
    site: LoadedSite, plant: SimulatedPlant
) -> AsyncIterator[tuple[ModbusIO, ProcessImage]]:
    """Drivers for the demo plant's Modbus devices, not started: tests call poll() themselves."""
    image = ProcessImage()
    addresses = {d: (plant.endpoint_of(d).host, plant.endpoint_of(d).port) for d in MODBUS_DEVICES}
    io = ModbusIO(
        site,
        image,
        addresses=addresses,
        backoff=lambda: Backoff(base=0.02, cap=0.1, floor=0.01),
        settings=DriverSettings(stale_after=3),
    )
    for connection in io.connections.values():
        connection.timeout = TIMEOUT
    yield io, image
    await io.stop()
    for device in MODBUS_DEVICES:  # leave the plant's devices healthy for the next test
        endpoint = plant.endpoint_of(device)
        endpoint.faults = EndpointFaults()
        endpoint.apply_faults()
        assert endpoint.gateway is not None
        async with asyncio.timeout(5):
            while not endpoint.gateway.listening:
                await asyncio.sleep(0.01)


def samples_of(image: ProcessImage, device: str) -> dict[str, Sample]:
    return {ref.point: s for ref, s in image.snapshot().items() if ref.device == device}


def assert_good_values_are_true(plant: SimulatedPlant, image: ProcessImage) -> None:
    """No GOOD sample holds a value the device does not have: the one rule that must never break."""
    for ref, sample in image.snapshot().items():
        if sample.quality is Quality.GOOD:
            truth = plant.binding(ref.device).read(ref.point)
            point = plant.site.device_map(ref.device).point(ref.point)
            resolution = getattr(point, "scale", 0.0) / 2 if point.type.is_numeric else 0.0
            if isinstance(truth, float):
                assert sample.value == pytest.approx(truth, abs=resolution + 1e-9, rel=1e-6), ref
            else:
                assert sample.value == truth, ref


async def test_the_drivers_feed_the_process_image_with_every_point(
    fieldbus: tuple[ModbusIO, ProcessImage], plant: SimulatedPlant
) -> None:
    io, image = fieldbus
    for driver in io.drivers.values():
        await driver.poll()
    snapshot = image.snapshot()
    for device in MODBUS_DEVICES:
        device_map = plant.site.device_map(device)
        for point in device_map.points:
            assert snapshot[PointRef(device, point.id)].quality is Quality.GOOD, (device, point.id)
    assert_good_values_are_true(plant, image)
    # coalesced: one request per table of each device (the maps are compact)
    c1 = io.drivers["c1-skid"].connection
    assert c1.counters.requests == 4  # input, discrete, holding, coils


async def test_a_snapshot_does_not_change_under_later_polls(
    fieldbus: tuple[ModbusIO, ProcessImage], plant: SimulatedPlant
) -> None:
    io, image = fieldbus
    driver = io.drivers["c1-skid"]
    await driver.poll()
    before = image.snapshot()
    power = before[PointRef("c1-skid", "it_power")]
    await plant.advance(600)
    await driver.poll()
    assert before[PointRef("c1-skid", "it_power")] is power
    assert image.snapshot()[PointRef("c1-skid", "it_power")].timestamp > power.timestamp


FAULTS: dict[str, Callable[[EndpointFaults], None]] = {
    "refused": lambda f: setattr(f, "unreachable", "refuse"),
    "dropped": lambda f: setattr(f, "unreachable", "drop"),
    "slow": lambda f: f.units.__setitem__(1, UnitFaults(delay=3 * TIMEOUT)),
    "silent": lambda f: f.units.__setitem__(1, UnitFaults(silent=True)),
    "late_replies": lambda f: f.units.__setitem__(1, UnitFaults(late_replies=True)),
    "wrong_transaction_id": lambda f: f.units.__setitem__(1, UnitFaults(wrong_transaction_id=True)),
    "garbage": lambda f: setattr(f, "garbage_frames", True),
}


@pytest.mark.parametrize("kind", list(FAULTS))
async def test_a_device_that_stops_answering_goes_stale_then_bad_and_recovers(
    fieldbus: tuple[ModbusIO, ProcessImage], plant: SimulatedPlant, kind: str
) -> None:
    io, image = fieldbus
    driver = io.drivers["c1-skid"]
    await driver.poll()
    assert all(s.quality is Quality.GOOD for s in samples_of(image, "c1-skid").values())
    good = samples_of(image, "c1-skid")
    endpoint = plant.endpoint_of("c1-skid")
    FAULTS[kind](endpoint.faults)
    endpoint.apply_faults()
    for missed in range(1, 4):
        await driver.poll()
        assert_good_values_are_true(plant, image)
        samples = samples_of(image, "c1-skid")
        if missed < 3:  # the last good sample stands, with its acquisition time
            assert samples["outlet_temp"] == good["outlet_temp"], missed
    samples = samples_of(image, "c1-skid")
    assert {s.quality for s in samples.values()} <= {Quality.STALE, Quality.BAD}
    assert samples["outlet_temp"].value in (None, good["outlet_temp"].value)
    assert driver.health.state is Health.FAILED
    assert sum(driver.health.errors.values()) >= 3
    # other devices are served meanwhile
    await io.drivers["c2-skid"].poll()
    assert samples_of(image, "c2-skid")["outlet_temp"].quality is Quality.GOOD
    # the fault clears: the next polls bring GOOD values back
    endpoint.faults = EndpointFaults()
    endpoint.apply_faults()
    async with asyncio.timeout(10):
        while samples_of(image, "c1-skid")["outlet_temp"].quality is not Quality.GOOD:
            await driver.poll()
            await asyncio.sleep(0.02)
    assert driver.health.state is Health.OK
    assert_good_values_are_true(plant, image)


async def test_mismatched_replies_are_counted_and_never_taken(
    fieldbus: tuple[ModbusIO, ProcessImage], plant: SimulatedPlant
) -> None:
    io, image = fieldbus
    driver = io.drivers["c1-skid"]
    endpoint = plant.endpoint_of("c1-skid")
    endpoint.faults.units[1] = UnitFaults(wrong_transaction_id=True)
    endpoint.apply_faults()
    await driver.poll()
    assert driver.connection.counters.mismatched_replies >= 1
    assert_good_values_are_true(plant, image)


async def test_an_exception_reply_is_bad_device_exception(
    fieldbus: tuple[ModbusIO, ProcessImage], plant: SimulatedPlant
) -> None:
    io, image = fieldbus
    driver = io.drivers["c3-skid"]
    endpoint = plant.endpoint_of("c3-skid")
    endpoint.faults.units[1] = UnitFaults(exception_code=4)
    endpoint.apply_faults()
    await driver.poll()
    samples = samples_of(image, "c3-skid")
    assert all(s.reason is Reason.DEVICE_EXCEPTION for s in samples.values())
    assert driver.health.state is Health.OK  # it answers: alive, but says it cannot
    assert driver.health.errors["exception_reply"] >= 1


async def test_a_sensor_at_its_fault_code_is_bad_sensor_fault(
    fieldbus: tuple[ModbusIO, ProcessImage], plant: SimulatedPlant
) -> None:
    io, image = fieldbus
    from simulators.plant.sensors import FaultKind, Sensor

    plant.model.fault_sensor(Sensor.OUTLET, 1, FaultKind.SENTINEL)
    try:
        await plant.advance(1)
        await io.drivers["c2-skid"].poll()
        samples = samples_of(image, "c2-skid")
        assert samples["outlet_temp"] == Sample.bad(
            Reason.SENSOR_FAULT, samples["outlet_temp"].timestamp
        )
        assert samples["inlet_temp"].quality is Quality.GOOD
    finally:
        plant.model.fault_sensor(Sensor.OUTLET, 1, FaultKind.NONE)


async def test_one_connection_serves_a_gateway_that_takes_only_one(
    fieldbus: tuple[ModbusIO, ProcessImage], plant: SimulatedPlant
) -> None:
    io, image = fieldbus
    endpoint = plant.endpoint_of("heat-meter")
    endpoint.faults.max_connections = 1
    endpoint.apply_faults()
    driver = io.drivers["heat-meter"]
    for _ in range(3):
        await driver.poll()
    assert driver.connection.counters.connects == 1
    assert all(s.quality is Quality.GOOD for s in samples_of(image, "heat-meter").values())


async def test_an_idle_connection_closed_by_the_device_is_reopened(
    fieldbus: tuple[ModbusIO, ProcessImage], plant: SimulatedPlant
) -> None:
    io, image = fieldbus
    endpoint = plant.endpoint_of("plant-skid")
    endpoint.faults.idle_timeout = 0.2
    endpoint.apply_faults()
    driver = io.drivers["plant-skid"]
    await driver.poll()
    await asyncio.sleep(0.5)  # the gateway closes the idle connection
    async with asyncio.timeout(5):
        while True:
            await driver.poll()
            if samples_of(image, "plant-skid")["tank_temp_top"].timestamp > START and (
                driver.connection.counters.connects >= 2
            ):
                break
    assert all(s.quality is Quality.GOOD for s in samples_of(image, "plant-skid").values())


# ---------------------------------------------------------------- writes


async def test_a_setpoint_write_reaches_the_plant_and_reads_back(
    fieldbus: tuple[ModbusIO, ProcessImage], plant: SimulatedPlant
) -> None:
    io, _ = fieldbus
    driver = io.drivers["c1-skid"]
    await driver.write("pump_speed_cmd", 47.5, verify=True)
    assert plant.model.commands.pump_speed[0] == pytest.approx(0.475)
    await driver.write("remote_request", True)
    assert bool(plant.model.commands.remote_request[0])


async def test_a_write_outside_the_limits_is_refused_before_the_wire(
    fieldbus: tuple[ModbusIO, ProcessImage], plant: SimulatedPlant
) -> None:
    io, _ = fieldbus
    driver = io.drivers["c1-skid"]
    sent = driver.connection.counters.requests
    with pytest.raises(
        WriteError, match=r"c1-skid\.it_cap_cmd: 30 is outside its limits 0\.0\.\.25\.0"
    ):
        await driver.write("it_cap_cmd", 30)
    assert driver.connection.counters.requests == sent
    with pytest.raises(WriteError, match="read-only"):
        await driver.write("outlet_temp", 60.0)


@pytest.mark.parametrize(
    ("point", "value", "sends"), [("heartbeat", 42, 1), ("it_cap_cmd", 12.0, 2)]
)
async def test_an_unanswered_write_is_resent_only_when_idempotent(
    fieldbus: tuple[ModbusIO, ProcessImage],
    plant: SimulatedPlant,
    point: str,
    value: float,
    sends: int,
) -> None:
    io, _ = fieldbus
    driver = io.drivers["c1-skid"]
    await driver.poll()
    endpoint = plant.endpoint_of("c1-skid")
    gateway = endpoint.gateway
    assert gateway is not None
    endpoint.faults.units[1] = UnitFaults(silent=True)
    endpoint.apply_faults()
    before = gateway.requests
    with pytest.raises(WriteError, match="unconfirmed"):
        await driver.write(point, value)
    assert gateway.requests - before == sends


async def test_the_driver_reads_a_heat_meter_served_by_jsmodbus(site: LoadedSite) -> None:
    """A Modbus server not written in Python, word-swapped floats encoded with struct: the
    driver's samples equal the values served."""
    values = {
        "flow": 1.734,
        "power": 28.4,
        "forward_temp": 64.8,
        "return_temp": 55.1,
        "energy": 123456,
        "volume": 9876.54,
    }
    async with node_modbus_server(heat_meter_registers(values), unit=2) as port:
        image = ProcessImage()
        io = ModbusIO(site, image, addresses={"heat-meter": ("127.0.0.1", port)})
        try:
            await io.drivers["heat-meter"].poll()
        finally:
            await io.stop()
    samples = samples_of(image, "heat-meter")
    for point, value in values.items():
        assert samples[point].quality is Quality.GOOD, point
        assert samples[point].value == pytest.approx(value, rel=1e-6), point


async def test_a_slow_device_does_not_age_the_other_devices_samples(
    site: LoadedSite, plant: SimulatedPlant
) -> None:
    """The heat meter answers in 1 s; the skids, polled every cycle, stay within one cycle of
    fresh (their own period plus at most one cycle)."""
    period = 0.2
    image = ProcessImage()
    addresses = {d: (plant.endpoint_of(d).host, plant.endpoint_of(d).port) for d in MODBUS_DEVICES}
    io = ModbusIO(site, image, addresses=addresses, period=period)
    meter = plant.endpoint_of("heat-meter")
    meter.faults.units[2] = UnitFaults(delay=1.0)
    io.drivers["heat-meter"].connection.timeout = 3.0  # slow, not dead
    await io.start()
    try:
        await asyncio.sleep(3 * period)
        ages = []
        for _ in range(8):
            await asyncio.sleep(period / 2)
            now = datetime.now(UTC)
            for device in ("c1-skid", "c2-skid", "c3-skid", "plant-skid"):
                sample = image.snapshot()[PointRef(device, "heartbeat")]
                assert sample.quality is Quality.GOOD
                ages.append((now - sample.timestamp).total_seconds())
        meter_polls = io.drivers["heat-meter"].polls
    finally:
        await io.stop()
        meter.faults.units.pop(2, None)
    assert max(ages) <= 2 * period
    assert meter_polls <= 3  # it was really slow meanwhile


async def test_field_io_feeds_the_image_with_every_point_of_the_demo_plant(
    site: LoadedSite,
) -> None:
    """Every device of the simulated demo plant, Modbus and OPC-UA, GOOD in one process image."""
    simulated = SimulatedPlant(site, start=START, speed=30.0, ephemeral_ports=True)
    await simulated.start()
    image = ProcessImage()
    modbus = {
        d: (simulated.endpoint_of(d).host, simulated.endpoint_of(d).port) for d in MODBUS_DEVICES
    }
    opcua = {d: s.endpoint for d, s in simulated.compute_managers.items()}
    field = FieldIO(site, image, period=0.2, addresses=modbus, endpoints=opcua, slow_every=2)
    await field.start()
    try:
        expected = {
            PointRef(device.id, point.id)
            for device in site.config.devices
            for point in site.device_map(device.id).points
        }
        async with asyncio.timeout(30):
            while not all(
                image.snapshot().get(ref, Sample.bad(Reason.NOT_CONNECTED, START)).usable
                for ref in expected
            ):
                await asyncio.sleep(0.1)
        snapshot = image.snapshot()
        assert set(snapshot) == expected
        assert snapshot[PointRef("c1-compute", "it_power")].value == pytest.approx(
            snapshot[PointRef("c1-skid", "it_power")].value, rel=0.05
        )  # the same servers' power, seen by two devices over two protocols
    finally:
        await field.stop()
        await simulated.stop()


async def test_slow_points_are_read_every_slow_every_polls(
    fieldbus: tuple[ModbusIO, ProcessImage], plant: SimulatedPlant
) -> None:
    io, image = fieldbus
    driver = io.drivers["c1-skid"]  # lease_timeout is its slow point, slow_every = 10
    stamps = []
    for _ in range(11):
        await driver.poll()
        stamps.append(samples_of(image, "c1-skid")["lease_timeout"].timestamp)
    assert len(set(stamps[:10])) == 1  # read once by the first poll, kept by the next nine
    assert stamps[10] > stamps[0]  # and read again by the eleventh


async def test_requests_to_a_device_keep_its_minimum_gap(
    site: LoadedSite, plant: SimulatedPlant
) -> None:
    image = ProcessImage()
    address = (plant.endpoint_of("c1-skid").host, plant.endpoint_of("c1-skid").port)
    io = ModbusIO(site, image, addresses={"c1-skid": address})
    driver = io.drivers["c1-skid"]
    driver.connection.request_gap = 0.1
    try:
        await driver.poll()  # connect
        started = asyncio.get_running_loop().time()
        await driver.poll()  # four requests
        elapsed = asyncio.get_running_loop().time() - started
    finally:
        await io.stop()
    assert elapsed >= 4 * 0.1  # a gap before each (the previous poll's last request was just now)


async def test_a_float_setpoint_is_written_as_two_word_swapped_registers() -> None:
    """Multiple-register write of a float32 in CDAB order to a Node.js (jsmodbus) server, read
    back by the driver (verify) and decoded here with struct."""
    from controller.config.maps import ModbusMap
    from controller.fieldbus.modbus_driver import ModbusDeviceDriver
    from controller.fieldbus.modbus_transport import ModbusConnection

    device_map = ModbusMap.model_validate(
        {
            "protocol": "modbus",
            "device_type": "test",
            "addressing": "zero-based",
            "order": "CDAB",
            "points": [
                {
                    "id": "supply_setpoint",
                    "table": "holding",
                    "address": 10,
                    "type": "float32",
                    "unit": "degC",
                    "access": "rw",
                    "limits": {"min": 20, "max": 80},
                    "idempotent": True,
                }
            ],
        }
    )
    async with node_modbus_server({"holding": {10: 0, 11: 0}}) as port:
        connection = ModbusConnection("127.0.0.1", port)
        driver = ModbusDeviceDriver("test", 1, device_map, connection, ProcessImage())
        try:
            await driver.write("supply_setpoint", 62.75, verify=True)
            words = await connection.read(Table.HOLDING, 1, 10, 2)
        finally:
            await connection.close()
    low, high = words  # CDAB: the low word first
    assert struct.unpack(">f", struct.pack(">HH", high, low))[0] == 62.75

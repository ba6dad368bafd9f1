"""The simulated plant's Modbus devices on real sockets, read and written by pymodbus's client.

Values are decoded here independently of our codec (pymodbus's own converters, plain arithmetic),
so a mistake shared by our server and our client would still show.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import struct
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, cast

import pytest
from asyncua import Client
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.pdu import ExceptionResponse

from controller.config.loader import ConfigError, LoadedSite, load_site
from controller.config.maps import ByteOrder, DataType, ModbusMap, ModbusPoint, Table
from simulators.devices.fault_plan import load_fault_plan
from simulators.devices.plant_server import SimulatedPlant
from simulators.plant.plc import PlcMode
from tests.plant_helpers import ROOT, SITES

START = datetime(2026, 1, 15, 6, 0, tzinfo=UTC)
DATATYPE = AsyncModbusTcpClient.DATATYPE


@pytest.fixture(scope="module")
def demo_site() -> LoadedSite:
    return load_site(SITES / "demo.yaml")


FAULT_PLAN = """\
faults:
  - {at: 1000 s, kind: unreachable, device: c2-skid, mode: refuse, duration: 10 s}
  - {at: 1020 s, kind: sensor_fault, caisson: c3, sensor: outlet_temp, duration: 60 s}
  - {at: 1100 s, kind: pump_trip, caisson: c2, duration: 5 min}
  - {at: 1100 s, kind: leak, caisson: c1}
  - {at: 1100 s, kind: sensor_stuck, caisson: c3, sensor: outlet_temp}
"""


@pytest.fixture(scope="module")
async def plant(
    demo_site: LoadedSite, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[SimulatedPlant]:
    """The demo plant in lockstep on free ports, 10 minutes into a January morning, with the faults
    of FAULT_PLAN ahead of it."""
    plan_file = tmp_path_factory.mktemp("faults") / "faults.yaml"
    plan_file.write_text(FAULT_PLAN)
    faults = load_fault_plan(plan_file, demo_site)
    simulated = SimulatedPlant(
        demo_site, start=START, speed=None, faults=faults, ephemeral_ports=True, opcua=False
    )
    await simulated.start()
    await simulated.advance(600)
    yield simulated
    await simulated.stop()


async def client_for(plant: SimulatedPlant, device_id: str) -> AsyncModbusTcpClient:
    """A connected client; waits (bounded) for a port that a fault had closed to reopen."""
    endpoint = plant.endpoint_of(device_id)
    gateway = endpoint.gateway
    assert gateway is not None
    async with asyncio.timeout(5):
        while not gateway.listening:
            await asyncio.sleep(0.01)
    client = AsyncModbusTcpClient(endpoint.host, port=endpoint.port, timeout=1.0, retries=0)
    assert await client.connect()
    return client


def independent_decode(point: ModbusPoint, order: ByteOrder, registers: Sequence[int]) -> object:
    """The engineering value of `registers`, without our codec."""
    if point.type is DataType.BIT:
        return bool(registers[0] >> (point.bit or 0) & 1)
    word_order: Literal["big", "little"] = "big" if order is ByteOrder.ABCD else "little"
    assert order in (ByteOrder.ABCD, ByteOrder.CDAB), "the bundled maps use these two"
    if point.type in (DataType.INT16, DataType.UINT16):
        raw = struct.unpack(
            ">h" if point.type is DataType.INT16 else ">H", struct.pack(">H", registers[0])
        )[0]
    else:
        kind = {DataType.FLOAT32: DATATYPE.FLOAT32, DataType.UINT32: DATATYPE.UINT32}[point.type]
        raw = AsyncModbusTcpClient.convert_from_registers(
            list(registers), kind, word_order=word_order
        )
    if raw in point.invalid:
        return None
    return raw * point.scale + point.offset


async def read_point(
    client: AsyncModbusTcpClient, device_map: ModbusMap, point: ModbusPoint, unit: int
) -> object:
    address = device_map.wire_address(point)
    if point.table is Table.COIL:
        return (await client.read_coils(address, count=1, device_id=unit)).bits[0]
    if point.table is Table.DISCRETE:
        return (await client.read_discrete_inputs(address, count=1, device_id=unit)).bits[0]
    read = (
        client.read_holding_registers
        if point.table is Table.HOLDING
        else client.read_input_registers
    )
    response = await read(address, count=point.register_count, device_id=unit)
    assert not response.isError(), (point.id, response)
    return independent_decode(point, device_map.byte_order(point), response.registers)


@pytest.mark.parametrize("device_id", ["c1-skid", "c2-skid", "c3-skid", "plant-skid", "heat-meter"])
async def test_every_point_reads_the_plant_models_value(
    plant: SimulatedPlant, device_id: str
) -> None:
    device = plant.site.config.device(device_id)
    device_map = plant.site.device_map(device_id)
    assert isinstance(device_map, ModbusMap)
    client = await client_for(plant, device_id)
    try:
        for point in device_map.points:
            got = await read_point(client, device_map, point, device.unit_id)  # type: ignore[union-attr]
            expected = plant.binding(device_id).read(point.id)
            if isinstance(expected, float):
                assert got == pytest.approx(expected, abs=point.scale / 2 + 1e-4 * abs(expected)), (
                    point.id
                )
            else:
                assert got == expected, point.id
    finally:
        client.close()


async def test_values_follow_the_plant_as_it_runs(plant: SimulatedPlant) -> None:
    client = await client_for(plant, "heat-meter")
    try:
        before = (await client.read_input_registers(8, count=2, device_id=2)).registers  # energy
        await plant.advance(60)
        after = (await client.read_input_registers(8, count=2, device_id=2)).registers
        convert = AsyncModbusTcpClient.convert_from_registers
        energy_before = cast(int, convert(before, DATATYPE.UINT32, word_order="little"))
        energy_after = cast(int, convert(after, DATATYPE.UINT32, word_order="little"))
        assert energy_after > energy_before
    finally:
        client.close()


async def test_a_write_within_limits_reaches_the_plant_and_is_counted(
    plant: SimulatedPlant,
) -> None:
    client = await client_for(plant, "c1-skid")
    registers = plant.endpoint_of("c1-skid").units[1]
    counted = registers.write_counts[Table.HOLDING, 0]
    try:
        response = await client.write_register(0, 425, device_id=1)  # pump_speed_cmd, 0.1 %
        assert not response.isError()
        assert plant.model.commands.pump_speed[0] == pytest.approx(0.425)
        assert registers.write_counts[Table.HOLDING, 0] == counted + 1
        response = await client.write_registers(0, [425, 1500], device_id=1)  # speed and 15 kW cap
        assert not response.isError()
        assert plant.model.commands.plc_cap[0] == pytest.approx(15_000.0)
        assert registers.write_counts[Table.HOLDING, 0] == counted + 2
    finally:
        client.close()


async def test_an_out_of_range_write_gets_exception_3_and_changes_nothing(
    plant: SimulatedPlant,
) -> None:
    client = await client_for(plant, "c1-skid")
    before_speed = float(plant.model.commands.pump_speed[0])
    before_cap = float(plant.model.commands.plc_cap[0])
    try:
        response = await client.write_register(0, 1001, device_id=1)  # 100.1 %
        assert isinstance(response, ExceptionResponse)
        assert response.exception_code == 3
        # a multiple write with one bad value applies none of it
        response = await client.write_registers(0, [300, 2600], device_id=1)  # 30 %, 26 kW > 25
        assert isinstance(response, ExceptionResponse)
        assert response.exception_code == 3
        assert plant.model.commands.pump_speed[0] == before_speed
        assert plant.model.commands.plc_cap[0] == before_cap
        held = (await client.read_holding_registers(0, count=2, device_id=1)).registers
        assert held == [round(before_speed * 1000), round(before_cap / 10)]
    finally:
        client.close()


async def test_read_only_registers_refuse_writes(plant: SimulatedPlant) -> None:
    client = await client_for(plant, "c1-skid")
    try:
        response = await client.write_register(7, 1, device_id=1)  # no holding register 7
        assert isinstance(response, ExceptionResponse)
        assert response.exception_code == 2
    finally:
        client.close()


async def write_lease(client: AsyncModbusTcpClient, beat: int) -> None:
    """What a supervisor writes every cycle: speed 50 %, cap 18 kW, heartbeat."""
    response = await client.write_registers(0, [500, 1800, beat], device_id=1)
    assert not response.isError()


async def test_lease_lapse_gives_local_safe_mode_and_remote_needs_a_request(
    plant: SimulatedPlant,
) -> None:
    client = await client_for(plant, "c1-skid")
    mode = plant.model.plcs.mode
    try:
        await write_lease(client, 1)
        assert not (await client.write_coil(0, True, device_id=1)).isError()  # remote_request
        await plant.advance(1)
        assert mode[0] == PlcMode.REMOTE
        for beat in range(2, 12):
            await write_lease(client, beat)
            await plant.advance(1)
        assert mode[0] == PlcMode.REMOTE
        # the supervisor goes quiet: local safe within the lease timeout plus one step
        timeout = int(plant.model.plcs.limits[8, 0])
        await plant.advance(timeout + 1)
        assert mode[0] == PlcMode.LOCAL_SAFE
        registers = (await client.read_input_registers(7, count=3, device_id=1)).registers
        assert registers[0] == PlcMode.LOCAL_SAFE  # plc_mode
        assert registers[2] & (1 << 5)  # interlocks: local_safe
        await plant.advance(5)  # the drive ramps to the safe speed
        speed = (await client.read_input_registers(3, count=1, device_id=1)).registers[0]
        assert speed == 900  # 90.0 %, the caisson type's safe speed
        # renewing alone is not enough; asking for remote is
        await write_lease(client, 100)
        await plant.advance(1)
        assert mode[0] == PlcMode.LOCAL_SAFE
        await write_lease(client, 101)
        assert not (await client.write_coil(0, True, device_id=1)).isError()
        await plant.advance(1)
        assert mode[0] == PlcMode.REMOTE
        assert (await client.read_coils(0, count=1, device_id=1)).bits[0] is False  # consumed
    finally:
        client.close()


async def test_fault_plan_makes_a_device_unreachable_and_back(plant: SimulatedPlant) -> None:
    await plant.advance(max(1000 - plant.model.step_index, 0) + 1)
    endpoint = plant.endpoint_of("c2-skid")
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(endpoint.host, endpoint.port)
    other = await client_for(plant, "c1-skid")  # the others are served meanwhile
    try:
        assert not (await other.read_input_registers(0, count=2, device_id=1)).isError()
    finally:
        other.close()
    await plant.advance(10)
    client = await client_for(plant, "c2-skid")  # once the gateway has reopened its port
    try:
        assert not (await client.read_input_registers(0, count=2, device_id=1)).isError()
    finally:
        client.close()


async def test_a_faulty_sensor_reads_as_its_sentinel(plant: SimulatedPlant) -> None:
    await plant.advance(max(1021 - plant.model.step_index, 0) + 1)
    client = await client_for(plant, "c3-skid")
    try:
        raw = (await client.read_input_registers(1, count=1, device_id=1)).registers[0]
        assert raw == 0x7FFF  # outlet_temp at its sensor-fault code
        inlet = (await client.read_input_registers(0, count=1, device_id=1)).registers[0]
        assert 200 < inlet < 800  # the other sensor still reads a temperature
    finally:
        client.close()


async def test_random_frames_do_not_break_the_device(plant: SimulatedPlant) -> None:
    """Random bytes and well-framed requests with random PDUs, for a bounded time; then a normal
    read is answered correctly."""
    endpoint = plant.endpoint_of("c1-skid")
    rng = random.Random(7)
    deadline = asyncio.get_running_loop().time() + 2.0
    while asyncio.get_running_loop().time() < deadline:
        reader, writer = await asyncio.open_connection(endpoint.host, endpoint.port)
        for _ in range(rng.randint(1, 5)):
            pdu = rng.randbytes(rng.randint(1, 20))
            framed = struct.pack(">HHHB", rng.randrange(65536), 0, len(pdu) + 1, 1) + pdu
            writer.write(framed if rng.random() < 0.6 else rng.randbytes(rng.randint(1, 40)))
        await writer.drain()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(reader.read(1024), timeout=0.05)
        writer.close()
    client = await client_for(plant, "c1-skid")
    try:
        response = await client.read_input_registers(5, count=2, device_id=1)  # it_power
        assert not response.isError()
        value = AsyncModbusTcpClient.convert_from_registers(response.registers, DATATYPE.FLOAT32)
        assert value == pytest.approx(plant.model.it_power[0] / 1000, rel=1e-6)
    finally:
        client.close()


async def test_a_unit_id_nobody_serves_gets_gateway_exception_0x0b(plant: SimulatedPlant) -> None:
    client = await client_for(plant, "heat-meter")  # unit 2 behind its own serial gateway
    try:
        response = await client.read_input_registers(0, count=2, device_id=7)
        assert isinstance(response, ExceptionResponse)
        assert response.exception_code == 0x0B
        assert not (await client.read_input_registers(0, count=2, device_id=2)).isError()
    finally:
        client.close()


class FakeTime:
    """A monotonic clock that moves only when the plant sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


@pytest.mark.parametrize("speed", [1.0, 60.0])
async def test_real_and_accelerated_time_step_the_plant_at_speed_steps_per_second(
    demo_site: LoadedSite, speed: float
) -> None:
    fake = FakeTime()
    simulated = SimulatedPlant(
        demo_site,
        start=START,
        speed=speed,
        ephemeral_ports=True,
        opcua=False,
        clock=fake.clock,
        sleep=fake.sleep,
    )
    await simulated.start()
    try:
        started = fake.now
        while fake.now - started < 5.0:  # five seconds of (fake) wall time
            await asyncio.sleep(0)
        elapsed = fake.now - started
    finally:
        await simulated.stop()
    assert simulated.model.step_index == pytest.approx(elapsed * speed, abs=1)


async def test_lockstep_moves_only_when_asked(demo_site: LoadedSite) -> None:
    simulated = SimulatedPlant(
        demo_site, start=START, speed=None, ephemeral_ports=True, opcua=False
    )
    await simulated.start()
    try:
        await asyncio.sleep(0.2)
        assert simulated.model.step_index == 0
        await simulated.advance(7)
        assert simulated.model.step_index == 7
    finally:
        await simulated.stop()


async def test_pump_trip_leak_and_stuck_sensor_show_in_the_registers(plant: SimulatedPlant) -> None:
    """What a controller sees of plant faults: status bits, the leak input, interlocks, a frozen
    reading."""
    await plant.advance(max(1101 - plant.model.step_index, 0))
    c1 = await client_for(plant, "c1-skid")
    c2 = await client_for(plant, "c2-skid")
    c3 = await client_for(plant, "c3-skid")
    try:
        stuck_at = (await c3.read_input_registers(1, count=1, device_id=1)).registers[0]
        # c3 is still tripped from its sensor's fault code (fail safe): a trip reset clears it
        assert (await c3.read_input_registers(9, count=1, device_id=1)).registers[0] & (1 << 2)
        await c3.write_coil(1, True, device_id=1)  # trip_reset
        # drive c3 hard (remote, 30 % pump, 20 kW) so that its real outlet temperature climbs
        await c3.write_coil(0, True, device_id=1)
        for beat in range(120):
            await c3.write_registers(0, [300, 2000, 1000 + beat], device_id=1)
            await plant.advance(1)
        # c2: the drive tripped: fault bit 3 of pump_status, no flow, the PLC's pump-fault trip
        inputs = (await c2.read_input_registers(0, count=10, device_id=1)).registers
        assert inputs[8] & (1 << 3)  # pump_status: pump_fault
        assert inputs[2] == 0  # flow
        assert inputs[9] & (1 << 4)  # interlocks: pump_fault_trip
        # c3: its outlet sensor reads what it read when it stuck, the water is far warmer
        assert (await c3.read_input_registers(1, count=1, device_id=1)).registers[0] == stuck_at
        assert plant.model.water[2] * 10 > stuck_at + 20
        # c1: the drip tray is wet: leak input on, caisson isolated and its IT power cut
        assert (await c1.read_discrete_inputs(0, count=1, device_id=1)).bits[0] is True
        c1_inputs = (await c1.read_input_registers(0, count=10, device_id=1)).registers
        assert c1_inputs[9] & (1 << 3)  # interlocks: leak_trip
        assert c1_inputs[5:7] == [0, 0]  # it_power 0.0 kW as float32
        # and c3's PLC, fooled by its stuck sensor, sees nothing wrong: no interlock
        assert (await c3.read_input_registers(9, count=1, device_id=1)).registers[0] == 0
    finally:
        for client in (c1, c2, c3):
            client.close()


def test_the_sample_fault_plan_is_valid_and_shows_every_kind(demo_site: LoadedSite) -> None:
    plan = load_fault_plan(ROOT / "simulators" / "faults" / "demo-bad-day.yaml", demo_site)
    kinds = {fault.kind for fault in plan.device_faults}
    assert kinds == {
        "slow",
        "unreachable",
        "silent",
        "exception",
        "late_replies",
        "wrong_transaction_id",
        "garbage",
        "connection_limit",
        "idle_timeout",
    }
    assert {event.kind for event in plan.plant_events} >= {
        "sensor_stuck",
        "sensor_drift",
        "sensor_fault",
        "pump_trip",
        "leak",
    }


async def test_an_opcua_device_can_only_be_made_unreachable(
    demo_site: LoadedSite, tmp_path: Path
) -> None:
    plan = tmp_path / "faults.yaml"
    plan.write_text("faults:\n  - {at: 1 s, kind: slow, device: c1-compute, delay: 1 s}\n")
    with pytest.raises(ConfigError) as caught:
        load_fault_plan(plan, demo_site)
    (issue,) = caught.value.issues
    assert (issue.line, issue.field) == (2, "faults[0].kind")
    assert issue.message == "slow is a Modbus fault; 'c1-compute' is an OPC-UA device"


async def test_an_unreachable_compute_manager_goes_away_and_comes_back(
    demo_site: LoadedSite, tmp_path: Path
) -> None:
    plan_file = tmp_path / "faults.yaml"
    plan_file.write_text(
        "faults:\n  - {at: 5 s, kind: unreachable, device: c1-compute, duration: 10 s}\n"
    )
    simulated = SimulatedPlant(
        demo_site,
        start=START,
        speed=None,
        ephemeral_ports=True,
        faults=load_fault_plan(plan_file, demo_site),
    )
    only_c1 = {
        device: server
        for device, server in simulated.compute_managers.items()
        if device == "c1-compute"
    }
    simulated.compute_managers = only_c1  # one OPC-UA server is enough here (2 s each to start)
    await simulated.start()
    try:
        endpoint = simulated.compute_managers["c1-compute"].endpoint
        async with Client(endpoint, timeout=3) as client:
            assert await client.get_namespace_index("urn:digital-boiler:compute-manager") > 0
        await simulated.advance(6)
        await simulated.wait_for_chores()
        with pytest.raises((OSError, TimeoutError)):
            async with Client(endpoint, timeout=1):
                pass
        await simulated.advance(10)
        await simulated.wait_for_chores()
        assert simulated.compute_managers["c1-compute"].endpoint == endpoint  # same port
        async with Client(endpoint, timeout=3) as client:
            assert await client.get_namespace_index("urn:digital-boiler:compute-manager") > 0
    finally:
        await simulated.stop()


async def test_several_unit_ids_behind_one_address_are_one_endpoint(tmp_path: Path) -> None:
    """The plant skid (unit 1) and the heat meter (unit 2) behind one serial gateway address."""
    for folder in ("sites", "plc_maps"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    site_file = tmp_path / "sites" / "demo.yaml"
    text = site_file.read_text().replace("port: 15031", "port: 15030")
    site_file.write_text(text)
    site = load_site(site_file)
    simulated = SimulatedPlant(site, start=START, speed=None, ephemeral_ports=True, opcua=False)
    await simulated.start()
    try:
        await simulated.advance(30)
        shared = simulated.endpoint_of("plant-skid")
        assert simulated.endpoint_of("heat-meter") is shared
        assert sorted(shared.units) == [1, 2]
        client = await client_for(simulated, "plant-skid")
        try:
            tank = (await client.read_input_registers(0, count=1, device_id=1)).registers[0]
            assert tank / 10 == pytest.approx(simulated.model.tank.top, abs=0.06)
            meter = (await client.read_input_registers(2, count=2, device_id=2)).registers
            power = AsyncModbusTcpClient.convert_from_registers(
                meter, DATATYPE.FLOAT32, word_order="little"
            )
            assert power == pytest.approx(simulated.binding("heat-meter").read("power"), rel=1e-5)
        finally:
            client.close()
    finally:
        await simulated.stop()


async def test_a_caisson_can_have_its_own_heat_meter(tmp_path: Path) -> None:
    for folder in ("sites", "plc_maps"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    site_file = tmp_path / "sites" / "demo.yaml"
    text = site_file.read_text()
    text = text.replace(
        "  - {id: c1-compute,",
        "  - {id: c1-meter, protocol: modbus, map: heat_meter, host: 127.0.0.1, port: 15040,"
        " unit_id: 1}\n  - {id: c1-compute,",
    ).replace("    compute: c1-compute\n", "    compute: c1-compute\n    heat_meter: c1-meter\n")
    site_file.write_text(text)
    site = load_site(site_file)
    assert site.config.caissons[0].heat_meter == "c1-meter"
    simulated = SimulatedPlant(site, start=START, speed=None, ephemeral_ports=True, opcua=False)
    await simulated.start()
    try:
        await simulated.advance(300)
        model = simulated.model
        meter = simulated.binding("c1-meter")
        expected_kw = 4.115e6 * model.flow[0] * (model.water[0] - model.inlet[0]) / 1000
        assert meter.read("power") == pytest.approx(expected_kw, rel=0.01)
        assert meter.read("forward_temp") == pytest.approx(model.water[0])
        client = await client_for(simulated, "c1-meter")
        try:
            response = await client.read_input_registers(2, count=2, device_id=1)
            power = AsyncModbusTcpClient.convert_from_registers(
                response.registers, DATATYPE.FLOAT32, word_order="little"
            )
            assert power == pytest.approx(meter.read("power"), rel=1e-5)
        finally:
            client.close()
    finally:
        await simulated.stop()

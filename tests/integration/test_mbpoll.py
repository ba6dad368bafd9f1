"""mbpoll (libmodbus, not written here) against the simulated PLCs: reads and a write."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from controller.config.loader import load_site
from simulators.devices.plant_server import SimulatedPlant
from tests.plant_helpers import SITES

MBPOLL = shutil.which("mbpoll")


@pytest.fixture(scope="module")
async def plant() -> AsyncIterator[SimulatedPlant]:
    if MBPOLL is None:
        pytest.fail("mbpoll is not installed: run `bash scripts/test.sh` (it installs it as root)")
    simulated = SimulatedPlant(
        load_site(SITES / "demo.yaml"),
        start=datetime(2026, 1, 15, 7, tzinfo=UTC),
        speed=None,
        ephemeral_ports=True,
        opcua=False,
    )
    await simulated.start()
    await simulated.advance(300)
    yield simulated
    await simulated.stop()


async def mbpoll(*args: str) -> str:
    """Run mbpoll once, quietly, off the event loop (the plant keeps serving); return stdout."""
    command = [str(MBPOLL), "-m", "tcp", "-1", "-q", *args]
    result = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=15, check=False
    )
    assert result.returncode == 0, (command, result.stdout, result.stderr)
    return result.stdout


def polled_value(output: str) -> float:
    """The value of mbpoll's '[ADDR]: \tVALUE' line."""
    line = next(line for line in output.splitlines() if line.startswith("["))
    return float(line.split(":", 1)[1])


def port_of(plant: SimulatedPlant, device: str) -> str:
    return str(plant.endpoint_of(device).port)


async def test_mbpoll_reads_a_big_endian_float32(plant: SimulatedPlant) -> None:
    # c1-skid it_power: input register 5 (zero-based map), float32 ABCD: mbpoll's -B
    out = await mbpoll(
        "-p",
        port_of(plant, "c1-skid"),
        "-a",
        "1",
        "-0",
        "-r",
        "5",
        "-t",
        "3:float",
        "-B",
        "127.0.0.1",
    )
    assert polled_value(out) == pytest.approx(plant.model.it_power[0] / 1000, rel=1e-5)


async def test_mbpoll_reads_a_word_swapped_float32_at_a_one_based_address(
    plant: SimulatedPlant,
) -> None:
    # heat meter power: register 3 of a one-based map, float32 CDAB: mbpoll's default order and
    # default one-based addressing, unit 2
    out = await mbpoll(
        "-p", port_of(plant, "heat-meter"), "-a", "2", "-r", "3", "-t", "3:float", "127.0.0.1"
    )
    expected = plant.binding("heat-meter").read("power")
    assert isinstance(expected, float)
    assert polled_value(out) == pytest.approx(expected, rel=1e-5)


async def test_mbpoll_reads_a_scaled_int16(plant: SimulatedPlant) -> None:
    out = await mbpoll(
        "-p", port_of(plant, "c1-skid"), "-a", "1", "-0", "-r", "1", "-t", "3", "127.0.0.1"
    )
    raw = polled_value(out)
    assert raw == pytest.approx(plant.model.water[0] * 10, abs=0.51)  # outlet_temp, 0.1 degC


async def test_mbpoll_writes_a_setpoint_the_plant_takes(plant: SimulatedPlant) -> None:
    out = await mbpoll(
        "-p", port_of(plant, "c2-skid"), "-a", "1", "-0", "-r", "0", "-t", "4", "127.0.0.1", "615"
    )
    assert "Written 1 references" in out
    assert plant.model.commands.pump_speed[1] == pytest.approx(0.615)
    # and a value beyond the point's limits is refused: mbpoll exits 1, nothing changes
    result = await asyncio.to_thread(
        subprocess.run,
        [
            str(MBPOLL),
            "-m",
            "tcp",
            "-1",
            "-q",
            "-p",
            port_of(plant, "c2-skid"),
            "-a",
            "1",
            "-0",
            "-r",
            "0",
            "-t",
            "4",
            "127.0.0.1",
            "1200",
        ],
        capture_output=True,
        text=True,
        timeout=15,
        check=False,
    )
    assert result.returncode != 0
    assert "Illegal data value" in result.stdout + result.stderr
    assert plant.model.commands.pump_speed[1] == pytest.approx(0.615)


async def test_mbpoll_reads_the_pump_sequence_and_the_loading_unit(plant: SimulatedPlant) -> None:
    """c1-skid input registers 10 (mixing valve, 0.1 %) and 11 (the pump sequence's status word:
    bit 0 standby, bit 1 flow proven), zero-based."""
    out = await mbpoll(
        "-p",
        port_of(plant, "c1-skid"),
        "-a",
        "1",
        "-0",
        "-r",
        "10",
        "-c",
        "2",
        "-t",
        "3",
        "127.0.0.1",
    )
    values = [float(line.split(":", 1)[1]) for line in out.splitlines() if line.startswith("[")]
    valve, word = values
    model = plant.model
    assert valve == pytest.approx(model.plcs.valve[0] * 1000, abs=0.51)
    assert int(word) == int(model.plcs.standby[0]) | int(model.plcs.flow_proven[0]) << 1
    assert int(word) & 2  # five minutes in, the pump runs with its flow proven


async def test_mbpoll_writes_the_loading_units_setpoint_and_the_standby_request(
    plant: SimulatedPlant,
) -> None:
    # inlet_setpoint: holding register 4, int16 in 0.1 degC; standby_request: coil 2
    out = await mbpoll(
        "-p", port_of(plant, "c3-skid"), "-a", "1", "-0", "-r", "4", "-t", "4", "127.0.0.1", "487"
    )
    assert "Written 1 references" in out
    assert plant.model.commands.inlet_setpoint[2] == pytest.approx(48.7)
    out = await mbpoll(
        "-p", port_of(plant, "c3-skid"), "-a", "1", "-0", "-r", "2", "-t", "0", "127.0.0.1", "1"
    )
    assert "Written 1 references" in out
    assert plant.model.commands.standby_request[2]
    out = await mbpoll(
        "-p", port_of(plant, "c3-skid"), "-a", "1", "-0", "-r", "2", "-t", "0", "127.0.0.1", "0"
    )
    assert not plant.model.commands.standby_request[2]


async def test_mbpoll_moves_the_dry_coolers_return_limit_within_its_hard_band(
    plant: SimulatedPlant,
) -> None:
    """plant-skid (one-based map): return_limit_cmd holding register 4, return_limit input 16."""
    port = port_of(plant, "plant-skid")
    out = await mbpoll("-p", port, "-a", "1", "-r", "4", "-t", "4", "127.0.0.1", "750")
    assert "Written 1 references" in out
    assert plant.model.plant_commands.return_limit == pytest.approx(75.0)
    await plant.advance(1)
    out = await mbpoll("-p", port, "-a", "1", "-r", "16", "-t", "3", "127.0.0.1")
    hard = plant.site.config.plant.dry_cooler.hard_limit
    assert polled_value(out) == pytest.approx(hard * 10)  # clamped by the PLC to its hard band

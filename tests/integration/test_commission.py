"""`boilerctl commission` against the simulated demo plant on real sockets, as an engineer runs it
on a new site: every device reached through the controller's own drivers, every point read once
with its raw registers (checked here against the plant, encoded with `struct`), the write test
journaled and leaving the plant as it was, a device that cannot be reached named with the
reason, and no commissioning while a daemon runs for the site.

The plant runs in lockstep (it moves only when a test advances it), so what a device holds is
what the test reads from the plant.
"""

from __future__ import annotations

import json
import struct
from collections.abc import AsyncIterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from controller.alarms.journal import JournalReader, journal_path
from controller.config.loader import load_site
from controller.config.maps import ModbusMap, Table
from controller.daemon import Daemon
from controller.systemd import Notifier
from simulators.devices.plant_server import SimulatedPlant
from simulators.lockstep import field_overrides
from tests.integration.test_daemon import override_args
from tests.maintenance_helpers import DEMO, Run, boilerctl, clean_environment
from tests.ports import free_port

START = datetime(2026, 1, 15, 6, 0, tzinfo=UTC)
SITE = load_site(DEMO)
MODBUS = ["c1-skid", "c2-skid", "c3-skid", "plant-skid", "heat-meter"]
OPCUA = ["c1-compute", "c2-compute", "c3-compute"]


@pytest.fixture(scope="module")
async def plant() -> AsyncIterator[SimulatedPlant]:
    simulated = SimulatedPlant(SITE, start=START, speed=None, ephemeral_ports=True)
    await simulated.start()
    await simulated.advance(120)  # warm, circulating, the meter counting
    try:
        yield simulated
    finally:
        await simulated.stop()


async def commission(plant: SimulatedPlant, state: Path, *args: str) -> Run:
    return await boilerctl(
        "commission",
        "--site",
        str(DEMO),
        *override_args(plant),
        *args,
        env=clean_environment(state),
    )


def by_id(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["id"]: d for d in record["devices"]}


def expected_raw(plant: SimulatedPlant, device: str, point_id: str) -> list[str]:
    """The registers the plant's device holds for a point, encoded with struct (not our codec)."""
    device_map = SITE.device_map(device)
    assert isinstance(device_map, ModbusMap)
    point = device_map.point(point_id)
    value = plant.binding(device).read(point_id)
    assert isinstance(value, int | float)
    if point.type.value == "float32":
        high, low = struct.unpack(">HH", struct.pack(">f", value))
        words = [high, low] if device_map.byte_order(point).value == "ABCD" else [low, high]
    elif point.type.value == "int16":
        words = [struct.unpack(">H", struct.pack(">h", round(value / point.scale)))[0]]
    else:
        words = [round(value / point.scale)]
    return [f"0x{w:04X}" for w in words]


async def test_the_simulated_plant_passes_every_point_of_every_device(
    plant: SimulatedPlant, tmp_path: Path
) -> None:
    run = await commission(plant, tmp_path / "state", "--json")
    assert run.code == 0, run
    record = json.loads(run.stdout)
    assert (record["site"], record["passed"], record["write_test"]) == (
        SITE.config.site.name,
        True,
        False,
    )
    devices = by_id(record)
    assert list(devices) == MODBUS + OPCUA
    for device_id, device in devices.items():
        device_map = SITE.device_map(device_id)
        assert (device["reachable"], device["passed"], device["error"]) == (True, True, None)
        assert device["round_trip_ms"] > 0
        assert [p["point"] for p in device["points"]] == [p.id for p in device_map.points]
        assert all(p["quality"] == "good" for p in device["points"])
        assert {p["verdict"] for p in device["points"]} <= {"plausible", "unchecked"}
        for point in device["points"]:
            # a point with an expected range is judged; one without is not
            judged = device_map.point(point["point"]).expect is not None
            assert (point["verdict"] == "plausible") == judged, point

    # raw registers as the devices hold them, decoded to what the plant shows
    c1 = {p["point"]: p for p in devices["c1-skid"]["points"]}
    for point in ("inlet_temp", "outlet_temp", "flow", "it_power"):
        assert c1[point]["raw"] == expected_raw(plant, "c1-skid", point), point
        held = plant.binding("c1-skid").read(point)  # in 0.1 steps, or a float32
        assert c1[point]["value"] == pytest.approx(held, abs=0.05 + 1e-9, rel=1e-6)
    assert c1["it_power"]["where"] == "input 5"
    meter = {p["point"]: p for p in devices["heat-meter"]["points"]}
    assert meter["power"]["raw"] == expected_raw(plant, "heat-meter", "power")  # CDAB
    assert meter["power"]["where"] == "input 3"  # one-based, as the map writes it

    compute = devices["c2-compute"]
    assert compute["security"] == "None"
    assert compute["address"] == plant.compute_managers["c2-compute"].endpoint
    values = {p["point"]: p["value"] for p in compute["points"]}
    binding = plant.binding("c2-compute")
    assert values == {p: binding.read(p) for p in values}

    table = await commission(plant, tmp_path / "state", "--device", "c1-skid")
    assert table.code == 0, table
    assert "c1-skid  modbus 127.0.0.1:" in table.stdout
    assert "PASSED" in table.stdout
    assert "1 of 1 device(s) passed" in table.stdout


async def test_the_write_test_writes_back_what_each_point_holds_and_journals_it(
    plant: SimulatedPlant, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    no_reason = await commission(plant, state, "--device", "c1-skid", "--write-test")
    assert no_reason.refused(2) == (
        "boilerctl: --write-test writes to the devices: say why with --reason (kept in the "
        "journal with each write)"
    )
    skid_map = SITE.device_map("c1-skid")
    writable = [p for p in skid_map.points if p.writable]
    before = {p.id: plant.binding("c1-skid").read(p.id) for p in writable}
    counts = plant.endpoint_of("c1-skid").units[1].write_counts
    counted = sum(counts.values())

    run = await commission(
        plant, state, "--device", "c1-skid", "--device", "c1-compute", "--write-test",
        "-r", "commissioning c1", "--user", "ann", "--json",
    )  # fmt: skip
    assert run.code == 0, run
    devices = by_id(json.loads(run.stdout))
    writes = devices["c1-skid"]["writes"]
    assert [w["point"] for w in writes] == [p.id for p in writable]
    assert all(w["passed"] and w["read_back"] == w["value"] for w in writes), writes
    assert [w["point"] for w in devices["c1-compute"]["writes"]] == ["power_cap"]
    # the plant holds what it held; every writable register was written once
    assert {p.id: plant.binding("c1-skid").read(p.id) for p in writable} == before
    assert sum(counts.values()) == counted + len(writable)
    assert {table for table, _ in counts} == {Table.HOLDING, Table.COIL}

    with closing(JournalReader(journal_path(SITE, clean_environment(state)))) as reader:
        entries = reader.entries()
    tests = [e for e in entries if e.kind == "operator"]
    assert [(e.source, e.name) for e in tests] == [
        *(("c1-skid", f"write test {p.id}") for p in writable),
        ("c1-compute", "write test power_cap"),
    ]
    assert {(e.user, e.reason) for e in tests} == {("ann", "commissioning c1")}
    (summary,) = [e for e in entries if e.kind == "commission"]
    assert (summary.after, summary.user) == ("passed", "ann")
    assert summary.message == "commissioning of 2 device(s): every device passed"


async def test_a_device_that_cannot_be_reached_is_named_with_the_reason(
    plant: SimulatedPlant, tmp_path: Path
) -> None:
    closed = free_port()  # nothing listens here
    run = await commission(
        plant, tmp_path / "state", "--device", "c2-skid", "--device", "c3-compute",
        "--address", f"c2-skid=127.0.0.1:{closed}",
        "--endpoint", f"c3-compute=opc.tcp://127.0.0.1:{closed}", "--json",
    )  # fmt: skip
    assert run.code == 1, run
    devices = by_id(json.loads(run.stdout))
    assert devices["c2-skid"]["reachable"] is False
    assert devices["c2-skid"]["error"] == (
        f"c2-skid: 127.0.0.1:{closed} refused the connection: nothing listens there (check the "
        "port, and that the device or its gateway is on)"
    )
    assert devices["c3-compute"]["error"] == (
        f"c3-compute: opc.tcp://127.0.0.1:{closed} refused the connection: nothing listens "
        "there (check the endpoint's port, and that the server is on)"
    )
    unknown = await commission(plant, tmp_path / "state", "--device", "c9-skid")
    assert unknown.refused(2).startswith(f"boilerctl: no device 'c9-skid' in {DEMO} (its devices:")


async def test_no_commissioning_while_a_daemon_runs_for_the_site(tmp_path: Path) -> None:
    plant = SimulatedPlant(SITE, start=START, speed=1.0, ephemeral_ports=True, opcua=False)
    state = tmp_path / "state"
    await plant.start()
    addresses, endpoints = field_overrides(plant)
    daemon = Daemon(
        SITE,
        addresses=addresses,
        endpoints=endpoints,
        notifier=Notifier(None),
        spool=tmp_path / "demo.spool",
        environ=clean_environment(state),
    )
    try:
        await daemon.start()
        run = await commission(plant, state, "--device", "c1-skid")
    finally:
        try:
            await daemon.stop()
        finally:
            await plant.stop()
    line = run.refused(5)
    slug = SITE.config.site.slug
    assert line.startswith(f"boilerctl: a daemon runs for site {slug} (pid "), line
    assert line.endswith(
        "): commissioning must never be a second master on the devices; stop the daemon first "
        "(systemctl stop, or Ctrl-C)"
    )

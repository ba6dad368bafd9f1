"""The daemon's parts in closed loop with the simulated plant over real sockets (Modbus TCP and
OPC-UA), in lockstep: one plant step, one refresh of every device, one scan and its writes."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pytest
from structlog.testing import capture_logs

from controller.config.loader import load_site
from controller.logs import configure_logging
from simulators.devices.fault_plan import FaultPlan
from simulators.devices.plant_server import SimulatedPlant
from simulators.lockstep import lockstep_controller
from simulators.plant.plc import PlcMode
from simulators.scenario import ColdSnap, ConstantWeather
from tests.plant_helpers import SITES, with_tank

START = datetime(2026, 1, 15, 6, 0, tzinfo=UTC)  # a cold January morning
WARM_UP = 300  # s: from the tank's 55 °C to the band
STEPS = 900


@pytest.fixture(scope="module")
async def plant() -> AsyncIterator[SimulatedPlant]:
    """The demo plant in lockstep on free ports, OPC-UA included (shared: servers start slowly)."""
    simulated = SimulatedPlant(
        load_site(SITES / "demo.yaml"), start=START, speed=None, ephemeral_ports=True
    )
    await simulated.start()
    yield simulated
    await simulated.stop()


def writes_received(plant: SimulatedPlant) -> int:
    modbus = sum(sum(u.write_counts.values()) for e in plant.endpoints for u in e.units.values())
    return modbus + sum(sum(s.write_counts.values()) for s in plant.compute_managers.values())


async def test_read_only_computes_and_logs_but_sends_nothing(plant: SimulatedPlant) -> None:
    before = writes_received(plant)
    configure_logging("info", json_lines=True, stream=io.StringIO())
    try:
        with capture_logs() as logs:
            async with lockstep_controller(plant, read_only=True) as loop:
                await loop.run(20)
    finally:
        configure_logging("warning", json_lines=False)
    assert writes_received(plant) == before
    assert loop.cycle.writes_sent == 0
    assert loop.cycle.status is not None
    assert all(c.initialised for c in loop.cycle.status.caissons)  # it read every caisson
    would = [e for e in logs if e["event"] == "would_write"]
    points = {(e["device"], e["point"]) for e in would}
    assert {("c1-skid", "heartbeat"), ("c1-skid", "remote_request")} <= points
    assert sum(e["point"] == "heartbeat" for e in would if e["device"] == "c1-skid") == 20


async def test_the_controller_holds_the_outlets_in_the_band_over_real_sockets(
    plant: SimulatedPlant,
) -> None:
    site = plant.site
    low, high = site.config.setpoints.supply_low, site.config.setpoints.supply_high
    model = plant.model
    first = model.step_index
    outlets: list[np.ndarray] = []
    supply: list[float] = []
    modes: list[np.ndarray] = []

    def observe(step: int) -> None:
        if step - first > WARM_UP:
            outlets.append(model.water.copy())
            supply.append(model.flows.supply_header)
            modes.append(model.plcs.mode.copy())

    async with lockstep_controller(plant) as loop:
        await loop.run(STEPS, observe)
    cycle = loop.cycle
    assert cycle.cycles == STEPS
    assert cycle.write_failures == {}
    assert cycle.scan_failures == 0
    assert np.all(np.array(modes) == PlcMode.REMOTE)  # the supervisor runs the caissons
    assert np.min(outlets) >= low
    assert np.max(outlets) <= high
    assert min(supply) >= low
    assert max(supply) <= high
    assert model.plcs.trips == 0


async def test_over_real_sockets_it_stages_a_caisson_down_and_up_and_stays_in_band() -> None:
    """A mild day (8 °C), the tank warm (63 °C, as after a night's run): the three caissons the
    PLCs run at start top the tank up, then are staged off while it carries the load, and their
    PLCs stop the pumps; a cold step (−7 K at 20 min) wants all three: they are started again
    (flow proven, warmed up on their loading units) and join the header hot. (From the sites'
    cold 55 °C tank the morning's hot water would fire the backup, and a heat-priority plant then
    keeps its tank full for a day on all three.)"""
    demo = load_site(SITES / "demo.yaml")
    site = replace(demo, config=with_tank(demo.config, initial_temperature=63.0))
    plan = FaultPlan([], [ColdSnap(kind="cold_snap", at="20 min", drop="7 K")])
    weather = ConstantWeather(kind="constant", temperature="8 degC")
    simulated = SimulatedPlant(
        site, start=START, speed=None, weather=weather, faults=plan, ephemeral_ports=True
    )
    model = simulated.model
    low, high = site.config.setpoints.supply_low, site.config.setpoints.supply_high
    first = model.step_index
    standby: list[np.ndarray] = []
    supply: list[float] = []

    def observe(step: int) -> None:
        standby.append(model.plcs.standby.copy())
        if step - first > 600 and model.flows.source_flow > 0 and model.it_power.sum() > 0:
            supply.append(model.flows.supply_header)

    await simulated.start()
    try:
        async with lockstep_controller(simulated) as loop:
            await loop.run(2400, observe)
            cycle = loop.cycle
            assert cycle.write_failures == {}
            assert cycle.scan_failures == 0
    finally:
        await simulated.stop()
    stopped = np.array(standby).sum(axis=1)  # caissons standing by, step by step
    assert stopped[0] == 0
    down = int(np.argmax(stopped == 1))
    assert down > 0  # one was staged off and its pump stopped
    assert 1200 < down + int(np.argmax(stopped[down:] == 0)) < 2400  # started again after the step
    assert stopped[-1] == 0
    assert np.all(model.plcs.mode == PlcMode.REMOTE)
    assert model.plcs.trips == 0
    assert model.totals.it_without_flow_steps == 0
    assert low <= min(supply)
    assert max(supply) <= high

"""A trip reset on the demo fault day, as an engineer does it: the demo plant's morning of
simulators/scenarios/demo-faults.yaml on real sockets (10× real time), the controller daemon
against it in this process, and the installed `boilerctl reset-trip` talking to its local API.

c1's drip tray gets wet: the PLC isolates the caisson. A reset is refused while the tray is wet;
after the repair nothing clears on its own (the controller never resets a trip); the engineer's
reset clears the leak trip, the PLC proves the flow before any IT power, and the caisson is back
in dispatch. Every step is checked on the plant (the PLC's registers and outputs) as well as in
what the engineer sees.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from controller.api.client import EXIT_REFUSED
from controller.config.loader import load_site
from controller.config.maps import Table
from controller.daemon import Daemon
from controller.systemd import Notifier
from simulators.devices.plant_server import SimulatedPlant
from simulators.lockstep import field_overrides
from simulators.plant.plc import Interlock, Limit
from simulators.scenario import load_scenario
from tests.maintenance_helpers import DEMO, boilerctl, caisson, clean_environment, until_holds

SPEED = 10.0
SCENARIO = load_scenario(DEMO.parents[1] / "simulators" / "scenarios" / "demo-faults.yaml")
LEAK_AT = 6 * 3600  # s after the fault day's start: c1's leak (demo-faults.yaml)
TRIP_RESET_COIL = (Table.COIL, 1)  # plc_maps/caisson_skid.yaml: trip_reset


@dataclass
class Step:
    interlocks: int
    it_cap: float  # W, the PLC's applied cap
    it_power: float


@dataclass
class FaultDay:
    plant: SimulatedPlant
    daemon: Daemon
    env: dict[str, str]
    steps: list[Step]  # c1's PLC after each plant step

    async def cli(self, *args: str) -> Any:
        return await boilerctl(*args, "--site", str(DEMO), env=self.env)

    def status(self) -> dict[str, Any]:
        return json.loads(self.daemon.operations.status().model_dump_json())

    def c1(self) -> dict[str, Any]:
        return caisson(self.status(), "c1")

    def reset_writes(self) -> int:
        """trip_reset coil writes c1's simulated PLC has received."""
        units = self.plant.endpoint_of("c1-skid").units
        return sum(unit.write_counts[TRIP_RESET_COIL] for unit in units.values())


@pytest.fixture
async def fault_day(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FaultDay]:
    scenario = SCENARIO.scenario
    start = scenario.start + timedelta(seconds=LEAK_AT - 300)  # a few minutes before the leak
    site = load_site(DEMO)
    plant = SimulatedPlant(
        site,
        start=start,
        speed=SPEED,
        weather=scenario.weather,
        compute_demand=scenario.compute_demand,
        ephemeral_ports=True,
    )
    model = plant.model
    steps: list[Step] = []
    model_step = model.step

    def step_and_observe() -> None:
        model_step()
        plcs = model.plcs
        steps.append(Step(int(plcs.interlocks[0]), plcs.it_cap[0], model.it_power[0]))

    monkeypatch.setattr(model, "step", step_and_observe)
    env = clean_environment(tmp_path / "state")
    await plant.start()
    addresses, endpoints = field_overrides(plant)
    daemon = Daemon(
        site,
        addresses=addresses,
        endpoints=endpoints,
        time_scale=SPEED,
        notifier=Notifier(None),
        spool=tmp_path / "demo.spool",
        environ=env,
    )
    try:
        await daemon.start()
        day = FaultDay(plant, daemon, env, steps)

        def every_caisson_runs() -> bool:
            caissons = day.status()["caissons"]
            return all(c["plc_mode"] == "remote" and c["running"] for c in caissons)

        await until_holds(every_caisson_runs, "the daemon runs every caisson")
        yield day
    finally:
        try:
            await daemon.stop()
        finally:
            await plant.stop()


async def test_leak_repair_reset_and_the_caisson_back_in_dispatch(fault_day: FaultDay) -> None:
    day, model = fault_day, fault_day.plant.model
    delay = model.plcs.limits[Limit.TRIP_RESET_DELAY, 0]

    # The drip tray gets wet: the PLC isolates c1, the controller takes it out of dispatch.
    model.set_leak(0)
    await until_holds(
        lambda: {"leak", "plc_trip"} <= set(day.c1()["interlocks"]) and not day.c1()["running"],
        "c1 isolated and out of dispatch",
    )
    assert model.plcs.interlocks[0] & Interlock.LEAK_TRIP

    # A reset while the tray is wet: refused in one line naming the cause; nothing sent.
    wet = await day.cli("reset-trip", "c1", "-r", "try", "--user", "ann")
    line = wet.refused(EXIT_REFUSED)
    assert line == (
        "boilerctl: c1: trip reset refused: the drip-tray leak sensor is still wet: "
        "find and fix the leak, dry the tray"
    ), line
    assert day.reset_writes() == 0

    # Repaired: the PLC keeps c1 isolated, and the controller does not reset it by itself.
    model.set_leak(0, False)
    repaired_at = model.time
    await until_holds(lambda: model.time >= repaired_at + 1.5 * delay, "well past the reset delay")
    assert model.plcs.interlocks[0] & Interlock.LEAK_TRIP
    assert model.it_power[0] == 0.0
    assert day.reset_writes() == 0
    assert "plc_trip" in day.c1()["interlocks"]

    # The engineer resets it: the leak trip clears, the low-flow trip holds while the PLC
    # proves the flow.
    reset = await day.cli("reset-trip", "c1", "-r", "tray dry, seal replaced", "--json")
    answer = reset.json()
    assert answer["changes"] == [
        {"target": "c1", "before": "low_flow_trip, leak_trip", "after": "low_flow_trip"}
    ]
    assert answer["message"] == (
        "c1: leak_trip cleared; low_flow_trip holds until the PLC has proven the flow, "
        "then IT power returns"
    )
    assert day.reset_writes() == 1
    assert day.daemon.journal is not None
    entry = day.daemon.journal.entries(kind="operator")[-1]
    assert (entry.source, entry.name, entry.before, entry.after, entry.reason) == (
        "c1",
        "trip_reset",
        "low_flow_trip, leak_trip",
        "low_flow_trip",
        "tray dry, seal replaced",
    )
    assert entry.user  # the login of whoever runs the tests

    # Back in dispatch: no interlock, dispatch gives it load and the servers draw power again.
    await until_holds(
        lambda: not day.c1()["interlocks"] and day.c1()["running"] and model.it_power[0] > 1e3,
        "c1 back in dispatch, computing",
    )
    taken = max(i for i, s in enumerate(day.steps) if s.interlocks & Interlock.LEAK_TRIP) + 1
    after = day.steps[taken:]  # from the PLC scan that took the reset
    proving = [s for s in after if s.interlocks & Interlock.LOW_FLOW_TRIP]
    assert len(proving) >= delay  # plant seconds: the flow held a reset delay before IT power
    assert all(s.it_cap == 0.0 and s.it_power == 0.0 for s in proving)
    assert proving == after[: len(proving)]  # then the trip is gone for good
    assert day.reset_writes() == 1  # only the engineer's


async def test_a_reset_with_no_trip_and_of_an_unknown_caisson_is_refused(
    fault_day: FaultDay,
) -> None:
    none, unknown = (
        await fault_day.cli("reset-trip", "c2", "-r", "check"),
        await fault_day.cli("reset-trip", "c9", "-r", "check"),
    )
    assert none.refused(EXIT_REFUSED) == "boilerctl: c2 has no trip to reset"
    assert unknown.refused(2) == "boilerctl: no caisson 'c9' (the site's caissons: c1, c2, c3)"
    blank = await fault_day.cli("reset-trip", "c2", "-r", " ")
    assert blank.refused(2).startswith("boilerctl: --reason: ")
    assert fault_day.reset_writes() == 0

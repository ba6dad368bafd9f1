"""The simulated caisson PLC's trips: a leak or a pump fault latches until an engineer resets it
once the cause has gone, and the caisson proves its flow before any IT power comes back; the
other trips clear on their own `trip_reset_delay` after their cause has gone."""

from __future__ import annotations

import pytest

from simulators.plant.model import PlantModel
from simulators.plant.plc import Interlock, Limit
from tests.plant_helpers import RemoteSupervisor, scenario_run, site_config

CAP = 18_000.0  # W


def controlled_plant() -> tuple[PlantModel, RemoteSupervisor]:
    run = scenario_run(site_config("demo"), duration="2 h")
    supervisor = RemoteSupervisor(run.model, 0.5, CAP)
    for _ in range(60):
        supervisor.step()
    assert run.model.it_power[0] == pytest.approx(CAP)
    return run.model, supervisor


def trips(model: PlantModel, caisson: int) -> Interlock:
    word = Interlock(int(model.plcs.interlocks[caisson]))
    return word & ~(Interlock.OVERTEMP_WARN | Interlock.LOCAL_SAFE)


def run_for(supervisor: RemoteSupervisor, seconds: float) -> None:
    for _ in range(round(seconds / supervisor.model.dt)):
        supervisor.step()


def reset(supervisor: RemoteSupervisor, caisson: int) -> None:
    """An engineer's trip reset: the coil raised, consumed by the PLC's next scan."""
    supervisor.model.commands.trip_reset[caisson] = True
    supervisor.step()
    assert not supervisor.model.commands.trip_reset[caisson]  # the PLC took the request


def test_a_leak_stays_tripped_until_reset_and_the_restart_proves_flow_first() -> None:
    model, supervisor = controlled_plant()
    delay = model.plcs.limits[Limit.TRIP_RESET_DELAY, 0]
    model.set_leak(0)
    run_for(supervisor, 30)
    assert trips(model, 0) == Interlock.LEAK_TRIP | Interlock.LOW_FLOW_TRIP
    assert (model.pump_speed[0], model.flow[0], model.it_power[0]) == (0.0, 0.0, 0.0)

    reset(supervisor, 0)  # the tray is still wet: nothing clears
    assert trips(model, 0) == Interlock.LEAK_TRIP | Interlock.LOW_FLOW_TRIP

    model.set_leak(0, False)  # repaired, but nobody has reset it: isolated for good
    run_for(supervisor, 10 * delay)
    assert trips(model, 0) == Interlock.LEAK_TRIP | Interlock.LOW_FLOW_TRIP
    assert model.it_power[0] == 0.0

    reset(supervisor, 0)  # the leak trip clears; the low flow stays while the flow is proven
    assert trips(model, 0) == Interlock.LOW_FLOW_TRIP
    proving = []  # the applied outputs and the flow of each scan the low-flow trip holds
    while trips(model, 0):
        proving.append((model.plcs.pump_speed[0], model.flow[0], model.it_power[0]))
        supervisor.step()
    low_flow = model.plcs.limits[Limit.LOW_FLOW, 0]
    assert all(speed == 1.0 and it_power == 0.0 for speed, _, it_power in proving)
    above = [flow >= low_flow for _, flow, _ in proving]
    assert sum(above) >= delay / model.dt - 1  # IT power only after the flow held a delay
    run_for(supervisor, 5)
    assert model.it_power[0] == pytest.approx(CAP)
    assert model.pump_speed[0] == pytest.approx(0.5)
    # the other caissons ran on, undisturbed
    assert model.it_power[1:] == pytest.approx([CAP, CAP])


def test_a_pump_fault_stays_tripped_after_the_drive_is_repaired_until_reset() -> None:
    model, supervisor = controlled_plant()
    delay = model.plcs.limits[Limit.TRIP_RESET_DELAY, 1]
    model.trip_pump(1)
    run_for(supervisor, 30)
    assert trips(model, 1) == Interlock.PUMP_FAULT_TRIP | Interlock.LOW_FLOW_TRIP
    reset(supervisor, 1)  # the drive still reports its fault
    assert trips(model, 1) == Interlock.PUMP_FAULT_TRIP | Interlock.LOW_FLOW_TRIP

    model.trip_pump(1, False)
    run_for(supervisor, 3 * delay)  # the pump runs again at full speed: low flow clears alone
    assert trips(model, 1) == Interlock.PUMP_FAULT_TRIP
    assert model.flow[1] > model.plcs.limits[Limit.LOW_FLOW, 1]
    assert model.it_power[1] == 0.0

    reset(supervisor, 1)  # flow already proven: IT power at once
    assert trips(model, 1) == Interlock(0)
    run_for(supervisor, 2)
    assert model.it_power[1] == pytest.approx(CAP)


def test_a_low_flow_trip_still_clears_on_its_own_after_the_reset_delay() -> None:
    model, supervisor = controlled_plant()
    delay = model.plcs.limits[Limit.TRIP_RESET_DELAY, 2]
    model.seize_pump(2)  # no fault signal: the PLC sees only the flow
    run_for(supervisor, 30)
    assert trips(model, 2) == Interlock.LOW_FLOW_TRIP
    model.seize_pump(2, False)
    run_for(supervisor, delay / 2)
    assert trips(model, 2) == Interlock.LOW_FLOW_TRIP
    run_for(supervisor, delay)
    assert trips(model, 2) == Interlock(0)
    run_for(supervisor, 2)
    assert model.it_power[2] == pytest.approx(CAP)


def test_a_scenario_resets_a_trip_when_the_engineer_would() -> None:
    """A scenario's `trip_reset` event: the pump trips and is repaired, and the caisson stays
    out until the reset; then it proves its flow and runs again."""
    run = scenario_run(
        site_config("demo"),
        duration="1 h",
        events=[
            {"at": "10 min", "kind": "pump_trip", "caisson": "c2", "duration": "5 min"},
            {"at": "30 min", "kind": "trip_reset", "caisson": "c2"},
        ],
    )
    model = run.model
    supervisor = RemoteSupervisor(model, 0.5, CAP)
    tripped_at_25_min = None
    while model.time < 3600:
        for action in run.schedule.get(model.step_index, ()):  # as ScenarioRun.step plays them
            action(model)
        supervisor.step()
        if model.time == 25 * 60:
            tripped_at_25_min = trips(model, 1)
    assert tripped_at_25_min == Interlock.PUMP_FAULT_TRIP  # repaired, not reset: still out
    assert trips(model, 1) == Interlock(0)
    assert model.it_power[1] == pytest.approx(CAP)

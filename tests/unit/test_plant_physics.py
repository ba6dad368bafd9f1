"""The plant model against the physics it claims (DOMAIN.md magnitudes, issue 2's checks)."""

from __future__ import annotations

import numpy as np
import pytest

from controller.water import VOLUMETRIC_HEAT
from simulators.plant.caissons import Param
from simulators.plant.loads import space_heating_curve
from simulators.plant.model import PlantModel
from simulators.plant.pipes import PlugFlowPipes
from simulators.plant.plc import Interlock, PlcMode
from tests.plant_helpers import RemoteSupervisor, scenario_run, site_config


def energy_imbalance(model: PlantModel, stored_at_start: float) -> float:
    """(in − out − Δstored) / in over the run so far."""
    t = model.totals
    energy_in = t.it + t.pumps + t.backup
    energy_out = t.reused + t.backup + t.dumped + t.room_losses + t.tank_losses
    return (energy_in - energy_out - (model.stored_heat() - stored_at_start)) / energy_in


@pytest.mark.parametrize(
    ("site", "fields"),
    [
        ("demo", {"weather": {"kind": "profile", "seed": 1}}),
        (
            "demo",
            {
                "weather": {"kind": "profile", "seed": 2},
                "events": [
                    {"at": "2 h", "kind": "pump_trip", "caisson": "c2", "duration": "30 min"},
                    {"at": "6 h", "kind": "leak", "caisson": "c1", "duration": "2 h"},
                    {
                        "at": "11 h",
                        "kind": "sensor_stuck",
                        "caisson": "c3",
                        "sensor": "outlet_temp",
                    },
                ],
            },
        ),
    ],
    ids=["winter-day", "faults"],
)
def test_energy_balance_closes_over_a_day(site: str, fields: dict[str, object]) -> None:
    run = scenario_run(site_config(site), duration="24 h", **fields)
    start = run.model.stored_heat()
    kpis = run.run()
    assert kpis.it_energy_kwh > 100  # the run did real work
    assert abs(energy_imbalance(run.model, start)) < 0.005


def big_tank_site():
    """The demo site with a tank so large that the caissons' inlet stays put: true steady state."""
    site = site_config("demo")
    tank = site.plant.buffer_tank.model_copy(update={"volume": 500.0})
    return site.model_copy(update={"plant": site.plant.model_copy(update={"buffer_tank": tank})})


def steady_state(pump_speed: float, cap: float) -> PlantModel:
    run = scenario_run(big_tank_site(), duration="1 h")
    supervisor = RemoteSupervisor(run.model, pump_speed, cap)
    for _ in range(1800):
        supervisor.step()
    assert (run.model.plcs.mode == PlcMode.REMOTE).all()
    return run.model


def test_steady_state_temperature_rise_is_captured_power_over_flow() -> None:
    model = steady_state(pump_speed=0.6, cap=15_000.0)
    p = model.params
    rise = model.water - model.inlet
    expected = (p[Param.HEAT_CAPTURE] * model.it_power + model.pump_power) / (
        VOLUMETRIC_HEAT * model.flow
    )
    assert model.it_power == pytest.approx(15_000.0)
    np.testing.assert_allclose(rise, expected, atol=0.1)
    # and DOMAIN.md's rule of thumb, kW = ΔT × L/min / 14.4 (it takes ρ = 1000 kg/m³: 1.7 % off)
    litres_per_min = model.flow * 60_000
    np.testing.assert_allclose(rise * litres_per_min / 14.4, 0.94 * 15.0, rtol=0.02)


def test_doubling_the_flow_halves_the_temperature_rise() -> None:
    slow = steady_state(pump_speed=0.4, cap=12_000.0)
    fast = steady_state(pump_speed=0.8, cap=12_000.0)
    ratio = (slow.water - slow.inlet) / (fast.water - fast.inlet)
    np.testing.assert_allclose(ratio, 2.0, rtol=0.02)  # pump heat is the small difference


@pytest.mark.parametrize("litres_per_min", [10.0, 20.0, 35.0])
def test_transport_delay_is_pipe_volume_over_flow(litres_per_min: float) -> None:
    volume = 0.0106  # m³: 20 m of DN25
    flow = litres_per_min / 60_000
    pipes = PlugFlowPipes(np.array([volume]), np.array([40.0]))
    step_at = 5
    outlet = []
    for k in range(400):
        inlet = 60.0 if k >= step_at else 40.0
        outlet.append(pipes.advance(np.array([inlet]), np.array([flow]))[0])
    arrival = int(np.argmax(np.array(outlet) > 50.0))  # the front's middle
    assert arrival == pytest.approx(step_at + volume / flow, abs=1.0)
    assert max(outlet) == pytest.approx(60.0)  # plug flow: the front arrives unmixed
    assert outlet[-1] == pytest.approx(60.0)


def test_transport_delay_follows_a_changing_flow() -> None:
    """The front leaves when the volume pushed since it entered equals the pipe's volume."""
    volume = 0.01
    pipes = PlugFlowPipes(np.array([volume]), np.array([40.0]))
    flows = np.where(np.arange(600) < 60, 5e-4, 1e-4)  # 30 L/min, then 6 L/min
    pushed_since_front = np.cumsum(flows)  # the front enters at step 0
    outlet = [pipes.advance(np.array([60.0]), np.array([q]))[0] for q in flows]
    arrival = int(np.argmax(np.array(outlet) > 50.0))
    expected = int(np.argmax(pushed_since_front >= volume))
    assert abs(arrival - expected) <= 1


def test_a_seized_pump_loses_its_it_power_at_once_and_trips_after_the_low_flow_delay() -> None:
    """Proof of flow: the PLC cuts IT power at its first scan without flow (it reads the step
    before's flow), so the water barely warms; the low-flow trip follows after its delay."""
    model = steady_state(pump_speed=0.6, cap=20_000.0)
    supervisor = RemoteSupervisor(model, 0.6, 20_000.0)
    supervisor.beats = 10_000
    p = model.params
    delay = model.plcs.limits[4, 0]  # low_flow_delay
    model.seize_pump(0)
    before = model.water[0]
    temps, powers = [], []
    for _ in range(int(delay) + 30):
        supervisor.step()
        temps.append(model.water[0])
        powers.append(model.it_power[0])
    assert powers[0] == 20_000.0  # the step the pump seized in
    assert all(power == 0.0 for power in powers[1:])
    # One step of captured heat and the pump's, no more.
    assert temps[-1] - before == pytest.approx(
        p[Param.HEAT_CAPTURE, 0] * 20_000.0 / p[Param.CAPACITY, 0], rel=0.05
    )
    assert model.plcs.interlocks[0] & Interlock.LOW_FLOW_TRIP
    assert model.plcs.trips == 1
    # The other caissons were never disturbed.
    assert (model.it_power[1:] == 20_000.0).all()


def test_plc_falls_back_to_local_safe_when_the_lease_lapses_and_needs_an_explicit_request() -> None:
    run = scenario_run(site_config("demo"), duration="10 min")
    model = run.model
    supervisor = RemoteSupervisor(model, 0.5, 18_000.0)
    for _ in range(60):
        supervisor.step()
    assert (model.plcs.mode == PlcMode.REMOTE).all()
    assert model.it_power == pytest.approx(np.full(3, 18_000.0))
    timeout = model.plcs.limits[8, 0]
    for _ in range(int(timeout) + 2):  # the supervisor dies: nothing is written any more
        model.step()
    assert (model.plcs.mode == PlcMode.LOCAL_SAFE).all()
    assert (model.plcs.interlocks & Interlock.LOCAL_SAFE).all()
    for _ in range(30):
        model.step()
    safe_cap = site_config("demo").caisson_types["cabinet-20kw"].plc.safe_cap
    assert model.it_power == pytest.approx(np.full(3, safe_cap))
    assert model.pump_speed == pytest.approx(np.full(3, 0.9))
    # Renewed writes alone do not bring it back: the supervisor must ask for remote control.
    for i in range(3):
        model.commands.write(i, model.time, pump_speed=0.5, plc_cap=18_000.0, heartbeat=99_999)
    model.step()
    assert (model.plcs.mode == PlcMode.LOCAL_SAFE).all()
    model.commands.remote_request[:] = True
    model.step()
    assert (model.plcs.mode == PlcMode.REMOTE).all()


@pytest.mark.parametrize(("outdoor", "curve"), [(-10.0, 70.0), (0.0, 51.0), (10.0, 27.0)])
def test_space_heating_supply_follows_the_heating_curve(outdoor: float, curve: float) -> None:
    run = scenario_run(
        site_config("demo"),
        duration="2 h",
        weather={"kind": "constant", "temperature": f"{outdoor} degC"},
    )
    run.run()
    supply = run.model.space_heating_supply()
    assert supply is not None
    assert supply == pytest.approx(curve, abs=1.0)


def test_pool_demand_jumps_at_the_refill() -> None:
    run = scenario_run(
        site_config("pool"),
        start="2026-04-20T00:00:00+02:00",
        duration="6 h",
        weather={"kind": "constant", "temperature": "12 degC"},
        events=[{"at": "3 h", "kind": "drain_and_refill"}],
    )
    model = run.model
    pool = model.site.loads.pool
    assert pool is not None
    before = []
    while model.step_index < 3 * 3600:
        run.step()
        before.append(model.flows.demand)
    run.step()
    after = model.flows.demand
    assert max(before) < 0.5 * pool.heat_exchanger_capacity
    assert (
        after >= pool.heat_exchanger_capacity
    )  # the pool alone asks for all its exchanger can give
    assert model.pool is not None
    assert model.pool.temperature == pytest.approx(pool.makeup_water, abs=0.5)


def test_heating_curve_matches_every_point_given_in_domain_md() -> None:
    heating = site_config("demo").loads.space_heating
    assert heating is not None
    outdoor = np.array([-15.0, -10.0, -7.0, 0.0, 5.0, 10.0, 12.0, 20.0])
    curve = space_heating_curve(heating, outdoor)
    np.testing.assert_allclose(curve.supply[:6], [79, 70, 64, 51, 40, 27], atol=1.0)
    assert curve.load_ratio[1] == pytest.approx(1.0)  # design load at the design temperature
    np.testing.assert_allclose(curve.load_ratio[6:], 0.0)  # no load above the heating limit
    np.testing.assert_allclose(curve.supply[1] - curve.ret[1], 15.0)  # 70/55 at design

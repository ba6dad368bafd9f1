"""The caisson PLC's pump sequence and loading unit, and the plant PLC's dry cooler limit, on the
plant model: standby only when asked and idle, proof of flow before IT power, the check valve, the
loading unit's loop, the return limit's lease and hard band, and every lease lapsing to the PLC's
own defaults."""

from __future__ import annotations

import numpy as np
import pytest

from controller.config.loader import load_site
from controller.control.supervisor import Supervisor
from controller.water import VOLUMETRIC_HEAT
from simulators.closed_loop import InProcessField
from simulators.plant.caissons import Param
from simulators.plant.model import PlantModel
from simulators.plant.plc import Interlock, Limit, PlcMode
from simulators.plant.sensors import FaultKind, Sensor
from tests.plant_helpers import SITES, RemoteSupervisor, scenario_run, site_config, with_tank

NOMINAL = 20_000.0
POST_RUN = 60.0  # s, the bundled caisson type's
FLOW_PROOF = 5.0  # s


def plant(tank_temperature: float = 55.0, hours: float = 2.0) -> PlantModel:
    """The demo plant with a tank so large that the caissons' return stays put."""
    site = with_tank(site_config("demo"), volume=500.0, initial_temperature=tank_temperature)
    return scenario_run(site, duration=f"{hours} h").model


def remote(model: PlantModel, cap: float = NOMINAL, speed: float = 0.6) -> RemoteSupervisor:
    supervisor = RemoteSupervisor(model, speed, cap)
    supervisor.cap = NOMINAL  # the compute managers' cap: the PLCs' caps are the test's
    supervisor.run(30)
    assert (model.plcs.mode == PlcMode.REMOTE).all()
    return supervisor


def stand_by(supervisor: RemoteSupervisor, caisson: int, seconds: float = POST_RUN + 10) -> None:
    """Cap 0 and the standby request for `caisson`, and time for its PLC to stop the pump."""
    supervisor.caps[caisson] = 0.0
    supervisor.model.commands.standby_request[caisson] = True
    supervisor.run(seconds)
    assert supervisor.model.plcs.standby[caisson]


def test_the_pump_stops_only_when_asked_with_its_cap_at_zero_after_the_post_run() -> None:
    model = plant()
    supervisor = remote(model)
    model.commands.standby_request[0] = True  # asked, but the servers still run: no stop
    supervisor.run(120)
    assert not model.plcs.standby[0]
    assert model.flow[0] > 0
    assert model.it_power[0] == NOMINAL
    supervisor.caps[0] = 0.0  # idle now: it stops once its servers have idled the post-run time
    supervisor.run(POST_RUN - 1)
    assert not model.plcs.standby[0]
    assert model.flow[0] > 0
    supervisor.run(2)
    assert model.plcs.standby[0]
    supervisor.run(4)  # the drive ramps down
    assert model.pump_speed[0] == 0.0
    assert model.flow[0] == 0.0
    supervisor.caps[1] = 0.0  # idle, but nobody asked for standby: the pump runs on
    supervisor.run(300)
    assert not model.plcs.standby[1]
    assert model.flow[1] > 0
    assert not model.plcs.interlocks.any()  # a pump stopped on request is no low-flow trip


def test_a_stopped_caisson_sends_nothing_to_the_header_its_check_valve_shut() -> None:
    model = plant()
    supervisor = remote(model)
    stand_by(supervisor, 0)
    stored = model.pipes.stored().copy()
    supervisor.run(300)
    assert model.header_flow[0] == 0.0
    assert model.flows.source_flow == pytest.approx(model.header_flow[1:].sum())
    # Its two pipes hold their water; the header is the two others' mix.
    count = len(model.ids)
    assert model.pipes.stored()[[0, count]] == pytest.approx(stored[[0, count]])
    mixed = float(model.header_flow[1:] @ model.pipes.outlet[count + 1 :]) / float(
        model.header_flow[1:].sum()
    )
    assert model.flows.supply_header == pytest.approx(mixed)


def test_it_power_waits_for_the_flow_to_be_proven_whatever_is_written() -> None:
    model = plant()
    supervisor = remote(model)
    stand_by(supervisor, 0)
    # A cap above 0 starts it although the request is still set: the pump first.
    supervisor.caps[0] = NOMINAL
    powers, flows = [], []
    for _ in range(15):
        supervisor.step()
        powers.append(model.it_power[0])
        flows.append(model.flow[0])
    low_flow = model.plcs.limits[Limit.LOW_FLOW, 0]
    first_flow = next(k for k, flow in enumerate(flows) if flow >= low_flow)
    first_power = next(k for k, power in enumerate(powers) if power > 0)
    assert first_power - first_flow >= FLOW_PROOF
    assert all(power == 0.0 for power in powers[:first_power])
    assert model.it_power[0] == NOMINAL
    assert not model.plcs.standby[0]
    assert model.totals.it_without_flow_steps == 0


def test_the_pump_restarts_at_its_safe_speed_when_the_supervisor_goes_silent() -> None:
    model = plant()
    supervisor = remote(model)
    stand_by(supervisor, 0)
    timeout = model.plcs.limits[Limit.LEASE_TIMEOUT, 0]
    for _ in range(round(timeout + FLOW_PROOF) + 10):  # nobody writes any more
        model.step()
    assert model.plcs.mode[0] == PlcMode.LOCAL_SAFE
    assert not model.plcs.standby[0]
    assert model.pump_speed[0] == pytest.approx(model.plcs.limits[Limit.SAFE_SPEED, 0])
    assert model.it_power[0] == pytest.approx(model.plcs.limits[Limit.SAFE_CAP, 0])


def test_the_loading_unit_lifts_a_cold_return_to_the_outlet_at_part_load() -> None:
    """40 °C return, 8 kW, the pump at its minimum speed: without the unit the outlet would be
    40 + 9 = 49 °C; the valve recirculates the outlet until the inlet holds its setpoint, and the
    outlet is the setpoint plus the rise."""
    model = plant(tank_temperature=40.0)
    supervisor = remote(model, cap=8_000.0, speed=0.3)
    p = model.params
    flow = 0.3 * p[Param.MAX_FLOW, 0]
    rise = (p[Param.HEAT_CAPTURE, 0] * 8_000.0 + p[Param.PUMP_POWER, 0] * 0.3**3) / (
        VOLUMETRIC_HEAT * flow
    )
    supervisor.inlet = 65.0 - rise
    supervisor.run(3600)
    np.testing.assert_allclose(model.inlet, 65.0 - rise, atol=0.05)
    np.testing.assert_allclose(model.water, 65.0, atol=0.1)
    # The share drawn from the header carries the heat away: ρc·x·q·(T_out − T_return) = η·P.
    carried = VOLUMETRIC_HEAT * model.header_flow * (model.water - model.return_in)
    np.testing.assert_allclose(carried, p[Param.HEAT_CAPTURE] * 8_000.0, rtol=0.02)
    assert (model.plcs.valve > 0.2).all()
    assert (model.plcs.valve < 0.5).all()
    assert model.flows.supply_header == pytest.approx(65.0, abs=0.1)


def test_the_loading_unit_recirculates_while_the_pump_proves_and_lapses_to_its_default() -> None:
    model = plant(tank_temperature=40.0)
    supervisor = remote(model, cap=8_000.0, speed=0.3)
    supervisor.caps[0] = 0.0
    model.commands.standby_request[0] = True
    supervisor.run(POST_RUN + 60)
    assert model.plcs.standby[0]
    assert model.plcs.valve[0] == 0.0
    model.commands.standby_request[0] = False
    supervisor.caps[0] = 8_000.0
    supervisor.run(FLOW_PROOF)
    assert model.plcs.valve[0] == 0.0
    assert model.header_flow[0] == 0.0
    # With no inlet setpoint written, the PLC holds its own default (the site's 55 °C).
    supervisor.run(1800)
    assert model.plcs.inlet_setpoint[0] == 55.0
    assert model.inlet[0] == pytest.approx(55.0, abs=0.1)
    supervisor.inlet = 50.0
    supervisor.run(600)
    assert model.plcs.inlet_setpoint[0] == 50.0
    assert model.inlet[0] == pytest.approx(50.0, abs=0.1)
    timeout = model.plcs.limits[Limit.LEASE_TIMEOUT, 0]
    supervisor.inlet = None  # the lease is no longer renewed: back to the default
    supervisor.run(timeout + 1)
    assert model.plcs.inlet_setpoint[0] == 55.0


def test_the_loading_unit_opens_to_the_header_on_an_over_temperature_trip() -> None:
    model = plant(tank_temperature=40.0)
    supervisor = remote(model, cap=8_000.0, speed=0.3)
    supervisor.inlet = 60.0
    supervisor.run(1200)
    assert model.plcs.valve[0] < 0.5
    model.fault_sensor(Sensor.OUTLET, 0, FaultKind.SENTINEL)
    supervisor.run(60)  # a failed outlet sensor trips the PLC and opens the valve
    assert model.plcs.interlocks[0] & Interlock.OVERTEMP_TRIP
    assert model.plcs.valve[0] == 1.0
    assert model.it_power[0] == 0.0


def test_the_dry_cooler_return_limit_is_a_lease_within_the_plcs_hard_band() -> None:
    model = plant(hours=1)
    cooler = model.site.plant.dry_cooler
    assert (cooler.return_limit, cooler.hard_limit) == (60.0, 67.0)
    model.step()
    assert model.flows.return_limit == 60.0  # nobody asked: the PLC's default
    model.plant_commands.write(model.time, return_limit=64.0)
    model.step()
    assert model.flows.return_limit == 64.0
    model.plant_commands.write(model.time, return_limit=75.0)  # beyond the band: clamped
    model.step()
    assert model.flows.return_limit == 67.0
    model.plant_commands.write(model.time, return_limit=50.0)  # more cooling is allowed
    model.step()
    assert model.flows.return_limit == 50.0
    for _ in range(round(model.plant_commands.lease) + 1):
        model.step()
    assert model.flows.return_limit == 60.0  # the lease lapsed


def test_the_thermostat_cools_the_return_to_its_limit_and_counts_safety_at_the_hard_limit() -> None:
    """A return hotter than the limit in force is cooled to it; at the hard limit that is the
    caissons' safety, counted apart when the backup boiler fires meanwhile."""
    model = plant(tank_temperature=68.0, hours=1)
    supervisor = remote(model, cap=5_000.0)
    assert model.flows.return_header == pytest.approx(60.0, abs=0.05)
    assert model.flows.dumped_heat > 0
    assert model.flows.dumped_safety == 0.0
    model.plant_commands.write(model.time, return_limit=67.0)
    supervisor.run(5)
    model.plant_commands.write(model.time, return_limit=67.0)
    assert model.flows.return_header == pytest.approx(67.0, abs=0.05)
    assert model.flows.dumped_safety == model.flows.dumped_heat > 0


def test_energy_balance_closes_with_stops_starts_and_loading_units() -> None:
    """A summer day's six hours under the supervisor: caissons stopping, starting, recirculating
    on their loading units. In = out + Δstored to rounding."""
    site = load_site(SITES / "demo.yaml")
    run = scenario_run(
        site.config,
        start="2026-07-15T00:00:00+02:00",
        duration="6 h",
        weather={"kind": "constant", "temperature": "22 degC"},
    )
    model = run.model
    supervisor = Supervisor(site)
    field = InProcessField(run, site, supervisor.reader.refs)
    start = model.stored_heat()
    starts = 0
    running = model.plcs.standby.copy()
    while model.step_index < run.scenario.steps:
        run.step()
        for write in supervisor.scan(field.snapshot(), model.time).writes:
            if field.write(write):
                supervisor.confirm(write, model.time)
        starts += int(np.sum(running & ~model.plcs.standby))
        running = model.plcs.standby.copy()
    assert model.plcs.standby.any()  # some caissons stand by
    assert model.totals.it > 0
    t = model.totals
    energy_in = t.it + t.pumps + t.backup
    energy_out = t.reused + t.backup + t.dumped + t.room_losses + t.tank_losses
    assert (energy_in - energy_out - (model.stored_heat() - start)) / energy_in == pytest.approx(
        0.0, abs=1e-9
    )

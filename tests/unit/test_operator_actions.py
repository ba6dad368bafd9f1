"""An engineer's actions on a running plant: overrides within limits, leases that expire, control
modes (auto, manual, maintenance) per caisson and for the plant, setpoints within limits.

The supervisor runs the demo plant's model in-process (one scan per plant second, its writes
landing on the simulated PLCs), so what is asserted is what the plant is told to do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from controller.config.loader import LoadedSite, load_site
from controller.config.site import Control
from controller.control.dispatch import Mode
from controller.control.interlocks import Interlock
from controller.control.operator import (
    PLANT,
    SETPOINTS,
    ControlMode,
    check_override,
    override_limits,
)
from controller.control.supervisor import (
    JOB_HEADROOM,
    CaissonStatus,
    Override,
    PlantStatus,
    Supervisor,
)
from controller.fieldbus.image import PointRef, Sample
from simulators.closed_loop import InProcessField
from simulators.plant.model import PlantModel
from tests.plant_helpers import SITES, scenario_run

Tamper = Callable[[dict[PointRef, Sample]], None]

C1_PUMP = PointRef("c1-skid", "pump_speed_cmd")
C2_PUMP = PointRef("c2-skid", "pump_speed_cmd")
C2_CAP = PointRef("c2-skid", "it_cap_cmd")
C2_COMPUTE_CAP = PointRef("c2-compute", "power_cap")
C2_LEASE = PointRef("c2-skid", "lease_timeout")
VALVE = PointRef("plant-skid", "dry_cooler_valve_cmd")
FAN = PointRef("plant-skid", "dry_cooler_fan_cmd")
BACKUP = PointRef("plant-skid", "backup_enable")
NOMINAL = 20e3  # W: the demo's cabinet-20kw
MIN_SPEED = 0.3  # its pump's min_speed (30 %)


class Plant:
    """The demo plant (model in-process) run by a supervisor, one scan per plant second."""

    def __init__(self, control: dict[str, Any] | None = None, **scenario: Any) -> None:
        site = load_site(SITES / "demo.yaml")
        if control is not None:
            config = site.config.model_copy(update={"control": Control.model_validate(control)})
            site = replace(site, config=config)
        self.site: LoadedSite = site
        scenario.setdefault("duration", "2 h")
        self.run = scenario_run(site.config, **scenario)
        self.supervisor = Supervisor(site)
        self.field = InProcessField(self.run, site, self.supervisor.reader.refs)
        self.status: PlantStatus | None = None

    @property
    def model(self) -> PlantModel:
        return self.run.model

    @property
    def now(self) -> float:
        return self.model.time

    def step(self, count: int = 1, tamper: Tamper | None = None) -> None:
        for _ in range(count):
            self.run.step()
            snapshot = self.field.snapshot()
            if tamper is not None:
                tamper(snapshot)
            result = self.supervisor.scan(snapshot, self.now)
            for write in result.writes:
                self.field.write(write)
                self.supervisor.confirm(write, self.now)
            self.status = result.status

    def caisson(self, caisson_id: str) -> CaissonStatus:
        assert self.status is not None
        return next(c for c in self.status.caissons if c.id == caisson_id)

    def plan_caps(self) -> dict[int, float]:
        plan = self.supervisor.last_plan
        assert plan is not None
        return dict(plan.caps)

    def plan_dry_cooler(self) -> float:
        plan = self.supervisor.last_plan
        assert plan is not None
        return plan.dry_cooler


def started(**scenario: Any) -> Plant:
    """The demo plant five minutes in: every caisson in remote mode, dispatched at full power
    (a cold January night, the tank charging)."""
    plant = Plant(**scenario)
    plant.step(300)
    assert [c.plc_mode for c in plant.status.caissons] == [1, 1, 1]  # type: ignore[union-attr]
    assert plant.plan_caps() == pytest.approx({0: NOMINAL, 1: NOMINAL, 2: NOMINAL})
    return plant


# ---------------------------------------------------------------- override limits


def test_override_limits_come_from_the_maps_in_si_units() -> None:
    plant = Plant()
    site, writable = plant.site, frozenset(plant.supervisor.specs)
    pump = override_limits(site, C1_PUMP, writable)
    assert (pump.unit, pump.factor, pump.boolean) == ("%", 0.01, False)
    assert (pump.low, pump.high) == pytest.approx((MIN_SPEED, 1.0))  # never below min speed
    cap = override_limits(site, C2_CAP, writable)
    assert (cap.unit, cap.factor, cap.boolean) == ("kW", 1000.0, False)
    assert (cap.low, cap.high) == pytest.approx((0.0, 25e3))  # the map's 0..25 kW
    compute = override_limits(site, C2_COMPUTE_CAP, writable)
    assert (compute.unit, compute.low, compute.high) == ("kW", 0.0, pytest.approx(25e3))
    valve = override_limits(site, VALVE, writable)
    assert (valve.low, valve.high) == pytest.approx((0.0, 1.0))
    backup = override_limits(site, BACKUP, writable)
    assert backup.boolean
    assert check_override(pump, C1_PUMP, 0.45) == 0.45
    with pytest.raises(ValueError, match=r"c1-skid\.pump_speed_cmd: 29 % is outside 30\.\.100 %"):
        check_override(pump, C1_PUMP, 0.29)


REFUSED_OVERRIDES = [
    (C2_PUMP, 0.29, r"c2-skid\.pump_speed_cmd: 29 % is outside 30\.\.100 %"),
    (C2_PUMP, 0.0, r"outside 30\.\.100 %"),  # a stopped pump: the dangerous direction
    (C2_PUMP, 1.01, r"101 % is outside 30\.\.100 %"),
    (C2_CAP, 26e3, r"c2-skid\.it_cap_cmd: 26 kW is outside 0\.\.25 kW"),
    (C2_CAP, -1e3, r"-1 kW is outside 0\.\.25 kW"),
    (C2_COMPUTE_CAP, 30e3, r"c2-compute\.power_cap: 30 kW is outside 0\.\.25 kW"),
    (VALVE, 1.5, r"150 % is outside 0\.\.100 %"),
    (BACKUP, 0.5, r"plant-skid\.backup_enable: 0\.5 is not a boolean"),
    (BACKUP, 2.0, r"not a boolean"),
    (C2_LEASE, 30.0, r"c2-skid\.lease_timeout is not a point an operator can override"),
    (PointRef("c2-skid", "heartbeat"), 1.0, r"not a point an operator can override"),
    (PointRef("c2-skid", "outlet_temp"), 60.0, r"not a point an operator can override"),
    (PointRef("c9-skid", "pump_speed_cmd"), 0.5, r"not a point an operator can override"),
]


@pytest.fixture(scope="module")
def demo_site() -> LoadedSite:
    return load_site(SITES / "demo.yaml")


@pytest.mark.parametrize(("ref", "value", "message"), REFUSED_OVERRIDES, ids=lambda v: str(v)[:24])
def test_an_override_outside_its_limits_is_refused_in_one_line(
    demo_site: LoadedSite, ref: PointRef, value: float, message: str
) -> None:
    supervisor = Supervisor(demo_site)
    held = supervisor.set_override(C2_PUMP, 0.5, until=600.0, who="alice")
    assert held is None
    with pytest.raises(ValueError, match=message) as refused:
        supervisor.set_override(ref, value, until=900.0, who="mallory")
    assert "\n" not in str(refused.value)
    assert supervisor.overrides == {C2_PUMP: Override(0.5, 600.0, "alice")}  # nothing changed


def test_a_refused_override_changes_nothing_on_the_plant() -> None:
    plant = started()
    plant.supervisor.set_override(C2_PUMP, 0.5, until=plant.now + 600, who="alice")
    for ref, value, message in REFUSED_OVERRIDES:
        with pytest.raises(ValueError, match=message):
            plant.supervisor.set_override(ref, value, until=plant.now + 600, who="mallory")
    plant.step(30)
    assert set(plant.supervisor.overrides) == {C2_PUMP}
    assert plant.model.commands.pump_speed[1] == pytest.approx(0.5)  # alice's
    assert list(plant.model.commands.plc_cap) == pytest.approx([NOMINAL] * 3)  # dispatch's
    assert list(plant.model.commands.compute_cap) == pytest.approx([NOMINAL] * 3)
    assert plant.model.plant_commands.backup_enable


def test_the_lease_timeout_names_the_points_that_can_be_overridden() -> None:
    plant = Plant()
    with pytest.raises(ValueError, match="not a point an operator can override") as refused:
        plant.supervisor.set_override(C2_LEASE, 30.0, until=600.0, who="mallory")
    choices = str(refused.value).split("those are: ", 1)[1]
    assert "c2-skid.pump_speed_cmd" in choices
    assert "plant-skid.backup_enable" in choices
    assert "lease_timeout" not in choices
    assert "heartbeat" not in choices


def test_boolean_and_unit_converted_overrides_reach_the_plant() -> None:
    plant = started()
    until = plant.now + 600
    plant.supervisor.set_override(BACKUP, 0.0, until=until, who="alice")
    plant.supervisor.set_override(C2_CAP, 12.5e3, until=until, who="alice")  # 12.5 kW, in W
    plant.supervisor.set_override(C1_PUMP, 0.8, until=until, who="alice")  # 80 %, a fraction
    plant.step(20)
    assert not plant.model.plant_commands.backup_enable
    assert plant.model.commands.plc_cap[1] == pytest.approx(12.5e3)
    assert plant.caisson("c2").cap == pytest.approx(12.5e3)
    assert plant.model.commands.pump_speed[0] == pytest.approx(0.8)
    assert plant.caisson("c1").pump_speed == pytest.approx(0.8)


# ---------------------------------------------------------------- two overrides, expiry


def test_the_later_of_two_overrides_on_a_point_wins() -> None:
    plant = started()
    alice_until = plant.now + 600
    assert plant.supervisor.set_override(C2_CAP, 5e3, until=alice_until, who="alice") is None
    plant.step(10)
    assert plant.model.commands.plc_cap[1] == pytest.approx(5e3)
    bob_until = plant.now + 300  # shorter: the later one still wins
    replaced = plant.supervisor.set_override(C2_CAP, 8e3, until=bob_until, who="bob")
    assert replaced == Override(5e3, alice_until, "alice")
    plant.step(10)
    assert plant.model.commands.plc_cap[1] == pytest.approx(8e3)
    assert plant.supervisor.overrides == {C2_CAP: Override(8e3, bob_until, "bob")}
    assert plant.supervisor.clear_override(C2_CAP) == Override(8e3, bob_until, "bob")
    assert plant.supervisor.clear_override(C2_CAP) is None


def test_an_expired_override_is_listed_once_and_automatic_control_resumes() -> None:
    plant = started()
    until = plant.now + 30
    plant.supervisor.set_override(C2_CAP, 5e3, until=until, who="alice")
    expired: list[tuple[float, list[tuple[PointRef, Override]]]] = []
    while plant.now < until + 20:
        plant.step()
        if plant.supervisor.expired:
            expired.append((plant.now, list(plant.supervisor.expired)))
        if plant.now < until:
            assert plant.model.commands.plc_cap[1] == pytest.approx(5e3)
    assert expired == [(pytest.approx(until), [(C2_CAP, Override(5e3, until, "alice"))])]
    assert C2_CAP not in plant.supervisor.overrides
    # Back to the dispatch's cap (rate-limited on the way up: 2 kW/s).
    assert plant.plan_caps()[1] == pytest.approx(NOMINAL)
    assert plant.caisson("c2").cap == pytest.approx(NOMINAL)
    assert plant.model.commands.plc_cap[1] == pytest.approx(NOMINAL)


# ---------------------------------------------------------------- maintenance


def test_a_caisson_in_maintenance_is_locked_out_then_returns_to_dispatch() -> None:
    plant = started()
    assert plant.supervisor.set_mode("c2", ControlMode.MAINTENANCE) is ControlMode.AUTO
    assert plant.supervisor.mode_of("c2") is ControlMode.MAINTENANCE
    plant.step(3)
    c2 = plant.caisson("c2")
    assert (c2.locked_out, c2.mode, c2.cap, c2.running) == (
        True,
        ControlMode.MAINTENANCE,
        0.0,
        False,
    )
    assert Interlock.LOCKOUT in c2.interlocks
    assert plant.model.commands.plc_cap[1] == 0.0
    assert plant.model.commands.compute_cap[1] == 0.0
    assert 1 not in plant.plan_caps()
    assert plant.model.commands.pump_speed[1] >= MIN_SPEED  # the pump is never stopped
    plant.step(60)  # it stays out
    assert plant.model.commands.plc_cap[1] == 0.0
    assert 1 not in plant.plan_caps()
    assert not plant.caisson("c1").locked_out
    assert plant.model.commands.plc_cap[0] == pytest.approx(NOMINAL)

    assert plant.supervisor.set_mode("c2", ControlMode.AUTO) is ControlMode.MAINTENANCE
    plant.step(30)
    c2 = plant.caisson("c2")
    assert (c2.locked_out, c2.mode, c2.running) == (False, ControlMode.AUTO, True)
    assert Interlock.LOCKOUT not in c2.interlocks
    assert plant.plan_caps()[1] == pytest.approx(NOMINAL)
    assert plant.model.commands.plc_cap[1] == pytest.approx(NOMINAL)


def test_a_lockout_of_the_site_file_cannot_be_lifted() -> None:
    plant = Plant(control={"lockout": ["c3"]})
    plant.step(300)
    c3 = plant.caisson("c3")
    assert c3.locked_out
    assert plant.model.commands.plc_cap[2] == 0.0
    for mode in (ControlMode.AUTO, ControlMode.MANUAL):
        with pytest.raises(ValueError, match=r"c3 is locked out by the site file .*demo\.yaml"):
            plant.supervisor.set_mode("c3", mode)
    assert plant.supervisor.mode_of("c3") is c3.mode is ControlMode.AUTO  # as it was
    plant.step(30)
    after = plant.caisson("c3")
    assert (after.locked_out, after.mode, after.cap, after.running) == (
        True,
        ControlMode.AUTO,
        0.0,
        False,
    )
    assert 2 not in plant.plan_caps()
    assert plant.model.commands.plc_cap[2] == 0.0
    # Maintenance on top of it is allowed (it changes nothing the plant sees).
    plant.supervisor.set_mode("c3", ControlMode.MAINTENANCE)
    plant.step()
    assert plant.caisson("c3").locked_out


def test_unknown_targets_are_named() -> None:
    plant = Plant()
    with pytest.raises(KeyError, match=r"no caisson 'c9' \(there are c1, c2, c3, plant\)"):
        plant.supervisor.set_mode("c9", ControlMode.MAINTENANCE)
    with pytest.raises(KeyError):
        plant.supervisor.mode_of("c9")
    assert [plant.supervisor.mode_of(t) for t in ("c1", "c2", "c3", PLANT)] == [
        ControlMode.AUTO
    ] * 4


def test_the_plant_in_maintenance_locks_out_every_caisson() -> None:
    plant = started()
    assert plant.supervisor.set_mode(PLANT, ControlMode.MAINTENANCE) is ControlMode.AUTO
    plant.step(5)
    assert plant.status is not None
    assert plant.status.control_mode is ControlMode.MAINTENANCE
    for c in plant.status.caissons:
        assert c.locked_out, c
        assert c.mode is ControlMode.AUTO  # their own modes are untouched
        assert c.cap == 0.0
        assert Interlock.LOCKOUT in c.interlocks
    assert plant.plan_caps() == {}
    assert list(plant.model.commands.plc_cap) == [0.0, 0.0, 0.0]
    assert all(speed >= MIN_SPEED for speed in plant.model.commands.pump_speed)

    plant.supervisor.set_mode(PLANT, ControlMode.AUTO)
    plant.step(30)
    assert not any(c.locked_out for c in plant.status.caissons)
    assert list(plant.model.commands.plc_cap) == pytest.approx([NOMINAL] * 3)


# ---------------------------------------------------------------- manual


def test_a_caisson_in_manual_holds_its_outputs_while_dispatch_moves_the_others() -> None:
    # At 10 min the compute jobs fall to 40 % of the caissons' power: dispatch caps them at 8 kW.
    plant = started(events=[{"kind": "demand_step", "at": "10 min", "level": 0.4}])
    assert plant.supervisor.set_mode("c2", ControlMode.MANUAL) is ControlMode.AUTO
    plant.step()
    # Held at the commanded values (the plant got them to within the deadband: 0.5 % speed).
    held_speed, held_cap = plant.caisson("c2").pump_speed, plant.caisson("c2").cap
    assert held_speed is not None
    assert held_cap == pytest.approx(NOMINAL)
    plant.step(600)
    jobs = 8e3 * JOB_HEADROOM  # the jobs' power and their chips' leakage
    assert plant.plan_caps() == pytest.approx({0: jobs, 2: jobs})  # c2 is out of dispatch
    assert plant.model.commands.plc_cap[0] == pytest.approx(jobs)
    c2 = plant.caisson("c2")
    assert (c2.mode, c2.locked_out, c2.running) == (ControlMode.MANUAL, False, False)
    assert plant.model.commands.plc_cap[1] == pytest.approx(held_cap)
    assert plant.model.commands.compute_cap[1] == pytest.approx(held_cap)
    assert c2.pump_speed == pytest.approx(held_speed)
    assert plant.model.commands.pump_speed[1] == pytest.approx(held_speed, abs=0.005)
    # The others' loops slowed their pumps as their power fell; c2's did not move.
    assert plant.model.commands.pump_speed[0] < held_speed - 0.05

    # An override moves a held output, and it stays there once the override ends.
    plant.supervisor.set_override(C2_PUMP, 0.6, until=plant.now + 30, who="alice")
    plant.supervisor.set_override(C2_CAP, 15e3, until=plant.now + 30, who="alice")
    plant.step(60)
    assert plant.model.commands.pump_speed[1] == pytest.approx(0.6)
    assert plant.model.commands.plc_cap[1] == pytest.approx(15e3)
    assert plant.supervisor.overrides == {}

    # Back to automatic: c2 rejoins dispatch.
    plant.supervisor.set_mode("c2", ControlMode.AUTO)
    plant.step(30)
    assert plant.plan_caps()[1] == pytest.approx(jobs)
    assert plant.model.commands.plc_cap[1] == pytest.approx(jobs)


def test_the_interlocks_still_act_on_a_caisson_in_manual() -> None:
    plant = started()
    plant.supervisor.set_mode("c2", ControlMode.MANUAL)
    plant.step(10)
    assert plant.model.commands.plc_cap[1] == pytest.approx(NOMINAL)
    plant.model.trip_pump(1, True)
    plant.step(10)
    c2 = plant.caisson("c2")
    assert Interlock.PUMP_FAULT in c2.interlocks
    assert plant.model.commands.plc_cap[1] == 0.0
    assert plant.model.commands.compute_cap[1] == 0.0
    assert plant.model.commands.pump_speed[1] == pytest.approx(1.0)  # full speed asked
    # Even an operator's override cannot lift the interlock.
    plant.supervisor.set_override(C2_CAP, 20e3, until=plant.now + 600, who="alice")
    plant.step(10)
    assert plant.model.commands.plc_cap[1] == 0.0


def test_a_low_flow_reading_cuts_the_cap_of_a_caisson_in_manual() -> None:
    plant = started()
    plant.supervisor.set_mode("c2", ControlMode.MANUAL)
    plant.step(10)
    flow = PointRef("c2-skid", "flow")

    def low_flow(snapshot: dict[PointRef, Sample]) -> None:
        sample = snapshot[flow]
        snapshot[flow] = Sample.good(5.0, sample.timestamp)  # L/min, the PLC's trip is 9 L/min

    plant.step(3, tamper=low_flow)
    assert Interlock.LOW_FLOW in plant.caisson("c2").interlocks
    assert plant.model.commands.plc_cap[1] == 0.0
    assert plant.model.commands.pump_speed[1] == pytest.approx(1.0)


def test_the_plant_in_manual_freezes_the_dry_cooler_and_caps_but_not_the_pumps() -> None:
    # Compute priority on a mild day: the tank fills and the dry cooler takes the surplus; at
    # 25 min the compute jobs fall to 40 %.
    plant = Plant(
        control={"policy": "compute-priority"},
        duration="1 h",
        weather={"kind": "constant", "temperature": "20 degC"},
        events=[{"kind": "demand_step", "at": "25 min", "level": 0.4}],
    )
    plant.step(1300)
    plan = plant.supervisor.last_plan
    assert plan is not None
    assert plan.mode is Mode.REJECT
    assert plant.supervisor.set_mode(PLANT, ControlMode.MANUAL) is ControlMode.AUTO
    plant.step()
    commands = plant.model.plant_commands
    at_freeze = commands.dry_cooler_valve
    assert at_freeze > 0.0
    speeds = plant.model.commands.pump_speed.copy()
    caps = list(plant.model.commands.plc_cap)
    assert caps == pytest.approx([NOMINAL] * 3, rel=0.02)  # what the pumps carry over the return
    # Held at the last commanded value: the plant has it by the lease's renewal (12 s), within
    # the deadband (1 %) of what it had before, and then it stays.
    plant.step(20)
    valve, fan = commands.dry_cooler_valve, commands.dry_cooler_fan
    assert valve == pytest.approx(at_freeze, abs=0.01)
    plant.step(580)
    assert plant.status is not None
    assert plant.status.control_mode is ControlMode.MANUAL
    # Dispatch would open the dry cooler further and cut the caps (to the jobs' 8 kW, or to 0
    # when it sheds the surplus the frozen dry cooler cannot take); neither is done.
    assert plant.plan_dry_cooler() > valve + 0.1
    assert all(cap <= 8e3 * JOB_HEADROOM + 1 for cap in plant.plan_caps().values())
    assert (commands.dry_cooler_valve, commands.dry_cooler_fan) == pytest.approx((valve, fan))
    assert commands.backup_enable
    # Held, not cut to the jobs' 8 kW (the chip-margin interlock, which still acts, trims them
    # by a kilowatt or two as the outlet follows the return the frozen dry cooler lets warm).
    for held in (plant.model.commands.plc_cap, plant.model.commands.compute_cap):
        assert all(0.9 * cap <= h <= cap + 1.0 for h, cap in zip(held, caps, strict=True))
    # The servers draw 8 kW under a 20 kW cap: the outlets cooled and every pump slowed.
    assert all(c.it_power is not None and c.it_power < 9e3 for c in plant.status.caissons)
    assert all(plant.model.commands.pump_speed < speeds - 0.2)
    assert all(c.mode is ControlMode.AUTO and not c.locked_out for c in plant.status.caissons)

    plant.supervisor.set_mode(PLANT, ControlMode.AUTO)
    plant.step(30)
    assert all(cap <= 8e3 * JOB_HEADROOM + 1 for cap in plant.model.commands.plc_cap)
    assert commands.dry_cooler_valve == pytest.approx(plant.plan_dry_cooler(), abs=0.02)


# ---------------------------------------------------------------- setpoints


def test_a_new_outlet_setpoint_is_ramped_to_and_held() -> None:
    plant = started()
    # 66 degC: within what the chips allow at full power (66.2 degC) and above what hot water
    # needs at the tank's top (63.5 degC), so the reset keeps it.
    assert plant.supervisor.set_setpoint("outlet", 66.0) == 65.0
    assert plant.supervisor.setpoints()["outlet"] == 66.0
    plant.step(30)  # the site's ramp: 1 K/min
    for c in plant.status.caissons:  # type: ignore[union-attr]
        assert c.setpoint == pytest.approx(65.5, abs=0.1)
    plant.step(600)
    for c in plant.status.caissons:  # type: ignore[union-attr]
        assert c.setpoint == pytest.approx(66.0)
        assert c.outlet == pytest.approx(66.0, abs=0.5)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("outlet", 71.0, r"setpoint outlet: 71 degC is outside its limits 60\.\.70 degC"),
        ("outlet", 59.5, r"outside its limits 60\.\.70 degC"),
        ("tank_reserve", 0.05, r"tank_reserve: 5 % is outside its limits 10\.\.95 %"),
        ("tank_reserve", 0.96, r"outside its limits 10\.\.95 %"),
        ("flow", 1.0, r"no setpoint 'flow' \(there are outlet, tank_reserve\)"),
    ],
)
def test_a_setpoint_outside_its_limits_is_refused_and_changes_nothing(
    name: str, value: float, message: str
) -> None:
    plant = started()
    before = plant.supervisor.setpoints()
    with pytest.raises(ValueError, match=message):
        plant.supervisor.set_setpoint(name, value)
    assert plant.supervisor.setpoints() == before == {"outlet": 65.0, "tank_reserve": 0.6}
    plant.step(120)
    assert all(c.setpoint == 65.0 for c in plant.status.caissons)  # type: ignore[union-attr]


def test_setpoints_at_their_limits_are_taken() -> None:
    plant = Plant()
    assert set(SETPOINTS) == {"outlet", "tank_reserve"}
    assert plant.supervisor.set_setpoint("outlet", 70.0) == 65.0
    assert plant.supervisor.set_setpoint("outlet", 60.0) == 70.0
    assert plant.supervisor.set_setpoint("tank_reserve", 0.95) == 0.6
    assert plant.supervisor.set_setpoint("tank_reserve", 0.1) == 0.95
    assert plant.supervisor.setpoints() == {"outlet": 60.0, "tank_reserve": 0.1}

"""The supervisor on the plant model in-process: start-up, leases, overrides, lost inputs."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping

import pytest

from controller.config.loader import load_site
from controller.config.site import Control, Policy
from controller.control.arbiter import Write
from controller.control.dispatch import Mode
from controller.control.interlocks import CaissonLimits
from controller.control.setpoints import CHIP_HOLD, chip_ceiling
from controller.control.supervisor import PlantStatus, Supervisor
from controller.fieldbus.image import PointRef, Reason, Sample
from simulators.closed_loop import InProcessField
from simulators.plant.plc import PlcMode
from tests.plant_helpers import SITES, scenario_run, with_tank

Tamper = Callable[[dict[PointRef, Sample]], None]


class Loop:
    """The demo plant with a supervisor in the loop, one scan per plant step."""

    def __init__(
        self,
        scenario: dict[str, object] | None = None,
        tank_temperature: float | None = None,  # °C at start (default the site's 55 °C)
        **control: object,
    ) -> None:
        self.site = load_site(SITES / "demo.yaml")
        config = self.site.config
        if control:
            config = config.model_copy(update={"control": Control.model_validate(control)})
        if tank_temperature is not None:
            config = with_tank(config, initial_temperature=tank_temperature)
        self.site = type(self.site)(self.site.path, config, self.site.maps)
        self.run = scenario_run(self.site.config, **{"duration": "2 h", **(scenario or {})})
        self.supervisor = Supervisor(self.site)
        self.field = InProcessField(self.run, self.site, self.supervisor.reader.refs)
        self.writes: list[Write] = []
        self.status: PlantStatus | None = None

    @property
    def model(self):  # type: ignore[no-untyped-def]
        return self.run.model

    def step(self, count: int = 1, tamper: Tamper | None = None) -> None:
        for _ in range(count):
            self.run.step()
            snapshot = self.field.snapshot()
            if tamper is not None:
                tamper(snapshot)
            result = self.supervisor.scan(snapshot, self.model.time)
            for write in result.writes:
                self.field.write(write)
                self.supervisor.confirm(write, self.model.time)
            self.writes += result.writes
            self.status = result.status


def written(writes: list[Write], device: str, point: str) -> list[float]:
    return [float(w.value) for w in writes if w.ref == PointRef(device, point)]


def test_takes_the_plant_into_remote_mode_and_holds_the_outlets_in_band() -> None:
    loop = Loop()
    assert list(loop.model.plcs.mode) == [PlcMode.LOCAL] * 3
    loop.step(1800)
    assert list(loop.model.plcs.mode) == [PlcMode.REMOTE] * 3
    loop.step(600)
    assert all(abs(t - 65.0) < 1.0 for t in loop.model.water)
    assert loop.model.plcs.trips == 0


def test_heartbeat_every_cycle_and_leases_renewed_before_half_their_timeout() -> None:
    loop = Loop()
    loop.step(600)  # start-up: warm-up on recirculation, joining the header
    loop.writes.clear()
    before = loop.supervisor.write_counts()
    loop.step(120)
    beats = written(loop.writes, "c1-skid", "heartbeat")
    assert len(beats) == 120  # every cycle
    assert all(b - a == 1 for a, b in itertools.pairwise(beats))
    times = [i for i, w in enumerate(loop.writes) if w.ref == PointRef("c1-skid", "it_cap_cmd")]
    assert times  # written, and the PLC's lease never lapsed
    assert PlcMode.LOCAL_SAFE not in set(loop.model.plcs.mode)
    after = loop.supervisor.write_counts()
    pump = PointRef("c1-skid", "pump_speed_cmd")
    assert after[pump] - before[pump] < 120 / 4 + 20  # on change beyond its deadband or renewal


def test_an_operator_lease_wins_over_automatic_control_until_it_expires() -> None:
    loop = Loop()
    loop.step(300)
    cap = PointRef("c2-skid", "it_cap_cmd")
    loop.supervisor.set_override(cap, 5e3, until=loop.model.time + 120, who="tester")
    loop.step(60)
    assert loop.model.commands.plc_cap[1] == pytest.approx(5e3)
    loop.step(200)
    assert loop.model.commands.plc_cap[1] > 5e3  # expired: automatic control again


def test_an_operator_cannot_push_past_an_interlock() -> None:
    loop = Loop()
    loop.step(300)
    cap = PointRef("c1-skid", "it_cap_cmd")
    loop.supervisor.set_override(cap, 20e3, until=loop.model.time + 600, who="tester")
    loop.model.set_leak(0)
    loop.step(30)
    assert loop.model.commands.plc_cap[0] == 0.0


def test_a_stale_critical_input_puts_the_caisson_in_its_safe_state() -> None:
    loop = Loop()
    loop.step(900)

    def outlet_lost(snapshot: dict[PointRef, Sample]) -> None:
        ref = PointRef("c3-skid", "outlet_temp")
        snapshot[ref] = snapshot[ref].stale(Reason.COMM_LOST)

    loop.step(30, tamper=outlet_lost)
    safe_cap = loop.site.config.caisson_types["cabinet-20kw"].plc.safe_cap
    assert loop.model.commands.plc_cap[2] == pytest.approx(safe_cap)
    assert loop.model.commands.pump_speed[2] == pytest.approx(0.9, abs=0.01)
    # The others go on under automatic control.
    assert loop.model.commands.plc_cap[0] != pytest.approx(safe_cap)


def test_lost_plant_measurements_mean_safe_mode() -> None:
    loop = Loop()
    loop.step(300)

    def plant_lost(snapshot: Mapping[PointRef, Sample]) -> None:
        at = next(iter(snapshot.values())).timestamp
        for ref in list(snapshot):
            if ref.device == "plant-skid":
                snapshot[ref] = Sample.bad(Reason.COMM_LOST, at)  # type: ignore[index]

    loop.step(5, tamper=plant_lost)
    plan = loop.supervisor.last_plan
    assert plan is not None
    assert plan.mode is Mode.SAFE


def test_nothing_is_written_to_a_caisson_before_it_has_been_read() -> None:
    loop = Loop()

    def c1_unread(snapshot: dict[PointRef, Sample]) -> None:
        at = next(iter(snapshot.values())).timestamp
        for ref in list(snapshot):
            if ref.device == "c1-skid":
                snapshot[ref] = Sample.bad(Reason.NOT_CONNECTED, at)

    loop.step(20, tamper=c1_unread)
    assert not [w for w in loop.writes if w.ref.device == "c1-skid"]
    assert [w for w in loop.writes if w.ref.device == "c2-skid"]


def test_compute_priority_runs_the_caps_flat_out() -> None:
    loop = Loop(policy=Policy.COMPUTE_PRIORITY.value)
    loop.step(1200)
    plan = loop.supervisor.last_plan
    assert plan is not None
    assert plan.mode in (Mode.STORE, Mode.REJECT)
    assert all(cap == pytest.approx(20e3) for cap in loop.model.commands.plc_cap)


def test_a_cold_snap_vents_no_heat_while_the_backup_fires() -> None:
    """−15 °C: the radiators want 79 °C and return at 60 °C; the tank's bottom comes back near the
    dry cooler's default 60 °C limit. The supervisor raises that limit (its lease, to the hard
    band's top) and the outlet setpoint, and lets the caissons' caps follow what their pumps carry:
    the backup boiler fires all along, and not a kilowatt-hour is dumped meanwhile."""
    cold = {"kind": "constant", "temperature": "-15 degC"}
    loop = Loop(scenario={"weather": cold, "duration": "3 h"})
    loop.step(3 * 3600 - 1)
    totals = loop.model.totals
    assert totals.backup > 0
    assert totals.dumped_while_backup == 0.0
    assert totals.dumped_while_backup_safety == 0.0
    hard = loop.site.config.plant.dry_cooler.hard_limit
    assert loop.model.plant_commands.return_limit == hard
    assert loop.model.flows.return_limit == hard
    assert loop.supervisor.outlet_setpoint > 68.0
    assert loop.model.totals.it > 0.9 * 3 * 3600 * 15e3  # the caissons ran (near) flat out


def test_a_summer_day_runs_one_caisson_the_others_stand_by() -> None:
    summer = {
        "start": "2026-07-15T06:00:00+02:00",
        "weather": {"kind": "constant", "temperature": "24 degC"},
    }
    # From a warm tank (from the site's 55 °C the morning's hot water fires the backup boiler,
    # and a plant short of heat lately charges its tank deep on the caissons it needs): the tank
    # discharges, then one caisson keeps its top hot.
    loop = Loop(scenario={**summer, "duration": "2 h"}, tank_temperature=63.0)
    loop.step(2 * 3600 - 1)
    model = loop.model
    assert loop.supervisor.backup_fired_at == float("-inf")  # not short of heat
    assert int(model.plcs.standby.sum()) == 2
    assert model.flows.source_flow == pytest.approx(float(model.header_flow.max()))
    status = loop.supervisor.last_plan
    assert status is not None
    assert len(status.running) == 1


def backup_reads(kilowatts: float) -> Tamper:
    """The plant skid's backup heat meter reads `kilowatts`."""

    def tamper(snapshot: dict[PointRef, Sample]) -> None:
        ref = PointRef("plant-skid", "backup_heat")
        snapshot[ref] = Sample.good(kilowatts, snapshot[ref].timestamp)

    return tamper


def test_the_backup_boiler_firing_keeps_the_tank_full_but_a_meters_trim_does_not() -> None:
    """Once the backup boiler has fired, a heat-priority plant stores (keeps its tank full for
    the next peak); a heat meter's few watts of trim are not a firing and change nothing. (The
    tank starts warm: from a cold one the morning's hot water fires the backup for real.)"""
    summer = {
        "start": "2026-07-15T06:00:00+02:00",
        "weather": {"kind": "constant", "temperature": "24 degC"},
    }
    loop = Loop(scenario={**summer, "duration": "2 h"}, tank_temperature=63.0)
    loop.step(1800)

    def mode() -> Mode:
        assert loop.supervisor.last_plan is not None
        return loop.supervisor.last_plan.mode

    assert mode() is Mode.HEAT
    loop.step(600, tamper=backup_reads(0.005))
    assert mode() is Mode.HEAT
    loop.step(60, tamper=backup_reads(5.0))
    loop.step(600)
    assert mode() is Mode.STORE


def test_a_compute_priority_plant_stores_its_surplus_hot_when_a_peak_is_due() -> None:
    """Compute priority on a summer day: the caissons run flat out, the tank fills, the surplus
    goes to the dry cooler with the outlet towards the band's low end (cool chips). Once a peak
    is due (here the backup boiler fired) the outlet, and with it the tank, goes as hot as the
    chips allow at full power, and the caps stay flat out."""
    summer = {
        "start": "2026-07-15T06:00:00+02:00",
        "weather": {"kind": "constant", "temperature": "24 degC"},
    }
    loop = Loop(
        scenario={**summer, "duration": "2 h"},
        tank_temperature=63.0,
        policy=Policy.COMPUTE_PRIORITY.value,
    )
    loop.step(1800)
    plan = loop.supervisor.last_plan
    assert plan is not None
    assert plan.mode in (Mode.STORE, Mode.REJECT)
    assert not plan.peak_due
    cool = loop.supervisor.outlet_setpoint
    loop.step(60, tamper=backup_reads(5.0))
    loop.step(1200)
    plan = loop.supervisor.last_plan
    assert plan is not None
    assert plan.peak_due
    limits = CaissonLimits.of(loop.site.config.caisson_types["cabinet-20kw"])
    hottest = chip_ceiling(limits, limits.nominal_power, loop.site.config.control.chip_margin)
    assert loop.supervisor.outlet_setpoint == pytest.approx(hottest - CHIP_HOLD)
    assert cool < hottest - CHIP_HOLD - 0.5
    assert loop.model.water == pytest.approx([hottest - CHIP_HOLD] * 3, abs=0.3)
    assert all(cap == pytest.approx(20e3) for cap in loop.model.commands.plc_cap)


def test_a_caisson_locked_out_by_the_site_file_is_taken_to_remote_and_held_at_zero() -> None:
    """A lockout is cap 0: the PLC must follow the supervisor for that (in local mode it would
    run the servers at its safe cap). Idle, its pump then stands by."""
    loop = Loop(lockout=["c3"])
    loop.step(30)
    assert loop.model.plcs.mode[2] == PlcMode.REMOTE
    assert loop.model.it_power[2] == 0.0
    loop.step(120)
    assert loop.model.plcs.standby[2]
    assert loop.model.it_power[:2].sum() > 0  # the others run


def test_a_frozen_outlet_sensor_is_replaced_by_the_heat_balance_before_the_loop_winds_up() -> None:
    """c1's outlet sensor freezes at 40 min, then the outlet setpoint is lowered 4 K: on the
    frozen reading the loop's integral would run the pump to full speed and the water far below
    the band. The supervisor finds the reading frozen from the heat balance and holds the true
    outlet at the new setpoint on the estimate instead."""
    stuck = {"at": "40 min", "kind": "sensor_stuck", "caisson": "c1", "sensor": "outlet_temp"}
    loop = Loop(scenario={"events": [stuck]})
    loop.step(50 * 60)
    c1 = loop.supervisor._caissons[0]
    assert not c1.outlet_watch.frozen  # frozen at the true value: nothing to tell yet
    loop.supervisor.set_setpoint("outlet", loop.supervisor.plant_limits.outlet_setpoint - 4.0)
    worst = 0.0
    for _ in range(30 * 60):
        loop.step()
        if loop.model.time > 60 * 60:  # after 10 min: the setpoint ramped and the loop settled
            worst = max(worst, abs(float(loop.model.water[0]) - loop.supervisor.outlet_setpoint))
    assert c1.outlet_watch.frozen
    assert worst < 1.5
    assert loop.status is not None  # the status says so, and shows the estimate
    shown = loop.status.caissons[0]
    assert shown.outlet_estimated
    assert shown.outlet == pytest.approx(float(loop.model.water[0]), abs=1.0)
    assert shown.outlet_estimate == shown.outlet
    for healthy in loop.status.caissons[1:]:  # the heat balance sits on their moving readings
        assert not healthy.outlet_estimated
        assert healthy.outlet is not None
        assert healthy.outlet_estimate is not None
        assert healthy.outlet_estimate == pytest.approx(healthy.outlet, abs=0.2)

"""The controller's own alarms, from a scan's snapshot and status (controller/alarms/system.py),
and the service that runs them with the site's alarms through the engine."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from controller.alarms.model import AlarmId, State
from controller.alarms.service import SYSTEM_ON_DELAY, AlarmService
from controller.alarms.system import ControllerFigures, SystemAlarms
from controller.config.loader import load_site
from controller.control.dispatch import Mode
from controller.control.interlocks import Interlock
from controller.control.supervisor import CaissonStatus, PlantStatus, ScanResult
from controller.fieldbus.image import PointRef, Reason, Sample
from tests.plant_helpers import SITES

NOW = datetime(2026, 1, 15, 6, 0, tzinfo=UTC)
SITE = load_site(SITES / "demo.yaml")


def caisson(name: str, *interlocks: Interlock) -> CaissonStatus:
    return CaissonStatus(
        name, True, 1, frozenset(interlocks), True, 65.0, 65.0, 55.0, 4e-4, 2e4, 0.7, 2e4
    )


def status(mode: Mode = Mode.HEAT, *caissons: CaissonStatus) -> PlantStatus:
    return PlantStatus(mode, 6e4, 0.5, 5e4, 0.0, caissons or (caisson("c1"), caisson("c2")))


def snapshot(lost: str = "") -> dict[PointRef, Sample]:
    """Two points of every device; every point of `lost` BAD for lost communication."""
    samples = {}
    for device in SITE.config.devices:
        for point in ("a", "b"):
            sample = Sample.good(1.0, NOW)
            if device.id == lost:
                sample = Sample.bad(Reason.COMM_LOST, NOW)
            samples[PointRef(device.id, point)] = sample
    return samples


def test_a_silent_device_is_communication_lost_at_its_caisson_or_the_plant() -> None:
    system = SystemAlarms(SITE)
    quiet = system.conditions(snapshot(), status())
    assert not any(quiet.values())
    assert system.conditions(snapshot("c2-skid"), status())[AlarmId("c2", "skid_comm_lost")]
    lost = system.conditions(snapshot("heat-meter"), status())
    assert [a for a, on in lost.items() if on] == [AlarmId("plant", "heat_meter_comm_lost")]


def test_interlocks_stale_inputs_and_the_plant_s_safe_mode() -> None:
    system = SystemAlarms(SITE)
    scan = status(
        Mode.SAFE,
        caisson("c1", Interlock.LEAK),
        caisson("c2", Interlock.INPUTS_LOST),
        caisson("c3", Interlock.CHIP_MARGIN, Interlock.OVERTEMP_1),  # gentle: no alarm
    )
    active = {a for a, on in system.conditions(snapshot(), scan).items() if on}
    assert active == {
        AlarmId("c1", "interlock_active"),
        AlarmId("c2", "inputs_stale"),
        AlarmId("plant", "inputs_stale"),
    }


def test_the_daemon_s_figures_raise_their_alarms() -> None:
    system = SystemAlarms(SITE)
    figures = ControllerFigures(
        overrun_streak=5,
        write_failure_streaks={"c3-compute": 2},
        historian_conditions={"historian_refused"},
        register_writes_per_hour={PointRef("c1-skid", "it_cap_cmd"): 4000.0},
    )
    active = {a for a, on in system.conditions(snapshot(), status(), figures).items() if on}
    assert active == {
        AlarmId("controller", "cycle_overrun"),
        AlarmId("c3", "compute_write_failed"),
        AlarmId("controller", "historian_refused"),
        AlarmId("controller", "flash_write_budget"),
    }


def test_system_alarms_wait_their_delay_and_a_locked_out_caisson_raises_nothing() -> None:
    service = AlarmService(SITE)
    locked = replace(caisson("c3"), locked_out=True)  # the supervisor reports the lockout
    result = ScanResult([], status(Mode.HEAT, caisson("c1"), caisson("c2"), locked))
    lost_c2 = AlarmId("c2", "skid_comm_lost")
    lost_c3 = AlarmId("c3", "skid_comm_lost")
    merged = snapshot("c2-skid") | {
        ref: Sample.bad(Reason.COMM_LOST, NOW) for ref in snapshot() if ref.device == "c3-skid"
    }
    raised: list[AlarmId] = []
    for second in range(int(SYSTEM_ON_DELAY) + 2):
        for t in service.scan(merged, result, NOW + timedelta(seconds=second), float(second)):
            if t.after is State.UNACKNOWLEDGED:
                raised.append(t.alarm)
                assert second >= SYSTEM_ON_DELAY  # not before its delay
    assert lost_c2 in raised
    assert lost_c3 not in raised  # c3 is in maintenance lockout: suppressed by design
    states = {s.id: s.state for s in service.engine.status()}
    assert states[lost_c3] is State.SUPPRESSED

"""The historian's measurements for the demo site, as exact line-protocol strings."""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from controller.alarms.engine import AlarmStatus, alarm_counts
from controller.alarms.model import AlarmId, Priority, State
from controller.config.loader import LoadedSite, load_site
from controller.control.dispatch import Mode
from controller.control.inputs import CaissonInputs, Inputs, PlantInputs
from controller.control.interlocks import Interlock
from controller.control.supervisor import CaissonStatus, PlantStatus
from controller.fieldbus.image import PointRef, Reason, Sample
from controller.historian.lineprotocol import nanoseconds
from controller.historian.schema import Event, Recorder, off_band
from controller.kpi import Kpis, Period
from controller.water import VOLUMETRIC_HEAT
from tests.plant_helpers import SITES

SITE = "residence-les-tilleuls-demo"  # the demo's slug: "Residence Les Tilleuls (demo)"
T0 = datetime(2026, 1, 15, 6, 0, 0, 250000, tzinfo=UTC)
T0_NS = 1_768_456_800_250_000_000
NOW = T0 + timedelta(seconds=3)
NOW_NS = T0_NS + 3_000_000_000


@pytest.fixture(scope="module")
def site() -> LoadedSite:
    return load_site(SITES / "demo.yaml")


@pytest.fixture
def recorder(site: LoadedSite) -> Recorder:
    return Recorder(site)


def ref(text: str) -> PointRef:
    device, point = text.split(".")
    return PointRef(device, point)


def test_the_demo_site(site: LoadedSite) -> None:
    assert site.config.site.slug == SITE
    assert nanoseconds(T0) == T0_NS


# ------------------------------------------------------------------ device data


def test_good_samples_of_a_device_make_one_line(recorder: Recorder) -> None:
    snapshot = {
        ref("c1-skid.inlet_temp"): Sample.good(55.5, T0),
        ref("c1-skid.outlet_temp"): Sample.good(65, T0),
        ref("c1-skid.pump_running"): Sample.good(True, T0),
        ref("c1-skid.plc_mode"): Sample.good(1, T0),
    }
    assert recorder.samples(snapshot, NOW) == [
        f"caisson_skid,caisson=c1,device=c1-skid,site={SITE} "
        f"inlet_temp=55.5,outlet_temp=65.0,pump_running=1.0,plc_mode=1.0 {T0_NS}"
    ]
    # the same acquisition again: written once only
    assert recorder.samples(snapshot, NOW + timedelta(seconds=1)) == []
    # a new acquisition of one point: that point alone
    snapshot[ref("c1-skid.outlet_temp")] = Sample.good(65.5, T0 + timedelta(seconds=1))
    assert recorder.samples(snapshot, NOW + timedelta(seconds=1)) == [
        f"caisson_skid,caisson=c1,device=c1-skid,site={SITE} outlet_temp=65.5 {T0_NS + 10**9}"
    ]


def test_devices_and_timestamps_make_separate_lines(recorder: Recorder) -> None:
    later = T0 + timedelta(milliseconds=500)
    snapshot = {
        ref("c1-skid.flow"): Sample.good(30.0, T0),
        ref("c2-skid.flow"): Sample.good(31.0, T0),
        ref("c2-skid.inlet_temp"): Sample.good(54.0, later),
        ref("c2-compute.it_power"): Sample.good(15.0, T0),
    }
    assert sorted(recorder.samples(snapshot, NOW)) == sorted(
        [
            f"caisson_skid,caisson=c1,device=c1-skid,site={SITE} flow=30.0 {T0_NS}",
            f"caisson_skid,caisson=c2,device=c2-skid,site={SITE} flow=31.0 {T0_NS}",
            f"caisson_skid,caisson=c2,device=c2-skid,site={SITE} inlet_temp=54.0 "
            f"{T0_NS + 500_000_000}",
            f"compute_manager,caisson=c2,device=c2-compute,site={SITE} it_power=15.0 {T0_NS}",
        ]
    )


def test_plant_devices_have_no_caisson_tag(recorder: Recorder) -> None:
    snapshot = {
        ref("plant-skid.tank_temp_top"): Sample.good(58.0, T0),
        ref("heat-meter.power"): Sample.good(42.0, T0),
    }
    assert sorted(recorder.samples(snapshot, NOW)) == [
        f"heat_meter,device=heat-meter,site={SITE} power=42.0 {T0_NS}",
        f"plant_skid,device=plant-skid,site={SITE} tank_temp_top=58.0 {T0_NS}",
    ]


def test_a_bad_sample_is_never_a_value_and_its_quality_is_written_on_change(
    recorder: Recorder,
) -> None:
    flow, inlet = ref("c1-skid.flow"), ref("c1-skid.inlet_temp")
    quality_key = f"point_quality,device=c1-skid,point=flow,site={SITE}"
    assert recorder.samples({flow: Sample.good(30.0, T0), inlet: Sample.good(55.0, T0)}, T0)

    seen = T0 + timedelta(seconds=2)
    snapshot = {flow: Sample.bad(Reason.SENSOR_FAULT, seen), inlet: Sample.good(55.5, seen)}
    assert recorder.samples(snapshot, NOW) == [
        # a BAD sample is stamped when the problem was seen
        f'{quality_key} quality="bad",reason="sensor_fault" {T0_NS + 2 * 10**9}',
        f"caisson_skid,caisson=c1,device=c1-skid,site={SITE} inlet_temp=55.5 {T0_NS + 2 * 10**9}",
    ]
    # still bad, seen again later: nothing new
    later = T0 + timedelta(seconds=3)
    snapshot = {flow: Sample.bad(Reason.SENSOR_FAULT, later)}
    assert recorder.samples(snapshot, NOW + timedelta(seconds=1)) == []
    # bad for another reason: a change
    snapshot = {flow: Sample.bad(Reason.COMM_LOST, later)}
    assert recorder.samples(snapshot, NOW + timedelta(seconds=1)) == [
        f'{quality_key} quality="bad",reason="comm_lost" {T0_NS + 3 * 10**9}'
    ]
    # good again: the quality line, then the value
    back = T0 + timedelta(seconds=5)
    recovered = NOW + timedelta(seconds=5)
    assert recorder.samples({flow: Sample.good(29.0, back)}, recovered) == [
        f'{quality_key} quality="good",reason="" {nanoseconds(recovered)}',
        f"caisson_skid,caisson=c1,device=c1-skid,site={SITE} flow=29.0 {T0_NS + 5 * 10**9}",
    ]


def test_a_stale_sample_is_no_value_and_its_quality_is_stamped_now(
    recorder: Recorder,
) -> None:
    flow = ref("c1-skid.flow")
    good = Sample.good(30.0, T0)
    assert len(recorder.samples({flow: good}, T0)) == 1
    stale = good.stale(Reason.COMM_LOST)  # keeps its value and its old acquisition time
    assert recorder.samples({flow: stale}, NOW) == [
        f'point_quality,device=c1-skid,point=flow,site={SITE} quality="stale",'
        f'reason="comm_lost" {NOW_NS}'
    ]
    assert recorder.samples({flow: stale}, NOW + timedelta(seconds=1)) == []


def test_a_point_first_seen_stale_gets_a_quality_line(recorder: Recorder) -> None:
    flow = ref("c1-skid.flow")
    stale = Sample.good(30.0, T0).stale()
    assert recorder.samples({flow: stale}, NOW) == [
        f'point_quality,device=c1-skid,point=flow,site={SITE} quality="stale",'
        f'reason="comm_lost" {NOW_NS}'
    ]


def test_points_not_for_the_historian_are_never_written(
    site: LoadedSite, recorder: Recorder
) -> None:
    # The supervisor's heartbeat (plc_maps/caisson_skid.yaml, plant_skid.yaml): historian: false
    for device in ("c1-skid", "plant-skid"):
        assert not site.device_map(device).point("heartbeat").historian
    heartbeat = ref("c1-skid.heartbeat")
    assert recorder.samples({heartbeat: Sample.good(12, T0)}, NOW) == []
    assert recorder.samples({heartbeat: Sample.bad(Reason.COMM_LOST, T0)}, NOW) == []
    lines = recorder.samples(
        {
            ref("plant-skid.heartbeat"): Sample.good(13, T0),
            ref("plant-skid.outdoor_temp"): Sample.good(-2.5, T0),
        },
        NOW,
    )
    assert lines == [f"plant_skid,device=plant-skid,site={SITE} outdoor_temp=-2.5 {T0_NS}"]


def test_points_the_site_does_not_have_are_ignored(recorder: Recorder) -> None:
    assert recorder.samples({ref("c9-skid.flow"): Sample.good(1.0, T0)}, NOW) == []


# ------------------------------------------------------------------ controller


def status(**plant: object) -> PlantStatus:
    caisson = CaissonStatus(
        id="c1",
        initialised=True,
        plc_mode=1,
        interlocks=frozenset({Interlock.OVERTEMP_1, Interlock.CHIP_MARGIN}),
        running=True,
        setpoint=65.0,
        outlet=64.2,
        inlet=55.0,
        flow=5e-4,
        it_power=15_000.0,
        pump_speed=0.8,
        cap=15_000.0,
    )
    idle = CaissonStatus(
        id="c2",
        initialised=False,
        plc_mode=None,
        interlocks=frozenset(),
        running=False,
        setpoint=None,
        outlet=None,
        inlet=None,
        flow=None,
        it_power=None,
        pump_speed=None,
        cap=None,
    )
    values: dict[str, object] = {
        "mode": Mode.HEAT,
        "it_target": 45_000.0,
        "soc": 0.5,
        "load": 38_000.0,
        "dry_cooler": 0.25,
        "caissons": (caisson, idle),
    }
    values.update(plant)
    return PlantStatus(**values)  # type: ignore[arg-type]


def test_control_lines(recorder: Recorder) -> None:
    assert recorder.control(status(), NOW) == [
        f'plant_control,site={SITE} mode="heat",it_target_kw=45.0,soc_pct=50.0,'
        f"load_kw=38.0,dry_cooler_pct=25.0 {NOW_NS}",
        f"caisson_control,caisson=c1,site={SITE} initialised=1.0,running=1.0,plc_mode=1.0,"
        f'interlocks="chip_margin,overtemp_1",interlock_count=2.0,setpoint_c=65.0,'
        f"pump_speed_cmd_pct=80.0,cap_kw=15.0,staged=0.0,outlet_estimated=0.0 {NOW_NS}",
        f'caisson_control,caisson=c2,site={SITE} initialised=0.0,running=0.0,interlocks="",'
        f"interlock_count=0.0,staged=0.0,outlet_estimated=0.0 {NOW_NS}",
    ]


def test_with_the_cycle_s_inputs_control_adds_delivered_heat_and_chip_margins(
    recorder: Recorder,
) -> None:
    plant = PlantInputs(
        tank=(60.0, 58.0, 50.0, 45.0),
        outdoor=0.0,
        building_supply=65.0,
        building_return=55.0,
        building_flow=1e-3,  # m3/s
        supply=66.0,
        ret=55.0,
        backup_heat=0.0,
    )
    unknown = CaissonInputs(**dict.fromkeys(f.name for f in dataclasses.fields(CaissonInputs)))
    caissons = (dataclasses.replace(unknown, chip_temp=84.5), unknown, unknown)
    lines = recorder.control(status(), NOW, Inputs(caissons, plant))
    delivered_kw = VOLUMETRIC_HEAT * 1e-3 * 10.0 / 1000.0
    assert f",delivered_kw={delivered_kw!r}," in lines[0]
    assert ",chip_margin_k=5.5," in lines[1]  # 90 degC throttle on the demo
    assert "chip_margin_k" not in lines[2]  # no valid chip temperature, no margin
    assert ",supply_off_band_k=0.0 " in lines[0]  # 66 degC: inside the demo's 60-70 degC band
    assert "it_power_kw" not in lines[0]  # the caissons' IT power is unknown
    metered = tuple(dataclasses.replace(c, it_power=10e3) for c in caissons)
    cold = dataclasses.replace(plant, supply=57.5)
    line = recorder.control(status(), NOW, Inputs(metered, cold))[0]
    assert ",it_power_kw=30.0,supply_off_band_k=-2.5 " in line


@pytest.mark.parametrize(
    ("supply", "expected"),
    [(None, None), (65.0, 0.0), (60.0, 0.0), (58.0, -2.0), (70.0, 0.0), (71.5, 1.5)],
)
def test_off_band_is_the_distance_outside_the_band(
    supply: float | None, expected: float | None
) -> None:
    assert off_band(supply, 60.0, 70.0) == expected


def test_the_site_s_band_and_setpoints(recorder: Recorder) -> None:
    assert recorder.site_config({"outlet": 63.0, "tank_reserve": 0.6}, NOW) == [
        f'site_config,site={SITE} name="Residence Les Tilleuls (demo)",kind="residential",'
        'timezone="Europe/Paris",policy="heat-priority",fuel="gas",supply_low_c=60.0,'
        "supply_high_c=70.0,caissons=3.0,it_nominal_kw=60.0,outlet_setpoint_c=63.0,"
        f"tank_reserve_pct=60.0 {NOW_NS}"
    ]


def test_alarm_counts(recorder: Recorder) -> None:
    statuses = [
        AlarmStatus(AlarmId(c, n), p, s, True, None, "", None, "", False)
        for c, n, p, s in [
            ("c1", "leak", Priority.CRITICAL, State.UNACKNOWLEDGED),
            ("c1", "flow_lo", Priority.HIGH, State.SUPPRESSED),
            ("c2", "flow_lo", Priority.HIGH, State.RETURNED_UNACKNOWLEDGED),
            ("c2", "pump_fault", Priority.HIGH, State.ACKNOWLEDGED),
            ("c3", "flow_lo", Priority.HIGH, State.SHELVED),
            ("c3", "leak", Priority.CRITICAL, State.NORMAL),
        ]
    ]
    counts = alarm_counts(statuses)
    assert counts == {
        "unack_critical": 1,
        "unack_high": 1,
        "unack_medium": 0,
        "unack_low": 0,
        "unacknowledged": 2,
        "annunciated": 3,
        "suppressed": 1,
        "shelved": 1,
        "out_of_service": 0,
    }
    assert recorder.alarm_counts(counts, NOW) == [
        f"alarm_counts,site={SITE} unack_critical=1.0,unack_high=1.0,unack_medium=0.0,"
        "unack_low=0.0,unacknowledged=2.0,annunciated=3.0,suppressed=1.0,shelved=1.0,"
        f"out_of_service=0.0 {NOW_NS}"
    ]


def test_control_lines_carry_the_run_hours_and_the_days_peak(recorder: Recorder) -> None:
    base = status()
    ran = replace(base.caissons[0], run_seconds=5400.0)
    lines = recorder.control(replace(base, caissons=(ran,), day_peak=52_500.0), NOW)
    assert lines[0].endswith(f",day_peak_kw=52.5 {NOW_NS}")
    assert lines[1].endswith(f",staged=0.0,run_hours=1.5,outlet_estimated=0.0 {NOW_NS}")


def test_a_frozen_outlet_sensor_writes_the_heat_balances_outlet(recorder: Recorder) -> None:
    base = status()
    estimated = replace(base.caissons[0], outlet=63.4, outlet_estimated=True, outlet_estimate=63.4)
    lines = recorder.control(replace(base, caissons=(estimated,)), NOW)
    assert lines[1].endswith(f",outlet_estimated=1.0,outlet_estimate_c=63.4 {NOW_NS}")


def test_control_leaves_unknown_figures_out(recorder: Recorder) -> None:
    lines = recorder.control(status(mode=Mode.SAFE, soc=None, load=None), NOW)
    assert lines[0] == (
        f'plant_control,site={SITE} mode="safe",it_target_kw=45.0,dry_cooler_pct=25.0 {NOW_NS}'
    )


def test_kpis_are_stamped_at_their_period_start(recorder: Recorder) -> None:
    start = datetime(2026, 1, 14, 23, 0, tzinfo=UTC)  # midnight in Paris
    kpi = Kpis(
        period=Period.DAY,
        start=start,
        heat_delivered_kwh=100.0,
        heat_reused_kwh=80.0,
        heat_dumped_kwh=5.0,
        backup_heat_kwh=20.0,
        it_energy_kwh=90.0,
        pump_energy_kwh=1.0,
        fan_energy_kwh=0.5,
        erf=None,
        pue=1.5,
        ere=None,
        running_h=2.0,
        in_band_share=0.5,
        coverage=1.0,
    )
    assert recorder.kpis([kpi]) == [
        f"kpi,period=day,site={SITE} heat_delivered_kwh=100.0,heat_reused_kwh=80.0,"
        "heat_dumped_kwh=5.0,backup_heat_kwh=20.0,it_energy_kwh=90.0,pump_energy_kwh=1.0,"
        "fan_energy_kwh=0.5,pue=1.5,running_h=2.0,in_band_share=0.5,coverage=1.0,"
        f"gas_avoided_kwh={80.0 / 0.9!r} {nanoseconds(start)}"  # the demo's backup burns gas
    ]
    assert nanoseconds(start) == 1_768_431_600_000_000_000


def test_events_put_kind_name_and_source_in_tags(recorder: Recorder) -> None:
    plant_event = Event(
        at=T0,
        kind="alarm",
        name="historian_unreachable",
        message='influxdb "prod" unreachable, 60 s',
        state="raised",
    )
    assert recorder.event(plant_event) == (
        f"event,kind=alarm,name=historian_unreachable,site={SITE} "
        f'message="influxdb \\"prod\\" unreachable, 60 s",state="raised" {T0_NS}'
    )
    caisson_event = Event(
        at=T0,
        kind="mode",
        name="plc_mode",
        message="c1 PLC remote → local_safe",
        source="c1",
        state="local_safe",
        before="remote",
        after="local_safe",
        user="ops",
    )
    assert recorder.event(caisson_event) == (
        f"event,kind=mode,name=plc_mode,site={SITE},source=c1 "
        'message="c1 PLC remote → local_safe",state="local_safe",user="ops",'
        f'before="remote",after="local_safe" {T0_NS}'
    )

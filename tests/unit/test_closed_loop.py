"""The in-process closed loop (simulators/closed_loop.py) and the KPIs it is judged by."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import numpy as np
import pytest

from controller.config.loader import LoadedSite, load_site
from controller.control.arbiter import Source, Write
from controller.fieldbus.image import PointRef, Quality, Reason, Sample
from simulators.closed_loop import FAST_SAMPLES, InProcessField, Outage, run_closed_loop
from simulators.plant.plc import Interlock, Limit, PlcMode
from simulators.plant.sensors import FaultKind, Sensor
from simulators.run import ScenarioRun
from tests.plant_helpers import SITES, scenario_run


def demo_site() -> LoadedSite:
    return load_site(SITES / "demo.yaml")


def every_point(site: LoadedSite) -> list[PointRef]:
    return [
        PointRef(device.id, point.id)
        for device in site.config.devices
        for point in site.device_map(device.id).points
    ]


def run_of(site: LoadedSite, **fields: object) -> ScenarioRun:
    return scenario_run(site.config, **fields)


# ---------------------------------------------------------------- the snapshot


def test_the_fast_sample_path_is_in_use() -> None:
    """If Sample's layout changes, the harness falls back to Sample.good: still right, but slow."""
    assert FAST_SAMPLES


def test_snapshot_values_match_the_bindings_reads_in_map_units() -> None:
    site = demo_site()
    run = run_of(site)
    for _ in range(30):
        run.step()
    # A sensor at its fault code must come out BAD, the others GOOD.
    run.model.fault_sensor(Sensor.FLOW, 1, FaultKind.SENTINEL)
    refs = every_point(site)
    field_ = InProcessField(run, site, refs)
    snapshot = field_.snapshot()
    at = field_.now()
    assert set(snapshot) == set(refs)
    bad = 0
    for ref in refs:
        value = field_.bindings[ref.device].read(ref.point)
        sample = snapshot[ref]
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            assert sample == Sample.bad(Reason.SENSOR_FAULT, at), ref
            bad += 1
        else:
            assert sample == Sample.good(value, at), ref
            assert type(sample.value) is type(value), ref
    assert bad == 1
    assert snapshot[PointRef("c2-skid", "flow")].quality is Quality.BAD
    # Map units, not SI: % and L/min and kW, status words composed from their bits.
    assert snapshot[PointRef("c1-skid", "pump_speed_feedback")].value == pytest.approx(90.0)
    flow = snapshot[PointRef("c1-skid", "flow")].value
    assert flow == pytest.approx(0.9 * 40.0)
    assert snapshot[PointRef("c1-skid", "it_power")].value == pytest.approx(10.0)
    assert snapshot[PointRef("c1-skid", "pump_status")].value == 1  # running, no fault
    assert snapshot[PointRef("c2-skid", "interlocks")].value == int(run.model.plcs.interlocks[1])


# ---------------------------------------------------------------- writes and coupling


@dataclass
class Scripted:
    """Holds c1 at a fixed pump speed and cap (map units: %, kW), as a supervisor would."""

    speed_pct: float = 55.0
    cap_kw: float = 12.0
    beats: int = 0
    confirmed: list[Write] = field(default_factory=list)
    seen: list[Mapping[PointRef, Sample]] = field(default_factory=list)

    @property
    def writes_list(self) -> list[Write]:
        def write(device: str, point: str, value: float | bool) -> Write:
            return Write(
                PointRef(device, point), value, float(value), False, Source.AUTO, "test", False
            )

        return [
            write("c1-skid", "pump_speed_cmd", self.speed_pct),
            write("c1-skid", "it_cap_cmd", self.cap_kw),
            write("c1-compute", "power_cap", self.cap_kw),
            write("c1-skid", "heartbeat", self.beats),
            write("c1-skid", "remote_request", True),
        ]

    def scan(self, snapshot: Mapping[PointRef, Sample], now: float) -> Scripted.Outcome:
        self.beats += 1
        self.seen.append(snapshot)
        return Scripted.Outcome(self.writes_list)

    def confirm(self, write: Write, now: float) -> None:
        self.confirmed.append(write)

    @dataclass
    class Outcome:
        writes: list[Write]


def test_a_controller_s_setpoints_are_applied_by_the_plc_in_remote_mode() -> None:
    site = demo_site()
    run = run_of(site, duration="2 min")
    controller = Scripted()
    refs = [PointRef("c1-skid", p) for p in ("plc_mode", "pump_speed_cmd", "it_cap_cmd")]
    result = run_closed_loop(run, site, controller, refs)
    model = run.model
    assert result.steps == 120
    assert model.plcs.mode[0] == PlcMode.REMOTE
    assert model.plcs.mode[1] == PlcMode.LOCAL  # nobody asked c2
    assert model.pump_speed[0] == pytest.approx(0.55)
    assert model.it_power[0] == pytest.approx(12_000.0)
    assert model.pump_speed[1] == pytest.approx(0.9)  # the PLC's safe speed
    last = controller.seen[-1]
    assert last[PointRef("c1-skid", "plc_mode")].value == PlcMode.REMOTE
    assert last[PointRef("c1-skid", "pump_speed_cmd")].value == pytest.approx(55.0)
    assert last[PointRef("c1-skid", "it_cap_cmd")].value == pytest.approx(12.0)
    assert len(controller.confirmed) == 5 * 120
    assert result.dropped_writes == 0


def test_a_comm_lost_outage_makes_samples_bad_and_drops_writes() -> None:
    site = demo_site()
    run = run_of(site, duration="80 s")
    controller = Scripted()
    refs = [PointRef("c1-skid", "plc_mode"), PointRef("c1-compute", "it_power")]
    refs += [PointRef("c2-skid", "plc_mode")]
    outage = Outage("c1-skid", 20.0, 40.0)
    result = run_closed_loop(run, site, controller, refs, outages=[outage])
    modes = [s[PointRef("c1-skid", "plc_mode")] for s in controller.seen]
    # Scan k sees the plant at time k + 1 s: scans 19..38 fall in the outage.
    lost = [k for k, s in enumerate(modes) if s.quality is Quality.BAD]
    assert lost == list(range(19, 39))
    assert all(modes[k].reason is Reason.COMM_LOST for k in lost)
    # Other devices still answer.
    assert all(s[PointRef("c1-compute", "it_power")].usable for s in controller.seen)
    assert all(s[PointRef("c2-skid", "plc_mode")].usable for s in controller.seen)
    # The skid writes are lost (4 per scan), the compute manager's still land.
    assert result.dropped_writes == 4 * 20
    assert len(controller.confirmed) == 5 * 80 - 4 * 20
    # 20 s without a heartbeat: the PLC went to local safe during the outage, then back to
    # remote on the next request once the link was back.
    assert modes[18].value == PlcMode.REMOTE
    after = [m.value for m in modes[39:]]
    assert after[0] == PlcMode.LOCAL_SAFE
    assert after[-1] == PlcMode.REMOTE


def test_outages_of_unknown_devices_are_refused() -> None:
    site = demo_site()
    with pytest.raises(ValueError, match="c9-skid"):
        InProcessField(run_of(site), site, [], [Outage("c9-skid", 0.0, 1.0)])


def test_without_a_controller_the_closed_loop_is_the_plain_run() -> None:
    site = demo_site()
    alone = run_closed_loop(run_of(site), site, None, every_point(site))
    plain = run_of(site).run()
    assert asdict(alone.kpis) == asdict(plain)
    assert alone.controller_seconds == 0.0


# ---------------------------------------------------------------- KPIs


def test_max_outlet_and_band_share_follow_the_truth() -> None:
    site = demo_site()
    run = run_of(site, duration="30 min")
    model = run.model
    hottest, running, outside = -np.inf, 0, 0
    while model.step_index < run.scenario.steps:
        run.step()
        hottest = max(hottest, float(model.water.max()))
        if model.it_power.sum() > 0:
            running += 1
            header = model.flows.supply_header
            outside += not 60.0 <= header <= 70.0
    kpis = model.kpis()
    assert kpis.max_outlet_c == hottest
    assert running > 0
    assert kpis.in_band_share == pytest.approx(1 - outside / running)
    assert kpis.hours_out_of_band == pytest.approx(outside / 3600)


def test_a_seized_pump_loses_its_proof_of_flow_at_the_next_plc_scan() -> None:
    """PLCs alone: the pump seizes with no fault signal; only the flow tells the PLC. Its proof of
    flow drops at its next scan, which cuts IT power (one step of IT power without flow: the scan
    reads the flow of the step before, as a real PLC reads its last sample); the low-flow trip
    follows after its delay. Those seconds are what the KPI counts."""
    site = demo_site()
    run = run_of(site, duration="10 min")
    model = run.model
    for _ in range(120):
        run.step()
    assert model.totals.it_without_flow_steps == 0
    model.seize_pump(0)
    low_flow = model.plcs.limits[Limit.LOW_FLOW, 0]
    counted = 0
    tripped_after = None
    while model.step_index < run.scenario.steps:
        run.step()
        counted += model.it_power[0] > 0 and model.flow[0] < low_flow
        if tripped_after is None and model.plcs.interlocks[0] & Interlock.LOW_FLOW_TRIP:
            tripped_after = model.step_index - 120
    kpis = model.kpis()
    delay = site.config.caisson_types["cabinet-20kw"].plc.low_flow_delay
    assert kpis.it_without_flow_steps == counted == 1
    assert kpis.it_without_flow_s == run.scenario.step
    assert tripped_after is not None
    assert delay <= tripped_after <= delay + 2
    assert kpis.plc_trips == 1
    assert model.it_power[0] == 0.0


def test_a_pump_fault_cuts_it_power_at_once() -> None:
    """A drive that trips and says so: the PLC's fault interlock cuts IT power in the same scan."""
    site = demo_site()
    events = [{"at": "2 min", "kind": "pump_trip", "caisson": "c2"}]
    kpis = run_of(site, duration="10 min", events=events).run()
    assert kpis.it_without_flow_s == 0
    assert kpis.plc_trips == 1

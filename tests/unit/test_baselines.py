"""The benchmark's plain-PI baseline (simulators/baselines.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pytest

from controller.config.loader import LoadedSite, load_site
from controller.control.arbiter import Write
from controller.fieldbus.image import PointRef, Sample
from simulators.baselines import DEFAULT_GAINS, RENEW_EVERY, BaselineScan, PlainPi
from simulators.closed_loop import run_closed_loop
from simulators.plant.plc import PlcMode
from tests.plant_helpers import SITES, scenario_run

AT = datetime(2026, 1, 15, tzinfo=UTC)


def demo_site() -> LoadedSite:
    return load_site(SITES / "demo.yaml")


@dataclass
class Recorder:
    """Wraps a controller and keeps what it wrote, by plant time."""

    inner: PlainPi
    writes: list[tuple[float, Write]] = field(default_factory=list)

    def scan(self, snapshot: Mapping[PointRef, Sample], now: float) -> BaselineScan:
        outcome = self.inner.scan(snapshot, now)
        self.writes += [(now, w) for w in outcome.writes]
        return outcome

    def confirm(self, write: Write, now: float) -> None:
        self.inner.confirm(write, now)


def test_plain_pi_holds_the_outlet_near_its_setpoint() -> None:
    site = demo_site()
    run = scenario_run(site.config, duration="40 min")
    pi = PlainPi(site)
    model = run.model
    outlets: list[np.ndarray] = []

    def sample(step: int) -> None:
        if step >= 15 * 60:
            outlets.append(model.water.copy())

    run_closed_loop(run, site, pi, pi.refs, progress=sample, every=10)
    water = np.array(outlets)
    assert np.all(model.plcs.mode == PlcMode.REMOTE)
    assert np.abs(water - 65.0).max() < 1.0
    assert np.abs(water[-60:] - 65.0).max() < 0.1
    assert model.it_power == pytest.approx(np.full(3, 20_000.0))  # caps at nominal
    assert np.all(model.pump_speed > 0.3)  # controlling, not pinned at the minimum speed


def test_plain_pi_writes_the_supervision_contract() -> None:
    """Remote requested until granted, a heartbeat that changes every cycle, caps at nominal in
    the maps' units, every lease renewed well within its 10 s timeout; nothing to the plant."""
    site = demo_site()
    run = scenario_run(site.config, duration="1 min")
    recorder = Recorder(PlainPi(site))
    run_closed_loop(run, site, recorder, recorder.inner.refs)
    by_point: dict[PointRef, list[tuple[float, Write]]] = {}
    for now, write in recorder.writes:
        by_point.setdefault(write.ref, []).append((now, write))
    assert {ref.device for ref in by_point} == {
        f"c{i}-{kind}" for i in (1, 2, 3) for kind in ("skid", "compute")
    }
    for i in (1, 2, 3):
        skid, compute = f"c{i}-skid", f"c{i}-compute"
        requests = by_point[PointRef(skid, "remote_request")]
        assert [now for now, _ in requests] == [1.0]  # granted at the next PLC scan
        assert requests[0][1].value is True
        beats = [w.value for _, w in by_point[PointRef(skid, "heartbeat")]]
        assert beats == list(range(1, 61))
        for ref in (
            PointRef(skid, "pump_speed_cmd"),
            PointRef(skid, "it_cap_cmd"),
            PointRef(compute, "power_cap"),
        ):
            times = [now for now, _ in by_point[ref]]
            assert times[0] == 1.0
            assert max(np.diff(times)) <= RENEW_EVERY
        for ref in (PointRef(skid, "it_cap_cmd"), PointRef(compute, "power_cap")):
            assert {w.value for _, w in by_point[ref]} == {20.0}  # kW, the map's unit
        speeds = [w.value for _, w in by_point[PointRef(skid, "pump_speed_cmd")]]
        assert all(30.0 <= s <= 100.0 for s in speeds)  # %, never below the minimum speed


def snapshot(outlet: float, mode: int = PlcMode.REMOTE, speed_pct: float = 50.0) -> dict:
    samples = {}
    for i in (1, 2, 3):
        samples[PointRef(f"c{i}-skid", "outlet_temp")] = Sample.good(outlet, AT)
        samples[PointRef(f"c{i}-skid", "plc_mode")] = Sample.good(mode, AT)
        samples[PointRef(f"c{i}-skid", "pump_speed_feedback")] = Sample.good(speed_pct, AT)
    return samples


def speed_of(outcome: BaselineScan) -> float:
    (write,) = [w for w in outcome.writes if w.ref == PointRef("c1-skid", "pump_speed_cmd")]
    return write.si_value


def test_plain_pi_is_reverse_acting_without_windup() -> None:
    pi = PlainPi(demo_site())
    # Bumpless start from the speed the pump runs at.
    assert speed_of(pi.scan(snapshot(65.0), 1.0)) == pytest.approx(0.5)
    # Too hot: faster, at once by the proportional part.
    assert speed_of(pi.scan(snapshot(66.0), 2.0)) == pytest.approx(0.5 + DEFAULT_GAINS.kp, abs=1e-3)
    # Far too cold for a long time: pinned at the pump's minimum speed, the integral does not
    # wind up below it...
    for t in range(3, 2000):
        outcome = pi.scan(snapshot(50.0), float(t))
    assert pi._loops[0].output == pytest.approx(0.3)
    # ...so the loop comes off the limit as soon as the error changes sign.
    assert speed_of(pi.scan(snapshot(65.5), 2000.0)) > 0.3
    assert outcome is not None


def test_plain_pi_tracks_the_plc_until_it_grants_remote() -> None:
    pi = PlainPi(demo_site())
    outcome = pi.scan(snapshot(60.0, mode=PlcMode.LOCAL, speed_pct=90.0), 1.0)
    requests = [w for w in outcome.writes if w.ref.point == "remote_request"]
    assert len(requests) == 3
    assert speed_of(outcome) == pytest.approx(0.9)
    # While local, the loop holds the speed the PLC runs (bumpless), whatever the error says.
    pi.scan(snapshot(60.0, mode=PlcMode.LOCAL, speed_pct=90.0), 2.0)
    assert pi._loops[0].output == pytest.approx(0.9)
    # Granted: from there, the PI acts.
    assert speed_of(pi.scan(snapshot(60.0), 3.0)) < 0.9

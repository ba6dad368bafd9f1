"""The frozen-outlet watch: a caisson's heat balance against a reading that stops moving."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from controller.config.loader import load_site
from controller.control.interlocks import CaissonLimits
from controller.control.outlet_watch import (
    LEARN,
    MOVED,
    OutletWatch,
    outlet_in_use,
    predicted_outlet,
    watch_outlet,
)
from controller.water import VOLUMETRIC_HEAT
from tests.plant_helpers import SITES

SITE = load_site(SITES / "demo.yaml")
LIMITS = CaissonLimits.of(SITE.config.caisson_type(SITE.config.caissons[0]))
POWER = 20e3  # W
INLET = 47.0  # °C


def steady_flow(outlet: float) -> float:
    """m³/s that holds `outlet` at POWER from INLET."""
    return LIMITS.heat_capture * POWER / (VOLUMETRIC_HEAT * (outlet - INLET))


def register(value: float) -> float:
    """The outlet as its 0.1 °C register shows it."""
    return round(value * 10) / 10


@dataclass
class Caisson:
    """A caisson by its heat balance, its outlet sensor (healthy or frozen) and the watch."""

    outlet: float = 65.0
    flow: float = steady_flow(65.0)
    inlet: float = INLET
    inlet_ramp: float = 0.0  # K/s the water entering changes
    inlet_reading_offset: float = 0.0  # K the inlet sensor reads above the water
    inlet_reading_drift: float = 0.0  # K/s the inlet sensor drifts
    stuck_at: float | None = None  # the outlet reading holds this value
    watch: OutletWatch = field(default_factory=OutletWatch)
    now: float = 0.0

    def reading(self) -> float:
        return self.stuck_at if self.stuck_at is not None else register(self.outlet)

    def run(self, seconds: int, flow: Callable[[float], float] | None = None) -> list[bool]:
        """Step 1 s at a time; each second's judgement (frozen or not)."""
        judged = []
        for _ in range(seconds):
            self.inlet += self.inlet_ramp
            if flow is not None:
                self.flow = flow(self.now)
            self.outlet = predicted_outlet(LIMITS, self.outlet, self.inlet, self.flow, POWER, 1.0)
            self.now += 1.0
            self.watch = watch_outlet(
                LIMITS,
                self.watch,
                outlet=self.reading(),
                inlet=self.inlet + self.inlet_reading_offset + self.inlet_reading_drift * self.now,
                flow=self.flow,
                it_power=POWER,
                now=self.now,
                dt=1.0,
            )
            judged.append(self.watch.frozen)
        return judged


def test_the_heat_balance_settles_where_the_flow_carries_the_heat_away() -> None:
    flow = steady_flow(65.0)
    assert predicted_outlet(LIMITS, 50.0, INLET, flow, POWER, 1e6) == pytest.approx(65.0)
    half = predicted_outlet(LIMITS, 50.0, INLET, flow, POWER, 0.0)
    assert half == 50.0
    # Standing water: the servers' heat stays in the caisson's capacity.
    warmed = predicted_outlet(LIMITS, 50.0, INLET, 0.0, POWER, 60.0)
    assert warmed == pytest.approx(50.0 + LIMITS.heat_capture * POWER * 60.0 / LIMITS.capacity)


@pytest.mark.parametrize(
    ("what", "flow"),
    [
        ("steady", None),
        ("flow doubled", lambda t: steady_flow(65.0) * (2.0 if t > 60 else 1.0)),
        ("flow halved", lambda t: steady_flow(65.0) * (0.5 if t > 60 else 1.0)),
        ("flow swinging", lambda t: steady_flow(65.0) * (1.0 + 0.4 * ((t // 120) % 2))),
    ],
)
def test_a_healthy_reading_is_never_judged_frozen(
    what: str, flow: Callable[[float], float] | None
) -> None:
    caisson = Caisson()
    assert not any(caisson.run(3600, flow)), what


def test_an_inlet_sensor_drifting_3_k_an_hour_is_not_taken_for_a_frozen_outlet() -> None:
    """The outlet is steady and its register constant; the model, fed the drifting inlet, moves
    0.5 K in ten minutes and is anchored again before that adds up."""
    caisson = Caisson(inlet_reading_drift=3.0 / 3600)
    assert not any(caisson.run(2 * 3600))


def test_an_inlet_sensor_reading_5_k_high_from_the_start_is_learnt_not_judged() -> None:
    # The water enters 5 K colder than the inlet sensor says.
    caisson = Caisson(inlet=INLET - 5.0, inlet_reading_offset=5.0)
    caisson.flow = LIMITS.heat_capture * POWER / (VOLUMETRIC_HEAT * (65.0 - caisson.inlet))
    assert not any(caisson.run(3600))
    assert caisson.watch.bias == pytest.approx(-5.0, abs=0.1)


def test_a_new_watch_learns_before_it_judges() -> None:
    """Taken over with the sensor already frozen (a restart): a change within the first LEARN
    seconds is not judged, whatever it does to the water."""
    caisson = Caisson(stuck_at=65.0)
    doubled = steady_flow(65.0) * 2.0
    judged = caisson.run(int(LEARN) - 1, lambda t: doubled if t > 60 else steady_flow(65.0))
    assert abs(caisson.outlet - 65.0) > 2 * MOVED
    assert not any(judged)


def flow_holding_the_outlet(caisson: Caisson) -> Callable[[float], float]:
    """A perfect feedforward: the flow that holds 65 °C from the inlet the water has now."""
    return lambda _t: LIMITS.heat_capture * POWER / (VOLUMETRIC_HEAT * (65.0 - caisson.inlet))


def test_a_return_cooling_4_k_an_hour_under_a_perfect_feedforward_is_not_taken_for_a_fault() -> (
    None
):
    """The pump speeds up just as much as the colder inlet asks: the outlet stays at 65.0 and so
    does its healthy reading, while the rise flow and power give moves 4 K in the hour."""
    caisson = Caisson(inlet_ramp=-4.0 / 3600)
    assert not any(caisson.run(3600, flow_holding_the_outlet(caisson)))
    assert register(caisson.outlet) == 65.0


@pytest.mark.parametrize("kelvin_per_hour", [4.0, 8.0])
def test_a_loop_winding_slowly_against_a_frozen_reading_is_found(kelvin_per_hour: float) -> None:
    """The reading froze at the true 65.0 °C; the pump then slows as a loop's integral winds
    against it, the water warming a few kelvin an hour. The bias does not learn what the flow
    explains, so the estimate leaves the reading, and it follows the water within a kelvin."""
    caisson = Caisson(stuck_at=65.0)
    caisson.run(int(LEARN))
    start = caisson.now

    def winding(t: float) -> float:  # the flow for an outlet rising `kelvin_per_hour`
        return steady_flow(65.0 + kelvin_per_hour * (t - start) / 3600)

    judged = caisson.run(3600, winding)
    assert any(judged)
    found = judged.index(True)
    assert found < 3600 * (MOVED + 1.0) / kelvin_per_hour  # before the water is 3 K off
    used = outlet_in_use(caisson.watch, caisson.reading())
    assert used is not None
    assert used == pytest.approx(caisson.outlet, abs=1.0)


def test_a_frozen_reading_is_found_once_the_water_moves_and_the_model_stands_in() -> None:
    caisson = Caisson(stuck_at=65.0)
    assert not any(caisson.run(1200))  # frozen at the true value: nothing to tell, nothing wrong
    doubled = steady_flow(65.0) * 2.0
    judged = caisson.run(600, lambda _t: doubled)
    found = judged.index(True)
    assert found < 120  # within two minutes of the outlet starting to fall
    assert all(judged[found:])
    # The model is the outlet the loops act on, and it follows the water, not the sensor.
    used = outlet_in_use(caisson.watch, caisson.reading())
    assert used is not None
    assert used == pytest.approx(caisson.outlet, abs=0.05)
    assert abs(used - 65.0) > MOVED
    # The sensor comes back: its reading moves, and it is trusted again at once.
    caisson.stuck_at = None
    assert caisson.run(1) == [False]
    assert outlet_in_use(caisson.watch, caisson.reading()) == register(caisson.outlet)


@pytest.mark.parametrize(
    ("missing", "value"), [("inlet", None), ("flow", None), ("it_power", None), ("outlet", None)]
)
def test_without_the_models_inputs_nothing_is_judged(missing: str, value: None) -> None:
    caisson = Caisson(stuck_at=65.0)
    caisson.run(int(LEARN))
    caisson.run(120, lambda _t: steady_flow(65.0) * 2.0)
    assert caisson.watch.frozen
    inputs = {"outlet": 65.0, "inlet": INLET, "flow": steady_flow(65.0), "it_power": POWER}
    watch = watch_outlet(
        LIMITS, caisson.watch, **{**inputs, missing: value}, now=caisson.now + 1, dt=1.0
    )
    assert watch == OutletWatch()
    assert outlet_in_use(watch, 65.0) == 65.0


@pytest.mark.parametrize("share", [0.5, 0.0])
def test_standing_water_is_not_judged(share: float) -> None:
    """Below the low-flow limit (or with the pump stopped) the caisson's water barely moves: a
    steady reading is right."""
    caisson = Caisson(stuck_at=65.0)
    judged = caisson.run(1800, lambda _t: LIMITS.low_flow * share)
    assert not any(judged)
    assert caisson.watch == OutletWatch()

"""PID: saturation, anti-windup, bumpless transfer, ramps; and the outlet loop built on it."""

from __future__ import annotations

import math

import pytest

from controller.control.interlocks import CaissonLimits
from controller.control.outlet_loop import (
    LoopState,
    feedforward_speed,
    initial_state,
    loop_step,
    scheduled_gains,
)
from controller.control.pid import PidGains, PidState, pid_step, ramp, track
from controller.water import VOLUMETRIC_HEAT
from tests.plant_helpers import site_config

GAINS = PidGains(kp=0.5, ti=10.0, out_min=0.0, out_max=1.0)


def first_order(
    value: float, output: float, dt: float, gain: float = 10.0, tau: float = 20.0
) -> float:
    """A process y' = (gain·u − y) / tau, stepped explicitly."""
    return value + dt / tau * (gain * output - value)


def test_output_is_clamped_to_its_range() -> None:
    high = pid_step(GAINS, PidState(), setpoint=100.0, measurement=0.0, dt=1.0)
    low = pid_step(GAINS, PidState(), setpoint=-100.0, measurement=0.0, dt=1.0)
    assert high.output == 1.0
    assert low.output == 0.0


def test_integral_does_not_wind_up_while_saturated() -> None:
    state = PidState()
    for _ in range(1000):  # a long unreachable setpoint: the output sits at its maximum
        state = pid_step(GAINS, state, setpoint=50.0, measurement=0.0, dt=1.0)
    assert state.output == 1.0
    assert state.integral <= GAINS.out_max
    # The error changes sign: the output leaves its limit at once (no wound-up integral to undo).
    after = pid_step(GAINS, state, setpoint=0.0, measurement=1.5, dt=1.0)
    assert after.output < 1.0


def test_a_windup_free_loop_recovers_faster_than_a_naive_one() -> None:
    """After a long saturation the loop settles in the time a fresh loop takes, not longer."""

    def settle_time(state: PidState) -> int:
        y = 5.0
        for k in range(2000):
            state = pid_step(GAINS, state, setpoint=5.0, measurement=y, dt=1.0)
            y = first_order(y, state.output, 1.0)
            if k > 50 and abs(y - 5.0) < 0.05:
                return k
        return 2000

    saturated = PidState()
    for _ in range(500):
        saturated = pid_step(GAINS, saturated, setpoint=50.0, measurement=0.0, dt=1.0)
    fresh = track(GAINS, PidState(), 0.5, setpoint=5.0, measurement=5.0)
    assert settle_time(saturated) <= settle_time(fresh) + 60


def test_closed_loop_reaches_the_setpoint_without_offset() -> None:
    y, state = 0.0, PidState()
    for _ in range(600):
        state = pid_step(GAINS, state, setpoint=4.0, measurement=y, dt=1.0)
        y = first_order(y, state.output, 1.0)
    assert y == pytest.approx(4.0, abs=0.01)


def test_track_makes_the_switch_to_automatic_bumpless() -> None:
    held = 0.37
    state = track(GAINS, PidState(), held, setpoint=5.0, measurement=5.0)
    assert state.output == held
    first = pid_step(GAINS, state, setpoint=5.0, measurement=5.0, dt=1.0)
    assert first.output == pytest.approx(held, abs=1e-12)


def test_track_accounts_for_feedforward_and_error() -> None:
    state = track(GAINS, PidState(), 0.6, setpoint=5.0, measurement=4.0, feedforward=0.2)
    first = pid_step(GAINS, state, setpoint=5.0, measurement=4.0, dt=1.0, feedforward=0.2)
    # Only the integral's own motion over one step separates the two.
    assert first.output == pytest.approx(0.6 + GAINS.kp * 1.0 / GAINS.ti, abs=1e-12)


def test_derivative_is_filtered_and_acts_on_the_measurement_only() -> None:
    gains = PidGains(kp=1.0, ti=math.inf, td=5.0, derivative_filter=5.0, out_min=-10, out_max=10)
    state = pid_step(gains, PidState(), setpoint=0.0, measurement=0.0, dt=1.0)
    kicked = pid_step(gains, state, setpoint=3.0, measurement=0.0, dt=1.0)
    assert kicked.derivative == 0.0  # a setpoint step does not kick
    moved = pid_step(gains, state, setpoint=0.0, measurement=1.0, dt=1.0)
    unfiltered = -gains.kp * gains.td * 1.0
    assert unfiltered < moved.derivative < 0.0


@pytest.mark.parametrize(
    ("current", "target", "rate", "dt", "expected"),
    [(60.0, 65.0, 1 / 60, 60.0, 61.0), (65.0, 60.0, 0.5, 2.0, 64.0), (64.9, 65.0, 1.0, 1.0, 65.0)],
)
def test_ramp_moves_at_most_rate_times_dt(
    current: float, target: float, rate: float, dt: float, expected: float
) -> None:
    assert ramp(current, target, rate, dt) == pytest.approx(expected)


# ---------------------------------------------------------------- the outlet loop

# The demo site's 20 kW cabinet: 150 kJ/K, 48 chips at 0.05 K/W, pump 40 L/min from 30 %.
LIMITS = CaissonLimits.of(site_config("demo").caisson_types["cabinet-20kw"])


def step(
    state: LoopState,
    *,
    outlet: float,
    inlet: float,
    power: float,
    speed: float,
    held: float | None = None,
) -> LoopState:
    """One 1 s step of the loop towards 65 °C, its setpoint ramping at 1 K/min."""
    return loop_step(
        LIMITS,
        state,
        outlet=outlet,
        inlet=inlet,
        it_power=power,
        speed=speed,
        target=65.0,
        ramp_rate=1 / 60,
        dt=1.0,
        held=held,
    )


def test_feedforward_is_the_energy_balance() -> None:
    speed = feedforward_speed(LIMITS, 20e3, inlet=55.0, setpoint=65.0)
    flow = speed * LIMITS.max_flow
    assert VOLUMETRIC_HEAT * flow * 10.0 == pytest.approx(0.94 * 20e3)


def test_gains_follow_the_flow() -> None:
    slow = scheduled_gains(LIMITS, 0.3, inlet=50.0, setpoint=65.0, floor=0.0)
    fast = scheduled_gains(LIMITS, 1.0, inlet=50.0, setpoint=65.0, floor=0.0)
    assert slow.kp < 0
    assert fast.kp < 0
    assert slow.ti > fast.ti  # the caisson's time constant shrinks with flow
    assert scheduled_gains(LIMITS, 0.5, 50.0, 65.0, floor=0.7).out_min == 0.7


def caisson(outlet: float, inlet: float, speed: float, power: float, dt: float) -> float:
    flow = speed * LIMITS.max_flow
    gain = LIMITS.heat_capture * power - VOLUMETRIC_HEAT * flow * (outlet - inlet)
    return outlet + dt / LIMITS.capacity * gain


@pytest.mark.parametrize(
    ("inlet", "power"),  # operating points where the minimum speed still lets 65 °C be reached
    [(45.0, 20e3), (50.0, 20e3), (58.0, 20e3), (57.0, 8e3), (60.0, 5e3)],
)
def test_outlet_loop_holds_the_setpoint_across_operating_points(inlet: float, power: float) -> None:
    outlet, speed = inlet + 5.0, 0.9  # as a PLC in local mode leaves it
    state = initial_state(speed, setpoint=65.0)
    history = []
    for _ in range(1800):
        state = step(state, outlet=outlet, inlet=inlet, power=power, speed=speed)
        speed += max(min(state.pid.output - speed, 0.2), -0.2)  # the drive's ramp
        outlet = caisson(outlet, inlet, speed, power, 1.0)
        history.append(outlet)
    assert max(history) < 66.0  # no overshoot worth the name
    assert all(abs(t - 65.0) < 0.1 for t in history[-600:])


def test_outlet_loop_rejects_an_inlet_step_quickly() -> None:
    outlet, speed, inlet = 65.0, 0.5, 50.0
    state = initial_state(speed, setpoint=65.0)
    worst = 0.0
    for k in range(1200):
        if k == 300:
            inlet = 56.0  # hot water comes back from the tank
        state = step(state, outlet=outlet, inlet=inlet, power=20e3, speed=speed)
        speed += max(min(state.pid.output - speed, 0.2), -0.2)
        outlet = caisson(outlet, inlet, speed, 20e3, 1.0)
        if k > 300:
            worst = max(worst, abs(outlet - 65.0))
    assert worst < 1.0
    assert abs(outlet - 65.0) < 0.05


def test_outlet_loop_respects_the_minimum_speed_and_tracks_a_held_speed() -> None:
    state = initial_state(0.5, setpoint=65.0)
    idle = step(state, outlet=50.0, inlet=50.0, power=0.0, speed=0.5)
    assert idle.pid.output >= LIMITS.min_speed
    held = step(state, outlet=64.0, inlet=50.0, power=20e3, speed=0.9, held=0.9)
    assert held.pid.output == 0.9
    resumed = step(held, outlet=64.0, inlet=50.0, power=20e3, speed=0.9)
    assert abs(resumed.pid.output - 0.9) < 0.02  # bumpless: 2 % of range at most

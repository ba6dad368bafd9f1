"""PID with feedforward, anti-windup, filtered derivative, bumpless transfer; setpoint ramps. Pure.

The integral is kept in output units. Anti-windup is conditional integration: the integral does
not move further into a saturated output, and with the feedforward it never exceeds the output
range, so a saturated loop comes off its limit as soon as the error changes sign. The derivative
acts on the measurement (no kick on a setpoint step) through a first-order filter of time
constant td / derivative_filter.

Bumpless transfer: `track()` sets the integral so that the loop's output equals a given value
(the one a PLC or an operator holds now); the first automatic output after it is that value plus
the proportional response to what changed since.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class PidGains:
    kp: float  # output per unit of error (error = setpoint - measurement; negative kp: reverse)
    ti: float  # s, integral time (inf: no integral)
    td: float = 0.0  # s, derivative time
    derivative_filter: float = 10.0  # N: the derivative's filter time constant is td / N
    out_min: float = 0.0
    out_max: float = 1.0


@dataclass(frozen=True)
class PidState:
    integral: float = 0.0  # output units
    derivative: float = 0.0  # filtered derivative term, output units
    measurement: float | None = None  # last measurement (for the derivative)
    output: float = 0.0


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def pid_step(
    gains: PidGains,
    state: PidState,
    setpoint: float,
    measurement: float,
    dt: float,
    feedforward: float = 0.0,
) -> PidState:
    """One sample of the loop; the new output is `.output`."""
    error = setpoint - measurement
    proportional = gains.kp * error
    derivative = 0.0
    if gains.td > 0.0 and state.measurement is not None and dt > 0.0:
        filter_time = gains.td / gains.derivative_filter
        raw = -gains.kp * gains.td * (measurement - state.measurement) / dt
        derivative = state.derivative + dt / (filter_time + dt) * (raw - state.derivative)
    # Anti-windup by conditional integration: no integrating further into a saturated output;
    # and the integral alone (with the feedforward) never holds more than the output range.
    fixed = feedforward + proportional + derivative
    integral = state.integral
    if gains.ti > 0.0 and gains.ti != float("inf"):
        increment = gains.kp * error * dt / gains.ti
        unsaturated = fixed + integral + increment
        winding_up = unsaturated > gains.out_max and increment > 0
        winding_down = unsaturated < gains.out_min and increment < 0
        if not (winding_up or winding_down):
            integral += increment
    integral = _clamp(integral, gains.out_min - feedforward, gains.out_max - feedforward)
    output = _clamp(fixed + integral, gains.out_min, gains.out_max)
    return PidState(integral, derivative, measurement, output)


def track(
    gains: PidGains,
    state: PidState,
    output: float,
    setpoint: float,
    measurement: float | None,
    feedforward: float = 0.0,
) -> PidState:
    """The loop follows an output held by someone else (manual, operator, PLC): its integral is set
    so that switching to automatic starts from `output` (bumpless)."""
    output = _clamp(output, gains.out_min, gains.out_max)
    proportional = 0.0 if measurement is None else gains.kp * (setpoint - measurement)
    integral = output - feedforward - proportional
    return replace(state, integral=integral, derivative=0.0, measurement=measurement, output=output)


def ramp(current: float, target: float, rate: float, dt: float) -> float:
    """`current` moved towards `target` by at most `rate`·`dt`."""
    step = rate * dt
    return current + _clamp(target - current, -step, step)

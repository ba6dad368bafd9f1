"""The caisson outlet-temperature loop: pump speed from feedforward plus PI trim. Pure.

The feedforward is the energy balance: the flow that carries the captured IT heat away at the
setpoint, ṁ = η·P_IT / (c_p·(T_set − T_in)), from the measured IT power and inlet temperature. It
does most of the work, and it answers the inlet's swings at once: the inlet is the plant's return,
which comes back through a pipe whose delay varies with flow (volume / flow), so a feedback loop
alone would see those swings late and chase them.

The PI trim corrects what the feedforward misses (heat capture, sensor offsets). The caisson is a
first-order process whose gain and time constant both move with the flow, so the gains follow the
operating point each cycle (SIMC rules, Skogestad 2003): τ = C / (ρ·c_p·q), K = −(T_set − T_in) /
speed, dead time θ = the outlet sensor's lag plus one scan, closed-loop time λ = max(τ/2, 4θ).
With ti = min(τ, 4(λ + θ)) the loop stays well damped from minimum to full flow.

The setpoint ramps (K/s), the pump never goes below its minimum speed (nor below an interlock's
floor), and when someone else holds the speed (an operator lease, a PLC in local mode, an
interlock's safe state) the loop tracks it, so taking over again is bumpless.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.control.interlocks import CaissonLimits
from controller.control.pid import PidGains, PidState, pid_step, ramp, track
from controller.water import VOLUMETRIC_HEAT

MIN_RISE = 5.0  # K: the feedforward's floor on T_set − T_in (a hot inlet must not ask ∞ flow)
SENSOR_LAG = 5.0  # s: outlet sensor lag plus one scan, the loop's effective dead time


@dataclass(frozen=True)
class LoopState:
    pid: PidState
    setpoint: float  # °C, the ramped setpoint in force


def initial_state(speed: float, setpoint: float) -> LoopState:
    """A loop that starts from the speed the pump runs at now: its first step tracks that speed
    (with the feedforward and error of that moment), so the start is bumpless."""
    return LoopState(PidState(output=speed), setpoint)


def feedforward_speed(
    limits: CaissonLimits, it_power: float, inlet: float, setpoint: float
) -> float:
    rise = max(setpoint - inlet, MIN_RISE)
    flow = limits.heat_capture * it_power / (VOLUMETRIC_HEAT * rise)
    return min(flow / limits.max_flow, 1.0)


def scheduled_gains(
    limits: CaissonLimits, speed: float, inlet: float, setpoint: float, floor: float
) -> PidGains:
    speed = max(speed, limits.min_speed)
    flow = speed * limits.max_flow
    tau = limits.capacity / (VOLUMETRIC_HEAT * flow)
    gain = (
        max(setpoint - inlet, MIN_RISE) / speed
    )  # K per unit speed (the caisson cools as it rises)
    closed_loop = max(tau / 2, 4 * SENSOR_LAG)
    kp = -tau / (gain * (closed_loop + SENSOR_LAG))  # reverse acting: too hot → faster
    ti = min(tau, 4 * (closed_loop + SENSOR_LAG))
    return PidGains(kp=kp, ti=ti, out_min=max(limits.min_speed, floor), out_max=1.0)


def loop_step(
    limits: CaissonLimits,
    state: LoopState,
    *,
    outlet: float,
    inlet: float,
    it_power: float,
    speed: float | None,
    target: float,
    ramp_rate: float,
    dt: float,
    floor: float = 0.0,
    held: float | None = None,
) -> LoopState:
    """One cycle: the new pump speed is `.pid.output`. `speed`: the drive's feedback (the gains
    follow it); `floor`: an interlock's minimum speed; `held`: a speed someone else holds (the loop
    tracks it)."""
    setpoint = ramp(state.setpoint, target, ramp_rate, dt)
    feedforward = feedforward_speed(limits, it_power, inlet, setpoint)
    gains = scheduled_gains(
        limits, state.pid.output if speed is None else speed, inlet, setpoint, floor
    )
    if held is not None:
        pid = track(gains, state.pid, held, setpoint, outlet, feedforward)
    elif state.pid.measurement is None:  # first step after start: from the speed it runs at
        started = track(gains, state.pid, state.pid.output, setpoint, outlet, feedforward)
        pid = pid_step(gains, started, setpoint, outlet, dt, feedforward)
    else:
        pid = pid_step(gains, state.pid, setpoint, outlet, dt, feedforward)
    return LoopState(pid, setpoint)

"""A frozen outlet sensor found within minutes, and the outlet the loops use instead. Pure.

A hung transmitter or a PLC input card holding its last value keeps the outlet reading GOOD and
constant. The outlet loop then trims the pump against a number that no longer answers: the first
setpoint change or load step winds its integral to a limit, and the true outlet leaves the band
(or, the other way, heads for the over-temperature trip, which reads the same frozen sensor).
The alarm for operators (alarms/sensor_checks.py) waits a quarter of an hour to be sure; control
cannot wait that long.

The caisson's heat balance predicts its outlet from the other readings:
C·dT/dt = η·P_IT − ρ·c_p·q·(T − T_in). The model runs on those readings every scan, and a bias
learnt slowly (BIAS_TIME) from the outlet reading takes out what the model gets wrong at rest
(heat capture, meter offsets, an inlet sensor drifting a few kelvin an hour): the estimate is the
model plus that bias. The bias learns only while the rise the flow and IT power give,
η·P_IT / (ρ·c_p·q), stays within RISE_STEADY of its recent value: a change of flow or power moves
the water, and a healthy sensor shows it (its register moves at 0.1 K), so what the model then
predicts is not the model's error to learn. Learning it would let a slow change hide, such as the
loop's own integral winding the pump down against a frozen reading a tenth of a kelvin off its
setpoint. So a reading that has stood still while the estimate moved MOVED away from it is a frozen
sensor: the bias stops, and the estimate becomes the outlet until the reading moves again. A new
watch (after a restart, a lost input, or standing water) first learns its bias for LEARN seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from controller.control.interlocks import CaissonLimits
from controller.water import VOLUMETRIC_HEAT

EPSILON = 0.05  # K: half the outlet register's step, so any change of the register is a move
MOVED = 2.0  # K between the estimate and a reading that stands still
BIAS_TIME = 600.0  # s: the bias's time constant (a drift slower than MOVED / BIAS_TIME is learnt)
LEARN = 900.0  # s a new watch learns its bias before it judges
RISE_STEADY = 0.5  # K the rise may stray from its recent value (BIAS_TIME) while the bias learns


@dataclass(frozen=True)
class OutletWatch:
    model: float | None = None  # °C, the heat balance's outlet (None: nothing to watch yet)
    bias: float = 0.0  # K the reading runs above the model at rest
    reading: float | None = None  # °C, the reading when it last moved
    since: float = 0.0  # monotonic s the watch started
    rise: float = 0.0  # K, the rise flow and IT power gave of late (followed at BIAS_TIME)
    frozen: bool = False  # the reading is judged frozen; the estimate stands in for it

    @property
    def estimate(self) -> float | None:
        return None if self.model is None else self.model + self.bias


def settled_rise(limits: CaissonLimits, flow: float, it_power: float) -> float:
    """K the water rises through the caisson at rest: η·P_IT / (ρ·c_p·q), for q > 0."""
    return limits.heat_capture * max(it_power, 0.0) / (VOLUMETRIC_HEAT * flow)


def predicted_outlet(
    limits: CaissonLimits, outlet: float, inlet: float, flow: float, it_power: float, dt: float
) -> float:
    """The outlet `dt` later by the caisson's heat balance (exact for inputs held over `dt`)."""
    if flow <= 0.0:
        return outlet + limits.heat_capture * max(it_power, 0.0) * dt / limits.capacity
    settled = inlet + settled_rise(limits, flow, it_power)
    decay = math.exp(-VOLUMETRIC_HEAT * flow * dt / limits.capacity)
    return settled + (outlet - settled) * decay


def watch_outlet(
    limits: CaissonLimits,
    watch: OutletWatch,
    *,
    outlet: float | None,
    inlet: float | None,
    flow: float | None,
    it_power: float | None,
    now: float,
    dt: float,
) -> OutletWatch:
    """The watch after this scan. Without a reading or a model's inputs, or with the water
    standing (below the low-flow limit), nothing can be judged: the watch starts again."""
    if outlet is None or inlet is None or flow is None or it_power is None:
        return OutletWatch()
    if flow < limits.low_flow:
        return OutletWatch()
    rise = settled_rise(limits, flow, it_power)
    if watch.model is None or watch.reading is None:
        return OutletWatch(model=outlet, reading=outlet, since=now, rise=rise)
    model = predicted_outlet(limits, watch.model, inlet, flow, it_power, dt)
    if abs(outlet - watch.reading) > EPSILON:  # it moves: healthy, and the model follows it
        return replace(watch, model=outlet - watch.bias, reading=outlet, rise=rise, frozen=False)
    if watch.frozen:
        return replace(watch, model=model)
    share = min(dt / BIAS_TIME, 1.0)
    bias = watch.bias
    if abs(rise - watch.rise) < RISE_STEADY:
        bias += (outlet - model - bias) * share
    frozen = now - watch.since >= LEARN and abs(model + bias - outlet) >= MOVED
    return OutletWatch(
        model, bias, watch.reading, watch.since, watch.rise + (rise - watch.rise) * share, frozen
    )


def outlet_in_use(watch: OutletWatch, reading: float | None) -> float | None:
    """The outlet the loops act on: the estimate while the reading is frozen, else the reading."""
    return watch.estimate if watch.frozen else reading

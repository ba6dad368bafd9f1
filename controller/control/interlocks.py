"""Supervisory interlocks: what each caisson may do this cycle, on top of its PLC's own. Pure.

The PLC holds hard safety (DOMAIN.md); these act earlier and more gently, and keep dispatch from
counting on a caisson that cannot take load:
- a STALE or BAD critical input: the caisson goes to its safe state (the PLC's safe pump speed and
  safe cap), and dispatch leaves it alone;
- outlet over-temperature in three stages below the PLC's trip, with hysteresis: caps cut and the
  pump pushed up, before the PLC has to trip;
- low flow or a pump fault: cap 0 (IT power without flow is the one thing never allowed) and pump
  to full speed; not for a pump the PLC has stopped on request (standby: no flow by design), nor
  while a pump starts (the PLC proves its flow before any IT power, and trips if it cannot);
- a leak, or a trip the PLC reports: cap 0, out of dispatch (isolation is the PLC's);
- chip temperature: the cap that keeps the hottest chip `chip_margin` below throttling;
- a maintenance lockout: cap 0, out of dispatch.
The interlocks never stop a pump: stopping a pump with IT power on is the dangerous direction (an
idle caisson's pump stops only through the PLC's standby sequence, which checks the power itself).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from controller.config.site import CaissonType
from controller.control.inputs import CaissonInputs

# The PLC interlock word (plc_maps/caisson_skid.yaml, `interlocks`): trip bits.
LOW_FLOW_TRIP, OVERTEMP_TRIP, LEAK_TRIP, PUMP_FAULT_TRIP = 1 << 0, 1 << 2, 1 << 3, 1 << 4
TRIP_BITS = LOW_FLOW_TRIP | OVERTEMP_TRIP | LEAK_TRIP | PUMP_FAULT_TRIP
OVERTEMP_HYSTERESIS = 1.5  # K below a stage's threshold before it releases


class Interlock(StrEnum):
    INPUTS_LOST = "inputs_lost"
    LOW_FLOW = "low_flow"
    PUMP_FAULT = "pump_fault"
    LEAK = "leak"
    PLC_TRIP = "plc_trip"
    OVERTEMP_1 = "overtemp_1"
    OVERTEMP_2 = "overtemp_2"
    OVERTEMP_3 = "overtemp_3"
    CHIP_MARGIN = "chip_margin"
    LOCKOUT = "lockout"


@dataclass(frozen=True)
class CaissonLimits:
    """A caisson type's figures the interlocks and loops need (SI)."""

    nominal_power: float  # W
    heat_capture: float
    capacity: float  # J/K
    chip_resistance: float  # K/W of the caisson (per chip / chips)
    throttle: float  # °C
    max_flow: float  # m³/s
    min_speed: float
    safe_speed: float
    safe_cap: float  # W
    low_flow: float  # m³/s
    overtemp_warn: float  # °C
    overtemp_trip: float  # °C

    @classmethod
    def of(cls, kind: CaissonType) -> CaissonLimits:
        return cls(
            nominal_power=kind.it_power,
            heat_capture=kind.heat_capture,
            capacity=kind.thermal_capacity,
            chip_resistance=kind.chips.thermal_resistance / kind.chips.count,
            throttle=kind.chips.throttle,
            max_flow=kind.pump.max_flow,
            min_speed=kind.pump.min_speed,
            safe_speed=kind.plc.safe_pump_speed,
            safe_cap=kind.plc.safe_cap,
            low_flow=kind.plc.low_flow,
            overtemp_warn=kind.plc.overtemp_warn,
            overtemp_trip=kind.plc.overtemp_trip,
        )

    def overtemp_thresholds(self) -> tuple[float, float, float]:
        """Outlet temperatures of stages 1..3: 2 K below the PLC's warning, at it, and 2 K below
        its trip."""
        return self.overtemp_warn - 2.0, self.overtemp_warn, self.overtemp_trip - 2.0


# Stage → (cap as a share of nominal power, pump speed at least)
OVERTEMP_STAGES = {1: (0.7, 0.7), 2: (0.4, 1.0), 3: (0.0, 1.0)}


@dataclass(frozen=True)
class Guard:
    active: frozenset[Interlock]
    cap_max: float  # W: the most this caisson may be capped at
    pump_min: float  # the pump at least this fast
    safe_state: bool  # pump and cap held at the PLC's safe values
    dispatchable: bool  # dispatch may give it load
    overtemp_stage: int  # carried to the next cycle (hysteresis)


def overtemp_stage(limits: CaissonLimits, outlet: float, previous: int) -> int:
    thresholds = limits.overtemp_thresholds()
    stage = sum(outlet >= t for t in thresholds)
    if stage < previous:  # release one stage at a time, once below its threshold less hysteresis
        released = outlet < thresholds[previous - 1] - OVERTEMP_HYSTERESIS
        stage = previous - 1 if released else previous
    return stage


def guard(
    limits: CaissonLimits,
    inputs: CaissonInputs,
    *,
    previous_stage: int = 0,
    chip_margin: float = 3.0,
    locked_out: bool = False,
    starting: bool = False,
) -> Guard:
    """`starting`: the pump was asked to start a moment ago (its flow is still being proven)."""
    active: set[Interlock] = set()
    cap_max = limits.nominal_power
    pump_min = limits.min_speed
    if locked_out:
        active.add(Interlock.LOCKOUT)
        cap_max = 0.0
    if not inputs.critical_ok:
        active.add(Interlock.INPUTS_LOST)
        return Guard(
            frozenset(active),
            min(cap_max, limits.safe_cap),
            limits.safe_speed,
            safe_state=True,
            dispatchable=False,
            overtemp_stage=previous_stage,
        )
    assert inputs.flow is not None
    assert inputs.outlet is not None
    assert inputs.interlocks is not None
    if inputs.flow < limits.low_flow and not inputs.standby and not starting:
        active.add(Interlock.LOW_FLOW)
    if inputs.pump_fault:
        active.add(Interlock.PUMP_FAULT)
    if active & {Interlock.LOW_FLOW, Interlock.PUMP_FAULT}:
        cap_max, pump_min = 0.0, 1.0
    if inputs.leak or inputs.interlocks & LEAK_TRIP:
        active.add(Interlock.LEAK)
        cap_max = 0.0
    if inputs.interlocks & TRIP_BITS:
        active.add(Interlock.PLC_TRIP)
        cap_max = 0.0
    stage = overtemp_stage(limits, inputs.outlet, previous_stage)
    if stage:
        active.add((Interlock.OVERTEMP_1, Interlock.OVERTEMP_2, Interlock.OVERTEMP_3)[stage - 1])
        share, speed = OVERTEMP_STAGES[stage]
        cap_max = min(cap_max, share * limits.nominal_power)
        pump_min = max(pump_min, speed)
    chip_cap = chip_limited_cap(limits, inputs, chip_margin)
    if chip_cap < cap_max:
        active.add(Interlock.CHIP_MARGIN)
        cap_max = chip_cap
    dispatchable = not active & {
        Interlock.LOCKOUT,
        Interlock.LOW_FLOW,
        Interlock.PUMP_FAULT,
        Interlock.LEAK,
        Interlock.PLC_TRIP,
        Interlock.OVERTEMP_3,
    }
    return Guard(frozenset(active), cap_max, pump_min, False, dispatchable, stage)


def chip_limited_cap(limits: CaissonLimits, inputs: CaissonInputs, margin: float) -> float:
    """W at which the hottest chip sits `margin` below throttling: from the model T_chip = T_water +
    R·P, corrected by the measured chip temperature when the compute manager reports one."""
    assert inputs.outlet is not None
    ceiling = limits.throttle - margin
    cap = max((ceiling - inputs.outlet) / limits.chip_resistance, 0.0)
    if inputs.chip_temp is not None and inputs.it_power is not None:
        measured = inputs.it_power - (inputs.chip_temp - ceiling) / limits.chip_resistance
        if inputs.chip_temp > ceiling:
            cap = min(cap, max(measured, 0.0))
    return cap

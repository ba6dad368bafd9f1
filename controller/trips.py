"""A caisson's PLC trips and whether an engineer may reset them now. Pure.

The caisson PLC trips on its own (plc_maps/caisson_skid.yaml, `interlocks`): low flow and outlet
over-temperature clear by themselves once their cause has gone for a while; a leak or a pump fault
stays until an engineer resets it (`boilerctl reset-trip`) after the repair. The controller never
resets a trip by itself: a reset is an engineer's decision, journaled with who and why.

A reset is refused while a trip's cause is still present as the skid reports it: the drip tray
still wet, the drive still in fault, the outlet still at or above the trip level, or (unless the
caisson is isolated by a leak or pump-fault trip, which stops its pump) the flow still below the
low-flow limit. The PLC decides in the end; `cleared` compares its interlock word before and after.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from controller.config.site import CaissonPlc

# Bits of the skid's interlock word, by the map's name of each trip point.
TRIP_BITS: Final[dict[str, int]] = {
    "low_flow_trip": 1 << 0,
    "overtemp_trip": 1 << 2,
    "leak_trip": 1 << 3,
    "pump_fault_trip": 1 << 4,
}
# Trips that stop the caisson's pump (isolation): its low flow is their consequence, not a cause.
ISOLATING: Final = frozenset({"leak_trip", "pump_fault_trip"})
L_MIN: Final = 1e-3 / 60  # m³/s per L/min


@dataclass(frozen=True)
class SkidReadings:
    """What the skid says now; None where a reading is not valid."""

    interlocks: int | None
    leak: bool | None
    pump_fault: bool | None
    outlet: float | None  # degC
    flow: float | None  # m³/s


def tripped(interlocks: int) -> list[str]:
    """The trips set in an interlock word, in the word's bit order."""
    return [name for name, bit in TRIP_BITS.items() if interlocks & bit]


def reset_refusal(caisson: str, skid: str, readings: SkidReadings, plc: CaissonPlc) -> str | None:
    """Why `caisson`'s trips must not be reset now (one line), or None when they may."""
    if readings.interlocks is None:
        return f"{caisson}: {skid} does not answer with its interlock word: cannot reset its trips"
    trips = tripped(readings.interlocks)
    if not trips:
        return f"{caisson} has no trip to reset"
    causes = [cause for trip in trips if (cause := _cause(trip, trips, readings, plc)) is not None]
    if causes:
        return f"{caisson}: trip reset refused: {'; '.join(causes)}"
    return None


def _cause(trip: str, trips: list[str], r: SkidReadings, plc: CaissonPlc) -> str | None:
    if trip == "leak_trip":
        if r.leak is None:
            return "the leak sensor cannot be read: check it before a reset"
        if r.leak:
            return "the drip-tray leak sensor is still wet: find and fix the leak, dry the tray"
    elif trip == "pump_fault_trip":
        if r.pump_fault is None:
            return "the pump drive's status cannot be read: check it before a reset"
        if r.pump_fault:
            return "the pump drive still reports a fault: repair and reset the drive first"
    elif trip == "overtemp_trip":
        if r.outlet is None:
            return "the outlet temperature cannot be read: check its sensor before a reset"
        if r.outlet >= plc.overtemp_trip:
            return (
                f"the outlet is at {r.outlet:.1f} °C, not below the trip level "
                f"{plc.overtemp_trip:g} °C: let it cool and find why it overheated"
            )
    elif trip == "low_flow_trip" and ISOLATING.isdisjoint(trips):  # else the PLC proves flow
        if r.flow is None:
            return "the flow cannot be read: check the flow meter before a reset"
        if r.flow < plc.low_flow:
            return (
                f"the flow is {r.flow / L_MIN:.1f} L/min, below the low-flow limit "
                f"{plc.low_flow / L_MIN:g} L/min: check the pump and the valves"
            )
    return None


def cleared(before: int, after: int) -> tuple[list[str], list[str]]:
    """(the trips a reset cleared, the trips still set) from the word before and after."""
    kept = tripped(after)
    return [t for t in tripped(before) if t not in kept], kept

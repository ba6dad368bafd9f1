"""What is wrong with the plant now, in words an operator reads at a glance. Pure.

From the status the API serves: each caisson's interlocks and PLC mode, the devices that do not
answer, the building's supply against its band, the alarms waiting for an operator. What runs as
designed (a lockout, the chips' margin, dispatch leaving a caisson idle) is not wrong.
"""

from __future__ import annotations

from controller.api import models as m

# Supervisory interlocks (controller/control/interlocks.py) in words, most serious first.
_INTERLOCKS = {
    "leak": "leak: isolated by its PLC",
    "pump_fault": "pump drive fault",
    "low_flow": "flow below the PLC's limit: IT power off",
    "plc_trip": "tripped at its PLC: IT power off",
    "inputs_lost": "measurements lost: held at the PLC's safe settings",
    "overtemp_3": "outlet near the trip level: IT power cut",
    "overtemp_2": "outlet hot: IT power cut back",
    "overtemp_1": "outlet warm: IT power trimmed",
}
# PLC trips that stay until an engineer resets them after the repair (boilerctl reset-trip).
_LATCHING = ("leak_trip", "pump_fault_trip")


def what_is_wrong(status: m.Status) -> list[str]:
    """One short sentence per problem, the caissons first; [] when nothing is wrong."""
    problems = [p for c in status.caissons if (p := _caisson(c)) is not None]
    problems += [
        f"{d.id} not answering" if d.health == "failed" else f"{d.id} answering badly"
        for d in status.devices
        if d.health != "ok"
    ]
    plant = status.plant
    if plant is not None and plant.supply_degc is not None and plant.supply_band_degc is not None:
        low, high = plant.supply_band_degc
        if not low <= plant.supply_degc <= high:
            side = "below" if plant.supply_degc < low else "above"
            problems.append(
                f"building supply {plant.supply_degc:.1f} °C, {side} its band {low:g}–{high:g} °C"
            )
    if plant is not None and plant.mode == "safe":
        problems.append("plant in safe mode: its measurements are lost")
    waiting = status.alarms.unacknowledged
    if waiting:
        problems.append(
            f"{waiting} alarm{'s' if waiting > 1 else ''} to acknowledge (boilerctl alarms list)"
        )
    return problems


def _caisson(c: m.CaissonView) -> str | None:
    active = set(c.interlocks)
    if active & {"leak", "pump_fault"}:  # the pump is stopped: its low flow is no news
        active.discard("low_flow")
    words = [_INTERLOCKS[i] for i in _INTERLOCKS if i in active]
    if "plc_trip" in active and len(words) > 1:
        words.remove(_INTERLOCKS["plc_trip"])  # the cause says it better
    elif "plc_trip" in active and c.plc_trips:
        words = [f"tripped at its PLC ({', '.join(c.plc_trips)}): IT power off"]
    if c.plc_mode == "local safe":
        words.append("PLC in local safe mode: the controller's heartbeat does not reach it")
    if c.outlet_estimated:
        words.append(
            "outlet sensor reads frozen: its pump follows the heat balance's outlet "
            "(≈ in the table); the PLC's over-temperature trips are blind"
        )
    if not words:
        return None
    sentence = f"{c.id}: {'; '.join(words)}"
    if any(t in c.plc_trips for t in _LATCHING):
        sentence += f" (once repaired: boilerctl reset-trip {c.id})"
    return sentence

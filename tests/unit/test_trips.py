"""When an engineer may reset a caisson's PLC trips (controller/trips.py)."""

from __future__ import annotations

import pytest

from controller.config.site import CaissonPlc
from controller.trips import L_MIN, TRIP_BITS, SkidReadings, cleared, reset_refusal, tripped

PLC = CaissonPlc.model_validate(
    {"safe_cap": "10 kW", "low_flow": "9 L/min", "overtemp_trip": "78 degC"}
)
LEAK, PUMP, LOW, HOT = (
    TRIP_BITS[t] for t in ("leak_trip", "pump_fault_trip", "low_flow_trip", "overtemp_trip")
)


def readings(interlocks: int | None, **changes: object) -> SkidReadings:
    values: dict[str, object] = {
        "interlocks": interlocks,
        "leak": False,
        "pump_fault": False,
        "outlet": 60.0,
        "flow": 20 * L_MIN,
    }
    values.update(changes)
    return SkidReadings(**values)  # type: ignore[arg-type]


def refusal(interlocks: int | None, **changes: object) -> str | None:
    return reset_refusal("c1", "c1-skid", readings(interlocks, **changes), PLC)


@pytest.mark.parametrize(
    ("word", "changes", "cause"),
    [
        (LEAK | LOW, {"leak": True, "flow": 0.0}, "the drip-tray leak sensor is still wet"),
        (LEAK, {"leak": None}, "the leak sensor cannot be read"),
        (PUMP | LOW, {"pump_fault": True, "flow": 0.0}, "the pump drive still reports a fault"),
        (PUMP, {"pump_fault": None}, "the pump drive's status cannot be read"),
        (HOT, {"outlet": 78.0}, "the outlet is at 78.0 °C, not below the trip level 78 °C"),
        (HOT, {"outlet": None}, "the outlet temperature cannot be read"),
        (LOW, {"flow": 4 * L_MIN}, "the flow is 4.0 L/min, below the low-flow limit 9 L/min"),
        (LOW, {"flow": None}, "the flow cannot be read"),
    ],
)
def test_a_reset_is_refused_while_a_cause_is_present(
    word: int, changes: dict[str, object], cause: str
) -> None:
    message = refusal(word, **changes)
    assert message is not None
    assert message.startswith(f"c1: trip reset refused: {cause}"), message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("word", "changes"),
    [
        (LEAK | LOW, {"flow": 0.0}),  # isolated: the stopped pump's low flow is no cause
        (PUMP | LOW, {"flow": 0.0}),
        (HOT, {"outlet": 70.0}),
        (LOW, {"flow": 12 * L_MIN}),
        (LEAK | PUMP | LOW | HOT, {"flow": 0.0, "outlet": 50.0}),
    ],
)
def test_a_reset_is_allowed_once_the_causes_have_gone(
    word: int, changes: dict[str, object]
) -> None:
    assert refusal(word, **changes) is None


def test_nothing_to_reset_and_no_interlock_word_are_refused() -> None:
    assert refusal(0) == "c1 has no trip to reset"
    assert refusal(1 << 1 | 1 << 5) == "c1 has no trip to reset"  # a warning, local safe: no trip
    assert refusal(None) == (
        "c1: c1-skid does not answer with its interlock word: cannot reset its trips"
    )


def test_two_causes_are_named_in_one_line() -> None:
    message = refusal(LEAK | PUMP, leak=True, pump_fault=True)
    assert message == (
        "c1: trip reset refused: the drip-tray leak sensor is still wet: find and fix the leak, "
        "dry the tray; the pump drive still reports a fault: repair and reset the drive first"
    )


def test_cleared_compares_the_words_before_and_after() -> None:
    assert tripped(LEAK | LOW | 1 << 5) == ["low_flow_trip", "leak_trip"]
    assert cleared(LEAK | LOW, LOW) == (["leak_trip"], ["low_flow_trip"])
    assert cleared(PUMP, 0) == (["pump_fault_trip"], [])
    assert cleared(LEAK, LEAK) == ([], ["leak_trip"])

"""Is a value read at commissioning what a healthy plant shows, and if not, which common mapping
mistake would explain it? Pure.

A point's `expect: {min, max}` (plc_maps) is the range a healthy plant shows. A Modbus value
outside it is decoded again the ways maps commonly go wrong, and the variants that land inside
the range are named, most telling first:
- `order`: the other byte and word orders (ABCD, CDAB, BADC, DCBA; for a one-register value the
  byte swap only);
- `type`: signed read as unsigned or the reverse (int16/uint16, int32/uint32);
- `scale`: ten times too small or too large;
- `address`: the registers one below and one above (a one-based manual read as zero-based, or a
  slip of one).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from controller.config.maps import ByteOrder, DataType, ModbusMap, ModbusPoint, PointBase
from controller.fieldbus.codec import CodecError, Value, decode

_SIGN_SWAP: Final = {
    DataType.INT16: DataType.UINT16,
    DataType.UINT16: DataType.INT16,
    DataType.INT32: DataType.UINT32,
    DataType.UINT32: DataType.INT32,
}
_HINTS: Final = {
    "order": "check `order`",
    "type": "check `type`",
    "scale": "check `scale`",
    "address": "check `address` (and the map's `addressing`)",
}


@dataclass(frozen=True)
class Variant:
    """A way of reading the point that gives a plausible value."""

    field: str  # the map field to check: order, type, scale, address
    change: str  # "CDAB", "int16", "scale 0.1", "address 6"
    value: float


# No instrument reads a magnitude this small but not zero: such a float is bits of another value
# (a wrong word order gives 1.9e-41), even where the expected range starts at 0.
TINY: Final = 1e-12


def plausible(point: PointBase, value: Value) -> bool | None:
    """Whether `value` lies in the point's expected range (and is not a tiny non-zero float);
    None when the point has none (or the value is not a number)."""
    if point.expect is None or not _number(value):
        return None
    assert isinstance(value, int | float)
    if value != 0 and abs(value) < TINY:
        return False
    return point.expect.min <= value <= point.expect.max


def modbus_variants(
    device_map: ModbusMap,
    point: ModbusPoint,
    registers: Sequence[int],
    neighbours: Mapping[int, Sequence[int]],
) -> list[Variant]:
    """The readings of `registers` (the point's own) and of `neighbours` (the registers at wire
    address −1 and +1 by offset, where they could be read) that a common mistake would give and
    that are plausible, in the order of the module docstring, each value once."""
    if point.expect is None or not point.type.is_numeric:
        return []
    order = device_map.byte_order(point)
    found: list[Variant] = []
    seen = {_decoded(point, order, registers)}

    def consider(field: str, change: str, value: Value) -> None:
        if value in seen or not _number(value) or not plausible(point, value):
            return
        seen.add(value)
        assert isinstance(value, int | float)
        found.append(Variant(field, change, float(value)))

    for other in ByteOrder:
        if other is not order:
            consider("order", other.value, _decoded(point, other, registers))
    swapped = _SIGN_SWAP.get(point.type)
    if swapped is not None:
        as_swapped = point.model_copy(update={"type": swapped, "invalid": []})
        consider("type", swapped.value, _decoded(as_swapped, order, registers))
    for factor in (10.0, 0.1):
        scale = float(f"{point.scale * factor:.12g}")
        rescaled = point.model_copy(update={"scale": scale})
        consider("scale", f"scale {scale:g}", _decoded(rescaled, order, registers))
    for offset in sorted(neighbours):
        consider(
            "address",
            f"address {point.address + offset}",
            _decoded(point, order, neighbours[offset]),
        )
    return found


def explain(point: PointBase, value: Value, variants: Sequence[Variant]) -> str:
    """One line for an implausible value: what it reads, and the variant that would make it
    plausible, with the map field to check (the others after it)."""
    unit = _unit(point)
    assert point.expect is not None
    reads = f"reads {_shown(value)}{unit}"
    if not variants:
        return (
            f"{reads}, outside {point.expect.min:g}..{point.expect.max:g}{unit}: no common "
            "mapping mistake explains it; check the sensor, then the point's address, type and "
            "scale"
        )
    first, *others = variants
    line = f"{reads}; {first.change} would give {_shown(first.value)}{unit}: {_HINTS[first.field]}"
    if others:
        also = ", ".join(f"{v.change} → {_shown(v.value)}{unit}" for v in others)
        line += f" (also plausible: {also})"
    return line


def _decoded(point: ModbusPoint, order: ByteOrder, registers: Sequence[int]) -> Value:
    try:
        return decode(point, order, registers)
    except CodecError:
        return None


def _number(value: Value) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _unit(point: PointBase) -> str:
    return "" if point.unit in ("1", "count") else f" {point.unit}"


def _shown(value: Value) -> str:
    """A reading as an engineer writes it: 64.8, -5, 1.9e-41, 3.4e+38."""
    if not _number(value):
        return repr(value)
    assert isinstance(value, int | float)
    number = float(value)
    if number != 0 and not 1e-3 <= abs(number) < 1e7:
        return f"{number:.2g}"
    return f"{number:.6g}"

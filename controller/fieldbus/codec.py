"""Modbus register codec: the engineering value of one point ⇄ its raw registers.

Pure and total. The simulated PLC servers encode with it and the controller's drivers decode with
it, so a mistake here would be symmetric and invisible between the two: the tests check it against
reference encodings built independently with `struct`.

Registers are ints 0..65535, as Modbus carries them (each one big-endian on the wire).

    engineering value ─(offset, scale)→ raw number ─(type)→ big-endian bytes ─(order)→ registers

- raw = (value - offset) / scale, rounded half to even for the integer types; value = raw * scale +
  offset. Scale and offset are taken as the decimal numbers the map writes (0.1 is exactly one
  tenth) and the arithmetic is exact, rounded once to a float: raw 151 at scale 0.1 decodes to
  15.1, where 151 * 0.1 gives 15.100000000000001, and a value read and written back gives the
  same raw number.
- `invalid` sentinels are raw numbers: compared and written before any scaling.
- The byte order applies to every register value, one-register ones included: BADC and DCBA swap
  the two bytes of an int16 as they do within each word of an int32, and a bit point is bit N of
  its register read as a uint16 in the same order, so it always agrees with a word point on the
  same register. A string is a sequence of characters, not a number: its words never change
  places, only the bytes within each word are swapped (BADC, DCBA).
"""

from __future__ import annotations

import functools
import math
import struct
import sys
from collections.abc import Sequence
from fractions import Fraction
from typing import Final, TypeAlias

from controller.config.maps import INTEGER_RANGE, REGISTER_COUNT, ByteOrder, DataType, ModbusPoint

Value: TypeAlias = float | int | bool | str | None

_FLOAT_FORMAT: Final = {DataType.FLOAT32: ">f", DataType.FLOAT64: ">d"}
_FLOAT_MAX: Final = {DataType.FLOAT32: 3.4028234663852886e38, DataType.FLOAT64: sys.float_info.max}
_SIGNED: Final = frozenset({DataType.INT16, DataType.INT32, DataType.INT64})


class CodecError(ValueError):
    """A value that does not fit its point, or registers that are not the point's."""


def encode(point: ModbusPoint, order: ByteOrder, value: Value) -> list[int]:
    """The registers that carry `value` (in the point's unit) for `point`.

    `order` is the point's effective byte order, `ModbusMap.byte_order(point)`.

    None or NaN means "no valid value": the point's first invalid sentinel is sent, or NaN for a
    float point without sentinels; any other point cannot say it, and raises CodecError.

    BIT gives one register with only the point's bit set (value truthy) or clear: the other bits
    of that register belong to other points, so callers OR the registers of all the bit points of
    a word (and the word point's own, if any) into the register they write.
    BOOL (coils, discrete inputs) gives [1] or [0].

    Raises CodecError when the value does not fit the point's type: an integer out of range after
    scaling, a float beyond float32, a string longer than the point's registers, a string for a
    number or a number for a string.
    """
    if point.type is DataType.BOOL:
        return [1 if _truth(point, value) else 0]
    try:
        data = _to_bytes(point, value)
    except OverflowError:
        raise CodecError(_range_message(point, value)) from None
    words = _reorder(data, _word_order(point, order))
    return list(struct.unpack(f">{len(words) // 2}H", words))


def decode(point: ModbusPoint, order: ByteOrder, registers: Sequence[int]) -> Value:
    """The engineering value carried by `registers`, exactly `point.register_count` of them.

    None when the value is not valid: the raw number is one of the point's invalid sentinels, or a
    float is NaN or infinite. Integers come back as int when unscaled (scale 1, offset 0), scaled
    values and floats as float, BIT and BOOL as bool, STRING as str without its trailing NULs
    (bytes that are not UTF-8 are replaced, never raised on).

    Raises CodecError for the wrong number of registers or a register outside 0..65535.
    """
    if len(registers) != point.register_count:
        raise CodecError(
            f"point {point.id!r} ({point.type}) takes {point.register_count} register(s), "
            f"got {len(registers)}"
        )
    try:
        words = struct.pack(f">{len(registers)}H", *registers)
    except struct.error:
        raise CodecError(
            f"point {point.id!r}: registers are integers 0..65535, got {list(registers)}"
        ) from None
    if point.type is DataType.BOOL:
        return registers[0] != 0
    return _from_bytes(point, _reorder(words, _word_order(point, order)))


def _reorder(data: bytes, order: ByteOrder) -> bytes:
    """Big-endian bytes (ABCD...) in `order`, or back: each order is its own inverse.

    CDAB and DCBA reverse the words (GHEFCDAB over four words); BADC and DCBA swap the two bytes
    of each word.
    """
    words = [data[i : i + 2] for i in range(0, len(data), 2)]
    if order in (ByteOrder.CDAB, ByteOrder.DCBA):
        words.reverse()
    if order in (ByteOrder.BADC, ByteOrder.DCBA):
        words = [word[::-1] for word in words]
    return b"".join(words)


def _word_order(point: ModbusPoint, order: ByteOrder) -> ByteOrder:
    """The order to apply: a string keeps its words in place whatever the point's order."""
    if point.type is not DataType.STRING:
        return order
    return ByteOrder.BADC if order in (ByteOrder.BADC, ByteOrder.DCBA) else ByteOrder.ABCD


def _to_bytes(point: ModbusPoint, value: Value) -> bytes:
    """The big-endian bytes of `value`'s raw form; OverflowError when it does not fit the type."""
    if point.type is DataType.STRING:
        return _string_bytes(point, value)
    if point.type is DataType.BIT:
        return (_bit_mask(point) if _truth(point, value) else 0).to_bytes(2, "big")
    raw: int | float | Fraction
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raw = _invalid_raw(point)
    elif isinstance(value, str):
        raise CodecError(f"point {point.id!r} ({point.type}) takes a number, not {value!r}")
    else:
        raw = _raw(point, value)
    if point.type in _FLOAT_FORMAT:
        return struct.pack(_FLOAT_FORMAT[point.type], float(raw))
    signed = point.type in _SIGNED
    return round(raw).to_bytes(2 * REGISTER_COUNT[point.type], "big", signed=signed)


def _from_bytes(point: ModbusPoint, data: bytes) -> Value:
    """The engineering value of big-endian bytes."""
    if point.type is DataType.STRING:
        return data.rstrip(b"\0").decode("utf-8", errors="replace")
    if point.type is DataType.BIT:
        return int.from_bytes(data, "big") & _bit_mask(point) != 0
    raw: int | float
    if point.type in _FLOAT_FORMAT:
        (raw,) = struct.unpack(_FLOAT_FORMAT[point.type], data)
    else:
        raw = int.from_bytes(data, "big", signed=point.type in _SIGNED)
    if raw in point.invalid or not math.isfinite(raw):
        return None
    if _unscaled(point):
        return raw
    # raw·scale + offset with scale = sp/sq and offset = op/oq exactly: one correctly rounded
    # integer division, the same float as Fraction arithmetic gives, at a fraction of its cost.
    sp, sq, op, oq = _scale_terms(point.scale, point.offset)
    rn, rd = (raw, 1) if isinstance(raw, int) else raw.as_integer_ratio()
    try:
        return (rn * sp * oq + op * sq * rd) / (rd * sq * oq)
    except OverflowError:  # beyond the float range: no more usable than an infinite raw float
        return None


def _raw(point: ModbusPoint, value: float) -> int | float | Fraction:
    """The exact (unrounded) raw number of an engineering value."""
    if _unscaled(point):
        return value
    scale, offset = _scaling(point)
    if math.isinf(value):  # stays infinite for a float point, is out of range for an integer
        return value * point.scale
    return (Fraction(value) - offset) / scale


def _invalid_raw(point: ModbusPoint) -> int | float:
    """The raw number that says "no valid value"."""
    if point.invalid:
        return point.invalid[0]
    if point.type in _FLOAT_FORMAT:
        return math.nan
    raise CodecError(
        f"point {point.id!r} ({point.type}) has no invalid sentinel: it cannot carry 'no value'"
    )


def _truth(point: ModbusPoint, value: Value) -> bool:
    # A string is refused rather than judged by its truth: "0" and "false" would read as true.
    if value is None or isinstance(value, str) or math.isnan(value):
        raise CodecError(f"point {point.id!r} ({point.type}) takes true or false, not {value!r}")
    return bool(value)


def _string_bytes(point: ModbusPoint, value: Value) -> bytes:
    if not isinstance(value, str):
        raise CodecError(f"point {point.id!r} (string) takes a str, not {value!r}")
    data = value.encode("utf-8")
    size = 2 * point.register_count
    if len(data) > size:
        raise CodecError(
            f"point {point.id!r}: {value!r} is {len(data)} bytes in UTF-8, more than the {size} "
            f"of its {point.register_count} registers"
        )
    return data.ljust(size, b"\0")


def _bit_mask(point: ModbusPoint) -> int:
    assert point.bit is not None, "ModbusPoint requires bit: for type bit"
    return 1 << point.bit


def _unscaled(point: ModbusPoint) -> bool:
    return point.scale == 1 and point.offset == 0


def _scaling(point: ModbusPoint) -> tuple[Fraction, Fraction]:
    """Scale and offset as the decimal numbers the map writes: 0.1 is exactly one tenth.
    (Maps refuse non-finite numbers, so Fraction always succeeds.)"""
    return _decimal(point.scale), _decimal(point.offset)


@functools.cache
def _decimal(number: float) -> Fraction:
    return Fraction(repr(number))


@functools.cache
def _scale_terms(scale: float, offset: float) -> tuple[int, int, int, int]:
    """(sp, sq, op, oq): scale = sp/sq and offset = op/oq as the decimals the map writes."""
    s, o = _decimal(scale), _decimal(offset)
    return s.numerator, s.denominator, o.numerator, o.denominator


def _range_message(point: ModbusPoint, value: Value) -> str:
    if point.type in _FLOAT_FORMAT:
        limit = _FLOAT_MAX[point.type]
        return f"point {point.id!r}: value {value!r} is beyond the {point.type} range ±{limit:g}"
    low, high = INTEGER_RANGE[point.type]
    message = f"point {point.id!r}: value {value!r} is outside the {point.type} range {low}..{high}"
    if _unscaled(point):
        return message
    ends = sorted(raw * point.scale + point.offset for raw in (low, high))
    return (
        f"{message} (at scale {point.scale:g} and offset {point.offset:g}: "
        f"{ends[0]:g}..{ends[1]:g} {point.unit})"
    )

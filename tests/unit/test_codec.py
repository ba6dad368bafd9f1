"""Modbus register codec: round trips, agreement with references built independently with
`struct`, vectors from device manuals, sentinels, errors, bits, coils and strings.

The simulators encode and the controller decodes with the same codec, so round trips alone would
not see a symmetric mistake: the references below place bytes by the letter notation of the
manuals (ABCD, CDAB, ...), with no code shared with the codec.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from controller.config.maps import INTEGER_RANGE, ByteOrder, DataType, ModbusPoint
from controller.fieldbus.codec import CodecError, decode, encode

ABCD, CDAB, BADC, DCBA = ByteOrder.ABCD, ByteOrder.CDAB, ByteOrder.BADC, ByteOrder.DCBA
INTEGER_TYPES = list(INTEGER_RANGE)
FLOAT_TYPES = [DataType.FLOAT32, DataType.FLOAT64]
NUMERIC_TYPES = INTEGER_TYPES + FLOAT_TYPES
STRUCT_FORMAT = {
    DataType.INT16: "h",
    DataType.UINT16: "H",
    DataType.INT32: "i",
    DataType.UINT32: "I",
    DataType.INT64: "q",
    DataType.FLOAT32: "f",
    DataType.FLOAT64: "d",
}
# Where each byte of the big-endian encoding (A most significant) goes on the wire, by size.
WIRE_PATTERN = {
    ABCD: {2: "AB", 4: "ABCD", 8: "ABCDEFGH"},
    CDAB: {2: "AB", 4: "CDAB", 8: "GHEFCDAB"},
    BADC: {2: "BA", 4: "BADC", 8: "BADCFEHG"},
    DCBA: {2: "BA", 4: "DCBA", 8: "HGFEDCBA"},
}
# (scale, offset): tenths, hundredths with an offset, kelvin to degC, tens, a reversed sign.
SCALINGS = [(0.1, 0.0), (0.01, -40.0), (1.0, -273.15), (10.0, 0.0), (-0.5, 100.0)]
# Examples for each parametrized case of a property (types × orders or scalings): keeps the file
# to a few seconds while every case still gets its own random values and hypothesis's edge cases.
PER_CASE = settings(max_examples=50)


def point(data_type: DataType, **fields: Any) -> ModbusPoint:
    table = "coil" if data_type is DataType.BOOL else "holding"
    return ModbusPoint.model_validate(
        {"id": "test_point", "table": table, "address": 0, "type": data_type, **fields}
    )


def reference(data_type: DataType, order: ByteOrder, raw: float) -> list[int]:
    big_endian = struct.pack(">" + STRUCT_FORMAT[data_type], raw)
    pattern = WIRE_PATTERN[order][len(big_endian)]
    wire = bytes(big_endian[ord(letter) - ord("A")] for letter in pattern)
    return [wire[i] << 8 | wire[i + 1] for i in range(0, len(wire), 2)]


def raw_values(data_type: DataType, *, allow_nan: bool = True) -> st.SearchStrategy[float]:
    """Every raw number the type can hold: subnormals, ±0, ±inf and NaN included for floats."""
    if data_type is DataType.FLOAT32:
        return st.floats(width=32, allow_nan=allow_nan)
    if data_type is DataType.FLOAT64:
        return st.floats(allow_nan=allow_nan)
    low, high = INTEGER_RANGE[data_type]
    return st.integers(low, high)


def same_float(a: object, b: float) -> bool:
    """Bit-for-bit equal, so -0.0 differs from 0.0."""
    return isinstance(a, float) and struct.pack(">d", a) == struct.pack(">d", b)


# ---- round trips


@pytest.mark.parametrize(
    ("data_type", "smallest"), [(DataType.FLOAT32, 2.0**-149), (DataType.FLOAT64, 2.0**-1074)]
)
@pytest.mark.parametrize("order", list(ByteOrder))
def test_subnormal_floats_are_bit_exact(
    data_type: DataType, smallest: float, order: ByteOrder
) -> None:
    p = point(data_type)
    for value in (smallest, -smallest, 3 * smallest, -0.0):
        assert same_float(decode(p, order, encode(p, order, value)), value)


@pytest.mark.parametrize(("scale", "offset"), SCALINGS)
@pytest.mark.parametrize("data_type", INTEGER_TYPES)
@PER_CASE
@given(order=st.sampled_from(ByteOrder), data=st.data())
def test_scaled_integer_round_trip_is_within_half_a_step(
    data_type: DataType, scale: float, offset: float, order: ByteOrder, data: st.DataObject
) -> None:
    p = point(data_type, scale=scale, offset=offset)
    low, high = sorted(raw * scale + offset for raw in INTEGER_RANGE[data_type])
    margin = abs(scale) + 1e-9 * max(abs(low), abs(high))  # stay clear of the range's ends
    value = data.draw(st.floats(low + margin, high - margin))
    decoded = decode(p, order, encode(p, order, value))
    assert isinstance(decoded, float)
    assert abs(decoded - value) <= abs(scale) / 2 + math.ulp(value)


@pytest.mark.parametrize("data_type", INTEGER_TYPES)
@PER_CASE
@given(scaling=st.sampled_from(SCALINGS), order=st.sampled_from(ByteOrder), data=st.data())
def test_scaled_value_read_and_written_back_keeps_its_raw_number(
    data_type: DataType, scaling: tuple[float, float], order: ByteOrder, data: st.DataObject
) -> None:
    scale, offset = scaling
    low, high = INTEGER_RANGE[data_type]
    raw = data.draw(st.integers(max(low, -(2**48)), min(high, 2**48)))  # within float precision
    p = point(data_type, scale=scale, offset=offset)
    registers = reference(data_type, order, raw)
    assert encode(p, order, decode(p, order, registers)) == registers


@pytest.mark.parametrize(("scale", "offset"), SCALINGS)
@pytest.mark.parametrize("data_type", FLOAT_TYPES)
@PER_CASE
@given(order=st.sampled_from(ByteOrder), value=st.floats(-1e6, 1e6))
def test_scaled_float_round_trip_is_within_the_type_precision(
    data_type: DataType, scale: float, offset: float, order: ByteOrder, value: float
) -> None:
    p = point(data_type, scale=scale, offset=offset)
    bits, tiniest = (23, 2.0**-149) if data_type is DataType.FLOAT32 else (52, 2.0**-1074)
    decoded = decode(p, order, encode(p, order, value))
    assert isinstance(decoded, float)
    tolerance = abs(value - offset) * 2.0**-bits + abs(scale) * tiniest + math.ulp(value)
    assert abs(decoded - value) <= tolerance


def test_infinity_through_a_negative_scale_changes_sign() -> None:
    p = point(DataType.FLOAT32, scale=-0.5, offset=100.0)
    assert encode(p, ABCD, math.inf) == reference(DataType.FLOAT32, ABCD, -math.inf)
    assert decode(p, ABCD, reference(DataType.FLOAT32, ABCD, -math.inf)) is None


def test_scaled_values_decode_to_the_decimal_the_scale_means() -> None:
    """0.1 is one tenth: raw 151 is 15.1, where 151 * 0.1 == 15.100000000000001."""
    temperature = point(DataType.INT16, scale=0.1)
    assert decode(temperature, ABCD, [151]) == 15.1
    assert decode(temperature, ABCD, [(-32767) & 0xFFFF]) == -3276.7
    flow = point(DataType.UINT32, scale=0.01)
    assert decode(flow, ABCD, [0, 35]) == 0.35
    kelvin = point(DataType.UINT16, offset=-273.15)
    assert decode(kelvin, ABCD, [300]) == 26.85


# ---- independent references


@pytest.mark.parametrize("order", list(ByteOrder))
@pytest.mark.parametrize("data_type", NUMERIC_TYPES)
@PER_CASE
@given(data=st.data())
def test_unscaled_round_trip_is_exact_and_agrees_with_struct(
    data_type: DataType, order: ByteOrder, data: st.DataObject
) -> None:
    """decode(encode(v)) is v bit for bit (an int for the integer types), through the registers
    the struct reference gives; NaN and ±inf come back as None."""
    p = point(data_type)
    value = data.draw(raw_values(data_type))
    registers = encode(p, order, value)
    decoded = decode(p, order, registers)
    if math.isnan(value):  # whatever its payload: sent as the canonical NaN
        assert decoded is None
        return
    assert registers == reference(data_type, order, value)
    if order is DCBA:  # the reference's letter patterns, checked against struct's little-endian
        little = struct.pack("<" + STRUCT_FORMAT[data_type], value)
        assert registers == [little[i] << 8 | little[i + 1] for i in range(0, len(little), 2)]
    if data_type in INTEGER_TYPES:
        assert decoded == value
        assert type(decoded) is int
    elif math.isfinite(value):
        assert same_float(decoded, value)
    else:
        assert decoded is None


@pytest.mark.parametrize(
    ("data_type", "order", "value", "registers"),
    [
        # float32 123.456 is 0x42F6E979 (the example of most gateway manuals)
        (DataType.FLOAT32, ABCD, 123.456, [0x42F6, 0xE979]),
        (DataType.FLOAT32, CDAB, 123.456, [0xE979, 0x42F6]),  # Kamstrup MULTICAL, low word first
        (DataType.FLOAT32, BADC, 123.456, [0xF642, 0x79E9]),
        (DataType.FLOAT32, DCBA, 123.456, [0x79E9, 0xF642]),
        (DataType.INT16, ABCD, -1, [0xFFFF]),
        (DataType.INT16, ABCD, -32768, [0x8000]),
        (DataType.INT16, BADC, 0x1234, [0x3412]),  # the byte swap applies to one word too
        (DataType.UINT32, ABCD, 0x12345678, [0x1234, 0x5678]),
        (DataType.UINT32, CDAB, 0x12345678, [0x5678, 0x1234]),
        (DataType.UINT32, BADC, 0x12345678, [0x3412, 0x7856]),
        (DataType.UINT32, DCBA, 0x12345678, [0x7856, 0x3412]),
        (DataType.INT32, ABCD, -2, [0xFFFF, 0xFFFE]),
        (DataType.INT64, ABCD, 0x0102030405060708, [0x0102, 0x0304, 0x0506, 0x0708]),
        (DataType.INT64, CDAB, 0x0102030405060708, [0x0708, 0x0506, 0x0304, 0x0102]),
        (DataType.INT64, BADC, 0x0102030405060708, [0x0201, 0x0403, 0x0605, 0x0807]),
        (DataType.INT64, DCBA, 0x0102030405060708, [0x0807, 0x0605, 0x0403, 0x0201]),
        (DataType.FLOAT64, ABCD, 1.0, [0x3FF0, 0, 0, 0]),
        (DataType.FLOAT64, CDAB, 1.0, [0, 0, 0, 0x3FF0]),
        (DataType.FLOAT64, BADC, 1.0, [0xF03F, 0, 0, 0]),
        (DataType.FLOAT64, DCBA, 1.0, [0, 0, 0, 0xF03F]),
    ],
)
def test_vectors_from_device_manuals(
    data_type: DataType, order: ByteOrder, value: float, registers: list[int]
) -> None:
    p = point(data_type)
    assert encode(p, order, value) == registers
    fmt = ">" + STRUCT_FORMAT[data_type]
    assert decode(p, order, registers) == struct.unpack(fmt, struct.pack(fmt, value))[0]


def test_drive_references_scale_to_percent() -> None:
    """Danfoss FC: reference 16384 = 100 %; ABB ACS580: speed reference 20000 = 100 % of max."""
    danfoss = point(DataType.INT16, scale=100 / 16384, unit="%")
    assert encode(danfoss, ABCD, 100.0) == [0x4000]
    assert encode(danfoss, ABCD, -50.0) == [0xE000]
    assert decode(danfoss, ABCD, [0x2000]) == 50.0
    abb = point(DataType.UINT16, scale=0.005, unit="%")
    assert encode(abb, ABCD, 100.0) == [20000]
    assert decode(abb, ABCD, [15000]) == 75.0


# ---- sentinels and values that are not valid


def sensor(**fields: Any) -> ModbusPoint:
    return point(DataType.INT16, scale=0.1, unit="degC", invalid=[32767, -32768], **fields)


@pytest.mark.parametrize("registers", [[0x7FFF], [0x8000]])
def test_sensor_fault_sentinels_decode_to_none(registers: list[int]) -> None:
    assert decode(sensor(), ABCD, registers) is None


@pytest.mark.parametrize("value", [None, math.nan])
def test_no_value_encodes_the_first_sentinel(value: float | None) -> None:
    assert encode(sensor(), ABCD, value) == [0x7FFF]


@pytest.mark.parametrize("temperature", [3276.7, -3276.8])
def test_sentinel_is_never_a_temperature(temperature: float) -> None:
    """±3276.7 °C at scale 0.1 is the raw sentinel: it is read back as no value."""
    assert decode(sensor(), ABCD, encode(sensor(), ABCD, temperature)) is None
    assert decode(sensor(), ABCD, encode(sensor(), ABCD, temperature * 0.99)) is not None


def test_sentinels_are_raw_numbers_compared_before_scaling_and_order() -> None:
    meter = point(DataType.UINT32, scale=0.01, invalid=[0xFFFFFFFF])
    assert encode(meter, CDAB, None) == [0xFFFF, 0xFFFF]
    assert decode(meter, CDAB, [0xFFFF, 0xFFFF]) is None
    assert decode(meter, CDAB, [0xFFFE, 0xFFFF]) == 42949672.94


def test_float_sentinel() -> None:
    p = point(DataType.FLOAT32, invalid=[-9999])
    assert encode(p, CDAB, None) == reference(DataType.FLOAT32, CDAB, -9999.0)
    assert decode(p, CDAB, reference(DataType.FLOAT32, CDAB, -9999.0)) is None


@pytest.mark.parametrize("data_type", FLOAT_TYPES)
def test_float_without_sentinel_sends_nan_for_no_value(data_type: DataType) -> None:
    p = point(data_type)
    registers = encode(p, ABCD, None)
    assert registers == reference(data_type, ABCD, math.nan)
    assert decode(p, ABCD, registers) is None


@pytest.mark.parametrize("data_type", list(DataType))
@PER_CASE
@given(order=st.sampled_from(ByteOrder), data=st.data())
def test_decode_is_total(data_type: DataType, order: ByteOrder, data: st.DataObject) -> None:
    """Any registers of the right count decode without raising; a float is None exactly when its
    raw number is not finite (NaN of any payload, ±inf)."""
    extra = {DataType.BIT: {"bit": 5}, DataType.STRING: {"length": 3}}.get(data_type, {})
    p = point(data_type, **extra)
    count = p.register_count
    registers = data.draw(st.lists(st.integers(0, 0xFFFF), min_size=count, max_size=count))
    decoded = decode(p, order, registers)
    if data_type in FLOAT_TYPES:
        wire = b"".join(r.to_bytes(2, "big") for r in registers)
        pattern = WIRE_PATTERN[order][len(wire)]
        big_endian = bytes(wire[pattern.index(letter)] for letter in sorted(pattern))
        (raw,) = struct.unpack(">" + STRUCT_FORMAT[data_type], big_endian)
        assert (decoded is None) == (not math.isfinite(raw))


def test_scaled_float_beyond_the_float_range_decodes_to_none() -> None:
    p = point(DataType.FLOAT64, scale=10.0)
    assert decode(p, ABCD, reference(DataType.FLOAT64, ABCD, 1e308)) is None


# ---- errors


def test_out_of_range_names_the_point_the_value_and_the_range() -> None:
    with pytest.raises(CodecError) as caught:
        encode(sensor(), ABCD, 3276.8)
    message = str(caught.value)
    assert "'test_point'" in message
    assert "3276.8" in message
    assert "-32768..32767" in message
    assert "-3276.8..3276.7 degC" in message


@pytest.mark.parametrize(
    ("data_type", "value"),
    [
        (DataType.UINT16, -1),
        (DataType.UINT16, 65536),
        (DataType.INT16, 32768),
        (DataType.UINT32, 2**32),
        (DataType.INT64, 2**63),
        (DataType.INT32, math.inf),
        (DataType.INT16, -math.inf),
        (DataType.FLOAT32, 1e39),
        (DataType.FLOAT64, 10**400),
    ],
)
def test_values_that_do_not_fit_the_type_are_refused(data_type: DataType, value: float) -> None:
    with pytest.raises(CodecError, match="test_point"):
        encode(point(data_type), ABCD, value)


def test_integer_without_sentinel_cannot_say_no_value() -> None:
    with pytest.raises(CodecError, match="no invalid sentinel"):
        encode(point(DataType.UINT16), ABCD, None)


@pytest.mark.parametrize("data_type", NUMERIC_TYPES)
def test_a_string_is_not_a_number(data_type: DataType) -> None:
    with pytest.raises(CodecError, match="takes a number"):
        encode(point(data_type), ABCD, "12")


@pytest.mark.parametrize("count", [0, 1, 3])
def test_wrong_register_count_is_refused(count: int) -> None:
    with pytest.raises(CodecError, match="takes 2 register"):
        decode(point(DataType.FLOAT32), ABCD, [0] * count)


@pytest.mark.parametrize("register", [-1, 0x10000])
def test_register_outside_16_bits_is_refused(register: int) -> None:
    with pytest.raises(CodecError, match=r"0\.\.65535"):
        decode(point(DataType.UINT16), ABCD, [register])


@pytest.mark.parametrize("field", ["scale", "offset"])
@pytest.mark.parametrize("number", [math.nan, math.inf])
def test_maps_refuse_non_finite_scaling(field: str, number: float) -> None:
    with pytest.raises(ValidationError, match="finite number"):
        point(DataType.INT16, **{field: number})


# ---- bits of a word, coils, strings


def test_bit_sets_only_its_own_bit_and_callers_or_the_words() -> None:
    fault, alarm = point(DataType.BIT, bit=3), point(DataType.BIT, bit=7)  # ABB status word
    assert encode(fault, ABCD, True) == [0x0008]
    assert encode(fault, ABCD, False) == [0x0000]
    word = encode(fault, ABCD, True)[0] | encode(alarm, ABCD, 1)[0]
    assert word == 0x0088
    assert decode(fault, ABCD, [word]) is True
    assert decode(alarm, ABCD, [word]) is True
    assert decode(fault, ABCD, [0xFFF7]) is False


@given(bit=st.integers(0, 15), word=st.integers(0, 0xFFFF), order=st.sampled_from(ByteOrder))
def test_bit_agrees_with_its_word_in_every_order(bit: int, word: int, order: ByteOrder) -> None:
    status = decode(point(DataType.UINT16), order, [word])
    assert isinstance(status, int)
    assert decode(point(DataType.BIT, bit=bit), order, [word]) == bool(status >> bit & 1)


@pytest.mark.parametrize("value", [None, math.nan, "false"])
@pytest.mark.parametrize("data_type", [DataType.BIT, DataType.BOOL])
def test_bits_take_only_true_or_false(data_type: DataType, value: str | float | None) -> None:
    p = point(data_type, **{"bit": 0} if data_type is DataType.BIT else {})
    with pytest.raises(CodecError, match="takes true or false"):
        encode(p, ABCD, value)


def test_coil() -> None:
    coil = point(DataType.BOOL)
    assert [encode(coil, ABCD, v) for v in (True, False, 1, 0.0)] == [[1], [0], [1], [0]]
    assert decode(coil, ABCD, [1]) is True
    assert decode(coil, ABCD, [0]) is False
    assert decode(coil, DCBA, [True]) is True


@pytest.mark.parametrize(
    ("order", "registers"),
    [
        (ABCD, [0x4142, 0x4300, 0]),
        (CDAB, [0x4142, 0x4300, 0]),  # characters never change words
        (BADC, [0x4241, 0x0043, 0]),
        (DCBA, [0x4241, 0x0043, 0]),
    ],
)
def test_string_bytes_and_order(order: ByteOrder, registers: list[int]) -> None:
    name = point(DataType.STRING, length=3)
    assert encode(name, order, "ABC") == registers
    assert decode(name, order, registers) == "ABC"


@given(
    text=st.text(max_size=6).filter(lambda t: not t.endswith("\0")),
    order=st.sampled_from(ByteOrder),
)
def test_string_round_trip(order: ByteOrder, text: str) -> None:
    name = point(DataType.STRING, length=10)
    if len(text.encode("utf-8")) > 20:
        with pytest.raises(CodecError, match="more than the 20"):
            encode(name, order, text)
    else:
        assert decode(name, order, encode(name, order, text)) == text


def test_string_that_fills_its_registers_exactly() -> None:
    name = point(DataType.STRING, length=2)
    assert encode(name, ABCD, "Grü") == [0x4772, 0xC3BC]
    assert decode(name, ABCD, [0x4772, 0xC3BC]) == "Grü"
    with pytest.raises(CodecError, match="5 bytes"):
        encode(name, ABCD, "Grün")


def test_undecodable_string_bytes_are_replaced() -> None:
    assert decode(point(DataType.STRING, length=2), ABCD, [0xFF41, 0]) == "\ufffdA"


@pytest.mark.parametrize("value", [None, 12])
def test_string_takes_only_a_str(value: int | None) -> None:
    with pytest.raises(CodecError, match="takes a str"):
        encode(point(DataType.STRING, length=2), ABCD, value)

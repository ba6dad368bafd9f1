"""Commissioning's plausibility verdicts and the mapping mistakes it names
(controller/commissioning/plausibility.py), on registers encoded here with `struct`."""

from __future__ import annotations

import struct
from typing import Any

import pytest

from controller.commissioning.plausibility import Variant, explain, modbus_variants, plausible
from controller.config.maps import ModbusMap, ModbusPoint
from controller.fieldbus.codec import decode


def one_point(**fields: Any) -> tuple[ModbusMap, ModbusPoint]:
    spec = {"id": "x", "table": "input", "address": 10, "unit": "degC", **fields}
    device_map = ModbusMap.model_validate(
        {
            "protocol": "modbus",
            "device_type": "test",
            "addressing": "zero-based",
            "order": "ABCD",
            "points": [spec],
        }
    )
    return device_map, device_map.points[0]


def float_words(value: float) -> list[int]:
    return list(struct.unpack(">HH", struct.pack(">f", value)))


def test_a_float_in_the_wrong_word_order_names_the_order() -> None:
    device_map, point = one_point(type="float32", expect={"min": 10, "max": 95})
    high, low = float_words(64.8)
    registers = [low, high]  # the device sends CDAB
    neighbours = {-1: [0x1234, low]}  # what lies below: nothing plausible
    variants = modbus_variants(device_map, point, registers, neighbours)
    assert [(v.field, v.change) for v in variants] == [("order", "CDAB")]
    assert variants[0].value == pytest.approx(64.8)
    value = decode(point, device_map.byte_order(point), registers)
    assert plausible(point, value) is False
    assert explain(point, value, variants) == (
        f"reads {value:.2g} degC; CDAB would give 64.8 degC: check `order`"
    )


def test_a_signed_value_read_as_unsigned_names_the_type() -> None:
    device_map, point = one_point(type="uint16", scale=0.1, expect={"min": -40, "max": 50})
    raw = struct.unpack(">H", struct.pack(">h", -50))[0]  # -5.0 degC as an int16
    variants = modbus_variants(device_map, point, [raw], {-1: [60000], 1: [59000]})
    assert variants == [Variant("type", "int16", -5.0)]
    assert explain(point, 6548.6, variants) == (
        "reads 6548.6 degC; int16 would give -5 degC: check `type`"
    )


def test_a_scale_ten_times_off_names_the_scale() -> None:
    device_map, point = one_point(type="int16", scale=0.01, expect={"min": 15, "max": 95})
    variants = modbus_variants(device_map, point, [648], {-1: [0], 1: [0]})
    assert variants == [Variant("scale", "scale 0.1", 64.8)]


def test_an_address_one_off_names_the_address() -> None:
    device_map, point = one_point(type="int16", scale=0.1, expect={"min": 15, "max": 95})
    variants = modbus_variants(device_map, point, [0], {-1: [0], 1: [648]})
    assert variants == [Variant("address", "address 11", 64.8)]
    assert explain(point, 0.0, variants) == (
        "reads 0 degC; address 11 would give 64.8 degC: check `address` (and the map's "
        "`addressing`)"
    )


def test_every_plausible_variant_is_named_the_most_telling_first() -> None:
    """A word-swapped float: the register above starts with its high word, so reading one
    address up is plausible too; the order comes first. A tiny float is never plausible, even
    in a range from 0."""
    device_map, point = one_point(type="float32", expect={"min": 0, "max": 25}, unit="kW")
    high, low = float_words(18.5)
    value = decode(point, device_map.byte_order(point), [low, high])
    assert isinstance(value, float)
    assert 0 < value < 1e-40
    assert plausible(point, value) is False
    variants = modbus_variants(device_map, point, [low, high], {1: [high, 1]})
    assert [v.change for v in variants] == ["CDAB", "address 11"]
    assert explain(point, value, variants).endswith(
        "CDAB would give 18.5 kW: check `order` (also plausible: address 11 → 18.5 kW)"
    )


def test_no_explanation_and_points_without_a_range() -> None:
    device_map, point = one_point(type="int16", scale=0.1, expect={"min": 15, "max": 95})
    assert modbus_variants(device_map, point, [1000], {}) == []  # 100 degC: too hot for all
    assert explain(point, 100.0, []) == (
        "reads 100 degC, outside 15..95 degC: no common mapping mistake explains it; check the "
        "sensor, then the point's address, type and scale"
    )
    _, unchecked = one_point(type="int16")
    assert plausible(unchecked, 12) is None
    assert plausible(point, None) is None
    assert plausible(point, 64.8) is True

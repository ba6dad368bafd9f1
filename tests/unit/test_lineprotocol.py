"""Line protocol as written by hand: escaping, number formatting, timestamps (exact strings)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from controller.historian.lineprotocol import (
    field_key,
    field_value,
    line,
    nanoseconds,
    series_key,
)

# ------------------------------------------------------------------ series keys


def test_measurement_escapes_commas_and_spaces_but_not_equals() -> None:
    # Line protocol: a measurement escapes comma and space; `=` needs no escape there.
    assert series_key("cpu load,x=1", {}) == r"cpu\ load\,x=1"


def test_tag_keys_and_values_escape_commas_spaces_and_equals() -> None:
    key = series_key("m", {"a key": "v,1", "k=2": "x y=z"})
    assert key == r"m,a\ key=v\,1,k\=2=x\ y\=z"


def test_tags_are_sorted_by_key() -> None:
    assert series_key("m", {"site": "s", "caisson": "c1", "device": "d"}) == (
        "m,caisson=c1,device=d,site=s"
    )


def test_empty_tag_values_are_left_out() -> None:
    assert series_key("m", {"caisson": "", "site": "s"}) == "m,site=s"
    assert series_key("m", {"caisson": ""}) == "m"


def test_field_keys_escape_commas_spaces_and_equals() -> None:
    assert field_key("a b,c=d") == r"a\ b\,c\=d"
    assert line("m", [("a b,c=d", 1)], 5) == r"m a\ b\,c\=d=1.0 5"


# ------------------------------------------------------------------ field values


def test_strings_escape_quotes_backslashes_and_newlines() -> None:
    assert field_value('say "hi"') == r'"say \"hi\""'
    assert field_value("C:\\dir") == r'"C:\\dir"'
    assert field_value("two\nlines") == r'"two\nlines"'
    assert field_value("") == '""'


def test_a_string_field_never_breaks_its_line() -> None:
    text = line("m", [("message", 'a "b"\nc\\')], 1)
    assert text == r'm message="a \"b\"\nc\\" 1'
    assert text is not None
    assert "\n" not in text


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (1, "1.0"),
        (-3, "-3.0"),
        (0, "0.0"),
        (True, "1.0"),
        (False, "0.0"),
        (2.5, "2.5"),
        (0.1, "0.1"),
        (65535, "65535.0"),
    ],
)
def test_numbers_are_written_as_floats(value: float, written: str) -> None:
    assert field_value(value) == written
    # never an integer (`1i`) or a boolean (`t`): the field's type stays float everywhere
    assert not written.endswith(("i", "t", "f"))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers_are_not_written(value: float) -> None:
    assert field_value(value) is None
    assert line("m", [("a", 1.5), ("b", value), ("c", 2)], 7) == "m a=1.5,c=2.0 7"


def test_a_line_without_a_writable_field_is_none() -> None:
    assert line("m", [("a", float("nan")), ("b", float("inf"))], 7) is None
    assert line("m", [], 7) is None


def test_a_whole_line() -> None:
    key = series_key("caisson_skid", {"site": "demo", "device": "c1-skid", "caisson": "c1"})
    text = line(key, [("flow", 12), ("running", True), ("mode", "remote")], 1_000)
    assert text == (
        'caisson_skid,caisson=c1,device=c1-skid,site=demo flow=12.0,running=1.0,mode="remote" 1000'
    )


# ------------------------------------------------------------------ timestamps


def test_nanoseconds_exact_with_microseconds() -> None:
    # 2026-01-15: 56 years after 1970 with 14 leap days (1972 … 2024) and 14 days into January:
    # 56·365 + 14 + 14 = 20 468 days; + 6 h → 20 468·86 400 + 21 600 = 1 768 456 800 s.
    at = datetime(2026, 1, 15, 6, 0, 0, 123456, tzinfo=UTC)
    assert nanoseconds(at) == 1_768_456_800_123_456_000


def test_nanoseconds_of_the_epoch_and_other_offsets() -> None:
    assert nanoseconds(datetime(1970, 1, 1, tzinfo=UTC)) == 0
    assert nanoseconds(datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC)) == 1000
    # the same instant written in another offset is the same timestamp
    paris = timezone(timedelta(hours=1))
    assert nanoseconds(datetime(2026, 1, 15, 7, 0, 0, 123456, tzinfo=paris)) == (
        1_768_456_800_123_456_000
    )


def test_nanoseconds_do_not_go_through_a_float() -> None:
    # A float of seconds has ~0.2 µs resolution today: each microsecond must still be exact.
    base = datetime(2026, 1, 15, 6, 0, 0, tzinfo=UTC)
    for micro in (1, 7, 999_999):
        assert nanoseconds(base + timedelta(microseconds=micro)) == (
            1_768_456_800_000_000_000 + micro * 1000
        )

"""InfluxDB line protocol, formatted by hand: the hot path builds strings, never objects.

A series key (measurement and tags) is escaped once and reused; a line is then the key, the
fields and a nanosecond timestamp. Every number is written as a float: InfluxDB fixes a field's
type per measurement (and shard), so a point that is an int16 on one vendor's map and a float32 on
another's must not make the second write fail. Non-finite numbers are never written.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from functools import lru_cache

FieldValue = float | int | bool | str

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

_MEASUREMENT = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\n"})
_KEY = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n"})
_STRING = str.maketrans({'"': r"\"", "\\": "\\\\", "\n": r"\n"})


def nanoseconds(at: datetime) -> int:
    """UTC datetime → integer nanoseconds since the epoch (exact: no float rounding)."""
    return (at - _EPOCH) // _MICROSECOND * 1000


def series_key(measurement: str, tags: Mapping[str, str]) -> str:
    """`measurement,tag=value,...` escaped, tags sorted (as InfluxDB stores them); empty tag
    values are left out (line protocol has none)."""
    parts = [measurement.translate(_MEASUREMENT)]
    parts.extend(
        f"{key.translate(_KEY)}={value.translate(_KEY)}"
        for key, value in sorted(tags.items())
        if value != ""
    )
    return ",".join(parts)


def field_value(value: FieldValue) -> str | None:
    """A field's value as line protocol; None for a number that is not finite."""
    if type(value) is float:  # the common case first (1.8x on the whole line)
        return repr(value) if math.isfinite(value) else None
    if isinstance(value, str):
        return '"' + value.translate(_STRING) + '"'
    number = float(value)  # bool → 1.0 / 0.0, int → float (see the module docstring)
    if not math.isfinite(number):
        return None
    return repr(number)


@lru_cache(maxsize=4096)  # few distinct names; translate() costs 0.7 µs a call
def field_key(name: str) -> str:
    return name.translate(_KEY)


def line(key: str, fields: Iterable[tuple[str, FieldValue]], timestamp_ns: int) -> str | None:
    """One line: `key fields timestamp`; None when no field has a value to write."""
    written = []
    for name, value in fields:
        text = field_value(value)
        if text is not None:
            written.append(f"{field_key(name)}={text}")
    if not written:
        return None
    return f"{key} {','.join(written)} {timestamp_ns}"

"""Samples and the process image: what the controller knows of the plant, and how well.

A Sample carries a value only while it can be trusted: GOOD has a value; STALE keeps the last good
value and its original (acquisition) timestamp, so its age shows, but says the device has stopped
answering; BAD has no value and says why. Nothing invalid is ever GOOD.

Drivers publish "next" samples as they arrive, each device independently; the scan cycle takes a
frozen snapshot at the start of each cycle. Publishing and snapshotting are plain dictionary work
on the event loop, so a dead or slow device can delay only its own samples.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import NamedTuple

Value = float | int | bool | str


class Quality(StrEnum):
    GOOD = "good"
    # The device stopped answering (last good value, original timestamp), or an OPC-UA server
    # marks the value Uncertain: shown, never used for control.
    STALE = "stale"
    BAD = "bad"


class Reason(StrEnum):
    """Why a sample is not GOOD."""

    COMM_LOST = "comm_lost"  # the device does not answer (timeouts, refused, closed)
    DEVICE_EXCEPTION = "device_exception"  # a Modbus exception, or another Bad OPC-UA status
    ILLEGAL_ADDRESS = "illegal_address"  # the device says the point's address does not exist
    SENSOR_FAULT = "sensor_fault"  # a fault sentinel, NaN or ±inf
    OUT_OF_RANGE = "out_of_range"  # a value the point cannot have (e.g. a bad OPC-UA status)
    DECODE_ERROR = "decode_error"  # registers that do not make a value of the point's type
    NOT_CONNECTED = "not_connected"  # no answer yet since the driver started


class PointRef(NamedTuple):
    device: str
    point: str

    def __str__(self) -> str:
        return f"{self.device}.{self.point}"


@dataclass(frozen=True, slots=True)
class Sample:
    value: Value | None
    quality: Quality
    timestamp: datetime  # UTC: when the value was acquired (for BAD: when the problem was seen)
    reason: Reason | None = None

    def __post_init__(self) -> None:
        if self.timestamp.tzinfo is None:
            raise ValueError("sample timestamps are UTC-aware")
        if self.quality is Quality.GOOD and (self.value is None or self.reason is not None):
            raise ValueError("a GOOD sample has a value and no reason")
        if self.quality is Quality.BAD and (self.value is not None or self.reason is None):
            raise ValueError("a BAD sample has no value and a reason")
        if self.quality is Quality.STALE and (self.value is None or self.reason is None):
            raise ValueError("a STALE sample keeps a value and says why")

    @classmethod
    def good(cls, value: Value, at: datetime) -> Sample:
        return cls(value, Quality.GOOD, at)

    @classmethod
    def bad(cls, reason: Reason, at: datetime) -> Sample:
        return cls(None, Quality.BAD, at, reason)

    def stale(self, reason: Reason = Reason.COMM_LOST) -> Sample:
        """This sample gone stale: the same value and timestamp (BAD stays BAD)."""
        if self.quality is Quality.BAD:
            return self
        return Sample(self.value, Quality.STALE, self.timestamp, reason)

    @property
    def usable(self) -> bool:
        """Fit for control: GOOD. Control treats STALE like BAD (its safe behaviour)."""
        return self.quality is Quality.GOOD


class Snapshot(Mapping[PointRef, Sample]):
    """A frozen view of the process image at one instant."""

    def __init__(self, samples: dict[PointRef, Sample]) -> None:
        self._samples = MappingProxyType(samples)

    def __getitem__(self, ref: PointRef) -> Sample:
        return self._samples[ref]

    def __iter__(self) -> Iterator[PointRef]:
        return iter(self._samples)

    def __len__(self) -> int:
        return len(self._samples)


class ProcessImage:
    """The latest sample of every point, written by the drivers, read by the cycle as snapshots."""

    def __init__(self) -> None:
        self._next: dict[PointRef, Sample] = {}

    def publish(self, ref: PointRef, sample: Sample) -> None:
        self._next[ref] = sample

    def publish_many(self, samples: Mapping[PointRef, Sample]) -> None:
        self._next.update(samples)

    def snapshot(self) -> Snapshot:
        """A copy: later publications do not change it."""
        return Snapshot(dict(self._next))

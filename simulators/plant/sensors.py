"""Caisson sensor faults: what the PLC (and later the supervisor) read instead of the truth."""

from __future__ import annotations

from enum import IntEnum, StrEnum

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


class Sensor(StrEnum):
    INLET = "inlet_temp"
    OUTLET = "outlet_temp"
    FLOW = "flow"


class FaultKind(IntEnum):
    NONE = 0
    STUCK = 1  # frozen at the value it had when the fault began
    DRIFT = 2  # true value plus rate × time since the fault began
    SENTINEL = 3  # reads the device's fault code (NaN here; 0x7FFF on the wire)


class SensorFaults:
    def __init__(self, count: int) -> None:
        self.kind = {sensor: np.zeros(count, dtype=np.int64) for sensor in Sensor}
        self.value = {sensor: np.zeros(count) for sensor in Sensor}
        self.rate = {sensor: np.zeros(count) for sensor in Sensor}
        self.since = {sensor: np.zeros(count) for sensor in Sensor}
        self.active = False

    def inject(
        self, sensor: Sensor, caisson: int, kind: FaultKind, now: float, truth: float, rate: float
    ) -> None:
        """`rate` is per second (drift only); `truth` is the value the sensor freezes at."""
        self.kind[sensor][caisson] = kind
        self.value[sensor][caisson] = truth
        self.rate[sensor][caisson] = rate
        self.since[sensor][caisson] = now
        self.active = any(bool(np.any(kinds)) for kinds in self.kind.values())

    def read(self, sensor: Sensor, truth: FloatArray, now: float) -> FloatArray:
        if not self.active:
            return truth
        kind = self.kind[sensor]
        reading = np.where(kind == FaultKind.STUCK, self.value[sensor], truth)
        drift = self.rate[sensor] * (now - self.since[sensor])
        reading = np.where(kind == FaultKind.DRIFT, truth + drift, reading)
        return np.where(kind == FaultKind.SENTINEL, np.nan, reading)

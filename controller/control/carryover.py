"""What the supervisor learns over days and carries over a restart: each caisson's run hours
(lead and lag rotate on them, for even wear) and the day's peak load (the tank is kept charged
for the next peak). A restart (an update, a reboot of the edge box) would otherwise rotate the
caissons from zero and meet the next morning's peak with the tank it happens to have. Pure: JSON
out and in, and the peak memory aged by the time the daemon was down."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from controller.control.peak import HOURS, PeakMemory

VERSION = 1


@dataclass(frozen=True)
class Carryover:
    at: datetime  # when it was taken, UTC
    run_seconds: Mapping[str, float]  # by caisson id: time staged on, all runs together
    peaks: PeakMemory


def encode(carried: Carryover) -> str:
    return json.dumps(
        {
            "version": VERSION,
            "at": carried.at.isoformat(),
            "run_seconds": dict(carried.run_seconds),
            "peaks": {
                "past": list(carried.peaks.past),
                "current": carried.peaks.current,
                "elapsed": carried.peaks.elapsed,
            },
        }
    )


def decode(text: str) -> Carryover:
    """ValueError, naming what is wrong, for anything but what `encode` writes."""
    try:
        data = json.loads(text)
        if data["version"] != VERSION:
            raise ValueError(f"version {data['version']!r}, not {VERSION}")
        at = datetime.fromisoformat(data["at"])
        if at.tzinfo is None:
            raise ValueError(f"time {data['at']!r} has no time zone")
        run = {str(k): _number(v, f"run_seconds of {k}") for k, v in data["run_seconds"].items()}
        peaks = data["peaks"]
        past = tuple(_number(v, "a past hour's peak") for v in peaks["past"])
        if len(past) >= HOURS:
            raise ValueError(f"{len(past)} past hours, at most {HOURS - 1}")
        memory = PeakMemory(
            past, _number(peaks["current"], "peak"), _number(peaks["elapsed"], "elapsed")
        )
    except (KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"carryover: missing or mistyped {error}") from None
    except ValueError as error:
        raise ValueError(f"carryover: {error}") from None
    return Carryover(at, run, memory)


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{what} is {value!r}, not a number")
    if value < 0:
        raise ValueError(f"{what} is {value!r}, below 0")
    return float(value)


def aged_peaks(carried: Carryover, now: datetime) -> PeakMemory:
    """The peak memory as it stands at `now`: the hours the daemon was down count as hours
    without load (a day's pause forgets every peak; a clock set back ages nothing)."""
    down = max((now - carried.at).total_seconds(), 0.0)
    return carried.peaks.updated(0.0, down)

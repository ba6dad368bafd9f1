"""The day's peak heat load: the highest filtered load of the last 24 hours. Pure.

Heating loads repeat from one day to the next (the night setback's recovery, the morning's hot
water); a site whose load came near the caissons' capacity yesterday will likely do so again
within a day, at an hour no controller knows in advance. Dispatch keeps the tank charged while
this peak is high, so that it is full whenever the next one comes.

The memory holds one maximum per hour (24 numbers), so it forgets an hour's peak a day later
whatever the scan period.
"""

from __future__ import annotations

from dataclasses import dataclass

HOUR = 3600.0  # s
HOURS = 24  # the memory's span


@dataclass(frozen=True)
class PeakMemory:
    past: tuple[float, ...] = ()  # W: each past hour's highest load, oldest first (at most 23)
    current: float = 0.0  # W: this hour's highest so far
    elapsed: float = 0.0  # s into this hour

    @property
    def peak(self) -> float:
        """W: the highest load of the last 24 hours (0 before any)."""
        return max((*self.past, self.current))

    def updated(self, load: float, dt: float) -> PeakMemory:
        """The memory after `dt` s more with `load` W."""
        past, current = self.past, max(self.current, load)
        elapsed = min(self.elapsed + dt, HOURS * HOUR)  # a long pause forgets at most a day
        while elapsed >= HOUR:  # the hour is over: kept; the next starts with this load
            past, current, elapsed = (*past, current)[-(HOURS - 1) :], load, elapsed - HOUR
        return PeakMemory(past, current, elapsed)

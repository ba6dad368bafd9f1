"""Minute averages of what the plant did (supply temperature, heat delivered, IT power), kept in
memory by the daemon for `boilerctl kpi` and its plot: the historian has the full record; this is
the edge box's own short view when no database is at hand."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

KEEP_MINUTES = 7 * 24 * 60


@dataclass(frozen=True)
class Minute:
    at: datetime  # UTC, the minute's start
    supply: float | None  # °C
    delivered: float | None  # W
    it_power: float | None  # W


@dataclass
class _Sums:
    total: float = 0.0
    count: int = 0

    def add(self, value: float | None) -> None:
        if value is not None:
            self.total += value
            self.count += 1

    def mean(self) -> float | None:
        return self.total / self.count if self.count else None


@dataclass
class MinuteTrend:
    """Averages of the valid values of each minute; a minute with none of a quantity keeps None."""

    keep: int = KEEP_MINUTES
    minutes: deque[Minute] = field(default_factory=deque)
    _start: datetime | None = None
    _sums: tuple[_Sums, _Sums, _Sums] = field(default_factory=lambda: (_Sums(), _Sums(), _Sums()))

    def add(
        self, at: datetime, supply: float | None, delivered: float | None, it_power: float | None
    ) -> None:
        start = at.replace(second=0, microsecond=0)
        if self._start is not None and start != self._start:
            self._close()
        if self._start != start:
            self._start = start
        for sums, value in zip(self._sums, (supply, delivered, it_power), strict=True):
            sums.add(value)

    def points(self, since: datetime | None = None) -> list[Minute]:
        """The closed minutes from `since`, and the minute in progress."""
        current = [self._current()] if self._start is not None else []
        return [m for m in [*self.minutes, *current] if since is None or m.at >= since]

    def _current(self) -> Minute:
        assert self._start is not None
        supply, delivered, it_power = (s.mean() for s in self._sums)
        return Minute(self._start, supply, delivered, it_power)

    def _close(self) -> None:
        self.minutes.append(self._current())
        while len(self.minutes) > self.keep:
            self.minutes.popleft()
        self._sums = (_Sums(), _Sums(), _Sums())

"""Alarm conditions: is an alarm's condition active, given the latest value? One object per alarm
instance, fed once per scan.

Each condition first decides what the value asks for (with a deadband on the way back, where the
kind has one), then debounces: the answer changes only after it has asked for the change
continuously for `on_delay` (to become active) or `off_delay` (to clear). Both stop a noisy signal
near its limit from chattering.

A value of None (the input is STALE or BAD) keeps the last state and restarts a pending delay: a
condition is never raised or cleared on data the controller cannot trust. Missing data is the
business of the controller's own "stale critical input" alarm, not of every alarm on that input.

Times are monotonic seconds, passed in.
"""

from __future__ import annotations

from collections import deque
from typing import Final

from controller.alarms.model import Kind

LIMIT_KINDS: Final = frozenset({Kind.HI, Kind.HIHI, Kind.LO, Kind.LOLO})
_HIGH_KINDS: Final = frozenset({Kind.HI, Kind.HIHI})


class _Debounce:
    """The on/off delays shared by every condition."""

    def __init__(self, on_delay: float, off_delay: float) -> None:
        if on_delay < 0 or off_delay < 0:
            raise ValueError(f"delays must not be negative, got on {on_delay}, off {off_delay}")
        self.on_delay = on_delay
        self.off_delay = off_delay
        self._active = False
        self._pending_since: float | None = None  # when the value started asking for a change

    @property
    def active(self) -> bool:
        return self._active

    def preset(self, active: bool) -> None:
        """Set the state at once, without delays (e.g. from a restored alarm state)."""
        self._active = active
        self._pending_since = None

    def _debounce(self, wanted: bool | None, now: float) -> bool:
        """`wanted`: what the value asks for; None: no usable value (keep the state)."""
        if wanted is None or wanted == self._active:
            self._pending_since = None
            return self._active
        if self._pending_since is None:
            self._pending_since = now
        delay = self.on_delay if wanted else self.off_delay
        if now - self._pending_since >= delay:
            self._active = wanted
            self._pending_since = None
        return self._active


def _number(value: float | bool | None) -> float | None:
    return None if value is None else float(value)


class LimitCondition(_Debounce):
    """HI/HIHI: active above `limit`, clear below `limit − deadband`. LO/LOLO: the mirror."""

    def __init__(
        self,
        kind: Kind,
        limit: float,
        deadband: float = 0.0,
        on_delay: float = 0.0,
        off_delay: float = 0.0,
    ) -> None:
        if kind not in LIMIT_KINDS:
            raise ValueError(f"a limit condition is hi, hihi, lo or lolo, not {kind}")
        if deadband < 0:
            raise ValueError(f"deadband must not be negative, got {deadband}")
        super().__init__(on_delay, off_delay)
        self.kind = kind
        self.limit = limit
        self.deadband = deadband

    def evaluate(
        self, value: float | bool | None, now: float, setpoint: float | None = None
    ) -> bool:
        number = _number(value)
        wanted: bool | None = None
        if number is not None and self.kind in _HIGH_KINDS:
            high = self.limit - self.deadband if self._active else self.limit
            wanted = number >= high if self._active else number > high
        elif number is not None:
            low = self.limit + self.deadband if self._active else self.limit
            wanted = number <= low if self._active else number < low
        return self._debounce(wanted, now)


class DiscreteCondition(_Debounce):
    """Active while a bit or flag is at its alarm value."""

    def __init__(
        self, alarm_value: bool = True, on_delay: float = 0.0, off_delay: float = 0.0
    ) -> None:
        super().__init__(on_delay, off_delay)
        self.alarm_value = alarm_value

    def evaluate(
        self, value: float | bool | None, now: float, setpoint: float | None = None
    ) -> bool:
        wanted = None if value is None else bool(value) is self.alarm_value
        return self._debounce(wanted, now)


class DeviationCondition(_Debounce):
    """Active while |value − setpoint| > `limit`; clear below `limit − deadband`. The setpoint
    comes with each call; a missing setpoint is missing data (keeps the state)."""

    def __init__(
        self, limit: float, deadband: float = 0.0, on_delay: float = 0.0, off_delay: float = 0.0
    ) -> None:
        if limit <= 0:
            raise ValueError(f"a deviation limit must be positive, got {limit}")
        if not 0 <= deadband < limit:
            raise ValueError(
                f"a deviation deadband must be at least 0 and below the limit ({limit}), "
                f"got {deadband}"
            )
        super().__init__(on_delay, off_delay)
        self.limit = limit
        self.deadband = deadband

    def evaluate(
        self, value: float | bool | None, now: float, setpoint: float | None = None
    ) -> bool:
        number = _number(value)
        wanted: bool | None = None
        if number is not None and setpoint is not None:
            deviation = abs(number - setpoint)
            threshold = self.limit - self.deadband if self._active else self.limit
            wanted = deviation >= threshold if self._active else deviation > threshold
        return self._debounce(wanted, now)


class RateCondition(_Debounce):
    """Active while |Δvalue / Δt| over the last `window` seconds exceeds `limit` (units per
    second), both signs.

    The rate is taken between the newest value and the newest one at least `window` old, so it
    always spans a whole window (averaging the noise over it); until the history spans a window,
    the value asks for no alarm.
    """

    def __init__(
        self, limit: float, window: float, on_delay: float = 0.0, off_delay: float = 0.0
    ) -> None:
        if limit <= 0:
            raise ValueError(f"a rate limit must be positive, got {limit}")
        if window <= 0:
            raise ValueError(f"a rate window must be positive, got {window}")
        super().__init__(on_delay, off_delay)
        self.limit = limit
        self.window = window
        self._history: deque[tuple[float, float]] = deque()  # (time, value), oldest first

    def evaluate(
        self, value: float | bool | None, now: float, setpoint: float | None = None
    ) -> bool:
        number = _number(value)
        if number is None:
            return self._debounce(None, now)
        history = self._history
        history.append((now, number))
        # Keep one value at least a window old (the base), and nothing older than it.
        while len(history) >= 2 and history[1][0] <= now - self.window:
            history.popleft()
        base_time, base_value = history[0]
        if now - base_time < self.window:
            return self._debounce(False, now)
        rate = (number - base_value) / (now - base_time)
        return self._debounce(abs(rate) > self.limit, now)


Condition = LimitCondition | DiscreteCondition | DeviationCondition | RateCondition

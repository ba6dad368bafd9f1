"""Staging: which caissons run, in the manner of ASHRAE Guideline 36's boiler-plant staging. Pure.

A caisson either runs or stands by (its PLC stops the pump behind a check valve once its cap is 0
and its servers idle). The running set grows when the IT power the plant wants has stayed above
`UP_SHARE` of the running caissons' capacity for the up delay, and shrinks when it has fitted
within `DOWN_SHARE` of the capacity of one caisson fewer for the down delay (the last one stops
once nothing has been wanted for the idle delay); a caisson runs at least its minimum run time and
rests at least its minimum off time (the site file's `control.staging`). The first caisson starts
at once when there is demand and none runs.

Lead and lag rotate by run hours, for even wear: the next to start is the ready caisson with the
fewest, the next to stop the running one with the most; and a ready caisson that has run
`rotate_after` less than a running one starts (the other then stops, the demand fitting fewer). A
caisson that is not ready (interlocks, lockout, manual mode, a PLC not in remote mode, lost
inputs) is never started, and one that stops being ready while running leaves the running set at
once, so that the next one (or it again, once ready) starts without waiting for the stage-up
delay or a minimum off time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from controller.config.site import Staging as Times

UP_SHARE = 0.9
DOWN_SHARE = 0.8
DEFAULT_TIMES = Times()


@dataclass(frozen=True)
class Unit:
    """A caisson as staging sees it this cycle."""

    index: int
    ready: bool  # may run
    capacity: float  # W of IT power it can take now
    running: bool  # its pump runs now (the PLC's standby bit clear): the start-up state


@dataclass(frozen=True)
class UnitState:
    on: bool
    since: float  # monotonic s of its last start or stop (-inf: before this controller)
    run_seconds: float = 0.0  # time staged on under this controller, for the rotation


@dataclass(frozen=True)
class StagingState:
    units: dict[int, UnitState] = field(default_factory=dict)
    up_since: float | None = None  # the stage-up condition holds since
    down_since: float | None = None  # the stage-down (or idle-stop) condition holds since
    owed: int = 0  # running caissons that dropped out: as many start without delay
    # run seconds by caisson index an earlier run left (carryover.py), taken at first sight
    carried: Mapping[int, float] = field(default_factory=dict)

    @property
    def run_seconds(self) -> dict[int, float]:
        """Each caisson's run seconds over every run: its own once seen, else the carried."""
        return {**self.carried, **{i: unit.run_seconds for i, unit in self.units.items()}}


@dataclass(frozen=True)
class Staging:
    running: frozenset[int]  # the caissons staged on
    state: StagingState


def _held(since: float | None, now: float) -> float:
    return 0.0 if since is None else now - since


def stage(
    state: StagingState,
    units: Sequence[Unit],
    demand: float,
    now: float,
    dt: float,
    times: Times = DEFAULT_TIMES,
) -> Staging:
    """This cycle's running set for `demand` W of IT power, and the state carried on."""
    known = dict(state.units)
    for u in units:
        if u.index not in known:  # first sight: as the PLC runs it, free to switch at once
            known[u.index] = UnitState(u.running, float("-inf"), state.carried.get(u.index, 0.0))
    ready = {u.index for u in units if u.ready}
    capacity = {u.index: u.capacity for u in units}
    owed = state.owed
    for index, unit in known.items():
        if unit.on:
            if index not in ready:
                known[index] = UnitState(False, now, unit.run_seconds)
                owed += 1
            else:
                known[index] = replace(unit, run_seconds=unit.run_seconds + dt)
    running = {i for i, u in known.items() if u.on}
    running_capacity = sum(capacity[i] for i in running)

    up_since, down_since = state.up_since, state.down_since
    resting = ready - running
    rotate = bool(running and resting) and (
        max(known[i].run_seconds for i in running)
        > min(known[i].run_seconds for i in resting) + times.rotate_after
    )
    wants_more = demand > 0.0 and (not running or demand > UP_SHARE * running_capacity or rotate)
    up_since = (up_since if up_since is not None else now) if wants_more else None
    owed = owed if wants_more or not ready else 0  # (none ready: dispatch wants nothing)
    urgent = not running or owed > 0
    if wants_more and (urgent or _held(up_since, now) >= times.up_delay):
        startable = [i for i in resting if now - known[i].since >= times.min_off or urgent]
        if startable:
            lead = min(startable, key=lambda i: (known[i].run_seconds, i))
            known[lead] = UnitState(True, now, known[lead].run_seconds)
            running.add(lead)
            up_since = None
            owed = max(owed - 1, 0)

    lag = max(running, key=lambda i: (known[i].run_seconds, i)) if running else None
    fewer = running_capacity - (capacity[lag] if lag is not None else 0.0)
    if lag is not None and len(running) == 1:
        wants_less, delay = demand <= 0.0, times.idle_delay
    else:
        wants_less, delay = demand < DOWN_SHARE * fewer, times.down_delay
    wants_less = wants_less and not wants_more
    down_since = (down_since if down_since is not None else now) if wants_less else None
    if (
        lag is not None
        and wants_less
        and _held(down_since, now) >= delay
        and now - known[lag].since >= times.min_run
    ):
        known[lag] = UnitState(False, now, known[lag].run_seconds)
        running.discard(lag)
        down_since = None
    return Staging(
        frozenset(running),
        StagingState(known, up_since, down_since, owed, state.carried),
    )

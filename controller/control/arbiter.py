"""The arbiter: one value per writable point per cycle, and whether to send it. Pure.

Proposals come from interlocks, operator overrides (leases) and automatic control. A fixed value
from a higher source wins (interlock > operator > automatic); interlock bounds (at most, at least)
then clamp whatever won. Automatic and operator values move at most at the point's rate limits;
interlock values are applied at once when they move towards safety, and at the rate limits when
an interlock lets go.

A value is sent when it differs from the last one sent by at least the point's deadband (flash
wear: DOMAIN.md), when a lease point is due for renewal (before half its timeout), or when nothing
has been sent yet. Only a confirmed write counts as sent; a failed one is tried again next cycle.
Writes per point are counted (exported for flash-wear watch).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import IntEnum, StrEnum

from controller.fieldbus.image import PointRef


class Source(IntEnum):
    """Lower wins."""

    INTERLOCK = 0
    OPERATOR = 1
    AUTO = 2

    @property
    def label(self) -> str:
        return self.name.lower()


class Bound(StrEnum):
    FIX = "fix"
    AT_MOST = "at_most"
    AT_LEAST = "at_least"


@dataclass(frozen=True)
class Proposal:
    ref: PointRef
    value: float  # SI (fractions, W); booleans as 0.0 / 1.0
    source: Source
    bound: Bound = Bound.FIX
    reason: str = ""


@dataclass(frozen=True)
class OutputSpec:
    factor: float  # SI value = point value × factor
    deadband: float = 0.0  # SI
    rate_up: float | None = None  # SI per second; None: unlimited
    rate_down: float | None = None
    renew_every: float | None = None  # s, lease points
    verify: bool = False  # read back after writing (critical setpoints)
    boolean: bool = False


@dataclass(frozen=True)
class Output:
    """What the arbiter remembers of one point."""

    commanded: float | None = None  # SI: the value arbitrated last cycle (rate limits start here)
    sent: float | None = None  # SI: the last value confirmed written (or read back at start-up)
    sent_at: float = float("-inf")  # monotonic s
    writes: int = 0
    source: Source = Source.AUTO
    reason: str = ""


@dataclass(frozen=True)
class Write:
    ref: PointRef
    value: float | bool  # in the point's unit, as the driver writes it
    si_value: float
    verify: bool
    source: Source
    reason: str
    renewal: bool  # sent because its lease was due, not because it changed


def resolve(proposals: Iterable[Proposal]) -> Proposal | None:
    """The winning proposal of one point's (None when no source fixes a value): the fixed value
    of the highest source, or the bound that clamps it."""
    fixed = [p for p in proposals if p.bound is Bound.FIX]
    if not fixed:
        return None
    winner = min(fixed, key=lambda p: p.source)
    for bound in proposals:
        above = bound.bound is Bound.AT_MOST and winner.value > bound.value
        below = bound.bound is Bound.AT_LEAST and winner.value < bound.value
        if above or below:
            winner = bound
    return winner


def _towards_safety(winner: Proposal, start: float) -> bool:
    """An interlock's value applies at once when it moves the point the way it pushes (a cap
    down, a pump up, or a fixed safe value); released, it moves at the rate limits."""
    if winner.source is not Source.INTERLOCK:
        return False
    if winner.bound is Bound.AT_MOST:
        return winner.value <= start
    if winner.bound is Bound.AT_LEAST:
        return winner.value >= start
    return True


def _rate_limited(spec: OutputSpec, start: float, value: float, dt: float) -> float:
    if value > start and spec.rate_up is not None:
        return min(value, start + spec.rate_up * dt)
    if value < start and spec.rate_down is not None:
        return max(value, start - spec.rate_down * dt)
    return value


def arbitrate(
    specs: Mapping[PointRef, OutputSpec],
    memory: Mapping[PointRef, Output],
    proposals: Iterable[Proposal],
    now: float,
    dt: float,
) -> tuple[list[Write], dict[PointRef, Output]]:
    """This cycle's writes, and the memory with this cycle's commanded values."""
    by_ref: dict[PointRef, list[Proposal]] = {}
    for proposal in proposals:
        by_ref.setdefault(proposal.ref, []).append(proposal)
    new_memory = dict(memory)
    writes: list[Write] = []
    for ref, candidates in by_ref.items():
        winner = resolve(candidates)
        if winner is None:
            continue
        value, source, reason = winner.value, winner.source, winner.reason
        spec = specs[ref]
        output = memory.get(ref, Output())
        start = output.commanded if output.commanded is not None else output.sent
        if start is not None and not _towards_safety(winner, start):
            value = _rate_limited(spec, start, value, dt)
        new_memory[ref] = Output(value, output.sent, output.sent_at, output.writes, source, reason)
        changed = output.sent is None or abs(value - output.sent) > max(spec.deadband, 1e-9)
        renewal = spec.renew_every is not None and now - output.sent_at >= spec.renew_every
        if changed or renewal:
            point_value: float | bool = value >= 0.5 if spec.boolean else value / spec.factor
            writes.append(
                Write(ref, point_value, value, spec.verify, source, reason, renewal and not changed)
            )
    return writes, new_memory


def confirm(memory: Mapping[PointRef, Output], write: Write, now: float) -> dict[PointRef, Output]:
    """The memory once `write` is confirmed by the device."""
    new_memory = dict(memory)
    output = new_memory.get(write.ref, Output())
    new_memory[write.ref] = Output(
        output.commanded, write.si_value, now, output.writes + 1, output.source, output.reason
    )
    return new_memory


def assume_sent(
    memory: Mapping[PointRef, Output], ref: PointRef, value: float
) -> dict[PointRef, Output]:
    """Start-up: a point's present value read back from its device (bumpless; not a write, and its
    lease is renewed at the first cycle)."""
    new_memory = dict(memory)
    output = new_memory.get(ref, Output())
    new_memory[ref] = replace(output, commanded=value, sent=value)
    return new_memory

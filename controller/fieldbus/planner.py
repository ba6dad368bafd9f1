"""Modbus read planner: the points of a device → the fewest read requests, learning what the
device refuses.

Pure: no I/O, no clock. `plan_reads` is a function of the map, the points, the limits and what is
known about the device; `ReadPlan` is the small state one device's driver keeps across polls,
learning from exception 2 (illegal data address) answers.

Vocabulary (all addresses are wire/PDU offsets, per table):

- span: the registers (or bits) of one point, or of points that share them (a status word and
  its bit points). A span is read whole, in one request, or not at all.
- cut (table, c): a block may not start before c and end at or after it: the device refuses to
  bridge that boundary (typically an unmapped hole).
- illegal (table, a): the device refuses to read address a. No block covers it, and the points
  whose registers include it are left out (`unreadable_points`).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass

from controller.config.maps import ModbusMap, ModbusPoint, Table

Address = tuple[Table, int]
BITS_PER_REGISTER = 16


@dataclass(frozen=True)
class ReadBlock:
    """One read request: `count` registers (bits for coil/discrete tables) from `start`.

    `offsets[i]` is where the registers (bits) of `points[i]` begin in the response. Points are in
    address order, a word before its bits. Not hashable (points hold lists).
    """

    table: Table
    start: int
    count: int
    points: tuple[ModbusPoint, ...]
    offsets: tuple[int, ...]

    @property
    def end(self) -> int:
        """The first address after the block."""
        return self.start + self.count

    def offset_of(self, point: ModbusPoint) -> int:
        """Where `point`'s registers (bits) begin in the response; KeyError if not carried."""
        for carried, offset in zip(self.points, self.offsets, strict=True):
            if carried.id == point.id:
                return offset
        raise KeyError(point.id)


def plan_reads(
    device_map: ModbusMap,
    points: Iterable[ModbusPoint],
    *,
    max_registers: int = 125,
    max_bits: int = 2000,
    max_gap: int = 8,
    cuts: frozenset[Address] = frozenset(),
    illegal: frozenset[Address] = frozenset(),
) -> list[ReadBlock]:
    """The fewest blocks that read every given point, ordered by table then address.

    A block holds at most `max_registers` registers (and never more than the map's
    `max_registers_per_read`) or `max_bits` bits, bridges holes of at most `max_gap` registers
    (`max_gap` × 16 bits in the bit tables), crosses no cut and covers no illegal address. Points
    touching an illegal address are left out: `unreadable_points` names them. A cut that falls
    inside one span cannot split it: the span is then read alone.

    Greedy is optimal: a block holds consecutive spans (it reads whatever lies in its range), and
    every part of a feasible run of spans is feasible (shorter, fewer holes, fewer boundaries);
    so the first block reaching as far as it can leaves the rest no worse placed than any other
    first block would, and by induction no partition uses fewer blocks.

    Raises ValueError for limits below 1 (max_gap below 0) and for a point wider than a request.
    """
    _check_limits(max_registers, max_bits, max_gap)
    given = _unique(points)
    excluded = {point.id for point in unreadable_points(device_map, given, illegal)}
    readable = [point for point in given if point.id not in excluded]
    blocks: list[ReadBlock] = []
    for table in Table:
        entries = [(_registers(device_map, p).start, p) for p in readable if p.table is table]
        if table.is_bit_table:
            longest, gap = max_bits, max_gap * BITS_PER_REGISTER
        else:
            longest, gap = min(max_registers, device_map.max_registers_per_read), max_gap
        barriers = sorted(address for t, address in cuts | illegal if t is table)
        blocks += _coalesce(table, _spans(entries), longest, gap, barriers)
    return blocks


def unreadable_points(
    device_map: ModbusMap, points: Iterable[ModbusPoint], illegal: frozenset[Address]
) -> tuple[ModbusPoint, ...]:
    """The points, in the given order, whose registers (bits) include an illegal address."""
    return tuple(
        point
        for point in _unique(points)
        if any((point.table, address) in illegal for address in _registers(device_map, point))
    )


class ReadPlan:
    """The read plan of one device, learning from the requests the device refuses.

    After each request the driver reports the outcome: `succeeded(block)`, or
    `illegal_address(block)` on exception 2. A refused block of several spans is split in two (a
    cut) and the next poll reads the halves; a refused single span becomes illegal and its points
    `unreadable`. Splits take the widest hole, where an unmapped range most likely lies, among the
    boundaries of the middle third of the spans, so each failure leaves at most two thirds of them
    in doubt and isolating one bad address among n spans takes O(log n) failures.

    Exception 2 means the request covered an address the device lacks. So a cut is proven, and
    stays for good, once every address of the refused block outside the cut's hole has been read:
    the lacking address is in that hole (an unmapped range the device will not bridge). Until then
    the cut is pending, and dropped when the refusal is explained otherwise (the refused block
    covers an illegal address or bridges a proven cut: the cuts of a binary search for one bad
    point all go once it is found) or when the plan no longer reads some address that could prove
    it (the next poll then tests that range afresh). The plan keeps only the cuts the device needs.

    Failures of blocks no longer in `blocks` are ignored: the blocks that replaced them are read
    next. Both reports may change `blocks`; iterate over a copy while reading.
    """

    def __init__(
        self,
        device_map: ModbusMap,
        points: Iterable[ModbusPoint],
        *,
        max_registers: int = 125,
        max_bits: int = 2000,
        max_gap: int = 8,
    ) -> None:
        _check_limits(max_registers, max_bits, max_gap)
        self._map = device_map
        self._points = tuple(points)
        self._limits = (max_registers, max_bits, max_gap)
        self._cuts: dict[Address, _Cut] = {}
        self._illegal: set[Address] = set()
        self._present: set[Address] = set()  # addresses the device has answered
        self.blocks: list[ReadBlock] = []
        self.unreadable: tuple[ModbusPoint, ...] = ()
        self._replan()

    @property
    def cuts(self) -> frozenset[Address]:
        """The cuts in force, pending or proven."""
        return frozenset(self._cuts)

    @property
    def illegal(self) -> frozenset[Address]:
        """The addresses the device refuses to read."""
        return frozenset(self._illegal)

    def illegal_address(self, block: ReadBlock) -> None:
        """The device answered exception 2 (illegal data address) to `block`."""
        if block not in self.blocks:
            return
        spans = _spans(zip((block.start + o for o in block.offsets), block.points, strict=True))
        if len(spans) == 1:
            self._illegal.update((block.table, a) for a in range(block.start, block.end))
        else:
            split = _split_index(spans)
            left, right = spans[split - 1], spans[split]
            failed, hole = range(block.start, block.end), range(left.end, right.start)
            self._cuts[block.table, right.start] = _Cut(failed, hole)
        self._settle()

    def succeeded(self, block: ReadBlock) -> None:
        """The device answered `block`: its addresses exist, which may prove pending cuts."""
        answered = {(block.table, a) for a in range(block.start, block.end)}
        if not answered <= self._present:
            self._present |= answered
            self._settle()

    def _settle(self) -> None:
        """Replans, dropping the pending cuts explained otherwise or no longer provable, until
        none is left to drop (each plan decides which addresses the next poll reads)."""
        while True:
            self._replan()
            read = {(b.table, a) for b in self.blocks for a in range(b.start, b.end)}
            kept = {
                (table, address): cut
                for (table, address), cut in self._cuts.items()
                if self._proven(table, cut)
                or not (self._explained(table, cut) or self._unprovable(table, cut, read))
            }
            if kept.keys() == self._cuts.keys():
                return
            self._cuts = kept

    def _proven(self, table: Table, cut: _Cut) -> bool:
        return all((table, a) in self._present for a in cut.failed if a not in cut.hole)

    def _explained(self, table: Table, cut: _Cut) -> bool:
        """Whether the refused block covers an illegal address or bridges a proven cut."""
        return any((table, a) in self._illegal for a in cut.failed) or any(
            t is table and cut.failed.start < c < cut.failed.stop and self._proven(t, other)
            for (t, c), other in self._cuts.items()
        )

    def _unprovable(self, table: Table, cut: _Cut, read: set[Address]) -> bool:
        """Whether an address that could prove `cut` is neither answered nor read by the plan
        (addresses in the hole of a cut are left to that cut)."""
        holes = {a for (t, _), other in self._cuts.items() if t is table for a in other.hole}
        return any(
            a not in holes and (table, a) not in self._present and (table, a) not in read
            for a in cut.failed
        )

    def _replan(self) -> None:
        max_registers, max_bits, max_gap = self._limits
        illegal = frozenset(self._illegal)
        self.blocks = plan_reads(
            self._map,
            self._points,
            max_registers=max_registers,
            max_bits=max_bits,
            max_gap=max_gap,
            cuts=frozenset(self._cuts),
            illegal=illegal,
        )
        self.unreadable = unreadable_points(self._map, self._points, illegal)


@dataclass(frozen=True)
class _Span:
    """Registers [start, end) read whole: one point, or points sharing them."""

    start: int
    end: int
    entries: tuple[tuple[int, ModbusPoint], ...]  # (wire address, point)


@dataclass(frozen=True)
class _Cut:
    """A cut learned from the refused block `failed`; `hole` lies between the spans it parts."""

    failed: range
    hole: range


def _check_limits(max_registers: int, max_bits: int, max_gap: int) -> None:
    if max_registers < 1 or max_bits < 1 or max_gap < 0:
        raise ValueError(
            f"limits must be positive (max_gap at least 0): max_registers {max_registers}, "
            f"max_bits {max_bits}, max_gap {max_gap}"
        )


def _registers(device_map: ModbusMap, point: ModbusPoint) -> range:
    start = device_map.wire_address(point)
    return range(start, start + point.register_count)


def _unique(points: Iterable[ModbusPoint]) -> list[ModbusPoint]:
    """The points without repeats (by id), in the given order."""
    return list({point.id: point for point in points}.values())


def _spans(entries: Iterable[tuple[int, ModbusPoint]]) -> list[_Span]:
    """(wire address, point) pairs grouped into spans, in address order (a word before its bits,
    bits in order), whatever the order given."""
    spans: list[_Span] = []
    for wire, point in sorted(entries, key=lambda e: (e[0], -1 if e[1].bit is None else e[1].bit)):
        end = wire + point.register_count
        if spans and wire < spans[-1].end:
            last = spans[-1]
            spans[-1] = _Span(last.start, max(last.end, end), (*last.entries, (wire, point)))
        else:
            spans.append(_Span(wire, end, ((wire, point),)))
    return spans


def _coalesce(
    table: Table, spans: list[_Span], longest: int, gap: int, barriers: list[int]
) -> list[ReadBlock]:
    """Greedy, left to right: each span joins the current run while the run stays feasible."""
    runs: list[list[_Span]] = []
    for span in spans:
        if span.end - span.start > longest:
            point = span.entries[0][1]
            raise ValueError(
                f"point {point.id!r} takes {span.end - span.start} registers (bits) of table "
                f"{table}, more than the {longest} a request may read"
            )
        run = runs[-1] if runs else None
        if (
            run is not None
            and span.end - run[0].start <= longest
            and span.start - run[-1].end <= gap
            and not _bridges(barriers, run[0].start, span.end)
        ):
            run.append(span)
        else:
            runs.append([span])
    return [_block(table, run) for run in runs]


def _bridges(barriers: list[int], start: int, end: int) -> bool:
    """Whether a block [start, end) crosses one of the sorted barriers (start < b < end)."""
    index = bisect_right(barriers, start)
    return index < len(barriers) and barriers[index] < end


def _block(table: Table, run: list[_Span]) -> ReadBlock:
    start = run[0].start
    entries = [entry for span in run for entry in span.entries]
    return ReadBlock(
        table=table,
        start=start,
        count=run[-1].end - start,
        points=tuple(point for _, point in entries),
        offsets=tuple(wire - start for wire, _ in entries),
    )


def _split_index(spans: list[_Span]) -> int:
    """Index of the first span right of the split: the widest hole among the boundaries of the
    middle third (ties to the most central), never more than two thirds of the spans on a side."""
    count = len(spans)
    middle_third = range(-(-count // 3), 2 * count // 3 + 1)
    return max(
        middle_third,
        key=lambda i: (spans[i].start - spans[i - 1].end, -abs(2 * i - count)),
    )

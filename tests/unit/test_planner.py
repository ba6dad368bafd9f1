"""Modbus read planner: the bundled maps, request limits, gaps, cuts and illegal addresses,
minimality against an exhaustive optimum, and learning from a fake device that refuses reads.

The exhaustive optimum tries every partition of a table's spans into runs of consecutive spans.
That is every plan worth counting: a block reads whatever lies in its range, so a block leaving
out a span in its range can take it in at no cost.
"""

from __future__ import annotations

import math
import random
from itertools import pairwise, product
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.config.loader import load_map
from controller.config.maps import ModbusMap, ModbusPoint, Table
from controller.fieldbus.planner import (
    Address,
    ReadBlock,
    ReadPlan,
    plan_reads,
    unreadable_points,
)

REPO = Path(__file__).resolve().parents[2]
HR, IR, CO, DI = Table.HOLDING, Table.INPUT, Table.COIL, Table.DISCRETE
TABLE_ORDER = list(Table)


def modbus_map(*points: dict[str, Any], **fields: Any) -> ModbusMap:
    return ModbusMap.model_validate(
        {
            "protocol": "modbus",
            "device_type": "test",
            "addressing": "zero-based",
            **fields,
            "points": list(points),
        }
    )


def point(
    address: int, table: Table = IR, data_type: str = "uint16", **fields: Any
) -> dict[str, Any]:
    if table.is_bit_table:
        data_type = "bool"
    return {
        "id": f"{table}_{address}",
        "table": table.value,
        "address": address,
        "type": data_type,
        **fields,
    }


def bit(address: int, number: int, table: Table = IR) -> dict[str, Any]:
    return {
        "id": f"{table}_{address}_bit{number}",
        "table": table.value,
        "address": address,
        "type": "bit",
        "bit": number,
    }


def registers(device_map: ModbusMap, p: ModbusPoint) -> range:
    return range(device_map.wire_address(p), device_map.wire_address(p) + p.register_count)


def words(addresses: range | list[int], table: Table = IR) -> ModbusMap:
    return modbus_map(*(point(address, table) for address in addresses))


def layout(blocks: list[ReadBlock]) -> list[tuple[Table, int, int]]:
    return [(block.table, block.start, block.count) for block in blocks]


def bundled(name: str) -> ModbusMap:
    device_map = load_map(REPO / "plc_maps" / f"{name}.yaml")
    assert isinstance(device_map, ModbusMap)
    return device_map


# ---- bundled maps


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("caisson_skid", [(HR, 0, 5), (IR, 0, 12), (CO, 0, 3), (DI, 0, 1)]),
        ("plant_skid", [(HR, 0, 4), (IR, 0, 16), (CO, 0, 1)]),
        ("heat_meter", [(IR, 0, 12)]),
    ],
)
def test_bundled_map_is_one_block_per_table(
    name: str, expected: list[tuple[Table, int, int]]
) -> None:
    device_map = bundled(name)
    blocks = plan_reads(device_map, device_map.points)
    assert layout(blocks) == expected
    assert sorted(p.id for b in blocks for p in b.points) == sorted(p.id for p in device_map.points)


def test_word_and_its_bits_ride_in_one_block_at_one_offset() -> None:
    skid = bundled("caisson_skid")
    (inputs,) = [b for b in plan_reads(skid, skid.points) if b.table is IR]
    for point_id in ("pump_status", "pump_running", "pump_fault", "pump_alarm"):
        assert inputs.offset_of(skid.point(point_id)) == 8
    assert inputs.offset_of(skid.point("it_power")) == 5
    assert inputs.end == 12


def test_offsets_follow_one_based_addressing() -> None:
    plant = bundled("plant_skid")
    (inputs,) = [b for b in plan_reads(plant, plant.points) if b.table is IR]
    assert inputs.offset_of(plant.point("tank_temp_top")) == 0  # register 1
    assert inputs.offset_of(plant.point("backup_heat")) == 13  # registers 14 and 15


def test_offset_of_a_point_not_carried_is_a_key_error() -> None:
    skid = bundled("caisson_skid")
    holding = plan_reads(skid, skid.points)[0]
    with pytest.raises(KeyError):
        holding.offset_of(skid.point("inlet_temp"))


def test_only_the_given_points_are_planned() -> None:
    skid = bundled("caisson_skid")
    blocks = plan_reads(skid, [skid.point("inlet_temp"), skid.point("plc_mode")])
    assert layout(blocks) == [(IR, 0, 8)]


# ---- limits and gaps


def test_long_run_splits_at_max_registers() -> None:
    device_map = words(range(300))
    assert [b.count for b in plan_reads(device_map, device_map.points)] == [125, 125, 50]


def test_the_maps_own_request_limit_applies() -> None:
    device_map = modbus_map(*(point(a) for a in range(300)), max_registers_per_read=50)
    assert [b.count for b in plan_reads(device_map, device_map.points)] == [50] * 6


def test_multi_register_point_is_never_split() -> None:
    device_map = modbus_map(*(point(2 * n, data_type="float32") for n in range(63)))
    assert [b.count for b in plan_reads(device_map, device_map.points)] == [124, 2]


def test_bit_tables_split_at_max_bits() -> None:
    device_map = words(range(25), CO)
    blocks = plan_reads(device_map, device_map.points, max_bits=10)
    assert [b.count for b in blocks] == [10, 10, 5]


@pytest.mark.parametrize(
    ("table", "second", "blocks"),
    [(IR, 9, 1), (IR, 10, 2), (HR, 9, 1), (HR, 10, 2), (CO, 129, 1), (CO, 130, 2), (DI, 130, 2)],
)
def test_holes_up_to_max_gap_are_bridged(table: Table, second: int, blocks: int) -> None:
    """A hole of 8 registers (128 bits) is bridged with max_gap 8; one more is not."""
    device_map = words([0, second], table)
    assert len(plan_reads(device_map, device_map.points, max_gap=8)) == blocks


def test_max_gap_zero_joins_only_neighbours() -> None:
    device_map = words([0, 1, 3])
    assert layout(plan_reads(device_map, device_map.points, max_gap=0)) == [(IR, 0, 2), (IR, 3, 1)]


@pytest.mark.parametrize(
    ("max_registers", "max_bits", "max_gap"), [(0, 10, 1), (10, 0, 1), (10, 10, -1)]
)
def test_bad_limits_are_refused(max_registers: int, max_bits: int, max_gap: int) -> None:
    device_map = words(range(3))
    with pytest.raises(ValueError, match="limits"):
        plan_reads(
            device_map,
            device_map.points,
            max_registers=max_registers,
            max_bits=max_bits,
            max_gap=max_gap,
        )
    with pytest.raises(ValueError, match="limits"):
        ReadPlan(
            device_map,
            device_map.points,
            max_registers=max_registers,
            max_bits=max_bits,
            max_gap=max_gap,
        )


def test_a_point_wider_than_a_request_is_refused() -> None:
    device_map = modbus_map(point(0, data_type="float64"))
    with pytest.raises(ValueError, match="'input_0' takes 4 registers"):
        plan_reads(device_map, device_map.points, max_registers=3)


def test_order_is_by_table_then_address_whatever_the_input_order() -> None:
    skid = bundled("caisson_skid")
    shuffled = list(skid.points)
    random.Random(7).shuffle(shuffled)
    assert plan_reads(skid, shuffled) == plan_reads(skid, skid.points)


def test_repeated_points_are_read_once_and_iterators_are_accepted() -> None:
    device_map = words(range(3))
    blocks = plan_reads(device_map, iter([*device_map.points, *device_map.points]))
    assert [p.id for p in blocks[0].points] == ["input_0", "input_1", "input_2"]


# ---- cuts and illegal addresses


def test_a_cut_splits_the_block_in_its_own_table_only() -> None:
    device_map = modbus_map(*(point(a) for a in range(10)), *(point(a, HR) for a in range(10)))
    blocks = plan_reads(device_map, device_map.points, cuts=frozenset({(IR, 5)}))
    assert layout(blocks) == [(HR, 0, 10), (IR, 0, 5), (IR, 5, 5)]


def test_a_cut_inside_a_point_leaves_it_read_alone() -> None:
    device_map = modbus_map(point(0, data_type="float32"), point(2, data_type="float32"))
    blocks = plan_reads(device_map, device_map.points, cuts=frozenset({(IR, 1)}))
    assert layout(blocks) == [(IR, 0, 2), (IR, 2, 2)]


def test_points_at_illegal_addresses_are_left_out() -> None:
    device_map = modbus_map(*(point(a) for a in range(4)), point(4, data_type="float32"))
    illegal = frozenset({(IR, 2), (IR, 5)})
    blocks = plan_reads(device_map, device_map.points, illegal=illegal)
    assert layout(blocks) == [(IR, 0, 2), (IR, 3, 1)]
    left_out = unreadable_points(device_map, device_map.points, illegal)
    assert [p.id for p in left_out] == ["input_2", "input_4"]


def test_no_block_covers_an_illegal_address_in_a_hole() -> None:
    device_map = words([0, 4])
    blocks = plan_reads(device_map, device_map.points, illegal=frozenset({(IR, 2)}))
    assert layout(blocks) == [(IR, 0, 1), (IR, 4, 1)]


def test_a_word_and_its_bits_are_left_out_together() -> None:
    device_map = modbus_map(point(0), point(1), bit(1, 0), bit(1, 5))
    illegal = frozenset({(IR, 1)})
    assert layout(plan_reads(device_map, device_map.points, illegal=illegal)) == [(IR, 0, 1)]
    left_out = unreadable_points(device_map, device_map.points, illegal)
    assert [p.id for p in left_out] == ["input_1", "input_1_bit0", "input_1_bit5"]


# ---- properties against an exhaustive optimum

SIZES = {"bool": 1, "uint16": 1, "float32": 2, "float64": 4, "word_and_bits": 1}


@st.composite
def synthetic_maps(draw: st.DrawFn, max_spans: int = 8) -> ModbusMap:
    """Up to max_spans spans per drawn table, holes mostly small, some beyond any max_gap."""
    points: list[dict[str, Any]] = []
    for table in draw(st.lists(st.sampled_from(TABLE_ORDER), min_size=1, max_size=2, unique=True)):
        address = draw(st.integers(1, 3))
        widest_hole = 40 if table.is_bit_table else 10
        for _ in range(draw(st.integers(1, max_spans))):
            kind = "bool" if table.is_bit_table else draw(st.sampled_from(list(SIZES)[1:]))
            if kind == "word_and_bits":
                points += [point(address, table), bit(address, 0, table), bit(address, 9, table)]
            else:
                points.append(point(address, table, kind))
            address += SIZES[kind] + draw(st.one_of(st.just(0), st.integers(0, widest_hole)))
    return modbus_map(*points, addressing=draw(st.sampled_from(["zero-based", "one-based"])))


def spans(
    device_map: ModbusMap, table: Table, illegal: frozenset[Address]
) -> list[tuple[int, int]]:
    """The (start, end) of the readable spans of `table`, in address order."""
    ranges = {registers(device_map, p) for p in device_map.points if p.table is table}
    readable = [r for r in ranges if not any((table, a) in illegal for a in r)]
    return sorted((r.start, r.stop) for r in readable)


def feasible(
    run: list[tuple[int, int]],
    table: Table,
    limits: tuple[int, int, int],
    cuts: frozenset[Address],
    illegal: frozenset[Address],
) -> bool:
    max_registers, max_bits, max_gap = limits
    start, end = run[0][0], run[-1][1]
    longest, gap = (max_bits, 16 * max_gap) if table.is_bit_table else (max_registers, max_gap)
    holes = [b[0] - a[1] for a, b in pairwise(run)]
    return (
        end - start <= longest
        and all(hole <= gap for hole in holes)
        and (len(run) == 1 or not any(t is table and start < c < end for t, c in cuts))
        and not any(t is table and start <= a < end for t, a in illegal)
    )


def optimum(
    device_map: ModbusMap,
    limits: tuple[int, int, int],
    cuts: frozenset[Address],
    illegal: frozenset[Address],
) -> int:
    """The fewest blocks, over every partition of each table's spans into consecutive runs."""
    total = 0
    for table in Table:
        readable = spans(device_map, table, illegal)
        if not readable:
            continue
        best = len(readable)
        for breaks in product([False, True], repeat=len(readable) - 1):
            runs, run = [], [readable[0]]
            for span, new_run in zip(readable[1:], breaks, strict=True):
                if new_run:
                    runs.append(run)
                    run = []
                run.append(span)
            runs.append(run)
            if all(feasible(r, table, limits, cuts, illegal) for r in runs):
                best = min(best, len(runs))
        total += best
    return total


def addresses(data: st.DataObject) -> frozenset[Address]:
    return data.draw(
        st.frozensets(st.tuples(st.sampled_from(TABLE_ORDER), st.integers(0, 120)), max_size=5)
    )


@settings(max_examples=300, deadline=None)
@given(
    device_map=synthetic_maps(),
    limits=st.tuples(st.integers(4, 20), st.integers(1, 60), st.integers(0, 3)),
    data=st.data(),
)
def test_plan_is_sound_and_minimal(
    device_map: ModbusMap, limits: tuple[int, int, int], data: st.DataObject
) -> None:
    cuts, illegal = addresses(data), addresses(data)
    max_registers, max_bits, max_gap = limits
    blocks = plan_reads(
        device_map,
        device_map.points,
        max_registers=max_registers,
        max_bits=max_bits,
        max_gap=max_gap,
        cuts=cuts,
        illegal=illegal,
    )
    left_out = unreadable_points(device_map, device_map.points, illegal)
    carried = [p.id for b in blocks for p in b.points]
    assert sorted(carried + [p.id for p in left_out]) == sorted(p.id for p in device_map.points)
    for block in blocks:
        for p in block.points:
            assert block.offset_of(p) == registers(device_map, p).start - block.start
        run = sorted({(r.start, r.stop) for r in (registers(device_map, p) for p in block.points)})
        assert (run[0][0], run[-1][1]) == (block.start, block.end)
        assert feasible(run, block.table, limits, cuts, illegal)
    assert blocks == sorted(blocks, key=lambda b: (TABLE_ORDER.index(b.table), b.start))
    assert len(blocks) == optimum(device_map, limits, cuts, illegal)


# ---- learning from a device that refuses reads


def answers(block: ReadBlock, missing: frozenset[Address]) -> bool:
    """A fake device: refuses (exception 2) any read that covers an address it does not have."""
    return not any((block.table, a) in missing for a in range(block.start, block.end))


def learn(plan: ReadPlan, missing: frozenset[Address], polls: int = 200) -> int:
    """Polls as a driver does until a poll reads every block and leaves the plan as it was;
    returns the number of refused requests."""
    refused = 0
    for _ in range(polls):
        before = plan.blocks
        failed = 0
        for block in list(plan.blocks):
            if answers(block, missing):
                plan.succeeded(block)
            else:
                failed += 1
                plan.illegal_address(block)
        refused += failed
        if not failed and plan.blocks == before:
            return refused
    raise AssertionError(f"no stable plan after {polls} polls")


def learned_bound(spans: int) -> float:
    return 2 * math.log2(max(spans, 2)) + 2


def test_a_bad_point_is_isolated_and_the_search_cuts_go() -> None:
    device_map = words(range(10))
    plan = ReadPlan(device_map, device_map.points)
    assert layout(plan.blocks) == [(IR, 0, 10)]
    learn(plan, frozenset({(IR, 7)}))
    assert [p.id for p in plan.unreadable] == ["input_7"]
    assert plan.illegal == {(IR, 7)}
    assert plan.cuts == frozenset()
    assert layout(plan.blocks) == [(IR, 0, 7), (IR, 8, 2)]


def test_an_unmapped_hole_the_device_will_not_bridge_gets_a_cut() -> None:
    device_map = words([0, 1, 2, 3, 8, 9, 10, 11])
    plan = ReadPlan(device_map, device_map.points)
    learn(plan, frozenset((IR, a) for a in range(4, 8)))
    assert plan.cuts == {(IR, 8)}
    assert plan.unreadable == ()
    assert layout(plan.blocks) == [(IR, 0, 4), (IR, 8, 4)]


def test_a_proven_cut_drops_the_cuts_of_its_search() -> None:
    """The first split misses the hole at 2 (it is off-centre); once both sides of the cut at the
    hole have been read, that cut is proven and explains the first refusal: its cut goes."""
    device_map = words([0, 1, *range(3, 12)])
    plan = ReadPlan(device_map, device_map.points)
    plan.illegal_address(plan.blocks[0])
    assert plan.cuts == {(IR, 6)}
    learn(plan, frozenset({(IR, 2)}))
    assert plan.cuts == {(IR, 3)}
    assert layout(plan.blocks) == [(IR, 0, 2), (IR, 3, 9)]


def test_a_word_and_its_bits_become_unreadable_together() -> None:
    skid = bundled("caisson_skid")
    plan = ReadPlan(skid, skid.points)
    learn(plan, frozenset({(IR, 8)}))
    unreadable = {p.id for p in plan.unreadable}
    assert unreadable == {"pump_status", "pump_running", "pump_fault", "pump_alarm"}
    assert layout(plan.blocks) == [(HR, 0, 5), (IR, 0, 8), (IR, 9, 3), (CO, 0, 3), (DI, 0, 1)]


def test_reports_about_replaced_blocks_are_ignored() -> None:
    device_map = words(range(10))
    plan = ReadPlan(device_map, device_map.points)
    (whole,) = plan.blocks
    plan.illegal_address(whole)
    after = (plan.blocks, plan.cuts)
    plan.illegal_address(whole)
    plan.succeeded(whole)
    assert (plan.blocks, plan.cuts) == after


@pytest.mark.parametrize("count", [16, 125, 1000])
@pytest.mark.parametrize("where", [0.0, 0.4, 1.0])
def test_isolating_a_bad_point_takes_logarithmic_failures(count: int, where: float) -> None:
    device_map = words(range(count))
    bad = round(where * (count - 1))
    plan = ReadPlan(device_map, device_map.points)
    refused = learn(plan, frozenset({(IR, bad)}))
    assert refused <= learned_bound(count)
    assert [p.address for p in plan.unreadable] == [bad]
    assert len(plan.blocks) == len(plan_reads(device_map, device_map.points, illegal=plan.illegal))


@settings(max_examples=150, deadline=None)
@given(
    device_map=synthetic_maps(max_spans=40),
    limits=st.tuples(st.integers(4, 40), st.integers(1, 100), st.integers(0, 4)),
    data=st.data(),
)
def test_learning_converges_to_the_best_plan_for_the_device(
    device_map: ModbusMap, limits: tuple[int, int, int], data: st.DataObject
) -> None:
    """The device lacks some point addresses and some hole addresses (it refuses to bridge
    those holes): every other point ends up read, exactly the lacking points unreadable, with
    a bounded number of refusals and as few blocks as knowing the device beforehand allows."""
    max_registers, max_bits, max_gap = limits
    every = frozenset((p.table, a) for p in device_map.points for a in registers(device_map, p))
    lacking = data.draw(st.frozensets(st.sampled_from(sorted(every)), max_size=3))
    tables = sorted({table for table, _ in every}, key=TABLE_ORDER.index)
    anywhere = st.tuples(st.sampled_from(tables), st.integers(0, max(a for _, a in every)))
    missing = lacking | (data.draw(st.frozensets(anywhere, max_size=6)) - every)
    plan = ReadPlan(
        device_map,
        device_map.points,
        max_registers=max_registers,
        max_bits=max_bits,
        max_gap=max_gap,
    )
    refused = learn(plan, missing)
    assert {p.id for p in plan.unreadable} == {
        p.id for p in unreadable_points(device_map, device_map.points, missing)
    }
    assert all(answers(block, missing) for block in plan.blocks)
    carried = sorted(p.id for b in plan.blocks for p in b.points)
    assert carried == sorted(p.id for p in device_map.points if p not in plan.unreadable)
    best = plan_reads(
        device_map,
        device_map.points,
        max_registers=max_registers,
        max_bits=max_bits,
        max_gap=max_gap,
        illegal=missing,
    )
    assert len(plan.blocks) == len(best)
    facts, count = 0, 0
    for table in tables:
        table_spans = spans(device_map, table, frozenset())
        count += len(table_spans)
        facts += sum(any((table, a) in missing for a in range(*span)) for span in table_spans)
        holes = pairwise(table_spans)
        facts += sum(any((table, a) in missing for a in range(x[1], y[0])) for x, y in holes)
    assert refused <= facts * learned_bound(count)

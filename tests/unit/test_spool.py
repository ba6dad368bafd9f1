"""The durable spool on a real SQLite file: order, batching, restarts, eviction, rejected data.

Lines are random hex, so that compression cannot make the size limits trivial.
"""

from __future__ import annotations

import gzip
import os
import random
import zlib
from collections import deque
from pathlib import Path

import pytest

from controller.historian.spool import Spool, SpoolBusyError, SpoolDepth, SpoolReader, compress

LIMIT = 1e9  # no eviction unless a test says so


def random_lines(count: int, tag: str = "m") -> list[str]:
    return [f"{tag},k={os.urandom(4).hex()} v={os.urandom(24).hex()}i 1" for _ in range(count)]


def body_lines(body: bytes) -> list[str]:
    return gzip.decompress(body).decode().splitlines()


def chunk_size(lines: list[str]) -> int:
    """The compressed size the spool stores for one chunk of `lines`."""
    return len(compress(("\n".join(lines) + "\n").encode()))


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def waiting(path: Path, *, rejected: bool = False) -> list[str]:
    reader = SpoolReader(path)
    try:
        return list(reader.lines(rejected=rejected))
    finally:
        reader.close()


# ------------------------------------------------------------------ append, take, remove


def test_append_take_remove_round_trip(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.spool", LIMIT)
    first, second = random_lines(3), random_lines(4)
    assert spool.append(first) == 0
    assert spool.append(second) == 0
    assert spool.append([]) == 0  # nothing to store: no empty chunk

    batch = spool.take(100)
    assert batch is not None
    assert batch.points == 7
    assert len(batch.ids) == 2
    assert gzip.decompress(batch.body).decode() == "\n".join(first + second) + "\n"
    # one gzip member, not several concatenated (some servers read only the first)
    member = zlib.decompressobj(wbits=31)
    member.decompress(batch.body)
    assert member.eof
    assert member.unused_data == b""

    # taken is not gone: it stays until the database has acknowledged it
    again = spool.take(100)
    assert again is not None
    assert again.ids == batch.ids
    assert spool.depth().points == 7

    spool.remove(batch.ids)
    assert spool.take(100) is None
    depth = spool.depth()
    assert (depth.points, depth.chunks, depth.bytes, depth.oldest) == (0, 0, 0, None)
    spool.close()


def test_take_respects_max_points_and_returns_at_least_one_chunk(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.spool", LIMIT)
    chunks = [random_lines(3, tag=f"c{i}") for i in range(4)]
    for chunk in chunks:
        spool.append(chunk)

    batch = spool.take(7)  # 3 + 3; the third chunk would pass 7 and is never split
    assert batch is not None
    assert batch.points == 6
    assert body_lines(batch.body) == chunks[0] + chunks[1]

    batch = spool.take(6)
    assert batch is not None
    assert body_lines(batch.body) == chunks[0] + chunks[1]

    batch = spool.take(2)  # smaller than a chunk: still the oldest chunk, whole
    assert batch is not None
    assert batch.points == 3
    assert body_lines(batch.body) == chunks[0]

    spool.remove(batch.ids)
    batch = spool.take(100)
    assert batch is not None
    assert body_lines(batch.body) == chunks[1] + chunks[2] + chunks[3]
    spool.close()


def test_oldest_is_the_oldest_waiting_chunk(tmp_path: Path) -> None:
    clock = Clock(100.0)
    spool = Spool(tmp_path / "s.spool", LIMIT, clock=clock)
    spool.append(random_lines(2))
    clock.now = 150.0
    spool.append(random_lines(2))
    assert spool.depth().oldest == 100.0
    batch = spool.take(2)
    assert batch is not None
    assert batch.oldest == 100.0
    spool.remove(batch.ids)
    assert spool.depth().oldest == 150.0
    spool.close()


# ------------------------------------------------------------------ durability


def test_data_survives_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "state" / "site.spool"  # the folder is created
    lines = random_lines(50)
    spool = Spool(path, LIMIT)
    for start in range(0, 50, 10):
        spool.append(lines[start : start + 10])
    batch = spool.take(10)
    assert batch is not None
    spool.remove(batch.ids)  # acknowledged before the restart: gone for good
    before = spool.depth()
    spool.close()

    reopened = Spool(path, LIMIT)
    assert reopened.depth() == before
    batch = reopened.take(1000)
    assert batch is not None
    assert body_lines(batch.body) == lines[10:]
    reopened.close()


def test_a_reader_sees_waiting_lines_while_the_spool_is_open(tmp_path: Path) -> None:
    path = tmp_path / "s.spool"
    spool = Spool(path, LIMIT)
    lines = random_lines(5)
    spool.append(lines[:2])
    spool.append(lines[2:])
    reader = SpoolReader(path)
    try:
        assert list(reader.lines()) == lines
        assert reader.depth() == (5, 0, spool.depth().bytes)
        spool.append(more := random_lines(1))
        assert list(reader.lines()) == lines + more
    finally:
        reader.close()
        spool.close()


def test_a_reader_needs_a_spool_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no spool file"):
        SpoolReader(tmp_path / "missing.spool")


def test_saved_state_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "s.spool"
    spool = Spool(path, LIMIT)
    assert spool.saved_state() == {}
    spool.save_state("kpi", '{"hour": 1}')
    spool.save_state("other", "x")
    spool.save_state("kpi", '{"hour": 2}')  # replaced, not added
    spool.close()
    reopened = Spool(path, LIMIT)
    assert reopened.saved_state() == {"kpi": '{"hour": 2}', "other": "x"}
    reopened.close()


# ------------------------------------------------------------------ eviction


def test_eviction_removes_the_oldest_chunks_first_and_counts_their_points(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.spool"
    chunks = [random_lines(1 + i % 4, tag=f"c{i}") for i in range(30)]
    sizes = [chunk_size(chunk) for chunk in chunks]
    limit = 5 * max(sizes)
    spool = Spool(path, limit)

    kept: deque[int] = deque()
    total_evicted = 0
    for i, chunk in enumerate(chunks):
        kept.append(i)
        expected = 0
        while sum(sizes[j] for j in kept) > limit and len(kept) > 1:
            expected += len(chunks[kept.popleft()])
        assert spool.append(chunk) == expected, f"append {i}"
        total_evicted += expected
        depth = spool.depth()
        assert depth.bytes <= limit
        assert depth.bytes == sum(sizes[j] for j in kept)
        assert depth.points == sum(len(chunks[j]) for j in kept)
        assert depth.chunks == len(kept)

    assert total_evicted > 0  # the test did evict
    assert spool.evicted_points == total_evicted
    assert spool.depth().evicted_points == total_evicted
    assert waiting(path) == [line for j in kept for line in chunks[j]]
    assert kept[-1] == len(chunks) - 1
    spool.close()


def test_the_newest_chunk_is_kept_whatever_its_size(tmp_path: Path) -> None:
    path = tmp_path / "s.spool"
    first, second = random_lines(20), random_lines(20)
    limit = chunk_size(second) // 2
    spool = Spool(path, limit)
    assert spool.append(first) == 0  # alone: kept although larger than the limit
    assert spool.depth().bytes > limit
    assert spool.append(second) == 20  # the older one goes, the newest stays
    assert waiting(path) == second
    assert spool.depth().chunks == 1
    spool.close()


# ------------------------------------------------------------------ rejected chunks


def test_rejected_chunks_are_set_aside_and_never_taken_again(tmp_path: Path) -> None:
    path = tmp_path / "s.spool"
    spool = Spool(path, LIMIT)
    bad, good, later = random_lines(3), random_lines(4), random_lines(2)
    spool.append(bad)
    spool.append(good)
    batch = spool.take(3)
    assert batch is not None
    assert body_lines(batch.body) == bad

    spool.reject(batch.ids, "HTTP 400: unable to parse")
    spool.append(later)
    depth = spool.depth()
    assert (depth.points, depth.chunks, depth.rejected_points) == (6, 2, 3)

    taken = spool.take(100)
    assert taken is not None
    assert body_lines(taken.body) == good + later
    assert waiting(path, rejected=True) == bad
    assert waiting(path) == good + later
    spool.remove(taken.ids)
    assert spool.take(100) is None
    assert waiting(path, rejected=True) == bad  # kept for export
    reader = SpoolReader(path)
    assert reader.depth()[:2] == (0, 3)
    reader.close()
    spool.close()


def test_eviction_removes_rejected_chunks_before_waiting_ones(tmp_path: Path) -> None:
    path = tmp_path / "s.spool"
    chunks = [random_lines(5, tag=f"c{i}") for i in range(4)]
    sizes = [chunk_size(chunk) for chunk in chunks]
    limit = sum(sizes) - 1  # the fourth append must evict exactly one chunk
    spool = Spool(path, limit)
    spool.append(chunks[0])
    spool.append(chunks[1])
    spool.append(chunks[2])
    # the middle chunk is refused: not the oldest, yet it goes first
    batch = spool.take(10)
    assert batch is not None
    assert len(batch.ids) == 2
    spool.reject(batch.ids[1:], "HTTP 400")
    assert spool.append(chunks[3]) == 0  # no waiting point evicted
    assert waiting(path) == chunks[0] + chunks[2] + chunks[3]
    assert waiting(path, rejected=True) == []
    depth = spool.depth()
    assert depth.rejected_points == 0
    assert depth.bytes == sizes[0] + sizes[2] + sizes[3]
    spool.close()


def test_rejected_chunks_are_evicted_while_one_chunk_waits(tmp_path: Path) -> None:
    """A target that refuses every batch leaves one waiting chunk at a time: the rejected ones
    must still be bounded by the limit."""
    path = tmp_path / "s.spool"
    chunks = [random_lines(5, tag=f"c{i}") for i in range(6)]
    limit = 3 * max(chunk_size(chunk) for chunk in chunks)
    spool = Spool(path, limit)
    for chunk in chunks:
        spool.append(chunk)
        batch = spool.take(100)
        assert batch is not None
        spool.reject(batch.ids, "HTTP 400")
        assert spool.depth().bytes <= limit
    # the newest rejected chunks are kept, oldest gone first
    kept = waiting(path, rejected=True)
    assert 5 <= len(kept) < 30
    assert kept == [line for chunk in chunks for line in chunk][-len(kept) :]
    spool.close()


# ------------------------------------------------------------------ counters


def _counters(depth: SpoolDepth) -> tuple[int, int, int, float | None, int]:
    return depth.points, depth.chunks, depth.bytes, depth.oldest, depth.rejected_points


def test_counters_in_memory_match_the_file(tmp_path: Path) -> None:
    """The totals kept in memory through every operation are what a fresh open counts."""
    path = tmp_path / "s.spool"
    rng = random.Random(6)
    clock = Clock()
    limit = 12 * chunk_size(random_lines(4))
    spool = Spool(path, limit, clock=clock)
    for step in range(150):
        clock.now += 1.0
        action = rng.random()
        if action < 0.7:
            spool.append(random_lines(rng.randint(1, 8), tag=f"s{step}"))
        else:
            batch = spool.take(rng.randint(1, 20))
            if batch is not None:
                if action < 0.9:
                    spool.remove(batch.ids)
                else:
                    spool.reject(batch.ids, "HTTP 400")
        reader = SpoolReader(path)
        depth = spool.depth()
        assert reader.depth() == (depth.points, depth.rejected_points, depth.bytes), step
        reader.close()
    assert spool.evicted_points > 0  # eviction was part of the mix
    before = spool.depth()
    spool.close()

    reopened = Spool(path, limit, clock=clock)
    assert _counters(reopened.depth()) == _counters(before)
    assert reopened.depth().evicted_points == 0  # counted per open Spool
    reopened.close()


def test_a_second_spool_on_the_same_file_is_refused_until_the_first_closes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "site.spool"
    first = Spool(path, 1e6)
    with pytest.raises(SpoolBusyError, match=r"site\.spool: in use by another process"):
        Spool(path, 1e6)
    first.close()
    Spool(path, 1e6).close()


def test_a_large_append_is_stored_as_chunks_no_larger_than_a_batch(tmp_path: Path) -> None:
    """A burst (e.g. after the spool's disk stalled) must not become one chunk larger than any
    batch: a chunk is never split when sent, and a server refuses bodies past its limit."""
    spool = Spool(tmp_path / "s.spool", 1e9)
    lines = [f"m v={i}.0 {i}" for i in range(25)]
    spool.append(lines, chunk_points=10)
    assert spool.depth().chunks == 3
    sent = []
    while (batch := spool.take(10)) is not None:
        assert batch.points <= 10
        sent += gzip.decompress(batch.body).decode().splitlines()
        spool.remove(batch.ids)
    assert sent == lines
    spool.close()

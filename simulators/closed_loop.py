"""Fast in-process closed loop: a controller coupled to the plant model, no sockets.

The controller sees the plant through the same device bindings the simulated PLCs serve (so the
same points, in the same map units, with sensor faults as BAD samples) and its writes go to the
same bindings; only the sockets and the register codec are left out. One cycle per plant step, in
the order the real-socket lockstep run uses: the plant steps, the controller scans the new values,
its writes land before the next step.

Speed: a snapshot reads about 30 points per caisson every step, so the per-point work of
`DeviceBinding.read` (finding the point in its map, its unit factor, the bits of a status word)
is done once, when the field is built: each point gets its reader, its unit divisor and, for a
status word, its bit readers. The values are the same as `DeviceBinding.read` gives (a unit test
compares every point).

Communication loss cannot happen in-process (there is no socket to lose), so it is emulated:
`Outage(device, start, end)` makes every point of `device` BAD (COMM_LOST) from `start` to `end`
(plant seconds) and drops the writes sent to it (the controller is not told they landed; the
device's leases then lapse as they would on a real site).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple, Protocol

from controller.config.loader import LoadedSite
from controller.config.units import point_unit_factor
from controller.control.arbiter import Write
from controller.fieldbus.image import PointRef, Quality, Reason, Sample, Value
from simulators.devices.bindings import DeviceBinding, Reader, site_bindings
from simulators.plant.kpis import PlantKpis
from simulators.run import ScenarioRun


class ScanOutcome(Protocol):
    @property
    def writes(self) -> Sequence[Write]: ...


class Controller(Protocol):
    def scan(self, snapshot: Mapping[PointRef, Sample], now: float) -> ScanOutcome: ...

    def confirm(self, write: Write, now: float) -> None: ...


class Outage(NamedTuple):
    """Communication with `device` lost from `start` to `end` (s from the start of the run)."""

    device: str
    start: float
    end: float

    def active(self, now: float) -> bool:
        return self.start <= now < self.end


# ---------------------------------------------------------------- fast samples

_SLOTS = ("value", "quality", "timestamp", "reason")
_new = object.__new__


def _sample_factory() -> tuple[Callable[[Value, datetime], Sample], bool]:
    """A GOOD-sample constructor without the dataclass' checks (the caller has made them: a value,
    never None nor NaN): 4× cheaper, and a snapshot makes ~120 samples a step. Falls back to
    `Sample.good` if Sample's layout is not the one this relies on."""
    if getattr(Sample, "__slots__", None) != _SLOTS:
        return Sample.good, False
    slots = vars(Sample)  # the slot descriptors: setting through them skips __setattr__
    set_value, set_quality = slots["value"].__set__, slots["quality"].__set__
    set_time, set_reason = slots["timestamp"].__set__, slots["reason"].__set__
    good = Quality.GOOD

    def make(value: Value, at: datetime) -> Sample:
        sample: Sample = _new(Sample)
        set_value(sample, value)
        set_quality(sample, good)
        set_time(sample, at)
        set_reason(sample, None)
        return sample

    return make, True


_good_sample, FAST_SAMPLES = _sample_factory()


def _word_reader(bits: list[tuple[Reader, int]]) -> Reader:
    """A status word composed from its bit points, as `DeviceBinding` composes it."""

    def read() -> int:
        value = 0
        for reader, mask in bits:
            if reader():
                value |= mask
        return value

    return read


def _zero() -> int:
    return 0


class _PointReader(NamedTuple):
    ref: PointRef
    read: Reader
    divisor: float  # map unit factor: float values are divided by it (as DeviceBinding.read)


def compile_reader(binding: DeviceBinding, point_id: str) -> tuple[Reader, float]:
    """The point's reader and unit divisor: `DeviceBinding.read` with its lookups done once."""
    point = binding._point(point_id)
    reader = binding.readers.get(point_id)
    if reader is not None:
        return reader, point_unit_factor(point.unit)
    if binding._is_word(point):
        bits = [
            (bit_reader, 1 << (bit.bit or 0))
            for bit in binding._bits_of(point)  # type: ignore[arg-type]
            if (bit_reader := binding.readers.get(bit.id)) is not None
        ]
        return _word_reader(bits), 1.0
    return _zero, 1.0


class _PointWriter(NamedTuple):
    write: Callable[[Value], None]
    factor: float


class InProcessField:
    """Snapshots of the points a controller reads, and its writes, straight on the bindings."""

    def __init__(
        self,
        run: ScenarioRun,
        site: LoadedSite,
        refs: Iterable[PointRef],
        outages: Sequence[Outage] = (),
    ) -> None:
        self.run = run
        self.bindings: dict[str, DeviceBinding] = site_bindings(run.model, site)
        self._refs = sorted(r for r in refs if r.device in self.bindings)
        self._start = run.scenario.start.astimezone(UTC)
        self.outages = list(outages)
        unknown = {o.device for o in self.outages} - set(self.bindings)
        if unknown:
            raise ValueError(f"outage of unknown device(s): {', '.join(sorted(unknown))}")
        # Points grouped by device (an outage drops a whole device).
        self._devices: dict[str, list[_PointReader]] = {}
        for ref in self._refs:
            read, divisor = compile_reader(self.bindings[ref.device], ref.point)
            self._devices.setdefault(ref.device, []).append(_PointReader(ref, read, divisor))
        self._writers: dict[PointRef, _PointWriter] = {}
        self.dropped_writes = 0  # writes lost to an outage

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self.run.model.time)

    def lost(self, now: float) -> set[str]:
        """Devices out of reach at plant time `now`."""
        return {o.device for o in self.outages if o.active(now)} if self.outages else set()

    def snapshot(self) -> dict[PointRef, Sample]:
        at = self.now()
        lost = self.lost(self.run.model.time)
        good, isfinite = _good_sample, math.isfinite
        samples: dict[PointRef, Sample] = {}
        for device, points in self._devices.items():
            if device in lost:
                comm_lost = Sample.bad(Reason.COMM_LOST, at)
                for point in points:
                    samples[point.ref] = comm_lost
                continue
            for ref, read, divisor in points:
                value = read()
                if isinstance(value, float):
                    value = value / divisor
                    if not isfinite(value):
                        samples[ref] = Sample.bad(Reason.SENSOR_FAULT, at)
                        continue
                elif value is None:
                    samples[ref] = Sample.bad(Reason.SENSOR_FAULT, at)
                    continue
                samples[ref] = good(value, at)
        return samples

    def write(self, write: Write) -> bool:
        """Apply a write as the device would; False if the device is out of reach (dropped)."""
        ref = write.ref
        if self.outages and ref.device in self.lost(self.run.model.time):
            self.dropped_writes += 1
            return False
        writer = self._writers.get(ref)
        if writer is None:
            binding = self.bindings[ref.device]
            point = binding._point(ref.point)
            if ref.point not in binding.writers:
                binding.write(ref.point, write.value)  # raises UnknownPointError
            writer = _PointWriter(binding.writers[ref.point], point_unit_factor(point.unit))
            self._writers[ref] = writer
        value = write.value
        if isinstance(value, float | int) and not isinstance(value, bool):
            value = float(value) * writer.factor
        writer.write(value)
        return True


@dataclass(frozen=True)
class ClosedLoopResult:
    kpis: PlantKpis
    steps: int
    controller_seconds: float  # CPU time spent in the controller's scans (process time)
    wall_seconds: float = 0.0  # the whole run: plant, field and controller (wall clock)
    dropped_writes: int = 0  # writes lost to communication outages

    @property
    def controller_time_ratio(self) -> float:
        """Computation per step over the step (BOPTEST's time ratio)."""
        step = self.kpis.duration_h * 3600 / self.steps if self.steps else 1.0
        return self.controller_seconds / self.steps / step if self.steps else 0.0


def run_closed_loop(
    run: ScenarioRun,
    site: LoadedSite,
    controller: Controller | None,
    refs: Iterable[PointRef],
    progress: Callable[[int], None] | None = None,
    every: int = 3600,
    outages: Sequence[Outage] = (),
) -> ClosedLoopResult:
    """Run the scenario to its end with `controller` in the loop (None: the PLCs alone).

    `outages`: devices the controller loses contact with for a while (emulated COMM_LOST)."""
    started_run = time.perf_counter()
    field = InProcessField(run, site, refs, outages)
    model, steps = run.model, run.scenario.steps
    spent = 0.0
    clock = time.process_time  # CPU time: other load on a shared machine does not count
    while model.step_index < steps:
        run.step()
        if controller is not None:
            snapshot = field.snapshot()
            now = model.time
            started = clock()
            outcome = controller.scan(snapshot, now)
            spent += clock() - started
            for write in outcome.writes:
                if field.write(write):
                    controller.confirm(write, now)
        if progress is not None and model.step_index % every == 0:
            progress(model.step_index)
    wall = time.perf_counter() - started_run
    return ClosedLoopResult(model.kpis(), model.step_index, spent, wall, field.dropped_writes)

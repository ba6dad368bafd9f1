"""Run a scenario in-process: build the exogenous inputs, schedule the events, step the plant."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from controller.config.site import SiteConfig
from simulators.plant.kpis import PlantKpis
from simulators.plant.loads import Calendar, exogenous_loads
from simulators.plant.model import Drivers, PlantModel
from simulators.plant.sensors import FaultKind
from simulators.plant.weather import csv_temperature, profile_temperature
from simulators.scenario import (
    ColdSnap,
    ConstantWeather,
    CsvWeather,
    DemandStep,
    DrainAndRefill,
    Leak,
    PumpTrip,
    Scenario,
    SensorDrift,
    SensorFault,
    SensorStuck,
    TripReset,
    WarmSpell,
    resolve,
)

Action = Callable[[PlantModel], None]
FloatArray = NDArray[np.float64]


def local_calendar(scenario: Scenario, timezone: str, times: FloatArray) -> Calendar:
    """Local hour and weekday at `times` (s from the start; hourly UTC offsets follow DST)."""
    first_hour = int(times[0] // 3600)
    hours = np.arange(first_hour, int(times[-1] // 3600) + 1)
    zone = ZoneInfo(timezone)
    local_starts = [
        (scenario.start + timedelta(hours=int(h))).astimezone(zone).replace(tzinfo=None)
        for h in hours
    ]
    hour_index = (times // 3600).astype(np.int64) - first_hour
    start_hour = np.array([t.hour + t.minute / 60 for t in local_starts])
    weekday = np.array([t.weekday() for t in local_starts], dtype=np.int64)
    return Calendar(
        hour=start_hour[hour_index] + (times % 3600) / 3600, weekday=weekday[hour_index]
    )


def build_drivers(
    scenario: Scenario,
    site: SiteConfig,
    base_dir: Path,
    first_step: int = 0,
    steps: int | None = None,
) -> Drivers:
    """The exogenous inputs of steps first_step .. first_step + steps (default: the whole run)."""
    dt = scenario.step
    steps = scenario.steps - first_step if steps is None else steps
    times = (first_step + np.arange(steps, dtype=np.float64)) * dt
    weather = scenario.weather
    if isinstance(weather, ConstantWeather):
        outdoor = np.full(steps, weather.temperature)
    elif isinstance(weather, CsvWeather):
        outdoor = csv_temperature(resolve(base_dir, weather.file), scenario.start, times)
    else:
        outdoor = profile_temperature(site.climate, scenario.start, times, weather.seed)
    demand = np.full((steps, len(site.caissons)), scenario.compute_demand.level)
    caisson_index = {c.id: i for i, c in enumerate(site.caissons)}
    for event in scenario.events:  # rows of this window; slices clip what falls outside it
        first = max(_step_of(event.at, dt) - first_step, 0)
        if isinstance(event, WarmSpell | ColdSnap):
            end = None if event.duration is None else _step_of(event.at + event.duration, dt)
            last = steps if end is None else max(end - first_step, 0)
            offset = event.offset if isinstance(event, WarmSpell) else -event.drop
            outdoor[first:last] += offset
        elif isinstance(event, DemandStep) and first < steps:
            columns = slice(None) if event.caisson is None else caisson_index[event.caisson]
            demand[first:, columns] = event.level
    calendar = local_calendar(scenario, site.site.timezone, times)
    pool = site.loads.pool
    pool_open = None
    if pool is not None:
        pool_open = (calendar.hour >= pool.open_hours[0]) & (calendar.hour < pool.open_hours[1])
    loads = exogenous_loads(site.loads, outdoor, calendar, pool.supply if pool else None)
    return Drivers(outdoor, demand, loads, pool_open, first_step)


def schedule_events(scenario: Scenario, site: SiteConfig) -> dict[int, list[Action]]:
    """Plant events by the step they happen at (the weather and demand ones are in the drivers)."""
    index = {c.id: i for i, c in enumerate(site.caissons)}
    schedule: dict[int, list[Action]] = {}

    def add(at: float, action: Action) -> None:
        schedule.setdefault(_step_of(at, scenario.step), []).append(action)

    for event in scenario.events:
        match event:
            case PumpTrip(caisson=name):
                start, end = _switch(PlantModel.trip_pump, index[name])
            case Leak(caisson=name):
                start, end = _switch(PlantModel.set_leak, index[name])
            case SensorStuck() | SensorFault() | SensorDrift():
                start, end = _sensor_actions(event, index[event.caisson])
            case DrainAndRefill():
                add(event.at, lambda m: m.drain_and_refill_pool())
                continue
            case TripReset(caisson=name):
                add(event.at, _trip_reset(index[name]))
                continue
            case _:
                continue
        add(event.at, start)
        if event.duration is not None and event.at + event.duration < scenario.duration:
            add(event.at + event.duration, end)
    return schedule


def _trip_reset(caisson: int) -> Action:
    """The engineer's trip reset: the coil raised, taken by the PLC's next scan."""

    def reset(model: PlantModel) -> None:
        model.commands.trip_reset[caisson] = True

    return reset


def _switch(method: Callable[[PlantModel, int, bool], None], caisson: int) -> tuple[Action, Action]:
    """Actions that turn a caisson's fault on, and off again."""

    def start(model: PlantModel) -> None:
        method(model, caisson, True)

    def end(model: PlantModel) -> None:
        method(model, caisson, False)

    return start, end


def _sensor_actions(
    event: SensorStuck | SensorFault | SensorDrift, caisson: int
) -> tuple[Action, Action]:
    kind, rate = FaultKind.STUCK, 0.0
    if isinstance(event, SensorFault):
        kind = FaultKind.SENTINEL
    elif isinstance(event, SensorDrift):
        kind, rate = FaultKind.DRIFT, event.rate_per_hour / 3600.0
    sensor = event.sensor

    def start(model: PlantModel) -> None:
        model.fault_sensor(sensor, caisson, kind, rate)

    def end(model: PlantModel) -> None:
        model.fault_sensor(sensor, caisson, FaultKind.NONE)

    return start, end


def _step_of(seconds: float, dt: float) -> int:
    return round(seconds / dt)


class ScenarioRun:
    """A scenario's plant, ready to step; `run()` goes to the end and returns the KPIs."""

    def __init__(self, scenario: Scenario, site: SiteConfig, base_dir: Path) -> None:
        self.scenario = scenario
        self.model = PlantModel(site, build_drivers(scenario, site, base_dir), scenario.step)
        self.schedule = schedule_events(scenario, site)

    def step(self) -> None:
        for action in self.schedule.get(self.model.step_index, ()):
            action(self.model)
        self.model.step()

    def run(self, progress: Callable[[int], None] | None = None, every: int = 3600) -> PlantKpis:
        """Step to the end; `progress(steps_done)` is called every `every` steps."""
        model, schedule, steps = self.model, self.schedule, self.scenario.steps
        while model.step_index < steps:
            if schedule:
                self.step()
            else:
                model.step()
            if progress is not None and model.step_index % every == 0:
                progress(model.step_index)
        return model.kpis()

"""Scenario files (simulators/scenarios/*.yaml): a site, a period, weather, compute demand, events.

Times in a scenario are offsets from its start ("6 h", "2 d"); the start is an ISO 8601 instant
with its UTC offset, and loads follow the site's local time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import AwareDatetime, Field, model_validator

from controller.config.loader import LoadedSite, Report, load_document, load_site
from controller.config.maps import FieldError, StrictModel
from controller.config.units import Duration, Fraction, Temperature, TemperatureDifference
from simulators.plant.sensors import Sensor


class ProfileWeather(StrictModel):
    """The deterministic profile of the site's climate, with weather noise drawn from `seed`."""

    kind: Literal["profile"]
    seed: int = 0


class ConstantWeather(StrictModel):
    kind: Literal["constant"]
    temperature: Temperature


class CsvWeather(StrictModel):
    kind: Literal["csv"]
    file: str  # relative to the scenario file; rows "timestamp,temperature" (ISO 8601 with offset)


Weather = Annotated[ProfileWeather | ConstantWeather | CsvWeather, Field(discriminator="kind")]


class ComputeDemand(StrictModel):
    """Share of nominal IT power the queued jobs could use."""

    level: Fraction = 1.0


class _Event(StrictModel):
    at: Duration


class _TimedEvent(_Event):
    duration: Duration | None = None  # None: lasts to the end of the run


class PumpTrip(_TimedEvent):
    kind: Literal["pump_trip"]
    caisson: str


class Leak(_TimedEvent):
    kind: Literal["leak"]
    caisson: str


class SensorStuck(_TimedEvent):
    kind: Literal["sensor_stuck"]
    caisson: str
    sensor: Sensor


class SensorFault(_TimedEvent):
    """The sensor reads its fault sentinel (0x7FFF on the wire)."""

    kind: Literal["sensor_fault"]
    caisson: str
    sensor: Sensor


class SensorDrift(_TimedEvent):
    kind: Literal["sensor_drift"]
    caisson: str
    sensor: Literal[Sensor.INLET, Sensor.OUTLET]
    rate_per_hour: TemperatureDifference


class TripReset(_Event):
    """An engineer resets the caisson PLC's trips (its `trip_reset` coil), as after a repair: a
    leak or pump-fault trip stays until then (simulators/plant/plc.py)."""

    kind: Literal["trip_reset"]
    caisson: str


class DrainAndRefill(_Event):
    kind: Literal["drain_and_refill"]


class DemandStep(_Event):
    kind: Literal["demand_step"]
    level: Fraction
    caisson: str | None = None  # None: every caisson


class WarmSpell(_TimedEvent):
    kind: Literal["warm_spell"]
    offset: TemperatureDifference


class ColdSnap(_TimedEvent):
    """The outdoor temperature `drop` below the climate's profile while it lasts."""

    kind: Literal["cold_snap"]
    drop: TemperatureDifference


PlantEvent = (
    PumpTrip
    | Leak
    | SensorStuck
    | SensorFault
    | SensorDrift
    | TripReset
    | DrainAndRefill
    | DemandStep
    | WarmSpell
    | ColdSnap
)
Event = Annotated[PlantEvent, Field(discriminator="kind")]


class Scenario(StrictModel):
    name: str
    description: str = ""
    site: str  # path of the site file, relative to the scenario file
    start: AwareDatetime
    duration: Duration
    step: Duration = 1.0
    weather: Weather = ProfileWeather(kind="profile")
    compute_demand: ComputeDemand = ComputeDemand()
    events: list[Event] = Field(default_factory=list)

    @model_validator(mode="after")
    def _events_within_run(self) -> Self:
        if self.step <= 0:
            raise FieldError("must be positive", ("step",))
        if self.duration < self.step:
            raise FieldError("must be at least one step long", ("duration",))
        for index, event in enumerate(self.events):
            if not 0 <= event.at < self.duration:
                raise FieldError(
                    f"{event.at:g} s is outside the run (0 to {self.duration:g} s)",
                    ("events", index, "at"),
                )
        return self

    @property
    def steps(self) -> int:
        return round(self.duration / self.step)


def check_event(event: Event, site: LoadedSite, report: Report, loc: tuple[str | int, ...]) -> None:
    """What a plant event names must exist on the site (its caisson; a pool to drain)."""
    caissons = [c.id for c in site.config.caissons]
    caisson = getattr(event, "caisson", None)
    if caisson is not None and caisson not in caissons:
        report.add(
            (*loc, "caisson"), f"unknown caisson {caisson!r}: the site has {', '.join(caissons)}"
        )
    if isinstance(event, DrainAndRefill) and site.config.loads.pool is None:
        report.add((*loc, "kind"), "drain_and_refill needs a site with a pool")


def resolve(base_dir: Path, relative: str) -> Path:
    """A path written relative to a file's folder, without "../" left in what errors show."""
    return Path(os.path.normpath(base_dir / relative))


@dataclass(frozen=True)
class LoadedScenario:
    path: Path
    scenario: Scenario
    site: LoadedSite


def load_scenario(path: Path) -> LoadedScenario:
    """A scenario and its site, with every reference checked; ConfigError names file and line."""
    scenario, report = load_document(path, Scenario)
    site_path = resolve(path.parent, scenario.site)
    if not site_path.is_file():
        report.add(("site",), f"no site file {site_path} (site is relative to the scenario file)")
        report.raise_if_any()
    site = load_site(site_path)
    for index, event in enumerate(scenario.events):
        check_event(event, site, report, ("events", index))
    if isinstance(scenario.weather, CsvWeather):
        weather_file = resolve(path.parent, scenario.weather.file)
        if not weather_file.is_file():
            report.add(("weather", "file"), f"no weather file {weather_file}")
    report.raise_if_any()
    return LoadedScenario(path, scenario, site)

"""Where compute can go: the IT power a site can take now and in the hours ahead. Pure: the
daemon passes what it measures and the time; nothing here reads a clock, a file or a device.

A digital boiler sells compute, but only the compute whose heat has somewhere to go. Each site
tells the fleet's job scheduler, every minute (docs/HISTORIAN.md, `capacity`; the local API,
`GET /api/v1/capacity`):

- **heat-driven**: the IT power whose heat the site uses in full: its heat demand over the
  caissons' heat capture, at most what its caissons can run now. Now: the measured demand.
- **ceiling** (compute priority): the most IT power the plant can take with its dry cooler
  rejecting what the site does not use: (demand + the dry cooler's capacity at the outdoor
  temperature) / heat capture, at most what the caissons can run.
- **outlook**: the mean of both over the next 1, 6 and 24 hours (in quarter hours from the
  present one), and over tonight (22:00–06:00, local), from the site's loads on a forecast of
  the outdoor temperature, plus, in the 1, 6 and 24 h windows, the heat the buffer tank can
  still take (spread over the window: a scheduler may place that much extra compute in it).

Heat demand ahead, per 15-minute step, from the site file's loads at the step's local time and
forecast outdoor temperature: space heating on its heating curve (load ∝ heating limit − outdoor,
as the plant dispatch's stand-in), the warehouse's air heaters on its occupancy schedule, hot
water on its daily profile, the pool's evaporation (open hours, night cover) and make-up water;
at most the heat exchanger's capacity. The model's error now (the measured demand minus the
model's) is carried into the future, fading with a 6-hour time constant: a building that takes
more than its curve says now will likely do so for a while.

Outdoor temperature ahead: a persistence forecast (the temperature stays what it has been over
the last quarter of an hour: the usual baseline of weather forecasting, right on average, blind
to the day's swing of ± `climate.daily_amplitude`), or a forecast file the site file names
(`capacity.forecast`: rows `timestamp,temperature`, linear between rows, persistence outside
them). Without an outdoor measurement, the site's climate (seasonal and daily cosines).

Caissons that cannot compute now (locked out, tripped, leaking) are left out ahead too: a
scheduler learns of their return at the next minute's figures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Final
from zoneinfo import ZoneInfo

from controller.config.loader import LoadedSite
from controller.config.site import Climate, HotWaterProfile, Loads
from controller.water import VOLUMETRIC_HEAT

STEP: Final = timedelta(minutes=15)
HORIZON: Final = timedelta(hours=24)
WINDOWS: Final = (1, 6, 24)  # hours
NIGHT: Final = (22, 6)  # local hours: tonight runs from the first to the second
BIAS_DECAY: Final = 6 * 3600.0  # s: the fading of the model's present error
REJECT_MARGIN: Final = 3.0  # K below the dry cooler's return limit the plant holds the water

# Share of the day's hot-water energy drawn in each local hour, by profile: the same shapes as
# the simulated loads (simulators/plant/loads.py; a test keeps the two in step).
_HOMES: Final = (1, 0.5, 0.5, 0.5, 1, 2, 5, 8, 7, 5, 4, 4, 5, 4, 3, 3, 3, 4, 6, 8, 8, 6, 4, 2)
_SHOWERS: Final = (0, 0, 0, 0, 0, 0, 0, 6, 8, 6, 5, 5, 6, 6, 5, 5, 6, 8, 9, 8, 6, 3, 0, 0)
HOT_WATER_WEIGHTS: Final[dict[HotWaterProfile, tuple[float, ...]]] = {
    HotWaterProfile.RESIDENTIAL: _HOMES,
    HotWaterProfile.POOL: _SHOWERS,
    HotWaterProfile.FLAT: (1,) * 24,
}
WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class SiteModel:
    """What the calculation needs of the site file."""

    loads: Loads
    climate: Climate
    zone: ZoneInfo
    exchanger_max: float  # W: the building side takes at most this
    cooler_capacity: float  # W at `cooler_difference` between water and outdoor air
    cooler_difference: float  # K
    cooler_water: float  # °C: the water the dry cooler works on (its return limit − margin)

    @classmethod
    def of(cls, site: LoadedSite) -> SiteModel:
        config = site.config
        cooler = config.plant.dry_cooler
        return cls(
            loads=config.loads,
            climate=config.climate,
            zone=ZoneInfo(config.site.timezone or "UTC"),
            exchanger_max=config.plant.heat_exchanger.max_power,
            cooler_capacity=cooler.capacity,
            cooler_difference=cooler.design_difference,
            cooler_water=cooler.return_limit - REJECT_MARGIN,
        )


@dataclass(frozen=True)
class Conditions:
    """The site now, as the daemon measures it (SI; None: not measured)."""

    at: datetime  # UTC
    load: float | None  # W the building takes (measured, smoothed)
    outdoor: float | None  # °C (smoothed)
    available: float  # W of IT power the caissons able to compute can run
    capture: float  # share of IT power leaving in the water, over those caissons
    tank_room: float  # J the buffer tank can still take before it is full
    it_power: float | None = None  # W the caissons draw now
    forecast: Sequence[tuple[datetime, float]] = ()  # outdoor °C ahead, from a file


@dataclass(frozen=True)
class Step:
    start: datetime  # UTC
    outdoor: float  # °C
    demand: float  # W
    heat_driven: float  # W of IT power
    ceiling: float  # W of IT power


@dataclass(frozen=True)
class Window:
    hours: float  # its length
    start: datetime  # UTC
    demand: float  # W, mean
    heat_driven: float  # W of IT power, mean (the tank's room included, see the module)
    ceiling: float  # W of IT power, mean


@dataclass(frozen=True)
class Capacity:
    at: datetime
    heat_driven: float  # W now
    ceiling: float  # W now
    available: float  # W the caissons able to compute can run now
    it_power: float | None  # W drawn now
    demand: float  # W the site takes now (measured, or the model's when unmeasured)
    tank_room: float  # J
    outdoor: float | None  # °C the forecast starts from
    source: str  # "persistence", "forecast file" or "climate"
    windows: tuple[Window, ...]  # the next 1, 6 and 24 hours
    tonight: Window
    steps: tuple[Step, ...]  # 96 quarter hours from the present one


# ---------------------------------------------------------------------- demand


def demand(loads: Loads, outdoor: float, local: datetime) -> float:
    """W the site's loads take at `local` time with `outdoor` °C (see the module)."""
    total = 0.0
    hour = local.hour
    if (s := loads.space_heating) is not None:
        share = (s.heating_limit - outdoor) / (s.heating_limit - s.design_outdoor)
        total += s.design_load * min(max(share, 0.0), 1.5)
    if (w := loads.warehouse) is not None:
        occupancy = w.occupancy
        occupied = (
            WEEKDAYS[local.weekday()] in occupancy.days
            and occupancy.start_hour <= hour < occupancy.end_hour
        )
        setpoint = w.occupied_setpoint if occupied else w.unoccupied_setpoint
        span = w.occupied_setpoint - w.internal_gains - w.design_outdoor
        total += w.design_load * max(setpoint - w.internal_gains - outdoor, 0.0) / span
    if (h := loads.hot_water) is not None:
        weights = HOT_WATER_WEIGHTS[h.profile]
        total += h.daily_energy * weights[hour] / sum(weights) / 3600.0
    if (p := loads.pool) is not None:
        open_now = p.open_hours[0] <= hour < p.open_hours[1]
        evaporation = p.evaporation_loss * (1.0 if open_now else p.cover_factor)
        makeup = VOLUMETRIC_HEAT * p.makeup_daily / 86400.0 * max(p.target - p.makeup_water, 0.0)
        total += min(evaporation + makeup, p.heat_exchanger_capacity)
    return total


def climate_temperature(climate: Climate, local: datetime) -> float:
    """°C the site's climate gives on average at `local` time (coldest day and 05:00)."""
    day = local.timetuple().tm_yday - 1 + local.hour / 24.0
    seasonal = -climate.seasonal_amplitude * math.cos(
        2 * math.pi * (day - (climate.coldest_day - 1)) / 365.2425
    )
    daily = -climate.daily_amplitude * math.cos(2 * math.pi * (local.hour - 5.0) / 24.0)
    return climate.annual_mean + seasonal + daily


def forecast_at(forecast: Sequence[tuple[datetime, float]], at: datetime) -> float | None:
    """The forecast's °C at `at`, linear between its rows; None outside them."""
    if not forecast or at < forecast[0][0] or at > forecast[-1][0]:
        return None
    for (t0, v0), (t1, v1) in pairwise(forecast):
        if t0 <= at <= t1:
            span = (t1 - t0).total_seconds()
            return v0 if span <= 0 else v0 + (v1 - v0) * (at - t0).total_seconds() / span
    return forecast[-1][1]


# ---------------------------------------------------------------------- the calculation


def capacity(model: SiteModel, now: Conditions) -> Capacity:
    """The site's capacity now and ahead (see the module)."""
    zone = model.zone
    local_now = now.at.astimezone(zone)
    modelled_now = _limited(model, demand(model.loads, _outdoor(model, now, now.at), local_now))
    demand_now = modelled_now if now.load is None else now.load
    bias = demand_now - modelled_now
    steps = []
    count = int(HORIZON / STEP)
    first = _quarter(now.at)
    for i in range(count):
        start = first + i * STEP
        middle = start + STEP / 2
        outdoor = _outdoor(model, now, middle)
        fade = math.exp(-max((middle - now.at).total_seconds(), 0.0) / BIAS_DECAY)
        wanted = demand(model.loads, outdoor, middle.astimezone(zone)) + bias * fade
        heat = _limited(model, wanted)
        steps.append(
            Step(
                start,
                outdoor,
                heat,
                _it(heat, now),
                _it(heat + _cooler(model, outdoor), now),
            )
        )
    windows = tuple(_window(steps[: int(timedelta(hours=h) / STEP)], now) for h in WINDOWS)
    return Capacity(
        at=now.at,
        heat_driven=_it(demand_now, now),
        ceiling=_it(demand_now + _cooler(model, _outdoor(model, now, now.at)), now),
        available=now.available,
        it_power=now.it_power,
        demand=demand_now,
        tank_room=now.tank_room,
        outdoor=now.outdoor,
        source=_source(now),
        windows=windows,
        tonight=_window(_tonight(steps, zone), now, with_tank=False),
        steps=tuple(steps),
    )


def _quarter(at: datetime) -> datetime:
    """The start of the quarter hour `at` is in (UTC)."""
    return at - timedelta(minutes=at.minute % 15, seconds=at.second, microseconds=at.microsecond)


def tank_room(tank: Sequence[float | None], full: float, volume: float) -> float:
    """J the buffer tank (layers' °C, top to bottom; `volume` m³) can take until every layer is
    at `full` °C; its unknown layers count as the known ones' mean."""
    known = [t for t in tank if t is not None]
    if not known:
        return 0.0
    mean_gap = sum(max(full - t, 0.0) for t in known) / len(known)
    return VOLUMETRIC_HEAT * volume * mean_gap


def _outdoor(model: SiteModel, now: Conditions, at: datetime) -> float:
    if (forecast := forecast_at(now.forecast, at)) is not None:
        return forecast
    if now.outdoor is not None:
        return now.outdoor
    return climate_temperature(model.climate, at.astimezone(model.zone))


def _source(now: Conditions) -> str:
    if now.forecast and forecast_at(now.forecast, now.at + HORIZON / 2) is not None:
        return "forecast file"
    return "persistence" if now.outdoor is not None else "climate"


def _limited(model: SiteModel, heat: float) -> float:
    return min(max(heat, 0.0), model.exchanger_max)


def _cooler(model: SiteModel, outdoor: float) -> float:
    """W the dry cooler rejects, fan flat out, with the water at its working temperature."""
    lift = max(model.cooler_water - outdoor, 0.0)
    return model.cooler_capacity * lift / model.cooler_difference


def _it(heat: float, now: Conditions) -> float:
    """W of IT power whose captured heat is `heat`, at most what the caissons can run."""
    if now.capture <= 0.0:
        return 0.0
    return min(max(heat, 0.0) / now.capture, now.available)


def _window(steps: Sequence[Step], now: Conditions, *, with_tank: bool = True) -> Window:
    if not steps:
        return Window(0.0, now.at, 0.0, 0.0, 0.0)
    seconds = STEP.total_seconds()
    length = seconds * len(steps)
    heat_driven = sum(s.heat_driven for s in steps) * seconds
    if with_tank and now.capture > 0.0:
        headroom = sum(now.available - s.heat_driven for s in steps) * seconds
        heat_driven += min(now.tank_room / now.capture, max(headroom, 0.0))
    return Window(
        hours=length / 3600.0,
        start=steps[0].start,
        demand=sum(s.demand for s in steps) * seconds / length,
        heat_driven=heat_driven / length,
        ceiling=sum(s.ceiling for s in steps) * seconds / length,
    )


def _tonight(steps: Sequence[Step], zone: ZoneInfo) -> list[Step]:
    """The steps of the coming night (or the rest of the present one): the first run of steps
    whose local middle falls between 22:00 and 06:00."""
    night: list[Step] = []
    for step in steps:
        hour = (step.start + STEP / 2).astimezone(zone).hour
        if hour >= NIGHT[0] or hour < NIGHT[1]:
            night.append(step)
        elif night:
            break
    return night


def parse_forecast(text: str, source: str) -> list[tuple[datetime, float]]:
    """A forecast file's rows `timestamp,temperature`: ISO 8601 with its UTC offset, °C, times
    increasing; a header row and `#` comments are skipped (the scenarios' weather files have the
    same form). ValueError: one line naming `source`, the line and what is wrong."""
    rows: list[tuple[datetime, float]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#") or line.lower().startswith("timestamp"):
            continue
        stamp_text, _, value_text = line.partition(",")
        try:
            stamp = datetime.fromisoformat(stamp_text.strip())
            value = float(value_text)
        except ValueError:
            raise ValueError(
                f"{source}:{number}: expected 'timestamp,temperature' "
                f"(ISO 8601 with offset, degC), got {line!r}"
            ) from None
        if stamp.tzinfo is None:
            raise ValueError(f"{source}:{number}: timestamp {stamp_text.strip()!r} has no offset")
        if not math.isfinite(value):
            raise ValueError(
                f"{source}:{number}: temperature {value_text.strip()!r} is not a number"
            )
        if rows and stamp <= rows[-1][0]:
            raise ValueError(f"{source}:{number}: timestamps must increase from row to row")
        rows.append((stamp, value))
    return rows

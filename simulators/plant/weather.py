"""Outdoor temperature series: a deterministic profile from the site's climate, or a CSV file."""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from controller.config.loader import ConfigError, ConfigIssue
from controller.config.site import Climate

SECONDS_PER_DAY = 86400.0
DAYS_PER_YEAR = 365.2425


def profile_temperature(
    climate: Climate, start: datetime, times: NDArray[np.float64], seed: int
) -> NDArray[np.float64]:
    """Outdoor temperature at `times` (seconds after `start`, UTC).

    Seasonal cosine (coldest on `coldest_day`), daily cosine (coldest at 05:00, warmest at 17:00)
    and weather noise: a smooth random walk (Ornstein-Uhlenbeck, 2-day memory, σ 3 K) drawn from
    `seed`, so a scenario is reproducible.
    """
    day_of_year = start.timetuple().tm_yday - 1 + (start.hour * 3600 + start.minute * 60) / 86400
    days = day_of_year + times / SECONDS_PER_DAY
    seasonal = -climate.seasonal_amplitude * np.cos(
        2 * np.pi * (days - (climate.coldest_day - 1)) / DAYS_PER_YEAR
    )
    hour = (days % 1.0) * 24.0
    daily = -climate.daily_amplitude * np.cos(2 * np.pi * (hour - 5.0) / 24.0)
    return climate.annual_mean + seasonal + daily + _weather_noise(times, seed)


def _weather_noise(times: NDArray[np.float64], seed: int) -> NDArray[np.float64]:
    """Ornstein-Uhlenbeck noise sampled hourly and interpolated: smooth at the step scale."""
    if len(times) == 0:
        return np.zeros(0)
    rng = np.random.default_rng(seed)
    # Hour 0 onwards, whatever `times` covers: a window of a longer run sees the same weather.
    hours = np.arange(0.0, times[-1] / 3600.0 + 2.0)
    memory_h, sigma = 48.0, 3.0
    decay = np.exp(-1.0 / memory_h)
    noise = np.empty(len(hours))
    noise[0] = rng.normal(0.0, sigma)
    shocks = rng.normal(0.0, sigma * np.sqrt(1 - decay**2), len(hours))
    for i in range(1, len(hours)):
        noise[i] = decay * noise[i - 1] + shocks[i]
    return np.interp(times / 3600.0, hours, noise)


def csv_temperature(path: Path, start: datetime, times: NDArray[np.float64]) -> NDArray[np.float64]:
    """Outdoor temperature from a CSV of `timestamp,temperature` rows (ISO 8601 with offset, °C).

    Linear interpolation between rows; times outside the file are an error, not an extrapolation.
    Problems raise ConfigError naming the file and line.
    """
    stamps: list[float] = []
    values: list[float] = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise _csv_error(path, 0, f"cannot read the weather file: {error}") from None
    for line_no, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or row[0].startswith("#") or row[0].strip() == "timestamp":
            continue
        try:
            stamp = datetime.fromisoformat(row[0].strip())
            value = float(row[1])
        except (ValueError, IndexError):
            raise _csv_error(path, line_no, "expected 'timestamp,temperature'") from None
        if stamp.tzinfo is None:
            raise _csv_error(path, line_no, f"timestamp {row[0]!r} has no UTC offset")
        if stamps and (stamp - start).total_seconds() <= stamps[-1]:
            raise _csv_error(path, line_no, "timestamps must increase from row to row")
        stamps.append((stamp - start).total_seconds())
        values.append(value)
    if len(stamps) < 2:
        raise _csv_error(path, 1, "needs at least two rows of 'timestamp,temperature'")
    if len(times) and (times[0] < stamps[0] or times[-1] > stamps[-1]):
        raise _csv_error(path, 1, "does not cover the scenario's period")
    return np.interp(times, np.asarray(stamps), np.asarray(values))


def _csv_error(path: Path, line: int, message: str) -> ConfigError:
    return ConfigError([ConfigIssue(path, line, "", message)])

"""The daemon's side of capacity.py: what it measures, smoothed scan by scan, and the forecast
file read again when it changes; the capacity worked out on request (once a minute, by the
historian's feed) and kept for the local API.

A forecast file that is missing or unreadable is logged once (and again once it is fixed and
breaks again) and the forecast falls back to persistence: a cron job late with its download
never stops the daemon.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

import structlog

from controller.capacity import Capacity, Conditions, SiteModel, capacity, parse_forecast, tank_room
from controller.config.loader import LoadedSite
from controller.control.dispatch import LOAD_FILTER, first_order, measured_load
from controller.control.inputs import Inputs
from controller.control.supervisor import CaissonStatus

log = structlog.get_logger(__name__)

OUTDOOR_SMOOTHING: Final = 900.0  # s: the outdoor temperature's (the persistence forecast)
# A caisson with one of these interlocks cannot compute until someone acts (a standby or a
# low flow passes by itself): it is left out of the capacity.
OUT_OF_SERVICE: Final = frozenset({"leak", "pump_fault", "plc_trip", "inputs_lost", "lockout"})


class CapacityFeed:
    def __init__(self, site: LoadedSite) -> None:
        config = site.config
        self.model = SiteModel.of(site)
        self._caissons = {
            c.id: (config.caisson_type(c).it_power, config.caisson_type(c).heat_capture)
            for c in config.caissons
        }
        self._tank_volume = config.plant.buffer_tank.volume
        self._forecast_path = (
            None
            if config.capacity.forecast is None
            else (site.path.parent / config.capacity.forecast)
        )
        self._forecast: list[tuple[datetime, float]] = []
        self._forecast_seen: tuple[float, int] | None = None  # mtime, size of the file read
        self._forecast_broken = False
        self._load: float | None = None
        self._outdoor: float | None = None
        self.latest: Capacity | None = None

    def observe(self, inputs: Inputs, dt: float) -> None:
        """Each scan: smooth the measured demand and outdoor temperature (dt: seconds since the
        last scan, in plant time)."""
        self._load = _smooth(self._load, measured_load(inputs.plant), dt, LOAD_FILTER)
        self._outdoor = _smooth(self._outdoor, inputs.plant.outdoor, dt, OUTDOOR_SMOOTHING)

    def update(
        self,
        inputs: Inputs,
        caissons: Sequence[CaissonStatus],
        outlet_setpoint: float,
        now: datetime,
    ) -> Capacity:
        """The capacity now (kept as `latest`)."""
        available = 0.0
        captured = 0.0
        for status in caissons:
            power, capture = self._caissons[status.id]
            if status.locked_out or {str(i) for i in status.interlocks} & OUT_OF_SERVICE:
                continue
            available += power
            captured += power * capture
        it_powers = [c.it_power for c in inputs.caissons]
        conditions = Conditions(
            at=now,
            load=self._load,
            outdoor=self._outdoor,
            available=available,
            capture=captured / available if available > 0 else 0.0,
            tank_room=tank_room(inputs.plant.tank, outlet_setpoint, self._tank_volume),
            it_power=None if None in it_powers else sum(p or 0.0 for p in it_powers),
            forecast=self._read_forecast(),
        )
        self.latest = capacity(self.model, conditions)
        return self.latest

    def _read_forecast(self) -> list[tuple[datetime, float]]:
        path = self._forecast_path
        if path is None:
            return []
        try:
            stat = path.stat()
            seen = (stat.st_mtime, stat.st_size)
            if seen != self._forecast_seen:
                self._forecast = parse_forecast(path.read_text(encoding="utf-8"), str(path))
                self._forecast_seen = seen
                self._forecast_broken = False
                log.info("forecast_read", file=str(path), rows=len(self._forecast))
        except (OSError, UnicodeDecodeError, ValueError) as error:
            if not self._forecast_broken:
                log.warning("forecast_unusable", file=str(path), error=str(error))
            self._forecast_broken = True
            self._forecast, self._forecast_seen = [], None
        return self._forecast


def fields(report: Capacity) -> list[tuple[str, float | str | None]]:
    """The historian's `capacity` fields (kW, kWh, °C; docs/HISTORIAN.md)."""
    values: list[tuple[str, float | str | None]] = [
        ("heat_driven_kw", report.heat_driven / 1e3),
        ("ceiling_kw", report.ceiling / 1e3),
        ("available_kw", report.available / 1e3),
        ("it_power_kw", None if report.it_power is None else report.it_power / 1e3),
        ("demand_kw", report.demand / 1e3),
        ("tank_room_kwh", report.tank_room / 3.6e6),
        ("outdoor_c", report.outdoor),
        ("forecast", report.source),
    ]
    for window in report.windows:
        hours = f"{window.hours:g}h"
        values += [
            (f"heat_driven_{hours}_kw", window.heat_driven / 1e3),
            (f"ceiling_{hours}_kw", window.ceiling / 1e3),
            (f"demand_{hours}_kw", window.demand / 1e3),
        ]
    values += [
        ("tonight_heat_driven_kw", report.tonight.heat_driven / 1e3),
        ("tonight_ceiling_kw", report.tonight.ceiling / 1e3),
        ("tonight_hours", report.tonight.hours),
    ]
    return values


def _smooth(previous: float | None, value: float | None, dt: float, tau: float) -> float | None:
    """First-order filter; an unknown value forgets it (the model or the climate stand in)."""
    return None if value is None else first_order(previous, value, dt, tau)

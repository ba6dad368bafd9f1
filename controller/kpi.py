"""The plant's KPIs, computed by the controller from its own measurements. Pure: no I/O, no clock.

Per step (one scan cycle, `dt` seconds), from the inputs in SI:
- IT energy: the caissons' metered IT power.
- Pump energy: each pump's rated power × speed³ (affinity law, from the drive's speed feedback):
  an estimate, the skids meter no pump power. Fan energy likewise: the dry cooler's rated fan
  power × fan speed³.
- Heat delivered to the building: building flow × ρc_p × (supply − return), which includes the
  backup boiler; heat reused = delivered − backup heat; backup: the plant skid's meter.
- Heat dumped: by energy balance, the caissons' heat (flow × ρc_p × (outlet − inlet)) − heat
  reused − the rise of the buffer tank's stored heat (mean of its sensors × its heat capacity).
  It therefore also holds pipe and tank losses, and is shown as 0 when measurement noise makes
  it negative over a period.
- ERF = reused / electricity (IT + pumps + fans); PUE = electricity / IT; ERE = (1 − ERF) · PUE.
- Time in band: of the time with IT power on, the share with the plant supply temperature in
  its band.
A term whose inputs are not valid this step is left out of this step, and `coverage` (the share
of the period's time with every input valid) says how complete the period's figures are.

Periods: the UTC hour and the site's local day, each accumulated from its start; `snapshot()`
gives the open periods' figures at any time, so their points can be rewritten as they grow.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from controller.config.loader import LoadedSite
from controller.control.inputs import Inputs, PlantInputs
from controller.water import VOLUMETRIC_HEAT

J_PER_KWH = 3.6e6


class Period(StrEnum):
    HOUR = "hour"
    DAY = "day"


@dataclass(frozen=True)
class Totals:
    """Joules and seconds since a period's start."""

    it: float = 0.0
    pumps: float = 0.0
    fans: float = 0.0
    delivered: float = 0.0  # to the building, backup included
    backup: float = 0.0
    caisson_heat: float = 0.0
    tank_rise: float = 0.0  # stored heat gained
    seconds: float = 0.0
    seconds_covered: float = 0.0  # with every input valid
    seconds_running: float = 0.0  # with IT power on
    seconds_in_band: float = 0.0  # of those, with the supply in its band

    def plus(self, other: Totals) -> Totals:
        return Totals(*(a + b for a, b in zip(_values(self), _values(other), strict=True)))


def _values(totals: Totals) -> Iterator[float]:
    return iter(asdict(totals).values())


@dataclass(frozen=True)
class Kpis:
    """A period's figures as written to the historian (kWh, ratios, hours)."""

    period: Period
    start: datetime  # UTC
    heat_delivered_kwh: float
    heat_reused_kwh: float
    heat_dumped_kwh: float
    backup_heat_kwh: float
    it_energy_kwh: float
    pump_energy_kwh: float
    fan_energy_kwh: float
    erf: float | None
    pue: float | None
    ere: float | None
    running_h: float
    in_band_share: float | None
    coverage: float

    @classmethod
    def of(cls, period: Period, start: datetime, t: Totals) -> Kpis:
        electricity = t.it + t.pumps + t.fans
        reused = max(t.delivered - t.backup, 0.0)
        dumped = max(t.caisson_heat - reused - t.tank_rise, 0.0)
        erf = reused / electricity if electricity > 0 else None
        pue = electricity / t.it if t.it > 0 else None
        return cls(
            period=period,
            start=start,
            heat_delivered_kwh=t.delivered / J_PER_KWH,
            heat_reused_kwh=reused / J_PER_KWH,
            heat_dumped_kwh=dumped / J_PER_KWH,
            backup_heat_kwh=t.backup / J_PER_KWH,
            it_energy_kwh=t.it / J_PER_KWH,
            pump_energy_kwh=t.pumps / J_PER_KWH,
            fan_energy_kwh=t.fans / J_PER_KWH,
            erf=erf,
            pue=pue,
            ere=(1 - erf) * pue if erf is not None and pue is not None else None,
            running_h=t.seconds_running / 3600,
            in_band_share=t.seconds_in_band / t.seconds_running if t.seconds_running else None,
            coverage=t.seconds_covered / t.seconds if t.seconds else 0.0,
        )


@dataclass(frozen=True)
class PlantConstants:
    pump_power: tuple[float, ...]  # W at full speed, per caisson
    fan_power: float  # W at full fan
    tank_capacity: float  # J/K
    band: tuple[float, float]  # °C

    @classmethod
    def of(cls, site: LoadedSite) -> PlantConstants:
        config = site.config
        return cls(
            pump_power=tuple(config.caisson_type(c).pump.power for c in config.caissons),
            fan_power=config.plant.dry_cooler.fan_power,
            tank_capacity=VOLUMETRIC_HEAT * config.plant.buffer_tank.volume,
            band=(config.setpoints.supply_low, config.setpoints.supply_high),
        )


def step_totals(
    constants: PlantConstants,
    inputs: Inputs,
    fan_speed: float | None,
    tank_rise: float | None,
    dt: float,
) -> Totals:
    """One step's energies. fan_speed: the dry cooler fan's feedback (fraction). tank_rise: the
    stored heat gained since the last step (J), None when a tank sensor is not valid."""
    complete = tank_rise is not None and fan_speed is not None
    it = pumps = caisson_heat = 0.0
    running = False
    for caisson, pump_power in zip(inputs.caissons, constants.pump_power, strict=True):
        if caisson.it_power is None or caisson.pump_speed is None:
            complete = False
        else:
            it += caisson.it_power
            pumps += pump_power * max(caisson.pump_speed, 0.0) ** 3
            running = running or caisson.it_power > 0
        if caisson.flow is None or caisson.outlet is None or caisson.inlet is None:
            complete = False
        else:
            caisson_heat += VOLUMETRIC_HEAT * caisson.flow * (caisson.outlet - caisson.inlet)
    plant = inputs.plant
    backup = 0.0
    delivered = building_heat(plant)
    if delivered is None:
        complete = False
    if plant.backup_heat is None:
        complete = False
    else:
        backup = plant.backup_heat
    low, high = constants.band
    in_band = plant.supply is not None and low <= plant.supply <= high
    if running and plant.supply is None:
        complete = False
    return Totals(
        it=it * dt,
        pumps=pumps * dt,
        fans=constants.fan_power * max(fan_speed or 0.0, 0.0) ** 3 * dt,
        delivered=(delivered or 0.0) * dt,
        backup=backup * dt,
        caisson_heat=caisson_heat * dt,
        tank_rise=tank_rise or 0.0,
        seconds=dt,
        seconds_covered=dt if complete else 0.0,
        seconds_running=dt if running else 0.0,
        seconds_in_band=dt if running and in_band else 0.0,
    )


def building_heat(plant: PlantInputs) -> float | None:
    """Heat flowing to the building now (W, backup included); None without valid sensors."""
    flow, supply, back = plant.building_flow, plant.building_supply, plant.building_return
    if flow is None or supply is None or back is None:
        return None
    return max(VOLUMETRIC_HEAT * flow * (supply - back), 0.0)


def tank_heat(constants: PlantConstants, inputs: Inputs) -> float | None:
    """Heat stored in the tank above 0 °C (J), from the mean of its sensors; None if any is
    not valid."""
    temperatures = inputs.plant.tank
    if not temperatures or any(t is None for t in temperatures):
        return None
    mean = math.fsum(t for t in temperatures if t is not None) / len(temperatures)
    return constants.tank_capacity * mean


def period_start(period: Period, at: datetime, zone: ZoneInfo) -> datetime:
    """The UTC start of the hour, or of the site's local day, holding `at` (UTC)."""
    if period is Period.HOUR:
        return at.replace(minute=0, second=0, microsecond=0)
    local = at.astimezone(zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.astimezone(at.tzinfo)


@dataclass
class KpiAccumulator:
    """The open hour and day. `add()` a step; closed periods come back from `add()` once."""

    constants: PlantConstants
    zone: ZoneInfo
    open: dict[Period, tuple[datetime, Totals]] = field(default_factory=dict)
    _last_tank: float | None = None

    def add(self, at: datetime, inputs: Inputs, fan_speed: float | None, dt: float) -> list[Kpis]:
        """Account one step ending at `at` (UTC); the periods this step closed, final."""
        heat = tank_heat(self.constants, inputs)
        rise = None if heat is None or self._last_tank is None else heat - self._last_tank
        self._last_tank = heat
        step = step_totals(self.constants, inputs, fan_speed, rise, dt)
        closed: list[Kpis] = []
        for period in Period:
            start = period_start(period, at, self.zone)
            current = self.open.get(period)
            if current is not None and current[0] != start:
                closed.append(Kpis.of(period, *current))
                current = None
            totals = step if current is None else current[1].plus(step)
            self.open[period] = (start, totals)
        return closed

    def snapshot(self) -> list[Kpis]:
        """The open periods' figures so far."""
        return [Kpis.of(period, start, totals) for period, (start, totals) in self.open.items()]

    # ------------------------------------------------------------------ persistence

    def state(self) -> dict[str, object]:
        """The open periods, to survive a restart (restored by `restore`)."""
        return {
            period.value: {"start": start.isoformat(), "totals": asdict(totals)}
            for period, (start, totals) in self.open.items()
        }

    def restore(self, state: dict[str, object], now: datetime) -> None:
        """Take back the open periods of an earlier run that are still open at `now`."""
        for period in Period:
            saved = state.get(period.value)
            if not isinstance(saved, dict):
                continue
            try:
                start = datetime.fromisoformat(saved["start"])
                totals = replace(Totals(), **saved["totals"])
            except (KeyError, TypeError, ValueError):
                continue
            if start == period_start(period, now, self.zone):
                self.open[period] = (start, totals)

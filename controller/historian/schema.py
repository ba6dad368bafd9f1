"""The historian's measurements (docs/HISTORIAN.md), as line protocol. Formatting only: no I/O.

Every series carries the tag `site`. Device data is written as acquired: one line per device and
acquisition timestamp, a field per point in the point's map unit, only GOOD values; a point's
quality is written to `point_quality` when it changes (an invalid sample is never a value).
Controller figures are stamped with the cycle's wall-clock time (UTC).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from controller.config.loader import LoadedSite
from controller.control.inputs import Inputs
from controller.control.supervisor import PlantStatus
from controller.fieldbus.image import PointRef, Quality, Reason, Sample
from controller.historian.lineprotocol import FieldValue, line, nanoseconds, series_key
from controller.kpi import Kpis, building_heat

PLANT = "plant_control"
CAISSON = "caisson_control"
QUALITY = "point_quality"
CONTROLLER = "controller"
DEVICE = "device_health"
REGISTER_WRITES = "register_writes"
KPI = "kpi"
EVENT = "event"
SITE_CONFIG = "site_config"
ALARM_COUNTS = "alarm_counts"
CAPACITY = "capacity"

# The fields of the supervisor's measurements, in the order control() writes them.
PLANT_FIELDS = (
    "mode",
    "it_target_kw",
    "soc_pct",
    "load_kw",
    "delivered_kw",
    "dry_cooler_pct",
    "outlet_setpoint_c",  # in force: the reset within the band
    "return_limit_c",  # the dry cooler's, asked of the plant PLC
    "it_power_kw",
    "supply_off_band_k",
    "day_peak_kw",  # the highest load of the last 24 h (the tank is charged for the next peak)
)
CAISSON_FIELDS = (
    "initialised",
    "running",
    "plc_mode",
    "interlocks",
    "interlock_count",
    "setpoint_c",
    "pump_speed_cmd_pct",
    "cap_kw",
    "chip_margin_k",
    "staged",  # staging runs it (else it stands by, its pump stopped)
    "inlet_setpoint_c",  # its loading unit's
    "run_hours",  # staged on, over every run of the controller: lead and lag rotate on it
    "outlet_estimated",  # its outlet sensor reads frozen: the pump follows the heat balance
    "outlet_estimate_c",  # the heat balance's outlet: on the sensor's while that is healthy
)


# The backup boiler's seasonal efficiency by fuel: the fuel a kWh of heat reused saves.
FUEL_EFFICIENCY = {"gas": 0.90, "oil": 0.88, "district-heat": 1.0, "electric": 1.0}


def fuel_field(fuel: str) -> str:
    """The `kpi` field of the backup fuel avoided: "gas_avoided_kwh", "district_heat_..."."""
    return f"{fuel.replace('-', '_')}_avoided_kwh"


def off_band(supply: float | None, low: float, high: float) -> float | None:
    """How far `supply` is outside the band [low, high], K: negative below, positive above,
    0 inside; None when unknown."""
    if supply is None:
        return None
    return min(supply - low, 0.0) + max(supply - high, 0.0)


def device_measurement(device_type: str) -> str:
    """A map's device type as a measurement name: "caisson-skid" → "caisson_skid"."""
    return device_type.replace("-", "_")


def _percent(fraction: float | None) -> float | None:
    return None if fraction is None else fraction * 100.0


def _kilo(watts: float | None) -> float | None:
    return None if watts is None else watts / 1000.0


def _present(fields: Sequence[tuple[str, FieldValue | None]]) -> list[tuple[str, FieldValue]]:
    return [(name, value) for name, value in fields if value is not None]


@dataclass(frozen=True)
class DeviceHealthFigures:
    device: str
    state: str  # ok, suspect, failed
    consecutive_failures: int
    comm_errors: int  # since start, every kind
    write_failures: int
    writes_skipped: int


@dataclass(frozen=True)
class ControllerFigures:
    cycle_ms: float
    cycles: int
    overruns: int
    missed_ticks: int
    scan_failures: int
    writes_sent: int
    spool_points: int
    spool_bytes: int
    spool_age_s: float
    spool_evicted_points: int
    spool_rejected_points: int
    historian_sent_points: int
    historian_failures: int
    historian_dropped_points: int
    devices: int  # field devices of the site
    devices_answering: int  # of those, not failed


@dataclass(frozen=True)
class Event:
    """Something that happened, for the journal of events and Grafana's annotations."""

    at: datetime
    kind: str  # alarm, operator, mode, config, historian
    name: str  # e.g. historian_unreachable, plant_mode, override
    message: str
    source: str = ""  # a caisson, a device, or "" for the plant
    state: str = ""  # raised / cleared for alarms; the new mode for modes
    user: str = ""
    reason: str = ""
    before: str = ""
    after: str = ""


class Recorder:
    """Lines for one site. Remembers what it has written, so each acquisition goes out once and
    a quality change once."""

    def __init__(self, site: LoadedSite) -> None:
        config = site.config
        self.site = config.site.slug
        caisson_of: dict[str, str] = {}
        for caisson in config.caissons:
            for device_id in (caisson.skid, caisson.compute, caisson.heat_meter):
                if device_id is not None:
                    caisson_of[device_id] = caisson.id
        self._device_key: dict[str, str] = {}
        self._stored: set[PointRef] = set()
        for device in config.devices:
            device_map = site.device_map(device.id)
            tags = {
                "site": self.site,
                "device": device.id,
                "caisson": caisson_of.get(device.id, ""),
            }
            self._device_key[device.id] = series_key(
                device_measurement(device_map.device_type), tags
            )
            self._stored.update(PointRef(device.id, p.id) for p in device_map.points if p.historian)
        self._plant_key = series_key(PLANT, {"site": self.site})
        self._caisson_keys = {
            c.id: series_key(CAISSON, {"site": self.site, "caisson": c.id}) for c in config.caissons
        }
        self._controller_key = series_key(CONTROLLER, {"site": self.site})
        self._throttle = {c.id: config.caisson_type(c).chips.throttle for c in config.caissons}
        self._band = (config.setpoints.supply_low, config.setpoints.supply_high)
        fuel = config.plant.backup_boiler.fuel
        self._fuel = (fuel_field(fuel), FUEL_EFFICIENCY[fuel])
        self._site_fields: list[tuple[str, FieldValue]] = [
            ("name", config.site.name),
            ("kind", config.site.kind.value),
            ("timezone", config.site.timezone),
            ("policy", config.control.policy.value),
            ("fuel", fuel),
            ("supply_low_c", config.setpoints.supply_low),
            ("supply_high_c", config.setpoints.supply_high),
            ("caissons", float(len(config.caissons))),
            (
                "it_nominal_kw",
                sum(config.caisson_type(c).it_power for c in config.caissons) / 1000.0,
            ),
        ]
        self._written: dict[PointRef, datetime] = {}
        self._quality: dict[PointRef, tuple[Quality, Reason | None]] = {}

    # ------------------------------------------------------------------ device data

    def samples(self, snapshot: Mapping[PointRef, Sample], now: datetime) -> list[str]:
        """New acquisitions since the last call, and quality changes."""
        fresh: dict[tuple[str, datetime], list[tuple[str, FieldValue]]] = {}
        lines: list[str] = []
        for ref, sample in snapshot.items():
            if ref not in self._stored:
                continue
            quality = (sample.quality, sample.reason)
            if self._quality.get(ref, (Quality.GOOD, None)) != quality:
                self._quality[ref] = quality
                lines.append(self._quality_line(ref, sample, now))
            if sample.quality is not Quality.GOOD or sample.value is None:
                continue
            if self._written.get(ref) == sample.timestamp:
                continue
            self._written[ref] = sample.timestamp
            fresh.setdefault((ref.device, sample.timestamp), []).append((ref.point, sample.value))
        for (device, at), fields in fresh.items():
            text = line(self._device_key[device], fields, nanoseconds(at))
            if text is not None:
                lines.append(text)
        return lines

    def _quality_line(self, ref: PointRef, sample: Sample, now: datetime) -> str:
        # A STALE sample keeps its old acquisition time: the change is stamped when it is seen.
        at = sample.timestamp if sample.quality is Quality.BAD else now
        key = series_key(QUALITY, {"site": self.site, "device": ref.device, "point": ref.point})
        fields: list[tuple[str, FieldValue]] = [("quality", sample.quality.value)]
        fields.append(("reason", sample.reason.value if sample.reason else ""))
        text = line(key, fields, nanoseconds(at))
        assert text is not None
        return text

    # ------------------------------------------------------------------ controller

    def control(
        self,
        status: PlantStatus,
        now: datetime,
        inputs: Inputs | None = None,
    ) -> list[str]:
        """The supervisor's status; with the cycle's `inputs`, the heat flowing to the building
        and each caisson's margin to its chips' throttling temperature (the site file's, which
        the historian has no other way to know)."""
        at = nanoseconds(now)
        delivered = None if inputs is None else building_heat(inputs.plant)
        it_powers = [] if inputs is None else [c.it_power for c in inputs.caissons]
        it_power = None if not it_powers or None in it_powers else sum(filter(None, it_powers))
        supply = None if inputs is None else inputs.plant.supply
        chip_temps = (
            {}
            if inputs is None
            else {
                caisson: i.chip_temp
                for caisson, i in zip(self._throttle, inputs.caissons, strict=True)
            }
        )
        plant_values = (
            status.mode.value,
            _kilo(status.it_target),
            _percent(status.soc),
            _kilo(status.load),
            _kilo(delivered),
            _percent(status.dry_cooler),
            status.outlet_setpoint,
            status.return_limit,
            _kilo(it_power),
            off_band(supply, *self._band),
            _kilo(status.day_peak),
        )
        plant = _present(list(zip(PLANT_FIELDS, plant_values, strict=True)))
        lines = [text for text in [line(self._plant_key, plant, at)] if text]
        for caisson in status.caissons:
            values = (
                caisson.initialised,
                caisson.running,
                caisson.plc_mode,
                ",".join(sorted(caisson.interlocks)),
                len(caisson.interlocks),
                caisson.setpoint,
                _percent(caisson.pump_speed),
                _kilo(caisson.cap),
                self._chip_margin(caisson.id, chip_temps.get(caisson.id)),
                caisson.staged,
                caisson.inlet_setpoint,
                None if caisson.run_seconds is None else caisson.run_seconds / 3600,
                caisson.outlet_estimated,
                caisson.outlet_estimate,
            )
            fields = _present(list(zip(CAISSON_FIELDS, values, strict=True)))
            text = line(self._caisson_keys[caisson.id], fields, at)
            if text:
                lines.append(text)
        return lines

    def _chip_margin(self, caisson: str, chip_temp: float | None) -> float | None:
        return None if chip_temp is None else self._throttle[caisson] - chip_temp

    def controller(self, figures: ControllerFigures, now: datetime) -> list[str]:
        fields = list(vars(figures).items())
        text = line(self._controller_key, fields, nanoseconds(now))
        return [text] if text else []

    def devices(self, figures: Sequence[DeviceHealthFigures], now: datetime) -> list[str]:
        at = nanoseconds(now)
        lines = []
        for device in figures:
            key = series_key(DEVICE, {"site": self.site, "device": device.device})
            fields = [(k, v) for k, v in vars(device).items() if k != "device"]
            text = line(key, fields, at)
            if text:
                lines.append(text)
        return lines

    def register_writes(self, counts: Mapping[PointRef, int], now: datetime) -> list[str]:
        """Writes per register since the daemon started (flash wear, DOMAIN.md)."""
        at = nanoseconds(now)
        lines = []
        for ref, count in sorted(counts.items()):
            key = series_key(
                REGISTER_WRITES, {"site": self.site, "device": ref.device, "point": ref.point}
            )
            text = line(key, [("count", count)], at)
            if text:
                lines.append(text)
        return lines

    def kpis(self, figures: Sequence[Kpis]) -> list[str]:
        """Each period's point is stamped with the period's start: rewriting it as the period
        grows replaces it (same series and timestamp). Besides the KPIs, the backup fuel the
        heat reused saved (`<fuel>_avoided_kwh`: heat reused / the backup's efficiency)."""
        lines = []
        name, efficiency = self._fuel
        for kpi in figures:
            key = series_key(KPI, {"site": self.site, "period": kpi.period.value})
            fields = _present(
                [(k, v) for k, v in vars(kpi).items() if k not in ("period", "start")]
                + [(name, kpi.heat_reused_kwh / efficiency)]
            )
            text = line(key, fields, nanoseconds(kpi.start))
            if text:
                lines.append(text)
        return lines

    def site_config(self, setpoints: Mapping[str, float], now: datetime) -> list[str]:
        """What the site is and the band and setpoints in force (`setpoints`: the supervisor's,
        SI: outlet °C, tank_reserve a fraction), so that panels and alert rules compare each
        site with its own band."""
        fields = [*self._site_fields]
        if "outlet" in setpoints:
            fields.append(("outlet_setpoint_c", setpoints["outlet"]))
        if "tank_reserve" in setpoints:
            fields.append(("tank_reserve_pct", setpoints["tank_reserve"] * 100.0))
        text = line(series_key(SITE_CONFIG, {"site": self.site}), fields, nanoseconds(now))
        return [text] if text else []

    def alarm_counts(self, counts: Mapping[str, int], now: datetime) -> list[str]:
        """The alarms by state and priority now (`AlarmCounts.fields()`), for the fleet view."""
        fields = [(name, float(value)) for name, value in counts.items()]
        text = line(series_key(ALARM_COUNTS, {"site": self.site}), fields, nanoseconds(now))
        return [text] if text else []

    def capacity(self, fields: Sequence[tuple[str, FieldValue | None]], now: datetime) -> list[str]:
        """Where compute can go (capacity_feed.fields())."""
        text = line(series_key(CAPACITY, {"site": self.site}), _present(fields), nanoseconds(now))
        return [text] if text else []

    def event(self, event: Event) -> str:
        tags = {"site": self.site, "kind": event.kind, "name": event.name, "source": event.source}
        fields = [
            (k, v)
            for k, v in vars(event).items()
            if k not in ("at", "kind", "name", "source") and v != ""
        ]
        text = line(series_key(EVENT, tags), fields, nanoseconds(event.at))
        assert text is not None  # name and message are never empty
        return text

"""The local API's requests and answers. Values are in the units their names say (degc, kw, pct,
l_min, s) or, for a device's points and overrides, in the point's own map unit, given beside it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from controller.control.operator import ControlMode

User = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]
Required = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------- answers


class ErrorAnswer(Model):
    error: str  # one line: what and where


class CaissonView(Model):
    id: str
    initialised: bool  # read at least once: the controller writes to it
    plc_mode: str | None  # local, remote, local safe
    control_mode: ControlMode
    locked_out: bool  # the site file's lockout, or its own or the plant's maintenance
    interlocks: list[str]
    plc_trips: list[str] = Field(default_factory=list)  # trip bits of the PLC's interlock word
    running: bool
    setpoint_degc: float | None
    outlet_degc: float | None
    inlet_degc: float | None
    flow_l_min: float | None
    pump_pct: float | None  # commanded
    cap_kw: float | None  # commanded
    it_power_kw: float | None
    alarms: int  # annunciated (not normal, not shelved or suppressed)
    staged: bool = False  # staging runs it
    pump_standby: bool | None = None  # its PLC has stopped the pump on request
    inlet_setpoint_degc: float | None = None  # commanded to its loading unit
    run_hours: float | None = None  # staged on, over every run of the controller (rotation)
    outlet_estimated: bool = False  # the sensor reads frozen: outlet_degc is the heat balance's


class PlantView(Model):
    mode: str  # dispatch: heat, store, reject, shed, safe
    control_mode: ControlMode
    it_target_kw: float
    soc_pct: float | None
    load_kw: float | None
    dry_cooler_pct: float
    outlet_setpoint_degc: float | None = None  # in force (the reset within the band)
    return_limit_degc: float | None = None  # the dry cooler's, asked of the plant PLC
    day_peak_kw: float | None = None  # the highest load of the last 24 h (the tank is charged
    # for the next peak while it came near the caissons' capacity)
    # What an operator looks at first: the building's supply against its band, the weather, the
    # tank, and the day's heat so far (the site's local day; None where not measured)
    supply_degc: float | None = None
    supply_band_degc: tuple[float, float] | None = None
    outdoor_degc: float | None = None
    tank_top_degc: float | None = None
    tank_bottom_degc: float | None = None
    heat_today_kwh: float | None = None
    backup_today_kwh: float | None = None
    erf_today: float | None = None


class OverrideView(Model):
    point: str  # device.point
    value: float  # in `unit`
    unit: str
    user: str
    remaining_s: float  # plant seconds


class DeviceView(Model):
    id: str
    protocol: str
    health: str  # ok, suspect, failed
    consecutive_failures: int
    comm_errors: int
    write_failures: int


class AlarmCounts(Model):
    annunciated: int
    unacknowledged: int
    shelved: int
    suppressed: int
    out_of_service: int


class Status(Model):
    site: str
    site_id: str
    timezone: str  # the site's, for showing times
    at: datetime  # UTC
    read_only: bool
    cycles: int
    overruns: int
    setpoints: dict[str, float]  # by name, in the unit of `setpoint_units`
    setpoint_units: dict[str, str]
    plant: PlantView | None  # None before the first scan
    caissons: list[CaissonView]
    overrides: list[OverrideView]
    devices: list[DeviceView]
    alarms: AlarmCounts
    problems: list[str] = Field(default_factory=list)  # what is wrong, in words; [] when nothing


class PointView(Model):
    point: str  # device.point
    value: float | int | bool | str | None  # None: not valid
    unit: str
    quality: str  # good, stale, bad
    reason: str | None
    timestamp: datetime | None
    writable: bool
    description: str


class Points(Model):
    points: list[PointView]


class AlarmView(Model):
    alarm: str  # source.name
    source: str
    name: str
    priority: str
    state: str
    active: bool
    since: datetime | None
    message: str
    shelved_until: datetime | None
    shelve_reason: str
    first_out: bool
    suppressed_by: str = ""  # while suppressed: why (a plant mode, a lockout, its cause)


class Alarms(Model):
    alarms: list[AlarmView]


class Change(Model):
    """One thing an action changed, as journaled."""

    target: str
    before: str
    after: str


class ActionAnswer(Model):
    changes: list[Change]
    message: str


class KpiView(Model):
    period: str  # hour, day
    start: datetime
    closed: bool
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


class TrendPoint(Model):
    at: datetime  # UTC, start of the minute
    supply_degc: float | None
    delivered_kw: float | None
    it_power_kw: float | None


class Kpi(Model):
    periods: list[KpiView]  # the open periods, then the closed ones the daemon still holds
    trend: list[TrendPoint]  # minute averages since the daemon started (at most a week)
    band_degc: tuple[float, float]


class CapacityWindow(Model):
    """Means over a window ahead (controller/capacity.py)."""

    hours: float
    start: datetime
    demand_kw: float  # heat the site is expected to take
    heat_driven_kw: float  # IT power whose heat it uses in full (the tank's room included)
    ceiling_kw: float  # the most IT power it takes with its dry cooler


class CapacityStep(Model):
    start: datetime  # a quarter hour's start
    outdoor_degc: float  # as forecast
    demand_kw: float
    heat_driven_kw: float
    ceiling_kw: float


class Capacity(Model):
    """Where compute can go: what a fleet's job scheduler reads (README, "A fleet of sites")."""

    site_id: str
    at: datetime  # when worked out (once a minute)
    heat_driven_kw: float  # now: the IT power whose heat the site uses in full
    ceiling_kw: float  # now: the most IT power it takes, the dry cooler rejecting the rest
    available_kw: float  # the IT power of the caissons able to compute
    it_power_kw: float | None  # drawn now
    demand_kw: float  # heat the site takes now
    tank_room_kwh: float  # heat the buffer tank can still take
    outdoor_degc: float | None  # the forecast's starting point
    forecast: str  # persistence, forecast file or climate
    outlook: list[CapacityWindow]  # the next 1, 6 and 24 hours
    tonight: CapacityWindow  # 22:00-06:00 local: the coming night or the rest of this one
    steps: list[CapacityStep]  # 96 quarter hours from the present one


# ---------------------------------------------------------------- requests


class Operator(Model):
    user: User
    reason: Reason = ""


class Justified(Model):
    user: User
    reason: Required  # a change to how the plant runs says why


class AckRequest(Operator):
    alarms: Annotated[list[str], Field(min_length=1)]  # source.name, or a pattern (c2.*, *)


class ShelveRequest(Justified):
    alarm: str
    for_s: Annotated[float, Field(gt=0, le=86400)]  # a shelved alarm comes back within a day


class UnshelveRequest(Operator):
    alarm: str


class SetpointRequest(Justified):
    name: str
    value: float  # in the setpoint's unit (setpoint_units in the status)
    unit: str | None = None  # if given, must be that unit: a check against a slip of units


class OverrideRequest(Justified):
    point: str
    value: float  # in the point's map unit; booleans 0 or 1
    unit: str | None = None  # if given, must be the point's unit
    for_s: Annotated[float, Field(gt=0)]


class ReleaseRequest(Operator):
    point: str


class ModeRequest(Justified):
    target: str  # a caisson, or "plant"
    mode: ControlMode


class RetryRequest(Operator):
    device: str


class TripResetRequest(Justified):
    caisson: str

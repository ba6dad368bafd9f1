"""Site configuration (sites/*.yaml): the plant, its devices and the loads it serves.

The same file drives the controller (devices, setpoints) and the simulator (physical parameters).
Quantities carry units (see units.py). Cross-references (device → map, caisson → devices, caisson
→ type) are checked by the loader, which knows where the maps live and can name lines.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Final, Literal, Self

from pydantic import Field, model_validator

from controller.alarms.model import Priority
from controller.config.maps import FieldError, StrictModel
from controller.config.units import (
    Area,
    DataSize,
    Dimension,
    Duration,
    Energy,
    Fraction,
    HeatCapacity,
    Length,
    Power,
    Temperature,
    TemperatureDifference,
    ThermalConductance,
    ThermalResistance,
    Volume,
    VolumeFlow,
    parse_quantity,
    point_unit_factor,
)
from controller.water import VOLUMETRIC_HEAT

ID_PATTERN = r"^[a-z][a-z0-9_-]*$"
ENDPOINT_PATTERN = r"^opc\.tcp://[^\s]+$"
Identifier = Annotated[str, Field(pattern=ID_PATTERN)]


class SiteKind(StrEnum):
    RESIDENTIAL = "residential"
    POOL = "pool"
    WAREHOUSE = "warehouse"


class SiteInfo(StrictModel):
    name: str
    kind: SiteKind
    timezone: str = "UTC"
    # Short name that tags this site's data in a fleet's shared database; default: from `name`.
    id: Identifier | None = None

    @property
    def slug(self) -> str:
        """The site's id, or its name made into one ("Résidence X (demo)" → "r-sidence-x-demo")."""
        if self.id is not None:
            return self.id
        words = re.findall(r"[a-z0-9]+", self.name.lower())
        slug = "-".join(words)
        return slug if slug and slug[0].isalpha() else f"site-{slug}"


# ---------------------------------------------------------------- devices


class ModbusDevice(StrictModel):
    id: Identifier
    protocol: Literal["modbus"]
    map: str
    host: str
    port: Annotated[int, Field(ge=1, le=65535)] = 502
    unit_id: Annotated[int, Field(ge=0, le=255)] = 1
    timeout: Duration = 1.0
    max_connections: Annotated[int, Field(ge=1, le=16)] = 1
    request_gap: Duration = 0.0
    max_registers_per_read: Annotated[int, Field(ge=1, le=125)] | None = None  # None: the map's


class SecurityMode(StrEnum):
    SIGN = "Sign"
    SIGN_AND_ENCRYPT = "SignAndEncrypt"


class OpcUaSecurity(StrictModel):
    policy: Literal["Basic256Sha256"] = "Basic256Sha256"
    mode: SecurityMode = SecurityMode.SIGN_AND_ENCRYPT
    certificate: str  # client certificate (PEM or DER) path, relative to the site file
    private_key: str
    server_certificate: str  # the trusted server certificate


class OpcUaDevice(StrictModel):
    id: Identifier
    protocol: Literal["opcua"]
    map: str
    endpoint: Annotated[str, Field(pattern=ENDPOINT_PATTERN)]
    timeout: Duration = 2.0
    security: OpcUaSecurity | None = None


Device = Annotated[ModbusDevice | OpcUaDevice, Field(discriminator="protocol")]


# ---------------------------------------------------------------- caissons


class Chips(StrictModel):
    count: Annotated[int, Field(ge=1)]
    thermal_resistance: ThermalResistance  # chip to local water, per chip
    throttle: Temperature = 90.0  # chips throttle to stay at or below this
    leakage: Fraction = 0.02  # extra power per 10 K of chip temperature above 60 degC


class Pump(StrictModel):
    max_flow: VolumeFlow  # at 100 % speed (flow ∝ speed)
    min_speed: Fraction = 0.3  # the drive never runs slower while running
    power: Power  # electrical power at 100 % speed (∝ speed³)


class CaissonPlc(StrictModel):
    """The caisson PLC's own safety logic: what it does with or without a supervisor."""

    safe_pump_speed: Fraction = 0.9
    safe_cap: Power
    low_flow: VolumeFlow  # trip below this flow...
    low_flow_delay: Duration = 8.0  # ...sustained this long
    overtemp_warn: Temperature = 72.0
    overtemp_trip: Temperature = 78.0
    trip_reset_delay: Duration = 120.0  # a trip clears this long after its cause has gone
    lease_timeout: Duration = 10.0  # heartbeat silence before local safe mode
    # Proof of flow: IT power only once the flow has stayed above low_flow this long.
    flow_proof: Annotated[Duration, Field(gt=0)] = 5.0
    # Standby: asked to (`standby_request`), with its cap at 0 and its IT power below idle_power
    # (a share of nominal) for post_run, the PLC stops the pump; a check valve stops all flow.
    post_run: Annotated[Duration, Field(ge=0)] = 60.0
    idle_power: Fraction = 0.02

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.overtemp_warn >= self.overtemp_trip:
            raise FieldError("overtemp_warn must be below overtemp_trip", ("overtemp_warn",))
        return self


TRIP_MARGIN: Final = 3.0  # K: the hottest return leaves caissons this far below their trip


class LoadingUnit(StrictModel):
    """A three-way mixing valve on the caisson's inlet: it recirculates the caisson's own outlet
    to its inlet, driven by the PLC's loop to an inlet temperature setpoint, so that the caisson
    reaches its outlet temperature from a cold return at any power and joins the header hot."""

    inlet_setpoint: Temperature = 55.0  # the PLC's own, when the supervisor's lease lapses
    stroke_time: Annotated[Duration, Field(gt=0)] = 60.0  # valve from closed to open


class CaissonType(StrictModel):
    it_power: Power  # nominal IT power
    heat_capture: Fraction = 0.94  # share of IT power leaving in the water
    thermal_capacity: HeatCapacity
    chips: Chips
    pump: Pump
    plc: CaissonPlc
    loading_unit: LoadingUnit | None = None

    def full_flow_rise(self) -> float:
        """K the water rises through the caisson at nominal power and the pump's full flow."""
        return self.heat_capture * self.it_power / (VOLUMETRIC_HEAT * self.pump.max_flow)

    @model_validator(mode="after")
    def _pump_can_run_above_low_flow(self) -> Self:
        if self.pump.min_speed * self.pump.max_flow <= self.plc.low_flow:
            raise FieldError(
                "plc.low_flow must be below the flow at the pump's minimum speed, "
                "or the PLC trips whenever the pump runs slowly",
                ("plc", "low_flow"),
            )
        if self.plc.safe_cap > self.it_power:
            raise FieldError("plc.safe_cap exceeds it_power", ("plc", "safe_cap"))
        return self


class Pipe(StrictModel):
    length: Length
    inner_diameter: Length

    @property
    def volume(self) -> float:
        """m³."""
        return 3.141592653589793 / 4 * self.inner_diameter**2 * self.length


class CaissonPipes(StrictModel):
    supply: Pipe  # caisson outlet → buffer tank
    ret: Pipe = Field(alias="return")  # buffer tank → caisson inlet


class Caisson(StrictModel):
    id: Identifier
    type: str  # a key of caisson_types
    skid: str  # a Modbus device id (caisson skid map)
    compute: str  # an OPC-UA device id (compute manager map)
    heat_meter: str | None = None  # a Modbus device id (heat meter map) metering this caisson
    pipes: CaissonPipes


# ---------------------------------------------------------------- plant


class BufferTank(StrictModel):
    volume: Volume
    layers: Annotated[int, Field(ge=4, le=50)] = 6
    loss_coefficient: ThermalConductance = 4.0  # UA to the plant room
    initial_temperature: Temperature = 55.0


class HeatExchanger(StrictModel):
    approach: TemperatureDifference = 3.0
    max_power: Power


class DryCooler(StrictModel):
    capacity: Power  # at design_difference between water and outdoor air, full fan
    design_difference: TemperatureDifference = 30.0
    fan_power: Power
    # The plant PLC cools the caissons' return above this limit: its own default, which the
    # supervisor may move as a lease (`return_limit_cmd`) up to return_limit_max, the hottest
    # return the caissons take at full flow and nominal power while staying 3 K below their trip
    # (the PLC enforces it; check-config checks it).
    return_limit: Temperature = 55.0
    return_limit_max: Temperature | None = None  # None: the default is also the most

    @property
    def hard_limit(self) -> float:
        return self.return_limit if self.return_limit_max is None else self.return_limit_max

    @model_validator(mode="after")
    def _default_within_band(self) -> Self:
        if self.return_limit > self.hard_limit:
            raise FieldError("must not exceed return_limit_max", ("return_limit",))
        return self


class BackupBoiler(StrictModel):
    fuel: Literal["gas", "oil", "district-heat", "electric"] = "gas"
    capacity: Power


class Plant(StrictModel):
    skid: str  # Modbus device id (plant skid map)
    heat_meter: str  # Modbus device id (heat meter map)
    room_temperature: Temperature = 20.0  # plant room, for tank losses
    buffer_tank: BufferTank
    heat_exchanger: HeatExchanger
    dry_cooler: DryCooler
    backup_boiler: BackupBoiler


# ---------------------------------------------------------------- loads


class SpaceHeating(StrictModel):
    """Radiator heating on a heating curve (EN 442 characteristic)."""

    design_load: Power
    design_outdoor: Temperature = -10.0
    room: Temperature = 20.0
    heating_limit: Temperature = 12.0  # no load above this outdoor temperature
    design_supply: Temperature = 70.0
    design_return: Temperature = 55.0
    radiator_exponent: float = 1.3

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not self.design_outdoor < self.heating_limit <= self.room:
            raise FieldError("need design_outdoor < heating_limit <= room", ("heating_limit",))
        if not self.room < self.design_return < self.design_supply:
            raise FieldError("need room < design_return < design_supply", ("design_return",))
        return self


class HotWaterProfile(StrEnum):
    RESIDENTIAL = "residential"  # morning and evening peaks
    POOL = "pool"  # showers through opening hours
    FLAT = "flat"


class HotWater(StrictModel):
    daily_energy: Energy
    profile: HotWaterProfile = HotWaterProfile.RESIDENTIAL
    supply_min: Temperature = 60.0  # anti-legionella storage temperature
    return_temperature: Temperature = 35.0

    @model_validator(mode="after")
    def _return_below_supply(self) -> Self:
        if self.return_temperature >= self.supply_min:
            raise FieldError("must be below supply_min", ("return_temperature",))
        return self


HourOfDay = Annotated[int, Field(ge=0, le=24)]


class Pool(StrictModel):
    basin_volume: Volume
    surface: Area
    target: Temperature = 28.0
    hall_air: Temperature = 30.0
    evaporation_loss: Power  # at target, uncovered
    cover_factor: Fraction = 0.3  # share of the loss left under the night cover
    open_hours: tuple[HourOfDay, HourOfDay] = (7, 21)  # opening and closing hour
    makeup_water: Temperature = 12.0
    makeup_daily: Volume  # fresh water to replace evaporation and backwash
    heat_exchanger_capacity: Power
    supply: Temperature = 50.0  # needed primary supply temperature
    return_temperature: Temperature = 35.0

    @model_validator(mode="after")
    def _opens_before_closing(self) -> Self:
        if self.open_hours[0] >= self.open_hours[1]:
            raise FieldError("open_hours: the opening hour must come first", ("open_hours",))
        return self

    @model_validator(mode="after")
    def _return_below_supply(self) -> Self:
        if self.return_temperature >= self.supply:
            raise FieldError("must be below supply", ("return_temperature",))
        return self


class Occupancy(StrictModel):
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]]
    start_hour: Annotated[int, Field(ge=0, le=23)]
    end_hour: Annotated[int, Field(ge=1, le=24)]

    @model_validator(mode="after")
    def _starts_before_end(self) -> Self:
        if self.start_hour >= self.end_hour:
            raise FieldError("start_hour must be before end_hour", ("start_hour",))
        return self


class Warehouse(StrictModel):
    """Air heaters on a low setpoint with weekly occupancy."""

    design_load: Power  # at design_outdoor while occupied
    design_outdoor: Temperature = -10.0
    occupied_setpoint: Temperature = 16.0
    unoccupied_setpoint: Temperature = 10.0
    internal_gains: TemperatureDifference = 4.0  # lights, people, refrigeration waste heat
    occupancy: Occupancy
    design_supply: Temperature = 55.0
    design_return: Temperature = 40.0


class Loads(StrictModel):
    space_heating: SpaceHeating | None = None
    hot_water: HotWater | None = None
    pool: Pool | None = None
    warehouse: Warehouse | None = None


class Climate(StrictModel):
    """Outdoor temperature profile parameters of the site's location."""

    annual_mean: Temperature
    seasonal_amplitude: TemperatureDifference
    daily_amplitude: TemperatureDifference
    coldest_day: Annotated[int, Field(ge=1, le=366)] = 15  # day of year


class Setpoints(StrictModel):
    outlet: Temperature = 65.0
    supply_low: Temperature = 60.0
    supply_high: Temperature = 70.0

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not self.supply_low < self.outlet < self.supply_high:
            raise FieldError("need supply_low < outlet < supply_high", ("outlet",))
        return self


class Policy(StrEnum):
    HEAT_PRIORITY = "heat-priority"  # compute follows the heat the site takes (and its tank)
    COMPUTE_PRIORITY = "compute-priority"  # compute runs flat out; surplus heat is rejected


class Staging(StrictModel):
    """When caissons start and stop (ASHRAE Guideline 36's boiler-plant staging): one more when
    the wanted IT power has stayed above 90 % of the running caissons' for `up_delay`, one fewer
    when it has fitted 80 % of one caisson fewer's for `down_delay` (the last one once nothing
    has been wanted for `idle_delay`); each runs at least `min_run` and rests at least `min_off`;
    a resting caisson `rotate_after` behind a running one in run time takes over from it."""

    up_delay: Annotated[Duration, Field(ge=0)] = 300.0
    down_delay: Annotated[Duration, Field(ge=0)] = 600.0
    idle_delay: Annotated[Duration, Field(ge=0)] = 120.0
    min_run: Annotated[Duration, Field(ge=0)] = 900.0
    min_off: Annotated[Duration, Field(ge=0)] = 300.0
    rotate_after: Annotated[Duration, Field(gt=0)] = 12 * 3600.0


class Control(StrictModel):
    """How the supervisory controller runs this site."""

    policy: Policy = Policy.HEAT_PRIORITY
    period: Annotated[Duration, Field(gt=0)] = 1.0  # scan cycle
    tank_reserve: Fraction = 0.6  # state of charge held in HEAT mode
    setpoint_ramp: TemperatureDifference = 1.0  # K per minute an outlet setpoint may move
    chip_margin: TemperatureDifference = 3.0  # K kept between the hottest chip and throttling
    lockout: tuple[Identifier, ...] = ()  # caissons in maintenance lockout: capped at 0, never run
    staging: Staging = Staging()


# ---------------------------------------------------------------- historian

URL_PATTERN = r"^https?://[^\s/]+(/[^\s]*)?$"


class SecretSource(StrictModel):
    """Where a secret comes from: an environment variable or a file (the file wins when both
    are given). The site file never holds the secret itself."""

    env: str | None = None
    file: str | None = None  # relative to the site file

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if self.env is None and self.file is None:
            raise FieldError("give `env` (a variable name) or `file` (a path)", ())
        return self


class InfluxV2Target(StrictModel):
    """InfluxDB 2.x, 3.x, Cloud or 1.8+: `/api/v2/write` through influxdb-client."""

    api: Literal["v2"]
    url: Annotated[str, Field(pattern=URL_PATTERN)]
    org: str
    bucket: Annotated[str, Field(min_length=1)]
    token: SecretSource | None = None
    timeout: Annotated[Duration, Field(gt=0)] = 10.0


class InfluxV1Target(StrictModel):
    """InfluxDB 1.x: the `/write?db=` endpoint, with optional user and password."""

    api: Literal["v1"]
    url: Annotated[str, Field(pattern=URL_PATTERN)]
    database: Annotated[str, Field(min_length=1)]
    retention_policy: str | None = None
    username: str | None = None
    password: SecretSource | None = None
    timeout: Annotated[Duration, Field(gt=0)] = 10.0


HistorianTarget = Annotated[InfluxV1Target | InfluxV2Target, Field(discriminator="api")]


class Historian(StrictModel):
    """Where the controller's data goes: a durable spool on disk, then InfluxDB (if a target is
    given; without one the spool keeps the newest data, up to its limit, for export)."""

    spool: str | None = None  # spool file, relative to the site file; default: the state folder
    spool_limit: Annotated[DataSize, Field(ge=1e6)] = 256e6  # compressed bytes kept at most
    batch_points: Annotated[int, Field(ge=1, le=100_000)] = 5000
    batch_age: Annotated[Duration, Field(gt=0)] = 5.0  # a smaller batch is sent after this age
    target: HistorianTarget | None = None


# ---------------------------------------------------------------- capacity


class CapacitySettings(StrictModel):
    """How the site works out the compute it can take ahead (controller/capacity.py)."""

    # A weather forecast file (rows `timestamp,temperature`, relative to the site file), kept
    # up to date by another job; without it (or where it has no rows) the outdoor temperature is
    # forecast by persistence.
    forecast: str | None = None


# ---------------------------------------------------------------- local API


class Api(StrictModel):
    """Where the daemon serves `boilerctl`: HTTP on a loopback address, or a Unix socket. The
    address it binds is written to `<state directory>/<site id>.api` (port 0: any free port), the
    token to `<site id>.token` (mode 0600, made at first start)."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 0
    socket: str | None = None  # a Unix socket instead of HTTP over TCP (relative to the site file)


# ---------------------------------------------------------------- alarms

# What suppresses an alarm by design: its caisson in maintenance lockout or standing by (its pump
# stopped on request: no flow by design), or a plant mode.
Suppression = Literal["lockout", "standby", "reject", "shed", "safe", "store"]
CAISSON_SUPPRESSIONS: Final = ("lockout", "standby")
# Where a caisson alarm reads: the role of one of the caisson's devices.
CAISSON_DEVICES: Final = ("skid", "compute", "heat_meter")
# A plant alarm reads the plant's skid or heat meter, or any device by id.
PLANT_DEVICES: Final = ("plant_skid", "heat_meter")
# How long the consequences of a cause stay suppressed after the cause clears: a PLC resets its
# trip a couple of minutes after the cause has gone (trip_reset_delay), and the flow and the
# supervisor's interlocks then take a little longer to settle.
DEFAULT_SUPPRESSION_RELEASE: Final = 300.0  # s
_ALARM_QUANTITY: Final = re.compile(
    r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(\S.*?)?\s*$"
)


# The names of the alarms the controller raises itself (controller/alarms/system.py and
# sensor_checks.py; a test keeps the two in step): a site alarm of such a name would clash.
CONTROLLER_ALARM_SUFFIXES: Final = ("_comm_lost", "_write_failed", "_sensor_stuck")
CONTROLLER_ALARM_NAMES: Final = frozenset(
    {"inputs_stale", "interlock_active", "sensor_mismatch", "cycle_overrun", "flash_write_budget"}
)


def is_controller_alarm_name(name: str) -> bool:
    return (
        name in CONTROLLER_ALARM_NAMES
        or name.endswith(CONTROLLER_ALARM_SUFFIXES)
        or name.startswith("historian_")
    )


class AlarmSpec(StrictModel):
    """One alarm definition of the site file; a caisson alarm is raised per caisson.

    Thresholds (`limit`, `deadband`) are converted to the unit of the point they watch, as its map
    declares it, so they compare with its samples as they are. They are written as quantities in
    the point's dimension: "72 degC" for a temperature (and a deadband or a deviation in "K"),
    "11 L/min" or "0.66 m3/h" for a flow in L/min, "10 %" for a speed in %; a rate limit per time,
    "2 K/min". A bare number is only for a point without a physical unit (counts, rpm; a bare rate
    is per second), and 0 is 0 in any unit. The loader checks them against the point
    (`thresholds`).
    """

    name: Identifier
    scope: Literal["caisson", "plant"]
    device: str  # caisson: skid, compute, heat_meter; plant: plant_skid, heat_meter, a device id
    point: str  # a point id of that device's map
    kind: Literal["hi", "hihi", "lo", "lolo", "discrete", "deviation", "rate"]
    limit: float | str | None = None  # not for discrete
    deadband: float | str = 0.0  # on the way back: hi, hihi, lo, lolo and deviation
    on_delay: Annotated[Duration, Field(ge=0)] = 0.0  # the condition must hold this long
    off_delay: Annotated[Duration, Field(ge=0)] = 0.0  # ...and be gone this long to clear
    alarm_value: bool = True  # discrete: the value that raises the alarm
    setpoint: str | None = None  # deviation: a point of the same device, in the same unit
    window: Annotated[Duration, Field(gt=0)] | None = None  # rate: the span the rate is taken over
    priority: Priority
    latched: bool = False  # stays raised after its condition clears until acknowledged
    message: Annotated[str, Field(min_length=1)]  # what is wrong; the alarm's id says where
    suppressed_in: list[Suppression] = Field(default_factory=list)
    # Designed suppression by cause (ISA-18.2): while this alarm's condition is active, and for
    # `suppression_release` after it clears, the alarms named here are suppressed at the same
    # place (the same caisson, or the plant): they are its consequences. Site alarms of the same
    # scope, or the controller's own (interlock_active, inputs_stale...).
    suppresses: list[Identifier] = Field(default_factory=list)
    suppression_release: Annotated[Duration, Field(ge=0)] = DEFAULT_SUPPRESSION_RELEASE

    @model_validator(mode="after")
    def _consequences(self) -> Self:
        if self.name in self.suppresses:
            index = self.suppresses.index(self.name)
            raise FieldError("an alarm cannot suppress itself", ("suppresses", index))
        for index, name in enumerate(self.suppresses):
            if name in self.suppresses[:index]:
                raise FieldError(f"{name!r} is listed twice", ("suppresses", index))
        if "suppression_release" in self.model_fields_set and not self.suppresses:
            raise FieldError(
                "suppression_release is for an alarm that suppresses others (suppresses: [...])",
                ("suppression_release",),
            )
        return self

    @model_validator(mode="after")
    def _fits_kind(self) -> Self:
        if is_controller_alarm_name(self.name):
            raise FieldError(
                f"{self.name!r} is the name of an alarm the controller raises itself "
                "(names ending in _comm_lost, _write_failed, _sensor_stuck, or inputs_stale, "
                "interlock_active, sensor_mismatch...): choose another",
                ("name",),
            )
        kind = self.kind
        given = self.model_fields_set
        if kind == "discrete":
            for name in ("limit", "deadband", "setpoint", "window"):
                if name in given:
                    raise FieldError(f"a discrete alarm has no {name}", (name,))
        elif self.limit is None:
            raise FieldError(f"a {kind} alarm needs a limit", ("limit",))
        if "alarm_value" in given and kind != "discrete":
            raise FieldError("alarm_value is for discrete alarms", ("alarm_value",))
        if kind == "deviation" and self.setpoint is None:
            raise FieldError(
                "a deviation alarm needs a setpoint: the id of the point it deviates from",
                ("setpoint",),
            )
        if kind != "deviation" and self.setpoint is not None:
            raise FieldError("setpoint is for deviation alarms", ("setpoint",))
        if kind == "rate" and self.window is None:
            raise FieldError("a rate alarm needs a window, e.g. window: 1 min", ("window",))
        if kind != "rate" and self.window is not None:
            raise FieldError("window is for rate alarms", ("window",))
        if kind == "rate" and "deadband" in given:
            raise FieldError("a rate alarm has no deadband: use off_delay", ("deadband",))
        return self

    @model_validator(mode="after")
    def _fits_scope(self) -> Self:
        if self.scope == "caisson" and self.device not in CAISSON_DEVICES:
            raise FieldError(
                f"a caisson alarm reads one of the caisson's devices: write device: "
                f"{', '.join(CAISSON_DEVICES)}, not {self.device!r}",
                ("device",),
            )
        for name in CAISSON_SUPPRESSIONS:
            if self.scope == "plant" and name in self.suppressed_in:
                raise FieldError(
                    f"{name} suppresses caisson alarms; a plant alarm is suppressed by plant modes",
                    ("suppressed_in", self.suppressed_in.index(name)),
                )
        return self

    def places(self, config: SiteConfig) -> list[tuple[str | None, str]]:
        """(caisson id or None for the plant, device id) of each instance of this alarm. A caisson
        without the device (a heat meter) has none."""
        if self.scope == "plant":
            device = {"plant_skid": config.plant.skid, "heat_meter": config.plant.heat_meter}
            return [(None, device.get(self.device, self.device))]
        places: list[tuple[str | None, str]] = []
        for caisson in config.caissons:
            device_id: str | None = getattr(caisson, self.device)
            if device_id is not None:
                places.append((caisson.id, device_id))
        return places

    def thresholds(self, unit: str) -> tuple[float, float]:
        """(limit, deadband) in the point's `unit` (the limit of a rate alarm per second); (0, 0)
        for a discrete alarm. FieldError names the field that does not fit the unit."""
        if self.kind == "discrete" or self.limit is None:
            return 0.0, 0.0
        difference = self.kind in ("deviation", "rate")
        limit = _in_unit(self.limit, unit, "limit", difference, per_time=self.kind == "rate")
        deadband = _in_unit(self.deadband, unit, "deadband", difference=True, per_time=False)
        if deadband < 0:
            raise FieldError("the deadband must not be negative", ("deadband",))
        if difference and limit <= 0:
            raise FieldError(f"the limit of a {self.kind} alarm must be positive", ("limit",))
        if self.kind == "deviation" and deadband >= limit:
            raise FieldError("the deadband must be below the limit", ("deadband",))
        return limit, deadband


def _point_dimension(unit: str) -> Dimension | None:
    """The dimension of a point's unit; None for units without one (1, count, rpm, bool)."""
    for dimension in Dimension:
        try:
            parse_quantity(f"1 {unit}", dimension)
        except ValueError:
            continue
        return dimension
    return None


def _in_unit(written: float | str, unit: str, name: str, difference: bool, per_time: bool) -> float:
    """`written` (a threshold of the site file) in the point's `unit`; per second if `per_time`.
    A bare number is taken in the point's unit (per second for a rate) only where that unit has
    no dimension, or when it is 0."""
    dimension = _point_dimension(unit)
    own = unit
    if difference and dimension is Dimension.TEMPERATURE:
        dimension, own = Dimension.TEMPERATURE_DIFFERENCE, "K"
    example = f"{own}/min" if per_time else own
    match = _ALARM_QUANTITY.match(str(written))
    if match is None:
        raise FieldError(f"expected a quantity like '5 {example}', got {written!r}", (name,))
    number, written_unit = float(match.group(1)), match.group(2)
    if written_unit is None:
        if number == 0 or dimension is None:
            return number
        raise FieldError(
            f"the unit is missing: the point is in {unit}, write e.g. '{number:g} {example}'",
            (name,),
        )
    per = 1.0
    if per_time:
        written_unit, _, time_unit = written_unit.rpartition("/")
        try:
            per = parse_quantity(f"1 {time_unit}", Dimension.DURATION)
        except ValueError:
            raise FieldError(
                f"expected a rate like '{number:g} {example}', got {written!r}", (name,)
            ) from None
    if dimension is None:
        if written_unit != unit:
            raise FieldError(f"the point is in {unit}: write '{number:g} {example}'", (name,))
        return number / per
    try:
        si = parse_quantity(f"{number!r} {written_unit}", dimension)
    except ValueError:
        raise FieldError(
            f"the point is in {unit}: write a {dimension} like '{number:g} {example}', "
            f"got {written!r}",
            (name,),
        ) from None
    return si / point_unit_factor(unit) / per


class SiteConfig(StrictModel):
    site: SiteInfo
    maps_dir: str = "../plc_maps"  # relative to the site file
    devices: list[Device]
    caisson_types: dict[Identifier, CaissonType]
    caissons: Annotated[list[Caisson], Field(min_length=1)]
    plant: Plant
    loads: Loads
    climate: Climate
    setpoints: Setpoints = Setpoints()
    control: Control = Control()
    historian: Historian = Historian()
    api: Api = Api()
    capacity: CapacitySettings = CapacitySettings()
    alarms: list[AlarmSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _lockout_names_caissons(self) -> Self:
        known = {c.id for c in self.caissons}
        for index, name in enumerate(self.control.lockout):
            if name not in known:
                raise FieldError(f"no caisson {name!r} to lock out", ("control", "lockout", index))
        return self

    @model_validator(mode="after")
    def _loads_fit_kind(self) -> Self:
        required = {
            SiteKind.RESIDENTIAL: "space_heating",
            SiteKind.POOL: "pool",
            SiteKind.WAREHOUSE: "warehouse",
        }[self.site.kind]
        if getattr(self.loads, required) is None:
            raise FieldError(f"a {self.site.kind} site needs loads.{required}", ("loads",))
        return self

    @model_validator(mode="after")
    def _caissons_take_the_hottest_return(self) -> Self:
        """At the dry cooler's hard return limit, every caisson at full flow and nominal power
        stays TRIP_MARGIN below its PLC's over-temperature trip: the limit is the hottest return
        the caissons take whatever a supervisor asks of the plant PLC."""
        cooler = self.plant.dry_cooler
        hottest = cooler.hard_limit
        field = "return_limit_max" if cooler.return_limit_max is not None else "return_limit"
        for name, kind in self.caisson_types.items():
            outlet = hottest + kind.full_flow_rise()
            if outlet > kind.plc.overtemp_trip - TRIP_MARGIN:
                field = (
                    "return_limit_max" if self.plant.dry_cooler.return_limit_max else "return_limit"
                )
                raise FieldError(
                    f"caisson type {name!r} at full flow and nominal power would leave a "
                    f"{hottest:g} degC return at {outlet:.1f} degC, less than {TRIP_MARGIN:g} K "
                    f"below its overtemp_trip ({kind.plc.overtemp_trip:g} degC): lower it",
                    ("plant", "dry_cooler", field),
                )
        return self

    def device(self, device_id: str) -> ModbusDevice | OpcUaDevice:
        for device in self.devices:
            if device.id == device_id:
                return device
        raise KeyError(device_id)

    def caisson_type(self, caisson: Caisson) -> CaissonType:
        return self.caisson_types[caisson.type]

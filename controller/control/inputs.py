"""What the controllers read of a process-image snapshot: SI values, None when not usable.

A value is usable only when its sample is GOOD (DESIGN.md: control treats STALE like BAD). Points
are named by their role (config/roles.py), so any map that plays the role works, in any unit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from controller.config.loader import LoadedSite
from controller.config.roles import CaissonSkidPoint as Skid
from controller.config.roles import ComputeManagerPoint as Compute
from controller.config.roles import PlantSkidPoint as PlantPoint
from controller.config.units import point_unit_factor
from controller.fieldbus.image import PointRef, Sample


@dataclass(frozen=True)
class CaissonInputs:
    inlet: float | None  # °C
    outlet: float | None  # °C
    flow: float | None  # m³/s
    pump_speed: float | None  # fraction, the drive's feedback
    it_power: float | None  # W, as the skid meters it
    pump_fault: bool | None
    leak: bool | None
    interlocks: int | None  # the PLC's interlock word
    plc_mode: int | None  # 0 local, 1 remote, 2 local safe
    chip_temp: float | None  # °C, hottest chip
    available_power: float | None  # W the jobs could use
    # The command registers as the devices hold them (start-up reads them back: bumpless).
    pump_speed_cmd: float | None  # fraction
    it_cap_cmd: float | None  # W
    power_cap: float | None  # W, the compute manager's
    lease_timeout: float | None  # s
    # The pump sequence (the PLC's status word) and the loading unit.
    standby: bool | None = None  # the pump is stopped on request
    flow_proven: bool | None = None  # IT power allowed
    standby_request: bool | None = None  # the coil as the PLC holds it
    inlet_setpoint: float | None = None  # °C, the register as the PLC holds it
    mixing_valve: float | None = None  # share of the pump's flow drawn from the header

    @property
    def critical_ok(self) -> bool:
        """The inputs without which the caisson cannot be controlled are all usable."""
        return None not in (self.inlet, self.outlet, self.flow, self.leak, self.interlocks)


@dataclass(frozen=True)
class PlantInputs:
    tank: tuple[float | None, ...]  # °C, top to bottom
    outdoor: float | None
    building_supply: float | None
    building_return: float | None
    building_flow: float | None  # m³/s
    supply: float | None  # plant supply header (caissons' mixed outlet)
    ret: float | None  # plant return header (caissons' inlet side)
    backup_heat: float | None  # W
    return_limit: float | None = None  # °C, the dry cooler's limit in force
    return_limit_cmd: float | None = None  # °C, the register as the PLC holds it


@dataclass(frozen=True)
class Inputs:
    caissons: tuple[CaissonInputs, ...]
    plant: PlantInputs


SKID_READ: tuple[Skid, ...] = (
    Skid.INLET_TEMP,
    Skid.OUTLET_TEMP,
    Skid.FLOW,
    Skid.PUMP_SPEED_FEEDBACK,
    Skid.IT_POWER,
    Skid.PUMP_FAULT,
    Skid.LEAK,
    Skid.INTERLOCKS,
    Skid.PLC_MODE,
    Skid.PUMP_SPEED_CMD,
    Skid.IT_CAP_CMD,
    Skid.LEASE_TIMEOUT,
    Skid.STANDBY,
    Skid.FLOW_PROVEN,
    Skid.STANDBY_REQUEST,
    Skid.INLET_SETPOINT,
    Skid.MIXING_VALVE,
)
COMPUTE_READ: tuple[Compute, ...] = (
    Compute.CHIP_TEMP_MAX,
    Compute.AVAILABLE_POWER,
    Compute.POWER_CAP,
)
TANK: tuple[PlantPoint, ...] = (
    PlantPoint.TANK_TEMP_TOP,
    PlantPoint.TANK_TEMP_UPPER,
    PlantPoint.TANK_TEMP_LOWER,
    PlantPoint.TANK_TEMP_BOTTOM,
)
PLANT_READ: tuple[PlantPoint, ...] = (
    *TANK,
    PlantPoint.OUTDOOR_TEMP,
    PlantPoint.BUILDING_SUPPLY_TEMP,
    PlantPoint.BUILDING_RETURN_TEMP,
    PlantPoint.BUILDING_FLOW,
    PlantPoint.PLANT_SUPPLY_TEMP,
    PlantPoint.PLANT_RETURN_TEMP,
    PlantPoint.BACKUP_HEAT,
    PlantPoint.RETURN_LIMIT,
    PlantPoint.RETURN_LIMIT_CMD,
)


class InputReader:
    """Reads a site's inputs from snapshots; built once (unit factors looked up here)."""

    def __init__(self, site: LoadedSite) -> None:
        self._factors: dict[PointRef, float] = {}
        config = site.config
        for device in config.devices:
            for point in site.device_map(device.id).points:
                self._factors[PointRef(device.id, point.id)] = point_unit_factor(point.unit)
        self._caissons = [(c.skid, c.compute) for c in config.caissons]
        self._plant = config.plant.skid

    @property
    def refs(self) -> frozenset[PointRef]:
        """Every point this reader looks at (an in-process plant needs to produce only these)."""
        refs = {PointRef(self._plant, p) for p in PLANT_READ}
        for skid, compute in self._caissons:
            refs.update(PointRef(skid, p) for p in SKID_READ)
            refs.update(PointRef(compute, p) for p in COMPUTE_READ)
        return frozenset(refs)

    def read(self, snapshot: Mapping[PointRef, Sample]) -> Inputs:
        def number(device: str, point: str) -> float | None:
            ref = PointRef(device, point)
            sample = snapshot.get(ref)
            if sample is None or not sample.usable:
                return None
            value = sample.value
            if not isinstance(value, int | float):
                return None
            return float(value) * self._factors[ref]

        def flag(device: str, point: str) -> bool | None:
            sample = snapshot.get(PointRef(device, point))
            if sample is None or not sample.usable:
                return None
            return bool(sample.value)

        def integer(device: str, point: str) -> int | None:
            value = number(device, point)
            return None if value is None else round(value)

        caissons = tuple(
            CaissonInputs(
                inlet=number(skid, Skid.INLET_TEMP),
                outlet=number(skid, Skid.OUTLET_TEMP),
                flow=number(skid, Skid.FLOW),
                pump_speed=number(skid, Skid.PUMP_SPEED_FEEDBACK),
                it_power=number(skid, Skid.IT_POWER),
                pump_fault=flag(skid, Skid.PUMP_FAULT),
                leak=flag(skid, Skid.LEAK),
                interlocks=integer(skid, Skid.INTERLOCKS),
                plc_mode=integer(skid, Skid.PLC_MODE),
                chip_temp=number(compute, Compute.CHIP_TEMP_MAX),
                available_power=number(compute, Compute.AVAILABLE_POWER),
                pump_speed_cmd=number(skid, Skid.PUMP_SPEED_CMD),
                it_cap_cmd=number(skid, Skid.IT_CAP_CMD),
                power_cap=number(compute, Compute.POWER_CAP),
                lease_timeout=number(skid, Skid.LEASE_TIMEOUT),
                standby=flag(skid, Skid.STANDBY),
                flow_proven=flag(skid, Skid.FLOW_PROVEN),
                standby_request=flag(skid, Skid.STANDBY_REQUEST),
                inlet_setpoint=number(skid, Skid.INLET_SETPOINT),
                mixing_valve=number(skid, Skid.MIXING_VALVE),
            )
            for skid, compute in self._caissons
        )
        p = self._plant
        plant = PlantInputs(
            tank=tuple(number(p, point) for point in TANK),
            outdoor=number(p, PlantPoint.OUTDOOR_TEMP),
            building_supply=number(p, PlantPoint.BUILDING_SUPPLY_TEMP),
            building_return=number(p, PlantPoint.BUILDING_RETURN_TEMP),
            building_flow=number(p, PlantPoint.BUILDING_FLOW),
            supply=number(p, PlantPoint.PLANT_SUPPLY_TEMP),
            ret=number(p, PlantPoint.PLANT_RETURN_TEMP),
            backup_heat=number(p, PlantPoint.BACKUP_HEAT),
            return_limit=number(p, PlantPoint.RETURN_LIMIT),
            return_limit_cmd=number(p, PlantPoint.RETURN_LIMIT_CMD),
        )
        return Inputs(caissons, plant)

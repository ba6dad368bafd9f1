"""The points the controller reads and writes on each kind of field device, by id.

A device map may hold more points (vendor extras) but never fewer: the loader refuses a site whose
device lacks a point of the role it plays, so the controller can rely on these ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal


class CaissonSkidPoint(StrEnum):
    INLET_TEMP = "inlet_temp"
    OUTLET_TEMP = "outlet_temp"
    FLOW = "flow"
    PUMP_SPEED_CMD = "pump_speed_cmd"
    PUMP_SPEED_FEEDBACK = "pump_speed_feedback"
    PUMP_STATUS = "pump_status"
    PUMP_RUNNING = "pump_running"
    PUMP_FAULT = "pump_fault"
    LOOP_PRESSURE = "loop_pressure"
    LEAK = "leak"
    IT_POWER = "it_power"
    IT_CAP_CMD = "it_cap_cmd"
    HEARTBEAT = "heartbeat"
    LEASE_TIMEOUT = "lease_timeout"
    PLC_MODE = "plc_mode"
    REMOTE_REQUEST = "remote_request"
    TRIP_RESET = "trip_reset"
    INTERLOCKS = "interlocks"
    LOW_FLOW_TRIP = "low_flow_trip"
    OVERTEMP_WARN = "overtemp_warn"
    OVERTEMP_TRIP = "overtemp_trip"
    LEAK_TRIP = "leak_trip"
    PUMP_FAULT_TRIP = "pump_fault_trip"
    LOCAL_SAFE = "local_safe"
    STANDBY_REQUEST = "standby_request"
    STANDBY = "standby"
    FLOW_PROVEN = "flow_proven"
    INLET_SETPOINT = "inlet_setpoint"
    MIXING_VALVE = "mixing_valve"


class ComputeManagerPoint(StrEnum):
    IT_POWER = "it_power"
    POWER_CAP = "power_cap"
    JOBS_QUEUED = "jobs_queued"
    JOBS_RUNNING = "jobs_running"
    CHIP_TEMP_MAX = "chip_temp_max"
    THROTTLING = "throttling"
    AVAILABLE_POWER = "available_power"


class HeatMeterPoint(StrEnum):
    FLOW = "flow"
    POWER = "power"
    FORWARD_TEMP = "forward_temp"
    RETURN_TEMP = "return_temp"
    ENERGY = "energy"
    VOLUME = "volume"


class PlantSkidPoint(StrEnum):
    TANK_TEMP_TOP = "tank_temp_top"
    TANK_TEMP_UPPER = "tank_temp_upper"
    TANK_TEMP_LOWER = "tank_temp_lower"
    TANK_TEMP_BOTTOM = "tank_temp_bottom"
    DRY_COOLER_VALVE_CMD = "dry_cooler_valve_cmd"
    DRY_COOLER_FAN_CMD = "dry_cooler_fan_cmd"
    DRY_COOLER_VALVE = "dry_cooler_valve"
    DRY_COOLER_FAN = "dry_cooler_fan"
    BACKUP_ENABLE = "backup_enable"
    BACKUP_STATUS = "backup_status"
    BACKUP_RUNNING = "backup_running"
    BACKUP_FAULT = "backup_fault"
    BACKUP_HEAT = "backup_heat"
    OUTDOOR_TEMP = "outdoor_temp"
    BUILDING_SUPPLY_TEMP = "building_supply_temp"
    BUILDING_RETURN_TEMP = "building_return_temp"
    BUILDING_FLOW = "building_flow"
    PLANT_SUPPLY_TEMP = "plant_supply_temp"
    PLANT_RETURN_TEMP = "plant_return_temp"
    HEARTBEAT = "heartbeat"
    RETURN_LIMIT_CMD = "return_limit_cmd"
    RETURN_LIMIT = "return_limit"


@dataclass(frozen=True)
class Role:
    name: str  # as error messages say it: "needed by a caisson skid"
    protocol: Literal["modbus", "opcua"]
    points: tuple[str, ...]
    writes: tuple[str, ...]  # the controller writes these: the map must declare them rw


CAISSON_SKID = Role(
    name="caisson skid",
    protocol="modbus",
    points=tuple(p.value for p in CaissonSkidPoint),
    writes=tuple(
        p.value
        for p in (
            CaissonSkidPoint.PUMP_SPEED_CMD,
            CaissonSkidPoint.IT_CAP_CMD,
            CaissonSkidPoint.HEARTBEAT,
            CaissonSkidPoint.LEASE_TIMEOUT,
            CaissonSkidPoint.REMOTE_REQUEST,
            CaissonSkidPoint.TRIP_RESET,
            CaissonSkidPoint.STANDBY_REQUEST,
            CaissonSkidPoint.INLET_SETPOINT,
        )
    ),
)
COMPUTE_MANAGER = Role(
    name="compute manager",
    protocol="opcua",
    points=tuple(p.value for p in ComputeManagerPoint),
    writes=(ComputeManagerPoint.POWER_CAP.value,),
)
HEAT_METER = Role(
    name="heat meter",
    protocol="modbus",
    points=tuple(p.value for p in HeatMeterPoint),
    writes=(),
)
PLANT_SKID = Role(
    name="plant skid",
    protocol="modbus",
    points=tuple(p.value for p in PlantSkidPoint),
    writes=tuple(
        p.value
        for p in (
            PlantSkidPoint.DRY_COOLER_VALVE_CMD,
            PlantSkidPoint.DRY_COOLER_FAN_CMD,
            PlantSkidPoint.BACKUP_ENABLE,
            PlantSkidPoint.HEARTBEAT,
            PlantSkidPoint.RETURN_LIMIT_CMD,
        )
    ),
)

"""What each simulated device shows and accepts, as functions of the plant model.

A binding maps a device map's point ids to readers (and, for writable points, writers) of the
plant model. Readers and writers work in SI units (fractions for %); `DeviceBinding` converts to
and from the unit the map declares for the point, so a map that shows flow in m3/h rather than
L/min needs no change here. Status words are composed from the map's own bit points, so the bit
layout lives in the map alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from controller.config.loader import LoadedSite
from controller.config.maps import DataType, ModbusMap, ModbusPoint, OpcUaMap, OpcUaPoint
from controller.config.units import point_unit_factor
from controller.water import VOLUMETRIC_HEAT
from simulators.plant.model import PlantModel
from simulators.plant.plc import Interlock, Limit
from simulators.plant.sensors import Sensor

Value = float | int | bool | str | None
Reader = Callable[[], Value]
Writer = Callable[[Value], None]

STATIC_PRESSURE = 1.5e5  # Pa, loop fill pressure
PUMP_HEAD = 0.8e5  # Pa added at full pump speed (∝ speed²)
LEAK_PRESSURE = 0.4e5  # Pa left in an isolated, leaking caisson loop
JOB_POWER = 400.0  # W one compute job draws


class UnknownPointError(KeyError):
    pass


def _number(setter: Callable[[float], None]) -> Writer:
    """A writer for a numeric point (writes arrive already limit-checked, in SI)."""

    def write(value: Value) -> None:
        if not isinstance(value, int | float):
            raise TypeError(f"expected a number, got {value!r}")
        setter(float(value))

    return write


def _flag(setter: Callable[[bool], None]) -> Writer:
    def write(value: Value) -> None:
        setter(bool(value))

    return write


@dataclass(frozen=True)
class DeviceBinding:
    device_id: str
    device_map: ModbusMap | OpcUaMap
    readers: dict[str, Reader]
    writers: dict[str, Writer]

    def read(self, point_id: str) -> Value:
        """The point's present value in its map's unit; None for a sensor at its fault code."""
        point = self._point(point_id)
        reader = self.readers.get(point_id)
        if reader is None:
            return self._composed_word(point) if self._is_word(point) else 0
        value = reader()
        if isinstance(value, float):
            return value / point_unit_factor(point.unit)
        return value

    def write(self, point_id: str, value: Value) -> None:
        """A supervisor's write, in the point's unit, already checked against its limits."""
        point = self._point(point_id)
        writer = self.writers.get(point_id)
        if writer is None:
            raise UnknownPointError(f"{self.device_id}: point {point_id!r} is not writable")
        if isinstance(value, float | int) and not isinstance(value, bool):
            value = float(value) * point_unit_factor(point.unit)
        writer(value)

    def _point(self, point_id: str) -> ModbusPoint | OpcUaPoint:
        try:
            return self.device_map.point(point_id)
        except KeyError:
            raise UnknownPointError(f"{self.device_id}: no point {point_id!r}") from None

    def _bits_of(self, word: ModbusPoint) -> list[ModbusPoint]:
        assert isinstance(self.device_map, ModbusMap)
        return [
            p
            for p in self.device_map.points
            if p.type is DataType.BIT and p.table is word.table and p.address == word.address
        ]

    def _is_word(self, point: ModbusPoint | OpcUaPoint) -> bool:
        return (
            isinstance(point, ModbusPoint)
            and point.type in (DataType.UINT16, DataType.INT16)
            and bool(self._bits_of(point))
        )

    def _composed_word(self, word: ModbusPoint | OpcUaPoint) -> int:
        assert isinstance(word, ModbusPoint)
        value = 0
        for bit in self._bits_of(word):
            reader = self.readers.get(bit.id)
            if reader is not None and reader():
                value |= 1 << (bit.bit or 0)
        return value


def caisson_skid(model: PlantModel, i: int) -> tuple[dict[str, Reader], dict[str, Writer]]:
    commands, plcs, sensors = model.commands, model.plcs, model.sensors

    def sensor(which: Sensor, truth: NDArray[np.float64]) -> Reader:
        return lambda: float(sensors.read(which, truth, model.time)[i])

    def interlock(flag: Interlock) -> Reader:
        mask = int(flag)  # a plain int: numpy's int64 & IntFlag is ~30x slower
        return lambda: bool(plcs.interlocks[i] & mask)

    def pressure() -> float:
        if model.leak[i]:
            return LEAK_PRESSURE
        return STATIC_PRESSURE + PUMP_HEAD * float(model.pump_speed[i]) ** 2

    def set_lease_timeout(seconds: float) -> None:
        plcs.limits[Limit.LEASE_TIMEOUT, i] = seconds

    def request(flags: NDArray[np.bool_]) -> Writer:
        """A command coil: writing 1 raises the request, the PLC clears it when done."""

        def raise_flag(value: bool) -> None:
            if value:
                flags[i] = True

        return _flag(raise_flag)

    readers: dict[str, Reader] = {
        "inlet_temp": sensor(Sensor.INLET, model.inlet),
        "outlet_temp": sensor(Sensor.OUTLET, model.water),
        "flow": sensor(Sensor.FLOW, model.flow),
        "pump_speed_feedback": lambda: float(model.pump_speed[i]),
        "loop_pressure": pressure,
        "it_power": lambda: float(model.it_power[i]),
        "plc_mode": lambda: int(plcs.mode[i]),
        "pump_running": lambda: bool(model.pump_speed[i] > 0),
        "pump_fault": lambda: bool(model.pump_fault[i]),
        "pump_alarm": lambda: bool(model.pump_seized[i]),
        "low_flow_trip": interlock(Interlock.LOW_FLOW_TRIP),
        "overtemp_warn": interlock(Interlock.OVERTEMP_WARN),
        "overtemp_trip": interlock(Interlock.OVERTEMP_TRIP),
        "leak_trip": interlock(Interlock.LEAK_TRIP),
        "pump_fault_trip": interlock(Interlock.PUMP_FAULT_TRIP),
        "local_safe": interlock(Interlock.LOCAL_SAFE),
        "leak": lambda: bool(model.leak[i]),
        "pump_speed_cmd": lambda: float(commands.pump_speed[i]),
        "it_cap_cmd": lambda: float(commands.plc_cap[i]),
        "heartbeat": lambda: int(commands.heartbeat[i]),
        "lease_timeout": lambda: float(plcs.limits[Limit.LEASE_TIMEOUT, i]),
        "remote_request": lambda: bool(commands.remote_request[i]),
        "trip_reset": lambda: bool(commands.trip_reset[i]),
        "mixing_valve": lambda: float(plcs.valve[i]),
        "standby": lambda: bool(plcs.standby[i]),
        "flow_proven": lambda: bool(plcs.proven_for[i] >= plcs.limits[Limit.FLOW_PROOF, i]),
        "inlet_setpoint": lambda: float(commands.inlet_setpoint[i]),
        "standby_request": lambda: bool(commands.standby_request[i]),
    }
    writers: dict[str, Writer] = {
        "pump_speed_cmd": _number(lambda v: commands.write(i, model.time, pump_speed=v)),
        "it_cap_cmd": _number(lambda v: commands.write(i, model.time, plc_cap=v)),
        "heartbeat": _number(lambda v: commands.write(i, model.time, heartbeat=round(v))),
        "lease_timeout": _number(set_lease_timeout),
        "remote_request": request(commands.remote_request),
        "trip_reset": request(commands.trip_reset),
        "inlet_setpoint": _number(lambda v: commands.write(i, model.time, inlet_setpoint=v)),
        "standby_request": _flag(lambda v: commands.write(i, model.time, standby_request=v)),
    }
    return readers, writers


def compute_manager(model: PlantModel, i: int) -> tuple[dict[str, Reader], dict[str, Writer]]:
    commands = model.commands
    nominal = float(model.plcs.limits[Limit.NOMINAL_POWER, i])

    def available() -> float:
        return float(model.compute_demand[i]) * nominal

    readers: dict[str, Reader] = {
        "it_power": lambda: float(model.it_power[i]),
        "power_cap": lambda: float(commands.compute_cap[i]),
        "available_power": available,
        "jobs_running": lambda: round(float(model.it_power[i]) / JOB_POWER),
        "jobs_queued": lambda: round(max(available() - float(model.it_power[i]), 0.0) / JOB_POWER),
        "chip_temp_max": lambda: float(model.chip_temp[i]),
        "throttling": lambda: bool(model.throttling[i]),
    }
    writers: dict[str, Writer] = {
        "power_cap": _number(lambda v: commands.write(i, model.time, compute_cap=v)),
    }
    return readers, writers


def heat_meter(model: PlantModel) -> tuple[dict[str, Reader], dict[str, Writer]]:
    flows = model.flows

    def power() -> float:
        rise = flows.supply_header - flows.return_header
        return max(VOLUMETRIC_HEAT * flows.source_flow * rise, 0.0)

    readers: dict[str, Reader] = {
        "flow": lambda: flows.source_flow,
        "power": power,
        "forward_temp": lambda: flows.supply_header,
        "return_temp": lambda: flows.return_header,
        "energy": lambda: model.meter_energy,
        "volume": lambda: model.meter_volume,
    }
    return readers, {}


def caisson_heat_meter(model: PlantModel, i: int) -> tuple[dict[str, Reader], dict[str, Writer]]:
    """A heat meter on one caisson's connection to the header: the flow it sends there, its
    outlet (forward) and the header's return reaching it (a loading unit recirculates inside)."""

    def power() -> float:
        rise = model.water[i] - model.return_in[i]
        return float(VOLUMETRIC_HEAT * model.header_flow[i] * rise)

    readers: dict[str, Reader] = {
        "flow": lambda: float(model.header_flow[i]),
        "power": power,
        "forward_temp": lambda: float(model.water[i]),
        "return_temp": lambda: float(model.return_in[i]),
        "energy": lambda: float(model.caisson_meter_energy[i]),
        "volume": lambda: float(model.caisson_meter_volume[i]),
    }
    return readers, {}


def plant_skid(model: PlantModel) -> tuple[dict[str, Reader], dict[str, Writer]]:
    flows, tank, commands = model.flows, model.tank, model.plant_commands
    last = len(tank.temperature) - 1

    def layer(index: int) -> Reader:
        return lambda: float(tank.temperature[index])

    def return_limit_cmd() -> float:
        """The register holds the PLC's default until a supervisor writes it."""
        written = commands.return_limit
        return model.site.plant.dry_cooler.return_limit if written is None else written

    readers: dict[str, Reader] = {
        "tank_temp_top": layer(0),
        "tank_temp_upper": layer(round(last / 3)),
        "tank_temp_lower": layer(round(2 * last / 3)),
        "tank_temp_bottom": layer(last),
        "outdoor_temp": lambda: model.outdoor,
        "building_supply_temp": lambda: flows.building_supply,
        "building_return_temp": lambda: flows.building_return,
        "building_flow": lambda: flows.building_flow,
        "plant_supply_temp": lambda: flows.supply_header,
        "plant_return_temp": lambda: flows.return_header,
        "dry_cooler_valve": lambda: flows.dry_cooler_valve,
        "dry_cooler_fan": lambda: flows.dry_cooler_fan,
        "backup_running": lambda: flows.backup_heat > 0.0,
        "backup_fault": lambda: False,
        "backup_heat": lambda: flows.backup_heat,
        "dry_cooler_valve_cmd": lambda: commands.dry_cooler_valve,
        "dry_cooler_fan_cmd": lambda: commands.dry_cooler_fan,
        "heartbeat": lambda: commands.heartbeat,
        "backup_enable": lambda: commands.backup_enable,
        "return_limit_cmd": return_limit_cmd,
        "return_limit": lambda: flows.return_limit,
    }
    writers: dict[str, Writer] = {
        "dry_cooler_valve_cmd": _number(lambda v: commands.write(model.time, dry_cooler_valve=v)),
        "dry_cooler_fan_cmd": _number(lambda v: commands.write(model.time, dry_cooler_fan=v)),
        "heartbeat": _number(lambda v: commands.write(model.time, heartbeat=round(v))),
        "backup_enable": _flag(lambda v: commands.write(model.time, backup_enable=v)),
        "return_limit_cmd": _number(lambda v: commands.write(model.time, return_limit=v)),
    }
    return readers, writers


def site_bindings(model: PlantModel, site: LoadedSite) -> dict[str, DeviceBinding]:
    """A binding for every device the site's caissons and plant use, by device id."""
    config = site.config
    parts: dict[str, tuple[dict[str, Reader], dict[str, Writer]]] = {
        config.plant.skid: plant_skid(model),
        config.plant.heat_meter: heat_meter(model),
    }
    for i, caisson in enumerate(config.caissons):
        parts[caisson.skid] = caisson_skid(model, i)
        parts[caisson.compute] = compute_manager(model, i)
        if caisson.heat_meter is not None:
            parts[caisson.heat_meter] = caisson_heat_meter(model, i)
    return {
        device_id: DeviceBinding(device_id, site.device_map(device_id), readers, writers)
        for device_id, (readers, writers) in parts.items()
    }

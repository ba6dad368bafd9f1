"""Fault plans (`boilerctl sim serve --faults FILE`): what goes wrong, where and when.

Plant faults are the scenario events (pump trip, leak, sensor faults, drain and refill, demand step,
warm spell). Device faults act at the socket: a device unreachable, slow, silent, answering with
exceptions, late replies or wrong transaction ids, garbage, a connection limit, idle connections
closed. Connection-level faults (unreachable, garbage, connection limit, idle timeout) concern the
whole host:port a device listens on, so every unit id behind a shared gateway; the others concern
the device's own unit id. Times are plant time since the simulator started.

    faults:
      - {at: 30 s, kind: unreachable, device: c2-skid, mode: refuse, duration: 1 min}
      - {at: 2 min, kind: slow, device: heat-meter, delay: 1.5 s}
      - {at: 5 min, kind: pump_trip, caisson: c1, duration: 10 min}
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from controller.config.loader import LoadedSite, load_document
from controller.config.maps import StrictModel
from controller.config.site import ModbusDevice
from controller.config.units import Duration
from simulators.scenario import PlantEvent, check_event


class _DeviceFault(StrictModel):
    at: Duration
    duration: Duration | None = None  # None: until the simulator stops
    device: str


class Unreachable(_DeviceFault):
    """refuse: nothing listens (connection refused); drop: connections accepted and closed."""

    kind: Literal["unreachable"]
    mode: Literal["refuse", "drop"] = "refuse"


class Slow(_DeviceFault):
    kind: Literal["slow"]
    delay: Duration


class Silent(_DeviceFault):
    """Requests get no answer: the client times out (and a write is not applied)."""

    kind: Literal["silent"]


class ExceptionReplies(_DeviceFault):
    kind: Literal["exception"]
    code: Annotated[int, Field(ge=1, le=255)] = 4  # 4: server device failure


class LateReplies(_DeviceFault):
    """Each reply arrives after the next request: the answer to the previous question."""

    kind: Literal["late_replies"]


class WrongTransactionId(_DeviceFault):
    kind: Literal["wrong_transaction_id"]


class Garbage(_DeviceFault):
    kind: Literal["garbage"]


class ConnectionLimit(_DeviceFault):
    """Like serial gateways: connections beyond `max` are closed at once."""

    kind: Literal["connection_limit"]
    max: Annotated[int, Field(ge=1, le=16)]


class IdleTimeout(_DeviceFault):
    kind: Literal["idle_timeout"]
    after: Duration


DeviceFault = (
    Unreachable
    | Slow
    | Silent
    | ExceptionReplies
    | LateReplies
    | WrongTransactionId
    | Garbage
    | ConnectionLimit
    | IdleTimeout
)
MODBUS_ONLY = (
    Slow,
    Silent,
    ExceptionReplies,
    LateReplies,
    WrongTransactionId,
    Garbage,
    ConnectionLimit,
    IdleTimeout,
)


class FaultPlanFile(StrictModel):
    faults: list[Annotated[DeviceFault | PlantEvent, Field(discriminator="kind")]]


@dataclass(frozen=True)
class FaultPlan:
    device_faults: list[DeviceFault]
    plant_events: list[PlantEvent]


def load_fault_plan(path: Path, site: LoadedSite) -> FaultPlan:
    """A fault plan checked against the site; ConfigError names file, line and field."""
    plan, report = load_document(path, FaultPlanFile)
    devices = {device.id: device for device in site.config.devices}
    device_faults: list[DeviceFault] = []
    plant_events: list[PlantEvent] = []
    for index, fault in enumerate(plan.faults):
        if isinstance(fault, _DeviceFault):
            device = devices.get(fault.device)
            if device is None:
                report.add(
                    ("faults", index, "device"),
                    f"unknown device {fault.device!r}: the site has {', '.join(devices)}",
                )
            elif isinstance(fault, MODBUS_ONLY) and not isinstance(device, ModbusDevice):
                report.add(
                    ("faults", index, "kind"),
                    f"{fault.kind} is a Modbus fault; {fault.device!r} is an OPC-UA device",
                )
            device_faults.append(fault)
        else:
            check_event(fault, site, report, ("faults", index))
            plant_events.append(fault)
    report.raise_if_any()
    return FaultPlan(device_faults, plant_events)

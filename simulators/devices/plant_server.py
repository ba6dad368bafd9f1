"""The simulated plant on real sockets: the plant model, its Modbus and OPC-UA devices, a clock.

Time runs in one of three ways: real time (speed 1), accelerated (speed N: N plant seconds per
second), or lockstep (speed None: the plant moves only when a driver awaits `advance()`, as the
closed-loop benchmarks do). Inputs (weather, loads, compute demand) are built a day at a time, so
the plant runs as long as it is left running. The fault plan's device faults switch the endpoints'
fault state at their plant time; plant events act on the model.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from functools import partial

import structlog

from controller.config.loader import LoadedSite
from controller.config.maps import ModbusMap, OpcUaMap
from controller.config.site import ModbusDevice, OpcUaDevice
from simulators.devices.bindings import DeviceBinding, site_bindings
from simulators.devices.fault_plan import (
    ConnectionLimit,
    DeviceFault,
    ExceptionReplies,
    FaultPlan,
    Garbage,
    IdleTimeout,
    LateReplies,
    Silent,
    Slow,
    Unreachable,
    WrongTransactionId,
)
from simulators.devices.faults import EndpointFaults, UnitFaults
from simulators.devices.modbus_server import ModbusEndpoint, UnitDevice
from simulators.devices.opcua_server import ComputeManagerServer, ServerSecurity
from simulators.plant.model import Drivers, PlantModel
from simulators.run import build_drivers, schedule_events
from simulators.scenario import ComputeDemand, ProfileWeather, Scenario, Weather

log = structlog.get_logger(__name__)

WINDOW_STEPS = 86_400  # inputs are built a day (of 1 s steps) at a time
OPEN_ENDED = "3650 d"  # "as long as it runs"
REFRESH_INTERVAL = 0.05  # s of wall time between OPC-UA value refreshes


@dataclass(frozen=True)
class Listing:
    """Where one device listens, as `sim serve` prints it."""

    device: str
    protocol: str
    host: str
    port: int
    unit_id: int | None  # Modbus only
    endpoint: str  # opc.tcp://… for OPC-UA, host:port for Modbus


class SimulatedPlant:
    def __init__(
        self,
        site: LoadedSite,
        *,
        start: datetime,
        speed: float | None = 1.0,
        weather: Weather | None = None,
        compute_demand: ComputeDemand | None = None,
        faults: FaultPlan | None = None,
        ephemeral_ports: bool = False,
        opcua: bool = True,
        opcua_security: ServerSecurity | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """speed: plant seconds per wall second, or None for lockstep. ephemeral_ports: bind every
        device on a free port (tests) instead of the site file's. opcua: False serves the Modbus
        devices only (an OPC-UA server takes about 2 s to start). clock and sleep pace real and
        accelerated time (monotonic seconds)."""
        if speed is not None and speed <= 0:
            raise ValueError("speed must be positive (or None for lockstep)")
        self.site = site
        self.speed = speed
        plan = faults or FaultPlan([], [])
        self.scenario = Scenario.model_validate(
            {
                "name": "serve",
                "site": str(site.path),
                "start": start,
                "duration": OPEN_ENDED,
                "weather": weather or ProfileWeather(kind="profile"),
                "compute_demand": compute_demand or ComputeDemand(),
                "events": list(plan.plant_events),
            }
        )
        self._base_dir = site.path.parent
        self.model = PlantModel(site.config, self._window(0), self.scenario.step)
        self.bindings = site_bindings(self.model, site)
        self._events = schedule_events(self.scenario, site.config)
        self._device_faults = _fault_schedule(plan.device_faults, self.scenario.step)
        self.endpoints, self._endpoint_of = self._modbus_endpoints(ephemeral_ports)
        self.compute_managers = (
            self._opcua_servers(ephemeral_ports, opcua_security) if opcua else {}
        )
        self._clock, self._sleep = clock, sleep
        self._stopping = False
        self._opcua_ports: dict[str, int] = {}  # bound ports of servers taken down
        self._pacer: asyncio.Task[None] | None = None
        self._chores: set[asyncio.Task[None]] = set()  # e.g. an OPC-UA server going down or up
        self._last_refresh = 0.0

    # ------------------------------------------------------------------ set-up

    def _window(self, first_step: int) -> Drivers:
        return build_drivers(
            self.scenario, self.site.config, self._base_dir, first_step, WINDOW_STEPS
        )

    def _modbus_endpoints(
        self, ephemeral: bool
    ) -> tuple[list[ModbusEndpoint], dict[str, ModbusEndpoint]]:
        groups: dict[tuple[str, int], list[ModbusDevice]] = defaultdict(list)
        for device in self.site.config.devices:
            if isinstance(device, ModbusDevice) and device.id in self.bindings:
                groups[device.host, device.port].append(device)
        endpoints: list[ModbusEndpoint] = []
        endpoint_of: dict[str, ModbusEndpoint] = {}
        for (host, port), devices in groups.items():
            units = [
                UnitDevice(d.unit_id, self._modbus_map(d.id), self.bindings[d.id]) for d in devices
            ]
            endpoint = ModbusEndpoint(host, 0 if ephemeral else port, units)
            endpoints.append(endpoint)
            endpoint_of.update({d.id: endpoint for d in devices})
        return endpoints, endpoint_of

    def _opcua_servers(
        self, ephemeral: bool, security: ServerSecurity | None
    ) -> dict[str, ComputeManagerServer]:
        servers: dict[str, ComputeManagerServer] = {}
        for device in self.site.config.devices:
            if isinstance(device, OpcUaDevice) and device.id in self.bindings:
                host, port = _host_port(device.endpoint)
                device_map = self.site.device_map(device.id)
                assert isinstance(device_map, OpcUaMap)  # the loader checked protocols match
                servers[device.id] = ComputeManagerServer(
                    device.id,
                    device_map,
                    self.bindings[device.id],
                    host,
                    0 if ephemeral else port,
                    security,
                )
        return servers

    def _modbus_map(self, device_id: str) -> ModbusMap:
        device_map = self.site.device_map(device_id)
        assert isinstance(device_map, ModbusMap)  # the loader checked protocols match
        return device_map

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        """Open every device; in real or accelerated time, start the clock.

        Raises CannotListenError naming the device and address when a port cannot be bound; what
        was already opened stays open until stop()."""
        modbus = [(e, _listen(e.start(), e.host, e.port, self._ids_of(e))) for e in self.endpoints]
        await asyncio.gather(*(start for _, start in modbus))
        await asyncio.gather(
            *(
                _listen(server.start(), server.host, server.port, [device_id])
                for device_id, server in self.compute_managers.items()
            )
        )
        await self._refresh(force=True)
        if self.speed is not None:
            self._pacer = asyncio.create_task(self._pace(self.speed), name="plant-clock")
        log.info("simulated plant up", site=self.site.config.site.name, speed=self.speed)

    async def stop(self) -> None:
        self._stopping = True  # as well as the cancel, which an inner wait_for may swallow
        if self._pacer is not None:
            self._pacer.cancel()
            await asyncio.gather(self._pacer, return_exceptions=True)
            self._pacer = None
        await self.wait_for_chores()
        await asyncio.gather(
            *(endpoint.stop() for endpoint in self.endpoints),
            *(server.stop() for server in self.compute_managers.values()),
        )
        log.info("simulated plant stopped", plant_time=self.model.time)

    async def advance(self, steps: int = 1) -> None:
        """Lockstep: move the plant `steps` steps, then show the new values on every device."""
        if self.speed is not None:
            raise RuntimeError("advance() is for lockstep plants (speed=None)")
        for _ in range(steps):
            self._step()
        await self._refresh(force=True)

    async def _pace(self, speed: float) -> None:
        """Steps on a fixed schedule of the monotonic clock (no drift); a late loop catches up."""
        period = self.scenario.step / speed
        next_tick = self._clock() + period
        while not self._stopping:
            await self._sleep(max(next_tick - self._clock(), 0.0))
            while self._clock() >= next_tick:
                self._step()
                next_tick += period
            await self._refresh()

    def _step(self) -> None:
        model = self.model
        if model.step_index >= model.drivers.end_step:
            model.feed(self._window(model.step_index))
        for action in self._events.get(model.step_index, ()):
            action(model)
        for switch in self._device_faults.get(model.step_index, ()):
            switch(self)
        model.step()

    async def _refresh(self, force: bool = False) -> None:
        now = self._clock()
        if not force and now - self._last_refresh < REFRESH_INTERVAL:
            return
        self._last_refresh = now
        await asyncio.gather(*(server.refresh() for server in self.compute_managers.values()))

    # ------------------------------------------------------------------ faults and listing

    def _ids_of(self, endpoint: ModbusEndpoint) -> list[str]:
        return [device for device, owner in self._endpoint_of.items() if owner is endpoint]

    def endpoint_of(self, device_id: str) -> ModbusEndpoint:
        """The endpoint (host:port) a Modbus device listens on."""
        return self._endpoint_of[device_id]

    def endpoint_faults(self, device_id: str) -> EndpointFaults:
        """The live fault state of the endpoint a Modbus device listens on (switchable)."""
        return self._endpoint_of[device_id].faults

    def unit_faults(self, device_id: str) -> UnitFaults:
        """The live fault state of one Modbus device's unit id (created on first use)."""
        device = self.site.config.device(device_id)
        assert isinstance(device, ModbusDevice)
        faults = self.endpoint_faults(device_id)
        return faults.units.setdefault(device.unit_id, UnitFaults())

    def binding(self, device_id: str) -> DeviceBinding:
        return self.bindings[device_id]

    async def take_down(self, device_id: str) -> None:
        """An OPC-UA device becomes unreachable: its server stops (port closed)."""
        server = self.compute_managers[device_id]
        self._opcua_ports[device_id] = _host_port(server.endpoint)[1]
        await server.stop()

    async def bring_back(self, device_id: str) -> None:
        """An OPC-UA device reachable again: a new server on the same port (asyncua servers do
        not restart), its write counts carried over."""
        old = self.compute_managers[device_id]
        port = self._opcua_ports.pop(device_id, old.port)
        new = ComputeManagerServer(
            device_id, old.device_map, old.binding, old.host, port, old.security
        )
        new.write_counts.update(old.write_counts)
        self.compute_managers[device_id] = new
        await new.start()

    async def wait_for_chores(self) -> None:
        """Until the background chores started so far are done (their failures are logged)."""
        for result in await asyncio.gather(*self._chores, return_exceptions=True):
            if isinstance(result, Exception):
                log.error("plant chore failed", error=repr(result))

    def run_chore(self, chore: Coroutine[object, object, None]) -> None:
        """Run `chore` in the background, owned: stop() awaits it."""
        task = asyncio.get_running_loop().create_task(chore)
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)

    def listing(self) -> list[Listing]:
        rows: list[Listing] = []
        for device in self.site.config.devices:
            if isinstance(device, ModbusDevice) and device.id in self._endpoint_of:
                endpoint = self._endpoint_of[device.id]
                rows.append(
                    Listing(
                        device.id,
                        "modbus-tcp",
                        endpoint.host,
                        endpoint.port,
                        device.unit_id,
                        f"{endpoint.host}:{endpoint.port}",
                    )
                )
            elif device.id in self.compute_managers:
                server = self.compute_managers[device.id]
                host, port = _host_port(server.endpoint)
                rows.append(Listing(device.id, "opc-ua", host, port, None, server.endpoint))
        return rows


class CannotListenError(OSError):
    pass


async def _listen(
    start: Coroutine[object, object, None], host: str, port: int, devices: list[str]
) -> None:
    try:
        await start
    except OSError as error:
        reason = os.strerror(error.errno).lower() if error.errno else str(error)
        raise CannotListenError(
            f"cannot listen on {host}:{port} ({', '.join(devices)}): {reason}"
        ) from error


Switch = Callable[[SimulatedPlant], None]


def _fault_schedule(faults: list[DeviceFault], step: float) -> dict[int, list[Switch]]:
    schedule: dict[int, list[Switch]] = defaultdict(list)
    for fault in faults:
        schedule[round(fault.at / step)].append(partial(_switch, fault=fault, on=True))
        if fault.duration is not None:
            end = round((fault.at + fault.duration) / step)
            schedule[end].append(partial(_switch, fault=fault, on=False))
    return schedule


def _switch(plant: SimulatedPlant, fault: DeviceFault, on: bool) -> None:
    """Turn one device fault on or off in its endpoint's (or unit's) live fault state."""
    log.info("device fault", device=fault.device, kind=fault.kind, on=on)
    if fault.device in plant.compute_managers:  # OPC-UA: only `unreachable` is allowed
        chore = plant.take_down(fault.device) if on else plant.bring_back(fault.device)
        plant.run_chore(chore)
        return
    endpoint = plant.endpoint_faults(fault.device)
    _switch_endpoint(endpoint, fault, on, plant.unit_faults)
    plant.endpoint_of(fault.device).apply_faults()


def _switch_endpoint(
    endpoint: EndpointFaults,
    fault: DeviceFault,
    on: bool,
    unit_faults: Callable[[str], UnitFaults],
) -> None:
    match fault:
        case Unreachable(mode=mode):
            endpoint.unreachable = mode if on else None
        case Garbage():
            endpoint.garbage_frames = on
        case ConnectionLimit(max=limit):
            endpoint.max_connections = limit if on else None
        case IdleTimeout(after=seconds):
            endpoint.idle_timeout = seconds if on else None
        case _:
            _switch_unit(unit_faults(fault.device), fault, on)


def _switch_unit(unit: UnitFaults, fault: DeviceFault, on: bool) -> None:
    match fault:
        case Slow(delay=delay):
            unit.delay = delay if on else 0.0
        case Silent():
            unit.silent = on
        case ExceptionReplies(code=code):
            unit.exception_code = code if on else None
        case LateReplies():
            unit.late_replies = on
        case WrongTransactionId():
            unit.wrong_transaction_id = on


def _host_port(endpoint: str) -> tuple[str, int]:
    """("127.0.0.1", 4840) from "opc.tcp://127.0.0.1:4840[/path]"."""
    address = endpoint.removeprefix("opc.tcp://").split("/", 1)[0]
    host, _, port = address.rpartition(":")
    return host, int(port)

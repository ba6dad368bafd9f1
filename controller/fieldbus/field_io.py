"""All of a site's field devices feeding one process image: Modbus polled, OPC-UA subscribed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

import structlog

from controller.config.loader import LoadedSite
from controller.config.maps import OpcUaMap
from controller.config.site import OpcUaDevice
from controller.fieldbus.health import Backoff, DeviceHealth
from controller.fieldbus.image import PointRef, ProcessImage, Sample
from controller.fieldbus.modbus_driver import DriverSettings, ModbusDeviceDriver, utc_now
from controller.fieldbus.modbus_io import ModbusIO
from controller.fieldbus.opcua_driver import OpcUaDriver

log = structlog.get_logger(__name__)


class FieldIO:
    def __init__(
        self,
        site: LoadedSite,
        image: ProcessImage,
        *,
        period: float = 1.0,
        slow_every: int = 10,
        addresses: dict[str, tuple[str, int]] | None = None,
        endpoints: dict[str, str] | None = None,
        backoff: Callable[[], Backoff] = Backoff,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        """period: the scan period (Modbus polls, OPC-UA fast sampling); slow points every
        `slow_every` periods. addresses / endpoints: Modbus host:port and OPC-UA URLs by device id,
        overriding the site file's (tests against simulators on free ports)."""
        self.modbus = ModbusIO(
            site,
            image,
            period=period,
            settings=DriverSettings(slow_every=slow_every),
            addresses=addresses,
            backoff=backoff,
            clock=clock,
        )
        self.opcua: dict[str, OpcUaDriver] = {}
        for configured in site.config.devices:
            if not isinstance(configured, OpcUaDevice):
                continue
            device = configured
            if endpoints and device.id in endpoints:
                device = device.model_copy(update={"endpoint": endpoints[device.id]})
            device_map = site.device_map(device.id)
            assert isinstance(device_map, OpcUaMap)  # the loader checked protocols match
            self.opcua[device.id] = OpcUaDriver(
                device,
                device_map,
                image,
                base_dir=site.path.parent,
                clock=clock,
                fast_interval=period,
                slow_interval=period * slow_every,
                backoff=backoff(),
            )

    async def start(self, *, poll: bool = True) -> None:
        """Start the OPC-UA sessions and, unless `poll` is False, the Modbus polling tasks.
        Without them (lockstep runs) the image moves only on `refresh()`; Modbus connections open
        on first use either way."""
        if poll:
            await self.modbus.start()
        await asyncio.gather(*(driver.start() for driver in self.opcua.values()))

    async def refresh(self) -> None:
        """Read every device once, now: each Modbus driver polls once (devices on one connection
        take turns on its lock, the others run concurrently) and each connected OPC-UA driver
        reads all its points (a driver not connected reads nothing). For lockstep runs, where the
        plant moves only between two refreshes."""
        drivers = list(self.modbus.drivers.values())
        results = await asyncio.gather(
            *(driver.poll() for driver in drivers),
            *(driver.read_once() for driver in self.opcua.values()),
            return_exceptions=True,
        )
        names = [d.device_id for d in drivers] + list(self.opcua)
        for device, result in zip(names, results, strict=True):
            if isinstance(result, Exception):  # a bug must cost this device only, and be seen
                log.error("refresh_failed", device=device, exc_info=result)
            elif isinstance(result, BaseException):
                raise result

    def retry(self, device_id: str) -> None:
        """Reconnect the device at once (its next poll, or its OPC-UA session task now) instead of
        when its back-off allows, e.g. once it has been repaired; the back-off starts again from
        its base. A Modbus device shares this with the unit ids on its host:port. Health is left
        as it is. UnknownDeviceError (a KeyError) names the known devices."""
        modbus = self.modbus.drivers.get(device_id)
        if modbus is not None:
            modbus.connection.retry()
        elif device_id in self.opcua:
            self.opcua[device_id].retry()
        else:
            known = ", ".join([*self.modbus.drivers, *self.opcua])
            raise UnknownDeviceError(f"no device {device_id!r}; the site's devices: {known}")

    async def read_now(self, ref: PointRef) -> Sample:
        """A Modbus point read from its device now (see ModbusDeviceDriver.read_now).
        UnknownDeviceError: not one of the site's Modbus devices."""
        return await self._modbus(ref.device).read_now(ref.point)

    async def write_now(self, ref: PointRef, value: float | int | bool) -> None:
        """Write a Modbus point now, outside the scan's writes (an engineer's command such as a
        trip reset). WriteError when not confirmed; UnknownDeviceError as read_now."""
        await self._modbus(ref.device).write(ref.point, value)

    def _modbus(self, device_id: str) -> ModbusDeviceDriver:
        driver = self.modbus.drivers.get(device_id)
        if driver is None:
            known = ", ".join(self.modbus.drivers)
            raise UnknownDeviceError(f"no Modbus device {device_id!r}; the site's: {known}")
        return driver

    def health(self) -> dict[str, DeviceHealth]:
        """Each device's health, by id."""
        return {
            **{d: driver.health for d, driver in self.modbus.drivers.items()},
            **{d: driver.health for d, driver in self.opcua.items()},
        }

    async def stop(self) -> None:
        await asyncio.gather(self.modbus.stop(), *(driver.stop() for driver in self.opcua.values()))


class UnknownDeviceError(KeyError):
    """A device id the site does not have; str() is the message (KeyError's would quote it)."""

    def __str__(self) -> str:
        return str(self.args[0])

"""All of a site's field devices feeding one process image: Modbus polled, OPC-UA subscribed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

from controller.config.loader import LoadedSite
from controller.config.maps import OpcUaMap
from controller.config.site import OpcUaDevice
from controller.fieldbus.health import Backoff
from controller.fieldbus.image import ProcessImage
from controller.fieldbus.modbus_driver import DriverSettings, utc_now
from controller.fieldbus.modbus_io import ModbusIO
from controller.fieldbus.opcua_driver import OpcUaDriver


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

    async def start(self) -> None:
        await self.modbus.start()
        await asyncio.gather(*(driver.start() for driver in self.opcua.values()))

    async def stop(self) -> None:
        await asyncio.gather(self.modbus.stop(), *(driver.stop() for driver in self.opcua.values()))

"""The site's Modbus devices: one connection per host:port, one polling task per device.

Each device polls on its own fixed schedule, so a slow or dead device delays only itself (and the
unit ids that share its host:port, which must share its connection anyway: one request in flight).
A poll that overruns its period skips the ticks it missed rather than bunching up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

import structlog

from controller.config.loader import LoadedSite
from controller.config.maps import ModbusMap
from controller.config.site import ModbusDevice
from controller.fieldbus.health import Backoff
from controller.fieldbus.image import ProcessImage
from controller.fieldbus.modbus_driver import DriverSettings, ModbusDeviceDriver, utc_now
from controller.fieldbus.modbus_transport import ModbusConnection

log = structlog.get_logger(__name__)


class ModbusIO:
    def __init__(
        self,
        site: LoadedSite,
        image: ProcessImage,
        *,
        period: float = 1.0,
        settings: DriverSettings | None = None,
        addresses: dict[str, tuple[str, int]] | None = None,
        backoff: Callable[[], Backoff] = Backoff,
        clock: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """addresses: host and port by device id, overriding the site file's (tests); backoff:
        makes each connection's reconnect back-off."""
        self.period = period
        self._monotonic, self._sleep = monotonic, sleep
        self.connections: dict[tuple[str, int], ModbusConnection] = {}
        self.drivers: dict[str, ModbusDeviceDriver] = {}
        for device in site.config.devices:
            if not isinstance(device, ModbusDevice):
                continue
            address = (addresses or {}).get(device.id, (device.host, device.port))
            connection = self.connections.get(address)
            if connection is None:
                connection = ModbusConnection(
                    *address,
                    timeout=device.timeout,
                    request_gap=device.request_gap,
                    backoff=backoff(),
                    clock=monotonic,
                )
                self.connections[address] = connection
            else:  # units behind one gateway: its slowest settings apply to all
                connection.timeout = max(connection.timeout, device.timeout)
                connection.request_gap = max(connection.request_gap, device.request_gap)
            device_map = site.device_map(device.id)
            assert isinstance(device_map, ModbusMap)  # the loader checked protocols match
            self.drivers[device.id] = ModbusDeviceDriver(
                device.id,
                device.unit_id,
                device_map,
                connection,
                image,
                settings=settings,
                max_registers=device.max_registers_per_read,
                clock=clock,
            )
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    async def start(self) -> None:
        self._stopping = False
        self._tasks = [
            asyncio.create_task(self._poll_forever(driver), name=f"modbus-{device_id}")
            for device_id, driver in self.drivers.items()
        ]

    async def stop(self) -> None:
        # The flag as well as the cancel: asyncio.wait_for (inside pymodbus) can swallow a
        # cancellation that lands as its future completes (Python 3.11), and the loop would go on.
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for connection in self.connections.values():
            await connection.close()

    async def _poll_forever(self, driver: ModbusDeviceDriver) -> None:
        next_tick = self._monotonic()
        while not self._stopping:
            try:
                await driver.poll()
            except Exception:  # a bug must cost this device only, and be seen
                log.exception("modbus poll failed", device=driver.device_id)
            next_tick += self.period
            now = self._monotonic()
            if now > next_tick:  # overran: skip the missed ticks
                next_tick += self.period * ((now - next_tick) // self.period + 1)
            await self._sleep(next_tick - now)

"""The controller daemon's parts on real sockets against a simulated plant, in lockstep.

One step: the plant steps (`advance(1)`), the field I/O reads every device once (`refresh()`), the
cycle scans with now = plant time and its writes land before the next step: the order of the
in-process closed loop (simulators/closed_loop.py), so that the two runs' KPIs compare, the
difference being what the sockets, the codec and the drivers add.

`field_overrides` also serves the accelerated-time demo: where the plant's devices listen.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace

from controller.config.loader import LoadedSite
from controller.cycle import Cycle
from controller.daemon import Daemon
from controller.fieldbus.field_io import FieldIO
from controller.systemd import Notifier
from simulators.devices.plant_server import SimulatedPlant

CONNECT_TIMEOUT = 30.0  # s of wall time for the OPC-UA sessions to come up
# s of wall time a request may take in lockstep. The plant waits for the controller, so a busy
# machine's pause (the plant's servers share this process) is not a dead device; the site's 1–2 s
# guard real time. A device that does not answer still fails, only later.
LOCKSTEP_IO_TIMEOUT = 10.0


def field_overrides(plant: SimulatedPlant) -> tuple[dict[str, tuple[str, int]], dict[str, str]]:
    """(Modbus host:port, OPC-UA endpoint) by device id, as the plant listens (ephemeral ports)."""
    addresses: dict[str, tuple[str, int]] = {}
    endpoints: dict[str, str] = {}
    for row in plant.listing():
        if row.protocol == "opc-ua":
            endpoints[row.device] = row.endpoint
        else:
            addresses[row.device] = (row.host, row.port)
    return addresses, endpoints


def with_lockstep_timeouts(site: LoadedSite) -> LoadedSite:
    """`site` with every device's request timeout at least LOCKSTEP_IO_TIMEOUT."""
    devices = [
        d.model_copy(update={"timeout": max(d.timeout, LOCKSTEP_IO_TIMEOUT)})
        for d in site.config.devices
    ]
    return replace(site, config=site.config.model_copy(update={"devices": devices}))


@dataclass
class LockstepLoop:
    plant: SimulatedPlant  # speed None
    field_io: FieldIO  # started with poll=False
    cycle: Cycle

    async def step(self) -> None:
        await self.plant.advance(1)
        await self.field_io.refresh()
        await self.cycle.tick(self.plant.model.time)  # every write awaited: they land first

    async def run(self, steps: int, on_step: Callable[[int], None] | None = None) -> None:
        """`steps` steps; `on_step(step_index)` after each (observations, assertions)."""
        for _ in range(steps):
            await self.step()
            if on_step is not None:
                on_step(self.plant.model.step_index)


async def wait_connected(field_io: FieldIO, timeout: float = CONNECT_TIMEOUT) -> None:
    """Until every OPC-UA driver has a session (TimeoutError after `timeout` s)."""
    async with asyncio.timeout(timeout):
        while not all(driver.connected for driver in field_io.opcua.values()):
            await asyncio.sleep(0.05)


@asynccontextmanager
async def lockstep_controller(
    plant: SimulatedPlant, *, read_only: bool = False
) -> AsyncIterator[LockstepLoop]:
    """The daemon's image, field I/O, supervisor and cycle attached to a started lockstep plant;
    the OPC-UA sessions are up when it yields; stopped on the way out."""
    if plant.speed is not None:
        raise ValueError("lockstep needs a plant with speed=None")
    addresses, endpoints = field_overrides(plant)
    daemon = Daemon(
        with_lockstep_timeouts(plant.site),
        read_only=read_only,
        addresses=addresses,
        endpoints=endpoints,
        notifier=Notifier(None),
    )
    await daemon.field_io.start(poll=False)
    try:
        await wait_connected(daemon.field_io)
        yield LockstepLoop(plant, daemon.field_io, daemon.cycle)
    finally:
        await daemon.cycle.close()
        await daemon.field_io.stop()

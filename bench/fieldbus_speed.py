"""Modbus polling against the simulated plant on loopback: requests per scan, scans per second,
CPU per scan, and the CPU of polling at 1 Hz.

Sites of N caissons, each with its skid PLC and its own heat meter, every device on its own port
(as on a real site, one PLC per address). The simulated devices run in a separate process, so the
CPU measured here is the client's alone. Side by side, against the same servers:
  drivers    our Modbus drivers (ModbusIO: planner, codec, samples, health) polling every device
  ceiling    a bare pymodbus loop issuing the same coalesced requests, decoding nothing
  naive      one request per point (what simple integrations do), decoded with our codec

    .venv/bin/python bench/fieldbus_speed.py [--caissons 10 50] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pymodbus.client import AsyncModbusTcpClient  # noqa: E402

from controller.config.loader import LoadedSite, load_site  # noqa: E402
from controller.config.maps import ModbusMap, Table  # noqa: E402
from controller.config.site import ModbusDevice  # noqa: E402
from controller.fieldbus.codec import decode  # noqa: E402
from controller.fieldbus.field_io import FieldIO  # noqa: E402
from controller.fieldbus.image import ProcessImage  # noqa: E402
from controller.fieldbus.modbus_driver import DriverSettings  # noqa: E402
from controller.fieldbus.modbus_io import ModbusIO  # noqa: E402
from controller.fieldbus.planner import plan_reads  # noqa: E402
from controller.logs import configure_logging  # noqa: E402

SERVER_SCRIPT = """
import asyncio, json, sys
from datetime import UTC, datetime
sys.path.insert(0, {root!r})
from bench.fieldbus_speed import bench_site
from controller.logs import configure_logging
from simulators.devices.plant_server import SimulatedPlant
configure_logging("error")
async def main():
    plant = SimulatedPlant(bench_site({caissons}), start=datetime(2026, 1, 15, tzinfo=UTC),
                           speed={speed}, ephemeral_ports=True, opcua={opcua})
    await plant.start()
    addresses = {{row.device: [row.host, row.port, row.endpoint] for row in plant.listing()}}
    print(json.dumps(addresses), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the bench ends
    await plant.stop()
asyncio.run(main())
"""


def bench_site(caissons: int) -> LoadedSite:
    """The demo site with `caissons` copies of its first caisson, each with a heat meter."""
    site = load_site(ROOT / "sites" / "demo.yaml")
    config = site.config
    skid, compute, meter = (config.device(d) for d in ("c1-skid", "c1-compute", "heat-meter"))
    assert isinstance(skid, ModbusDevice)
    assert isinstance(meter, ModbusDevice)
    meter = meter.model_copy(update={"request_gap": 0.0})
    devices = [config.device("plant-skid"), meter]
    caisson_list = []
    for i in range(1, caissons + 1):
        devices += [
            skid.model_copy(update={"id": f"c{i}-skid", "port": 20000 + i}),
            compute.model_copy(
                update={"id": f"c{i}-compute", "endpoint": f"opc.tcp://127.0.0.1:{30000 + i}"}
            ),
            # each meter on its own TCP port, without the demo meter's serial-gateway gap (the
            # bare loop would not honour one, and the comparison would measure the gap)
            meter.model_copy(update={"id": f"c{i}-meter", "port": 25000 + i}),
        ]
        caisson_list.append(
            config.caissons[0].model_copy(
                update={
                    "id": f"c{i}",
                    "skid": f"c{i}-skid",
                    "compute": f"c{i}-compute",
                    "heat_meter": f"c{i}-meter",
                }
            )
        )
    bigger = config.model_copy(update={"devices": devices, "caissons": caisson_list})
    return LoadedSite(site.path, bigger, site.maps)


def modbus_devices(site: LoadedSite) -> list[tuple[ModbusDevice, ModbusMap]]:
    rows = []
    for device in site.config.devices:
        device_map = site.device_map(device.id)
        if isinstance(device, ModbusDevice) and isinstance(device_map, ModbusMap):
            rows.append((device, device_map))
    return rows


async def measure(scan: Callable[[], Awaitable[int]], seconds: float) -> dict[str, float]:
    """Scans back to back for `seconds`: scans/s, requests/scan, CPU ms/scan."""
    await scan()  # connect and warm up
    scans = requests = 0
    wall0, cpu0 = time.perf_counter(), time.process_time()
    while time.perf_counter() - wall0 < seconds:
        requests += await scan()
        scans += 1
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return {"scans_s": scans / wall, "requests": requests / scans, "cpu_ms": cpu / scans * 1e3}


async def drivers_scan(
    site: LoadedSite, addresses: dict[str, tuple[str, int]]
) -> tuple[Callable[[], Awaitable[int]], ModbusIO]:
    # every poll a full one (slow points too), so that all variants read the same points
    io = ModbusIO(site, ProcessImage(), addresses=addresses, settings=DriverSettings(slow_every=1))

    async def scan() -> int:
        before = sum(c.counters.requests for c in io.connections.values())
        await asyncio.gather(*(driver.poll() for driver in io.drivers.values()))
        return sum(c.counters.requests for c in io.connections.values()) - before

    return scan, io


READ = {
    Table.HOLDING: "read_holding_registers",
    Table.INPUT: "read_input_registers",
    Table.COIL: "read_coils",
    Table.DISCRETE: "read_discrete_inputs",
}


async def bare_clients(
    site: LoadedSite, addresses: dict[str, tuple[str, int]]
) -> dict[str, AsyncModbusTcpClient]:
    clients = {}
    for device, _ in modbus_devices(site):
        host, port = addresses[device.id]
        client = AsyncModbusTcpClient(host, port=port, timeout=2, retries=0)
        await client.connect()
        clients[device.id] = client
    return clients


def ceiling_scan(
    site: LoadedSite, clients: dict[str, AsyncModbusTcpClient]
) -> Callable[[], Awaitable[int]]:
    plans = {d.id: (d.unit_id, plan_reads(m, m.points)) for d, m in modbus_devices(site)}

    async def device(device_id: str) -> int:
        unit, blocks = plans[device_id]
        client = clients[device_id]
        for block in blocks:
            await getattr(client, READ[block.table])(block.start, count=block.count, device_id=unit)
        return len(blocks)

    async def scan() -> int:
        return sum(await asyncio.gather(*(device(d) for d in plans)))

    return scan


def naive_scan(
    site: LoadedSite, clients: dict[str, AsyncModbusTcpClient]
) -> Callable[[], Awaitable[int]]:
    devices = modbus_devices(site)

    async def device(device: ModbusDevice, device_map: ModbusMap) -> int:
        client = clients[device.id]
        for point in device_map.points:
            reader = getattr(client, READ[point.table])
            count = 1 if point.table.is_bit_table else point.register_count
            response = await reader(
                device_map.wire_address(point), count=count, device_id=device.unit_id
            )
            if not point.table.is_bit_table:
                decode(point, device_map.byte_order(point), response.registers)
        return len(device_map.points)

    async def scan() -> int:
        return sum(await asyncio.gather(*(device(d, m) for d, m in devices)))

    return scan


def minimum_requests(site: LoadedSite) -> int:
    """One request per table used by each device: the fewest any client can send."""
    return sum(len({p.table for p in m.points}) for _, m in modbus_devices(site))


async def cpu_at_1hz(
    site: LoadedSite, addresses: dict[str, tuple[str, int]], seconds: float
) -> float:
    io = ModbusIO(site, ProcessImage(), addresses=addresses, period=1.0)
    await io.start()
    await asyncio.sleep(1.5)  # connected, first polls done
    wall0, cpu0 = time.perf_counter(), time.process_time()
    await asyncio.sleep(seconds)
    share = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
    await io.stop()
    return share


@contextlib.contextmanager
def simulated(caissons: int, *, opcua: bool) -> Iterator[dict[str, list[str | int]]]:
    """The bench site's devices in another process; yields {device: [host, port, endpoint]}.
    With OPC-UA the plant runs in real time (subscriptions see changes); without, it stands."""
    script = SERVER_SCRIPT.format(
        root=str(ROOT), caissons=caissons, opcua=opcua, speed=1.0 if opcua else None
    )
    server = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        yield json.loads(server.stdout.readline())
    finally:
        if server.stdin:
            server.stdin.close()
        server.wait(timeout=120)


async def field_cpu_at_1hz(caissons: int, seconds: float) -> float:
    """Modbus and OPC-UA (every compute manager subscribed) together, scanning at 1 Hz."""
    site = bench_site(caissons)
    with simulated(caissons, opcua=True) as listing:
        modbus = {d: (str(h), int(p)) for d, (h, p, _) in listing.items() if "compute" not in d}
        opcua = {d: str(e) for d, (_, _, e) in listing.items() if "compute" in d}
        field = FieldIO(site, ProcessImage(), period=1.0, addresses=modbus, endpoints=opcua)
        await field.start()
        await asyncio.sleep(3.0)  # connected, subscribed, first updates in
        wall0, cpu0 = time.perf_counter(), time.process_time()
        await asyncio.sleep(seconds)
        share = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
        await field.stop()
    return share


async def run(caissons: int, seconds: float, opcua: bool) -> list[str]:
    site = bench_site(caissons)
    with simulated(caissons, opcua=False) as listing:
        addresses = {d: (str(h), int(p)) for d, (h, p, _) in listing.items()}
        scan, io = await drivers_scan(site, addresses)
        clients = await bare_clients(site, addresses)
        results = {
            "drivers": await measure(scan, seconds),
            "ceiling": await measure(ceiling_scan(site, clients), seconds),
            "naive": await measure(naive_scan(site, clients), seconds),
        }
        await io.stop()
        for client in clients.values():
            client.close()
        cpu_share = await cpu_at_1hz(site, addresses, seconds)
    devices = len(modbus_devices(site))
    rows = []
    ceiling = results["ceiling"]["scans_s"]
    for variant, r in results.items():
        rows.append(
            f"| {caissons} caissons ({devices} devices) | {variant} | {r['requests']:.0f} | "
            f"{minimum_requests(site)} | {r['scans_s']:.1f} | {r['scans_s'] / ceiling:.2f} | "
            f"{r['cpu_ms']:.1f} |"
        )
    rows.append(
        f"| {caissons} caissons ({devices} devices) | drivers polling at 1 Hz | | | | | "
        f"{cpu_share * 100:.1f} % of one core |"
    )
    if opcua:
        share = await field_cpu_at_1hz(caissons, seconds)
        rows.append(
            f"| {caissons} caissons (+{caissons} OPC-UA) | Modbus + OPC-UA at 1 Hz | | | | | "
            f"{share * 100:.1f} % of one core |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--caissons", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    parser.add_argument(
        "--no-opcua", action="store_true", help="skip the compute managers (2 s each to start)"
    )
    args = parser.parse_args()
    configure_logging("warning")
    print(f"# Modbus polling, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print()
    print("| site | client | requests/scan | minimum | scans/s | × ceiling | CPU ms/scan |")
    print("|---|---|---|---|---|---|---|")
    for caissons in args.caissons:
        for row in asyncio.run(run(caissons, args.seconds, not args.no_opcua)):
            print(row, flush=True)


if __name__ == "__main__":
    main()

"""The same scenario two ways: in-process fast mode (the supervisor coupled to the plant model, no
sockets) and real-socket lockstep (the daemon's field I/O, supervisor and cycle against the
simulated PLCs over Modbus TCP and OPC-UA, one plant step per cycle). Their KPIs should agree
within 1 %: what separates them is what the wire adds (register scaling, float32, the drivers).

    .venv/bin/python bench/lockstep_agreement.py [--scenario FILE] [--hours 2] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from controller.control.supervisor import Supervisor  # noqa: E402
from controller.logs import configure_logging  # noqa: E402
from simulators.closed_loop import run_closed_loop  # noqa: E402
from simulators.devices.fault_plan import FaultPlan  # noqa: E402
from simulators.devices.plant_server import SimulatedPlant  # noqa: E402
from simulators.lockstep import lockstep_controller  # noqa: E402
from simulators.plant.kpis import PlantKpis  # noqa: E402
from simulators.run import ScenarioRun  # noqa: E402
from simulators.scenario import LoadedScenario, load_scenario  # noqa: E402

# The KPIs compared (the others are derived from these or are counts).
COMPARED = (
    "heat_delivered_kwh",
    "heat_reused_kwh",
    "backup_heat_kwh",
    "it_energy_kwh",
    "pump_energy_kwh",
    "erf",
    "pue",
    "hours_out_of_band",
    "discomfort_kh",
    "min_chip_margin_k",
    "plc_trips",
)


def in_process(loaded: LoadedScenario) -> tuple[PlantKpis, float]:
    run = ScenarioRun(loaded.scenario, loaded.site.config, loaded.path.parent)
    supervisor = Supervisor(loaded.site)
    started = time.perf_counter()
    result = run_closed_loop(run, loaded.site, supervisor, supervisor.reader.refs)
    return result.kpis, time.perf_counter() - started


async def lockstep(loaded: LoadedScenario) -> tuple[PlantKpis, float]:
    scenario = loaded.scenario
    plant = SimulatedPlant(
        loaded.site,
        start=scenario.start,
        speed=None,
        weather=scenario.weather,
        compute_demand=scenario.compute_demand,
        faults=FaultPlan([], list(scenario.events)),
        ephemeral_ports=True,
    )
    await plant.start()
    try:
        async with lockstep_controller(plant) as loop:
            started = time.perf_counter()
            await loop.run(scenario.steps)
            return plant.model.kpis(), time.perf_counter() - started
    finally:
        await plant.stop()


def relative(a: float, b: float) -> float:
    if a == b:
        return 0.0
    return abs(a - b) / max(abs(a), abs(b))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scenario", type=Path, default=ROOT / "simulators/scenarios/demo-winter-day.yaml"
    )
    parser.add_argument("--hours", type=float, default=2.0, help="run this much of the scenario")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    configure_logging("error", json_lines=False)
    loaded = load_scenario(args.scenario)
    scenario = loaded.scenario.model_copy(update={"duration": args.hours * 3600})
    loaded = LoadedScenario(loaded.path, scenario, loaded.site)
    fast, fast_seconds = in_process(loaded)
    wire, wire_seconds = asyncio.run(lockstep(loaded))
    rows = {
        name: (
            getattr(fast, name),
            getattr(wire, name),
            relative(getattr(fast, name), getattr(wire, name)),
        )
        for name in COMPARED
    }
    report = {
        "scenario": scenario.name,
        "hours": args.hours,
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "in_process_seconds": fast_seconds,
        "lockstep_seconds": wire_seconds,
        "kpis": {
            k: {"in_process": a, "lockstep": b, "relative": r} for k, (a, b, r) in rows.items()
        },
        "all_kpis": {"in_process": asdict(fast), "lockstep": asdict(wire)},
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(
        f"{scenario.name}, first {args.hours:g} h: in-process {fast_seconds:.1f} s, "
        f"lockstep over sockets {wire_seconds:.1f} s "
        f"({wire_seconds / scenario.steps * 1e3:.1f} ms/step)"
    )
    print(f"{'KPI':24} {'in-process':>12} {'lockstep':>12} {'difference':>11}")
    for name, (a, b, r) in rows.items():
        print(f"{name:24} {a:12.4f} {b:12.4f} {r:10.2%}")


if __name__ == "__main__":
    main()

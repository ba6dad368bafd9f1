"""Simulated time per wall-clock time of the in-process plant model.

Side by side in one run (the machine is shared and noisy):
  model      the plant model as shipped (compiled loops + Python step)
  no-jit     the same code with numba's compiler off (NUMBA_DISABLE_JIT=1, in a subprocess):
             what plain Python/numpy gives
  ceiling    only the compiled kernels of a step, called in a loop with the same arrays:
             what the step would cost with no Python glue at all
for the demo site (3 caissons) and a 50-caisson site (the demo's caisson replicated, the plant
scaled with it). Prints a Markdown table; results go to docs/BENCHMARKS.md.

    .venv/bin/python bench/plant_speed.py [--hours 24] [--nojit-hours 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from controller.config.loader import load_site  # noqa: E402
from controller.config.site import SiteConfig  # noqa: E402
from simulators.plant.caissons import drive_caissons, heat_caissons, mix_inlet  # noqa: E402
from simulators.plant.tank import step_tank  # noqa: E402
from simulators.run import ScenarioRun  # noqa: E402
from simulators.scenario import Scenario  # noqa: E402


def scaled_site(caissons: int) -> SiteConfig:
    """The demo site with `caissons` copies of its first caisson; tank, exchanger, cooler, boiler
    and loads scaled by the same factor."""
    site = load_site(ROOT / "sites" / "demo.yaml").config
    if caissons == len(site.caissons):
        return site
    factor = caissons / len(site.caissons)
    template = site.caissons[0]
    copies = [template.model_copy(update={"id": f"c{i + 1}"}) for i in range(caissons)]
    plant = site.plant
    scaled_plant = plant.model_copy(
        update={
            "buffer_tank": plant.buffer_tank.model_copy(
                update={"volume": plant.buffer_tank.volume * factor}
            ),
            "heat_exchanger": plant.heat_exchanger.model_copy(
                update={"max_power": plant.heat_exchanger.max_power * factor}
            ),
            "dry_cooler": plant.dry_cooler.model_copy(
                update={"capacity": plant.dry_cooler.capacity * factor}
            ),
            "backup_boiler": plant.backup_boiler.model_copy(
                update={"capacity": plant.backup_boiler.capacity * factor}
            ),
        }
    )
    loads = site.loads
    assert loads.space_heating is not None
    assert loads.hot_water is not None
    scaled_loads = loads.model_copy(
        update={
            "space_heating": loads.space_heating.model_copy(
                update={"design_load": loads.space_heating.design_load * factor}
            ),
            "hot_water": loads.hot_water.model_copy(
                update={"daily_energy": loads.hot_water.daily_energy * factor}
            ),
        }
    )
    return site.model_copy(
        update={"caissons": copies, "plant": scaled_plant, "loads": scaled_loads}
    )


def make_run(caissons: int, hours: float) -> ScenarioRun:
    scenario = Scenario.model_validate(
        {
            "name": f"bench-{caissons}",
            "site": "unused",
            "start": "2026-01-15T00:00:00+01:00",
            "duration": f"{hours} h",
            "weather": {"kind": "profile", "seed": 1},
        }
    )
    return ScenarioRun(scenario, scaled_site(caissons), ROOT)


def time_model(caissons: int, hours: float) -> dict[str, float]:
    make_run(caissons, 0.05).run()  # compile (or load the compiled cache) outside the timing
    run = make_run(caissons, hours)
    start = time.perf_counter()
    run.run()
    wall = time.perf_counter() - start
    steps = run.scenario.steps
    return {
        "wall_s": wall,
        "steps": steps,
        "us_per_step": wall / steps * 1e6,
        "speedup": hours * 3600 / wall,
    }


def time_ceiling(caissons: int, steps: int) -> dict[str, float]:
    """The compiled kernels of one step (through their one-line wrappers), on a live model's
    arrays, without the rest of the step's Python."""
    run = make_run(caissons, 0.05)
    m = run.model
    m.step()
    c, plcs, pipes, tank = m.commands, m.plcs, m.pipes, m.tank
    inlet_reading, outlet, flow = m.inlet.copy(), m.water.copy(), m.flow.copy()
    demand = m.drivers.compute_demand[0]
    stopped = m.pump_fault | m.pump_seized
    inlet, moved = m._pipe_inlet, m._pipe_moved
    start = time.perf_counter()
    for k in range(steps):
        now = float(k)
        plcs.scan(now, 1.0, c, inlet_reading, outlet, flow, m.it_power, m.leak, m.pump_fault)
        drive_caissons(
            m.params,
            1.0,
            plcs.pump_speed,
            plcs.it_cap,
            plcs.compute_cap,
            demand,
            stopped,
            m.water,
            m.pump_speed,
            m.flow,
            m.pump_power,
            m.it_power,
            m.chip_temp,
            m.throttling,
        )
        pipes.advance(inlet, moved)
        mix_inlet(plcs.valve, m.return_in, m.water, m.inlet)
        heat_caissons(m.params, 1.0, m.water, m.inlet, m.flow, m.it_power, m.pump_power)
        step_tank(
            tank.temperature,
            tank.layer_volume,
            tank.loss_per_layer,
            tank.room,
            1.0,
            0.001,
            60.0,
            0.001,
            40.0,
        )
    wall = time.perf_counter() - start
    return {
        "wall_s": wall,
        "steps": steps,
        "us_per_step": wall / steps * 1e6,
        "speedup": steps / wall,
    }


def time_without_jit(caissons: int, hours: float) -> dict[str, float]:
    code = (
        f"import json, sys; sys.path.insert(0, {str(ROOT)!r}); "
        "from bench.plant_speed import time_model; "
        f"print(json.dumps(time_model({caissons}, {hours!r})))"
    )
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0, help="simulated hours per run")
    parser.add_argument("--nojit-hours", type=float, default=1.0, help="hours for the no-jit runs")
    args = parser.parse_args()
    print(f"# plant model speed, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, numpy {np.__version__}"
    )
    print()
    print("| site | variant | simulated | wall s | µs/step | simulated/wall | 1 day takes |")
    print("|---|---|---|---|---|---|---|")
    for caissons in (3, 50):
        rows = [
            ("model", args.hours, time_model(caissons, args.hours)),
            ("no-jit", args.nojit_hours, time_without_jit(caissons, args.nojit_hours)),
            ("ceiling", args.hours, time_ceiling(caissons, int(args.hours * 3600))),
        ]
        for variant, hours, r in rows:
            day = r["us_per_step"] * 86400 / 1e6
            print(
                f"| {caissons} caissons | {variant} | {hours:g} h | {r['wall_s']:.2f} | "
                f"{r['us_per_step']:.1f} | {r['speedup']:,.0f}× | {day:.1f} s |"
            )


if __name__ == "__main__":
    main()

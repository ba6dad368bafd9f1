"""How the staged-plant baseline (simulators/baselines.py, `StagingRules`) was tuned: a grid of
its staging thresholds and delays on three days of the demo site (a January day, a July day of hot
water only, an April day), each run in-process as bench/closed_loop.py runs them. A setting is
scored by the heat bought or wasted, backup heat + heat dumped (kWh, the three days together),
among those keeping the supply ≥ 99 % in band after the first hour; the best is the default.

    .venv/bin/python bench/tune_staged.py [--workers 2]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from dataclasses import asdict, replace
from multiprocessing import Pool
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from simulators.baselines import DEFAULT_STAGING, StagedPlant, StagingRules  # noqa: E402
from simulators.closed_loop import run_closed_loop  # noqa: E402
from simulators.run import ScenarioRun  # noqa: E402
from simulators.scenario import load_scenario  # noqa: E402

DAYS = ("demo-winter-day", "residential-summer-dhw-day", "residential-low-compute-day")
GRID = {
    "up_share": (0.8, 0.9, 1.0),
    "down_share": (0.6, 0.8),
    "up_delay": (300.0, 600.0),
    "down_delay": (600.0, 900.0),
}
WARMUP = 3600.0


def run(job: tuple[StagingRules, str]) -> tuple[StagingRules, str, dict[str, float]]:
    rules, name = job
    loaded = load_scenario(ROOT / "simulators" / "scenarios" / f"{name}.yaml")
    scenario = loaded.scenario.model_copy(update={"duration": 24 * 3600.0})
    simulation = ScenarioRun(scenario, loaded.site.config, loaded.path.parent)
    model = simulation.model
    staged = StagedPlant(loaded.site, rules=rules)
    warm: list[tuple[float, float]] = []

    def sample(step: int) -> None:
        if step == WARMUP:
            warm.append((model.totals.seconds_running, model.totals.seconds_out_of_band))

    kpis = run_closed_loop(simulation, loaded.site, staged, staged.refs, sample, every=60).kpis
    running = model.totals.seconds_running - warm[0][0]
    outside = model.totals.seconds_out_of_band - warm[0][1]
    return (
        rules,
        name,
        {
            "wasted_kwh": kpis.backup_heat_kwh + kpis.heat_dumped_kwh,
            "in_band": 1 - outside / running if running else 1.0,
            "it_kwh": kpis.it_energy_kwh,
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    settings = [
        replace(DEFAULT_STAGING, **dict(zip(GRID, values, strict=True)))
        for values in itertools.product(*GRID.values())
    ]
    started = time.perf_counter()
    scores: dict[StagingRules, dict[str, float]] = {}
    with Pool(args.workers) as pool:
        for rules, _, figures in pool.imap_unordered(run, [(r, d) for r in settings for d in DAYS]):
            total = scores.setdefault(rules, {"wasted_kwh": 0.0, "in_band": 1.0, "it_kwh": 0.0})
            total["wasted_kwh"] += figures["wasted_kwh"]
            total["it_kwh"] += figures["it_kwh"]
            total["in_band"] = min(total["in_band"], figures["in_band"])
    print(f"{len(settings)} settings × {len(DAYS)} days in {time.perf_counter() - started:.0f} s")
    print("| " + " | ".join(GRID) + " | backup + dumped kWh | worst in band | IT kWh |")
    print("|" + "---|" * (len(GRID) + 3))
    ranked = sorted(
        scores.items(), key=lambda item: (item[1]["in_band"] < 0.99, item[1]["wasted_kwh"])
    )
    for rules, total in ranked:
        values = " | ".join(f"{asdict(rules)[k]:g}" for k in GRID)
        print(
            f"| {values} | {total['wasted_kwh']:,.0f} | {100 * total['in_band']:.2f} % | "
            f"{total['it_kwh']:,.0f} |"
        )


if __name__ == "__main__":
    main()

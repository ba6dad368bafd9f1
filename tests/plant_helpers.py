"""Building blocks for tests that run the plant model in-process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from controller.config.loader import load_site
from controller.config.site import SiteConfig
from simulators.plant.model import PlantModel
from simulators.run import ScenarioRun
from simulators.scenario import Scenario

ROOT = Path(__file__).resolve().parent.parent
SITES = ROOT / "sites"


def site_config(name: str, **updates: Any) -> SiteConfig:
    """A bundled site, with top-level sections replaced by `updates` (already-built models)."""
    config = load_site(SITES / f"{name}.yaml").config
    return config.model_copy(update=updates) if updates else config


def with_tank(site: SiteConfig, **updates: Any) -> SiteConfig:
    """`site` with its buffer tank's fields replaced (e.g. `initial_temperature`)."""
    plant = site.plant
    tank = plant.buffer_tank.model_copy(update=updates)
    return site.model_copy(update={"plant": plant.model_copy(update={"buffer_tank": tank})})


def site_copy(directory: Path, extra: str = "", name: str = "demo") -> Path:
    """A bundled site file copied into `directory` (its maps still found), `extra` YAML appended."""
    text = (SITES / f"{name}.yaml").read_text()
    text = text.replace("maps_dir: ../plc_maps", f"maps_dir: {ROOT / 'plc_maps'}")
    path = directory / "site.yaml"
    path.write_text(text + "\n" + extra)
    return path


def scenario_run(site: SiteConfig, **fields: Any) -> ScenarioRun:
    spec: dict[str, Any] = {
        "name": "test",
        "site": "unused",
        "start": "2026-01-15T00:00:00+01:00",
        "duration": "1 h",
        "weather": {"kind": "constant", "temperature": "0 degC"},
    }
    spec.update(fields)
    return ScenarioRun(Scenario.model_validate(spec), site, ROOT)


class RemoteSupervisor:
    """Holds every caisson in remote mode at a fixed pump speed and cap (each caisson's own in
    `caps`), renewing its leases each step the way the supervisory controller will; with `inlet`,
    the loading units' inlet setpoint too (a lease of its own)."""

    def __init__(self, model: PlantModel, pump_speed: float, cap: float) -> None:
        self.model = model
        self.pump_speed = pump_speed
        self.cap = cap
        self.caps = np.full(len(model.ids), cap)
        self.inlet: float | None = None
        self.beats = 0
        model.commands.remote_request[:] = True

    def step(self) -> None:
        model = self.model
        self.beats += 1
        for i in range(len(model.ids)):
            model.commands.write(
                i,
                model.time,
                pump_speed=self.pump_speed,
                plc_cap=float(self.caps[i]),
                compute_cap=self.cap,
                heartbeat=self.beats,
                inlet_setpoint=self.inlet,
            )
        if self.beats == 1:
            model.commands.remote_request[:] = True
        model.step()

    def run(self, seconds: float) -> None:
        for _ in range(round(seconds / self.model.dt)):
            self.step()

"""What the OPC-UA test modules share: the demo plant's bindings and certificate pairs."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

from controller.config.maps import OpcUaMap
from simulators.devices.bindings import DeviceBinding, site_bindings
from simulators.devices.certificates import make_certificate
from simulators.run import ScenarioRun
from simulators.scenario import load_scenario
from tests.plant_helpers import ROOT

SCENARIO = ROOT / "simulators" / "scenarios" / "demo-winter-day.yaml"


@dataclass
class Plant:
    """The demo plant in-process, with the bindings its simulated devices serve."""

    run: ScenarioRun
    bindings: dict[str, DeviceBinding]

    def advance(self, seconds: int) -> None:
        for _ in range(seconds):
            self.run.step()


def demo_plant(warm_up: int = 60) -> Plant:
    loaded = load_scenario(SCENARIO)
    run = ScenarioRun(loaded.scenario, loaded.site.config, loaded.path.parent)
    plant = Plant(run, site_bindings(run.model, loaded.site))
    plant.advance(warm_up)
    return plant


def opcua_map(binding: DeviceBinding) -> OpcUaMap:
    assert isinstance(binding.device_map, OpcUaMap)
    return binding.device_map


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path
    uri: str


async def make_pair(folder: Path, name: str) -> Pair:
    """A certificate and key called `name` in `folder`/own; asyncua warns when a certificate does
    not name this machine's host name, so it does."""
    uri = f"urn:digital-boiler:test:{name}"
    cert, key = await make_certificate(folder / "own", name, uri, socket.gethostname())
    return Pair(cert, key, uri)

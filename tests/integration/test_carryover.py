"""What a restarted daemon carries over (controller/control/carryover.py): each caisson's run
hours, on which lead and lag rotate, and the day's peak load, for which the tank is kept charged.
The demo plant on real sockets (10× real time), a daemon in this process stopped as systemd stops
it, and a second one on the same state files; then a carryover that cannot be read."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console
from structlog.testing import capture_logs

from controller.cli.views import caisson_table
from controller.config.loader import load_site
from controller.daemon import CARRYOVER, Daemon
from controller.historian.spool import Spool
from controller.systemd import Notifier
from simulators.devices.plant_server import SimulatedPlant
from simulators.lockstep import field_overrides
from tests.maintenance_helpers import DEMO, clean_environment, until_holds

SPEED = 10.0
JANUARY_MORNING = datetime(2026, 1, 15, 6, 0, tzinfo=UTC)  # the load near the caissons' capacity


def daemon_for(plant: SimulatedPlant, tmp_path: Path) -> Daemon:
    addresses, endpoints = field_overrides(plant)
    return Daemon(
        plant.site,
        addresses=addresses,
        endpoints=endpoints,
        time_scale=SPEED,
        notifier=Notifier(None),
        spool=tmp_path / "demo.spool",
        environ=clean_environment(tmp_path / "state"),
    )


async def test_a_restarted_daemon_takes_over_the_run_hours_and_the_days_peak(
    tmp_path: Path,
) -> None:
    plant = SimulatedPlant(
        load_site(DEMO), start=JANUARY_MORNING, speed=SPEED, ephemeral_ports=True
    )
    await plant.start()
    try:
        first = daemon_for(plant, tmp_path)
        await first.start()
        try:

            def ran_a_while() -> bool:
                units = first.supervisor.staging.units
                return len(units) == 3 and max(u.run_seconds for u in units.values()) > 60

            await until_holds(ran_a_while, "the first daemon runs its caissons for a minute")
            await until_holds(
                lambda: first.supervisor.dispatch.peaks.peak > 0, "a load in the peak memory"
            )
        finally:
            await first.stop()
        run = {i: u.run_seconds for i, u in first.supervisor.staging.units.items()}
        peaks = first.supervisor.dispatch.peaks
        assert max(run.values()) > 60

        second = daemon_for(plant, tmp_path)
        await second.start()
        try:
            supervisor = second.supervisor
            assert supervisor.staging.carried == pytest.approx(run)
            assert supervisor.dispatch.peaks.peak == pytest.approx(peaks.peak)

            def scanned() -> bool:
                return len(supervisor.staging.units) == 3

            await until_holds(scanned, "the second daemon stages")
            # Each caisson's count goes on from where the first daemon left it.
            for i, unit in supervisor.staging.units.items():
                assert unit.run_seconds >= run[i]
            # What an engineer sees: `boilerctl status`'s answer and its table.
            status = second.operations.status()
            assert status.plant is not None
            assert status.plant.day_peak_kw is not None
            assert status.plant.day_peak_kw >= peaks.peak / 1e3
            hours = {c.id: c.run_hours for c in status.caissons}
            for i, seconds in run.items():
                shown = hours[f"c{i + 1}"]
                assert shown is not None
                assert shown >= seconds / 3600
            console = Console(record=True, width=240)
            console.print(caisson_table(status, UTC))
            caption = " ".join(console.export_text().split())  # it wraps at the table's width
            shown_hours = ", ".join(f"{c.id} {c.run_hours:.1f}" for c in status.caissons)
            peak = f"{status.plant.day_peak_kw:.1f}"
            assert f"day's peak load {peak} kW · run hours: {shown_hours}" in caption
        finally:
            await second.stop()
    finally:
        await plant.stop()


async def test_a_carryover_that_cannot_be_read_is_left_with_a_warning(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "demo.spool", 1e6)
    spool.save_state(CARRYOVER, '{"version": 1, "at": "yesterday"}')
    spool.close()
    plant = SimulatedPlant(
        load_site(DEMO), start=JANUARY_MORNING, speed=SPEED, ephemeral_ports=True
    )
    await plant.start()
    try:
        daemon = daemon_for(plant, tmp_path)
        with capture_logs() as logs:
            await daemon.start()
        try:
            assert daemon.supervisor.staging.carried == {}
            assert daemon.supervisor.dispatch.peaks.peak == 0.0
            warned = [e for e in logs if e["event"] == "carryover_not_restored"]
            assert len(warned) == 1
            assert "yesterday" in warned[0]["error"]
        finally:
            await daemon.stop()
    finally:
        await plant.stop()

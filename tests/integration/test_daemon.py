"""`boilerctl run` as systemd runs it: a process against the simulated plant on real sockets,
killed and restarted; and the one-line refusal of a bad site file."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from controller.config.loader import LoadedSite, load_site
from controller.config.maps import ModbusMap
from controller.config.units import point_unit_factor
from controller.control.supervisor import Supervisor
from controller.fieldbus.image import PointRef
from simulators.devices.plant_server import SimulatedPlant
from simulators.plant.plc import PlcMode
from tests.plant_helpers import SITES, site_copy

BOILERCTL = Path(sys.executable).with_name("boilerctl")
START = datetime(2026, 1, 15, 6, 0, tzinfo=UTC)
WALL_LIMIT_S = 180.0  # a bound for each wait (a hang fails, it is not a timing assertion)


@dataclass(frozen=True)
class Observation:
    time: float  # plant s
    mode: np.ndarray
    pump_speed: np.ndarray  # the PLCs' applied outputs
    it_cap: np.ndarray
    cap_cmd: np.ndarray  # what the supervisor last wrote (the register)


def override_args(plant: SimulatedPlant) -> list[str]:
    args: list[str] = []
    for row in plant.listing():
        if row.protocol == "opc-ua":
            args += ["--endpoint", f"{row.device}={row.endpoint}"]
        else:
            args += ["--address", f"{row.device}={row.host}:{row.port}"]
    return args


async def start_daemon(
    plant: SimulatedPlant, log: Path, site: Path | None = None
) -> asyncio.subprocess.Process:
    """`boilerctl run` of the plant's site file (or `site`) against the simulated plant."""
    with log.open("a") as stderr:
        return await asyncio.create_subprocess_exec(
            str(BOILERCTL),
            "--log-level",
            "info",
            "run",
            "--site",
            str(site or plant.site.path),
            *override_args(plant),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )


async def until(condition: Callable[[], bool], what: str) -> None:
    try:
        async with asyncio.timeout(WALL_LIMIT_S):
            while not condition():
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"not seen within {WALL_LIMIT_S} s: {what}") from None


async def stop_all(plant: SimulatedPlant, *daemons: asyncio.subprocess.Process | None) -> None:
    """Kill what still runs of `daemons`, then stop the plant."""
    for process in daemons:
        if process is not None and process.returncode is None:
            process.kill()
            await process.wait()
    await plant.stop()


def steps(seen: list[Observation], field: str) -> np.ndarray:
    """|change| of an applied output from each plant step to the next, every caisson."""
    return np.abs(np.diff(np.array([getattr(o, field) for o in seen]), axis=0))


def span(site: LoadedSite, point_id: str) -> float:
    """A skid setpoint's engineering range, SI."""
    device_map = site.device_map(site.config.caissons[0].skid)
    assert isinstance(device_map, ModbusMap)
    point = device_map.point(point_id)
    assert point.limits is not None
    return (point.limits.max - point.limits.min) * point_unit_factor(point.unit)


async def test_a_killed_daemon_hands_over_to_the_plcs_and_a_new_one_takes_back_bumplessly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = load_site(SITES / "demo.yaml")
    plant = SimulatedPlant(site, start=START, speed=1.0, ephemeral_ports=True)
    model = plant.model
    seen: list[Observation] = []
    model_step = model.step

    def step_and_observe() -> None:
        model_step()
        plcs = model.plcs
        seen.append(
            Observation(
                model.time,
                plcs.mode.copy(),
                plcs.pump_speed.copy(),
                plcs.it_cap.copy(),
                model.commands.plc_cap.copy(),
            )
        )

    monkeypatch.setattr(model, "step", step_and_observe)

    def all_in(mode: PlcMode) -> bool:
        return bool(np.all(model.plcs.mode == mode))

    log = tmp_path / "daemon.log"
    lease = float(model.plcs.limits[8, 0])  # the caisson type's lease timeout, s
    await plant.start()
    first = second = None
    try:
        first = await start_daemon(plant, log)
        await until(lambda: all_in(PlcMode.REMOTE), "the first daemon takes remote")
        settled = model.time + 12
        await until(lambda: model.time >= settled, "the first daemon runs")
        assert not np.allclose(model.plcs.pump_speed, 0.9)  # not at the safe speed any more

        first.kill()  # SIGKILL: no goodbye
        await first.wait()
        killed_at = model.time
        await until(lambda: all_in(PlcMode.LOCAL_SAFE), "the PLCs fall back to local safe")
        safe_at = next(o.time for o in seen if o.time > killed_at and np.all(o.mode == 2))
        assert safe_at - killed_at <= lease + model.dt  # within the lease timeout (plant time)

        resumed = len(seen)
        second = await start_daemon(plant, log)
        await until(lambda: all_in(PlcMode.REMOTE), "the second daemon takes remote back")
        settled = model.time + 15
        await until(lambda: model.time >= settled, "the second daemon runs")
        second.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(second.wait(), WALL_LIMIT_S) == 0
    finally:
        await stop_all(plant, first, second)

    # The old daemon's last setpoints are still in the registers, away from the safe values the
    # PLCs apply: taking remote back without writing first would be a bump.
    before = seen[resumed - 1]
    pump_limit = 0.02 * span(site, "pump_speed_cmd")
    cap_limit = 0.02 * span(site, "it_cap_cmd")
    assert np.all(np.abs(before.cap_cmd - before.it_cap) > cap_limit)
    # Bumpless handover: from the last step before the new daemon started to the step where each
    # PLC follows it again, no applied value moves more than 2 % of its range in a step.
    for i, caisson in enumerate(site.config.caissons):
        granted = next(k for k in range(resumed, len(seen)) if seen[k].mode[i] == PlcMode.REMOTE)
        handover = seen[resumed - 1 : granted + 1]
        assert np.max(steps(handover, "pump_speed")[:, i]) <= pump_limit + 1e-9, caisson.id
        assert np.max(steps(handover, "it_cap")[:, i]) <= cap_limit + 1e-6, caisson.id
    # After it, values move on the supervisor's own ramps, which may be steeper than 2 % a step
    # (its tuning; pumps speed up unlimited: the safe direction). The daemon's cycles and the
    # plant's steps are not in phase: a step may carry two cycles' worth of ramp, never a jump.
    specs = Supervisor(site).specs
    skid = site.config.caissons[0].skid
    cap_ramp = specs[PointRef(skid, "it_cap_cmd")].rate_up
    pump_ramp = specs[PointRef(skid, "pump_speed_cmd")].rate_down
    assert cap_ramp is not None
    assert pump_ramp is not None
    after = seen[resumed - 1 :]
    cap_rise = np.diff(np.array([o.it_cap for o in after]), axis=0)
    pump_fall = -np.diff(np.array([o.pump_speed for o in after]), axis=0)
    assert np.max(cap_rise) <= max(cap_limit, 2 * cap_ramp * model.dt) + 10.0  # 10 W: register
    assert np.max(pump_fall) <= max(pump_limit, 2 * pump_ramp * model.dt) + 0.001  # 0.1 %
    assert np.all(after[-1].mode == PlcMode.REMOTE)
    text = log.read_text()
    assert "Traceback" not in text
    assert text.count('"daemon_started"') == 2
    assert text.count('"daemon_stopped"') == 1  # the killed one could not say goodbye


def test_a_bad_site_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    site = site_copy(tmp_path)
    site.write_text(
        site.read_text().replace("  kind: residential\n", "  kind: residential\n  colour: red\n")
    )
    result = subprocess.run(
        [str(BOILERCTL), "run", "--site", str(site)],
        capture_output=True,
        text=True,
        timeout=WALL_LIMIT_S,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"{site}:")
    assert "colour" in lines[0]
    assert "Traceback" not in result.stderr


def test_an_override_for_an_unknown_device_is_one_line_and_exit_2() -> None:
    result = subprocess.run(
        [
            str(BOILERCTL),
            "run",
            "--site",
            str(SITES / "demo.yaml"),
            "--address",
            "c9-skid=127.0.0.1:1502",
        ],
        capture_output=True,
        text=True,
        timeout=WALL_LIMIT_S,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"run: --address c9-skid=127.0.0.1:1502: no Modbus device 'c9-skid' in "
        f"{SITES / 'demo.yaml'} (it has c1-skid, c2-skid, c3-skid, plant-skid, heat-meter)"
    )


QUICK_STAGING = """
control:
  staging: {up_delay: 10 s, down_delay: 10 s, idle_delay: 10 s, min_run: 10 s, min_off: 10 s}
"""


async def test_a_daemon_restarted_within_the_lease_starts_no_caisson_it_did_not_decide_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A July noon, the tank charged from the morning (65 °C), wants little or no caisson: the
    first daemon stages caissons off and their PLCs stop the pumps. Killed and restarted within the
    PLCs' lease, the second daemon takes the plant back as it finds it: the stopped pumps stay
    stopped (no start it did not ask for), and no PLC falls back to local safe mode. (Staging's
    delays and the PLCs' post-run time are cut to seconds, and their lease stretched to 30 s, so
    that this runs in real time. With the tank's top under the 63.5 °C hot water needs, the backup
    boiler tops the supply up, and the supervisor would rightly charge the tank on all three.)"""
    text = (SITES / "demo.yaml").read_text()
    text = text.replace(
        "      lease_timeout: 10 s\n", "      lease_timeout: 30 s\n      post_run: 5 s\n"
    )
    assert "initial_temperature: 55 degC" in text
    text = text.replace("initial_temperature: 55 degC", "initial_temperature: 65 degC")
    copy = site_copy(tmp_path, QUICK_STAGING)
    copy.write_text(
        text.replace("maps_dir: ../plc_maps", f"maps_dir: {SITES.parent / 'plc_maps'}")
        + QUICK_STAGING
    )
    site = load_site(copy)
    july = datetime(2026, 7, 15, 12, 0, tzinfo=UTC)
    plant = SimulatedPlant(site, start=july, speed=1.0, ephemeral_ports=True)
    model = plant.model
    pumps: list[tuple[float, np.ndarray, np.ndarray]] = []  # (time, pump speeds, PLC modes)
    model_step = model.step

    def step_and_observe() -> None:
        model_step()
        pumps.append((model.time, model.pump_speed.copy(), model.plcs.mode.copy()))

    monkeypatch.setattr(model, "step", step_and_observe)
    log = tmp_path / "daemon.log"
    await plant.start()
    first = second = None
    try:
        first = await start_daemon(plant, log, copy)

        def some_stopped() -> bool:  # standing by, and their drives run down
            standby = model.plcs.standby
            return bool(standby.any()) and bool(np.all(model.pump_speed[standby] == 0.0))

        await until(some_stopped, "caissons stand by, their pumps stopped")
        stopped = set(np.flatnonzero(model.plcs.standby))
        first.kill()
        await first.wait()
        killed_at = model.time
        second = await start_daemon(plant, log, copy)
        beat = int(model.commands.heartbeat[0])
        await until(lambda: int(model.commands.heartbeat[0]) != beat, "the second daemon beats")
        resumed_at = model.time
        watched = model.time + 30
        await until(lambda: model.time >= watched, "the second daemon runs for 30 s")
        second.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(second.wait(), WALL_LIMIT_S) == 0
    finally:
        await stop_all(plant, first, second)
    assert resumed_at - killed_at < 30  # within the lease
    after = [(speeds, modes) for t, speeds, modes in pumps if t >= killed_at]
    for i in stopped:
        assert all(speeds[i] == 0.0 for speeds, _ in after), f"c{i + 1} was started"
    assert all(np.all(modes == PlcMode.REMOTE) for _, modes in after)
    assert model.plcs.trips == 0
    assert "Traceback" not in log.read_text()

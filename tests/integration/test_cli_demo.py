"""`boilerctl demo` as a user runs it: the simulated plant and the daemon in one process."""

from __future__ import annotations

import re

from tests.integration.test_cli_sim import boilerctl, on_a_terminal

# A caisson's summary, its active interlocks (e.g. the chips' margin at full power) in brackets.
CAISSON = (
    r"(c[123]) (remote|local|local safe)(?: \[[\w,]+\])? out ([\d.]+) °C in [\d.]+ °C "
    r"flow [\d.]+ L/min"
)


def test_demo_off_a_terminal_prints_status_lines_to_the_end() -> None:
    result = boilerctl(
        "--log-level", "warning", "demo", "--duration", "3 min", "--speed", "10", "--every", "10"
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    status = [line for line in lines if line.startswith("Thu 15 Jan 06:0")]
    # About 180 cycles, one line every 10; the OPC-UA sessions' start-up (a few seconds of wall
    # time, tens of plant seconds at ×10 on a busy machine) is within the run.
    assert len(status) >= 3
    for line in status:
        assert re.search(r"mode \w+, tank SoC \d+ %, load [\d.]+ kW", line), line
        assert [m.group(1) for m in re.finditer(CAISSON, line)] == ["c1", "c2", "c3"], line
    last = {m.group(1): m.group(2) for m in re.finditer(CAISSON, status[-1])}
    assert last == {"c1": "remote", "c2": "remote", "c3": "remote"}  # the daemon runs them
    summary = re.fullmatch(r"demo: (\d+) s of plant time, (\d+) cycles, .*", lines[-2])
    assert summary is not None, lines[-2]
    assert int(summary.group(1)) >= 180
    assert "Traceback" not in result.stderr
    # No InfluxDB configured: the spool keeps the data, and `historian export` gives it back as
    # line protocol, every device's data among it.
    kept = re.fullmatch(
        r"historian: (\d+) waiting in (\S+) \(boilerctl historian export --spool \S+\)", lines[-1]
    )
    assert kept is not None, lines[-1]
    exported = boilerctl("historian", "export", "--spool", kept.group(2))
    assert exported.returncode == 0, exported.stderr
    measurements = {line.split(",", 1)[0] for line in exported.stdout.splitlines()}
    assert {"caisson_skid", "compute_manager", "plant_skid", "caisson_control", "kpi"} <= (
        measurements
    )
    assert len(exported.stdout.splitlines()) >= int(kept.group(1)) > 0


def test_demo_on_a_terminal_shows_the_live_table() -> None:
    code, screen = on_a_terminal(
        # A minute of plant time (6 s of wall time): time enough, on a busy machine, for every
        # OPC-UA session and every PLC's grant of remote mode.
        "--log-level",
        "warning",
        "demo",
        "--duration",
        "60",
        "--speed",
        "10",
        columns=140,
    )
    assert code == 0, screen
    assert "Residence Les Tilleuls (demo): simulated plant ×10" in screen
    for header in ("control", "PLC mode", "outlet", "flow", "pump %", "cap kW", "IT kW", "running"):
        assert header in screen
    assert re.search(r"│ c3\s+│ auto\s+│ remote\s+│", screen)
    assert re.search(r"mode \w+, tank SoC \d+ %", screen)
    summary = re.search(r"demo: (\d+) s of plant time", screen)
    assert summary is not None, screen
    assert int(summary.group(1)) >= 60  # stopped at the first cycle past the duration
    assert "Traceback" not in screen

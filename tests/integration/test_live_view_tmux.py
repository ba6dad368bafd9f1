"""`boilerctl demo` as a person sees it, in a terminal multiplexer (tmux, a real terminal
emulator): the screen captured at start, in steady state and during a fault (a leak on c1 and a
compute manager unreachable, from a fault plan). Each time the screen holds the live table with
every caisson, whole, and no log line inside or below it: the few warnings worth showing are
above the table, the rest is in the log file the view names, and nothing has scrolled off the
screen (tmux keeps no history).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.plant_helpers import ROOT

BOILERCTL = Path(sys.executable).with_name("boilerctl")
CAISSONS = ("c1", "c2", "c3")
COLUMNS, LINES = 160, 50
WALL_LIMIT_S = 90.0  # a bound for each wait: a hang fails, it is not a timing assertion
FAULTS = """\
faults:
  - {at: 60 s, kind: leak, caisson: c1}
  - {at: 60 s, kind: unreachable, device: c3-compute, mode: refuse, duration: 1 h}
"""
# What a log line looks like on a screen: the view's own short form (time, level, event), or
# structlog's console and JSON forms, or an ISO time stamp anywhere.
LOG_LINE = re.compile(
    r"^\d\d:\d\d:\d\d (debug|info|warning|error|critical) "
    r"|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d"
    r"|\[\s*(debug|info|warning|error)\s*\]"
    r'|^\{"'
)
TITLE = re.compile(r"^Residence Les Tilleuls \(demo\): simulated plant ×10, \w{3} \d\d \w{3} ")
BOX = "┏┃┡│└"


@dataclass
class Tmux:
    socket: Path
    session: str = "demo"

    def run(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-S", str(self.socket), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return done.stdout

    def screen(self) -> list[str]:
        """The visible screen, one string per row."""
        return self.run("capture-pane", "-p", "-t", self.session).splitlines()

    def history(self) -> int:
        """Lines scrolled off the top of the screen."""
        return int(self.run("display-message", "-p", "-t", self.session, "#{history_size}"))

    def alive(self) -> bool:
        return self.run("list-panes", "-t", self.session, "-F", "#{pane_dead}").strip() == "0"

    def wait_for(self, found: Callable[[list[str]], bool], what: str) -> list[str]:
        deadline = time.monotonic() + WALL_LIMIT_S
        screen: list[str] = []
        while time.monotonic() < deadline:
            screen = self.screen()
            if found(screen):
                return screen
            assert self.alive(), "the demo exited; its screen:\n" + "\n".join(screen)
            time.sleep(0.25)
        raise AssertionError(f"no {what} within {WALL_LIMIT_S:g} s; screen:\n" + "\n".join(screen))


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[Tmux, Path]]:
    assert shutil.which("tmux"), "tmux is not installed: scripts/debian-packages.txt lists it"
    faults = tmp_path / "faults.yaml"
    faults.write_text(FAULTS)
    log = tmp_path / "demo.log"
    env = {"STATE_DIRECTORY": str(tmp_path / "state"), "TERM": "tmux-256color", "LANG": "C.UTF-8"}
    command = [
        "env",
        "-u",  # the terminal's size is tmux's window, not what the test runner's says
        "COLUMNS",
        "-u",
        "LINES",
        *(f"{k}={v}" for k, v in env.items()),
        str(BOILERCTL),
        "demo",
        "--speed",
        "10",
        "--faults",
        str(faults),
        "--log-file",
        str(log),
    ]
    tmux = Tmux(tmp_path / "tmux.sock")
    config = tmp_path / "tmux.conf"  # a demo that exits leaves its last screen to read
    config.write_text("set -g remain-on-exit on\nset -g history-limit 1000\n")
    tmux.run(
        "-f",
        str(config),
        "new-session",
        "-d",
        "-s",
        tmux.session,
        "-x",
        str(COLUMNS),
        "-y",
        str(LINES),
        "-c",
        str(ROOT),
        shlex.join(command),
    )
    try:
        yield tmux, log
    finally:
        subprocess.run(["tmux", "-S", str(tmux.socket), "kill-server"], check=False, timeout=30)


def table(screen: list[str]) -> tuple[int, int]:
    """(title row, last row) of the live view's table and what follows it, to the hint."""
    title = next(i for i, row in enumerate(screen) if TITLE.match(row))
    end = next(i for i, row in enumerate(screen) if row.startswith("Ctrl-C to stop."))
    return title, end


def rows_of(screen: list[str]) -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    for row in screen:
        cells = [cell.strip() for cell in re.split("[│┃]", row)[1:-1]]
        if cells and cells[0] in CAISSONS:
            assert cells[0] not in rows, f"{cells[0]} twice on the screen:\n" + "\n".join(screen)
            rows[cells[0]] = cells
    return rows


def every_caisson_live(screen: list[str]) -> bool:
    rows = rows_of(screen)
    return set(rows) == set(CAISSONS) and all(r[2] == "remote" for r in rows.values())


def c1_isolated(screen: list[str]) -> bool:
    rows = rows_of(screen)
    text = "\n".join(screen)
    return "c1" in rows and "leak" in rows["c1"][3] and "wrong: c1: leak" in text.replace("\n", "")


def check_whole(screen: list[str], tmux: Tmux) -> list[str]:
    """The table is whole and alone: every caisson once, every row of the table a row of the
    table, no log line from its title down; returns the rows above it (the log panel)."""
    text = "\n".join(screen)
    first, last = table(screen)
    body = [row for row in screen[first + 1 : last] if row.strip()]
    top = next(i for i, row in enumerate(body) if row.startswith("┏"))
    bottom = next(i for i, row in enumerate(body) if row.startswith("└"))
    assert all(row[0] in BOX for row in body[top : bottom + 1]), text
    assert bottom - top + 1 == 4 + len(CAISSONS), text  # borders, header, one row per caisson
    assert set(rows_of(screen)) == set(CAISSONS), text
    assert not [row for row in screen[first:] if LOG_LINE.search(row)], text
    assert tmux.history() == 0, "something scrolled the screen"
    return screen[:first]


def test_the_live_view_keeps_its_table_whole_at_start_steady_state_and_during_a_fault(
    demo: tuple[Tmux, Path],
) -> None:
    tmux, log = demo

    # At start: the view's first screen, before the plant answers, and no log line at all.
    start = tmux.wait_for(lambda s: any(TITLE.match(row) for row in s), "first view")
    assert not [row for row in start if LOG_LINE.search(row)], "\n".join(start)
    assert f"log: {log}" in " ".join(row.strip() for row in start)

    # Steady state: every caisson in remote, the plant line with the figures an operator reads
    # first, and the table alone on its rows.
    steady = tmux.wait_for(every_caisson_live, "every caisson in remote")
    check_whole(steady, tmux)
    text = "\n".join(steady)
    assert re.search(
        r"^building supply [\d.]+ °C \(band 60–70 °C\) · outdoor -?[\d.]+ °C · "
        r"tank top [\d.]+ °C, bottom [\d.]+ °C$",
        text,
        re.M,
    ), text
    assert re.search(
        r"^today: heat delivered \d+ kWh, backup heat \d+ kWh, ERF [\d.-]+$", text, re.M
    ), text

    # During a fault: c1's tray is wet and c3's compute manager is gone. The view says what is
    # wrong in words; the warnings show above the table, one line each; the table stays whole.
    fault = tmux.wait_for(
        lambda s: c1_isolated(s) and "c3-compute not answering" in "\n".join(s),
        "c1 isolated and c3-compute lost",
    )
    above = check_whole(fault, tmux)
    warnings = [row for row in above if LOG_LINE.search(row)]
    assert warnings, "\n".join(fault)
    assert any("c3-compute" in row for row in warnings), "\n".join(fault)
    assert all(len(row) <= COLUMNS for row in warnings)
    flat = " ".join(row.strip() for row in fault)
    assert "wrong: c1: leak: isolated by its PLC (once repaired: boilerctl reset-trip c1)" in flat
    assert "unknown subscription" not in flat

    # The log file has it all, as JSON lines: the warnings shown and the rest.
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert {"opcua_connection_failed", "daemon_started"} <= {e["event"] for e in entries}
    assert not [e for e in entries if "unknown subscription" in e["event"]]  # info level: out

    # Ctrl-C: the demo stops with its summary under the last view.
    tmux.run("send-keys", "-t", tmux.session, "C-c")
    end = tmux.wait_for(
        lambda s: any(row.startswith("demo: ") for row in s) and not tmux.alive(), "the summary"
    )
    assert "Traceback" not in "\n".join(end)
    assert os.path.getsize(log) > 0

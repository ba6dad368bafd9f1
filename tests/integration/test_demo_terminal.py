"""`boilerctl demo` on a pseudo-terminal, as an engineer starts it: it shows every caisson of the
demo site within a bounded time, serves the local API meanwhile (`boilerctl status` finds it),
and Ctrl-C stops it cleanly with its summary."""

from __future__ import annotations

import fcntl
import json
import os
import re
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path

from tests.plant_helpers import ROOT

BOILERCTL = Path(sys.executable).with_name("boilerctl")
CAISSONS = ("c1", "c2", "c3")  # sites/demo.yaml
WALL_LIMIT_S = 90.0  # a bound for each wait: a hang fails the test, it is not a timing assertion
COLUMNS, LINES = 200, 50
ANSI = re.compile(r"\x1b(\[[0-9;?]*[A-Za-z]|\][^\x07]*\x07|[()][A-Z0-9]|[=>])")
NUMBER = re.compile(r"-?\d+(\.\d+)?")
CELL_EDGE = re.compile("[│┃]")  # rich's light (body) and heavy (header) vertical rules

# Run the command as the leader of a new session whose controlling terminal is the pseudo-terminal
# (stdin): then Ctrl-C typed on it is SIGINT to the command, as in a real terminal.
CONTROLLING_TTY = (
    "import fcntl, os, sys, termios; "
    "fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


class Terminal:
    """A command on a pseudo-terminal; what it prints is read in the background (so that it never
    blocks on a full terminal) and kept as screen text without the control sequences."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.leader, follower = os.openpty()
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, COLUMNS, 0, 0))
        self.process = subprocess.Popen(
            [sys.executable, "-c", CONTROLLING_TTY, *args],
            stdin=follower,
            stdout=follower,
            stderr=follower,
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        os.close(follower)
        self._chunks: list[bytes] = []
        self._lock = threading.Lock()
        self.closed = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            while True:
                try:
                    chunk = os.read(self.leader, 65536)
                except OSError:  # EIO: every process holding the terminal has closed it
                    break
                if not chunk:
                    break
                with self._lock:
                    self._chunks.append(chunk)
        finally:
            self.closed.set()

    @property
    def screen(self) -> str:
        with self._lock:
            text = b"".join(self._chunks).decode("utf-8", "replace")
        return ANSI.sub("", text).replace("\r", "\n")

    def wait_for(self, found: Callable[[str], bool], what: str) -> str:
        deadline = time.monotonic() + WALL_LIMIT_S
        while time.monotonic() < deadline:
            screen = self.screen
            if found(screen):
                return screen
            if self.process.poll() is not None and self.closed.is_set():
                break
            time.sleep(0.2)
        tail = "\n".join(self.screen.splitlines()[-60:])
        raise AssertionError(f"no {what} within {WALL_LIMIT_S:g} s; the screen ends:\n{tail}")

    def type(self, data: bytes) -> None:
        os.write(self.leader, data)

    def finish(self) -> int:
        """The exit code, once the command has exited and its output is read."""
        code = self.process.wait(timeout=WALL_LIMIT_S)
        self.closed.wait(timeout=WALL_LIMIT_S)
        return code

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=5)
        os.close(self.leader)


def cells_of(line: str) -> list[str]:
    return [cell.strip() for cell in CELL_EDGE.split(line)[1:-1]]


def caisson_rows(screen: str) -> dict[str, list[list[str]]]:
    """The cells of the live table's caisson rows seen so far, by caisson."""
    rows: dict[str, list[list[str]]] = {}
    for line in screen.splitlines():
        cells = cells_of(line)
        if cells and cells[0] in CAISSONS:
            rows.setdefault(cells[0], []).append(cells)
    return rows


def every_caisson_live(screen: str) -> bool:
    """Each caisson on a row of the table with its PLC in remote mode or its outlet measured."""
    header = next(
        (
            cells_of(line)
            for line in screen.splitlines()
            if "PLC mode" in line and "outlet °C" in line
        ),
        None,
    )
    if header is None:
        return False
    mode, outlet = header.index("PLC mode"), header.index("outlet °C")
    rows = caisson_rows(screen)
    return all(
        any(
            len(cells) == len(header)
            and (cells[mode] == "remote" or NUMBER.fullmatch(cells[outlet]) is not None)
            for cells in rows.get(caisson, [])
        )
        for caisson in CAISSONS
    )


def test_demo_shows_every_caisson_serves_the_api_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = dict(
        os.environ,
        STATE_DIRECTORY=str(state),
        COLUMNS=str(COLUMNS),
        LINES=str(LINES),
        TERM="xterm-256color",
    )
    env.pop("NO_COLOR", None)
    terminal = Terminal([str(BOILERCTL), "--log-level", "warning", "demo", "--speed", "10"], env)
    try:
        screen = terminal.wait_for(every_caisson_live, "row for each of c1, c2, c3")
        assert "Residence Les Tilleuls (demo): simulated plant ×10" in screen
        assert "Ctrl-C to stop. In another terminal: boilerctl status --site" in screen

        # The demo serves the local API: `boilerctl status` in another terminal finds it.
        status = subprocess.run(
            [str(BOILERCTL), "status", "--site", "sites/demo.yaml", "--json"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
            timeout=WALL_LIMIT_S,
            check=False,
        )
        assert status.returncode == 0, status.stderr
        document = json.loads(status.stdout)
        assert document["site"] == "Residence Les Tilleuls (demo)"
        assert [c["id"] for c in document["caissons"]] == list(CAISSONS)
        assert all(c["initialised"] for c in document["caissons"])
        assert (state / f"{document['site_id']}.token").exists()
        assert (state / f"{document['site_id']}.api").exists()

        terminal.type(b"\x03")  # Ctrl-C
        code = terminal.finish()
        screen = terminal.screen
        assert code == 0, screen[-3000:]
        summary = re.search(r"^demo: (\d+(?:\.\d+)?) s of plant time, (\d+) cycles", screen, re.M)
        assert summary is not None, screen[-3000:]
        assert int(summary.group(2)) > 0
        assert re.search(r"^historian: ", screen, re.M), screen[-3000:]
        assert "Traceback" not in screen
        assert not (state / f"{document['site_id']}.api").exists()  # the daemon has gone
    finally:
        terminal.close()

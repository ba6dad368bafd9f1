"""A live view on a terminal that nothing scrolls away: `boilerctl demo` and `boilerctl watch`.

While the view is on screen, every log line (ours and the libraries', and anything else written
to stderr) goes to a `LogTail` instead of the terminal: in full to the log file the view names,
if any, and the last warnings and errors, shortened to one line each, into the view itself, above
its table. The view is the only thing drawn, so the table is never torn by a line printed through
it, and it is redrawn in place.
"""

from __future__ import annotations

import io
import json
import logging
import sys
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final, TextIO, cast

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.text import Text

from controller.logs import LEVELS, configure_logging

SHOWN_LEVELS: Final = frozenset({"warning", "error", "critical"})
KEPT: Final = 4  # log lines shown above the table
_QUIET_KEYS: Final = frozenset({"event", "level", "timestamp", "logger"})


class LogTail(io.TextIOBase):
    """A text stream for logs: JSON lines, written whole to `path` (if given); the last `keep`
    warnings and errors kept as short lines for the view. Anything that is not a JSON log line
    (a stray print to stderr) is kept as it is."""

    def __init__(self, path: Path | None, keep: int = KEPT) -> None:
        super().__init__()
        self.path = path
        self.recent: deque[str] = deque(maxlen=keep)
        self._partial = ""
        self._file: TextIO | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("a", encoding="utf-8")

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            self._line(line)
        return len(text)

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._partial:
            self._line(self._partial)
            self._partial = ""
        if self._file is not None:
            self._file.close()
            self._file = None
        super().close()

    def _line(self, line: str) -> None:
        if not line.strip():
            return
        if self._file is not None:
            self._file.write(line + "\n")
        shown = short(line)
        if shown is not None:
            self.recent.append(shown)


def short(line: str) -> str | None:
    """A JSON log line as one short line for the view, if it is a warning or an error; any other
    text as it is (None for info and debug lines)."""
    try:
        entry = json.loads(line)
    except ValueError:
        return line.rstrip()
    if not isinstance(entry, dict):
        return line.rstrip()
    level = str(entry.get("level", ""))
    if level not in SHOWN_LEVELS:
        return None
    at = str(entry.get("timestamp", ""))[11:19]
    fields = " ".join(f"{k}={v}" for k, v in entry.items() if k not in _QUIET_KEYS)
    return f"{at} {level} {entry.get('event', '')} {fields}".rstrip()


def log_panel(tail: LogTail) -> RenderableType:
    """The last warnings above the table, one line each (cut, never wrapped), and where the
    full log is."""
    lines = [Text(line, style="yellow", no_wrap=True, overflow="ellipsis") for line in tail.recent]
    where = f"log: {tail.path}" if tail.path is not None else ""
    if not lines and not where:
        return Group()  # nothing logged, nowhere to look: no line
    if not lines:
        return Text(f"no warnings; {where}", style="dim")
    if where:
        lines.append(Text(where, style="dim"))
    return Group(*lines)


def current_level() -> str:
    """The log level configured now (boilerctl's --log-level), as configure_logging takes it."""
    name = logging.getLevelName(logging.getLogger().level).lower()
    return name if name in LEVELS else "info"


@contextmanager
def live_view(
    render: Callable[[], RenderableType], log_level: str, log_file: Path | None
) -> Iterator[Callable[[], None]]:
    """Show `render()` live, logs going to a LogTail shown above it; yields `refresh()`. On the
    way out the logs go back to stderr and the last view stays on the screen."""
    tail = LogTail(log_file)
    stderr = sys.stderr
    console = Console(file=sys.stdout)

    def view() -> RenderableType:
        return Group(log_panel(tail), render())

    stream = cast(TextIO, tail)
    configure_logging(log_level, json_lines=True, stream=stream)
    sys.stderr = stream  # a stray write to stderr must not tear the view either
    try:
        with Live(
            view(),
            console=console,
            auto_refresh=False,
            redirect_stdout=False,
            redirect_stderr=False,
            vertical_overflow="crop",
        ) as live:
            yield lambda: live.update(view(), refresh=True)
    finally:
        sys.stderr = stderr
        configure_logging(log_level, stream=stderr)
        tail.close()

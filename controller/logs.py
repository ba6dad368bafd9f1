"""structlog set-up: key-value logs, console-rendered on a terminal, JSON lines otherwise."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog

LEVELS = ("debug", "info", "warning", "error")


def configure_logging(
    level: str = "info", json_lines: bool | None = None, stream: TextIO | None = None
) -> None:
    """Log at `level` and above to `stream` (stderr); JSON when not on a terminal (journald)."""
    if level not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, not {level!r}")
    out = stream or sys.stderr
    if json_lines is None:
        json_lines = not out.isatty()
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    _route_standard_logging(level, shared, renderer, out)


def _route_standard_logging(
    level: str,
    shared: list[structlog.typing.Processor],
    renderer: structlog.typing.Processor,
    out: TextIO,
) -> None:
    """Libraries that log with `logging` (asyncua, pymodbus) come out in the same format."""
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(getattr(logging, level.upper()))
    # asyncua narrates every session at INFO; its warnings and errors are what operators need
    logging.getLogger("asyncua").setLevel(max(logging.WARNING, root.level))

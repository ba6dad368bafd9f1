"""structlog set-up: key-value logs, console-rendered on a terminal, JSON lines otherwise.

Library messages that mean nothing to an operator (`DEMOTED`) are logged at debug: out of the
terminal and of an info-level log, still in the JSON logs of a debug-level run.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog

LEVELS = ("debug", "info", "warning", "error")
# (logger name prefix, message start) of library messages logged at debug whatever their level:
# asyncua warns when the server's first publish answer for a new subscription (a keep-alive: its
# monitored items are not created yet) arrives before asyncua has registered the subscription,
# once per poll class at every session start: nothing an operator can or need act on.
# Its reports of a connection the driver describes in words itself (opcua_connection_failed:
# a refused certificate, a server without unsecured sessions, a lost connection) are logged at
# debug too: a closed session's close, a ServiceFault, and a fault it cannot decode (node-opcua
# refusing a secure channel), which it logs as an error with its traceback at every retry.
DEMOTED = (
    ("asyncua", "Received data for unknown subscription"),
    ("asyncua", "close_session was called but connection is closed"),
    ("asyncua", "ServiceFault ("),
    ("asyncua", "Exception raised while parsing message from server"),
)


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
    handler.addFilter(_Demote(getattr(logging, level.upper())))
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


class _Demote(logging.Filter):
    """Re-level the `DEMOTED` library messages to debug, then apply the log level to them."""

    def __init__(self, threshold: int) -> None:
        super().__init__()
        self.threshold = threshold

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.DEBUG and any(
            record.name.startswith(name) and str(record.msg).startswith(start)
            for name, start in DEMOTED
        ):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return self.threshold <= logging.DEBUG
        return True

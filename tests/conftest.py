"""Test-wide set-up: quiet logs (warnings and errors still show in failures)."""

from controller.logs import configure_logging

configure_logging("warning", json_lines=False)

"""Test-wide set-up: quiet logs (warnings and errors still show in failures), and a temporary
state directory, so that daemons started by tests (in-process or as `boilerctl` subprocesses,
which inherit the environment) keep their historian spools out of the user's home."""

import atexit
import os
import shutil
import tempfile

from controller.logs import configure_logging

configure_logging("warning", json_lines=False)

_STATE = tempfile.mkdtemp(prefix="boiler-test-state-")
os.environ["STATE_DIRECTORY"] = _STATE
atexit.register(shutil.rmtree, _STATE, ignore_errors=True)

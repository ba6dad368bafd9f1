"""The local API on a Unix socket, served by a real `boilerctl run` (no plant needed: the daemon
serves its API whether or not its devices answer)."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time
from pathlib import Path

from controller.api.client import EXIT_AUTH, EXIT_NO_DAEMON
from controller.api.endpoint import address_path, read_address
from controller.config.loader import load_site
from tests.integration.test_daemon import BOILERCTL, WALL_LIMIT_S
from tests.plant_helpers import site_copy


def boilerctl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BOILERCTL), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_a_daemon_serves_its_api_on_a_unix_socket_only_to_its_token(tmp_path: Path) -> None:
    site = site_copy(tmp_path, "api:\n  socket: run/api.sock\n")
    env = dict(os.environ, STATE_DIRECTORY=str(tmp_path / "state"))
    address_file = address_path(load_site(site), env)
    socket = tmp_path / "run" / "api.sock"
    with (tmp_path / "daemon.log").open("w") as log:
        daemon = subprocess.Popen(
            [str(BOILERCTL), "run", "--site", str(site)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        deadline = time.monotonic() + WALL_LIMIT_S  # a bound: a hang fails
        while read_address(address_file) is None:
            assert daemon.poll() is None, (tmp_path / "daemon.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "the daemon never wrote its address"
            time.sleep(0.2)
        address = read_address(address_file)
        assert address is not None
        assert (address.socket, address.url) == (str(socket), None)
        assert stat.S_IMODE(socket.stat().st_mode) == 0o600  # only its owner may connect

        while True:  # the first scan comes within a period of the start
            status = boilerctl(env, "status", "--site", str(site), "--json")
            assert status.returncode == 0, status.stderr
            caissons = json.loads(status.stdout)["caissons"]
            if caissons or time.monotonic() > deadline:
                break
        assert [c["id"] for c in caissons] == ["c1", "c2", "c3"]
        assert not any(c["initialised"] for c in caissons)  # no device answers: nothing written

        wrong = tmp_path / "wrong.token"
        wrong.write_text("not-the-token\n")
        refused = boilerctl(env, "status", "--site", str(site), "--token-file", str(wrong))
        assert refused.returncode == EXIT_AUTH, refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=WALL_LIMIT_S) == 0
    assert not socket.exists()  # removed with the address file on the way out
    assert read_address(address_file) is None
    gone = boilerctl(env, "status", "--site", str(site))
    assert gone.returncode == EXIT_NO_DAEMON, gone.stderr

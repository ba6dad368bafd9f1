"""`boilerctl sim serve` as an engineer runs it: a process, its listing, mbpoll, a signal."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from asyncua import Client, ua
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256

from simulators.devices.pki import CLIENT_URI
from tests.plant_helpers import ROOT
from tests.ports import free_ports

BOILERCTL = Path(sys.executable).with_name("boilerctl")
STARTUP_S = 60  # three OPC-UA servers take a few seconds to start on a busy machine


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """The demo site and maps in a temporary folder, every device moved to a free port."""
    shutil.copytree(ROOT / "plc_maps", tmp_path / "plc_maps")
    (tmp_path / "sites").mkdir()
    text = (ROOT / "sites" / "demo.yaml").read_text()
    configured = sorted(set(re.findall(r"(?:port: |127\.0\.0\.1:)(1[45]\d\d\d)\b", text)))
    for old, new in zip(configured, free_ports(len(configured)), strict=True):
        text = re.sub(rf"\b{old}\b", str(new), text)
    path = tmp_path / "sites" / "demo.yaml"
    path.write_text(text)
    return path


def start_serving(site: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BOILERCTL), "--log-level", "warning", "sim", "serve", "--site", str(site), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_until(process: subprocess.Popen[str], pattern: str) -> str:
    """stdout up to the first line matching `pattern` (the process must print it in time)."""
    assert process.stdout is not None
    seen = []
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if re.search(pattern, line):
            return "".join(seen)
    process.kill()
    _, stderr = process.communicate()
    raise AssertionError(
        f"no line matching {pattern!r}; got {seen!r}; exit {process.returncode}; stderr {stderr!r}"
    )


def stop_with(process: subprocess.Popen[str], sig: signal.Signals) -> tuple[int, str]:
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=30)
    return process.returncode, stderr


@pytest.fixture
def serving(site: Path) -> Iterator[subprocess.Popen[str]]:
    process = start_serving(site, "--json", "--speed", "10")
    yield process
    if process.poll() is None:
        process.kill()
        process.communicate()


def test_serve_lists_every_device_answers_mbpoll_and_stops_on_sigterm(
    serving: subprocess.Popen[str], site: Path
) -> None:
    listing = json.loads(read_until(serving, r"^\{"))
    devices = {row["device"]: row for row in listing["devices"]}
    assert set(devices) == {
        "c1-skid",
        "c2-skid",
        "c3-skid",
        "plant-skid",
        "heat-meter",
        "c1-compute",
        "c2-compute",
        "c3-compute",
    }
    assert devices["heat-meter"]["unit_id"] == 2
    assert devices["c1-compute"]["endpoint"].startswith("opc.tcp://127.0.0.1:")
    skid = devices["c1-skid"]
    assert f"port: {skid['port']}" in site.read_text()  # on the port the site file names
    mbpoll = shutil.which("mbpoll")
    assert mbpoll is not None, "mbpoll is not installed: run `bash scripts/test.sh`"
    polled = subprocess.run(
        [
            mbpoll,
            "-m",
            "tcp",
            "-p",
            str(skid["port"]),
            "-a",
            "1",
            "-0",
            "-r",
            "0",
            "-c",
            "2",
            "-t",
            "3",
            "-1",
            "-q",
            "127.0.0.1",
        ],
        capture_output=True,
        text=True,
        timeout=15,
        check=False,
    )
    assert polled.returncode == 0, polled.stderr
    temperatures = [int(v) / 10 for v in re.findall(r"\]:\s*(-?\d+)", polled.stdout)]
    assert len(temperatures) == 2
    assert all(20 < t < 80 for t in temperatures)  # inlet and outlet, degC
    code, stderr = stop_with(serving, signal.SIGTERM)
    assert code == 0, stderr
    assert "Traceback" not in stderr


def test_serve_prints_a_table_and_stops_on_sigint(site: Path) -> None:
    process = start_serving(site)
    try:
        table = read_until(process, r"c3-compute")
        assert "Residence Les Tilleuls (demo): simulated plant (×1), Ctrl-C to stop" in table
        assert re.search(r"heat-meter\s*│\s*modbus-tcp\s*│\s*127\.0\.0\.1\s*│\s*\d+\s*│\s*2", table)
        code, stderr = stop_with(process, signal.SIGINT)
        assert code == 0, stderr
        assert "Traceback" not in stderr
    finally:
        if process.poll() is None:
            process.kill()


def test_a_port_in_use_is_one_line_and_exit_3(site: Path) -> None:
    port = int(re.findall(r"port: (\d+)", site.read_text())[0])
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", port))
    blocker.listen()
    try:
        result = subprocess.run(
            [str(BOILERCTL), "--log-level", "error", "sim", "serve", "--site", str(site)],
            capture_output=True,
            text=True,
            timeout=STARTUP_S,
            check=False,
        )
    finally:
        blocker.close()
    assert result.returncode == 3
    assert result.stderr.strip().splitlines()[-1] == (
        f"sim serve: cannot listen on 127.0.0.1:{port} (c1-skid): address already in use"
    )
    assert "Traceback" not in result.stderr


def test_a_bad_fault_plan_is_refused_with_its_line(site: Path, tmp_path: Path) -> None:
    plan = tmp_path / "faults.yaml"
    plan.write_text("faults:\n  - {at: 10 s, kind: slow, device: c9-skid, delay: 1 s}\n")
    result = subprocess.run(
        [str(BOILERCTL), "sim", "serve", "--site", str(site), "--faults", str(plan)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"{plan}:2: faults[0].device: unknown device 'c9-skid'")


async def test_serve_with_opcua_pki_admits_its_client_pair_only(site: Path, tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    process = start_serving(site, "--json", "--opcua-pki", str(pki))
    try:
        listing = json.loads(await asyncio.to_thread(read_until, process, r"^\{"))
        security = listing["opcua_security"]
        assert security["mode"] == "SignAndEncrypt"
        assert Path(security["client_certificate"]).name in {
            p.name for p in Path(security["trusted_clients"]).iterdir()
        }
        endpoint = next(d["endpoint"] for d in listing["devices"] if d["device"] == "c2-compute")
        client = Client(endpoint, timeout=5)
        client.application_uri = CLIENT_URI
        await client.set_security(
            SecurityPolicyBasic256Sha256,
            security["client_certificate"],
            security["client_private_key"],
            server_certificate=security["server_certificate"],
            mode=ua.MessageSecurityMode.SignAndEncrypt,
        )
        async with client:
            namespace = await client.get_namespace_index("urn:digital-boiler:compute-manager")
            node = await client.nodes.objects.get_child(
                [
                    ua.QualifiedName("ComputeManager", namespace),
                    ua.QualifiedName("ItPower", namespace),
                ]
            )
            assert 0 <= await node.read_value() <= 20  # kW
        offered = await Client(endpoint, timeout=5).connect_and_get_server_endpoints()
        assert {e.SecurityMode for e in offered} == {ua.MessageSecurityMode.SignAndEncrypt}
        code, stderr = await asyncio.to_thread(stop_with, process, signal.SIGTERM)
        assert code == 0, stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_the_readme_mbpoll_commands_work_on_the_demo_site() -> None:
    """`sim serve --site sites/demo.yaml`, read and written exactly as the README shows."""
    readme = (ROOT / "README.md").read_text()
    commands = [
        line.split("#")[0].strip() for line in readme.splitlines() if line.startswith("mbpoll ")
    ]
    assert len(commands) == 4
    process = start_serving(ROOT / "sites" / "demo.yaml", "--json")
    try:
        read_until(process, r"^\{")
        outputs = [
            subprocess.run(
                shlex.split(command), capture_output=True, text=True, timeout=15, check=False
            )
            for command in commands
        ]
        for command, output in zip(commands, outputs, strict=True):
            assert output.returncode == 0, (command, output.stdout, output.stderr)
        temperatures = [int(v) / 10 for v in re.findall(r"\]:\s*(-?\d+)", outputs[0].stdout)]
        assert len(temperatures) == 2
        assert all(20 < t < 80 for t in temperatures)
        assert "Written 1 references" in outputs[3].stdout
        code, stderr = stop_with(process, signal.SIGTERM)
        assert code == 0, stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

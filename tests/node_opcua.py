"""An OPC-UA server not written in Python, for peer tests of our OPC-UA client code.

`node_opcua_server` runs tests/peers/opcua_server.mjs (node-opcua) on a free port: a compute
manager's variables under Objects in their namespace, secured with Basic256Sha256 (SignAndEncrypt
by default, no unsecured sessions), trusting only the client certificates it is given. It yields
the server's endpoint URL. Certificates come from `tests.opcua_support.make_pair` (asyncua's
generator), so the server and our driver meet as two independent implementations.

    async with node_opcua_server(folder, server_pair, variables, trust=[client.cert]) as url:
        ...  # opc.tcp://127.0.0.1:PORT
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final

from tests.node_modbus import _drain, _stop
from tests.opcua_support import Pair

ROOT: Final = Path(__file__).resolve().parent.parent
PEERS: Final = ROOT / "tests" / "peers"
SERVER_SCRIPT: Final = PEERS / "opcua_server.mjs"
STARTUP_TIMEOUT: Final = 60.0  # s: node-opcua loads the standard address space first


class NodeOpcUaServerError(RuntimeError):
    """The node-opcua server could not start."""


def compute_manager_variables(values: dict[str, float | int | bool]) -> list[dict[str, Any]]:
    """The compute manager map's variables (plc_maps/compute_manager.yaml) with these values,
    by the map's point id: browse path and OPC-UA type as the map says."""
    from controller.config.loader import load_map
    from controller.config.maps import OpcUaMap
    from controller.fieldbus.opcua_values import VARIANT_TYPES

    device_map = load_map(ROOT / "plc_maps" / "compute_manager.yaml")
    assert isinstance(device_map, OpcUaMap)
    return [
        {
            "path": point.browse_path,
            "type": VARIANT_TYPES[point.type].name,
            "value": values[point.id],
        }
        for point in device_map.points
        if point.id in values
    ]


@asynccontextmanager
async def node_opcua_server(
    folder: Path,
    server: Pair,
    variables: Sequence[dict[str, Any]],
    *,
    namespace: str = "urn:digital-boiler:compute-manager",
    trust: Sequence[Path] = (),
    mode: str = "SignAndEncrypt",
    discovery: bool = True,
) -> AsyncIterator[str]:
    """Run the node-opcua server with its certificate manager in `folder` and yield its URL.
    discovery False: it refuses unsecured channels even for GetEndpoints."""
    node = shutil.which("node")
    if node is None or not (PEERS / "node_modules" / "node-opcua-server").is_dir():
        raise NodeOpcUaServerError(
            "node-opcua-server is not installed in tests/peers: run `bash scripts/test.sh`, "
            "which installs the test peers (npm ci in tests/peers)."
        )
    command = [
        node,
        str(SERVER_SCRIPT),
        "--exit-with-stdin",
        "--pki",
        str(folder),
        "--cert",
        str(server.cert),
        "--key",
        str(server.key),
        "--application-uri",
        server.uri,
        "--namespace",
        namespace,
        "--variables",
        json.dumps(list(variables)),
        "--mode",
        mode,
    ]
    for certificate in trust:
        command += ["--trust", str(certificate)]
    if not discovery:
        command.append("--no-discovery")
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=PEERS,
    )
    stderr = bytearray()
    output = bytearray()
    drains = [asyncio.create_task(_drain(process.stderr, stderr))]
    try:
        url = await _endpoint(process, output)
    except BaseException as error:
        await _stop(process, drains)
        text = (bytes(output) + bytes(stderr)).decode("utf-8", "replace").strip()
        if isinstance(error, Exception):
            raise NodeOpcUaServerError(
                f"opcua_server.mjs did not start ({error}): {text}"
            ) from None
        raise
    drains.append(asyncio.create_task(_drain(process.stdout, bytearray())))
    try:
        yield url
    finally:
        await _stop(process, drains)


async def _endpoint(process: asyncio.subprocess.Process, output: bytearray) -> str:
    """The endpoint the server prints once listening (node-opcua prints its warnings on stdout
    too: the line is the JSON one)."""
    assert process.stdout is not None
    async with asyncio.timeout(STARTUP_TIMEOUT):
        while line := await process.stdout.readline():
            output += line
            if line.startswith(b'{"port"'):
                return str(json.loads(line)["endpoint"])
    raise RuntimeError(f"exited with code {await process.wait()} before listening")

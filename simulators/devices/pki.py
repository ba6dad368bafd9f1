"""The simulated compute managers' OPC-UA security, kept in one folder (`sim serve --opcua-pki`).

DIR/simulator-server.der, .key.pem   the servers' certificate and key (made on first use)
DIR/controller-client.der, .key.pem  a client pair for the controller, trusted (made on first
                                     use): the site file's `security:` can point at it
DIR/trusted/                         client certificates the servers accept (.der or .pem);
                                     drop another client's certificate here to trust it
"""

from __future__ import annotations

import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

from controller.config.site import SecurityMode
from simulators.devices.certificates import make_certificate
from simulators.devices.opcua_server import ServerSecurity

SERVER_URI = "urn:digital-boiler:simulator:compute-manager"
CLIENT_URI = "urn:digital-boiler:controller"


@dataclass(frozen=True)
class SimulatorPki:
    security: ServerSecurity
    client_certificate: Path
    client_private_key: Path
    trusted: Path


async def simulator_pki(directory: Path, mode: SecurityMode) -> SimulatorPki:
    """The folder's pairs (made if missing) and the servers' security: `mode` only, no NoSecurity
    endpoint, clients trusted by `directory/trusted`."""
    hostname = socket.gethostname()
    server_cert, server_key = await make_certificate(
        directory, "simulator-server", SERVER_URI, hostname
    )
    client_cert, client_key = await make_certificate(
        directory, "controller-client", CLIENT_URI, hostname
    )
    trusted = directory / "trusted"
    trusted.mkdir(exist_ok=True)
    shutil.copyfile(client_cert, trusted / client_cert.name)
    security = ServerSecurity(
        certificate=server_cert,
        private_key=server_key,
        modes=(mode,),
        allow_unsecured=False,
        trusted_certificates=(trusted,),
    )
    return SimulatorPki(security, client_cert, client_key, trusted)

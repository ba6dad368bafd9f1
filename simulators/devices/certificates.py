"""Self-signed application certificates for OPC-UA peers (simulated servers, test clients).

`boilerctl sim serve` keeps the simulated servers' and a client's certificate pairs in a folder and
creates them on first use; the integration tests make theirs in a temporary folder. A certificate
is reused as long as it is valid and names the same application URI and host name; otherwise it
is made again (a missing key also remakes the certificate). Each pair takes about 0.1 s to make.

The certificate carries the application URI (which an OPC-UA peer must present as its own) and
the host name in its subject alternative names, and both extended key usages (client and server
authentication), so one pair serves a client or a server.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import structlog
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from cryptography.x509.oid import ExtendedKeyUsageOID

log = structlog.get_logger(__name__)

ORGANIZATION = "digital-boiler"
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def certificate_paths(directory: Path, name: str) -> tuple[Path, Path]:
    """Where `make_certificate` keeps the pair called `name`: (certificate DER, private key PEM)."""
    if not _NAME_PATTERN.match(name):
        raise ValueError(f"certificate name {name!r}: use letters, digits, '_', '.', '-'")
    return directory / f"{name}.der", directory / f"{name}.key.pem"


async def make_certificate(
    directory: Path, name: str, application_uri: str, hostname: str
) -> tuple[Path, Path]:
    """Make (or reuse) a self-signed certificate and its private key in `directory`.

    Returns (certificate path, private key path): `<name>.der` (DER) and `<name>.key.pem`
    (unencrypted PKCS#8 PEM, readable by its owner only). The folder is created if needed.
    """
    cert_path, key_path = certificate_paths(directory, name)
    # Key generation is CPU-bound (about 0.1 s): done in a worker thread, off the caller's loop.
    reused = await asyncio.to_thread(_make_blocking, cert_path, key_path, application_uri, hostname)
    log.debug(
        "opcua_certificate",
        certificate=str(cert_path),
        application_uri=application_uri,
        hostname=hostname,
        reused=reused,
    )
    return cert_path, key_path


def _make_blocking(cert_path: Path, key_path: Path, application_uri: str, hostname: str) -> bool:
    """Make or reuse the pair; True when both files were left as they were."""
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    before = _stamps(cert_path, key_path)
    asyncio.run(
        setup_self_signed_certificate(
            key_path,
            cert_path,
            application_uri,
            hostname,
            [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH],
            {"organizationName": ORGANIZATION},
        )
    )
    key_path.chmod(0o600)
    return before is not None and before == _stamps(cert_path, key_path)


def _stamps(*paths: Path) -> tuple[int, ...] | None:
    try:
        return tuple(path.stat().st_mtime_ns for path in paths)
    except FileNotFoundError:
        return None

"""The OPC-UA driver's security material: the site file's certificate, key and trusted server
certificate, read and checked before any connection (opcua_driver.py, "Security")."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import structlog
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from controller.config.site import OpcUaSecurity, SecurityMode

log = structlog.get_logger(__name__)

# Map data type → OPC-UA built-in type of the node's value.


class OpcUaSecurityError(Exception):
    """The device's certificate set-up cannot work; the message is one line naming the file."""


@dataclass(frozen=True)
class Credentials:
    mode: SecurityMode
    certificate_path: Path
    certificate_der: bytes
    private_key_der: bytes
    application_uri: str
    server_certificate_path: Path
    server_certificate_der: bytes


def _read(device_id: str, what: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise OpcUaSecurityError(f"{device_id}: {what} {path} does not exist") from None
    except OSError as exc:
        raise OpcUaSecurityError(
            f"{device_id}: cannot read {what} {path}: {exc.strerror or exc}"
        ) from None


def _certificate(device_id: str, what: str, path: Path) -> x509.Certificate:
    data = _read(device_id, what, path)
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError:
        raise OpcUaSecurityError(
            f"{device_id}: {what} {path} is not an X.509 certificate (PEM or DER)"
        ) from None


def _private_key(device_id: str, path: Path) -> PrivateKeyTypes:
    data = _read(device_id, "private key", path)
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return serialization.load_pem_private_key(data, password=None)
        return serialization.load_der_private_key(data, password=None)
    except TypeError:
        raise OpcUaSecurityError(
            f"{device_id}: private key {path} is password-protected: store it unencrypted, "
            "readable by the controller only"
        ) from None
    except ValueError:
        raise OpcUaSecurityError(
            f"{device_id}: private key {path} is not a private key (PEM or DER)"
        ) from None


def certificate_application_uri(certificate: x509.Certificate) -> str | None:
    """The application URI a certificate was made for (its first URI subject alternative name)."""
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return None
    uris = names.value.get_values_for_type(x509.UniformResourceIdentifier)
    return uris[0] if uris else None


def thumbprint(der: bytes) -> str:
    """The SHA-1 thumbprint OPC-UA tools show for a certificate."""
    return hashlib.sha1(der, usedforsecurity=False).hexdigest()


def load_credentials(
    device_id: str, security: OpcUaSecurity, base_dir: Path, now: datetime
) -> Credentials:
    """Read and check the device's certificate, key and trusted server certificate (blocking)."""
    cert_path = base_dir / security.certificate
    key_path = base_dir / security.private_key
    server_path = base_dir / security.server_certificate
    certificate = _certificate(device_id, "client certificate", cert_path)
    server_certificate = _certificate(device_id, "server certificate", server_path)
    key = _private_key(device_id, key_path)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise OpcUaSecurityError(
            f"{device_id}: private key {key_path} is not an RSA key, which Basic256Sha256 needs"
        )
    der = certificate.public_bytes(serialization.Encoding.DER)
    if key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        raise OpcUaSecurityError(
            f"{device_id}: private key {key_path} does not belong to certificate {cert_path}"
        )
    for what, path, cert in (
        ("client certificate", cert_path, certificate),
        ("server certificate", server_path, server_certificate),
    ):
        if cert.not_valid_after_utc < now:
            raise OpcUaSecurityError(
                f"{device_id}: {what} {path} expired on {cert.not_valid_after_utc:%Y-%m-%d}"
            )
        if cert.not_valid_before_utc > now:
            raise OpcUaSecurityError(
                f"{device_id}: {what} {path} is valid only from "
                f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
            )
    uri = certificate_application_uri(certificate)
    if uri is None:
        raise OpcUaSecurityError(
            f"{device_id}: client certificate {cert_path} names no application URI "
            "(subject alternative name URI): OPC-UA servers refuse such certificates"
        )
    key_der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return Credentials(
        mode=security.mode,
        certificate_path=cert_path,
        certificate_der=der,
        private_key_der=key_der,
        application_uri=uri,
        server_certificate_path=server_path,
        server_certificate_der=server_certificate.public_bytes(serialization.Encoding.DER),
    )


def first_certificate(der: bytes) -> bytes:
    """The first certificate of a DER chain (a DER SEQUENCE with a two-byte length)."""
    if len(der) > 4 and der[0] == 0x30 and der[1] == 0x82:
        return der[: int.from_bytes(der[2:4], "big") + 4]
    return der

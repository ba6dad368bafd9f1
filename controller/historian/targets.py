"""The two wire APIs a gzip body of line protocol is sent through, and what their answers mean.

- v2: `/api/v2/write` (InfluxDB 2.x, 3.x, Cloud, 1.8+) through influxdb-client's async client.
  The body goes through its WriteService with `Content-Encoding: gzip`, already compressed:
  the client's own `enable_gzip` compresses at level 9 on the event loop (34 ms per 5 000 lines
  here), which would both stall the scan cycle and cap the writer near 150 k points/s.
- v1: `/write?db=` (InfluxDB 1.x) over aiohttp, with optional user and password (basic auth).

Every failure is a DeliveryError of one kind, which decides what the writer does next (writer.py).
Secrets are read when the target is built and never appear in messages or logs.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol

import aiohttp
from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync
from influxdb_client.rest import ApiException
from influxdb_client.service.write_service import WriteService

from controller.config.site import HistorianTarget, InfluxV1Target, InfluxV2Target, SecretSource


class Failure(StrEnum):
    UNREACHABLE = "unreachable"  # no answer, a timeout, 5xx, 429: retry after a back-off
    REFUSED = "refused"  # 401, 403, 404 and other 4xx: credentials or names; keep the data
    MALFORMED = "malformed"  # 400: these points will never be taken; set them aside
    TOO_LARGE = "too_large"  # 413: send smaller batches


class DeliveryError(Exception):
    def __init__(
        self,
        kind: Failure,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.retry_after = retry_after


class Target(Protocol):
    """Where batches go. `describe` names it in logs (no secrets)."""

    describe: str

    async def send(self, body: bytes) -> None:
        """POST one gzip body of line protocol (ns timestamps); DeliveryError when not taken."""
        ...

    async def close(self) -> None: ...


class SecretError(ValueError):
    """A configured secret cannot be read (message names the source, never the value)."""


def read_secret(source: SecretSource | None, base_dir: Path, environ: dict[str, str]) -> str | None:
    if source is None:
        return None
    if source.file is not None:
        path = base_dir / source.file
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise SecretError(f"{path}: cannot read the secret file ({error.strerror})") from None
    assert source.env is not None
    value = environ.get(source.env)
    if value is None:
        raise SecretError(f"environment variable {source.env} is not set")
    return value


def retry_after_seconds(header: str | None, now: float | None = None) -> float | None:
    """A Retry-After header (seconds, or an HTTP date) as seconds from now; None if absent or
    unreadable."""
    if header is None:
        return None
    header = header.strip()
    try:
        return max(float(header), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


def classify(status: int, message: str, retry_after: str | None) -> DeliveryError:
    """An HTTP answer other than 2xx as the error the writer acts on."""
    text = f"HTTP {status}: {message}" if message else f"HTTP {status}"
    delay = retry_after_seconds(retry_after)
    if status == 400:
        kind = Failure.MALFORMED
    elif status == 413:
        kind = Failure.TOO_LARGE
    elif status == 429 or status >= 500:
        kind = Failure.UNREACHABLE
    else:
        kind = Failure.REFUSED
    return DeliveryError(kind, text, status=status, retry_after=delay)


def _error_text(body: str | bytes | None) -> str:
    """The one-line reason in an InfluxDB error body ({"error": ...} or {"message": ...})."""
    if body is None:
        return ""
    text = body.decode(errors="replace") if isinstance(body, bytes) else body
    try:
        document = json.loads(text)
    except ValueError:
        return " ".join(text.split())[:300]
    if isinstance(document, dict):
        for key in ("error", "message"):
            if isinstance(document.get(key), str):
                return " ".join(str(document[key]).split())[:300]
    return " ".join(text.split())[:300]


@dataclass
class V1Target:
    """InfluxDB 1.x `/write` (db, optional retention policy, basic auth)."""

    config: InfluxV1Target
    password: str | None = field(default=None, repr=False)  # never in a log or traceback

    def __post_init__(self) -> None:
        self.describe = f"influxdb-v1 {self.config.url} db={self.config.database}"
        self._url = self.config.url.rstrip("/") + "/write"
        self._params = {"db": self.config.database, "precision": "ns"}
        if self.config.retention_policy:
            self._params["rp"] = self.config.retention_policy
        self._headers = {"Content-Encoding": "gzip", "Content-Type": "text/plain; charset=utf-8"}
        if self.config.username is not None:
            credentials = f"{self.config.username}:{self.password or ''}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(credentials).decode()
        self._session: aiohttp.ClientSession | None = None

    async def send(self, body: bytes) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.config.timeout)
            )
        try:
            async with self._session.post(
                self._url,
                params=self._params,
                data=body,
                headers=self._headers,
            ) as response:
                if 200 <= response.status < 300:
                    return
                message = _error_text(await response.read())
                raise classify(response.status, message, response.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            raise DeliveryError(Failure.UNREACHABLE, _network_text(error)) from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


@dataclass
class V2Target:
    """`/api/v2/write` through influxdb-client's async client (org, bucket, token)."""

    config: InfluxV2Target
    token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.describe = (
            f"influxdb-v2 {self.config.url} org={self.config.org} bucket={self.config.bucket}"
        )
        self._client: InfluxDBClientAsync | None = None
        self._service: WriteService | None = None

    def _write_service(self) -> WriteService:
        if self._service is None:  # built on the event loop: aiohttp wants one
            self._client = InfluxDBClientAsync(
                url=self.config.url,
                token=self.token or "",
                org=self.config.org,
                timeout=int(self.config.timeout * 1000),
            )
            self._service = WriteService(self._client.api_client)  # type: ignore[no-untyped-call]
        return self._service

    async def send(self, body: bytes) -> None:
        try:
            await self._write_service().post_write_async(  # type: ignore[no-untyped-call]
                org=self.config.org,
                bucket=self.config.bucket,
                body=body,
                precision="ns",
                content_encoding="gzip",
                content_type="text/plain; charset=utf-8",
            )
        except ApiException as error:
            headers: Mapping[str, str] = error.headers or {}
            raise classify(
                error.status or 0, _error_text(error.body), headers.get("Retry-After")
            ) from None
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            raise DeliveryError(Failure.UNREACHABLE, _network_text(error)) from None

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()  # type: ignore[no-untyped-call]
            self._client, self._service = None, None


def _network_text(error: BaseException) -> str:
    if isinstance(error, TimeoutError | asyncio.TimeoutError):
        return "no answer within the timeout"
    return " ".join(str(error).split()) or type(error).__name__


def build_target(
    config: HistorianTarget, base_dir: Path, environ: dict[str, str]
) -> V1Target | V2Target:
    """The target a site file names, its secret read now. SecretError when it cannot be."""
    if isinstance(config, InfluxV2Target):
        return V2Target(config, read_secret(config.token, base_dir, environ))
    return V1Target(config, read_secret(config.password, base_dir, environ))

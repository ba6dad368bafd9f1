"""The commissioning record (`boilerctl commission --json`): what was found at each device, point by
point, and whether it passed. Values are in each point's map unit."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

Reading = float | int | bool | str | None


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VariantView(Model):
    field: str  # the map field to check: order, type, scale, address
    change: str  # CDAB, int16, scale 0.1, address 6
    value: float


class PointCheck(Model):
    point: str
    where: str  # Modbus: "input 5" (as the map writes it); OPC-UA: the node id
    unit: str
    raw: list[str]  # Modbus: the registers in hex, or the bit; OPC-UA: []
    value: Reading  # decoded, in `unit`; None when not valid
    quality: str  # good, bad
    reason: str | None  # why bad: sensor_fault, illegal_address, device_exception 2...
    expect: tuple[float, float] | None
    verdict: str  # plausible, implausible, unchecked (no expected range), unreadable
    explanation: str  # one line when not plausible or unreadable, else ""
    variants: list[VariantView]  # the readings a common mistake would give that are plausible

    @property
    def passed(self) -> bool:
        return self.verdict in ("plausible", "unchecked")


class WriteCheck(Model):
    point: str
    value: Reading  # what it held, written back
    read_back: Reading
    passed: bool
    message: str  # one line


class DeviceCheck(Model):
    id: str
    protocol: str  # modbus, opcua
    address: str  # host:port unit N, or the endpoint URL
    reachable: bool
    error: str | None  # why not reachable, or why it stopped answering: a sentence
    round_trip_ms: float | None  # median of the requests (OPC-UA: one Read)
    security: str | None  # OPC-UA: "None", "Basic256Sha256 SignAndEncrypt"
    server_certificate_sha1: str | None  # OPC-UA: the thumbprint tools show
    server_certificate_sha256: str | None
    points: list[PointCheck]
    writes: list[WriteCheck]  # with --write-test
    passed: bool


class Commissioning(Model):
    site: str
    site_file: str
    at: datetime  # UTC
    user: str
    write_test: bool
    devices: list[DeviceCheck]
    passed: bool  # every device passed

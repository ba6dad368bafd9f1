"""Commissioning one OPC-UA device through the controller's own driver: one session with the
site file's security (the endpoint, the session's security policy and mode, the server
certificate's fingerprints, the time a Read takes), every point's node resolved and read once,
judged against its expected range. A refusal is the driver's sentence, saying what to do. With a
write test, each writable point gets the value it holds written back and read back.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from controller.commissioning.modbus import WriteJournal
from controller.commissioning.plausibility import explain, plausible
from controller.commissioning.report import DeviceCheck, PointCheck, WriteCheck
from controller.config.maps import OpcUaMap, OpcUaPoint
from controller.config.site import OpcUaDevice
from controller.fieldbus.health import Backoff
from controller.fieldbus.image import ProcessImage, Quality, Sample
from controller.fieldbus.opcua_driver import (
    OpcUaConnectError,
    OpcUaDriver,
    OpcUaSecurityError,
    OpcUaWriteError,
    SessionInfo,
)
from controller.fieldbus.opcua_security import thumbprint

# What to do, after the driver's sentence, where it only says what happened.
_ADVICE = {
    "connection_refused": ": nothing listens there (check the endpoint's port, and that the "
    "server is on)",
    "timeout": ": check the endpoint's address, the network and that the server is on",
    "connect_failed": ": check the endpoint's address",
}


async def check_opcua(
    device: OpcUaDevice,
    device_map: OpcUaMap,
    base_dir: Path,
    *,
    write_test: WriteJournal | None = None,
) -> DeviceCheck:
    """The device's commissioning check (see the module docstring)."""
    driver = OpcUaDriver(device, device_map, ProcessImage(), base_dir=base_dir, backoff=Backoff())
    try:
        async with driver.one_session() as info:
            await driver.read_once()
            points = [_point(p, driver.samples[p.id], info) for p in device_map.points]
            writes = []
            if write_test is not None:
                writes = [
                    await _write_back(driver, p, check, write_test)
                    for p, check in zip(device_map.points, points, strict=True)
                    if p.writable
                ]
    except OpcUaConnectError as exc:
        return _device(device, reachable=False, error=str(exc) + _ADVICE.get(exc.kind, ""))
    except OpcUaSecurityError as exc:
        return _device(device, reachable=False, error=str(exc))
    passed = all(p.passed for p in points) and all(w.passed for w in writes)
    return _device(device, info=info, points=points, writes=writes, passed=passed)


def _device(
    device: OpcUaDevice,
    *,
    reachable: bool = True,
    error: str | None = None,
    info: SessionInfo | None = None,
    points: list[PointCheck] | None = None,
    writes: list[WriteCheck] | None = None,
    passed: bool = False,
) -> DeviceCheck:
    certificate = info.server_certificate if info is not None else None
    security = None
    if info is not None:
        security = "None" if info.policy == "None" else f"{info.policy} {info.mode}"
    return DeviceCheck(
        id=device.id,
        protocol="opcua",
        address=device.endpoint,
        reachable=reachable,
        error=error,
        round_trip_ms=info.round_trip * 1e3 if info is not None else None,
        security=security,
        server_certificate_sha1=thumbprint(certificate) if certificate else None,
        server_certificate_sha256=hashlib.sha256(certificate).hexdigest() if certificate else None,
        points=points or [],
        writes=writes or [],
        passed=passed,
    )


def _point(point: OpcUaPoint, sample: Sample, info: SessionInfo) -> PointCheck:
    expect = (point.expect.min, point.expect.max) if point.expect is not None else None
    where = info.nodes.get(point.id) or "/".join(point.browse_path or [point.node_id or "?"])
    if sample.quality is not Quality.GOOD:
        status = info.unresolved.get(point.id)
        reason = sample.reason.value if sample.reason is not None else sample.quality.value
        explanation = (
            f"the server has no node at {where} ({status}): check the point's browse_path or "
            "node_id, and the map's namespace"
            if status is not None
            else f"read {sample.quality.value} ({reason}): check the device"
        )
        return PointCheck(
            point=point.id,
            where=where,
            unit=point.unit,
            raw=[],
            value=sample.value,
            quality=sample.quality.value,
            reason=reason,
            expect=expect,
            verdict="unreadable",
            explanation=explanation,
            variants=[],
        )
    verdict = plausible(point, sample.value)
    return PointCheck(
        point=point.id,
        where=where,
        unit=point.unit,
        raw=[],
        value=sample.value,
        quality="good",
        reason=None,
        expect=expect,
        verdict={None: "unchecked", True: "plausible", False: "implausible"}[verdict],
        explanation=explain(point, sample.value, []) if verdict is False else "",
        variants=[],
    )


async def _write_back(
    driver: OpcUaDriver, point: OpcUaPoint, read: PointCheck, journal: WriteJournal
) -> WriteCheck:
    value = read.value
    if read.quality != "good" or value is None:
        return WriteCheck(
            point=point.id,
            value=value,
            read_back=None,
            passed=False,
            message="not written: no valid value read to write back",
        )
    try:
        await driver.write(point.id, value)
        await driver.read_once()
    except (OpcUaWriteError, ValueError) as exc:
        check = WriteCheck(
            point=point.id, value=value, read_back=None, passed=False, message=str(exc)
        )
    else:
        back = driver.samples[point.id].value
        same = back == value
        check = WriteCheck(
            point=point.id,
            value=value,
            read_back=back,
            passed=same,
            message=f"wrote {value!r}, read back {'the same' if same else repr(back)}",
        )
    journal(driver.device.id, point.id, value, check.read_back, check.passed, check.message)
    return check

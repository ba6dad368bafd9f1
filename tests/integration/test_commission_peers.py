"""`boilerctl commission` against devices the project did not write.

A Node.js Modbus server (jsmodbus) plays a heat meter whose registers are encoded here with
`struct`, and the site's map for it is deliberately wrong in the four ways maps commonly are: a
float in the wrong word order, a register one off, a scale ten times off, a signed value read as
unsigned. Each is diagnosed, naming the map field to check. A wrong unit id behind the gateway is
named too. A node-opcua compute manager (SignAndEncrypt) is commissioned with the site's
certificates: the session's security, the server certificate's fingerprint and every node; with
a certificate it does not trust, the refusal is a sentence saying what to do.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
from pathlib import Path
from typing import Any

import pytest

from controller.fieldbus.opcua_security import thumbprint
from tests.maintenance_helpers import Run, boilerctl, clean_environment
from tests.node_modbus import node_modbus_server
from tests.node_opcua import compute_manager_variables, node_opcua_server
from tests.opcua_support import make_pair
from tests.plant_helpers import ROOT, SITES

# The meter's own layout (what the device does), one-based register numbers as its manual writes
# them; floats and counters low word first (CDAB), as MULTICAL meters send them.
ROLE_VALUES = {"flow": 6.5, "power": 42.0, "forward_temp": 64.8, "return_temp": 41.2}
ENERGY, VOLUME = 12_345, 678.9  # kWh, m3 (0.01 m3 per count)
PEAK_POWER = 55.5  # kW, float32 CDAB at register 21
SUPPLY_TEMP = 64.8  # degC, int16 × 0.1 at register 32 (the map says 31)
LOOP_RETURN = 41.2  # degC, int16 × 0.1 at register 41 (the map says × 0.01)
OUTDOOR = -5.0  # degC, int16 × 0.1 at register 51 (the map says uint16)
# The map the site was given: the meter's role points right, its extras each wrong once.
VENDOR_MAP = """\
protocol: modbus
device_type: vendor-heat-meter
description: A heat meter with vendor extras, mapped from a manual with mistakes
addressing: one-based
order: CDAB
max_registers_per_read: 20
points:
  - {id: flow, table: input, address: 1, type: float32, unit: m3/h, expect: {min: 0, max: 30}}
  - {id: power, table: input, address: 3, type: float32, unit: kW, expect: {min: 0, max: 500}}
  - id: forward_temp
    table: input
    address: 5
    type: float32
    unit: degC
    expect: {min: 10, max: 95}
  - id: return_temp
    table: input
    address: 7
    type: float32
    unit: degC
    expect: {min: 5, max: 90}
  - {id: energy, table: input, address: 9, type: uint32, unit: kWh, expect: {min: 0, max: 2e7}}
  - id: volume
    table: input
    address: 11
    type: uint32
    scale: 0.01
    unit: m3
    expect: {min: 0, max: 1e6}
  # the manual says big-endian; the meter sends its floats low word first like the others
  - id: peak_power
    table: input
    address: 21
    type: float32
    order: ABCD
    unit: kW
    expect: {min: 0, max: 500}
  # the manual's register number is one too low
  - id: supply_temp
    table: input
    address: 31
    type: int16
    scale: 0.1
    unit: degC
    expect: {min: 10, max: 95}
  # the manual says hundredths of a degree; the meter sends tenths
  - id: loop_return_temp
    table: input
    address: 41
    type: int16
    scale: 0.01
    unit: degC
    expect: {min: 10, max: 90}
  # the manual says unsigned; below 0 degC the meter sends a negative int16
  - id: outdoor_temp
    table: input
    address: 51
    type: uint16
    scale: 0.1
    unit: degC
    expect: {min: -40, max: 50}
"""


def cdab(data: bytes) -> list[int]:
    """Two registers of 4 big-endian bytes ABCD, low word first."""
    high, low = struct.unpack(">HH", data)
    return [low, high]


def meter_registers() -> dict[str, dict[int, int]]:
    """The meter's input registers by wire offset (register number − 1), encoded with struct."""
    words: dict[int, int] = {}

    def put(register: int, values: list[int]) -> None:
        for i, value in enumerate(values):
            words[register - 1 + i] = value

    for register, point in ((1, "flow"), (3, "power"), (5, "forward_temp"), (7, "return_temp")):
        put(register, cdab(struct.pack(">f", ROLE_VALUES[point])))
    put(9, cdab(struct.pack(">I", ENERGY)))
    put(11, cdab(struct.pack(">I", round(VOLUME / 0.01))))
    put(21, cdab(struct.pack(">f", PEAK_POWER)))
    put(32, [round(SUPPLY_TEMP * 10)])  # register 31 (where the map looks) stays 0
    put(41, [round(LOOP_RETURN * 10)])
    put(51, list(struct.unpack(">H", struct.pack(">h", round(OUTDOOR * 10)))))
    put(50, [0x7FFF])  # its neighbours read absurd: only the sign explains it
    put(52, [0x7FFF])
    return {"input": words}


def vendor_site(folder: Path, unit: int = 2) -> Path:
    """The demo site with its heat meter mapped by VENDOR_MAP (and unit id `unit`)."""
    maps = folder / "maps"
    shutil.copytree(ROOT / "plc_maps", maps)
    (maps / "vendor_meter.yaml").write_text(VENDOR_MAP)
    text = (SITES / "demo.yaml").read_text()
    text = text.replace("maps_dir: ../plc_maps", f"maps_dir: {maps}")
    text = text.replace("    map: heat_meter\n", "    map: vendor_meter\n")
    text = text.replace("    unit_id: 2\n", f"    unit_id: {unit}\n")
    site = folder / "site.yaml"
    site.write_text(text)
    return site


async def commission(site: Path, env: dict[str, str], *args: str) -> Run:
    return await boilerctl("commission", "--site", str(site), *args, env=env)


def by_point(device: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["point"]: p for p in device["points"]}


async def test_the_four_common_mapping_mistakes_are_diagnosed(tmp_path: Path) -> None:
    site = vendor_site(tmp_path)
    env = clean_environment(tmp_path / "state")
    async with node_modbus_server(meter_registers(), unit=2) as port:
        run = await commission(
            site,
            env,
            "--device",
            "heat-meter",
            "--address",
            f"heat-meter=127.0.0.1:{port}",
            "--json",
        )
        table = await commission(
            site, env, "--device", "heat-meter", "--address", f"heat-meter=127.0.0.1:{port}"
        )
    assert run.code == 1, run  # the meter did not pass
    (meter,) = json.loads(run.stdout)["devices"]
    assert (meter["reachable"], meter["passed"], meter["error"]) == (True, False, None)
    assert meter["round_trip_ms"] > 0
    points = by_point(meter)

    # the role points are mapped right: plausible, and what the meter holds
    for point, value in ROLE_VALUES.items():
        assert points[point]["verdict"] == "plausible", points[point]
        assert points[point]["value"] == pytest.approx(value, rel=1e-6)
    assert (points["energy"]["value"], points["volume"]["value"]) == (ENERGY, VOLUME)
    assert points["forward_temp"]["raw"] == [f"0x{w:04X}" for w in cdab(struct.pack(">f", 64.8))]

    def diagnosis(point: str) -> tuple[str, str, float]:
        found = points[point]
        assert found["verdict"] == "implausible", found
        first = found["variants"][0]
        return first["field"], first["change"], first["value"]

    field, change, value = diagnosis("peak_power")
    assert (field, change, value) == ("order", "CDAB", pytest.approx(PEAK_POWER))
    assert "; CDAB would give 55.5 kW: check `order`" in points["peak_power"]["explanation"]

    assert diagnosis("supply_temp") == ("address", "address 32", pytest.approx(SUPPLY_TEMP))
    assert points["supply_temp"]["explanation"] == (
        "reads 0 degC; address 32 would give 64.8 degC: check `address` (and the map's "
        "`addressing`)"
    )

    assert diagnosis("loop_return_temp") == ("scale", "scale 0.1", pytest.approx(LOOP_RETURN))
    assert points["loop_return_temp"]["explanation"] == (
        "reads 4.12 degC; scale 0.1 would give 41.2 degC: check `scale`"
    )

    assert diagnosis("outdoor_temp") == ("type", "int16", pytest.approx(OUTDOOR))
    assert points["outdoor_temp"]["explanation"] == (
        "reads 6548.6 degC; int16 would give -5 degC: check `type`"
    )

    # the same on the terminal, one row a point, and the verdict
    assert table.code == 1, table
    assert "heat-meter  modbus 127.0.0.1:" in table.stdout
    assert "FAILED" in table.stdout
    assert "CDAB would give 55.5 kW: check `order`" in table.stdout.replace("\n", " ")
    assert "0 of 1 device(s) passed; heat-meter did not" in table.stdout


async def test_a_wrong_unit_id_behind_the_gateway_is_named(tmp_path: Path) -> None:
    site = vendor_site(tmp_path, unit=3)
    env = clean_environment(tmp_path / "state")
    async with node_modbus_server(meter_registers(), unit=2) as port:
        run = await commission(
            site,
            env,
            "--device",
            "heat-meter",
            "--address",
            f"heat-meter=127.0.0.1:{port}",
            "--json",
        )
    assert run.code == 1, run
    (meter,) = json.loads(run.stdout)["devices"]
    assert (meter["reachable"], meter["points"]) == (False, [])
    assert meter["error"] == (
        "heat-meter: nothing answers at unit 3 behind this gateway (exception 11): check unit_id "
        "and the serial side (wiring, baud rate, the device's address)"
    )


async def test_a_node_opcua_compute_manager_with_and_without_our_trust(tmp_path: Path) -> None:
    folder = tmp_path / "certificates"
    server = await make_pair(folder, "node-server")
    client = await make_pair(folder, "controller")
    intruder = await make_pair(folder, "intruder")
    values: dict[str, float | int | bool] = {
        "it_power": 17.5,
        "power_cap": 20.0,
        "available_power": 19.0,
        "jobs_queued": 12,
        "jobs_running": 44,
        "chip_temp_max": 71.5,
        "throttling": False,
    }

    def site_with(pair_name: str) -> Path:
        text = (SITES / "demo.yaml").read_text()
        text = text.replace("maps_dir: ../plc_maps", f"maps_dir: {ROOT / 'plc_maps'}")
        secure = (
            "{id: c1-compute, protocol: opcua, map: compute_manager, "
            'endpoint: "opc.tcp://127.0.0.1:14841", '
            "security: {mode: SignAndEncrypt, "
            f"certificate: {folder}/own/{pair_name}.der, "
            f"private_key: {folder}/own/{pair_name}.key.pem, "
            f"server_certificate: {folder}/own/node-server.der}}}}"
        )
        plain = (
            "{id: c1-compute, protocol: opcua, map: compute_manager, endpoint: "
            '"opc.tcp://127.0.0.1:14841"}'
        )
        assert plain in text
        path = tmp_path / f"site-{pair_name}.yaml"
        path.write_text(text.replace(plain, secure))
        return path

    env = clean_environment(tmp_path / "state")
    variables = compute_manager_variables(values)
    async with node_opcua_server(tmp_path / "pki", server, variables, trust=[client.cert]) as url:
        trusted, untrusted = [
            await commission(
                site_with(name),
                env,
                "--device",
                "c1-compute",
                "--endpoint",
                f"c1-compute={url}",
                "--json",
            )
            for name in ("controller", "intruder")
        ]
    assert trusted.code == 0, trusted
    (manager,) = json.loads(trusted.stdout)["devices"]
    assert (manager["passed"], manager["address"]) == (True, url)
    assert manager["security"] == "Basic256Sha256 SignAndEncrypt"
    der = server.cert.read_bytes()
    assert manager["server_certificate_sha1"] == thumbprint(der)
    assert manager["server_certificate_sha256"] == hashlib.sha256(der).hexdigest()
    points = by_point(manager)
    assert {p: points[p]["value"] for p in values} == values
    assert all(points[p]["where"].startswith("ns=") for p in values)
    assert {p["verdict"] for p in manager["points"]} == {"plausible", "unchecked"}

    assert untrusted.code == 1, untrusted
    (refused,) = json.loads(untrusted.stdout)["devices"]
    assert refused["reachable"] is False
    assert refused["error"] == (
        f"c1-compute: the server at {url} refused a secure channel with our certificate "
        f"{intruder.cert}: add it to the server's trust list"
    )

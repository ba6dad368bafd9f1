"""What the status says is wrong, in words (controller/api/wrong.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from controller.api import models as m
from controller.api.wrong import what_is_wrong
from controller.control.operator import ControlMode


def caisson(caisson_id: str, **changes: Any) -> m.CaissonView:
    fields: dict[str, Any] = {
        "id": caisson_id,
        "initialised": True,
        "plc_mode": "remote",
        "control_mode": ControlMode.AUTO,
        "locked_out": False,
        "interlocks": [],
        "running": True,
        "setpoint_degc": 65.0,
        "outlet_degc": 64.0,
        "inlet_degc": 55.0,
        "flow_l_min": 25.0,
        "pump_pct": 60.0,
        "cap_kw": 20.0,
        "it_power_kw": 20.0,
        "alarms": 0,
    }
    fields.update(changes)
    return m.CaissonView(**fields)


def status(
    caissons: list[m.CaissonView],
    supply: float | None = 65.0,
    devices: list[m.DeviceView] | None = None,
    unacknowledged: int = 0,
    mode: str = "heat",
) -> m.Status:
    plant = m.PlantView(
        mode=mode,
        control_mode=ControlMode.AUTO,
        it_target_kw=40.0,
        soc_pct=50.0,
        load_kw=60.0,
        dry_cooler_pct=0.0,
        supply_degc=supply,
        supply_band_degc=(60.0, 70.0),
    )
    return m.Status(
        site="demo",
        site_id="demo",
        timezone="Europe/Paris",
        at=datetime(2026, 3, 10, 6, tzinfo=UTC),
        read_only=False,
        cycles=10,
        overruns=0,
        setpoints={},
        setpoint_units={},
        plant=plant,
        caissons=caissons,
        overrides=[],
        devices=devices or [],
        alarms=m.AlarmCounts(
            annunciated=unacknowledged,
            unacknowledged=unacknowledged,
            shelved=0,
            suppressed=0,
            out_of_service=0,
        ),
    )


def test_a_healthy_plant_has_nothing_wrong() -> None:
    locked = caisson("c2", control_mode=ControlMode.MAINTENANCE, interlocks=["lockout"])
    margin = caisson("c3", interlocks=["chip_margin"])
    assert what_is_wrong(status([caisson("c1"), locked, margin])) == []


def test_a_leak_says_isolated_and_how_to_restart_once_repaired() -> None:
    leaking = caisson(
        "c1",
        interlocks=["leak", "low_flow", "plc_trip"],
        plc_trips=["low_flow_trip", "leak_trip"],
        running=False,
    )
    assert what_is_wrong(status([leaking, caisson("c2")])) == [
        "c1: leak: isolated by its PLC (once repaired: boilerctl reset-trip c1)"
    ]


def test_a_latched_pump_trip_after_the_repair_names_the_trip_and_the_reset() -> None:
    tripped = caisson("c2", interlocks=["plc_trip"], plc_trips=["pump_fault_trip"])
    assert what_is_wrong(status([tripped])) == [
        "c2: tripped at its PLC (pump_fault_trip): IT power off "
        "(once repaired: boilerctl reset-trip c2)"
    ]


def test_devices_supply_out_of_band_safe_mode_and_alarms_are_named() -> None:
    devices = [
        m.DeviceView(
            id="c3-compute",
            protocol="opcua",
            health="failed",
            consecutive_failures=5,
            comm_errors=5,
            write_failures=0,
        ),
        m.DeviceView(
            id="heat-meter",
            protocol="modbus",
            health="suspect",
            consecutive_failures=1,
            comm_errors=1,
            write_failures=0,
        ),
    ]
    safe = caisson("c1", plc_mode="local safe", interlocks=["inputs_lost"])
    assert what_is_wrong(status([safe], 57.25, devices, 2, mode="safe")) == [
        "c1: measurements lost: held at the PLC's safe settings; "
        "PLC in local safe mode: the controller's heartbeat does not reach it",
        "c3-compute not answering",
        "heat-meter answering badly",
        "building supply 57.2 °C, below its band 60–70 °C",
        "plant in safe mode: its measurements are lost",
        "2 alarms to acknowledge (boilerctl alarms list)",
    ]


def test_a_frozen_outlet_sensor_says_what_the_pump_follows_and_what_is_blind() -> None:
    frozen = caisson("c3", outlet_estimated=True, outlet_degc=63.4)
    assert what_is_wrong(status([caisson("c1"), frozen])) == [
        "c3: outlet sensor reads frozen: its pump follows the heat balance's outlet "
        "(≈ in the table); the PLC's over-temperature trips are blind"
    ]

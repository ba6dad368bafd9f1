"""Ground-truth KPIs of a simulated run, accumulated from the model's true (not measured) values."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

J_PER_KWH = 3.6e6


@dataclass
class EnergyTotals:
    """Joules since the start of the run (heat and electricity), plus band and safety figures."""

    it: float = 0.0
    pumps: float = 0.0
    fans: float = 0.0
    reused: float = 0.0  # caisson heat delivered to the site through the heat exchanger
    backup: float = 0.0
    dumped: float = 0.0  # rejected by the dry cooler
    # Rejected while the backup boiler fired: gas burnt while server heat was vented. The safety
    # part is the plant PLC's thermostat at its hard return limit (the caissons' protection).
    dumped_while_backup: float = 0.0
    dumped_while_backup_safety: float = 0.0
    demand: float = 0.0
    unmet: float = 0.0
    room_losses: float = 0.0  # IT power not captured in the water
    tank_losses: float = 0.0
    seconds: float = 0.0
    seconds_running: float = 0.0  # with IT power > 0 (heat delivery time: the band's base)
    seconds_out_of_band: float = 0.0
    kelvin_seconds_out_of_band: float = 0.0
    min_chip_margin: float = float("inf")
    max_outlet: float = float("-inf")  # °C, hottest caisson water (= outlet) seen
    # IT power > 0 in a caisson whose true flow is below its PLC's low-flow limit: caisson-steps
    # and caisson-seconds (two caissons at once count twice). Must stay 0: servers without
    # cooling are what the PLC's low-flow trip exists to stop, after its delay.
    it_without_flow_steps: int = 0
    it_without_flow_seconds: float = 0.0


@dataclass(frozen=True)
class PlantKpis:
    duration_h: float
    heat_delivered_kwh: float  # to the site: reused + backup
    heat_reused_kwh: float
    heat_dumped_kwh: float
    dumped_while_backup_kwh: float  # rejected while the backup fired, safety actions apart
    dumped_while_backup_safety_kwh: float  # the PLC's thermostat at its hard limit meanwhile
    backup_heat_kwh: float
    it_energy_kwh: float
    pump_energy_kwh: float
    fan_energy_kwh: float
    heat_demand_kwh: float
    unmet_demand_kwh: float
    erf: float
    pue: float
    ere: float
    hours_out_of_band: float
    discomfort_kh: float  # K·h of supply temperature outside its band
    min_chip_margin_k: float
    plc_trips: int
    in_band_share: float  # of the time with IT power > 0, the share with the supply in its band
    max_outlet_c: float  # hottest caisson outlet (true water temperature), °C
    it_without_flow_s: float  # caisson-seconds of IT power with the flow below the PLC's limit
    it_without_flow_steps: int  # caisson-steps of the same
    caisson_run_share: dict[str, float]  # share of the run each caisson drew IT power

    @classmethod
    def from_totals(
        cls, totals: EnergyTotals, plc_trips: int, run_share: dict[str, float]
    ) -> PlantKpis:
        electricity = totals.it + totals.pumps + totals.fans
        erf = totals.reused / electricity if electricity > 0 else 0.0
        pue = electricity / totals.it if totals.it > 0 else float("nan")
        running = totals.seconds_running
        in_band = 1.0 - totals.seconds_out_of_band / running if running > 0 else float("nan")
        return cls(
            duration_h=totals.seconds / 3600,
            heat_delivered_kwh=(totals.reused + totals.backup) / J_PER_KWH,
            heat_reused_kwh=totals.reused / J_PER_KWH,
            heat_dumped_kwh=totals.dumped / J_PER_KWH,
            dumped_while_backup_kwh=totals.dumped_while_backup / J_PER_KWH,
            dumped_while_backup_safety_kwh=totals.dumped_while_backup_safety / J_PER_KWH,
            backup_heat_kwh=totals.backup / J_PER_KWH,
            it_energy_kwh=totals.it / J_PER_KWH,
            pump_energy_kwh=totals.pumps / J_PER_KWH,
            fan_energy_kwh=totals.fans / J_PER_KWH,
            heat_demand_kwh=totals.demand / J_PER_KWH,
            unmet_demand_kwh=totals.unmet / J_PER_KWH,
            erf=erf,
            pue=pue,
            ere=(1 - erf) * pue,
            hours_out_of_band=totals.seconds_out_of_band / 3600,
            discomfort_kh=totals.kelvin_seconds_out_of_band / 3600,
            min_chip_margin_k=totals.min_chip_margin,
            plc_trips=plc_trips,
            in_band_share=in_band,
            max_outlet_c=totals.max_outlet,
            it_without_flow_s=totals.it_without_flow_seconds,
            it_without_flow_steps=totals.it_without_flow_steps,
            caisson_run_share=run_share,
        )


@njit(cache=True)
def caisson_extremes(water, it_power, flow, low_flow, throttle, chip_temp, computing, dt):  # type: ignore[no-untyped-def]
    """One step's caisson figures for the totals, in one compiled pass (numpy calls on 3-element
    arrays cost more than the step's physics): (hottest water, caissons drawing IT power with the
    flow below its low-flow limit, smallest chip margin among the caissons drawing IT power);
    `computing` (s each caisson drew IT power) grows by `dt` for those."""
    hottest = -np.inf
    margin = np.inf
    unflowed = 0
    for i in range(len(water)):
        hottest = max(hottest, water[i])
        if it_power[i] > 0.0:
            margin = min(margin, throttle[i] - chip_temp[i])
            computing[i] += dt
            if flow[i] < low_flow[i]:
                unflowed += 1
    return hottest, unflowed, margin

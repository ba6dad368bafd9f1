"""The plant: caissons, pumps, pipes, buffer tank, heat exchanger, loads, dry cooler, backup boiler.

One call of `step()` advances everything by `dt` with an explicit scheme on start-of-step values.
Every heat flow is booked once, on both sides, so the energy balance closes to rounding (see
`stored_heat()` and the energy-balance test). Per-caisson state lives in numpy arrays stepped by
compiled loops (caissons.py, plc.py, pipes.py); the plant side is scalar. SI units throughout
(W, J, m³, m³/s, s, °C).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from controller.config.site import SiteConfig
from controller.water import VOLUMETRIC_HEAT
from simulators.plant.caissons import (
    Param,
    caisson_tables,
    drive_caissons,
    heat_caissons,
    mix_inlet,
)
from simulators.plant.kpis import EnergyTotals, PlantKpis, caisson_extremes
from simulators.plant.loads import LoadSeries, PoolBasin
from simulators.plant.pipes import PlugFlowPipes
from simulators.plant.plc import CaissonPlcs, Limit, SupervisorCommands
from simulators.plant.sensors import FaultKind, Sensor, SensorFaults
from simulators.plant.tank import StratifiedTank

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True)
class Drivers:
    """Exogenous inputs of a window of steps, one row per step, starting at step `first_step`."""

    outdoor: FloatArray  # °C
    compute_demand: FloatArray  # (steps, caissons): share of nominal IT power jobs could use
    loads: LoadSeries
    pool_open: BoolArray | None
    first_step: int = 0

    @property
    def steps(self) -> int:
        return len(self.outdoor)

    @property
    def end_step(self) -> int:
        """The first step this window does not cover."""
        return self.first_step + self.steps


@dataclass
class PlantCommands:
    """Supervisor writes to the plant skid. While its lease holds, the supervisor may add dry
    cooling, move the dry cooler's return limit (within the PLC's hard band) and disable the
    backup boiler; when it lapses the plant PLC runs the dry cooler on its own thermostat at its
    default limit and lets the backup boiler fire (plc_maps/plant_skid.yaml)."""

    dry_cooler_valve: float = 0.0
    dry_cooler_fan: float = 0.0
    backup_enable: bool = True
    return_limit: float | None = None  # °C; None: never written
    heartbeat: int = 0
    renewed_at: float = -np.inf
    lease: float = 30.0

    def leased(self, now: float) -> bool:
        return now - self.renewed_at < self.lease

    def write(
        self,
        now: float,
        *,
        dry_cooler_valve: float | None = None,
        dry_cooler_fan: float | None = None,
        backup_enable: bool | None = None,
        return_limit: float | None = None,
        heartbeat: int | None = None,
    ) -> None:
        """A supervisor's write at plant time `now`: any command, or a new heartbeat, renews the
        lease."""
        if dry_cooler_valve is not None:
            self.dry_cooler_valve = dry_cooler_valve
        if dry_cooler_fan is not None:
            self.dry_cooler_fan = dry_cooler_fan
        if backup_enable is not None:
            self.backup_enable = backup_enable
        if return_limit is not None:
            self.return_limit = return_limit
        if heartbeat is not None:
            if heartbeat == self.heartbeat and (dry_cooler_valve, dry_cooler_fan) == (None, None):
                return  # an unchanged heartbeat proves nothing
            self.heartbeat = heartbeat
        self.renewed_at = now


@dataclass
class SiteFlows:
    """The plant side of the last step (W, °C, m³/s)."""

    supply_header: float  # mixed caisson supply entering the tank
    return_header: float  # tank bottom after the dry cooler, to the caissons
    source_flow: float = 0.0  # from the caissons to the header (their valves' share of the pumps')
    heat_exchanged: float = 0.0
    backup_heat: float = 0.0
    dumped_heat: float = 0.0
    # Of dumped_heat: what the plant PLC's thermostat rejected at its hard return limit, to keep
    # the caissons' return within what they take at full flow (a safety action).
    dumped_safety: float = 0.0
    return_limit: float = 0.0  # °C, the dry cooler's return limit in force
    demand: float = 0.0
    building_supply: float = 0.0
    building_return: float = 0.0
    building_flow: float = 0.0
    dry_cooler_valve: float = 0.0
    dry_cooler_fan: float = 0.0


class PlantModel:
    def __init__(self, site: SiteConfig, drivers: Drivers, dt: float = 1.0) -> None:
        self.site = site
        self.drivers = drivers
        self.dt = dt
        self.ids = [c.id for c in site.caissons]
        self.params, limits = caisson_tables(site)
        count = len(self.ids)
        plant = site.plant
        tank = plant.buffer_tank
        start = tank.initial_temperature
        self.tank = StratifiedTank(
            tank.volume, tank.layers, tank.loss_coefficient, plant.room_temperature, start, dt
        )
        # Pipes 0..n-1 bring the return to each caisson, n..2n-1 take its supply to the tank.
        volumes = [c.pipes.ret.volume for c in site.caissons] + [
            c.pipes.supply.volume for c in site.caissons
        ]
        self.pipes = PlugFlowPipes(np.array(volumes), np.full(2 * count, start))
        self._pipe_inlet = np.empty(2 * count)
        self._pipe_moved = np.empty(2 * count)
        self.pool = PoolBasin(site.loads.pool) if site.loads.pool is not None else None
        self.commands = SupervisorCommands.absent(count)
        self.commands.inlet_setpoint[:] = limits[Limit.DEFAULT_INLET]  # what the register holds
        self.plant_commands = PlantCommands()
        self.plcs = CaissonPlcs(limits)
        self.sensors = SensorFaults(count)
        # The plant starts warm and circulating at the PLCs' safe speed.
        self.step_index = 0
        self.water = np.full(count, start)  # caisson water = outlet temperature
        self.inlet = np.full(count, start)  # water entering the caisson (after its loading unit)
        self.return_in = np.full(count, start)  # the header's return arriving at the caisson
        self.header_flow = np.zeros(count)  # m³/s each caisson sends to the header
        self.pump_speed = self.plcs.limits[0].copy()
        self.flow = self.pump_speed * self.params[Param.MAX_FLOW]
        self.pump_power = np.zeros(count)
        self.it_power = np.zeros(count)
        self.chip_temp = np.full(count, start)
        self.throttling = np.zeros(count, dtype=bool)
        self.leak = np.zeros(count, dtype=bool)
        self.pump_fault = np.zeros(count, dtype=bool)  # the drive tripped and says so
        self.pump_seized = np.zeros(count, dtype=bool)  # no flow, and no fault signal
        self.flows = SiteFlows(
            supply_header=start, return_header=start, return_limit=plant.dry_cooler.return_limit
        )
        # The exogenous inputs of the last step (what devices show as outdoor temperature and as
        # the compute jobs' demand).
        self.outdoor = float(drivers.outdoor[0])
        self.compute_demand = drivers.compute_demand[0]
        self.totals = EnergyTotals()
        # The heat meter on the caissons' circuit counts what a real one would (J, m³).
        self.meter_energy = 0.0
        self.meter_volume = 0.0
        self.caisson_meter_energy = np.zeros(count)  # each caisson's own heat meter, J
        self.caisson_meter_volume = np.zeros(count)  # m³
        self.computing_seconds = np.zeros(count)  # s each caisson ran IT power

    @property
    def time(self) -> float:
        """Seconds since the start of the run."""
        return self.step_index * self.dt

    def feed(self, drivers: Drivers) -> None:
        """The next window of inputs, for runs without a fixed end (the simulated plant server)."""
        if not drivers.first_step <= self.step_index < drivers.end_step:
            raise ValueError(
                f"window {drivers.first_step}..{drivers.end_step} misses step {self.step_index}"
            )
        self.drivers = drivers

    # ------------------------------------------------------------------ events

    def trip_pump(self, caisson: int, faulted: bool = True) -> None:
        """The drive trips: the pump stops and the drive's fault bit tells the PLC."""
        self.pump_fault[caisson] = faulted

    def seize_pump(self, caisson: int, seized: bool = True) -> None:
        """The pump stops with no fault signal (a seized impeller, a broken coupling): the PLC can
        only tell from the flow."""
        self.pump_seized[caisson] = seized

    def set_leak(self, caisson: int, leaking: bool = True) -> None:
        self.leak[caisson] = leaking

    def fault_sensor(
        self, sensor: Sensor, caisson: int, kind: FaultKind, rate: float = 0.0
    ) -> None:
        truth = {Sensor.INLET: self.inlet, Sensor.OUTLET: self.water, Sensor.FLOW: self.flow}
        self.sensors.inject(sensor, caisson, kind, self.time, float(truth[sensor][caisson]), rate)

    def drain_and_refill_pool(self) -> None:
        if self.pool is None:
            raise ValueError(f"site {self.site.site.name!r} has no pool")
        self.pool.drain_and_refill()

    # ------------------------------------------------------------------ physics

    def stored_heat(self) -> float:
        """Heat held in caissons, pipes and tank (J above 0 °C): the energy balance's stock."""
        caissons = float(np.dot(self.params[Param.CAPACITY], self.water))
        pipes = float(VOLUMETRIC_HEAT * self.pipes.stored().sum())
        return caissons + pipes + self.tank.stored()

    def step(self) -> None:
        k, now, dt = self.step_index - self.drivers.first_step, self.time, self.dt
        outdoor = self.outdoor = float(self.drivers.outdoor[k])
        self.compute_demand = self.drivers.compute_demand[k]
        plcs = self.plcs
        sensors = self.sensors
        plcs.scan(
            now,
            dt,
            self.commands,
            sensors.read(Sensor.INLET, self.inlet, now),
            sensors.read(Sensor.OUTLET, self.water, now),
            sensors.read(Sensor.FLOW, self.flow, now),
            self.it_power,
            self.leak,
            self.pump_fault,
        )
        _, it_total, pump_total = drive_caissons(
            self.params,
            dt,
            plcs.pump_speed,
            plcs.it_cap,
            plcs.compute_cap,
            self.compute_demand,
            self.pump_fault | self.pump_seized,
            self.water,
            self.pump_speed,
            self.flow,
            self.pump_power,
            self.it_power,
            self.chip_temp,
            self.throttling,
        )
        # Each caisson's pump moves `flow` through it; its loading unit's valve draws the share
        # `valve` from the header and recirculates the rest (no unit: valve 1). The header sees
        # only the drawn share, through the caisson's return and supply pipes.
        header_flow = self.header_flow
        np.multiply(plcs.valve, self.flow, out=header_flow)
        source_flow = float(header_flow.sum())

        # Dry cooler on the caissons' return; then the return and supply pipes in one pass.
        bottom = self.tank.bottom
        dumped, fan_power = self._dry_cooler(now, source_flow, bottom, outdoor)
        return_header = bottom - dumped / (VOLUMETRIC_HEAT * source_flow) if dumped else bottom
        count = len(self.ids)
        inlet, moved = self._pipe_inlet, self._pipe_moved
        inlet[:count] = return_header
        inlet[count:] = self.water
        moved[:count] = header_flow
        moved[count:] = header_flow
        moved *= dt
        outflow = self.pipes.advance(inlet, moved)
        self.return_in[:] = outflow[:count]
        mix_inlet(plcs.valve, self.return_in, self.water, self.inlet)
        self.caisson_meter_energy += VOLUMETRIC_HEAT * self.flow * (self.water - self.inlet) * dt
        self.caisson_meter_volume += header_flow * dt
        room = heat_caissons(
            self.params, dt, self.water, self.inlet, self.flow, self.it_power, self.pump_power
        )
        supply = outflow[count:]
        supply_header = float(header_flow @ supply) / source_flow if source_flow else self.tank.top

        hx_flow, hx_return = self._serve_site(k)
        self.tank.step(source_flow, supply_header, hx_flow, hx_return)
        self.flows.supply_header, self.flows.return_header = supply_header, return_header
        self.flows.source_flow = source_flow
        self.meter_volume += source_flow * dt
        self.meter_energy += max(
            VOLUMETRIC_HEAT * source_flow * (supply_header - return_header) * dt, 0.0
        )
        self._account(it_total, pump_total, fan_power, room, supply_header)
        self.step_index += 1

    def _dry_cooler(
        self, now: float, flow: float, water: float, outdoor: float
    ) -> tuple[float, float]:
        """Heat rejected [W] and fan power [W] for the caissons' return at `water` °C.

        The plant PLC's own thermostat modulates the fan (valve open) to bring the return down to
        its limit and no further, whatever the supervisor asks; a supervisor with a live lease may
        ask for more (valve and fan). The cooler rejects the larger of the two."""
        cooler = self.site.plant.dry_cooler
        commands = self.plant_commands
        leased = commands.leased(now)
        valve = commands.dry_cooler_valve if leased else 0.0
        fan = commands.dry_cooler_fan if leased else 0.0
        limit = cooler.return_limit
        if leased and commands.return_limit is not None:
            limit = min(commands.return_limit, cooler.hard_limit)  # the PLC's hard band
        dumped = safety = 0.0
        if flow > 0.0 and water > outdoor:
            air_full = cooler.capacity * (water - outdoor) / cooler.design_difference
            water_side = VOLUMETRIC_HEAT * flow * (water - outdoor)
            dumped = min(air_full * fan, valve * water_side)
            needed = VOLUMETRIC_HEAT * flow * (water - limit)
            local = min(needed, air_full, water_side)
            if local > dumped:
                dumped = local
                valve, fan = 1.0, max(fan, local / air_full)
                if limit >= cooler.hard_limit:
                    safety = local
        flows = self.flows
        flows.dry_cooler_valve, flows.dry_cooler_fan = valve, fan
        flows.dumped_heat, flows.dumped_safety, flows.return_limit = dumped, safety, limit
        return dumped, cooler.fan_power * fan**3

    def _serve_site(self, k: int) -> tuple[float, float]:
        """The heat exchanger's primary flow and return temperature (the tank's load circuit).

        The building loop asks for its required supply temperature; the heat exchanger gives what
        the tank top allows (approach, capacity), and the backup boiler lifts the rest.
        """
        loads, flows = self.drivers.loads, self.flows
        required = float(loads.supply_required[k])
        demand = float(loads.demand[k])
        flow = float(loads.flow[k])
        return_flow_temp = float(loads.return_flow_temperature[k])
        pool_demand = 0.0
        pool_open = bool(self.drivers.pool_open[k]) if self.drivers.pool_open is not None else False
        if self.pool is not None:
            pool_demand = self.pool.demand(pool_open)
            pool_return = self.pool.config.return_temperature
            pool_flow = pool_demand / (VOLUMETRIC_HEAT * (required - pool_return))
            demand += pool_demand
            flow += pool_flow
            return_flow_temp += pool_flow * pool_return
        hx = self.site.plant.heat_exchanger
        top = self.tank.top
        hx_heat = hx_flow = backup = 0.0
        hx_return = top
        if flow <= 0.0:
            building_return = building_supply = top - hx.approach
        else:
            building_return = return_flow_temp / flow
            capacity = VOLUMETRIC_HEAT * flow  # W/K of the building loop
            after_hx = max(min(required, top - hx.approach), building_return)
            hx_heat = min(capacity * (after_hx - building_return), hx.max_power)
            if top - (building_return + hx.approach) < 0.5:
                hx_heat = 0.0  # the tank is no warmer than the building's return
            else:
                hx_return = building_return + hx.approach
                hx_flow = hx_heat / (VOLUMETRIC_HEAT * (top - hx_return))
                if hx_flow > self.tank.max_flow:
                    hx_flow = self.tank.max_flow
                    hx_heat = hx_flow * VOLUMETRIC_HEAT * (top - hx_return)
            after_hx = building_return + hx_heat / capacity
            commands = self.plant_commands
            if commands.backup_enable or not commands.leased(k * self.dt):
                backup = min(
                    max(capacity * (required - after_hx), 0.0),
                    self.site.plant.backup_boiler.capacity,
                )
            building_supply = after_hx + backup / capacity
        if self.pool is not None:
            share = pool_demand / demand if demand > 0 else 0.0
            self.pool.step((hx_heat + backup) * share, pool_open, self.dt)
        flows.heat_exchanged, flows.backup_heat, flows.demand = hx_heat, backup, demand
        flows.building_supply, flows.building_return = building_supply, building_return
        flows.building_flow = flow
        return hx_flow, hx_return

    def space_heating_supply(self) -> float | None:
        """Supply temperature of the space-heating circuit in the last step: the heating curve,
        mixed down from the plant's supply, or less when the plant cannot reach it."""
        curve = self.drivers.loads.space_heating_supply
        row = self.step_index - 1 - self.drivers.first_step
        if curve is None or row < 0:
            return None
        return min(self.flows.building_supply, float(curve[row]))

    def _account(
        self, it: float, pumps: float, fans: float, room: float, supply_header: float
    ) -> None:
        dt, t, f = self.dt, self.totals, self.flows
        t.it += it * dt
        t.pumps += pumps * dt
        t.fans += fans * dt
        t.reused += f.heat_exchanged * dt
        t.backup += f.backup_heat * dt
        t.dumped += f.dumped_heat * dt
        if f.backup_heat > 0.0 and f.dumped_heat > 0.0:
            t.dumped_while_backup += (f.dumped_heat - f.dumped_safety) * dt
            t.dumped_while_backup_safety += f.dumped_safety * dt
        t.demand += f.demand * dt
        t.unmet += max(f.demand - f.heat_exchanged - f.backup_heat, 0.0) * dt
        t.room_losses += room * dt
        t.tank_losses += self.tank.losses * dt
        t.seconds += dt
        hottest, unflowed, margin = caisson_extremes(
            self.water,
            self.it_power,
            self.flow,
            self.plcs.limits[Limit.LOW_FLOW],
            self.params[Param.THROTTLE],
            self.chip_temp,
            self.computing_seconds,
            dt,
        )
        t.max_outlet = max(t.max_outlet, hottest)
        if unflowed:
            t.it_without_flow_steps += unflowed
            t.it_without_flow_seconds += unflowed * dt
        # Heat-delivery time: the caissons make heat and send water to the header (a caisson
        # warming up on its loading unit's recirculation sends none: there is no supply then).
        if it > 0.0 and f.source_flow > 0.0:
            t.seconds_running += dt
            setpoints = self.site.setpoints
            outside = max(
                setpoints.supply_low - supply_header, supply_header - setpoints.supply_high
            )
            if outside > 0.0:
                t.seconds_out_of_band += dt
                t.kelvin_seconds_out_of_band += outside * dt
        t.min_chip_margin = min(t.min_chip_margin, margin)

    def kpis(self) -> PlantKpis:
        seconds = self.totals.seconds
        shares = self.computing_seconds / seconds if seconds else self.computing_seconds
        return PlantKpis.from_totals(
            self.totals, self.plcs.trips, dict(zip(self.ids, shares.tolist(), strict=True))
        )

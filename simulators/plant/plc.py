"""The caisson PLCs' own logic: lease watchdog, local interlocks, the pump's start and stop
sequence and the loading unit's valve loop, one scan per caisson.

This is what protects a caisson with or without a supervisor (DOMAIN.md, "Safety"). It sees the
plant only through its sensors, so a stuck sensor fools it as it would a real PLC; a sensor at its
fault sentinel (NaN here) counts as a trip condition: fail safe.

Trips: low flow and outlet over-temperature clear on their own `trip_reset_delay` after every
cause has gone. A leak or a pump fault latches: it clears only on a trip reset (the `trip_reset`
coil) once its own cause has gone, as an engineer resets a caisson after the repair; the
supervisor never resets one by itself. A trip reset clears each trip whose own cause has gone. A
caisson restarted from a leak or pump-fault trip with its flow still low keeps the low-flow trip
(pump at full speed, IT power 0) until the flow has held above the limit for `trip_reset_delay`:
it proves its flow before any IT power.
Proof of flow: IT power is allowed only while the pump is commanded to run and the flow has stayed
above the low-flow limit for `flow_proof` seconds; the moment the flow drops below it the cap is
0, whatever anyone writes (the low-flow trip, with its delay, then drives the pump to full speed).
Standby: in remote mode, asked to by the supervisor (`standby_request`), with its cap command at 0
and its IT power below `idle_power` for `post_run` seconds, the PLC stops the pump; a check valve
then stops all flow through the caisson. Any other state runs the pump: local and local safe mode
at the safe speed, a trip at full speed. Starting again is the reverse: pump on, flow proven, and
only then IT power.
Loading unit: a three-way valve mixes the header's return (share `valve`) with the caisson's own
outlet (the rest) into its inlet. The PLC's integral loop drives it to the inlet setpoint (the
supervisor's lease, or its own default); it recirculates while the pump starts or stands still,
and opens to the header on an over-temperature or low-flow trip or a failed temperature sensor.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, IntFlag

import numpy as np
from numba import njit
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]


class PlcMode(IntEnum):
    LOCAL = 0  # since power-up, no supervisor has asked for remote control
    REMOTE = 1  # following the supervisor's setpoints
    LOCAL_SAFE = 2  # the supervisor's lease expired: safe speed and safe cap until asked again


class Interlock(IntFlag):
    """Bits of the PLC's interlock status word (the caisson skid map's `interlocks` register)."""

    LOW_FLOW_TRIP = 1 << 0
    OVERTEMP_WARN = 1 << 1
    OVERTEMP_TRIP = 1 << 2
    LEAK_TRIP = 1 << 3
    PUMP_FAULT_TRIP = 1 << 4
    LOCAL_SAFE = 1 << 5


TRIPS = int(
    Interlock.LOW_FLOW_TRIP
    | Interlock.OVERTEMP_TRIP
    | Interlock.LEAK_TRIP
    | Interlock.PUMP_FAULT_TRIP
)
_LOW_FLOW, _WARN, _HOT = (
    int(Interlock.LOW_FLOW_TRIP),
    int(Interlock.OVERTEMP_WARN),
    int(Interlock.OVERTEMP_TRIP),
)
_LEAK, _PUMP, _SAFE = (
    int(Interlock.LEAK_TRIP),
    int(Interlock.PUMP_FAULT_TRIP),
    int(Interlock.LOCAL_SAFE),
)
_REMOTE, _LOCAL_SAFE = int(PlcMode.REMOTE), int(PlcMode.LOCAL_SAFE)
# Trips that stay until a trip reset (an engineer has repaired the caisson), not cleared by time.
LATCHED = _LEAK | _PUMP


class Limit(IntEnum):
    """Rows of the PLC parameter table (SI units), one column per caisson."""

    SAFE_SPEED = 0
    SAFE_CAP = 1
    MIN_SPEED = 2
    LOW_FLOW = 3
    LOW_FLOW_DELAY = 4
    OVERTEMP_WARN = 5
    OVERTEMP_TRIP = 6
    TRIP_RESET_DELAY = 7
    LEASE_TIMEOUT = 8
    NOMINAL_POWER = 9
    FLOW_PROOF = 10  # s
    POST_RUN = 11  # s
    IDLE_POWER = 12  # W
    LOADING_UNIT = 13  # 1.0: fitted
    DEFAULT_INLET = 14  # °C, the loading unit's own inlet setpoint
    VALVE_RATE = 15  # share of the stroke per second


VALVE_GAIN = 0.008  # per K·s: the loading unit's integral loop on the inlet temperature


@dataclass
class SupervisorCommands:
    """What a supervisor has written to the caisson PLCs and compute managers (SI units).

    The *_at arrays hold the plant time of the last write; whoever writes (the simulated servers,
    an in-process controller) stamps them. With nobody writing, every lease is expired and the
    PLCs stay in local mode.
    """

    pump_speed: FloatArray
    plc_cap: FloatArray  # W, the caisson PLC's IT power cap
    compute_cap: FloatArray  # W, the compute manager's power cap
    heartbeat: IntArray
    heartbeat_changed_at: FloatArray
    pump_speed_renewed_at: FloatArray
    plc_cap_renewed_at: FloatArray
    compute_cap_renewed_at: FloatArray
    remote_request: BoolArray  # consumed by the PLC's next scan
    trip_reset: BoolArray  # consumed by the PLC's next scan
    standby_request: BoolArray  # the pump may stop while the caisson is idle (held, not consumed)
    inlet_setpoint: FloatArray  # °C, the loading unit's (a lease of its own)
    inlet_setpoint_renewed_at: FloatArray

    @classmethod
    def absent(cls, count: int) -> SupervisorCommands:
        def never() -> FloatArray:
            return np.full(count, -np.inf)

        return cls(
            pump_speed=np.zeros(count),
            plc_cap=np.zeros(count),
            compute_cap=np.zeros(count),
            heartbeat=np.zeros(count, dtype=np.int64),
            heartbeat_changed_at=never(),
            pump_speed_renewed_at=never(),
            plc_cap_renewed_at=never(),
            compute_cap_renewed_at=never(),
            remote_request=np.zeros(count, dtype=bool),
            trip_reset=np.zeros(count, dtype=bool),
            standby_request=np.zeros(count, dtype=bool),
            inlet_setpoint=np.zeros(count),
            inlet_setpoint_renewed_at=never(),
        )

    def write(
        self,
        caisson: int,
        now: float,
        *,
        pump_speed: float | None = None,
        plc_cap: float | None = None,
        compute_cap: float | None = None,
        heartbeat: int | None = None,
        inlet_setpoint: float | None = None,
        standby_request: bool | None = None,
    ) -> None:
        """A supervisor's write at plant time `now`; a rewrite of a lease setpoint renews it."""
        if pump_speed is not None:
            self.pump_speed[caisson] = pump_speed
            self.pump_speed_renewed_at[caisson] = now
        if plc_cap is not None:
            self.plc_cap[caisson] = plc_cap
            self.plc_cap_renewed_at[caisson] = now
        if compute_cap is not None:
            self.compute_cap[caisson] = compute_cap
            self.compute_cap_renewed_at[caisson] = now
        if heartbeat is not None and heartbeat != self.heartbeat[caisson]:
            self.heartbeat[caisson] = heartbeat
            self.heartbeat_changed_at[caisson] = now
        if inlet_setpoint is not None:
            self.inlet_setpoint[caisson] = inlet_setpoint
            self.inlet_setpoint_renewed_at[caisson] = now
        if standby_request is not None:
            self.standby_request[caisson] = standby_request


class CaissonPlcs:
    def __init__(self, limits: FloatArray) -> None:
        """`limits`: rows per `Limit`, one column per caisson."""
        count = limits.shape[1]
        self.limits = limits
        self.mode = np.full(count, PlcMode.LOCAL, dtype=np.int64)
        self.interlocks = np.zeros(count, dtype=np.int64)  # Interlock bits
        self.low_flow_for = np.zeros(count)  # s the flow has been below the limit
        self.healthy_for = np.zeros(count)  # s since every trip cause went away
        self.proven_for = np.zeros(count)  # s the flow has been above the limit, pump running
        self.idle_for = np.zeros(count)  # s with the cap command at 0 and no IT power
        self.standby = np.zeros(count, dtype=bool)  # pump stopped on request
        self.inlet_setpoint = limits[Limit.DEFAULT_INLET].copy()  # °C in force
        # The loading unit's valve: share of the pump flow drawn from the header (1: no unit).
        self.valve = np.where(limits[Limit.LOADING_UNIT] > 0, 0.0, 1.0)
        self.pump_speed = np.zeros(count)  # outputs of the last scan
        self.it_cap = np.zeros(count)
        self.compute_cap = np.zeros(count)
        self.trips = 0  # caissons that went from healthy to tripped, over the run

    @property
    def flow_proven(self) -> BoolArray:
        return self.proven_for >= self.limits[Limit.FLOW_PROOF]

    def scan(
        self,
        now: float,
        dt: float,
        commands: SupervisorCommands,
        inlet_reading: FloatArray,
        outlet_reading: FloatArray,
        flow_reading: FloatArray,
        it_power: FloatArray,
        leak: BoolArray,
        pump_fault: BoolArray,
    ) -> None:
        c = commands
        self.trips += plc_scan(
            now,
            dt,
            self.limits,
            self.mode,
            self.interlocks,
            self.low_flow_for,
            self.healthy_for,
            self.proven_for,
            self.idle_for,
            self.standby,
            self.inlet_setpoint,
            self.valve,
            c.pump_speed,
            c.plc_cap,
            c.compute_cap,
            c.inlet_setpoint,
            c.standby_request,
            c.heartbeat_changed_at,
            c.pump_speed_renewed_at,
            c.plc_cap_renewed_at,
            c.compute_cap_renewed_at,
            c.inlet_setpoint_renewed_at,
            c.remote_request,
            c.trip_reset,
            inlet_reading,
            outlet_reading,
            flow_reading,
            it_power,
            leak,
            pump_fault,
            self.pump_speed,
            self.it_cap,
            self.compute_cap,
        )


@njit(cache=True)
def plc_scan(
    now,
    dt,
    limits,
    mode,
    interlocks,
    low_flow_for,
    healthy_for,
    proven_for,
    idle_for,
    standby,
    inlet_setpoint,
    valve,
    pump_cmd,
    cap_cmd,
    compute_cmd,
    inlet_cmd,
    standby_request,
    heartbeat_at,
    pump_at,
    cap_at,
    compute_at,
    inlet_at,
    remote_request,
    trip_reset,
    inlet,
    outlet,
    flow,
    it_power,
    leak,
    pump_fault,
    out_speed,
    out_cap,
    out_compute_cap,
):  # type: ignore[no-untyped-def]
    """One PLC scan of every caisson; returns how many caissons tripped in this scan."""
    new_trips = 0
    for i in range(len(mode)):
        timeout = limits[Limit.LEASE_TIMEOUT, i]
        alive = (
            now - heartbeat_at[i] < timeout
            and now - pump_at[i] < timeout
            and now - cap_at[i] < timeout
        )
        if mode[i] == _REMOTE and not alive:
            mode[i] = _LOCAL_SAFE
        if remote_request[i] and alive:
            mode[i] = _REMOTE
        remote_request[i] = False
        remote = mode[i] == _REMOTE

        word = interlocks[i]
        was_tripped = word & TRIPS
        flow_low = not flow[i] >= limits[Limit.LOW_FLOW, i]  # NaN: a faulty sensor is low
        # A pump stopped on request has no flow to prove: low flow counts only while it runs.
        low_flow_for[i] = low_flow_for[i] + dt if flow_low and not standby[i] else 0.0
        too_hot = not outlet[i] < limits[Limit.OVERTEMP_TRIP, i]  # NaN trips too
        if low_flow_for[i] >= limits[Limit.LOW_FLOW_DELAY, i]:
            word |= _LOW_FLOW
        if too_hot:
            word |= _HOT
        if leak[i]:
            word |= _LEAK
        if pump_fault[i]:
            word |= _PUMP
        word = word | _WARN if not outlet[i] < limits[Limit.OVERTEMP_WARN, i] else word & ~_WARN
        cause = (flow_low and not standby[i]) or too_hot or leak[i] or pump_fault[i]
        healthy_for[i] = 0.0 if cause else healthy_for[i] + dt
        if healthy_for[i] >= limits[Limit.TRIP_RESET_DELAY, i]:
            word &= ~(TRIPS & ~LATCHED)
        if trip_reset[i]:  # clears each trip whose own cause has gone
            gone = (
                (0 if flow_low else _LOW_FLOW)
                | (0 if too_hot else _HOT)
                | (0 if leak[i] else _LEAK)
                | (0 if pump_fault[i] else _PUMP)
            )
            restarted = word & gone & LATCHED
            word &= ~gone
            if restarted and flow_low:  # back from isolation: prove flow before any IT power
                word |= _LOW_FLOW
        trip_reset[i] = False
        word = word | _SAFE if mode[i] == _LOCAL_SAFE else word & ~_SAFE
        if word & TRIPS and not was_tripped:
            new_trips += 1
        interlocks[i] = word

        nominal = limits[Limit.NOMINAL_POWER, i]
        if remote:
            # The PLC never runs the pump below its minimum speed: stopping it is the dangerous
            # way, and only the standby sequence below may do it.
            speed = max(pump_cmd[i], limits[Limit.MIN_SPEED, i])
            cap = min(cap_cmd[i], nominal)
            inlet_lease = now - inlet_at[i] < timeout
            inlet_setpoint[i] = inlet_cmd[i] if inlet_lease else limits[Limit.DEFAULT_INLET, i]
        else:
            speed = limits[Limit.SAFE_SPEED, i]
            cap = limits[Limit.SAFE_CAP, i]
            inlet_setpoint[i] = limits[Limit.DEFAULT_INLET, i]

        # Standby: asked for, in remote mode, untripped, the cap at 0 and the servers idle for the
        # post-run time. Anything else runs the pump.
        idle = remote and cap_cmd[i] <= 0.0 and it_power[i] <= limits[Limit.IDLE_POWER, i]
        idle_for[i] = idle_for[i] + dt if idle else 0.0
        if remote and standby_request[i] and cap_cmd[i] <= 0.0 and not word & TRIPS:
            if idle_for[i] >= limits[Limit.POST_RUN, i]:
                standby[i] = True
        else:
            standby[i] = False
        if standby[i]:
            speed = 0.0
        if word & (_LOW_FLOW | _HOT):
            speed = 1.0
        if word & _LEAK:
            speed = 0.0  # isolated: valves shut, pump off
        if word & TRIPS:
            cap = 0.0

        # Proof of flow: IT power only while the running pump's flow has stayed above the limit.
        running = speed > 0.0
        proven_for[i] = proven_for[i] + dt if running and not flow_low else 0.0
        if proven_for[i] < limits[Limit.FLOW_PROOF, i]:
            cap = 0.0

        # The loading unit's valve (share from the header), moving at most its stroke rate.
        if limits[Limit.LOADING_UNIT, i] > 0.0:
            rate = limits[Limit.VALVE_RATE, i] * dt
            if word & (_LOW_FLOW | _HOT) or not (inlet[i] == inlet[i] and outlet[i] == outlet[i]):
                move = rate  # cool from the header; a failed sensor fails safe the same way
            elif not running or proven_for[i] < limits[Limit.FLOW_PROOF, i]:
                move = -rate  # recirculate while the pump starts or stands still
            else:
                move = VALVE_GAIN * (inlet[i] - inlet_setpoint[i]) * dt
                move = min(max(move, -rate), rate)
            valve[i] = min(max(valve[i] + move, 0.0), 1.0)

        out_speed[i] = speed
        out_cap[i] = cap
        # The compute manager's power cap is a lease of its own, with the same safe fallback.
        safe_cap = limits[Limit.SAFE_CAP, i]
        out_compute_cap[i] = compute_cmd[i] if now - compute_at[i] < timeout else safe_cap
    return new_trips

"""What an engineer may change on a running plant, and within which limits. Pure: no I/O, no clock.

- Control modes, per caisson and for the plant:
  - AUTO: the controllers run.
  - MANUAL: the automatic outputs are frozen where they are (bumpless both ways); an engineer moves
    them with overrides. The interlocks still act. A caisson in manual leaves dispatch; the plant in
    manual freezes the dry cooler, the backup boiler and every caisson's cap, while each caisson's
    outlet loop still runs (the pumps protect the servers).
  - MAINTENANCE: lockout. A caisson's caps go to 0 and stay there, it leaves dispatch, and its
    alarms are suppressed by design; the plant in maintenance locks out every caisson.
- Setpoints, each within engineering limits.
- Override limits: a writable point's map limits, and never a pump below its minimum speed (a
  pump stopped with IT power on is the dangerous direction).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from controller.config.loader import LoadedSite
from controller.config.roles import CaissonSkidPoint as Skid
from controller.config.units import Dimension, point_unit_factor
from controller.fieldbus.image import PointRef

PLANT = "plant"
MAX_LEASE = 12 * 3600.0  # s: an override outlives no shift
NOT_OVERRIDABLE = frozenset({Skid.LEASE_TIMEOUT})  # the PLC's watchdog is not an operator's value


class ControlMode(StrEnum):
    AUTO = "auto"
    MANUAL = "manual"
    MAINTENANCE = "maintenance"


@dataclass(frozen=True)
class SetpointSpec:
    name: str
    dimension: Dimension
    unit: str  # how it is shown and typed
    factor: float  # unit → SI
    description: str
    limits: Callable[[LoadedSite], tuple[float, float]]  # SI, inclusive


SETPOINTS: dict[str, SetpointSpec] = {
    spec.name: spec
    for spec in (
        SetpointSpec(
            "outlet",
            Dimension.TEMPERATURE,
            "degC",
            1.0,
            "caissons' outlet temperature",
            lambda site: (site.config.setpoints.supply_low, site.config.setpoints.supply_high),
        ),
        SetpointSpec(
            "tank_reserve",
            Dimension.FRACTION,
            "%",
            0.01,
            "buffer tank charge held in HEAT mode",
            lambda site: (0.1, 0.95),
        ),
    )
}


@dataclass(frozen=True)
class OverrideLimits:
    low: float  # SI
    high: float
    unit: str  # the point's map unit
    factor: float  # map unit → SI
    boolean: bool


def check_setpoint(site: LoadedSite, name: str, value: float) -> float:
    """`value` (SI) if within the setpoint's limits; ValueError names the setpoint and limits."""
    spec = SETPOINTS.get(name)
    if spec is None:
        raise ValueError(f"no setpoint {name!r} (there are {', '.join(SETPOINTS)})")
    low, high = spec.limits(site)
    if not low <= value <= high:
        raise ValueError(
            f"setpoint {name}: {value / spec.factor:g} {spec.unit} is outside its limits "
            f"{low / spec.factor:g}..{high / spec.factor:g} {spec.unit}"
        )
    return value


def override_limits(
    site: LoadedSite, ref: PointRef, writable: frozenset[PointRef]
) -> OverrideLimits:
    """The limits an override of `ref` must respect; ValueError when it cannot be overridden."""
    if ref not in writable or ref.point in NOT_OVERRIDABLE:
        choices = ", ".join(sorted(str(r) for r in writable if r.point not in NOT_OVERRIDABLE))
        raise ValueError(f"{ref} is not a point an operator can override (those are: {choices})")
    point = site.device_map(ref.device).point(ref.point)
    factor = point_unit_factor(point.unit)
    if point.limits is None:  # a boolean: maps give numeric writable points limits
        return OverrideLimits(0.0, 1.0, point.unit, factor, boolean=True)
    low, high = point.limits.min * factor, point.limits.max * factor
    if ref.point == Skid.PUMP_SPEED_CMD:
        caisson = next(c for c in site.config.caissons if c.skid == ref.device)
        low = max(low, site.config.caisson_type(caisson).pump.min_speed)
    return OverrideLimits(low, high, point.unit, factor, boolean=False)


def check_override(limits: OverrideLimits, ref: PointRef, value: float) -> float:
    """`value` (SI) if the override may hold it; ValueError names the point and its limits."""
    if limits.boolean:
        if value not in (0.0, 1.0):
            raise ValueError(f"{ref}: {value:g} is not a boolean (0 or 1)")
        return value
    if not limits.low - 1e-9 <= value <= limits.high + 1e-9:
        shown = f"{limits.low / limits.factor:g}..{limits.high / limits.factor:g} {limits.unit}"
        raise ValueError(f"{ref}: {value / limits.factor:g} {limits.unit} is outside {shown}")
    return value


def check_lease(seconds: float) -> float:
    if not 0 < seconds <= MAX_LEASE:
        raise ValueError(f"an override lasts more than 0 s and at most {MAX_LEASE / 3600:g} h")
    return seconds

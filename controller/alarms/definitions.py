"""The site file's alarms (`alarms:`), made into one instance per place and evaluated each scan.

A caisson alarm has one instance per caisson (`AlarmId(caisson id, name)`), reading that caisson's
device; a plant alarm has one (`AlarmId("plant", name)`). The loader has checked every device,
point and threshold, so building the instances cannot fail on a loaded site. Thresholds are in the
unit of the point they watch (see `AlarmSpec`), so samples compare as they are.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from controller.alarms.conditions import (
    Condition,
    DeviationCondition,
    DiscreteCondition,
    LimitCondition,
    RateCondition,
)
from controller.alarms.engine import AlarmDefinition
from controller.alarms.model import AlarmId, Kind
from controller.alarms.suppression import CauseRule
from controller.config.loader import LoadedSite
from controller.config.site import AlarmSpec
from controller.fieldbus.image import PointRef, Quality, Sample

PLANT: Final = "plant"
LOCKOUT: Final = "lockout"
STANDBY: Final = "standby"


@dataclass(frozen=True)
class AlarmInstance:
    definition: AlarmDefinition
    ref: PointRef  # the point read
    setpoint_ref: PointRef | None  # deviation: the point it deviates from
    condition: Condition  # stateful: one per instance
    suppressed_in: frozenset[str]  # "lockout", "standby" (its caisson), plant modes ("reject"...)
    caisson: str | None  # None for a plant alarm


def instantiate(site: LoadedSite) -> list[AlarmInstance]:
    """The site's alarms, each at each of its places, in the order of the file."""
    config = site.config
    instances = []
    for spec in config.alarms:
        for caisson, device in spec.places(config):
            point = site.device_map(device).point(spec.point)
            limit, deadband = spec.thresholds(point.unit)
            instances.append(
                AlarmInstance(
                    definition=AlarmDefinition(
                        id=AlarmId(PLANT if caisson is None else caisson, spec.name),
                        priority=spec.priority,
                        message=spec.message,
                        latched=spec.latched,
                        kind=Kind(spec.kind),
                    ),
                    ref=PointRef(device, spec.point),
                    setpoint_ref=None if spec.setpoint is None else PointRef(device, spec.setpoint),
                    condition=_condition(spec, limit, deadband),
                    suppressed_in=frozenset(spec.suppressed_in),
                    caisson=caisson,
                )
            )
    return instances


def _condition(spec: AlarmSpec, limit: float, deadband: float) -> Condition:
    delays = {"on_delay": spec.on_delay, "off_delay": spec.off_delay}
    kind = Kind(spec.kind)
    if kind is Kind.DISCRETE:
        return DiscreteCondition(spec.alarm_value, **delays)
    if kind is Kind.DEVIATION:
        return DeviationCondition(limit, deadband, **delays)
    if kind is Kind.RATE:
        assert spec.window is not None  # the model requires it
        return RateCondition(limit, spec.window, **delays)
    return LimitCondition(kind, limit, deadband, **delays)


def evaluate(
    instances: Iterable[AlarmInstance],
    snapshot: Mapping[PointRef, Sample],
    now_monotonic: float,
) -> dict[AlarmId, bool]:
    """Each instance's condition after this scan. Only GOOD samples count: a STALE, BAD or
    missing sample (or a setpoint one) keeps the condition as it was."""
    return {
        instance.definition.id: instance.condition.evaluate(
            _value(snapshot, instance.ref),
            now_monotonic,
            _number(_value(snapshot, instance.setpoint_ref)),
        )
        for instance in instances
    }


def suppressed(
    instances: Iterable[AlarmInstance],
    mode: str | None,
    lockout: Collection[str],
    standby: Collection[str] = (),
) -> dict[AlarmId, str]:
    """The alarms suppressed by design, and why: those of caissons in `lockout` that say
    "lockout", of caissons in `standby` (their pumps stopped on request) that say "standby", and
    those that name the plant's current `mode` ("reject", "shed", ...)."""
    found: dict[AlarmId, str] = {}
    for instance in instances:
        if LOCKOUT in instance.suppressed_in and instance.caisson in lockout:
            found[instance.definition.id] = f"{instance.caisson} in maintenance lockout"
        elif STANDBY in instance.suppressed_in and instance.caisson in standby:
            found[instance.definition.id] = f"{instance.caisson} standing by, its pump stopped"
        elif mode is not None and mode in instance.suppressed_in:
            found[instance.definition.id] = f"plant mode {mode}"
    return found


def cause_rules(site: LoadedSite) -> list[CauseRule]:
    """The site file's designed suppressions: each alarm's `suppresses` (its consequences)."""
    return [
        CauseRule(spec.name, frozenset(spec.suppresses), spec.suppression_release)
        for spec in site.config.alarms
        if spec.suppresses
    ]


def _value(snapshot: Mapping[PointRef, Sample], ref: PointRef | None) -> float | bool | None:
    sample = None if ref is None else snapshot.get(ref)
    if sample is None or sample.quality is not Quality.GOOD:
        return None
    value = sample.value
    return value if isinstance(value, float | int | bool) else None


def _number(value: float | bool | None) -> float | None:
    return None if value is None else float(value)

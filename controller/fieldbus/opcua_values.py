"""OPC-UA values: a DataValue with its status → a Sample, a point's value → a Variant. Pure.

The status rules are the OPC-UA driver's (opcua_driver.py, "Status code → Sample").
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Final

import structlog
from asyncua import ua
from asyncua.ua.status_codes import StatusCodes, code_to_name_doc

from controller.config.maps import INTEGER_RANGE, DataType, OpcUaPoint
from controller.fieldbus.image import Quality, Reason, Sample, Value

log = structlog.get_logger(__name__)

# Map data type → OPC-UA built-in type of the node's value.

VARIANT_TYPES: Final[dict[DataType, ua.VariantType]] = {
    DataType.BOOL: ua.VariantType.Boolean,
    DataType.INT16: ua.VariantType.Int16,
    DataType.UINT16: ua.VariantType.UInt16,
    DataType.INT32: ua.VariantType.Int32,
    DataType.UINT32: ua.VariantType.UInt32,
    DataType.INT64: ua.VariantType.Int64,
    DataType.FLOAT32: ua.VariantType.Float,
    DataType.FLOAT64: ua.VariantType.Double,
    DataType.STRING: ua.VariantType.String,
}
_INTEGER_VARIANTS: Final = frozenset(
    {
        ua.VariantType.SByte,
        ua.VariantType.Byte,
        ua.VariantType.Int16,
        ua.VariantType.UInt16,
        ua.VariantType.Int32,
        ua.VariantType.UInt32,
        ua.VariantType.Int64,
        ua.VariantType.UInt64,
    }
)
_FLOAT_VARIANTS: Final = frozenset({ua.VariantType.Float, ua.VariantType.Double})
_FLOAT32_MAX: Final = 3.4028234663852886e38

_SEVERITY_MASK: Final = 0xC0000000
_CODE_MASK: Final = 0xFFFF0000  # the low 16 bits are info bits (limits, overflow)
_SEVERITY_GOOD: Final = 0x00000000
_SEVERITY_UNCERTAIN: Final = 0x40000000


def _codes(reason: Reason, *names: str) -> dict[int, Reason]:
    return {int(getattr(StatusCodes, name)): reason for name in names}


# Bad status → why the sample is BAD (codes not listed: DEVICE_EXCEPTION).
BAD_REASONS: Final[dict[int, Reason]] = {
    **_codes(
        Reason.COMM_LOST,
        "BadCommunicationError",
        "BadNoCommunication",
        "BadNotConnected",
        "BadServerNotConnected",
        "BadConnectionClosed",
        "BadSecureChannelClosed",
        "BadSessionClosed",
        "BadTimeout",
        "BadShutdown",
        "BadServerHalted",
        "BadOutOfService",
        "BadResourceUnavailable",
    ),
    **_codes(Reason.OUT_OF_RANGE, "BadOutOfRange"),
    **_codes(Reason.SENSOR_FAULT, "BadSensorFailure", "BadDeviceFailure"),
    **_codes(
        Reason.ILLEGAL_ADDRESS,
        "BadNodeIdUnknown",
        "BadNodeIdInvalid",
        "BadAttributeIdInvalid",
        "BadNoMatch",
        "BadNotReadable",
        "BadUserAccessDenied",
    ),
    **_codes(Reason.NOT_CONNECTED, "BadWaitingForInitialData"),
    **_codes(
        Reason.DECODE_ERROR,
        "BadTypeMismatch",
        "BadDecodingError",
        "BadDataEncodingInvalid",
        "BadDataEncodingUnsupported",
    ),
}

# Uncertain status → why the (shown) value is STALE (codes not listed: SENSOR_FAULT).
UNCERTAIN_REASONS: Final[dict[int, Reason]] = {
    **_codes(
        Reason.COMM_LOST, "UncertainLastUsableValue", "UncertainNoCommunicationLastUsableValue"
    ),
    **_codes(
        Reason.OUT_OF_RANGE,
        "UncertainEngineeringUnitsExceeded",
        "UncertainOverRange",
        "UncertainUnderRange",
    ),
}


def _utc(stamp: datetime | None) -> datetime | None:
    """A DataValue timestamp as aware UTC; None for a missing (or null, 1601) timestamp."""
    if stamp is None or stamp.year <= 1601:
        return None
    if stamp.tzinfo is None:
        return stamp.replace(tzinfo=UTC)
    return stamp.astimezone(UTC)


def status_name(status: ua.StatusCode) -> str:
    """The status code's symbolic name (info bits ignored); hex for a code asyncua does not know."""
    code = status.value & _CODE_MASK
    if code not in code_to_name_doc:
        return f"0x{code:08X}"
    return code_to_name_doc[code][0]


def _decode(point: OpcUaPoint, variant: ua.Variant | None) -> Value | None:
    """The variant's value as a value of the point's type; None when it is not one."""
    if variant is None or variant.Value is None or variant.is_array:
        return None
    value: object = variant.Value
    kind = variant.VariantType
    if point.type is DataType.BOOL:
        return value if kind is ua.VariantType.Boolean and isinstance(value, bool) else None
    if point.type is DataType.STRING:
        return value if kind is ua.VariantType.String and isinstance(value, str) else None
    if point.type in (DataType.FLOAT32, DataType.FLOAT64):
        if kind in _FLOAT_VARIANTS and isinstance(value, float):
            return value
        return None
    if kind in _INTEGER_VARIANTS and isinstance(value, int) and not isinstance(value, bool):
        low, high = INTEGER_RANGE[point.type]
        return value if low <= value <= high else None
    return None


def to_sample(point: OpcUaPoint, data: ua.DataValue, now: datetime) -> Sample:
    """The Sample of one DataValue of `point` (see the module docstring for the rules)."""
    stamp = _utc(data.SourceTimestamp) or _utc(data.ServerTimestamp) or now
    code = data.StatusCode.value if data.StatusCode is not None else 0
    severity = code & _SEVERITY_MASK
    if severity not in (_SEVERITY_GOOD, _SEVERITY_UNCERTAIN):
        return Sample.bad(BAD_REASONS.get(code & _CODE_MASK, Reason.DEVICE_EXCEPTION), stamp)
    value = _decode(point, data.Value)
    if value is None:
        return Sample.bad(Reason.DECODE_ERROR, stamp)
    if isinstance(value, float) and not math.isfinite(value):
        return Sample.bad(Reason.SENSOR_FAULT, stamp)
    if severity == _SEVERITY_UNCERTAIN:
        reason = UNCERTAIN_REASONS.get(code & _CODE_MASK, Reason.SENSOR_FAULT)
        return Sample(value, Quality.STALE, stamp, reason)
    return Sample.good(value, stamp)


def write_variant(device_id: str, point: OpcUaPoint, value: Value) -> ua.Variant:
    """The variant to write `value` to `point`, checked locally; ValueError (one line) if not."""
    where = f"{device_id}: {point.id}"
    if not point.writable:
        raise ValueError(f"{where} is read-only (access r): not written")
    kind = VARIANT_TYPES[point.type]
    if point.type is DataType.BOOL:
        if not isinstance(value, bool):
            raise ValueError(f"{where} = {value!r}: needs a bool")
        return ua.Variant(value, kind)
    if point.type is DataType.STRING:
        if not isinstance(value, str):
            raise ValueError(f"{where} = {value!r}: needs a string")
        return ua.Variant(value, kind)
    number: float | int
    if point.type in (DataType.FLOAT32, DataType.FLOAT64):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{where} = {value!r}: needs a number ({point.type})")
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"{where} = {value!r}: needs a finite number")
        if point.type is DataType.FLOAT32 and abs(number) > _FLOAT32_MAX:
            raise ValueError(f"{where} = {value!r}: outside the float32 range")
    else:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where} = {value!r}: needs an integer ({point.type})")
        low, high = INTEGER_RANGE[point.type]
        if not low <= value <= high:
            raise ValueError(f"{where} = {value!r}: outside the {point.type} range {low}..{high}")
        number = value
    limits = point.limits
    if limits is not None and not limits.min <= number <= limits.max:
        raise ValueError(
            f"{where} = {value!r} {point.unit} is outside its limits "
            f"{limits.min:g}..{limits.max:g} {point.unit}: not written"
        )
    return ua.Variant(number, kind)

"""Register and node maps of field-device types (plc_maps/*.yaml).

One map describes one device type; the controller (client) and the simulators (server) are both
built from it. Addresses are written the way the map's source document writes them, and
`addressing` says which convention that is, so a map can be checked line by line against the
vendor manual.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from controller.config.units import POINT_UNITS, Duration

POINT_ID_PATTERN = r"^[a-z][a-z0-9_]*$"


class StrictModel(BaseModel):
    """Unknown keys are errors: a misspelt key must not silently fall back to a default."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class FieldError(ValueError):
    """A model-level check that one field (or list item) fails.

    pydantic reports errors of model validators at the model itself; `loc`, relative to the model
    that raises, lets the loader name the line of the offending field instead.
    """

    def __init__(self, message: str, loc: tuple[str | int, ...]) -> None:
        super().__init__(message)
        self.loc = loc


class Access(StrEnum):
    READ = "r"
    READ_WRITE = "rw"


class Table(StrEnum):
    HOLDING = "holding"
    INPUT = "input"
    COIL = "coil"
    DISCRETE = "discrete"

    @property
    def is_bit_table(self) -> bool:
        return self in (Table.COIL, Table.DISCRETE)

    @property
    def is_writable(self) -> bool:
        return self in (Table.HOLDING, Table.COIL)


class DataType(StrEnum):
    BOOL = "bool"
    BIT = "bit"  # one bit of a 16-bit register
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    INT64 = "int64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    STRING = "string"

    @property
    def is_numeric(self) -> bool:
        return self not in (DataType.BOOL, DataType.BIT, DataType.STRING)


# Raw range of each integer type, as the type decodes the registers (int16 0x8000 is -32768).
INTEGER_RANGE: dict[DataType, tuple[int, int]] = {
    DataType.INT16: (-(2**15), 2**15 - 1),
    DataType.UINT16: (0, 2**16 - 1),
    DataType.INT32: (-(2**31), 2**31 - 1),
    DataType.UINT32: (0, 2**32 - 1),
    DataType.INT64: (-(2**63), 2**63 - 1),
}

# Registers taken by each fixed-size type (STRING takes `length`).
REGISTER_COUNT: dict[DataType, int] = {
    DataType.BOOL: 1,
    DataType.BIT: 1,
    DataType.INT16: 1,
    DataType.UINT16: 1,
    DataType.INT32: 2,
    DataType.UINT32: 2,
    DataType.INT64: 4,
    DataType.FLOAT32: 2,
    DataType.FLOAT64: 4,
}


class ByteOrder(StrEnum):
    """Order of the bytes of a multi-register value, A being the most significant.

    ABCD big-endian; CDAB word-swapped; BADC byte-swapped within words; DCBA little-endian.
    For 64-bit values the same swaps apply to four words.
    """

    ABCD = "ABCD"
    CDAB = "CDAB"
    BADC = "BADC"
    DCBA = "DCBA"


class Addressing(StrEnum):
    """How the map writes register addresses.

    zero-based: the protocol offset (what goes on the wire).
    one-based: register numbers starting at 1 (the wire offset is address - 1).
    """

    ZERO_BASED = "zero-based"
    ONE_BASED = "one-based"


class PollClass(StrEnum):
    FAST = "fast"  # every scan cycle
    SLOW = "slow"  # every N cycles


class Range(StrictModel):
    """min < max, in the point's unit."""

    min: float
    max: float

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.min >= self.max:
            raise FieldError(f"min ({self.min}) must be below max ({self.max})", ("min",))
        return self


class Limits(Range):
    """Engineering limits of a writable point, in the point's unit."""


class Expect(Range):
    """The range a healthy plant shows at a readable point, in the point's unit: what
    commissioning (`boilerctl commission`) calls plausible. Distinct from write limits: a reading
    outside it is suspect (a wrong word order, address or scale), not refused."""


class PointBase(StrictModel):
    id: Annotated[str, Field(pattern=POINT_ID_PATTERN)]
    description: str = ""
    unit: str = "1"
    access: Access = Access.READ
    limits: Limits | None = None
    expect: Expect | None = None
    lease: bool = False
    lease_timeout: Duration | None = None
    poll: PollClass = PollClass.FAST
    historian: bool = True
    # Writing it twice does no harm (an absolute setpoint), so a write that timed out may be
    # sent again. Commands and counters are not: a repeated "start" or heartbeat is wrong.
    idempotent: bool = False

    @field_validator("unit")
    @classmethod
    def _known_unit(cls, unit: str) -> str:
        if unit not in POINT_UNITS:
            raise ValueError(
                f"unknown unit {unit!r}; known units: {', '.join(sorted(POINT_UNITS))}"
            )
        return unit

    @property
    def writable(self) -> bool:
        return self.access is Access.READ_WRITE

    def _check_expect(self, numeric: bool) -> None:
        if self.expect is not None and not numeric:
            raise FieldError(
                f"point {self.id!r} is not a number: expect applies to numeric points only",
                ("expect",),
            )

    def _check_write_contract(self, numeric: bool) -> None:
        if self.writable and numeric and self.limits is None:
            raise FieldError(
                f"writable point {self.id!r} has no limits: add limits: {{min: ..., max: ...}}",
                ("access",),
            )
        if self.limits is not None and not self.writable:
            raise FieldError(
                f"read-only point {self.id!r} has limits: limits apply to writes", ("limits",)
            )
        if self.lease and not self.writable:
            raise FieldError(f"lease point {self.id!r} must be writable (access: rw)", ("lease",))
        if self.lease and self.lease_timeout is None:
            raise FieldError(
                f"lease point {self.id!r} has no lease_timeout: add e.g. lease_timeout: 10 s",
                ("lease",),
            )
        if self.lease_timeout is not None and not self.lease:
            raise FieldError(
                f"point {self.id!r} has lease_timeout but is not a lease: add lease: true",
                ("lease_timeout",),
            )
        if self.lease_timeout is not None and self.lease_timeout <= 0:
            raise FieldError(f"lease_timeout of {self.id!r} must be positive", ("lease_timeout",))


class ModbusPoint(PointBase):
    table: Table
    address: Annotated[int, Field(ge=0, le=65536)]
    type: DataType
    bit: Annotated[int, Field(ge=0, le=15)] | None = None
    length: Annotated[int, Field(ge=1, le=123)] | None = None  # registers, strings only
    order: ByteOrder | None = None  # None: the map's default
    # value = raw * scale + offset, in `unit`
    scale: float = 1.0
    offset: float = 0.0
    # Raw values meaning "sensor fault", as the type decodes them (an int16 reads 0x8000 as -32768).
    invalid: list[int] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.table.is_bit_table and self.type is not DataType.BOOL:
            raise FieldError(f"table {self.table} holds single bits: type must be bool", ("type",))
        if self.type is DataType.BOOL and not self.table.is_bit_table:
            raise FieldError(
                "a bool in a register table is a bit of a word: use type: bit", ("type",)
            )
        if (self.type is DataType.BIT) != (self.bit is not None):
            raise FieldError(
                "type bit needs bit: N (0-15), and bit: is only for type bit", ("type",)
            )
        if (self.type is DataType.STRING) != (self.length is not None):
            raise FieldError(
                "type string needs length: N registers, and length: is only for strings",
                ("type",),
            )
        if self.writable and not self.table.is_writable:
            raise FieldError(
                f"point {self.id!r} is rw but table {self.table} is read-only", ("access",)
            )
        if self.scale == 0:
            raise FieldError("scale must not be zero", ("scale",))
        self._check_raw_range()
        self._check_write_contract(self.type.is_numeric)
        self._check_expect(self.type.is_numeric)
        return self

    def _check_raw_range(self) -> None:
        if self.invalid and not self.type.is_numeric:
            raise FieldError(
                f"invalid sentinels need a numeric type, not {self.type}", ("invalid",)
            )
        if self.type not in INTEGER_RANGE:
            return
        low, high = INTEGER_RANGE[self.type]
        for index, raw in enumerate(self.invalid):
            if not low <= raw <= high:
                raise FieldError(
                    f"invalid sentinel {raw} is outside the {self.type} range {low}..{high}: "
                    f"write it as the {self.type} reads it (an int16 reads 0x8000 as -32768)",
                    ("invalid", index),
                )
        if self.limits is None:
            return
        for name in ("min", "max"):
            value = getattr(self.limits, name)
            raw = (value - self.offset) / self.scale
            if not low <= raw <= high:
                raise FieldError(
                    f"limit {name} {value:g} {self.unit} is raw {raw:g} "
                    f"(scale {self.scale:g}, offset {self.offset:g}), outside the {self.type} "
                    f"range {low}..{high}",
                    ("limits", name),
                )

    @property
    def register_count(self) -> int:
        return self.length if self.length is not None else REGISTER_COUNT[self.type]


class ModbusMap(StrictModel):
    protocol: Literal["modbus"]
    device_type: str
    description: str = ""
    addressing: Addressing
    order: ByteOrder = ByteOrder.ABCD
    max_registers_per_read: Annotated[int, Field(ge=1, le=125)] = 125
    points: list[ModbusPoint]

    @model_validator(mode="after")
    def _sound(self) -> Self:
        _reject_duplicate_ids([p.id for p in self.points])
        for index, point in enumerate(self.points):
            if self.addressing is Addressing.ONE_BASED and point.address == 0:
                raise FieldError(
                    f"point {point.id!r}: address 0 in a one-based map (registers start at 1)",
                    ("points", index, "address"),
                )
            if self.wire_address(point) + point.register_count > 65536:
                raise FieldError(
                    f"point {point.id!r} ends beyond the last register (wire offset 65535)",
                    ("points", index, "address"),
                )
        _reject_overlaps(self)
        return self

    def wire_address(self, point: ModbusPoint) -> int:
        """The protocol (PDU) offset of `point`."""
        return point.address - 1 if self.addressing is Addressing.ONE_BASED else point.address

    def byte_order(self, point: ModbusPoint) -> ByteOrder:
        return point.order or self.order

    def point(self, point_id: str) -> ModbusPoint:
        for point in self.points:
            if point.id == point_id:
                return point
        raise KeyError(point_id)


class OpcUaPoint(PointBase):
    node_id: str | None = None  # e.g. "ns=2;s=Caisson.ItPower"
    browse_path: list[str] | None = None  # names under Objects, in the map's namespace
    type: DataType

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.node_id is None) == (self.browse_path is None):
            raise FieldError(
                f"point {self.id!r} needs exactly one of node_id or browse_path", ("id",)
            )
        if self.type is DataType.BIT:
            raise FieldError("OPC-UA points carry whole values: type bit is Modbus-only", ("type",))
        self._check_write_contract(self.type.is_numeric)
        self._check_expect(self.type.is_numeric)
        return self


class OpcUaMap(StrictModel):
    protocol: Literal["opcua"]
    device_type: str
    description: str = ""
    namespace: str  # namespace URI the browse paths live in
    points: list[OpcUaPoint]

    @model_validator(mode="after")
    def _sound(self) -> Self:
        _reject_duplicate_ids([p.id for p in self.points])
        return self

    def point(self, point_id: str) -> OpcUaPoint:
        for point in self.points:
            if point.id == point_id:
                return point
        raise KeyError(point_id)


DeviceMap = Annotated[ModbusMap | OpcUaMap, Field(discriminator="protocol")]


def _reject_duplicate_ids(ids: list[str]) -> None:
    first: dict[str, int] = {}
    for index, point_id in enumerate(ids):
        if point_id in first:
            raise FieldError(
                f"duplicate point id {point_id!r} (also points[{first[point_id]}])",
                ("points", index, "id"),
            )
        first[point_id] = index


def _reject_overlaps(device_map: ModbusMap) -> None:
    """Two points may share registers only as bits of a word: distinct bits, or a 16-bit word
    together with bits of it (a status word and its flags)."""
    by_table: dict[Table, list[tuple[int, ModbusPoint]]] = {}
    for index, point in enumerate(device_map.points):
        by_table.setdefault(point.table, []).append((index, point))
    for points in by_table.values():
        spans = sorted(
            (device_map.wire_address(p), device_map.wire_address(p) + p.register_count, i, p)
            for i, p in points
        )
        for (start_a, end_a, _, a), (_, _, index_b, b) in _overlapping_pairs(spans):
            if not _may_share(a, b):
                raise FieldError(
                    f"point {b.id!r} (address {b.address}) overlaps point {a.id!r} "
                    f"(address {a.address}, {end_a - start_a} register(s)) in table {a.table}",
                    ("points", index_b),
                )


def _overlapping_pairs(
    spans: list[tuple[int, int, int, ModbusPoint]],
) -> list[tuple[tuple[int, int, int, ModbusPoint], tuple[int, int, int, ModbusPoint]]]:
    pairs = []
    for i, first in enumerate(spans):
        for second in spans[i + 1 :]:
            if second[0] >= first[1]:
                break
            pairs.append((first, second))
    return pairs


def _may_share(a: ModbusPoint, b: ModbusPoint) -> bool:
    word_types = (DataType.INT16, DataType.UINT16)
    if a.type is DataType.BIT and b.type is DataType.BIT:
        return a.bit != b.bit
    if DataType.BIT in (a.type, b.type):
        other = b if a.type is DataType.BIT else a
        return other.type in word_types and not other.writable
    return False

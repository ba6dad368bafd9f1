"""Faults a simulated Modbus TCP endpoint shows: what real gateways and field devices do wrong.

Pure data. `ModbusGateway` (gateway.py) reads the current state for every new connection and every
request, so a fault can be switched on and off while clients are connected, by mutating these
models in place or by assigning a new `EndpointFaults` to the gateway. Assignments are validated
(`validate_assignment`), so a scenario or a test cannot set a negative delay or a 0 exception code.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveFloat, PositiveInt

UnitId = Annotated[int, Field(ge=0, le=255)]
ExceptionCode = Annotated[int, Field(ge=1, le=255)]


class _MutableModel(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class UnitFaults(_MutableModel):
    """Faults of one unit id behind the endpoint (one device on a serial line behind a gateway).

    Precedence: `silent` (no answer, nothing forwarded) over `exception_code` (an exception answer,
    nothing forwarded) over forwarding; `delay`, `wrong_transaction_id` and `late_replies` then
    apply to whatever answer there is.
    """

    delay: NonNegativeFloat = 0.0
    """Seconds between the answer being ready and it being sent (a slow device)."""

    silent: bool = False
    """No answer at all, and the request is not forwarded (a write is not applied)."""

    exception_code: ExceptionCode | None = None
    """Answer with this Modbus exception code (function code | 0x80) without forwarding."""

    late_replies: bool = False
    """Hold each answer back until the connection's next request has arrived, then send it first.

    The answer to that next request is itself held back while this stays on, so every answer
    arrives one request late. Once it is cleared, the next request releases the last held answer
    and is then answered normally.
    """

    wrong_transaction_id: bool = False
    """Answer with the request's transaction id with its top bit flipped (always different)."""


class EndpointFaults(_MutableModel):
    """Faults of one endpoint (one host:port, possibly several unit ids behind it)."""

    unreachable: Literal["refuse", "drop"] | None = None
    """refuse: the port is closed (connects fail with connection refused) and open connections are
    closed, as when a device reboots. drop: connections are accepted then closed at once, and open
    ones are closed when this is switched on."""

    max_connections: PositiveInt | None = None
    """Connections beyond this many are accepted then closed at once (the behaviour of serial
    gateways that take 1-4 TCP connections); the open ones keep working."""

    idle_timeout: PositiveFloat | None = None
    """Seconds without a request after which a client connection is closed."""

    garbage_frames: bool = False
    """Answer each request with random bytes instead of its answer (the request is forwarded)."""

    default_unit: UnitFaults = Field(default_factory=UnitFaults)
    """Faults of every unit id not listed in `units`."""

    units: dict[UnitId, UnitFaults] = Field(default_factory=dict)
    """Faults of particular unit ids; an entry replaces `default_unit` for its unit (no merging)."""

    def for_unit(self, unit: int) -> UnitFaults:
        """The faults that apply to requests for `unit`."""
        return self.units.get(unit, self.default_unit)

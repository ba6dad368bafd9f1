"""Device health and reconnect back-off, shared by the Modbus and OPC-UA drivers. Pure logic.

Health moves ok → suspect on the first failure, suspect → failed after `fail_after` consecutive
failures, and back to ok on any success. The drivers keep a failed device cheap: one probe request
per poll (Modbus), one connection attempt per back-off interval (OPC-UA).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import StrEnum


class Health(StrEnum):
    OK = "ok"
    SUSPECT = "suspect"
    FAILED = "failed"


@dataclass
class DeviceHealth:
    fail_after: int = 3
    state: Health = Health.OK
    consecutive_failures: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # by kind: counted for operators

    def success(self) -> None:
        self.state = Health.OK
        self.consecutive_failures = 0

    def count(self, kind: str) -> None:
        """An error worth counting that says nothing about whether the device answers."""
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def failure(self, kind: str) -> None:
        self.count(kind)
        self.consecutive_failures += 1
        self.state = (
            Health.FAILED if self.consecutive_failures >= self.fail_after else Health.SUSPECT
        )


@dataclass
class Backoff:
    """Capped exponential back-off with full jitter (AWS style): after the n-th failure wait a
    random time in [0, min(cap, base·2ⁿ)], so that many controllers rebooting together do not
    reconnect in lockstep; at least `floor` so that a refused port is not hammered."""

    base: float = 0.5
    cap: float = 30.0
    floor: float = 0.1
    rng: random.Random = field(default_factory=random.Random)
    attempts: int = 0

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.base * 2**self.attempts)
        self.attempts += 1
        return max(self.floor, self.rng.uniform(0.0, ceiling))

    def reset(self) -> None:
        self.attempts = 0

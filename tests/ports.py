"""Free loopback ports for servers a test starts, chosen where nothing else will take them.

`bind(("127.0.0.1", 0))` hands out a port from the kernel's ephemeral range, the same range every
outgoing connection draws its local port from. Between the test releasing such a port and its
server (often a child process still importing) binding it, any client socket on the machine may
take it, and the server cannot listen: a race CI lost once. Below the ephemeral range only another
listener can take a port, so the ports here come from there, each checked free by binding it.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

LOOPBACK = "127.0.0.1"
LOWEST = 20000
"""Above the well-known and registered services a test machine runs, and the demo's 14xxx/15xxx."""
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
FALLBACK_EPHEMERAL_LOW = 32768


def ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (Linux's default where it cannot be read)."""
    try:
        return int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return FALLBACK_EPHEMERAL_LOW


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def free_ports(count: int) -> list[int]:
    """`count` distinct ports nothing listens on, below the ephemeral range."""
    highest = ephemeral_low() - 1
    if highest <= LOWEST:
        raise RuntimeError(f"{EPHEMERAL_RANGE}: the ephemeral range leaves no ports for tests")
    chooser = random.SystemRandom()
    chosen: list[int] = []
    for _ in range(100 * count):
        port = chooser.randint(LOWEST, highest)
        if port not in chosen and _bindable(port):
            chosen.append(port)
            if len(chosen) == count:
                return chosen
    raise RuntimeError(f"no {count} free loopback ports between {LOWEST} and {highest}")


def free_port() -> int:
    """One port nothing listens on, below the ephemeral range."""
    return free_ports(1)[0]

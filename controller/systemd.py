"""systemd notifications (sd_notify): READY, WATCHDOG and STOPPING datagrams to NOTIFY_SOCKET.

The protocol is one datagram of `KEY=value` lines to the unix socket named by NOTIFY_SOCKET; a name
starting with '@' is in the abstract namespace. Without NOTIFY_SOCKET (not run by systemd, or a
unit without Type=notify / WatchdogSec=) every call does nothing. A notification that cannot be
sent is logged once and never raised: the watchdog, not the daemon, decides what a silence means.
"""

from __future__ import annotations

import os
import socket

import structlog

log = structlog.get_logger(__name__)


class Notifier:
    def __init__(self, address: str | None) -> None:
        """address: NOTIFY_SOCKET's value (a path, or '@name' for the abstract namespace);
        None: a notifier that sends nothing."""
        self.address = address
        self._socket: socket.socket | None = None
        self._failing = False

    @classmethod
    def from_environment(cls) -> Notifier:
        return cls(os.environ.get("NOTIFY_SOCKET") or None)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def ready(self) -> None:
        self.notify("READY=1")

    def watchdog(self) -> None:
        self.notify("WATCHDOG=1")

    def stopping(self) -> None:
        self.notify("STOPPING=1")

    def notify(self, state: str) -> bool:
        """Send one datagram (non-blocking); True when it was sent."""
        if self.address is None:
            return False
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._socket.setblocking(False)
            self._socket.sendto(state.encode(), target)
        except OSError as error:
            if not self._failing:
                log.warning("systemd_notify_failed", socket=self.address, error=str(error))
            self._failing = True
            return False
        self._failing = False
        return True

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

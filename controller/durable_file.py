"""A SQLite file one process writes (the historian's spool, the alarm journal): an exclusive lock
beside it, and WAL with synchronous=FULL so a committed transaction survives a crash and a power
cut. The lock goes with the process, even on SIGKILL."""

from __future__ import annotations

import fcntl
import os
import sqlite3
from pathlib import Path


class FileBusyError(RuntimeError):
    """Another process holds the file: a daemon of this site is already running."""


def lock_exclusively(path: Path, error: type[FileBusyError] = FileBusyError) -> int:
    """Take `path`.lock for this process (mkdir of its folder included); its descriptor, to
    `os.close` to release. `error` when another process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = os.open(f"{path}.lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock)
        raise error(
            f"{path}: in use by another process (is a daemon of this site running?)"
        ) from None
    return lock


def open_durable(path: Path) -> sqlite3.Connection:
    """The writer's connection: autocommit (explicit transactions), WAL, synchronous=FULL."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    return db

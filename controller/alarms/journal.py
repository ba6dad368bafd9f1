"""The event journal: alarm transitions, operator actions, mode changes and configuration reloads
in a SQLite file, durable across restarts, kept for a retention period.

One table, `entry`, one row per event, indexed on time. Times are stored as integer microseconds
since the Unix epoch (UTC), exact both ways. An alarm's transitions are rows with `on_alarm` set:
kind "alarm" when the engine moved the alarm, "operator" when a user did (an acknowledgement, a
shelve: the row holds both the alarm's identity and the user and reason). A transition into
SHELVED also stores the shelve's expiry (`shelved_until`), so that `alarm_states()` can give a
restarted engine each alarm's last state, shelve included. Other events (`record()`: mode
changes, configuration reloads, operator actions not on an alarm) have `on_alarm` clear.

Durability: WAL journal with synchronous=FULL, one transaction per call (all of a scan's
transitions together): a recorded event survives a crash or a power cut. One writer per file
(`{path}.lock`, as the spool). Writes are small and rare (a few a second at most, in a flood), so
the daemon calls `record_transitions()` and `record()` synchronously from its event loop: each
is one fsync, about a millisecond on an SSD. The connection allows another thread, one call at a
time, if that ever needs to move to `asyncio.to_thread`.

Retention: entries older than `retention` are deleted (`prune()`, run by the writing calls at most
once an hour), except each alarm's last transition when that leaves the alarm in a state other
than NORMAL (out of service for a year, say): its state must survive a restart whatever its age.

Other processes (`boilerctl alarms list|stats`) read the file through `JournalReader`.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from controller.alarms.metrics import ACTIVE, is_annunciation
from controller.alarms.model import AlarmId, State, Transition
from controller.config.loader import LoadedSite
from controller.durable_file import FileBusyError, lock_exclusively, open_durable
from controller.historian.schema import Event
from controller.state import state_directory

KINDS = ("alarm", "operator", "mode", "config")  # the kinds the daemon writes
DEFAULT_RETENTION = 400 * 86400.0  # seconds: a year back, and a margin to compare two seasons
PRUNE_EVERY = 3600.0  # seconds between two prunes by the writing calls

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entry (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_us INTEGER NOT NULL,          -- microseconds since the Unix epoch, UTC
    kind TEXT NOT NULL,              -- alarm, operator, mode, config
    source TEXT NOT NULL,            -- a caisson, a device, "plant", "controller", or ""
    name TEXT NOT NULL,
    from_state TEXT NOT NULL,        -- "before": an alarm's state, a mode, a value...
    to_state TEXT NOT NULL,          -- "after"
    priority TEXT NOT NULL,
    message TEXT NOT NULL,
    user_name TEXT NOT NULL,
    reason TEXT NOT NULL,
    on_alarm INTEGER NOT NULL,       -- 1: a transition of the alarm (source, name)
    shelved_until_us INTEGER         -- into SHELVED: the shelve's expiry; else NULL
);
CREATE INDEX IF NOT EXISTS entry_at ON entry (at_us);
CREATE INDEX IF NOT EXISTS entry_alarm ON entry (source, name, id) WHERE on_alarm = 1;
CREATE TABLE IF NOT EXISTS setting (  -- what an engineer set that outlives a restart
    key TEXT PRIMARY KEY,            -- e.g. "mode/c2", "setpoint/outlet"
    value TEXT NOT NULL
);
"""
_VERSION = 1  # PRAGMA user_version of the schema above

_COLUMNS = (
    "id, at_us, kind, source, name, from_state, to_state, priority, message, user_name, reason,"
    " on_alarm, shelved_until_us"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class JournalBusyError(FileBusyError):
    """Another process holds the journal: a daemon of this site is already running."""


@dataclass(frozen=True)
class JournalEntry:
    id: int
    at: datetime  # UTC
    kind: str  # alarm, operator, mode, config
    source: str
    name: str
    before: str
    after: str
    priority: str
    message: str
    user: str
    reason: str
    on_alarm: bool = False  # a transition of the alarm AlarmId(source, name)
    shelved_until: datetime | None = None  # on a transition into SHELVED

    @property
    def alarm(self) -> AlarmId:
        return AlarmId(self.source, self.name)


def journal_path(
    site: LoadedSite, environ: Mapping[str, str], override: Path | None = None
) -> Path:
    """The journal file: `override`, else `<state directory>/<site id>.journal`."""
    if override is not None:
        return override
    return state_directory(environ) / f"{site.config.site.slug}.journal"


def transition_event(transition: Transition) -> Event:
    """A transition as the historian's event (Grafana's annotations and journal table): state
    "raised" when the alarm is annunciated anew, "cleared" when its condition returns to normal,
    else the new state (acknowledged, shelved...)."""
    after = transition.after
    if is_annunciation(transition):
        state = "raised"
    elif after in (State.NORMAL, State.RETURNED_UNACKNOWLEDGED) and transition.before in ACTIVE:
        state = "cleared"
    else:
        state = after.value
    return Event(
        at=transition.at,
        kind="operator" if transition.user else "alarm",
        name=transition.alarm.name,
        message=transition.message or f"{transition.alarm} {after.value}",
        source=transition.alarm.source,
        state=state,
        user=transition.user,
        reason=transition.reason,
        before=transition.before.value,
        after=after.value,
    )


class _Entries:
    """What the writer and a reader both read."""

    _db: sqlite3.Connection

    def entries(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        kind: str | None = None,
        limit: int | None = None,
        *,
        on_alarm: bool | None = None,
    ) -> list[JournalEntry]:
        """See `select_entries`."""
        return select_entries(self._db, since, until, kind, limit, on_alarm=on_alarm)


class Journal(_Entries):
    """The daemon's writer. Not for two threads at once."""

    def __init__(
        self,
        path: Path,
        retention: float = DEFAULT_RETENTION,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.retention = float(retention)
        self._clock = clock
        self._lock = lock_exclusively(path, JournalBusyError)
        try:
            self._db = open_durable(path)
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version={_VERSION}")
        except BaseException:
            os.close(self._lock)
            raise
        self._pruned: float | None = None  # clock time of the last prune

    def close(self) -> None:
        self._db.close()
        os.close(self._lock)  # releases the lock

    # ------------------------------------------------------------------ writing

    def record_transitions(self, transitions: Sequence[Transition]) -> None:
        """Store a scan's alarm transitions, in one transaction: kind "operator" for those with a
        user (acknowledge, shelve...), else "alarm"."""
        if not transitions:
            return
        rows = [
            (
                _micros(t.at),
                "operator" if t.user else "alarm",
                t.alarm.source,
                t.alarm.name,
                t.before.value,
                t.after.value,
                t.priority.value,
                t.message,
                t.user,
                t.reason,
                1,
                None if t.shelved_until is None else _micros(t.shelved_until),
            )
            for t in transitions
        ]
        self._insert(rows)

    def record(
        self,
        kind: str,
        at: datetime,
        source: str,
        name: str,
        message: str,
        *,
        before: str = "",
        after: str = "",
        priority: str = "",
        user: str = "",
        reason: str = "",
        setting: tuple[str, str | None] | None = None,
    ) -> None:
        """Store one event that is not an alarm's transition: a mode change ("mode"), a
        configuration reload ("config"), an operator action not on an alarm ("operator").
        setting: (key, value) kept for the next start in the same transaction (value None:
        forgotten), so that the journal and what is restored never disagree."""
        if not kind:
            raise ValueError("a journal entry needs a kind")
        row = (_micros(at), kind, source, name, before, after, priority, message, user, reason, 0)
        self._insert([(*row, None)], setting)

    def settings(self) -> dict[str, str]:
        """The settings recorded with `record(..., setting=...)`, by key."""
        return dict(self._db.execute("SELECT key, value FROM setting").fetchall())

    def _insert(
        self, rows: Sequence[tuple[object, ...]], setting: tuple[str, str | None] | None = None
    ) -> None:
        with self._transaction():
            if setting is not None and setting[1] is None:
                self._db.execute("DELETE FROM setting WHERE key = ?", (setting[0],))
            elif setting is not None:
                self._db.execute("INSERT OR REPLACE INTO setting VALUES (?, ?)", setting)
            self._db.executemany(
                "INSERT INTO entry (at_us, kind, source, name, from_state, to_state, priority,"
                " message, user_name, reason, on_alarm, shelved_until_us)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        now = self._clock()
        if self._pruned is None or now - self._pruned >= PRUNE_EVERY:
            self._pruned = now
            self.prune(datetime.fromtimestamp(now, UTC))

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def prune(self, now: datetime) -> int:
        """Delete the entries older than the retention, but the last transition of each alarm
        that it leaves in a state other than NORMAL; returns how many were deleted."""
        cutoff = _micros(now) - round(self.retention * 1e6)
        cursor = self._db.execute(
            "DELETE FROM entry WHERE at_us < ? AND id NOT IN ("
            " SELECT last.id FROM entry AS last WHERE last.id IN"
            "  (SELECT MAX(id) FROM entry WHERE on_alarm = 1 GROUP BY source, name)"
            " AND last.to_state != ?)",
            (cutoff, State.NORMAL.value),
        )
        return cursor.rowcount

    # ------------------------------------------------------------------ reading

    def alarm_states(self) -> dict[AlarmId, tuple[State, datetime | None, str]]:
        """Each journaled alarm's last state, for the engine's restore after a restart: (state,
        the shelve's expiry and the shelve's reason when SHELVED, else None and "")."""
        rows = self._db.execute(
            "SELECT source, name, to_state, shelved_until_us, reason FROM entry"
            " WHERE id IN (SELECT MAX(id) FROM entry WHERE on_alarm = 1 GROUP BY source, name)"
        ).fetchall()
        states: dict[AlarmId, tuple[State, datetime | None, str]] = {}
        for source, name, after, until, reason in rows:
            try:
                state = State(after)
            except ValueError:  # not a state of this version: as if never journaled
                continue
            if state is State.SHELVED:
                states[AlarmId(source, name)] = (
                    state,
                    None if until is None else _datetime(until),
                    reason,
                )
            else:
                states[AlarmId(source, name)] = (state, None, "")
        return states


class JournalReader(_Entries):
    """Read-only access to a journal file from another process (the CLI while the daemon runs)."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no journal file")
        self.path = path
        self._db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            self._db.execute("SELECT id FROM entry LIMIT 1").fetchall()
        except sqlite3.Error:
            self._db.close()
            raise

    def close(self) -> None:
        self._db.close()


def select_entries(
    db: sqlite3.Connection,
    since: datetime | None = None,
    until: datetime | None = None,
    kind: str | None = None,
    limit: int | None = None,
    *,
    on_alarm: bool | None = None,
) -> list[JournalEntry]:
    """The entries at `since` or later and before `until`, of `kind`, (not) alarm transitions,
    oldest first; with `limit`, the latest `limit` of them (still oldest first)."""
    conditions: list[str] = []
    parameters: list[object] = []
    if since is not None:
        conditions.append("at_us >= ?")
        parameters.append(_micros(since))
    if until is not None:
        conditions.append("at_us < ?")
        parameters.append(_micros(until))
    if kind is not None:
        conditions.append("kind = ?")
        parameters.append(kind)
    if on_alarm is not None:
        conditions.append("on_alarm = ?")
        parameters.append(int(on_alarm))
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    query = f"SELECT {_COLUMNS} FROM entry{where} ORDER BY at_us DESC, id DESC"
    if limit is not None:
        query += " LIMIT ?"
        parameters.append(max(limit, 0))
    rows = db.execute(query, parameters).fetchall()
    return [_entry(row) for row in reversed(rows)]


def _entry(row: tuple[object, ...]) -> JournalEntry:
    (
        entry_id,
        at,
        kind,
        source,
        name,
        before,
        after,
        priority,
        message,
        user,
        reason,
        on_alarm,
        until,
    ) = row
    assert isinstance(entry_id, int)
    assert isinstance(at, int)
    return JournalEntry(
        id=entry_id,
        at=_datetime(at),
        kind=str(kind),
        source=str(source),
        name=str(name),
        before=str(before),
        after=str(after),
        priority=str(priority),
        message=str(message),
        user=str(user),
        reason=str(reason),
        on_alarm=bool(on_alarm),
        shelved_until=_datetime(until) if isinstance(until, int) else None,
    )


def _micros(at: datetime) -> int:
    """Microseconds since the epoch; a naive time is taken as UTC."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return (at - _EPOCH) // _MICROSECOND


def _datetime(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)

"""Who holds goose's migration lock while a run waits for it, as values for a progress display.

:func:`migrator.lock.goose_lock` tries the lock every few seconds. Between tries it reports a
:class:`GooseLockWait`: how long it has waited, how much longer it will, and the sessions that
hold either goose lock id (``pg_locks`` joined with ``pg_stat_activity``). PostgreSQL does not
record when a session-level advisory lock was granted, so a holder is dated by its session
start (``backend_start``) and its current state (``state_change``).

The callback is passed to ``goose_lock`` as ``on_wait``, or installed for a block with
:func:`reporting_lock_waits` (the CLI wraps a whole run in it, without threading the callback
through the runner).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

__all__ = [
    "GooseLockWait",
    "LockHolder",
    "LockWaitCallback",
    "lock_wait_callback",
    "read_holders",
    "reporting_lock_waits",
]

# Sessions other than this one holding any of the given advisory lock ids (bigint keys, split
# by pg_locks into classid, the high 32 bits, and objid, the low 32 bits, with objsubid = 1).
_HOLDERS_SQL = """
SELECT DISTINCT ON (l.pid) l.pid, a.application_name, a.usename, host(a.client_addr),
       a.backend_start, a.state, a.state_change, now()
FROM pg_catalog.pg_locks l
LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
  AND ((l.classid::bigint << 32) | l.objid::bigint) = ANY(%s)
  AND l.pid <> pg_backend_pid()
ORDER BY l.pid
"""


def _clock(moment: datetime) -> str:
    zone = moment.tzname()
    return moment.strftime("%Y-%m-%d %H:%M:%S") + (f" {zone}" if zone else "")


def _duration(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@dataclass(frozen=True)
class LockHolder:
    """A session holding a goose lock id; fields PostgreSQL hides from this role are None."""

    pid: int
    application_name: str | None
    user: str | None
    client_addr: str | None
    backend_start: datetime | None
    state: str | None
    state_change: datetime | None
    observed_at: datetime | None

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> LockHolder:
        pid, app, user, addr, started, state, changed, now = row
        return cls(int(pid), app or None, user, addr, started, state, changed, now)

    def describe(self) -> str:
        """``pid 42 (application hatchet-migrate, user hatchet, from 10.0.0.5), session started
        2026-08-21 12:00:01 UTC (3 min ago), active``"""
        who = (
            f"pid {self.pid} (application {self.application_name or '(none)'}, "
            f"user {self.user or '?'}, from {self.client_addr or 'local socket'})"
        )
        if self.backend_start is not None:
            who += f", session started {_clock(self.backend_start)}"
            if self.observed_at is not None:
                ago = (self.observed_at - self.backend_start).total_seconds()
                who += f" ({_duration(ago)} ago)"
        if self.state:
            who += f", {self.state}"
        return who


@dataclass(frozen=True)
class GooseLockWait:
    """One report of a wait for goose's lock: before each retry, and once when it was taken."""

    waited: float
    """Seconds since the first try."""
    timeout: float
    """How long the wait may last in all (``--lock-timeout``)."""
    poll_interval: float
    holders: tuple[LockHolder, ...] = ()
    taken: bool = False
    """The lock was taken (after ``waited`` seconds); ``holders`` is then empty."""

    @property
    def remaining(self) -> float:
        return max(self.timeout - self.waited, 0.0)

    def holder_pids(self) -> tuple[int, ...]:
        return tuple(h.pid for h in self.holders)

    def describe(self) -> str:
        """One line for a person."""
        if self.taken:
            return f"took the goose migration lock after waiting {_duration(self.waited)}"
        if self.holders:
            who = "held by " + "; ".join(h.describe() for h in self.holders)
        else:
            who = "its holder let go before it could be seen"
        return (
            f"waiting for the goose migration lock, {who}: waited {_duration(self.waited)}, "
            f"gives up in {_duration(self.remaining)} (--lock-timeout {self.timeout:g}), "
            f"trying again every {self.poll_interval:g} s"
        )


LockWaitCallback = Callable[[GooseLockWait], None]

_CALLBACK: ContextVar[LockWaitCallback | None] = ContextVar("goose_lock_wait", default=None)


def lock_wait_callback() -> LockWaitCallback | None:
    """The callback :func:`reporting_lock_waits` installed, if any."""
    return _CALLBACK.get()


@contextmanager
def reporting_lock_waits(callback: LockWaitCallback) -> Iterator[None]:
    """Every ``goose_lock`` in the block (given no ``on_wait`` of its own) reports to
    ``callback``."""
    token = _CALLBACK.set(callback)
    try:
        yield
    finally:
        _CALLBACK.reset(token)


def read_holders(conn: psycopg.Connection[Any], lock_ids: Sequence[int]) -> tuple[LockHolder, ...]:
    """The sessions other than ``conn``'s holding any of ``lock_ids``; empty when that cannot be
    read (the wait goes on either way)."""
    try:
        rows = conn.execute(_HOLDERS_SQL, ([int(i) for i in lock_ids],)).fetchall()
    except psycopg.Error:
        return ()
    return tuple(LockHolder.from_row(row) for row in rows)

"""Who holds goose's migration lock while a run waits for it, as values for a progress display.

:func:`migrator.lock.goose_lock` tries the lock every few seconds. Between tries it reports a
:class:`GooseLockWait`: how long it has waited, how much longer it will, and the sessions that
hold either goose lock id (``pg_locks`` joined with ``pg_stat_activity``, as
:class:`migrator.sessions.Session` values, dated by their session start).

The callback is passed to ``goose_lock`` as ``on_wait``, or installed for a block with
:func:`reporting_lock_waits` (the CLI wraps a whole run in it, without threading the callback
through the runner).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import psycopg

from migrator.sessions import ACTIVITY_COLUMNS, Session, duration

__all__ = [
    "GooseLockWait",
    "LockWaitCallback",
    "lock_wait_callback",
    "read_holders",
    "reporting_lock_waits",
]

# Sessions other than this one holding any of the given advisory lock ids (bigint keys, split
# by pg_locks into classid, the high 32 bits, and objid, the low 32 bits, with objsubid = 1).
_HOLDERS_SQL = f"""
SELECT DISTINCT ON (l.pid) {ACTIVITY_COLUMNS}
FROM pg_catalog.pg_locks l
LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
  AND ((l.classid::bigint << 32) | l.objid::bigint) = ANY(%s)
  AND l.pid <> pg_backend_pid()
ORDER BY l.pid
"""


@dataclass(frozen=True)
class GooseLockWait:
    """One report of a wait for goose's lock: before each retry, and once when it was taken."""

    waited: float
    """Seconds since the first try."""
    timeout: float
    """How long the wait may last in all (``--lock-timeout``)."""
    poll_interval: float
    holders: tuple[Session, ...] = ()
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
            return f"took the goose migration lock after waiting {duration(self.waited)}"
        if self.holders:
            who = "held by " + "; ".join(h.describe() for h in self.holders)
        else:
            who = "its holder let go before it could be seen"
        return (
            f"waiting for the goose migration lock, {who}: waited {duration(self.waited)}, "
            f"gives up in {duration(self.remaining)} (--lock-timeout {self.timeout:g}), "
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


def read_holders(conn: psycopg.Connection[Any], lock_ids: Sequence[int]) -> tuple[Session, ...]:
    """The sessions other than ``conn``'s holding any of ``lock_ids``; empty when that cannot be
    read (the wait goes on either way)."""
    try:
        rows = conn.execute(_HOLDERS_SQL, ([int(i) for i in lock_ids],)).fetchall()
    except psycopg.Error:
        return ()
    return tuple(Session.from_row(row) for row in rows)

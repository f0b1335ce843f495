"""Which session a step's statement is waiting for, while it waits.

A step's statements run with PostgreSQL's ``lock_timeout``; when one gives up (SQLSTATE 55P03)
the wait is over and PostgreSQL no longer says what it was for. So while a statement runs, a
:class:`WaitObserver` thread looks, on the (otherwise idle) goose lock session, at the lock the
run's backend is queued for (``pg_locks`` where not granted) and the sessions in its way
(``pg_blocking_pids``, ``pg_stat_activity``). It only queries once a statement has run for a
sampling interval, so quick statements cost nothing but two attribute writes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from migrator.sessions import ACTIVITY_COLUMNS, Session

__all__ = ["LockWait", "WaitObserver", "WaitSample", "probable_blockers"]

# The lock ``pid`` is queued for and who blocks it; now() to tell how long they have held it.
_WAIT_SQL = f"""
SELECT w.locktype, w.mode,
       CASE
         WHEN w.locktype IN ('relation', 'tuple', 'page') AND c.oid IS NOT NULL THEN
           CASE c.relkind WHEN 'r' THEN 'table ' WHEN 'p' THEN 'table ' WHEN 'i' THEN 'index '
             WHEN 'I' THEN 'index ' WHEN 'S' THEN 'sequence ' WHEN 'v' THEN 'view '
             WHEN 'm' THEN 'materialized view ' WHEN 'f' THEN 'foreign table '
             ELSE 'relation ' END
           || format('%%I.%%I', n.nspname, c.relname)
           || CASE WHEN w.locktype = 'relation' THEN '' ELSE ' (a row of it)' END
         WHEN w.locktype = 'relation' THEN 'relation ' || w.relation::text
         WHEN w.locktype = 'transactionid' THEN
           'transaction ' || w.transactionid::text || ' (a row this statement changes)'
         WHEN w.locktype = 'virtualxid' THEN
           'the end of transaction ' || w.virtualxid || ' (CONCURRENTLY waits for older ones)'
         WHEN w.locktype = 'object' THEN
           coalesce(pg_catalog.pg_describe_object(w.classid, w.objid, w.objsubid), 'an object')
         ELSE w.locktype
       END AS target,
       {ACTIVITY_COLUMNS}
FROM pg_catalog.pg_locks w
LEFT JOIN pg_catalog.pg_class c
       ON w.locktype IN ('relation', 'tuple', 'page') AND c.oid = w.relation
LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN LATERAL unnest(pg_catalog.pg_blocking_pids(w.pid)) AS b(pid) ON true
LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = b.pid
WHERE w.pid = %s AND NOT w.granted
ORDER BY a.xact_start NULLS LAST, a.pid
"""

# After the fact: sessions in an open transaction holding locks on this database.
_PROBABLE_SQL = f"""
SELECT {ACTIVITY_COLUMNS}
FROM pg_catalog.pg_stat_activity a
WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() AND NOT (a.pid = ANY(%s))
  AND a.xact_start IS NOT NULL
  AND EXISTS (SELECT 1 FROM pg_catalog.pg_locks l
              WHERE l.pid = a.pid AND l.granted AND l.locktype IN ('relation', 'object'))
ORDER BY a.xact_start, a.pid
LIMIT 5
"""


@dataclass(frozen=True)
class WaitSample:
    """What the run's backend was seen queued for, and the sessions in its way."""

    locktype: str
    mode: str | None
    target: str | None
    blockers: tuple[Session, ...]


@dataclass(frozen=True)
class LockWait:
    """A step's statement gave up waiting for a lock (``lock_timeout``); reported before each
    retry (``retry_in`` is the backoff delay) and in the final failure."""

    step_name: str
    version: int
    statement: int | None  # 1-based; None for the version-row DELETE
    statements: int
    attempt: int  # the try that timed out, 1-based
    tries: int  # all tries allowed: 1 + --ddl-lock-retries
    timeout: float
    mode: str | None
    target: str | None
    blockers: tuple[Session, ...]
    observed: bool  # False: the wait was too short to watch; blockers are the likely ones
    retry_in: float | None

    def where(self) -> str:
        what = (
            f"statement {self.statement} of {self.statements}"
            if self.statement is not None
            else "its version-row DELETE"
        )
        return f"{self.step_name} (version {self.version}), {what}"

    def blocked_by(self) -> str:
        """``AccessExclusiveLock on table public.x, held by pid ...`` (or the likely holders)."""
        lock = self.mode or "a lock"
        text = f"{lock} on {self.target}" if self.target else lock
        who = "; ".join(b.describe_blocking() for b in self.blockers)
        if self.observed:
            return f"{text}, held by {who}" if who else f"{text} (its holder was not seen)"
        if who:
            return f"{text}; sessions in an open transaction holding locks: {who}"
        return f"{text} (no session holding a conflicting lock was seen)"

    def describe(self) -> str:
        """One progress line for stderr."""
        head = (
            f"waited {self.timeout:g} s (--ddl-lock-timeout) at {self.where()} for "
            f"{self.blocked_by()}"
        )
        if self.retry_in is None:
            return f"{head}; try {self.attempt} of {self.tries}, giving up"
        return f"{head}; try {self.attempt} of {self.tries}, trying again in {self.retry_in:.1f} s"


def _sample_from(rows: Sequence[Sequence[Any]]) -> WaitSample | None:
    if not rows:
        return None
    locktype, mode, target = rows[0][0], rows[0][1], rows[0][2]
    blockers = tuple(Session.from_row(r[3:]) for r in rows if r[3] is not None)
    return WaitSample(str(locktype), mode, target, blockers)


def probable_blockers(
    conn: psycopg.Connection[Any], exclude_pids: Sequence[int]
) -> tuple[Session, ...]:
    """Sessions in an open transaction holding relation or object locks (a wait too short to
    watch); empty when that cannot be read."""
    try:
        rows = conn.execute(_PROBABLE_SQL, (list(exclude_pids),)).fetchall()
    except psycopg.Error:
        return ()
    return tuple(Session.from_row(r) for r in rows)


class WaitObserver:
    """Watches, from ``conn``, what backend ``pid`` waits for while a statement runs.

    :meth:`begin` before each statement returns a token; :meth:`sample` gives the last wait
    seen for that token. ``conn`` is used only by the observer's thread.
    """

    def __init__(self, conn: psycopg.Connection[Any], pid: int, *, interval: float) -> None:
        self._conn = conn
        self._pid = pid
        self._interval = interval
        self._token = 0
        self._since = 0.0
        self._active = False
        self._latest: tuple[int, WaitSample] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._watch, name="hatchet-schema-lock-wait", daemon=True
        )

    def __enter__(self) -> WaitObserver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def begin(self) -> int:
        """A statement starts; returns its token."""
        self._token += 1
        self._since = time.monotonic()
        self._active = True
        return self._token

    def end(self) -> None:
        """No statement runs now."""
        self._active = False

    def sample(self, token: int) -> WaitSample | None:
        latest = self._latest
        return latest[1] if latest is not None and latest[0] == token else None

    def _watch(self) -> None:
        while not self._stop.wait(self._interval):
            token, since = self._token, self._since
            if not self._active or time.monotonic() - since < self._interval:
                continue
            try:
                rows = self._conn.execute(_WAIT_SQL, (self._pid,)).fetchall()
            except psycopg.Error:
                if self._conn.closed or self._conn.broken:
                    return
                continue
            found = _sample_from(rows)
            if found is not None and token == self._token and self._active:
                self._latest = (token, found)

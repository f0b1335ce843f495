"""goose's migration lock: session-level advisory locks on a dedicated connection.

goose >= v3.26 (Hatchet >= v0.73.35) locks id 4097083626; older goose locks 5887940537704921958.
Holding both keeps every Hatchet version's hatchet-migrate out while a downgrade runs. Like goose,
the lock is tried (``pg_try_advisory_lock``) and retried, never waited on inside PostgreSQL, so a
stuck holder cannot hang this process past the timeout.

A session lock lasts only as long as its session, and the lock session sits idle for the whole
run: it is set up to stay alive (no statement, idle or lock timeouts; TCP keepalives), and the
runner asks the server before every step whether that very backend (pid and start time) still
holds both ids (:meth:`HeldLock.problem`), so a session ended by ``pg_terminate_backend``,
``idle_session_timeout``, a dropped connection or a restart stops the run instead of letting it
go on unlocked.

Connection poolers. Through PgBouncer in transaction (or statement) pooling mode a "session" is
a different server backend for each transaction: the advisory lock stays behind on whichever
backend ran ``pg_try_advisory_lock``, and every per-session check passes by accident. It is
detected by comparing the backend pid the server announced at login (libpq's BackendKeyData,
``conn.info.backend_pid``) with ``pg_backend_pid()``: PostgreSQL always announces its own pid,
while PgBouncer must invent one (it cannot forward a backend it does not pin to the client).
That is deterministic, costs one query and does not depend on pool size or load, unlike
watching ``pg_backend_pid()`` change between queries (a quiet pool hands back the same backend)
or PgBouncer's ``SHOW`` commands (answered only on its admin console). The price is that any
proxy that rewrites the key is refused too; a downgrade should talk to PostgreSQL directly.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from migrator.database import connect
from migrator.errors import EXIT_BAD_INPUT, LockError, MigratorError

GOOSE_LOCK_IDS: tuple[int, ...] = (4097083626, 5887940537704921958)

# The lock session must not be ended by the server's timeouts while it idles through the run
# (idle_session_timeout exists from PostgreSQL 14 on).
_LOCK_SESSION_SETTINGS = (
    "statement_timeout",
    "idle_in_transaction_session_timeout",
    "lock_timeout",
)
_IDLE_SESSION_TIMEOUT_SINCE = 140000

# The advisory locks a backend holds on this database, as bigint keys (pg_locks splits a bigint
# key into classid, the high 32 bits, and objid, the low 32 bits, with objsubid = 1).
_HELD_IDS_SQL = """
    SELECT ((classid::bigint << 32) | objid::bigint) FROM pg_catalog.pg_locks
    WHERE locktype = 'advisory' AND granted AND objsubid = 1 AND pid = {pid}
      AND database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
"""


def lock_holders(conn: psycopg.Connection[Any], lock_id: int) -> list[int]:
    """Pids of sessions holding the session-level advisory lock ``lock_id`` (a bigint key)."""
    rows = conn.execute(
        """
        SELECT pid FROM pg_locks
        WHERE locktype = 'advisory' AND granted AND objsubid = 1
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND ((classid::bigint << 32) | objid::bigint) = %s
          AND pid <> pg_backend_pid()
        ORDER BY pid
        """,
        (lock_id,),
    ).fetchall()
    return [int(pid) for (pid,) in rows]


def refuse_pooler(conn: psycopg.Connection[Any], role: str = "database connection") -> int:
    """The server backend pid of ``conn``; :class:`MigratorError` (exit 2) when a connection
    pooler such as PgBouncer sits between (see the module docstring for why this test)."""
    announced = conn.info.backend_pid
    try:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
    except psycopg.Error as exc:
        raise MigratorError(f"cannot identify the database session: {exc}") from None
    actual = int(row[0]) if row else None
    if actual == announced:
        return announced
    raise MigratorError(
        f"the {role} goes through a connection pooler (PgBouncer or similar), not to "
        f"PostgreSQL itself: the server runs it as backend pid {actual}, but the connection "
        f"announced pid {announced}. Through PgBouncer in transaction or statement pooling "
        "mode each transaction may run on a different server session, so goose's session "
        "advisory lock would stay behind on a pooled session and the checks that keep other "
        "migrators out would pass by accident. For the downgrade, connect to PostgreSQL "
        "directly (its own host and port, usually 5432, not PgBouncer's, usually 6432)",
        exit_code=EXIT_BAD_INPUT,
    )


def _probe_sql(pid: int) -> str:
    held = _HELD_IDS_SQL.format(pid=int(pid))
    started = f"SELECT backend_start FROM pg_catalog.pg_stat_get_activity({int(pid)})"
    return f"SELECT ARRAY({held}) AS held_ids, ({started}) AS backend_start"


@dataclass(frozen=True)
class HeldLock:
    """The lock session: its backend, identified by pid and start time, holds both lock ids.

    ``conn`` is the lock session itself; nothing but the lock and watching lock waits
    (:class:`migrator.lockwait.WaitObserver`) may use it.
    """

    pid: int
    backend_start: datetime | None
    conn: psycopg.Connection[Any] = field(compare=False, repr=False)
    ids: tuple[int, ...] = GOOSE_LOCK_IDS

    def probe_sql(self) -> str:
        """One row: the lock ids the lock session's backend holds now, and that backend's start
        time (NULL when no backend has the pid). Run on any connection to the same database."""
        return _probe_sql(self.pid)

    def problem_from(self, held_ids: Sequence[int] | None, backend_start: Any) -> str | None:
        """What is wrong with the lock, given :meth:`probe_sql`'s row; None when it is held."""
        if backend_start is None:
            return (
                f"the lock session (pid {self.pid}) is gone: it was terminated or its "
                "connection dropped (pg_terminate_backend, idle_session_timeout, a network "
                "failure or a server restart), and its locks went with it"
            )
        if self.backend_start is not None and backend_start != self.backend_start:
            return (
                f"the lock session (pid {self.pid}, started {self.backend_start}) is gone; "
                f"pid {self.pid} now belongs to a session started {backend_start}"
            )
        missing = [i for i in self.ids if i not in set(held_ids or ())]
        if missing:
            return (
                f"the lock session (pid {self.pid}) no longer holds lock id(s) "
                f"{', '.join(map(str, missing))}"
            )
        return None

    def problem(self, conn: psycopg.Connection[Any]) -> str | None:
        """Ask the server (through ``conn``) whether the lock is still held; None when it is."""
        try:
            row = conn.execute(self.probe_sql(), prepare=False).fetchone()
        except psycopg.Error as exc:
            return f"the lock could not be checked: {str(exc).strip() or type(exc).__name__}"
        held, started = row if row else (None, None)
        return self.problem_from(held, started)


def _try_all(conn: psycopg.Connection[Any]) -> bool:
    """Take every goose lock id or none of them."""
    taken: list[int] = []
    for lock_id in GOOSE_LOCK_IDS:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (lock_id,)).fetchone()
        if not (row and row[0]):
            for held in taken:
                conn.execute("SELECT pg_advisory_unlock(%s)", (held,))
            return False
        taken.append(lock_id)
    return True


def _holders_text(conn: psycopg.Connection[Any]) -> str:
    try:
        pids = sorted({pid for lock_id in GOOSE_LOCK_IDS for pid in lock_holders(conn, lock_id)})
    except psycopg.Error:
        return ""
    return f" (held by pid {', '.join(map(str, pids))})" if pids else ""


def _keep_alive(conn: psycopg.Connection[Any]) -> None:
    """No server timeout may end the lock session while it idles through the run."""
    settings = list(_LOCK_SESSION_SETTINGS)
    if conn.info.server_version >= _IDLE_SESSION_TIMEOUT_SINCE:
        settings.append("idle_session_timeout")
    try:
        conn.execute("; ".join(f"SET {name} = 0" for name in settings))
    except psycopg.Error as exc:
        raise MigratorError(f"cannot set up the lock session: {exc}") from None


def _lock_session(conn: psycopg.Connection[Any]) -> HeldLock:
    """The held lock, checked once right after taking it: both ids held by this backend."""
    pid = refuse_pooler(conn, "lock session")
    row = conn.execute(_probe_sql(pid), prepare=False).fetchone()
    held, started = row if row else (None, None)
    lock = HeldLock(pid=pid, backend_start=started, conn=conn)
    problem = lock.problem_from(held, started)
    if problem:
        raise LockError(f"the goose migration lock did not hold right after taking it: {problem}")
    return lock


@contextmanager
def goose_lock(url: str, *, timeout: float, poll_interval: float = 5.0) -> Iterator[HeldLock]:
    """Hold goose's migration lock for the ``with`` block; yields the :class:`HeldLock`.

    Retries every ``poll_interval`` seconds; raises :class:`LockError` (exit 4) once ``timeout``
    seconds have passed without getting both lock ids, and :class:`MigratorError` (exit 2)
    through a connection pooler.
    """
    conn = connect(url)
    acquired = False
    try:
        refuse_pooler(conn, "lock session")
        _keep_alive(conn)
        deadline = time.monotonic() + max(timeout, 0.0)
        try:
            while not _try_all(conn):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise LockError(
                        f"could not take the goose migration lock within {timeout:g} s: another "
                        f"migrator (hatchet-migrate or goose) is running{_holders_text(conn)}; "
                        "wait for it to finish, or stop it, then retry"
                    )
                time.sleep(min(poll_interval, remaining))
            acquired = True
            lock = _lock_session(conn)
        except psycopg.Error as exc:
            raise MigratorError(f"cannot take the goose migration lock: {exc}") from None
        yield lock
    finally:
        with suppress(psycopg.Error):
            if acquired and not conn.closed:
                for lock_id in GOOSE_LOCK_IDS:
                    conn.execute("SELECT pg_advisory_unlock(%s)", (lock_id,))
        conn.close()

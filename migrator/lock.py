"""goose's migration lock: session-level advisory locks on a dedicated connection.

goose >= v3.26 (Hatchet >= v0.73.35) locks id 4097083626; older goose locks 5887940537704921958.
Holding both keeps every Hatchet version's hatchet-migrate out while a downgrade runs. Like goose,
the lock is tried (``pg_try_advisory_lock``) and retried, never waited on inside PostgreSQL, so a
stuck holder cannot hang this process past the timeout.

A session lock lasts only as long as its session, and the lock session sits idle for the whole
run: it is set up to stay alive (no statement, idle or lock timeouts; TCP keepalives), and
before every step the runner asks it whether it is still the same backend (``pg_backend_pid()``)
and holds both ids (``pg_locks``: advisory, granted, its pid), so a session ended by
``pg_terminate_backend``, ``idle_session_timeout``, a dropped connection or a restart stops the
run instead of letting it go on unlocked. The runner reads ``pg_locks`` in the same statement
as the version table, so the check adds no round trip to a step (:meth:`HeldLock.check`).

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

import select
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import psycopg

from migrator.database import connect
from migrator.errors import LockError, MigratorError
from migrator.lockholders import GooseLockWait, LockWaitCallback, lock_wait_callback, read_holders

GOOSE_LOCK_IDS: tuple[int, ...] = (4097083626, 5887940537704921958)

# The lock session must not be ended by the server's timeouts while it idles through the run
# (idle_session_timeout exists from PostgreSQL 14 on).
_LOCK_SESSION_SETTINGS = (
    "statement_timeout",
    "idle_in_transaction_session_timeout",
    "lock_timeout",
)
_IDLE_SESSION_TIMEOUT_SINCE = 140000

# The advisory locks backend {pid} holds on database {database}, as bigint keys: pg_locks splits a
# bigint key into classid (the high 32 bits) and objid (the low 32 bits), with objsubid = 1.
_HELD_IDS_SQL = (
    "SELECT ((classid::bigint << 32) | objid::bigint) FROM pg_catalog.pg_locks "
    "WHERE locktype = 'advisory' AND granted AND objsubid = 1 AND pid = {pid} "
    "AND database = {database}"
)


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
        category="bad_input",
    )


@dataclass(frozen=True)
class HeldLock:
    """The lock session (``conn``) and its backend pid, which holds both lock ids.

    Nothing but the lock, its checks and watching lock waits
    (:class:`migrator.lockwait.WaitObserver`) may use ``conn``.
    """

    pid: int
    database_oid: int
    conn: psycopg.Connection[Any] = field(compare=False, repr=False)
    ids: tuple[int, ...] = GOOSE_LOCK_IDS

    def held_ids_sql(self) -> str:
        """A query for the lock ids the lock session's backend holds (``pg_locks``); to run on
        any connection to the database, e.g. inside another statement as ``ARRAY(...)``."""
        return _HELD_IDS_SQL.format(pid=int(self.pid), database=int(self.database_oid))

    def check(self, held_ids: Iterable[int] | None = None) -> str | None:
        """What is wrong with the lock; None when it still holds.

        ``held_ids``: what :meth:`held_ids_sql` found, read on another connection (the runner
        reads it with the version table, so the check costs no round trip of its own). It is
        the server's word that backend ``pid`` holds the ids; that backend is still this lock
        session when the session's socket is quiet: a backend that ends (terminated, timed out,
        server restart) sends its goodbye or closes the connection, and only then could another
        session get its pid. Anything on the socket, or no ``held_ids``, makes the lock session
        answer for itself: its ``pg_backend_pid()`` and its locks.
        """
        if held_ids is not None and self._quiet():
            return self._missing(held_ids)
        try:
            own = _HELD_IDS_SQL.format(pid="pg_backend_pid()", database=int(self.database_oid))
            sql = f"SELECT pg_backend_pid(), ARRAY({own})"
            row = self.conn.execute(sql, prepare=False).fetchone()
        except psycopg.Error as exc:
            return self._gone(exc)
        pid, held = row if row else (0, [])
        if pid != self.pid:
            return (
                f"the lock session is no longer backend pid {self.pid} (now pid {pid}): the "
                "connection was re-established or goes through a pooler, and the locks stayed "
                "behind with the old session"
            )
        return self._missing(held)

    def _quiet(self) -> bool:
        """Nothing has arrived on the idle lock session's socket (no goodbye, no close)."""
        with self.conn.lock:
            if self.conn.closed:
                return False
            readable, _, _ = select.select([self.conn.pgconn.socket], [], [], 0)
            return not readable

    def _missing(self, held_ids: Iterable[int]) -> str | None:
        held = set(held_ids)
        missing = [i for i in self.ids if i not in held]
        if not missing:
            return None
        if len(missing) == len(self.ids):
            return (
                f"the lock session (pid {self.pid}) holds neither lock id any more: its session "
                "ended (pg_terminate_backend, idle_session_timeout, a dropped connection or a "
                "server restart) and its locks went with it"
            )
        return (
            f"the lock session (pid {self.pid}) no longer holds lock id(s) "
            f"{', '.join(map(str, missing))}"
        )

    def _gone(self, error: object) -> str:
        lines = str(error).strip().splitlines()
        detail = f" ({lines[0]})" if lines else ""
        return (
            f"the lock session (pid {self.pid}) is gone{detail}: it was terminated or its "
            "connection dropped (pg_terminate_backend, idle_session_timeout, a network failure "
            "or a server restart), and its locks went with it"
        )


def _try_all(conn: psycopg.Connection[Any]) -> bool:
    """Take every goose lock id or none of them (one round trip; both are tried)."""
    tries = ", ".join(f"pg_try_advisory_lock({int(i)})" for i in GOOSE_LOCK_IDS)
    row = conn.execute(f"SELECT {tries}").fetchone()
    taken = [i for i, ok in zip(GOOSE_LOCK_IDS, row or (), strict=False) if ok]
    if len(taken) == len(GOOSE_LOCK_IDS):
        return True
    _unlock(conn, taken)
    return False


def _unlock(conn: psycopg.Connection[Any], ids: Sequence[int]) -> None:
    if ids:
        conn.execute("SELECT " + ", ".join(f"pg_advisory_unlock({int(i)})" for i in ids))


def _holders_text(conn: psycopg.Connection[Any]) -> str:
    try:
        pids = sorted({pid for lock_id in GOOSE_LOCK_IDS for pid in lock_holders(conn, lock_id)})
    except psycopg.Error:
        return ""
    return f" (held by pid {', '.join(map(str, pids))})" if pids else ""


def _keep_alive(conn: psycopg.Connection[Any]) -> int:
    """No server timeout may end the lock session while it idles through the run; returns the
    database's oid (for the lock checks)."""
    settings = list(_LOCK_SESSION_SETTINGS)
    if conn.info.server_version >= _IDLE_SESSION_TIMEOUT_SINCE:
        settings.append("idle_session_timeout")
    sets = "".join(f"; SET {name} = 0" for name in settings)
    try:
        row = conn.execute(
            f"SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database(){sets}"
        ).fetchone()
    except psycopg.Error as exc:
        raise MigratorError(f"cannot set up the lock session: {exc}") from None
    return int(row[0]) if row else 0


@contextmanager
def goose_lock(
    url: str,
    *,
    timeout: float,
    poll_interval: float = 5.0,
    conn: psycopg.Connection[Any] | None = None,
    on_wait: LockWaitCallback | None = None,
) -> Iterator[HeldLock]:
    """Hold goose's migration lock for the ``with`` block; yields the :class:`HeldLock`.

    Retries every ``poll_interval`` seconds; raises :class:`LockError` (exit 4) once ``timeout``
    seconds have passed without getting both lock ids, and :class:`MigratorError` (exit 2)
    through a connection pooler. ``conn``: a new connection (from :func:`connect`) to use as
    the lock session instead of opening one; it is closed at the end either way. ``on_wait``
    (default: the callback of :func:`migrator.lockholders.reporting_lock_waits`) gets a
    :class:`GooseLockWait` before each retry, naming the holders, and once when the lock is
    taken after a wait.
    """
    report = on_wait if on_wait is not None else lock_wait_callback()
    conn = conn if conn is not None else connect(url)
    acquired = False
    try:
        pid = refuse_pooler(conn, "lock session")
        lock = HeldLock(pid=pid, database_oid=_keep_alive(conn), conn=conn)
        started = time.monotonic()
        deadline = started + max(timeout, 0.0)
        waited = False
        try:
            while not _try_all(conn):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise LockError(
                        f"could not take the goose migration lock within {timeout:g} s: another "
                        f"migrator (hatchet-migrate or goose) is running{_holders_text(conn)}; "
                        "wait for it to finish, or stop it, then retry"
                    )
                if report is not None:
                    holders = read_holders(conn, GOOSE_LOCK_IDS)
                    elapsed = time.monotonic() - started
                    report(GooseLockWait(elapsed, timeout, poll_interval, holders))
                    waited = True
                time.sleep(min(poll_interval, remaining))
            acquired = True
            if waited and report is not None:
                elapsed = time.monotonic() - started
                report(GooseLockWait(elapsed, timeout, poll_interval, taken=True))
            problem = lock.check()  # both ids, held by this very backend
            if problem:
                raise LockError(f"the goose migration lock did not hold once taken: {problem}")
        except psycopg.Error as exc:
            raise MigratorError(f"cannot take the goose migration lock: {exc}") from None
        yield lock
    finally:
        with suppress(psycopg.Error):
            if acquired and not conn.closed:
                _unlock(conn, GOOSE_LOCK_IDS)
        conn.close()

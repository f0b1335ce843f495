"""goose's migration lock: session-level advisory locks on a dedicated connection.

goose >= v3.26 (Hatchet >= v0.73.35) locks id 4097083626; older goose locks 5887940537704921958.
Holding both keeps every Hatchet version's hatchet-migrate out while a downgrade runs. Like goose,
the lock is tried (``pg_try_advisory_lock``) and retried, never waited on inside PostgreSQL, so a
stuck holder cannot hang this process past the timeout.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import psycopg

from migrator.database import connect
from migrator.errors import LockError, MigratorError

GOOSE_LOCK_IDS: tuple[int, ...] = (4097083626, 5887940537704921958)


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


@contextmanager
def goose_lock(url: str, *, timeout: float, poll_interval: float = 5.0) -> Iterator[int]:
    """Hold goose's migration lock for the ``with`` block; yields the lock session's pid.

    Retries every ``poll_interval`` seconds; raises :class:`LockError` (exit 4) once ``timeout``
    seconds have passed without getting both lock ids.
    """
    conn = connect(url)
    acquired = False
    try:
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
        except psycopg.Error as exc:
            raise MigratorError(f"cannot take the goose migration lock: {exc}") from None
        acquired = True
        yield conn.info.backend_pid
    finally:
        with suppress(psycopg.Error):
            if acquired and not conn.closed:
                for lock_id in GOOSE_LOCK_IDS:
                    conn.execute("SELECT pg_advisory_unlock(%s)", (lock_id,))
        conn.close()

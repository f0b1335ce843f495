"""goose's advisory lock and the live-session check that keeps a running Hatchet out."""

from __future__ import annotations

import re
import time

import psycopg
import pytest

from cli import exit_code_of
from migrator.database import connect, other_sessions
from migrator.errors import LockError
from migrator.lock import GOOSE_LOCK_IDS, goose_lock

NEW_ID, OLD_ID = GOOSE_LOCK_IDS


def try_lock(conn: psycopg.Connection, lock_id: int) -> bool:
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (lock_id,)).fetchone()
    return bool(row and row[0])


def test_both_goose_lock_ids_are_held_inside_and_released_after(database_url: str) -> None:
    assert (NEW_ID, OLD_ID) == (4097083626, 5887940537704921958)
    with psycopg.connect(database_url, autocommit=True) as other:
        with goose_lock(database_url, timeout=1, poll_interval=0.1) as lock:
            pid = lock.pid
            assert not try_lock(other, NEW_ID)
            assert not try_lock(other, OLD_ID)
            app = other.execute(
                "SELECT application_name FROM pg_stat_activity WHERE pid = %s", (pid,)
            ).fetchone()
            assert app == ("hatchet-schema",)
        assert try_lock(other, NEW_ID)
        assert try_lock(other, OLD_ID)


@pytest.mark.parametrize("held_id", [NEW_ID, OLD_ID], ids=["goose>=3.26", "older-goose"])
def test_lock_held_by_another_session_times_out_with_exit_4(
    database_url: str, held_id: int
) -> None:
    with psycopg.connect(database_url, autocommit=True) as holder:
        assert try_lock(holder, held_id)
        with (
            pytest.raises(LockError) as err,
            goose_lock(database_url, timeout=0.3, poll_interval=0.1),
        ):
            pytest.fail("the lock must not be granted while another session holds it")
        assert exit_code_of(err.value) == 4
        assert str(holder.info.backend_pid) in str(err.value)
        # A failed attempt keeps nothing: the other id is free for anyone.
        other_id = OLD_ID if held_id == NEW_ID else NEW_ID
        assert try_lock(holder, other_id)


def test_lock_is_taken_once_the_holder_lets_go(database_url: str) -> None:
    holder = psycopg.connect(database_url, autocommit=True)
    assert try_lock(holder, NEW_ID)
    holder.close()  # a session's advisory locks end with it
    with goose_lock(database_url, timeout=1, poll_interval=0.1) as lock:
        assert lock.pid > 0


def test_other_sessions_lists_other_clients_only(database_url: str) -> None:
    with (
        connect(database_url) as me,
        psycopg.connect(database_url, application_name="hatchet-engine") as engine,
        psycopg.connect(database_url, application_name="ignored") as ignored,
    ):
        sessions = other_sessions(me, exclude_pids=[ignored.info.backend_pid])
        engine_pid = engine.info.backend_pid
    assert [s.pid for s in sessions] == [engine_pid]
    [session] = sessions
    assert session.application_name == "hatchet-engine"
    assert session.user
    # The message names the session as the lock waits and DDL waits do, with its age and state.
    assert re.fullmatch(
        rf"pid {engine_pid} \(application hatchet-engine, user {re.escape(session.user)}, from "
        r"[^)]+\), session started \d{4}-\d\d-\d\d \d\d:\d\d:\d\d( \S+)? \(\d+ s ago\), idle",
        session.describe(),
    ), session.describe()


def test_sessions_on_other_databases_do_not_count(database_url: str, pg_server_url: str) -> None:
    with connect(database_url) as me, psycopg.connect(pg_server_url):
        assert other_sessions(me) == []


def test_lock_session_outlives_idle_session_timeout(database_url: str) -> None:
    """A server-wide idle_session_timeout must not end the (idle) lock session mid-run."""
    with psycopg.connect(database_url, autocommit=True) as admin:
        dbname = admin.info.dbname
        admin.execute(f'ALTER DATABASE "{dbname}" SET idle_session_timeout = 150')
    with psycopg.connect(database_url, autocommit=True) as other:
        other.execute("SET idle_session_timeout = 0")
        with goose_lock(database_url, timeout=1, poll_interval=0.1) as lock:
            time.sleep(0.4)
            assert not try_lock(other, NEW_ID)
            assert not try_lock(other, OLD_ID)
            assert lock.check() is None


def test_lost_lock_is_noticed(database_url: str) -> None:
    with (
        psycopg.connect(database_url, autocommit=True) as other,
        goose_lock(database_url, timeout=1, poll_interval=0.1) as lock,
    ):
        assert lock.check() is None
        other.execute("SELECT pg_terminate_backend(%s, 5000)", (lock.pid,))
        problem = lock.check()
        assert problem is not None
        assert f"pid {lock.pid}" in problem and "gone" in problem


def test_connections_keep_tcp_alive(database_url: str) -> None:
    with connect(database_url) as conn:
        params = conn.info.get_parameters()
        assert int(params["keepalives_idle"]) <= 60
        assert params["keepalives_interval"] and params["keepalives_count"]
        row = conn.execute("SHOW idle_session_timeout").fetchone()
        assert row == ("0",)


def test_a_lock_id_let_go_is_noticed_from_pg_locks(database_url: str) -> None:
    with (
        psycopg.connect(database_url, autocommit=True) as other,
        goose_lock(database_url, timeout=1, poll_interval=0.1) as lock,
    ):
        row = other.execute(f"SELECT ARRAY({lock.held_ids_sql()})").fetchone()
        assert row is not None and sorted(row[0]) == sorted(GOOSE_LOCK_IDS)
        assert lock.check(row[0]) is None
        lock.conn.execute("SELECT pg_advisory_unlock(%s)", (OLD_ID,))
        row = other.execute(f"SELECT ARRAY({lock.held_ids_sql()})").fetchone()
        assert row is not None
        for problem in (lock.check(row[0]), lock.check()):  # as read elsewhere, and by itself
            assert problem is not None and f"no longer holds lock id(s) {OLD_ID}" in problem

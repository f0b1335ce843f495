"""The ``--sql`` script: the exact SQL of the plan, safe to run by hand with ``psql -f``.

Run through the real psql against real databases: it stops at the first error, holds goose's
lock from start to end (and waits for or refuses a holder), sets the tool's session settings,
re-checks the version before each step, and leaves what the tool's own run leaves.
"""

from __future__ import annotations

import inspect
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from cli import app
from migrator.backup import find_pg_tool
from migrator.database import connect
from migrator.lock import GOOSE_LOCK_IDS
from migrator.plan import Plan, Step
from migrator.runner import _set_limits, run_plan
from migrator.sqlscript import ScriptSettings, sql_script
from tests.conftest import fresh_database, migrate_fixtures
from tests.goose_up import FIXTURE_MIGRATIONS, schema_snapshot, version_ids
from tests.sample_plans import two_step_plan

PSQL = find_pg_tool("psql")
needs_psql = pytest.mark.skipif(PSQL is None, reason="psql not installed")
SETTINGS = (
    "application_name",
    "statement_timeout",
    "idle_in_transaction_session_timeout",
    "idle_session_timeout",
    "client_connection_check_interval",
    "lock_timeout",
)


def _prepare(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE goose_db_version (id serial PRIMARY KEY, version_id bigint NOT NULL,"
            " is_applied boolean NOT NULL, tstamp timestamp DEFAULT now());"
            "INSERT INTO goose_db_version (version_id, is_applied)"
            " VALUES (0, true), (1, true), (2, true), (3, true);"
            "CREATE TABLE log (msg text); CREATE TABLE t2 (c int); CREATE INDEX t2_idx ON t2 (c);"
            "CREATE TABLE t3 (c int);"
        )


def _state(url: str) -> tuple[list[int], list[str], bool, bool]:
    with psycopg.connect(url) as conn:
        versions = [
            r[0] for r in conn.execute("SELECT version_id FROM goose_db_version ORDER BY id")
        ]
        log = [r[0] for r in conn.execute("SELECT msg FROM log ORDER BY msg")]
        t3, idx = conn.execute(
            "SELECT to_regclass('t3') IS NOT NULL, to_regclass('t2_idx') IS NOT NULL"
        ).fetchone() or (None, None)
        return versions, log, bool(t3), bool(idx)


UNTOUCHED = ([0, 1, 2, 3], [], True, True)
DONE = ([0, 1], ["step 2", "step 3"], False, False)


def psql(url: str, script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``psql -X -f -`` as the script's header says to run it (no -v ON_ERROR_STOP: the script
    sets it itself); ``args`` go after the script (e.g. ``-c QUERY`` in the same session)."""
    assert PSQL is not None
    return subprocess.run(
        [str(PSQL), "-X", "-q", "-d", url, "-f", "-", *args],
        input=script,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def _executable(script: str) -> list[str]:
    return [ln for ln in script.splitlines() if ln.strip() and not ln.startswith("--")]


# -- the text ----------------------------------------------------------------------------------


def test_script_text_locks_sets_checks_and_reverts_in_order() -> None:
    script = sql_script(two_step_plan(), ScriptSettings(lock_wait=42, ddl_lock_timeout=7.5))
    assert script.startswith("-- hatchet-schema downgrade from 3 to 1\n-- source: v0.71.0\n")
    order = [
        "\\set ON_ERROR_STOP on",
        "DISCARD ALL;",
        "SET statement_timeout = 0;",
        "SET idle_in_transaction_session_timeout = 0;",
        "pg_try_advisory_lock(lock_id)",
        "SET lock_timeout = 7500;",
        "-- step 1/2: version 3, file 00003_drop_t3.sql, source v0.71.0\n",
        "BEGIN;\nDO $$",
        "hatchet_schema_expect('step 1/2 (version 3)', 3, false); END $$;\nDROP TABLE t3;",
        "-- (empty statement: goose sends an empty query here)\n"
        "-- +goose-free comment\nINSERT INTO log VALUES ('step 3') -- no semicolon\n;\n"
        "DELETE FROM goose_db_version WHERE version_id = 3;\nCOMMIT;",
        "-- step 2/2",
        "hatchet_schema_expect('step 2/2 (version 2)', 2, false); END $$;\nDROP INDEX",
        " t2_idx;\nINSERT INTO log VALUES ('step 2')\n;\n"
        "DELETE FROM goose_db_version WHERE version_id = 2;\n",
        "pg_advisory_unlock(t) FROM unnest(ARRAY[",
    ]
    at = [script.index(piece) for piece in order]
    assert at == sorted(at)
    assert "interval '42 seconds'" in script
    assert f"ARRAY[{GOOSE_LOCK_IDS[0]}, {GOOSE_LOCK_IDS[1]}]::bigint[]" in script
    step2 = script.split("-- step 2/2")[1]
    assert "BEGIN;" not in step2 and "COMMIT;" not in step2


def test_a_plan_blocked_at_its_first_step_is_only_comments() -> None:
    plan = two_step_plan()
    plan.steps[0].status = "blocked"
    plan.steps[0].reason = "no source file"
    script = sql_script(plan)
    assert "-- THIS PLAN IS BLOCKED by 1 step(s); hatchet-schema will not run it" in script
    assert "-- BLOCKED, cannot run: no source file" in script
    assert "-- not reached: step for version 3 is blocked" in script
    assert _executable(script) == []


def test_no_semicolon_is_added_after_a_trailing_comment_that_has_one() -> None:
    plan = Plan(
        from_version=2,
        to_version=1,
        steps=[
            Step(
                version=2,
                file="00002_view.sql",
                kind="sql",
                transaction=True,
                statements=[
                    "DROP VIEW v; -- the view only\n",
                    "SELECT 1 /* ; */",
                    "SELECT 'a -- b;'",
                ],
            )
        ],
    )
    script = sql_script(plan)
    assert "DROP VIEW v; -- the view only\nSELECT 1 /* ; */\n;\nSELECT 'a -- b;'\n;\n" in script


def test_defaults_are_the_tools() -> None:
    """What a script made without options bakes in is what a run without options uses."""
    defaults = inspect.signature(run_plan).parameters
    script = ScriptSettings()
    assert script.lock_wait == defaults["lock_timeout"].default
    assert script.ddl_lock_timeout == defaults["ddl_lock_timeout"].default
    assert script.statement_timeout == defaults["statement_timeout"].default


# -- run by psql ---------------------------------------------------------------------------------


@needs_psql
def test_psql_runs_it_and_releases_the_lock_at_the_end(database_url: str) -> None:
    _prepare(database_url)
    done = psql(
        database_url,
        sql_script(two_step_plan()),
        "-At",
        "-c",
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()",
    )
    assert done.returncode == 0, done.stderr
    assert _state(database_url) == DONE
    assert done.stdout.strip() == "0"  # same session, after the script: nothing held


@needs_psql
def test_a_failing_statement_stops_the_script(database_url: str) -> None:
    _prepare(database_url)
    plan = two_step_plan()
    plan.steps[0].statements.append("SELECT 1/0;")
    done = psql(database_url, sql_script(plan))
    assert done.returncode == 3  # psql's exit code for a script stopped by ON_ERROR_STOP
    assert "division by zero" in done.stderr
    # The transactional step rolled back, and the NO TRANSACTION step after it never ran.
    assert _state(database_url) == UNTOUCHED


@needs_psql
def test_a_failing_no_transaction_statement_stops_after_what_ran(database_url: str) -> None:
    _prepare(database_url)
    plan = two_step_plan()
    plan.steps[1].statements.insert(1, "SELECT 1/0;")
    done = psql(database_url, sql_script(plan))
    assert done.returncode == 3
    # Step 1 committed; of step 2 only the statement before the failure ran, its row stays.
    assert _state(database_url) == ([0, 1, 2], ["step 3"], False, False)


@needs_psql
def test_single_transaction_is_refused_before_anything_runs(database_url: str) -> None:
    _prepare(database_url)
    assert PSQL is not None
    done = subprocess.run(
        [str(PSQL), "-X", "-q", "-1", "-d", database_url, "-f", "-"],
        input=sql_script(two_step_plan()),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
    assert "DISCARD ALL cannot run inside a transaction block" in done.stderr
    assert _state(database_url) == UNTOUCHED


@needs_psql
def test_a_second_run_stops_at_the_version_check(database_url: str) -> None:
    _prepare(database_url)
    script = sql_script(two_step_plan())
    assert psql(database_url, script).returncode == 0
    again = psql(database_url, script)
    assert again.returncode == 3
    assert "stopped before step 1/2 (version 3): the database is at version 1, not 3" in (
        again.stderr
    )
    assert _state(database_url) == DONE


@needs_psql
@pytest.mark.parametrize("applied", [True, False])
def test_a_renamed_row_below_the_target_must_still_be_applied(
    database_url: str, applied: bool
) -> None:
    _prepare(database_url)
    if not applied:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("DELETE FROM goose_db_version WHERE version_id = 1")
    plan = two_step_plan()
    plan.steps.append(
        Step(
            version=1,
            file="00001_old_name.sql",
            kind="sql",
            transaction=True,
            statements=["INSERT INTO log VALUES ('renamed 1');"],
            below_target=True,
        )
    )
    done = psql(database_url, sql_script(plan))
    if applied:
        assert done.returncode == 0, done.stderr
        assert _state(database_url)[:2] == ([0], ["renamed 1", "step 2", "step 3"])
    else:
        assert done.returncode == 3
        assert "stopped before step 3/3 (version 1): version 1 is no longer applied" in (
            done.stderr
        )
        assert _state(database_url)[:2] == ([0], ["step 2", "step 3"])


@needs_psql
def test_a_held_lock_refuses_the_script_naming_the_holder(database_url: str) -> None:
    _prepare(database_url)
    with psycopg.connect(database_url, autocommit=True) as holder:
        holder.execute("SET application_name = 'hatchet-migrate'")
        holder.execute("SELECT pg_advisory_lock(%s)", (GOOSE_LOCK_IDS[1],))
        pid = holder.info.backend_pid
        done = psql(database_url, sql_script(two_step_plan(), ScriptSettings(lock_wait=0)))
    assert done.returncode == 3
    assert "another migrator holds goose's migration lock" in done.stderr
    assert f"pid {pid} (hatchet-migrate)" in done.stderr
    assert _state(database_url) == UNTOUCHED


@needs_psql
def test_the_script_waits_for_the_lock_and_holds_both_ids_while_it_runs(
    database_url: str,
) -> None:
    _prepare(database_url)
    plan = two_step_plan()
    # Record, from inside the script's session, which goose lock ids it holds.
    plan.steps[0].statements.insert(
        0,
        "CREATE TABLE held AS SELECT ((classid::bigint << 32) | objid::bigint) AS id "
        "FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid();",
    )
    with psycopg.connect(database_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (GOOSE_LOCK_IDS[0],))
        timer = threading.Timer(0.5, lambda: holder.execute("SELECT pg_advisory_unlock_all()"))
        started = time.monotonic()
        timer.start()
        try:
            done = psql(database_url, sql_script(plan, ScriptSettings(lock_wait=60, lock_poll=0.2)))
        finally:
            timer.join()
        took = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert "waiting for goose's migration lock" in done.stderr
    assert 0.5 <= took < 30
    with psycopg.connect(database_url) as conn:
        held = {int(r[0]) for r in conn.execute("SELECT id FROM held")}
    assert held == set(GOOSE_LOCK_IDS)
    assert _state(database_url)[0] == [0, 1]


@needs_psql
def test_the_session_settings_are_the_tools(database_url: str) -> None:
    _prepare(database_url)
    with psycopg.connect(database_url, autocommit=True) as conn:
        # Not the server's defaults, so a setting the script forgot shows.
        dbname = conn.info.dbname
        for name in SETTINGS[1:]:
            conn.execute(f'ALTER DATABASE "{dbname}" SET {name} = 3600000')
    names = ", ".join(f"'{n}'" for n in SETTINGS)
    query = f"SELECT name, setting FROM pg_settings WHERE name IN ({names})"
    plan = two_step_plan()
    plan.steps[0].statements.insert(0, f"CREATE TABLE seen AS {query};")
    limits = ScriptSettings(ddl_lock_timeout=2.5, statement_timeout=90)
    done = psql(database_url, sql_script(plan, limits))
    assert done.returncode == 0, done.stderr
    with psycopg.connect(database_url) as conn:
        script_saw = dict(conn.execute("SELECT name, setting FROM seen").fetchall())
    with connect(database_url) as conn:
        _set_limits(conn, limits.ddl_lock_timeout, limits.statement_timeout)
        tool_has = dict(conn.execute(query).fetchall())
    assert script_saw == tool_has
    assert script_saw["lock_timeout"] == "2500" and script_saw["statement_timeout"] == "90000"


# -- the CLI: the result equals the tool's own run ---------------------------------------------


@pytest.fixture
def two_databases(pg_server_url: str) -> Iterator[tuple[str, str]]:
    with (
        fresh_database(pg_server_url, prefix="hs_sql_a") as a,
        fresh_database(pg_server_url, prefix="hs_sql_b") as b,
    ):
        yield migrate_fixtures(a), migrate_fixtures(b)


def _cli(url: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        app,
        ["downgrade", "--migrations-dir", str(FIXTURE_MIGRATIONS), *args],
        env={"DATABASE_URL": url, "HATCHET_SCHEMA_OFFLINE": "1", "NO_COLOR": "1"},
        catch_exceptions=False,
    )
    return result.exit_code, result.stdout, result.stderr


@needs_psql
def test_psql_leaves_what_the_tools_run_leaves(two_databases: tuple[str, str]) -> None:
    by_psql, by_tool = two_databases
    target = "20250507150000"  # reverts 6 steps, one of them NO TRANSACTION
    code, script, err = _cli(
        by_psql, "--to-version", target, "--dry-run", "--sql", "--ddl-lock-timeout", "7"
    )
    assert code == 0, err
    assert "SET lock_timeout = 7000;" in script and "NO TRANSACTION" in script
    done = psql(by_psql, script)
    assert done.returncode == 0, done.stderr
    code, _, err = _cli(by_tool, "--to-version", target, "--yes")
    assert code == 0, err
    assert version_ids(by_psql) == version_ids(by_tool)
    assert version_ids(by_psql)[-1] == int(target)
    assert schema_snapshot(by_psql) == schema_snapshot(by_tool)


def test_cli_sql_bakes_in_the_lock_options(tmp_path: Path, migrated: str) -> None:
    code, script, err = _cli(
        migrated,
        "--to-version",
        "20250604130000",
        "--dry-run",
        "--sql",
        "--lock-timeout",
        "9",
        "--statement-timeout",
        "30",
    )
    assert code == 0, err
    assert "interval '9 seconds'" in script
    assert "SET statement_timeout = 30000;" in script

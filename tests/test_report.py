"""The human plan and the SQL script: what a person reads and what would really run."""

from __future__ import annotations

import shutil
import subprocess

import psycopg
import pytest
from rich.console import Console

from migrator.plan import Plan, Step
from migrator.report import render_plan, sql_script


def _plan() -> Plan:
    return Plan(
        from_version=3,
        to_version=1,
        source="v0.71.0",
        steps=[
            Step(
                version=3,
                file="00003_drop_t3.sql",
                kind="sql",
                transaction=True,
                statements=[
                    "DROP TABLE t3;",
                    "",  # goose's empty-block quirk: an empty query
                    "-- +goose-free comment\nINSERT INTO log VALUES ('step 3') -- no semicolon",
                ],
                warnings=["data loss: DROP TABLE t3"],
                source="v0.71.0",
            ),
            Step(
                version=2,
                file="00002_index.sql",
                kind="sql",
                transaction=False,
                statements=["DROP INDEX t2_idx;", "INSERT INTO log VALUES ('step 2')"],
                warnings=[
                    "no transaction: runs statement by statement; a failure leaves "
                    "earlier statements applied"
                ],
            ),
        ],
    )


def _render(plan: Plan, header: dict[str, str] | None = None) -> str:
    console = Console(record=True, width=200, color_system=None)
    render_plan(plan, console, header=header)
    return console.export_text()


def test_render_plan_shows_header_columns_and_verdict() -> None:
    text = _render(_plan(), {"current": "3 (v0.72.0)", "target": "1 (v0.70.0)"})
    assert "current: 3 (v0.72.0)" in text
    assert "target:  1 (v0.70.0)" in text
    assert "source:  v0.71.0" in text
    for column in ("version", "file", "kind", "transaction", "statements", "status", "warnings"):
        assert column in text
    assert "00003_drop_t3.sql" in text
    assert "data loss: DROP TABLE t3" in text
    rows = [line for line in text.splitlines() if "00002_index.sql" in line]
    assert rows and " no " in rows[0] and " 2 " in rows[0] and "ready" in rows[0]
    assert text.rstrip().endswith("plan can run")


def test_render_plan_blocked_step_shows_reason() -> None:
    plan = _plan()
    plan.steps.append(
        Step(
            version=1,
            file=None,
            kind="missing",
            transaction=True,
            status="blocked",
            reason="no migration file has version 1 (orphan row)",
        )
    )
    text = _render(plan)
    assert "blocked: no migration file has version 1 (orphan row)" in text
    assert "(no file)" in text
    assert text.rstrip().endswith("plan is BLOCKED by 1 step(s)")


def test_render_plan_nothing_to_do() -> None:
    assert "nothing to do" in _render(Plan(from_version=5, to_version=7))


def test_sql_script_text() -> None:
    script = sql_script(_plan())
    assert script.startswith("-- hatchet-schema downgrade from 3 to 1\n-- source: v0.71.0\n")
    assert "-- step 1/2: version 3, file 00003_drop_t3.sql, source v0.71.0\n" in script
    assert (
        "BEGIN;\nDROP TABLE t3;\n-- (empty statement: goose sends an empty query here)\n"
        "-- +goose-free comment\nINSERT INTO log VALUES ('step 3') -- no semicolon\n;\n"
        "DELETE FROM goose_db_version WHERE version_id = 3;\nCOMMIT;"
    ) in script
    step2 = script.split("-- step 2/2")[1]
    assert "BEGIN;" not in step2 and "COMMIT;" not in step2
    assert step2.endswith(
        "DROP INDEX t2_idx;\nINSERT INTO log VALUES ('step 2')\n;\n"
        "DELETE FROM goose_db_version WHERE version_id = 2;\n"
    )


def test_sql_script_blocked_steps_are_comments() -> None:
    plan = _plan()
    plan.steps[0].status = "blocked"
    plan.steps[0].reason = "no source file"
    script = sql_script(plan)
    assert "-- THIS PLAN IS BLOCKED by 1 step(s); hatchet-schema will not run it" in script
    assert "-- BLOCKED, cannot run: no source file" in script
    assert "-- not reached: step for version 3 is blocked" in script
    executable = [ln for ln in script.splitlines() if ln.strip() and not ln.startswith("--")]
    assert executable == []


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


def test_sql_script_runs_through_psycopg(database_url: str) -> None:
    _prepare(database_url)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql_script(_plan()).encode())
    assert _state(database_url) == ([0, 1], ["step 2", "step 3"], False, False)


def test_failing_transactional_step_changes_nothing(database_url: str) -> None:
    _prepare(database_url)
    plan = _plan()
    plan.steps[0].statements.append("SELECT 1/0;")
    with psycopg.connect(database_url, autocommit=True) as conn, pytest.raises(psycopg.Error):
        conn.execute(sql_script(plan).encode())
    assert _state(database_url) == ([0, 1, 2, 3], [], True, True)


@pytest.mark.skipif(shutil.which("psql") is None, reason="psql not installed")
def test_sql_script_runs_through_psql(database_url: str) -> None:
    _prepare(database_url)
    done = subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", database_url, "-f", "-"],
        input=sql_script(_plan()),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert _state(database_url) == ([0, 1], ["step 2", "step 3"], False, False)


def test_sql_script_adds_no_empty_statement_after_a_trailing_comment() -> None:
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

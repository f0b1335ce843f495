"""The NO TRANSACTION journal's rules: which statements commit with their record, how a statement
left "started" is settled from the catalog, and that a re-run with another plan variant of a
half-done step is refused."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from migrator.errors import MigratorError
from migrator.journal import read_journal, settle_started, statement_keys, transactional
from migrator.planner import PlanOptions, build_plan
from migrator.runner import run_plan
from migrator.sources import load_directory
from migrator.versions import read_version_rows
from tests.goose_up import apply_up


@pytest.mark.parametrize(
    ("statement", "inside"),
    [
        ("ALTER TABLE t ADD COLUMN c int;", True),
        ("DROP INDEX IF EXISTS i;", True),
        ("DO $$ BEGIN PERFORM 1; END $$;", True),
        ("CREATE INDEX CONCURRENTLY i ON t (a);", False),
        ("DROP INDEX CONCURRENTLY IF EXISTS i;", False),
        ("REINDEX INDEX CONCURRENTLY i;", False),
        ("VACUUM t;", False),
        ("DO $$ BEGIN COMMIT; END $$;", False),
        ("this is not sql", False),
    ],
)
def test_which_statements_commit_together_with_their_record(statement: str, inside: bool) -> None:
    assert transactional(statement) is inside


def test_repeated_statements_have_their_own_keys() -> None:
    keys = statement_keys(["SELECT 1;", "SELECT 2;", "SELECT 1;"])
    assert len(set(keys)) == 3 and keys[0].split("#")[0] == keys[2].split("#")[0]


def test_a_started_statement_is_settled_from_the_catalog(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (a int); CREATE INDEX valid_i ON t (a)")
        conn.execute("CREATE INDEX invalid_i ON t (a)")
        conn.execute(
            "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'invalid_i'::regclass"
        )
        settle = {
            s: settle_started(conn, s).action
            for s in (
                "CREATE INDEX CONCURRENTLY valid_i ON t (a);",
                "CREATE INDEX CONCURRENTLY invalid_i ON t (a);",
                "CREATE INDEX CONCURRENTLY new_i ON t (a);",
                "DROP INDEX CONCURRENTLY gone_i;",
                "DROP INDEX CONCURRENTLY valid_i;",
                "VACUUM t;",
                "ALTER TABLE t ADD COLUMN b int;",
            )
        }
        rebuild = settle_started(conn, "CREATE INDEX CONCURRENTLY invalid_i ON t (a);")
    assert list(settle.values()) == ["done", "rebuild", "run", "done", "run", "run", "unknown"]
    assert rebuild.drop_first == 'DROP INDEX CONCURRENTLY IF EXISTS "invalid_i"'


def _history(tmp_path: Path) -> Path:
    directory = tmp_path / "m"
    directory.mkdir()
    (directory / "20250501000000_base.sql").write_text(
        "-- +goose Up\nCREATE TABLE base (id int);\n-- +goose Down\nDROP TABLE base;\n"
    )
    (directory / "20250501000001_notx.sql").write_text(
        "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE TABLE n (a int);\n-- +goose Down\n"
        "ALTER TABLE n ADD COLUMN b int;\nALTER TABLE n ADD COLUMN c int;\n"
    )
    return directory


def test_a_rerun_with_another_plan_variant_of_a_half_done_step_is_refused(
    database_url: str, tmp_path: Path
) -> None:
    directory = _history(tmp_path)
    apply_up(database_url, directory)
    migrations = load_directory(directory)

    def replan(rows, catalog):  # type: ignore[no-untyped-def]
        return build_plan(rows, migrations, 20250501000000, catalog=catalog, options=PlanOptions())

    with psycopg.connect(database_url, autocommit=True) as conn:
        plan = replan(read_version_rows(conn), None)
        step = plan.steps[0]
        key = statement_keys(step.statements)[0]
        # What a run stopped after statement 1 leaves, recorded by another variant (a patch).
        conn.execute(
            "CREATE SCHEMA hatchet_schema; CREATE TABLE hatchet_schema.journal (version_id bigint, "
            "step_key text, statement_key text, position int, statements int, state text, "
            "excerpt text, recorded_at timestamptz DEFAULT now(), "
            "PRIMARY KEY (version_id, statement_key))"
        )
        conn.execute(
            "INSERT INTO hatchet_schema.journal VALUES (%s, %s, %s, 1, 2, 'applied', 'x')",
            (step.version, f"{step.version}:patch:-", key),
        )
        conn.execute("ALTER TABLE n ADD COLUMN b int")
    with pytest.raises(MigratorError, match="this plan would run it differently") as err:
        run_plan(database_url, plan, replan, lock_timeout=2)
    assert err.value.category == "blocked"
    with psycopg.connect(database_url) as conn:
        assert [e.position for e in read_journal(conn).of(step.version)] == [1]
        # Fixed by hand (the entry says the upstream variant ran it): the re-run goes on.
        conn.execute(
            "UPDATE hatchet_schema.journal SET step_key = %s",
            (f"{step.version}:{step.action}:{step.blob_sha or '-'}",),
        )
    result = run_plan(database_url, plan, replan, lock_timeout=2)
    assert result.final_version == 20250501000000
    with psycopg.connect(database_url) as conn:
        cols = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'n' "
            "ORDER BY ordinal_position"
        ).fetchall()
        gone = conn.execute("SELECT to_regnamespace('hatchet_schema') IS NULL").fetchone()
    assert [c for (c,) in cols] == ["a", "b", "c"]  # b was not added twice
    assert gone == (True,)

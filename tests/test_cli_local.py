"""End to end, offline: ``hatchet-schema downgrade --to-version V --migrations-dir DIR`` against a
real database migrated up through the fixture migrations. In-process (``invoke_cli``), but for
progress on a terminal: the console script with stderr on a pseudo-terminal."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.e2e_helpers import (
    CliResult,
    clean_env,
    cli_command,
    invoke_cli_with_database,
    ok,
    refused,
    run_on_a_terminal,
)
from tests.goose_up import (
    FIXTURE_MIGRATIONS,
    apply_up,
    migrations_with,
    relation_names,
    schema_snapshot,
    version_ids,
)

pytestmark = pytest.mark.e2e

NEWEST = 20250611170000  # 20250611170000_v1_0_13.sql
V8 = 20250507150000  # the step after the .go migration
GO_FILE = "20250430000000_v1_0_7.go"
PASSWORD = "Pw-never-printed-7f3a9c"
LOCK_ID = 4097083626
STEP_KEYS = {"version", "file", "kind", "transaction", "statements", "warnings", "status"}


def cli(
    args: list[str],
    tmp_path: Path,
    *,
    database_url: str | None,
    migrations: Path | None = FIXTURE_MIGRATIONS,
) -> CliResult:
    """Run the CLI offline with ``--migrations-dir``; see ``invoke_cli_with_database``."""
    argv = list(args)
    if migrations is not None:
        argv += ["--migrations-dir", str(migrations)]
    return invoke_cli_with_database(argv, None, tmp_path, database_url)


def with_password(url: str) -> str:
    """The same database with a password in the URL (the test server trusts, so it is ignored)."""
    params = conninfo_to_dict(url)
    params["password"] = PASSWORD
    return make_conninfo("", **params)


@pytest.fixture
def other_session(migrated: str) -> Iterator[psycopg.Connection]:
    """A second client connected to the database, as a running Hatchet engine would be."""
    with psycopg.connect(migrated, autocommit=True, application_name="hatchet-engine") as conn:
        yield conn


# -- dry run -------------------------------------------------------------------------------------


def test_dry_run_changes_nothing_and_lists_the_steps(migrated: str, tmp_path: Path) -> None:
    before = schema_snapshot(migrated)
    result = ok(
        cli(["downgrade", "--to-version", str(V8), "--dry-run"], tmp_path, database_url=migrated)
    )
    assert schema_snapshot(migrated) == before
    for name in (
        "20250611170000_v1_0_13.sql",
        "20250604130000_v1_0_12.sql",
        "20250528100000_v1_0_11.sql",
        "20250521090000_v1_0_10.sql",
        "20250514120000_v1_0_9.sql",
    ):
        assert name in result.stdout
    # the target itself is not reverted, and the table is not cut to 80 columns off a terminal
    assert "20250507150000_v1_0_8.sql" not in result.stdout
    assert "…" not in result.stdout
    assert "data loss: DROP TABLE v1_match" in result.stdout
    assert "plan can run" in result.stdout


def test_dry_run_sql_prints_the_script_and_changes_nothing(migrated: str, tmp_path: Path) -> None:
    before = schema_snapshot(migrated)
    result = ok(
        cli(
            ["downgrade", "--to-version", "20250521090000", "--dry-run", "--sql"],
            tmp_path,
            database_url=migrated,
        )
    )
    assert schema_snapshot(migrated) == before
    script = result.stdout
    expected_order = [
        "BEGIN;",
        "DROP TABLE v1_match;",
        "DROP TYPE v1_match_kind;",
        "DELETE FROM goose_db_version WHERE version_id = 20250611170000;",
        "COMMIT;",
        "DROP TABLE v1_durable_sleep;",
        "DELETE FROM goose_db_version WHERE version_id = 20250604130000;",
        "DROP VIEW v1_task_view;",
        "DELETE FROM goose_db_version WHERE version_id = 20250528100000;",
    ]
    positions = [script.index(piece) for piece in expected_order]
    assert positions == sorted(positions), script
    assert "20250521090000;" not in script  # the target is not reverted
    assert result.stderr.strip() == ""  # stdout is the whole script, nothing on stderr


def test_sql_without_dry_run_is_refused(migrated: str, tmp_path: Path) -> None:
    before = schema_snapshot(migrated)
    refused(
        cli(
            ["downgrade", "--to-version", str(V8), "--sql", "--yes"],
            tmp_path,
            database_url=migrated,
        ),
        2,
    )
    assert schema_snapshot(migrated) == before


def test_dry_run_json_has_the_contract_fields(migrated: str, tmp_path: Path) -> None:
    result = ok(
        cli(
            ["downgrade", "--to-version", str(V8), "--dry-run", "--json"],
            tmp_path,
            database_url=migrated,
        )
    )
    document = json.loads(result.stdout)
    assert document["from_version"] == NEWEST
    assert document["to_version"] == V8
    assert "final_version" not in document
    steps = document["steps"]
    assert [s["version"] for s in steps] == [
        20250611170000,
        20250604130000,
        20250528100000,
        20250521090000,
        20250514120000,
    ]
    for step in steps:
        assert step.keys() >= STEP_KEYS
        assert isinstance(step["version"], int) and isinstance(step["statements"], int)
        assert isinstance(step["transaction"], bool) and isinstance(step["warnings"], list)
        assert step["kind"] == "sql" and step["status"] == "ready"
    by_version = {s["version"]: s for s in steps}
    assert by_version[20250611170000]["statements"] == 2
    assert by_version[20250521090000]["statements"] == 0  # no Down section
    assert by_version[20250514120000]["transaction"] is False  # lower-case no transaction
    assert any("DROP TABLE v1_match" in w for w in by_version[20250611170000]["warnings"])


# -- real runs -----------------------------------------------------------------------------------


def test_real_run_reverts_and_reports_the_final_version(migrated: str, tmp_path: Path) -> None:
    result = ok(
        cli(["downgrade", "--to-version", str(V8), "--yes"], tmp_path, database_url=migrated)
    )
    assert version_ids(migrated)[-1] == V8
    assert NEWEST not in version_ids(migrated)
    relations = relation_names(migrated)
    assert {"v1_match", "v1_durable_sleep", "v1_task_view", "v1_log_line_tenant_id_idx"}.isdisjoint(
        relations
    )
    assert {"v1_lease", "v1_runs_olap", "v1_go_made"} <= relations  # v1_0_10 has no Down
    assert f"-> {V8}" in result.stderr
    assert "[5/5]" in result.stderr  # progress per step, plain lines off a terminal


def test_real_run_json_reports_final_version(migrated: str, tmp_path: Path) -> None:
    result = ok(
        cli(
            ["downgrade", "--to-version", "20250601000000", "--yes", "--json"],
            tmp_path,
            database_url=migrated,
        )
    )
    document = json.loads(result.stdout)  # stdout is only the JSON object
    assert document["final_version"] == 20250528100000
    assert [s["status"] for s in document["steps"]] == ["done", "done"]
    assert version_ids(migrated)[-1] == 20250528100000


def test_real_run_on_the_old_serial_table(database_url: str, tmp_path: Path) -> None:
    apply_up(database_url, FIXTURE_MIGRATIONS, serial_table=True)
    ok(
        cli(
            ["downgrade", "--to-version", "20250604130000", "--yes"],
            tmp_path,
            database_url=database_url,
        )
    )
    assert version_ids(database_url)[-1] == 20250604130000
    assert "v1_match" not in relation_names(database_url)


def test_without_yes_and_no_terminal_nothing_changes(migrated: str, tmp_path: Path) -> None:
    before = schema_snapshot(migrated)
    message = refused(
        cli(["downgrade", "--to-version", str(V8)], tmp_path, database_url=migrated), 2
    )
    assert "--yes" in message
    assert schema_snapshot(migrated) == before


def downgrade_through_broken_step(database_url: str, tmp_path: Path, *extra: str) -> CliResult:
    """Migrate up through a set whose newest step fails at statement 2 of 3 on the way down, then
    run ``downgrade --to-version 20250604130000 --yes EXTRA``."""
    directory = migrations_with(tmp_path, "20250618090000_v1_0_14_drop_type_first.sql")
    apply_up(database_url, directory)
    return cli(
        ["downgrade", "--to-version", "20250604130000", "--yes", *extra],
        tmp_path,
        database_url=database_url,
        migrations=directory,
    )


def test_failing_step_names_the_statement_and_keeps_earlier_steps(
    database_url: str, tmp_path: Path
) -> None:
    message = refused(downgrade_through_broken_step(database_url, tmp_path), 1)
    assert "20250618090000_v1_0_14_drop_type_first.sql" in message
    assert "statement 2 of 3" in message
    # the failed step rolled back as a whole: its table dropped by statement 1 is still there
    assert "v1_idempotency_seen" in relation_names(database_url)
    assert version_ids(database_url)[-1] == 20250618090000


def test_failing_step_with_json_still_prints_the_plan_and_where_it_stopped(
    database_url: str, tmp_path: Path
) -> None:
    result = downgrade_through_broken_step(database_url, tmp_path, "--json")
    assert result.returncode == 1, str(result)
    document = json.loads(result.stdout)
    assert document["final_version"] == 20250618090000
    assert [s["status"] for s in document["steps"]] == ["failed", "not run"]
    assert "statement 2 of 3" in document["error"]
    assert document["stopped"] == {
        "final_version": 20250618090000,
        "step": 20250618090000,
        "statement": 2,
        "applied_statements": [],
        "reverted": [],
    }


# -- nothing to do -------------------------------------------------------------------------------


def test_target_above_current_only_downgrades(migrated: str, tmp_path: Path) -> None:
    before = schema_snapshot(migrated)
    result = ok(
        cli(
            ["downgrade", "--to-version", "20991231000000", "--yes"],
            tmp_path,
            database_url=migrated,
        )
    )
    assert "only downgrades" in result.stdout + result.stderr
    assert schema_snapshot(migrated) == before


def test_target_equal_to_current_is_nothing_to_do(migrated: str, tmp_path: Path) -> None:
    before = schema_snapshot(migrated)
    result = ok(
        cli(["downgrade", "--to-version", str(NEWEST), "--yes"], tmp_path, database_url=migrated)
    )
    assert "nothing to do" in result.stdout + result.stderr
    assert schema_snapshot(migrated) == before


# -- refusals ------------------------------------------------------------------------------------


def test_no_database_url_is_bad_input(tmp_path: Path) -> None:
    message = refused(
        cli(["downgrade", "--to-version", str(V8), "--dry-run"], tmp_path, database_url=None), 2
    )
    assert "DATABASE_URL" in message


def test_database_without_version_table_is_bad_input(database_url: str, tmp_path: Path) -> None:
    message = refused(
        cli(["downgrade", "--to-version", str(V8), "--yes"], tmp_path, database_url=database_url), 2
    )
    assert "goose_db_version" in message
    assert schema_snapshot(database_url)["versions"] is None  # never created


def test_malformed_version_is_bad_input(migrated: str, tmp_path: Path) -> None:
    message = refused(
        cli(["downgrade", "--to-version", "abc", "--dry-run"], tmp_path, database_url=migrated), 2
    )
    assert "abc" in message


@pytest.mark.parametrize("dry_run", [True, False])
def test_plan_through_the_go_file_is_blocked(migrated: str, tmp_path: Path, dry_run: bool) -> None:
    before = schema_snapshot(migrated)
    args = ["downgrade", "--to-version", "20250420000000", "--dry-run" if dry_run else "--yes"]
    message = refused(cli(args, tmp_path, database_url=migrated), 3)
    assert GO_FILE in message
    assert schema_snapshot(migrated) == before


def test_another_session_refuses_the_run(
    migrated: str, other_session: psycopg.Connection, tmp_path: Path
) -> None:
    before = schema_snapshot(migrated)
    message = refused(
        cli(["downgrade", "--to-version", str(V8), "--yes"], tmp_path, database_url=migrated), 4
    )
    assert "hatchet-engine" in message and "--ignore-active-sessions" in message
    assert schema_snapshot(migrated) == before


def test_another_session_is_refused_before_the_prompt_and_the_backup(
    migrated: str, other_session: psycopg.Connection, tmp_path: Path
) -> None:
    dump = tmp_path / "before.dump"
    args = ["downgrade", "--to-version", str(V8), "--backup", str(dump)]
    message = refused(cli(args, tmp_path, database_url=migrated), 4)
    assert "hatchet-engine" in message
    assert "--yes" not in message  # the session check came first, not the confirmation
    assert not dump.exists()


def test_dry_run_names_other_sessions_but_still_exits_0(
    migrated: str, other_session: psycopg.Connection, tmp_path: Path
) -> None:
    result = ok(
        cli(["downgrade", "--to-version", str(V8), "--dry-run"], tmp_path, database_url=migrated)
    )
    assert "1 other client session(s) connected" in result.stdout


def test_ignore_active_sessions_runs(
    migrated: str, other_session: psycopg.Connection, tmp_path: Path
) -> None:
    args = ["downgrade", "--to-version", str(V8), "--yes", "--ignore-active-sessions"]
    ok(cli(args, tmp_path, database_url=migrated))
    assert version_ids(migrated)[-1] == V8


def test_held_lock_times_out_with_exit_4(
    migrated: str, other_session: psycopg.Connection, tmp_path: Path
) -> None:
    other_session.execute("SELECT pg_advisory_lock(%s)", (LOCK_ID,))
    before = schema_snapshot(migrated)
    args = ["downgrade", "--to-version", str(V8), "--yes", "--ignore-active-sessions"]
    message = refused(cli([*args, "--lock-timeout", "0.3"], tmp_path, database_url=migrated), 4)
    assert "lock" in message
    assert schema_snapshot(migrated) == before
    # --json still gets one document: every step not run, the database where it was.
    result = cli([*args, "--lock-timeout", "0.3", "--json"], tmp_path, database_url=migrated)
    assert result.returncode == 4
    document = json.loads(result.stdout)
    assert document["final_version"] == before["versions"][-1][1]  # type: ignore[index]
    assert {s["status"] for s in document["steps"]} == {"not run"}
    assert "lock" in document["error"] and document["stopped"] is None


# -- secrets -------------------------------------------------------------------------------------


def test_password_never_appears_in_output(migrated: str, tmp_path: Path) -> None:
    url = with_password(migrated)
    runs = [
        cli(["downgrade", "--to-version", str(V8), "--dry-run"], tmp_path, database_url=url),
        cli(
            ["downgrade", "--to-version", str(V8), "--dry-run", "--json"],
            tmp_path,
            database_url=url,
        ),
        cli(["downgrade", "--to-version", "abc"], tmp_path, database_url=url),
        cli(["downgrade", "--to-version", str(V8), "--yes"], tmp_path, database_url=url),
        cli(["status", "--json"], tmp_path, database_url=url),
    ]
    assert [r.returncode for r in runs] == [0, 0, 2, 0, 0], "\n".join(map(str, runs))
    for result in runs:
        assert PASSWORD not in result.stdout + result.stderr, str(result)


def test_password_is_hidden_when_the_connection_fails(tmp_path: Path) -> None:
    url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/nowhere?connect_timeout=3"
    for args in (["downgrade", "--to-version", str(V8), "--dry-run"], ["status"]):
        result = cli(args, tmp_path, database_url=url)
        assert result.returncode in (1, 2), str(result)
        assert PASSWORD not in result.stdout + result.stderr, str(result)
        assert "127.0.0.1" in result.stderr  # the message still says where it tried


# -- progress on a terminal ----------------------------------------------------------------------


@pytest.mark.parametrize("no_color", [True, False])
def test_progress_is_a_bar_on_a_terminal(migrated: str, tmp_path: Path, no_color: bool) -> None:
    env = clean_env({"DATABASE_URL": migrated, "TERM": "xterm-256color"}, tmp_path / "home")
    if not no_color:
        del env["NO_COLOR"]
    args = ["downgrade", "--to-version", str(V8), "--yes", "--migrations-dir"]
    code, terminal = run_on_a_terminal([*cli_command(), *args, str(FIXTURE_MIGRATIONS)], env)
    assert code == 0, terminal
    assert "Traceback" not in terminal
    assert "━" in terminal  # rich's bar
    assert "reverted 20250514120000_v1_0_9.sql in" in terminal  # elapsed time per step
    assert version_ids(migrated)[-1] == V8
    colored = re.search(r"\x1b\[[0-9;]*3[0-9](;[0-9;]*)?m", terminal) is not None
    assert colored is not no_color


def test_compose_file_without_a_release_is_refused(migrated: str, tmp_path: Path) -> None:
    compose = tmp_path / "docker-compose.yml"
    compose.write_text("services: {}\n")
    before = schema_snapshot(migrated)
    args = ["downgrade", "--to-version", str(V8), "--yes", "--compose-file", str(compose)]
    assert "--to-release" in refused(cli(args, tmp_path, database_url=migrated), 2)
    assert schema_snapshot(migrated) == before

"""``downgrade --rehearse schema|data``: the exact plan runs on a scratch copy first, on real
PostgreSQL. Driven in-process with typer's CliRunner; the signal tests run the CLI in a
subprocess (Ctrl-C, SIGTERM and SIGKILL during the copy and during the rehearsal's steps)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from typer.testing import CliRunner

import migrator.commands as commands_module
import migrator.rehearsal as rehearsal_module
import migrator.runner as runner_module
from cli import app, exit_code_of
from migrator.catalog import ConnectionCatalog
from migrator.database import connect
from migrator.plan import Plan, Step
from migrator.planner import build_plan
from migrator.profile import Catalog
from migrator.rehearsal import (
    SCRATCH_PREFIX,
    RehearsalInterrupted,
    rehearse,
    scratch_name,
)
from migrator.sources import load_directory
from migrator.versions import VersionRow, read_version_rows
from tests.e2e_helpers import REPO_ROOT, clean_env, cli_command, run_on_a_terminal
from tests.goose_up import (
    FIXTURE_MIGRATIONS,
    apply_up,
    migrations_with,
    schema_snapshot,
    version_ids,
)

NEWEST = 20250611170000  # 20250611170000_v1_0_13.sql
V8 = 20250507150000
GO7 = 20250430000000
BROKEN_TX = "20250618090000_v1_0_14_drop_type_first.sql"
BROKEN_NOTX = "20250625090000_v1_0_15_notx_second_fails.sql"
SLOW = "20250720000000_v1_0_18_slow.sql"
SLOW_SECONDS = 4
UNIQUE = "20250720000000_v1_0_18_unique_name.sql"
UNIQUE_DOWN = (
    "-- +goose Up\nSELECT 1;\n-- +goose Down\n"
    "CREATE UNIQUE INDEX tenant_name_key ON tenant (name);\n"
)
ROW_CHECK = "20250720000000_v1_0_18_row_check.sql"
ROW_CHECK_DOWN = (
    "-- +goose Up\nSELECT 1;\n-- +goose Down\n-- +goose StatementBegin\n"
    "DO $$ BEGIN IF EXISTS (SELECT 1 FROM tenant) THEN "
    "RAISE EXCEPTION 'tenants still exist'; END IF; END $$;\n-- +goose StatementEnd\n"
)


# -- helpers --------------------------------------------------------------------------------------


def cli(url: str, *args: str, migrations: Path = FIXTURE_MIGRATIONS) -> tuple[int, str, str]:
    """``hatchet-schema downgrade ARGS --migrations-dir DIR`` in-process."""
    result = CliRunner().invoke(
        app,
        ["downgrade", *args, "--migrations-dir", str(migrations)],
        env={"DATABASE_URL": url, "HATCHET_SCHEMA_OFFLINE": "1", "NO_COLOR": "1"},
        catch_exceptions=False,
    )
    assert "Traceback" not in result.stdout + result.stderr
    return result.exit_code, result.stdout, result.stderr


def scratch_databases(url: str, pid: int | None = None) -> list[str]:
    """Scratch databases on ``url``'s server (made by process ``pid``, by default this one)."""
    pattern = f"{SCRATCH_PREFIX}%\\_{pid or os.getpid()}\\_%"
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s ORDER BY 1", (pattern,)
        ).fetchall()
    return [str(name) for (name,) in rows]


def drop_databases(url: str, names: list[str]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for name in names:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def with_user(url: str, user: str) -> str:
    params = conninfo_to_dict(url)
    params["user"] = user
    return make_conninfo("", **params)


def plan_and_replan(url: str, directory: Path, target: int) -> tuple[Plan, Callable[..., Plan]]:
    migrations = load_directory(directory)

    def replan(rows: list[VersionRow], catalog: Catalog) -> Plan:
        return build_plan(rows, migrations, target, catalog=catalog)

    with connect(url, read_only=True) as conn:
        plan = replan(read_version_rows(conn), ConnectionCatalog(conn))
    return plan, replan


def slow_migrations(tmp_path: Path) -> Path:
    """The fixture set plus a newest migration whose down sleeps."""
    return migrations_with(
        tmp_path,
        extra={
            SLOW: f"-- +goose Up\nSELECT 1;\n-- +goose Down\nSELECT pg_sleep({SLOW_SECONDS});\n"
        },
    )


@pytest.fixture
def no_leftovers(pg_server_url: str) -> Iterator[None]:
    """Every test here must leave no scratch database of this process behind."""
    yield
    left = scratch_databases(pg_server_url)
    drop_databases(pg_server_url, left)
    assert left == [], f"scratch databases left behind: {left}"


@pytest.fixture
def limited_role(pg_server_url: str) -> Iterator[str]:
    """A login role without CREATEDB (nor SUPERUSER)."""
    role = f"hs_role_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    try:
        yield role
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            for row in conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE 'hs\\_test\\_%'"
            ).fetchall():
                target = make_conninfo(pg_server_url, dbname=row[0])
                try:
                    with psycopg.connect(target, autocommit=True) as db:
                        db.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
                except psycopg.Error:
                    pass
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


# -- passing rehearsals -----------------------------------------------------------------------


@pytest.mark.usefixtures("no_leftovers")
def test_schema_rehearsal_passes_then_the_real_run_reverts(migrated: str) -> None:
    code, out, err = cli(migrated, "--to-version", str(GO7), "--rehearse", "schema", "--yes",
                         "--json")  # fmt: skip
    assert code == 0, err
    document = json.loads(out)
    assert document["final_version"] == GO7
    assert all(s["status"] == "done" for s in document["steps"])  # the real run's plan
    rehearsal = document["rehearsal"]
    assert rehearsal["ok"] is True and rehearsal["mode"] == "schema"
    assert rehearsal["error"] is None and rehearsal["dropped"] is True
    assert {"ok", "mode", "seconds", "steps", "error"} <= rehearsal.keys()
    versions = [s["version"] for s in rehearsal["steps"]]
    assert versions == [s["version"] for s in document["steps"]]
    for step in rehearsal["steps"]:
        assert step["status"] == "done" and step["seconds"] >= 0
        assert set(step) >= {"version", "status", "seconds"}
    assert rehearsal["seconds"] >= rehearsal["copy_seconds"] + rehearsal["run_seconds"]
    assert "pg_dump --schema-only" in rehearsal["method"]
    assert version_ids(migrated)[-1] == GO7
    # Progress of the copy and of each rehearsed step, on stderr.
    assert "rehearsal: copying the schema" in err
    assert "rehearsal: [1/6] reverted 20250611170000_v1_0_13.sql" in err
    assert "rehearsal PASSED on a schema copy" in err
    assert "rehearsal: dropped scratch database" in err
    # The rehearsal (and its report) comes first, then the real run's steps.
    real_start = err.index("\n[1/6] reverting 20250611170000_v1_0_13.sql")
    assert err.index("rehearsal PASSED") < real_start
    assert err.index("rehearsal: dropped scratch database") < real_start
    assert "done: 20250611170000 -> 20250430000000" in err[real_start:]


@pytest.mark.usefixtures("no_leftovers")
def test_data_rehearsal_dry_run_copies_with_a_template_and_changes_nothing(migrated: str) -> None:
    with psycopg.connect(migrated, autocommit=True) as conn:
        conn.execute("INSERT INTO tenant (id, name) VALUES (gen_random_uuid(), 'acme')")
    before = schema_snapshot(migrated)
    code, out, err = cli(migrated, "--to-version", str(V8), "--rehearse", "data", "--dry-run",
                         "--json")  # fmt: skip
    assert code == 0, err
    document = json.loads(out)
    assert document["dry_run"] is True and "final_version" not in document
    rehearsal = document["rehearsal"]
    assert rehearsal["ok"] is True and rehearsal["mode"] == "data"
    assert rehearsal["method"] == "CREATE DATABASE ... TEMPLATE"
    assert rehearsal["final_version"] == V8
    assert [s["status"] for s in document["steps"]] == ["ready"] * len(document["steps"])
    assert schema_snapshot(migrated) == before


@pytest.mark.usefixtures("no_leftovers")
def test_text_dry_run_shows_the_plan_then_the_rehearsal(migrated: str) -> None:
    code, out, err = cli(migrated, "--to-version", str(V8), "--rehearse", "schema", "--dry-run")
    assert code == 0, err
    assert "20250611170000_v1_0_13.sql" in out
    assert "rehearsal PASSED on a schema copy" in out
    assert out.index("plan can run") < out.index("rehearsal PASSED")
    assert version_ids(migrated)[-1] == NEWEST


@pytest.mark.usefixtures("no_leftovers")
def test_data_rehearsal_with_other_sessions_uses_pg_dump_and_restore(migrated: str) -> None:
    with psycopg.connect(migrated, autocommit=True, application_name="hatchet-engine") as engine:
        engine.execute("INSERT INTO tenant (id, name) VALUES (gen_random_uuid(), 'acme')")
        code, out, err = cli(migrated, "--to-version", str(V8), "--rehearse", "data",
                             "--dry-run", "--json")  # fmt: skip
    assert code == 0, err
    rehearsal = json.loads(out)["rehearsal"]
    assert rehearsal["ok"] is True
    assert rehearsal["method"] == "pg_dump | pg_restore"
    assert any("other session" in note for note in rehearsal["notes"])


@pytest.mark.usefixtures("no_leftovers")
def test_rehearse_url_puts_the_copy_on_the_given_server(migrated: str, pg_server_url: str) -> None:
    code, out, err = cli(migrated, "--to-version", str(V8), "--rehearse", "data", "--dry-run",
                         "--json", "--rehearse-url", pg_server_url)  # fmt: skip
    assert code == 0, err
    rehearsal = json.loads(out)["rehearsal"]
    assert rehearsal["ok"] is True
    assert rehearsal["method"] == "pg_dump | pg_restore"  # another server: no template copy
    assert rehearsal["server"].endswith("/postgres")


@pytest.mark.usefixtures("no_leftovers")
def test_parallel_data_copy_and_the_plan_is_left_as_it_was(migrated: str) -> None:
    plan, replan = plan_and_replan(migrated, FIXTURE_MIGRATIONS, V8)
    lines: list[str] = []
    result = rehearse(migrated, plan, replan, mode="data", server_url=migrated,
                      parallel_threshold=0, on_progress=lines.append)  # fmt: skip
    assert result.ok, result.error
    if (os.cpu_count() or 1) > 1:
        assert "--jobs" in result.method
    assert [s.status for s in plan.steps] == ["ready"] * len(plan.steps)  # a copy ran
    assert [s.status for s in result.steps] == ["done"] * len(plan.steps)
    assert any(line.startswith("rehearsal: copying") for line in lines)


@pytest.mark.usefixtures("no_leftovers")
def test_a_copy_that_waits_still_reports_progress(
    migrated: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rehearsal_module, "_TICK_INTERVAL", 0.2)
    plan, replan = plan_and_replan(migrated, FIXTURE_MIGRATIONS, V8)
    lines: list[str] = []
    with psycopg.connect(migrated) as holder:
        holder.execute("LOCK TABLE v1_task IN ACCESS EXCLUSIVE MODE")  # pg_dump waits for it

        def on_progress(line: str) -> None:
            lines.append(line)
            if "s so far" in line:
                holder.rollback()  # the lock goes: the copy goes on

        result = rehearse(migrated, plan, replan, mode="schema", on_progress=on_progress)
    assert result.ok, result.error
    assert any(re.match(r"rehearsal: copying, \d+s so far, \d+ items", line) for line in lines)


def test_the_rehearsal_runs_with_the_real_runs_options(
    migrated: str, monkeypatch: pytest.MonkeyPatch, no_leftovers: None
) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []
    real = runner_module.run_plan

    def recording(url: str, plan: Plan, replan: Any, **options: Any) -> Any:
        kept = {k: v for k, v in options.items() if k not in ("on_event", "on_wait", "on_notice")}
        calls.append((url, kept))
        return real(url, plan, replan, **options)

    monkeypatch.setattr(rehearsal_module, "run_plan", recording)
    monkeypatch.setattr(runner_module, "run_plan", recording)
    monkeypatch.setattr(commands_module, "run_plan", recording)
    code, _out, err = cli(migrated, "--to-version", str(V8), "--rehearse", "schema", "--yes",
                          "--lock-timeout", "9", "--ddl-lock-timeout", "7",
                          "--ddl-lock-retries", "2", "--statement-timeout", "30")  # fmt: skip
    assert code == 0, err
    [(scratch_url, rehearsed), (real_url, ran)] = calls
    assert SCRATCH_PREFIX in scratch_url and real_url == migrated
    assert rehearsed == ran
    assert ran["lock_timeout"] == 9 and ran["ddl_lock_timeout"] == 7
    assert ran["ddl_lock_retries"] == 2 and ran["statement_timeout"] == 30


@pytest.mark.usefixtures("no_leftovers")
def test_a_schema_rehearsal_runs_the_approved_data_fixes_on_empty_tables(
    database_url: str, tmp_path: Path
) -> None:
    """The plan deletes duplicate rows production has; the empty copy has none to count, and the
    rehearsal still runs the approved statements instead of calling the plan stale."""
    directory = migrations_with(tmp_path, extra={UNIQUE: UNIQUE_DOWN})
    apply_up(database_url, directory)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO tenant (id, name) VALUES (gen_random_uuid(), 'acme'), "
            "(gen_random_uuid(), 'acme')"
        )
    for mode in ("schema", "data"):
        code, out, err = cli(database_url, "--to-version", str(NEWEST), "--rehearse", mode,
                             "--dry-run", "--json", migrations=directory)  # fmt: skip
        assert code == 0, err
        document = json.loads(out)
        assert document["steps"][0]["data_loss"]  # a DELETE of the duplicate is in the plan
        assert document["rehearsal"]["ok"] is True, document["rehearsal"]["error"]
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM tenant").fetchone() == (2,)


@pytest.mark.usefixtures("no_leftovers")
def test_only_a_data_rehearsal_finds_a_down_that_fails_on_the_rows(
    database_url: str, tmp_path: Path
) -> None:
    directory = migrations_with(tmp_path, extra={ROW_CHECK: ROW_CHECK_DOWN})
    apply_up(database_url, directory)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO tenant (id, name) VALUES (gen_random_uuid(), 'acme')")
    args = ["--to-version", str(NEWEST), "--dry-run", "--json"]
    code, out, err = cli(database_url, *args, "--rehearse", "schema", migrations=directory)
    assert code == 0, err
    code, out, err = cli(database_url, *args, "--rehearse", "data", migrations=directory)
    assert code == 1
    assert "tenants still exist" in json.loads(out)["rehearsal"]["error"]
    assert f"at step {ROW_CHECK}" in err and "statement 1 of 1" in err


def test_the_prompt_shows_the_rehearsal_and_each_steps_time(migrated: str, tmp_path: Path) -> None:
    code, text = run_on_a_terminal(
        [*cli_command(), "downgrade", "--to-version", str(V8), "--migrations-dir",
         str(FIXTURE_MIGRATIONS), "--rehearse", "schema"],
        clean_env({"DATABASE_URL": migrated}), stdin_too=True, answer=(b"[y/N]", b"n\n"),
        cwd=REPO_ROOT, timeout=60,
    )  # fmt: skip
    assert code == 2, text
    assert "rehearsal PASSED on a schema copy" in text
    assert re.search(r"20250611170000_v1_0_13\.sql\s+done\s+\d+\.\d\ds", text), text
    assert "Rehearsed on a schema copy: passed, its steps took" in text
    assert text.index("rehearsal PASSED") < text.index("[y/N]")
    assert "cancelled; nothing was changed" in text
    assert version_ids(migrated)[-1] == NEWEST
    assert scratch_databases(migrated, os.getpid()) == []


# -- failing rehearsals -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("broken", "mode", "statement"),
    [
        (BROKEN_TX, "schema", "statement 2 of 3 ('DROP TYPE v1_idempotency_method;')"),
        (BROKEN_NOTX, "data", "statement 2 of 3 ('DROP TABLE v1_notx_never_created;')"),
    ],
)
@pytest.mark.usefixtures("no_leftovers")
def test_a_failing_rehearsal_leaves_production_untouched(
    database_url: str, tmp_path: Path, broken: str, mode: str, statement: str
) -> None:
    directory = migrations_with(tmp_path, broken)
    apply_up(database_url, directory)
    before = schema_snapshot(database_url)
    code, out, err = cli(database_url, "--to-version", str(V8), "--rehearse", mode, "--yes",
                         "--json", migrations=directory)  # fmt: skip
    assert code == 1
    assert f"the rehearsal failed at step {broken}" in err
    assert statement in err
    assert "production was not touched" in err
    assert "rehearsal FAILED" in err
    assert "done:" not in err  # the real run never started
    document = json.loads(out)
    assert document["final_version"] == before["versions"][-1][1]  # type: ignore[index]
    rehearsal = document["rehearsal"]
    assert rehearsal["ok"] is False and rehearsal["mode"] == mode
    assert statement in rehearsal["error"]
    assert rehearsal["steps"][0]["status"] == "failed"
    assert {s["status"] for s in rehearsal["steps"][1:]} == {"not run"}
    assert {s["status"] for s in document["steps"]} == {"ready"}
    assert schema_snapshot(database_url) == before


@pytest.mark.usefixtures("no_leftovers")
def test_a_failing_dry_run_rehearsal_exits_1(database_url: str, tmp_path: Path) -> None:
    directory = migrations_with(tmp_path, BROKEN_TX)
    apply_up(database_url, directory)
    code, out, err = cli(database_url, "--to-version", str(V8), "--rehearse", "schema",
                         "--dry-run", migrations=directory)  # fmt: skip
    assert code == 1
    assert "rehearsal FAILED on a schema copy" in out
    assert BROKEN_TX in err and "DROP TYPE v1_idempotency_method" in err


@pytest.mark.usefixtures("no_leftovers")
def test_a_copy_that_fails_is_a_failed_rehearsal_and_leaves_nothing(
    migrated: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rehearsal_module, "find_pg_tool", lambda _name: None)
    plan, replan = plan_and_replan(migrated, FIXTURE_MIGRATIONS, V8)
    result = rehearse(migrated, plan, replan, mode="schema")
    assert not result.ok and result.dropped
    assert result.error is not None and "could not copy the database" in result.error
    assert "pg_restore were not found" in result.error
    assert result.steps == []


# -- privileges -------------------------------------------------------------------------------


@pytest.mark.usefixtures("no_leftovers")
def test_a_role_without_createdb_is_refused_with_exit_2(migrated: str, limited_role: str) -> None:
    with psycopg.connect(migrated, autocommit=True) as conn:
        conn.execute(
            sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(
                sql.Identifier(limited_role)
            )
        )
    before = schema_snapshot(migrated)
    url = with_user(migrated, limited_role)
    for extra in (["--dry-run"], ["--yes"]):
        code, _out, err = cli(url, "--to-version", str(V8), "--rehearse", "schema", *extra)
        assert code == 2, err
        assert f"role {limited_role} may not create databases" in err
        assert "CREATEDB" in err
    assert schema_snapshot(migrated) == before


@pytest.mark.usefixtures("no_leftovers")
def test_a_role_that_cannot_read_a_table_is_refused_with_exit_2(
    migrated: str, limited_role: str
) -> None:
    with psycopg.connect(migrated, autocommit=True) as conn:
        role = sql.Identifier(limited_role)
        conn.execute(sql.SQL("ALTER ROLE {} CREATEDB").format(role))
        conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(role))
        conn.execute(sql.SQL("GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO {}").format(role))
        conn.execute(sql.SQL("REVOKE SELECT ON v1_task FROM {}").format(role))
    url = with_user(migrated, limited_role)
    code, _out, err = cli(url, "--to-version", str(V8), "--rehearse", "data", "--dry-run")
    assert code == 2, err
    assert "lacks the SELECT privilege on 1 relation(s) (public.v1_task)" in err


def test_bad_rehearse_arguments_are_exit_2(migrated: str) -> None:
    assert cli(migrated, "--to-version", str(V8), "--rehearse", "full", "--dry-run")[0] == 2
    code, _, err = cli(migrated, "--to-version", str(V8), "--rehearse-url", migrated, "--dry-run")
    assert code == 2 and "--rehearse" in err
    code, _, err = cli(migrated, "--to-version", str(V8), "--rehearse", "schema", "--dry-run",
                       "--rehearse-url", "postgresql://u@h:notaport/db")  # fmt: skip
    assert code == 2 and "port" in err


# -- interruptions, in-process ----------------------------------------------------------------


@pytest.mark.parametrize("when", ["copy", "run"])
@pytest.mark.usefixtures("no_leftovers")
def test_an_interrupt_drops_the_scratch_database(migrated: str, when: str) -> None:
    plan, replan = plan_and_replan(migrated, FIXTURE_MIGRATIONS, V8)
    before = schema_snapshot(migrated)

    def on_progress(line: str) -> None:
        if when == "copy" and line.startswith("rehearsal: copying the schema"):
            assert scratch_databases(migrated)  # created, not yet filled
            raise KeyboardInterrupt

    def on_event(event: str, step: Step, _elapsed: float) -> None:
        if when == "run" and event == "done":
            raise KeyboardInterrupt

    with pytest.raises(RehearsalInterrupted) as err:
        rehearse(migrated, plan, replan, mode="schema", on_progress=on_progress,
                 on_event=on_event)  # fmt: skip
    assert exit_code_of(err.value) == 130
    assert "production was not touched" in err.value.message
    assert "was dropped" in err.value.message
    assert ("during the copy" in err.value.message) == (when == "copy")
    assert schema_snapshot(migrated) == before


# -- status ---------------------------------------------------------------------------------


def test_status_names_a_scratch_database_left_behind(migrated: str, pg_server_url: str) -> None:
    name = scratch_name()
    dead = 2**22 + 12345  # above any pid_max default: no such process
    comment = (
        f"hatchet-schema rehearsal: data copy of database x; pid {dead} on host "
        f"{os.uname().nodename}; started 2026-01-01T00:00:00Z; dropped when it ends"
    )
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        conn.execute(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                sql.Identifier(name), sql.Literal(comment)
            )
        )
    try:
        runner = CliRunner()
        env = {"DATABASE_URL": migrated, "HATCHET_SCHEMA_OFFLINE": "1", "NO_COLOR": "1"}
        args = ["status", "--migrations-dir", str(FIXTURE_MIGRATIONS)]
        result = runner.invoke(app, [*args, "--json"], env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.stderr
        [left] = [x for x in json.loads(result.stdout)["rehearsal_leftovers"] if x["name"] == name]
        assert left["in_progress"] is False and left["comment"] == comment
        result = runner.invoke(app, args, env=env, catch_exceptions=False)
        assert f"{name} ({comment})" in result.stdout
        assert f'DROP DATABASE "{name}"' in result.stdout
    finally:
        drop_databases(pg_server_url, [name])


# -- signals, in a subprocess ---------------------------------------------------------------


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_cli(url: str, directory: Path, *args: str) -> subprocess.Popen[str]:
    argv = [*cli_command(), "downgrade", "--to-version", str(V8), "--migrations-dir",
            str(directory), *args]  # fmt: skip
    return subprocess.Popen(
        argv,
        cwd=REPO_ROOT,
        env=clean_env({"DATABASE_URL": url}),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: the test can kill what it started
        # A test run started in the background inherits SIGINT ignored (as shells do for
        # background jobs); the CLI must see Ctrl-C as an operator's terminal would send it.
        preexec_fn=_default_sigint,
    )


def wait_for(
    proc: subprocess.Popen[str], url: str, query: str, params: tuple[Any, ...] = ()
) -> None:
    """Poll ``query`` on ``url`` (not the database the CLI changes: that would be another session
    there) until it counts something; fail if ``proc`` ends first."""
    deadline = time.monotonic() + 20
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(query, params).fetchone()
            if row and row[0]:
                return
            if proc.poll() is not None:
                out, err = proc.communicate()
                raise AssertionError(f"the CLI ended (exit {proc.returncode}):\n{out}\n{err}")
            time.sleep(0.05)
    raise AssertionError(f"timed out waiting for: {query}")


COPY_WAITING = """
SELECT count(*) FROM pg_stat_activity
 WHERE application_name = 'hatchet-schema rehearsal' AND datname = %s AND wait_event_type = 'Lock'
"""
STEP_RUNNING = """
SELECT count(*) FROM pg_stat_activity
 WHERE datname LIKE 'hatchet\\_schema\\_rehearsal\\_%%' AND query LIKE 'SELECT pg_sleep%%'
"""


@contextmanager
def copy_blocked(url: str) -> Iterator[None]:
    """A session holding ACCESS EXCLUSIVE on a table: pg_dump waits for it, mid-copy."""
    with psycopg.connect(url, application_name="hs-test-locker") as conn:
        conn.execute("LOCK TABLE v1_task IN ACCESS EXCLUSIVE MODE")
        yield
        conn.rollback()


def stop_group(proc: subprocess.Popen[str]) -> None:
    """Kill what the CLI left running (its pg_dump and pg_restore after a SIGKILL)."""
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with suppress(subprocess.TimeoutExpired):
        proc.communicate(timeout=10)


def rehearsal_sessions(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
            ("hatchet-schema rehearsal",),
        ).fetchone()
    return int(row[0]) if row else 0


def dbname(url: str) -> str:
    return str(conninfo_to_dict(url)["dbname"])


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_the_copy_drops_the_scratch_database(
    migrated: str, pg_server_url: str, signum: int
) -> None:
    before = schema_snapshot(migrated)
    with copy_blocked(migrated):
        proc = start_cli(migrated, FIXTURE_MIGRATIONS, "--rehearse", "schema", "--dry-run")
        try:
            wait_for(proc, pg_server_url, COPY_WAITING, (dbname(migrated),))
            assert len(scratch_databases(migrated, proc.pid)) == 1
            proc.send_signal(signum)
            _out, err = proc.communicate(timeout=30)
        finally:
            stop_group(proc)
    assert proc.returncode == 128 + signum, err
    assert "during the copy" in err and "production was not touched" in err
    assert "was dropped" in err and "Traceback" not in err
    assert scratch_databases(migrated, proc.pid) == []
    assert rehearsal_sessions(migrated) == 0  # pg_dump and pg_restore were stopped
    assert schema_snapshot(migrated) == before


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_the_rehearsal_steps_drops_the_scratch_database(
    database_url: str, pg_server_url: str, tmp_path: Path, signum: int
) -> None:
    directory = slow_migrations(tmp_path)
    apply_up(database_url, directory)
    before = schema_snapshot(database_url)
    proc = start_cli(database_url, directory, "--rehearse", "schema", "--yes")
    try:
        wait_for(proc, pg_server_url, STEP_RUNNING)  # not on production: a real run follows
        proc.send_signal(signum)
        _out, err = proc.communicate(timeout=30)
    finally:
        stop_group(proc)
    assert proc.returncode == 128 + signum, err
    assert "while the plan ran on the copy" in err and "was dropped" in err
    assert "Traceback" not in err
    assert scratch_databases(database_url, proc.pid) == []
    assert schema_snapshot(database_url) == before  # the real run never started


@pytest.mark.parametrize("when", ["copy", "run"])
def test_after_sigkill_status_names_the_scratch_database(
    database_url: str, pg_server_url: str, tmp_path: Path, when: str
) -> None:
    directory = slow_migrations(tmp_path)
    apply_up(database_url, directory)
    left: list[str] = []
    try:
        with ExitStack() as stack:
            if when == "copy":
                stack.enter_context(copy_blocked(database_url))
            proc = start_cli(database_url, directory, "--rehearse", "schema", "--dry-run")
            stack.callback(stop_group, proc)
            if when == "copy":
                wait_for(proc, pg_server_url, COPY_WAITING, (dbname(database_url),))
            else:
                wait_for(proc, pg_server_url, STEP_RUNNING)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        left = scratch_databases(database_url, proc.pid)
        assert len(left) == 1
        result = CliRunner().invoke(
            app,
            ["status", "--migrations-dir", str(directory), "--json"],
            env={"DATABASE_URL": database_url, "HATCHET_SCHEMA_OFFLINE": "1"},
            catch_exceptions=False,
        )
        assert result.exit_code == 0, result.stderr
        found = {x["name"]: x for x in json.loads(result.stdout)["rehearsal_leftovers"]}
        assert found[left[0]]["in_progress"] is False  # its process is gone
        assert f"copy of database {dbname(database_url)}" in found[left[0]]["comment"]
        assert f"pid {proc.pid} on host {socket.gethostname()}" in found[left[0]]["comment"]
    finally:
        drop_databases(database_url, left)

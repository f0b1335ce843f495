"""run_plan against real PostgreSQL: schema objects and the version table after each downgrade."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import psycopg
import pytest

from cli import exit_code_of
from migrator.database import connect
from migrator.errors import LockError, MigratorError, StepFailedError
from migrator.lock import GOOSE_LOCK_IDS, lock_holders
from migrator.plan import Plan, Step
from migrator.planner import build_plan
from migrator.profile import Catalog
from migrator.runner import LockWait, Replan, run_plan
from migrator.sources import MigrationFile, load_directory
from migrator.versions import VersionRow, read_version_rows
from tests.goose_up import (
    FIXTURE_MIGRATIONS,
    apply_up,
    migrations_with,
    relation_names,
    schema_snapshot,
    version_ids,
)

V0, V1, V2, V3, V4, V5, V6, GO7, V8, V9, V10, V11, V12, V13 = (
    20250311000000, 20250318101500, 20250325120000, 20250402090000, 20250409140000,
    20250416080000, 20250423110000, 20250430000000, 20250507150000, 20250514120000,
    20250521090000, 20250528100000, 20250604130000, 20250611170000,
)  # fmt: skip
BROKEN_TX = "20250618090000_v1_0_14_drop_type_first.sql"
BROKEN_NOTX = "20250625090000_v1_0_15_notx_second_fails.sql"


def plan_for(url: str, migrations: Mapping[int, MigrationFile], target: int) -> Plan:
    with connect(url, read_only=True) as conn:
        return build_plan(read_version_rows(conn), migrations, target)


def replanner(migrations: Mapping[int, MigrationFile], plan: Plan) -> Replan:
    """What the CLI hands run_plan: the same plan inputs, rebuilt from the rows as they are."""

    def replan(rows: Sequence[VersionRow], catalog: Catalog) -> Plan:
        return build_plan(rows, migrations, plan.to_version, catalog=catalog)

    return replan


def downgrade(url: str, migrations: Mapping[int, MigrationFile], target: int) -> int:
    plan = plan_for(url, migrations, target)
    return run_plan(url, plan, replanner(migrations, plan), lock_timeout=2).final_version


def columns(url: str, table: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND table_name = %s ORDER BY ordinal_position",
            (table,),
        ).fetchall()
    return [c for (c,) in rows]


def enum_labels(url: str, type_name: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid "
            "WHERE t.typname = %s ORDER BY e.enumsortorder",
            (type_name,),
        ).fetchall()
    return [label for (label,) in rows]


def exists(url: str, query: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute(query).fetchone()
    return bool(row and row[0])


def test_down_to_several_targets_in_turn(database_url: str) -> None:
    migrations = load_directory(FIXTURE_MIGRATIONS)
    apply_up(database_url, FIXTURE_MIGRATIONS)
    everything = relation_names(database_url)
    assert {"v1_match", "v1_durable_sleep", "v1_task_view", "v1_runs_olap_queued"} <= everything

    assert downgrade(database_url, migrations, V11) == V11
    names = relation_names(database_url)
    assert "v1_match" not in names and "v1_durable_sleep" not in names
    assert "v1_task_view" in names
    assert enum_labels(database_url, "v1_match_kind") == []
    assert version_ids(database_url) == [0, V0, V1, V2, V3, V4, V5, V6, GO7, V8, V9, V10, V11]

    # Between two versions: everything above the target goes, down to the Go migration.
    assert downgrade(database_url, migrations, GO7 + 1) == GO7
    names = relation_names(database_url)
    assert "v1_task_view" not in names
    assert "v1_lease" in names  # v1_0_10 has no Down: its table stays, its row goes
    assert "v1_log_line_tenant_id_idx" not in names  # NO TRANSACTION, DROP INDEX CONCURRENTLY
    assert not {"v1_runs_olap", "v1_runs_olap_queued", "v1_runs_olap_running"} & names
    assert "v1_go_made" in names
    assert version_ids(database_url) == [0, V0, V1, V2, V3, V4, V5, V6, GO7]

    # Nothing to do: reported, nothing changes.
    before = schema_snapshot(database_url)
    assert downgrade(database_url, migrations, GO7) == GO7
    assert schema_snapshot(database_url) == before


def test_down_to_the_first_release_and_to_zero(database_url: str) -> None:
    migrations = load_directory(FIXTURE_MIGRATIONS)
    apply_up(database_url, FIXTURE_MIGRATIONS, to_version=V6)
    assert "retry_count" in columns(database_url, "v1_task")
    events: list[tuple[str, int]] = []

    plan = plan_for(database_url, migrations, V0)
    result = run_plan(
        database_url,
        plan,
        replanner(migrations, plan),
        on_event=lambda e, step, _t: events.append((e, step.version)),
    )
    assert result.final_version == V0
    assert [s.status for s in result.steps] == ["done"] * 6
    assert events == [(e, v) for v in (V6, V5, V4, V3, V2, V1) for e in ("start", "done")]
    names = relation_names(database_url)
    assert not {"v1_queue_item", "v1_log_line", "ix_v1_task_tenant_id"} & names
    assert {"tenant", "v1_task"} <= names
    assert columns(database_url, "v1_task") == ["id", "tenant_id", "status", "updated_at"]
    assert not exists(database_url, "SELECT count(*) FROM pg_proc WHERE proname = 'v1_task_touch'")
    assert not exists(database_url, "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal")
    # PostgreSQL cannot drop an enum value: the type is recreated without the label the
    # reverted up added (its Down is empty), so a later re-upgrade can add it again.
    assert enum_labels(database_url, "v1_task_status") == ["QUEUED", "RUNNING"]
    assert version_ids(database_url) == [0, V0]

    # Target 0 reverts the first migration too; it has no Down, so only its row goes.
    assert downgrade(database_url, migrations, 0) == 0
    assert version_ids(database_url) == [0]
    assert {"tenant", "v1_task"} <= relation_names(database_url)


def test_old_serial_version_table(database_url: str) -> None:
    migrations = load_directory(FIXTURE_MIGRATIONS)
    apply_up(database_url, FIXTURE_MIGRATIONS, to_version=V2, serial_table=True)
    assert downgrade(database_url, migrations, V0) == V0
    assert version_ids(database_url) == [0, V0]
    assert "v1_log_line" not in relation_names(database_url)


def test_blocked_plan_is_refused_before_touching_anything(database_url: str) -> None:
    migrations = load_directory(FIXTURE_MIGRATIONS)
    apply_up(database_url, FIXTURE_MIGRATIONS)
    before = schema_snapshot(database_url)
    plan = plan_for(database_url, migrations, V6)  # crosses the Go migration
    with pytest.raises(MigratorError) as err:
        run_plan(database_url, plan, replanner(migrations, plan), lock_timeout=1)
    assert exit_code_of(err.value) == 3
    assert "20250430000000_v1_0_7.go" in str(err.value)
    assert schema_snapshot(database_url) == before


def test_failing_statement_rolls_its_step_back_and_keeps_earlier_steps(
    database_url: str, tmp_path: Path
) -> None:
    extra = {
        "20250720000000_v1_0_18_extra.sql": "-- +goose Up\nCREATE TABLE v1_extra (id INT);\n"
        "-- +goose Down\nDROP TABLE v1_extra;\n"
    }
    directory = migrations_with(tmp_path, BROKEN_TX, extra=extra)
    migrations = load_directory(directory)
    apply_up(database_url, directory)
    assert {"v1_extra", "v1_idempotency_seen"} <= relation_names(database_url)

    plan = plan_for(database_url, migrations, V13)
    events: list[tuple[str, int]] = []
    with pytest.raises(StepFailedError) as err:
        run_plan(database_url, plan, replanner(migrations, plan),
                 on_event=lambda e, step, _t: events.append((e, step.version)))  # fmt: skip
    message = str(err.value)
    assert exit_code_of(err.value) == 1
    assert BROKEN_TX in message
    assert "statement 2 of 3" in message
    assert "cannot drop type v1_idempotency_method" in message
    assert "rolled back" in message
    assert "still in goose_db_version" in message
    assert "20250720000000_v1_0_18_extra.sql" in message  # already reverted, committed

    names = relation_names(database_url)
    assert "v1_extra" not in names  # the earlier step stays committed
    assert "v1_idempotency_seen" in names  # statement 1 of the failed step was rolled back
    assert version_ids(database_url)[-1] == 20250618090000
    assert 20250720000000 not in version_ids(database_url)
    assert [s.status for s in err.value.steps] == ["done", "failed"]
    assert [s.status for s in plan.steps] == ["ready", "ready"]  # the caller's plan is as it was
    assert err.value.stop.final_version == 20250618090000
    assert err.value.stop.step == 20250618090000 and err.value.stop.statement == 2
    assert events == [
        ("start", 20250720000000), ("done", 20250720000000),
        ("start", 20250618090000), ("failed", 20250618090000),
    ]  # fmt: skip


def test_failing_no_transaction_step_leaves_earlier_statements_applied(
    database_url: str, tmp_path: Path
) -> None:
    directory = migrations_with(tmp_path, BROKEN_TX, BROKEN_NOTX)
    migrations = load_directory(directory)
    apply_up(database_url, directory)
    assert "v1_notx_item_tenant_id_idx" in relation_names(database_url)

    plan = plan_for(database_url, migrations, V13)
    with pytest.raises(StepFailedError) as err:
        run_plan(database_url, plan, replanner(migrations, plan))
    message = str(err.value)
    assert BROKEN_NOTX in message
    assert "statement 2 of 3" in message
    assert "DROP TABLE v1_notx_never_created" in message
    assert 'v1_notx_never_created" does not exist' in message
    assert "already applied" in message
    assert "No step was reverted" in message

    names = relation_names(database_url)
    assert "v1_notx_item_tenant_id_idx" not in names  # statement 1 ran and stays
    assert "v1_notx_item" in names  # statement 3 never ran
    assert version_ids(database_url)[-1] == 20250625090000  # its row is still there
    assert [s.status for s in err.value.steps] == ["failed", "not run"]
    assert err.value.stop.applied == (1,)


def test_plan_made_before_the_database_changed_is_refused(database_url: str) -> None:
    migrations = load_directory(FIXTURE_MIGRATIONS)
    apply_up(database_url, FIXTURE_MIGRATIONS, to_version=V5)
    plan = plan_for(database_url, migrations, V1)
    apply_up(database_url, FIXTURE_MIGRATIONS, to_version=V6)  # someone migrated up meanwhile
    before = schema_snapshot(database_url)
    with pytest.raises(MigratorError) as err:
        run_plan(database_url, plan, replanner(migrations, plan), lock_timeout=1)
    assert "changed since the plan was made" in str(err.value)
    assert schema_snapshot(database_url) == before


def test_plan_with_different_statements_is_refused(database_url: str) -> None:
    migrations = load_directory(FIXTURE_MIGRATIONS)
    apply_up(database_url, FIXTURE_MIGRATIONS, to_version=V2)
    plan = plan_for(database_url, migrations, V0)
    plan.steps[0] = Step(**{**plan.steps[0].__dict__, "statements": ["DROP TABLE tenant;"]})
    with pytest.raises(MigratorError, match="changed since the plan was made"):
        run_plan(database_url, plan, replanner(migrations, plan), lock_timeout=1)
    assert "tenant" in relation_names(database_url)


def test_another_connected_session_refuses_the_run(database_url: str) -> None:
    migrations = load_directory(FIXTURE_MIGRATIONS)
    apply_up(database_url, FIXTURE_MIGRATIONS, to_version=V2)
    plan = plan_for(database_url, migrations, V0)
    before = schema_snapshot(database_url)
    with psycopg.connect(database_url, application_name="hatchet-engine") as engine:
        engine_pid = engine.info.backend_pid
        with pytest.raises(LockError) as err:
            run_plan(database_url, plan, replanner(migrations, plan), lock_timeout=1)
        assert exit_code_of(err.value) == 4
        assert str(engine_pid) in str(err.value)
        assert "hatchet-engine" in str(err.value)
        assert schema_snapshot(database_url) == before
        assert plan.steps[0].status == "ready"

        fresh = plan_for(database_url, migrations, V0)
        result = run_plan(
            database_url, fresh, replanner(migrations, fresh), ignore_active_sessions=True
        )
    assert result.final_version == V0


def test_goose_lock_held_elsewhere_refuses_the_run(database_url: str) -> None:
    migrations = load_directory(FIXTURE_MIGRATIONS)
    apply_up(database_url, FIXTURE_MIGRATIONS, to_version=V2)
    plan = plan_for(database_url, migrations, V0)
    before = schema_snapshot(database_url)
    with psycopg.connect(database_url, autocommit=True) as migrate:
        migrate.execute("SELECT pg_advisory_lock(%s)", (GOOSE_LOCK_IDS[1],))
        with pytest.raises(LockError) as err:
            run_plan(database_url, plan, replanner(migrations, plan), lock_timeout=0.3,
                     ignore_active_sessions=True)  # fmt: skip
    assert exit_code_of(err.value) == 4
    assert "lock" in str(err.value)
    assert schema_snapshot(database_url) == before


def test_statements_with_percent_signs_and_several_commands_run_verbatim(
    database_url: str, tmp_path: Path
) -> None:
    extra = {
        "20250720000000_v1_0_18_percent.sql": "-- +goose Up\n"
        "CREATE TABLE v1_pct (v TEXT);\n"
        "-- +goose Down\n"
        "INSERT INTO v1_pct VALUES ('100%s'); INSERT INTO v1_pct VALUES ('%%');\n"
        "CREATE TABLE v1_pct_copy AS SELECT * FROM v1_pct;\n"
        "DROP TABLE v1_pct;\n"
    }
    directory = migrations_with(tmp_path, extra=extra)
    migrations = load_directory(directory)
    apply_up(database_url, directory)
    assert downgrade(database_url, migrations, V13) == V13
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT v FROM v1_pct_copy ORDER BY v").fetchall()
    assert rows == [("%%",), ("100%s",)]


# -- the goose lock must stay held for the whole run ---------------------------------------------


def terminate_lock_session(url: str) -> int:
    """Terminate the backend holding goose's lock (as an operator or idle_session_timeout would)
    and wait until it is gone; returns its pid."""
    with psycopg.connect(url, autocommit=True) as admin:
        [pid] = lock_holders(admin, GOOSE_LOCK_IDS[0])
        admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
    return pid


def test_lost_lock_stops_the_run_before_the_next_step_with_exit_4(database_url: str) -> None:
    migrations = load_directory(FIXTURE_MIGRATIONS)
    apply_up(database_url, FIXTURE_MIGRATIONS, to_version=V3)
    plan = plan_for(database_url, migrations, V0)
    assert [s.version for s in plan.steps] == [V3, V2, V1]
    killed: list[int] = []

    def on_event(event: str, step: Step, _elapsed: float) -> None:
        if event == "done" and step.version == V3:
            killed.append(terminate_lock_session(database_url))

    with pytest.raises(LockError) as err:
        run_plan(database_url, plan, replanner(migrations, plan), on_event=on_event)
    message = str(err.value)
    assert exit_code_of(err.value) == 4
    assert killed and f"pid {killed[0]}" in message
    assert "lock was lost" in message
    assert f"at version {V2}" in message  # where the database is
    assert "20250402090000_v1_0_3.sql" in message  # the step already reverted
    assert "1 of 3" in message
    assert [s.status for s in err.value.steps] == ["done", "not run", "not run"]
    assert err.value.stop.final_version == V2
    assert version_ids(database_url)[-1] == V2  # step 2 did not run
    assert exists(database_url, "SELECT count(*) FROM pg_proc WHERE proname = 'v1_task_touch'")


# -- DDL lock waits: lock_timeout, retries with backoff, the blocking session named ------------

LOCKED_TABLE = "hs_locked"


def lock_wait_migrations(tmp_path: Path) -> Path:
    """Three small migrations: a base table, a table a test keeps locked, and a NO TRANSACTION
    file whose down drops a table and then a second locked one."""
    directory = tmp_path / "lockwait"
    directory.mkdir()
    files = {
        "20250101000000_base.sql": "-- +goose Up\nCREATE TABLE hs_base (id INT);\n"
        "-- +goose Down\nDROP TABLE hs_base;\n",
        "20250102000000_locked.sql": f"-- +goose Up\nCREATE TABLE {LOCKED_TABLE} (id INT);\n"
        f"-- +goose Down\nDROP TABLE {LOCKED_TABLE};\n",
        "20250103000000_notx.sql": "-- +goose NO TRANSACTION\n-- +goose Up\n"
        "CREATE TABLE hs_first (id INT);\nCREATE TABLE hs_locked2 (id INT);\n"
        "-- +goose Down\nDROP TABLE hs_first;\nDROP TABLE hs_locked2;\n",
    }
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


class FakeSleep:
    """Records the backoff delays instead of sleeping; runs ``then`` at the n-th call."""

    def __init__(self, then: dict[int, Callable[[], None]] | None = None) -> None:
        self.delays: list[float] = []
        self.then = then or {}

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        action = self.then.get(len(self.delays))
        if action:
            action()


def hold_access_share(url: str, table: str) -> psycopg.Connection:
    """A session with an open transaction that has read ``table`` (ACCESS SHARE until commit)."""
    holder = psycopg.connect(url, application_name="hatchet-api")
    holder.execute(f"SELECT count(*) FROM {table}")
    return holder


def test_ddl_lock_wait_is_retried_then_fails_naming_the_blocking_session(
    database_url: str, tmp_path: Path
) -> None:
    directory = lock_wait_migrations(tmp_path)
    migrations = load_directory(directory)
    apply_up(database_url, directory, to_version=20250102000000)
    plan = plan_for(database_url, migrations, 20250101000000)
    before = schema_snapshot(database_url)
    waits: list[LockWait] = []
    sleep = FakeSleep()
    with hold_access_share(database_url, LOCKED_TABLE) as holder:
        holder_pid = holder.info.backend_pid
        with pytest.raises(StepFailedError) as err:
            run_plan(database_url, plan, replanner(migrations, plan),
                     ignore_active_sessions=True, ddl_lock_timeout=0.2, ddl_lock_retries=2,
                     sleep=sleep, on_wait=waits.append)  # fmt: skip
        holder.rollback()
    message = str(err.value)
    assert exit_code_of(err.value) == 1
    assert f"pid {holder_pid}" in message
    assert "hatchet-api" in message
    assert LOCKED_TABLE in message
    assert "55P03" in message
    assert "3 tries" in message
    assert len(sleep.delays) == 2 and sleep.delays[0] < sleep.delays[1]  # backoff
    assert [w.attempt for w in waits] == [1, 2]
    for wait in waits:
        assert [b.pid for b in wait.blockers] == [holder_pid]
        assert wait.target is not None and LOCKED_TABLE in wait.target
        assert wait.mode == "AccessExclusiveLock"
        text = wait.describe()
        assert f"pid {holder_pid}" in text and "idle in transaction" in text
        assert LOCKED_TABLE in text
    assert schema_snapshot(database_url) == before  # nothing applied
    assert [s.status for s in err.value.steps] == ["failed"]


def test_ddl_lock_released_mid_retry_lets_the_step_run(database_url: str, tmp_path: Path) -> None:
    directory = lock_wait_migrations(tmp_path)
    migrations = load_directory(directory)
    apply_up(database_url, directory, to_version=20250102000000)
    plan = plan_for(database_url, migrations, 20250101000000)
    waits: list[LockWait] = []
    with hold_access_share(database_url, LOCKED_TABLE) as holder:
        holder_pid = holder.info.backend_pid
        sleep = FakeSleep(then={1: holder.commit})  # the blocker finishes during the backoff
        result = run_plan(database_url, plan, replanner(migrations, plan),
                          ignore_active_sessions=True, ddl_lock_timeout=0.2, ddl_lock_retries=2,
                          sleep=sleep, on_wait=waits.append)  # fmt: skip
    assert result.final_version == 20250101000000
    assert len(waits) == 1 and len(sleep.delays) == 1
    assert [w.blockers[0].pid for w in waits] == [holder_pid]
    assert LOCKED_TABLE not in relation_names(database_url)
    assert [s.status for s in result.steps] == ["done"]


def test_no_transaction_statement_is_retried_from_where_it_waited(
    database_url: str, tmp_path: Path
) -> None:
    directory = lock_wait_migrations(tmp_path)
    migrations = load_directory(directory)
    apply_up(database_url, directory)
    plan = plan_for(database_url, migrations, 20250102000000)
    waits: list[LockWait] = []
    with hold_access_share(database_url, "hs_locked2") as holder:
        sleep = FakeSleep(then={1: holder.commit})
        result = run_plan(database_url, plan, replanner(migrations, plan),
                          ignore_active_sessions=True, ddl_lock_timeout=0.2, ddl_lock_retries=1,
                          sleep=sleep, on_wait=waits.append)  # fmt: skip
    # Statement 1 (DROP TABLE hs_first) ran once; only statement 2 was retried.
    assert result.final_version == 20250102000000
    assert [w.statement for w in waits] == [2]
    names = relation_names(database_url)
    assert not {"hs_first", "hs_locked2"} & names


def test_statement_timeout_applies_to_each_statement(database_url: str, tmp_path: Path) -> None:
    extra = {
        "20250720000000_v1_0_18_slow.sql": "-- +goose Up\nSELECT 1;\n"
        "-- +goose Down\nSELECT pg_sleep(5);\n"
    }
    directory = migrations_with(tmp_path, extra=extra)
    migrations = load_directory(directory)
    apply_up(database_url, directory)
    plan = plan_for(database_url, migrations, V13)
    with pytest.raises(StepFailedError) as err:
        run_plan(database_url, plan, replanner(migrations, plan), statement_timeout=0.2)
    assert "statement timeout" in str(err.value)
    assert version_ids(database_url)[-1] == 20250720000000


def test_a_down_that_deallocates_prepared_statements_does_not_stop_the_run(
    database_url: str, tmp_path: Path
) -> None:
    """The per-step version read is a prepared statement of the run's session; a down that runs
    DEALLOCATE ALL (or DISCARD PLANS) must not break the next step's read."""
    extra = {
        "20250720000000_v1_0_18_a.sql": "-- +goose Up\nCREATE TABLE v1_a (id INT);\n"
        "-- +goose Down\nDROP TABLE v1_a;\n",
        "20250721000000_v1_0_19_dealloc.sql": "-- +goose Up\nSELECT 1;\n"
        "-- +goose Down\nDEALLOCATE ALL;\n",
    }
    directory = migrations_with(tmp_path, extra=extra)
    migrations = load_directory(directory)
    apply_up(database_url, directory)
    assert downgrade(database_url, migrations, V13) == V13
    assert "v1_a" not in relation_names(database_url)

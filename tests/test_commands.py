"""The command layer without typer or GitHub: prepare a downgrade (read-only), execute it, and
get a failure back as a value that says where the database is."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrator.commands import (
    DirectorySupplier,
    PreparedDowngrade,
    Target,
    execute_downgrade,
    prepare_downgrade,
    read_status,
)
from migrator.errors import StepFailedError
from migrator.hatchet.profile import PROFILE
from migrator.planner import PlanOptions
from tests.goose_up import (
    FIXTURE_MIGRATIONS,
    FIXTURE_NEWEST,
    apply_up,
    migrations_with,
    schema_snapshot,
    version_ids,
)

TARGET = 20250528100000
OPTIONS = {"lock_timeout": 5.0}


def prepare(url: str, target: int, directory: Path = FIXTURE_MIGRATIONS) -> PreparedDowngrade:
    return prepare_downgrade(
        url, Target(target), DirectorySupplier(directory), profile=PROFILE, options=PlanOptions()
    )


def test_prepare_reads_and_plans_without_changing_anything(migrated: str) -> None:
    before = schema_snapshot(migrated)
    prepared = prepare(migrated, TARGET)
    assert schema_snapshot(migrated) == before
    assert prepared.current == FIXTURE_NEWEST and not prepared.nothing_to_do
    assert prepared.plan is not None
    assert prepared.plan.from_version == FIXTURE_NEWEST and prepared.plan.to_version == TARGET
    assert all(s.version > TARGET for s in prepared.plan.steps)
    assert prepared.header()["source"] == str(FIXTURE_MIGRATIONS)
    assert prepared.header()["sessions"] == "no other client sessions"


def test_a_target_at_or_above_the_current_version_is_nothing_to_do(migrated: str) -> None:
    prepared = prepare(migrated, FIXTURE_NEWEST)
    assert prepared.nothing_to_do and prepared.plan is None


def test_execute_runs_the_prepared_plan_and_leaves_it_as_reviewed(migrated: str) -> None:
    prepared = prepare(migrated, TARGET)
    assert prepared.plan is not None
    result = execute_downgrade(prepared, run_options=OPTIONS)
    assert result.final_version == TARGET == version_ids(migrated)[-1]
    assert {s.status for s in result.steps} == {"done"}
    assert {s.status for s in prepared.plan.steps} == {"ready"}  # what the operator approved
    assert read_status(migrated).current == TARGET


def test_a_failed_step_comes_back_as_a_value_with_where_the_database_is(
    database_url: str, tmp_path: Path
) -> None:
    directory = migrations_with(tmp_path, "20250618090000_v1_0_14_drop_type_first.sql")
    apply_up(database_url, directory)
    prepared = prepare(database_url, 20250604130000, directory)
    with pytest.raises(StepFailedError) as err:
        execute_downgrade(prepared, run_options=OPTIONS)
    stop = err.value.stop
    assert (stop.final_version, stop.step, stop.statement) == (20250618090000,) * 2 + (2,)
    assert err.value.steps[0].status == "failed"


def test_status_reads_version_sessions_and_no_stopped_run(migrated: str) -> None:
    status = read_status(migrated)
    assert status.current == FIXTURE_NEWEST
    assert FIXTURE_NEWEST in status.applied and 0 not in status.applied
    assert status.sessions == [] and status.interrupted.versions() == []


def test_a_killed_runs_session_is_waited_for_then_named(migrated: str) -> None:
    """A session of this tool (a run that was killed) is not "a Hatchet engine": the run waits
    for it; one that stays is named with how to end it, and nothing changes."""
    import threading

    import psycopg

    from migrator.errors import LockError

    prepared = prepare(migrated, TARGET)
    before = schema_snapshot(migrated)
    with psycopg.connect(migrated, application_name="hatchet-schema") as stuck:
        with pytest.raises(LockError) as err:
            execute_downgrade(prepared, run_options={**OPTIONS, "leftover_wait": 0.3})
        assert f"pg_terminate_backend({stuck.info.backend_pid})" in err.value.message
        assert "left by a run that was killed" in err.value.message
    assert schema_snapshot(migrated) == before

    leaving = psycopg.connect(migrated, application_name="hatchet-schema")
    threading.Timer(0.5, leaving.close).start()
    notes: list[str] = []
    result = execute_downgrade(prepared, run_options=OPTIONS, on_notice=notes.append)
    assert result.final_version == TARGET
    assert any("not a Hatchet engine" in n for n in notes), notes

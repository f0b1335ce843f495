"""Hatchet's own patches and data fixes (``migrator/hatchet/``), each on a short fake of the
upstream migration it was written for.

No test reads Hatchet's repository: every fake reproduces only the shape that matters (how
upstream's down splits into statements, which command in a statement is wrong, which rows the
up rejects). The fakes are given upstream's blob SHAs, so the planner picks the real profile's
patch for them exactly as it does for upstream's files; where behaviour matters the plan runs
on real PostgreSQL with the real runner.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path

import psycopg
import pytest

from migrator.catalog import ConnectionCatalog
from migrator.database import connect
from migrator.hatchet.profile import PROFILE as HATCHET
from migrator.plan import Plan
from migrator.planner import PlanOptions, build_plan
from migrator.profile import Catalog, EmptyCatalog, Patch, PatchContext
from migrator.runner import run_plan
from migrator.sources import MigrationFile, load_directory
from migrator.sqlparser import parse_sql
from migrator.versions import VersionRow, read_version_rows
from tests.goose_up import apply_up


def plan_and_run(
    url: str,
    migrations: Mapping[int, MigrationFile],
    target: int,
    options: PlanOptions | None = None,
) -> Plan:
    def replan(rows: Sequence[VersionRow], catalog: Catalog) -> Plan:
        return build_plan(
            rows, migrations, target, profile=HATCHET, catalog=catalog, options=options
        )

    with connect(url, read_only=True) as conn:
        plan = replan(read_version_rows(conn), ConnectionCatalog(conn))
    run_plan(url, plan, replan, lock_timeout=2)
    return plan


def write(directory: Path, files: Mapping[str, str]) -> Path:
    directory.mkdir()
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def as_upstream(
    migrations: Mapping[int, MigrationFile], shas: Mapping[int, str]
) -> dict[int, MigrationFile]:
    """The fakes with the blob SHAs of the upstream files they stand for."""
    return {
        v: dataclasses.replace(m, blob_sha=shas.get(v, m.blob_sha)) for v, m in migrations.items()
    }


def prosrc(url: str, function: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT prosrc FROM pg_proc WHERE proname = %s", [function]).fetchone()
    assert row is not None, f"{function}() does not exist"
    return str(row[0])


def patch(version: int, sha: str) -> Patch:
    found = HATCHET.patch_for(version, sha)
    assert found is not None, f"no Hatchet patch for {version} at {sha}"
    return found


def down_statements(text: str) -> list[str]:
    return list(parse_sql(text.encode(), filename="fake", direction="down").statements)


# -- v1_0_133 (batching): v1_task_update_function() restored from v1_0_106 ------------------

V1_0_106 = 20260509015727
V1_0_133 = 20260722000000
V1_0_133_OLD_ID = 20260718000000  # the same file under its v0.98.0/v0.98.1 id
V1_0_133_SHAS = (
    "78612e541e98997e401c675eb6f8be2030db4f82",
    "a9777932fa1ec90be694b30265a94523593986fb",
    "76f60e7810bf6cd182c689b30c5104ff16837975",
    "c5dbc08a9571ce5778ce10240569dd2db079fab6",
)

FAKE_V1_0_106 = """\
-- +goose Up
-- +goose StatementBegin
CREATE TABLE v1_queue_item (task_id bigint NOT NULL);

CREATE OR REPLACE FUNCTION v1_task_insert_function()
RETURNS TRIGGER AS $$
BEGIN
    -- insert, as of v1_0_106
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION v1_task_update_function()
RETURNS TRIGGER AS
$$
BEGIN
    -- as of v1_0_106
    INSERT INTO v1_queue_item (task_id)
    SELECT nt.id FROM new_table nt;
    RETURN NULL;
END;
$$
LANGUAGE plpgsql;

CREATE TABLE v1_task (id bigint NOT NULL);

CREATE TRIGGER v1_task_update_trigger
AFTER UPDATE ON v1_task
REFERENCING NEW TABLE AS new_table
FOR EACH STATEMENT
EXECUTE FUNCTION v1_task_update_function();
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
SELECT 1;
-- +goose StatementEnd
"""

# NO TRANSACTION, the columns dropped one statement at a time, then one block re-creating
# several trigger functions "as of v1_0_106", one of them still with batch_key.
FAKE_V1_0_133 = """\
-- +goose Up
-- +goose NO TRANSACTION
-- +goose StatementBegin
ALTER TABLE v1_task ADD COLUMN batch_key TEXT;
-- +goose StatementEnd

-- +goose StatementBegin
ALTER TABLE v1_queue_item ADD COLUMN batch_key TEXT;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION v1_task_update_function()
RETURNS TRIGGER AS
$$
BEGIN
    INSERT INTO v1_queue_item (task_id, batch_key)
    SELECT nt.id, nt.batch_key FROM new_table nt;
    RETURN NULL;
END;
$$
LANGUAGE plpgsql;
-- +goose StatementEnd

-- +goose Down
-- +goose NO TRANSACTION
-- +goose StatementBegin
ALTER TABLE v1_task
    DROP COLUMN IF EXISTS batch_key;
-- +goose StatementEnd

-- +goose StatementBegin
ALTER TABLE v1_queue_item
    DROP COLUMN IF EXISTS batch_key;
-- +goose StatementEnd

-- Restore trigger functions to pre-batching versions (from v1_0_106 baseline).
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION v1_task_insert_function()
RETURNS TRIGGER AS $$
BEGIN
    -- insert, as of v1_0_106
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION v1_task_update_function()
RETURNS TRIGGER AS
$$
BEGIN
    INSERT INTO v1_queue_item (task_id, batch_key)
    SELECT nt.id, nt.batch_key FROM new_table nt;
    RETURN NULL;
END;
$$
LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION v1_retry_queue_item_delete_function()
RETURNS TRIGGER AS
$$
BEGIN
    RETURN NULL;
END;
$$
LANGUAGE plpgsql;
-- +goose StatementEnd
"""


@pytest.mark.parametrize(
    ("version", "sha"),
    [(V1_0_133, sha) for sha in V1_0_133_SHAS] + [(V1_0_133_OLD_ID, V1_0_133_SHAS[0])],
)
def test_v1_0_133_patch_replaces_only_the_update_function(version: int, sha: str) -> None:
    fix = patch(version, sha)
    assert fix.reads == (V1_0_106,)
    upstream = down_statements(FAKE_V1_0_133)
    patched = fix.build(PatchContext(EmptyCatalog(), upstream, {V1_0_106: FAKE_V1_0_106.encode()}))

    assert len(patched) == len(upstream)
    assert patched[:2] == upstream[:2]
    block = patched[2]
    assert "batch_key" not in block
    assert "-- as of v1_0_106" in block
    # The other functions of the block, and the text around them, are upstream's.
    head, _, _ = upstream[2].partition("CREATE OR REPLACE FUNCTION v1_task_update_function(")
    assert block.startswith(head)
    tail = upstream[2][upstream[2].index("LANGUAGE plpgsql;\n\nCREATE OR REPLACE FUNCTION v1_r") :]
    assert block.endswith(tail)
    assert block.count("CREATE OR REPLACE FUNCTION") == 3


def test_v1_0_133_patch_needs_its_older_file() -> None:
    fix = patch(V1_0_133, V1_0_133_SHAS[-1])
    upstream = down_statements(FAKE_V1_0_133)
    # The planner turns a LookupError into a blocked step.
    with pytest.raises(LookupError, match=str(V1_0_106)):
        fix.build(PatchContext(EmptyCatalog(), upstream, {}))
    # A down without the function gets the definition after its own statements.
    patched = fix.build(
        PatchContext(EmptyCatalog(), upstream[:2], {V1_0_106: FAKE_V1_0_106.encode()})
    )
    assert patched[:2] == upstream[:2]
    assert patched[2].startswith("CREATE OR REPLACE FUNCTION v1_task_update_function()")
    assert "batch_key" not in patched[2]


def test_v1_0_133_down_leaves_a_working_update_trigger(database_url: str, tmp_path: Path) -> None:
    directory = write(
        tmp_path / "m",
        {
            "20260509015727_v1_0_106.sql": FAKE_V1_0_106,
            "20260722000000_batching_consolidated_v1_0_133.sql": FAKE_V1_0_133,
        },
    )
    apply_up(database_url, directory, to_version=V1_0_106)
    restored = prosrc(database_url, "v1_task_update_function")
    apply_up(database_url, directory)
    migrations = as_upstream(load_directory(directory), {V1_0_133: V1_0_133_SHAS[-1]})

    # Upstream's down leaves a trigger function inserting the column it dropped: every
    # UPDATE of v1_task fails on the older release.
    plan_and_run(database_url, migrations, V1_0_106, PlanOptions(no_patches=True))
    assert "batch_key" in prosrc(database_url, "v1_task_update_function")
    with psycopg.connect(database_url) as conn, pytest.raises(psycopg.errors.UndefinedColumn):
        conn.execute("INSERT INTO v1_task VALUES (1)")
        conn.execute("UPDATE v1_task SET id = 2")

    apply_up(database_url, directory)
    plan = plan_and_run(database_url, migrations, V1_0_106)
    [step] = plan.steps
    assert step.patched and not step.transaction
    assert prosrc(database_url, "v1_task_update_function") == restored
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO v1_task VALUES (1)")
        conn.execute("UPDATE v1_task SET id = 2")
        row = conn.execute("SELECT count(*) FROM v1_queue_item").fetchone()
    assert row == (1,)


# -- v1_0_123: after_v1_concurrency_slot_insert_function() restored from v1_0_11 -----------

V1_0_11 = 20250407012633
V1_0_123 = 20260702145450
V1_0_123_SHA = "f16ec97e0eeaf0c71935c5b0301840e7a4e69744"

FAKE_V1_0_11 = """\
-- +goose Up
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION after_v1_concurrency_slot_insert_function()
RETURNS trigger AS $$
BEGIN
    -- If the v1_step_concurrency strategy is not active, we set it to active.
    UPDATE v1_step_concurrency SET is_active = TRUE WHERE is_active = FALSE;

    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION cleanup_workflow_concurrency_slots()
RETURNS void AS $$
BEGIN
END;
$$ LANGUAGE plpgsql;

CREATE TABLE v1_step_concurrency (id bigint, is_active boolean);
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
SELECT 1;
-- +goose StatementEnd
"""

FAKE_V1_0_123 = """\
-- +goose Up
-- +goose StatementBegin
ALTER TABLE v1_step_concurrency ADD COLUMN last_active_at timestamptz;

CREATE OR REPLACE FUNCTION after_v1_concurrency_slot_insert_function()
RETURNS trigger AS $$
BEGIN
    UPDATE v1_step_concurrency SET is_active = TRUE, last_active_at = NOW();
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin

CREATE OR REPLACE FUNCTION after_v1_concurrency_slot_insert_function()
RETURNS trigger AS $$
BEGIN
    UPDATE v1_step_concurrency SET is_active = TRUE WHERE is_active = FALSE;

    RETURN NULL;
END;

$$ LANGUAGE plpgsql;

ALTER TABLE v1_step_concurrency DROP COLUMN last_active_at;

-- +goose StatementEnd
"""


def test_v1_0_123_patch_restores_the_body_with_its_comment(
    database_url: str, tmp_path: Path
) -> None:
    fix = patch(V1_0_123, V1_0_123_SHA)
    assert fix.reads == (V1_0_11,)
    [upstream] = down_statements(FAKE_V1_0_123)
    [patched] = fix.build(
        PatchContext(EmptyCatalog(), [upstream], {V1_0_11: FAKE_V1_0_11.encode()})
    )
    assert "-- If the v1_step_concurrency strategy is not active" in patched
    assert "cleanup_workflow_concurrency_slots" not in patched
    assert patched.endswith("ALTER TABLE v1_step_concurrency DROP COLUMN last_active_at;")

    directory = write(
        tmp_path / "m",
        {"20250407012633_v1_0_11.sql": FAKE_V1_0_11, "20260702145450_v1_0_123.sql": FAKE_V1_0_123},
    )
    apply_up(database_url, directory, to_version=V1_0_11)
    restored = prosrc(database_url, "after_v1_concurrency_slot_insert_function")
    apply_up(database_url, directory)
    migrations = as_upstream(load_directory(directory), {V1_0_123: V1_0_123_SHA})
    [step] = plan_and_run(database_url, migrations, V1_0_11).steps
    assert step.patched and step.transaction
    assert prosrc(database_url, "after_v1_concurrency_slot_insert_function") == restored
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_name = 'v1_step_concurrency' AND column_name = 'last_active_at'"
        ).fetchone()
    assert row == (0,)


# -- v1_0_146 (workflow pausing): paused workflows are unpaused -----------------------------

V1_0_146 = 20260819154845

FAKE_WORKFLOW = """\
-- +goose Up
CREATE TABLE "Workflow" (id integer PRIMARY KEY, "isPaused" boolean NULL DEFAULT false);
"""

# The shape of v1_0_146: three nullable settings tied to "isPaused" by a CHECK; the down drops
# the CHECK and the settings and keeps "isPaused".
FAKE_V1_0_146 = """\
-- +goose Up
-- +goose StatementBegin
CREATE TYPE "WorkflowPauseQueueBehavior" AS ENUM ('QUEUE', 'DROP');

ALTER TABLE "Workflow"
    ADD COLUMN "pausedWorkflowCronRunQueueBehavior" "WorkflowPauseQueueBehavior",
    ADD COLUMN "pausedWorkflowScheduledRunQueueBehavior" "WorkflowPauseQueueBehavior",
    ADD COLUMN "pausedWorkflowQueueTTL" INTERVAL,
    ADD CONSTRAINT "Workflow_PausedWorkflowCheck" CHECK (
        (
            "isPaused" = FALSE
            AND "pausedWorkflowCronRunQueueBehavior" IS NULL
            AND "pausedWorkflowScheduledRunQueueBehavior" IS NULL
            AND "pausedWorkflowQueueTTL" IS NULL
        )
        OR (
            "isPaused" = TRUE
            AND "pausedWorkflowCronRunQueueBehavior" IS NOT NULL
            AND "pausedWorkflowScheduledRunQueueBehavior" IS NOT NULL
            AND "pausedWorkflowQueueTTL" IS NOT NULL
        )
    )
;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
ALTER TABLE "Workflow"
    DROP CONSTRAINT "Workflow_PausedWorkflowCheck",
    DROP COLUMN "pausedWorkflowCronRunQueueBehavior",
    DROP COLUMN "pausedWorkflowScheduledRunQueueBehavior",
    DROP COLUMN "pausedWorkflowQueueTTL"
;

DROP TYPE "WorkflowPauseQueueBehavior";
-- +goose StatementEnd
"""

PAUSED_ROWS = """
INSERT INTO "Workflow" (id, "isPaused", "pausedWorkflowCronRunQueueBehavior",
    "pausedWorkflowScheduledRunQueueBehavior", "pausedWorkflowQueueTTL")
VALUES (1, TRUE, 'QUEUE', 'DROP', '1 hour'), (2, FALSE, NULL, NULL, NULL),
    (3, NULL, NULL, NULL, NULL), (4, TRUE, 'DROP', 'DROP', '5 minutes')
"""


def reapply_v1_0_146(url: str) -> None:
    """v1_0_146's up again, as goose's Up does in the round trip."""
    [up] = parse_sql(FAKE_V1_0_146.encode(), filename="fake", direction="up").statements
    with psycopg.connect(url) as conn:
        conn.execute(up)


@pytest.fixture
def paused(database_url: str, tmp_path: Path) -> tuple[str, dict[int, MigrationFile]]:
    directory = write(
        tmp_path / "m",
        {
            "20260101000000_workflow.sql": FAKE_WORKFLOW,
            "20260819154845_v1_0_146.sql": FAKE_V1_0_146,
        },
    )
    apply_up(database_url, directory)
    with psycopg.connect(database_url) as conn:
        conn.execute(PAUSED_ROWS)
    return database_url, load_directory(directory)


def test_v1_0_146_down_unpauses_paused_workflows_so_the_up_runs_again(
    paused: tuple[str, dict[int, MigrationFile]],
) -> None:
    url, migrations = paused
    [step] = plan_and_run(url, migrations, 20260101000000).steps
    assert step.data_loss == [
        '2 row(s) of "Workflow" where "isPaused": the older release cannot pause workflows '
        "and v1_0_146's up rejects a paused workflow without the pause settings this down "
        "drops; they are unpaused"
    ]
    assert step.statements[0].startswith('UPDATE "Workflow" SET "isPaused" = FALSE')
    with psycopg.connect(url) as conn:
        rows = conn.execute('SELECT id, "isPaused" FROM "Workflow" ORDER BY id').fetchall()
    assert rows == [(1, False), (2, False), (3, None), (4, False)]
    reapply_v1_0_146(url)


def test_v1_0_146_upstream_down_keeps_rows_its_up_rejects(
    paused: tuple[str, dict[int, MigrationFile]],
) -> None:
    url, migrations = paused
    [step] = plan_and_run(url, migrations, 20260101000000, PlanOptions(no_patches=True)).steps
    assert not step.data_loss
    with pytest.raises(psycopg.errors.CheckViolation, match="Workflow_PausedWorkflowCheck"):
        reapply_v1_0_146(url)


def test_v1_0_146_data_fix_finds_nothing_without_paused_workflows(
    paused: tuple[str, dict[int, MigrationFile]],
) -> None:
    url, migrations = paused
    with psycopg.connect(url) as conn:
        conn.execute('DELETE FROM "Workflow" WHERE "isPaused"')
    [step] = plan_and_run(url, migrations, 20260101000000).steps
    assert not step.data_loss
    assert not any(s.startswith("UPDATE") for s in step.statements)
    reapply_v1_0_146(url)

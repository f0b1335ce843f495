"""The reverse of Hatchet's OLAP reshape (``olap_reshape``), on real PostgreSQL.

A small schema in Hatchet's format, written here (not Hatchet's SQL): the older migrations the
patch reads (``v1_0_0``, ``v1_0_9``, ``v1_0_53``, ``v1_0_62``, ``v1_0_89``, ``v1_0_97``) build
``v1_runs_olap``, ``v1_tasks_olap`` and ``v1_dags_olap`` by day, then by status; stand-ins for
``v1_0_99`` and ``v1_0_100`` build the day-only ``_new`` copies and swap them in. The patch's
statements, then ``v1_0_99``'s port and patch, must give back the old catalog with every row a
status partition can hold, and the ups must run again.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from migrator.analysis import data_loss_warnings
from migrator.catalog import ConnectionCatalog
from migrator.hatchet import olap_reshape
from migrator.hatchet.go_ports import PATCHED_PORTS, PORTS, V1_0_99
from migrator.hatchet.olap_reshape import OLAP_PATCHES, READS, SHAS_V1_0_100, V1_0_100
from migrator.hatchet.profile import PROFILE
from migrator.profile import EmptyCatalog, Patch, PatchContext
from migrator.sqlparser import parse_sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from hatchet_catalog import diff, snapshot
from hatchet_go_ups import GO_UPS

NEWEST_V99 = "56566018df59337f7358c48e4cf6d60e07a2379a"
TABLES = ("v1_runs_olap", "v1_tasks_olap", "v1_dags_olap")


def _trigger(table: str, event: str, function: str) -> str:
    rows = "OLD TABLE AS old_rows" if event == "DELETE" else "NEW TABLE AS new_rows"
    return (
        f"CREATE TRIGGER {table}_status_{event.lower()}_trigger\nAFTER {event} ON {table}\n"
        f"REFERENCING {rows}\nFOR EACH STATEMENT\nEXECUTE FUNCTION {function}();\n"
    )


def _noop(name: str) -> str:
    return (
        f"CREATE OR REPLACE FUNCTION {name}() RETURNS TRIGGER AS $$\n"
        "BEGIN\n    RETURN NULL;\nEND;\n$$ LANGUAGE plpgsql;\n"
    )


def _insert_functions(conflict: str, *, lookup: bool) -> str:
    """The tasks and dags insert functions: runs rows (``ON CONFLICT (conflict)``), lookups."""
    out = ""
    for table, kind, where in (("tasks", "TASK", "WHERE dag_id IS NULL"), ("dags", "DAG", "")):
        lookup_sql = (
            "    INSERT INTO v1_lookup_table_olap (tenant_id, external_id, inserted_at)\n"
            "    SELECT tenant_id, external_id, inserted_at FROM new_rows\n"
            "    ON CONFLICT (external_id) DO NOTHING;\n"
            if lookup
            else ""
        )
        out += (
            f"CREATE OR REPLACE FUNCTION v1_{table}_olap_insert_function()\n"
            "RETURNS TRIGGER AS\n$$\nBEGIN\n"
            "    INSERT INTO v1_runs_olap (tenant_id, id, inserted_at, external_id,\n"
            "                              readable_status, kind)\n"
            f"    SELECT tenant_id, id, inserted_at, external_id, readable_status, '{kind}'\n"
            f"    FROM new_rows {where}\n"
            f"    ON CONFLICT ({conflict}) DO NOTHING;\n"
            f"{lookup_sql}"
            "    RETURN NULL;\nEND;\n$$\nLANGUAGE plpgsql;\n\n"
        )
    return out


def _status_triggers() -> str:
    events = (("INSERT", "insert_function"), ("UPDATE", "status_update_function"))
    return "".join(_trigger(t, event, f"{t}_{fn}") for t in TABLES for event, fn in events)


def _delete_triggers() -> str:
    return _trigger("v1_tasks_olap", "DELETE", "v1_tasks_olap_delete_function") + _trigger(
        "v1_dags_olap", "DELETE", "v1_dags_olap_delete_function"
    )


def _partition_function(statuses: tuple[str, ...]) -> str:
    performs = "".join(
        f"    PERFORM create_v1_partition_with_status(newTableName, '{s}');\n" for s in statuses
    )
    return (
        "CREATE OR REPLACE FUNCTION create_v1_olap_partition_with_date_and_status(\n"
        "    targetTableName text,\n    targetDate date\n) RETURNS integer\n"
        "    LANGUAGE plpgsql AS\n$$\nDECLARE\n    newTableName varchar;\nBEGIN\n"
        "    newTableName := format('%s_%s', targetTableName, to_char(targetDate, 'YYYYMMDD'));\n"
        "    IF to_regclass(newTableName) IS NULL THEN\n"
        "        EXECUTE format('CREATE TABLE %s (LIKE %s INCLUDING INDEXES) "
        "PARTITION BY LIST (readable_status)', newTableName, targetTableName);\n"
        "    END IF;\n"
        f"{performs}"
        "    IF NOT EXISTS (SELECT 1 FROM pg_inherits\n"
        "                   WHERE inhrelid = newTableName::regclass) THEN\n"
        "        EXECUTE format('ALTER TABLE %s ATTACH PARTITION %s '\n"
        "                       'FOR VALUES FROM (%L) TO (%L)',\n"
        "            targetTableName, newTableName, targetDate, targetDate + 1);\n"
        "    END IF;\n    RETURN 1;\nEND;\n$$;\n"
    )


V1_0_0_SQL = f"""-- +goose Up
-- +goose StatementBegin
CREATE TYPE v1_readable_status_olap AS ENUM ('QUEUED', 'RUNNING', 'COMPLETED', 'FAILED');
CREATE TYPE v1_run_kind AS ENUM ('TASK', 'DAG');

CREATE OR REPLACE FUNCTION create_v1_partition_with_status(
    newTableName text,
    status v1_readable_status_olap
) RETURNS integer
    LANGUAGE plpgsql AS
$$
DECLARE
    child varchar := lower(format('%s_%s', newTableName, status::text));
BEGIN
    IF to_regclass(child) IS NOT NULL THEN
        RETURN 0;
    END IF;
    EXECUTE format('CREATE TABLE %s (LIKE %s INCLUDING INDEXES)', child, newTableName);
    EXECUTE format('ALTER TABLE %s ATTACH PARTITION %s FOR VALUES IN (%L)', newTableName, child,
                   status);
    RETURN 1;
END;
$$;

CREATE OR REPLACE FUNCTION create_v1_range_partition(targetTableName text, targetDate date)
RETURNS integer LANGUAGE plpgsql AS
$$
DECLARE
    child varchar := format('%s_%s', targetTableName, to_char(targetDate, 'YYYYMMDD'));
BEGIN
    IF to_regclass(child) IS NOT NULL THEN
        RETURN 0;
    END IF;
    EXECUTE format('CREATE TABLE %s (LIKE %s INCLUDING INDEXES)', child, targetTableName);
    EXECUTE format('ALTER TABLE %s ATTACH PARTITION %s FOR VALUES FROM (%L) TO (%L)',
                   targetTableName, child, targetDate, targetDate + 1);
    RETURN 1;
END;
$$;

{_partition_function(("QUEUED", "RUNNING"))}
-- tasks
CREATE TABLE v1_tasks_olap (
    tenant_id UUID NOT NULL,
    id BIGINT NOT NULL,
    inserted_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    external_id UUID NOT NULL DEFAULT gen_random_uuid(),
    workflow_id UUID NOT NULL,
    readable_status v1_readable_status_olap NOT NULL DEFAULT 'QUEUED',
    latest_worker_id UUID,
    dag_id BIGINT,
    PRIMARY KEY (inserted_at, id, readable_status)
) PARTITION BY RANGE(inserted_at);

CREATE INDEX v1_tasks_olap_workflow_id_idx ON v1_tasks_olap (tenant_id, workflow_id);
CREATE INDEX v1_tasks_olap_worker_id_idx ON v1_tasks_olap (tenant_id, latest_worker_id)
    WHERE latest_worker_id IS NOT NULL;

-- dags
CREATE TABLE v1_dags_olap (
    id BIGINT NOT NULL,
    inserted_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    tenant_id UUID NOT NULL,
    external_id UUID NOT NULL,
    workflow_id UUID NOT NULL,
    readable_status v1_readable_status_olap NOT NULL DEFAULT 'QUEUED',
    PRIMARY KEY (inserted_at, id, readable_status)
) PARTITION BY RANGE(inserted_at);

CREATE INDEX v1_dags_olap_workflow_id_idx ON v1_dags_olap (tenant_id, workflow_id);

-- runs
CREATE TABLE v1_runs_olap (
    tenant_id UUID NOT NULL,
    id BIGINT NOT NULL,
    inserted_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    external_id UUID NOT NULL DEFAULT gen_random_uuid(),
    readable_status v1_readable_status_olap NOT NULL DEFAULT 'QUEUED',
    kind v1_run_kind NOT NULL,
    parent_task_external_id UUID,
    PRIMARY KEY (inserted_at, id, readable_status, kind)
) PARTITION BY RANGE(inserted_at);

CREATE INDEX ix_v1_runs_olap_parent_task_external_id ON v1_runs_olap (parent_task_external_id)
    WHERE parent_task_external_id IS NOT NULL;

CREATE TABLE v1_lookup_table_olap (
    tenant_id UUID NOT NULL,
    external_id UUID NOT NULL PRIMARY KEY,
    inserted_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE v1_statuses_olap (
    external_id UUID NOT NULL PRIMARY KEY,
    readable_status v1_readable_status_olap NOT NULL
);

{_insert_functions("inserted_at, id, readable_status, kind", lookup=False)}
{_noop("v1_tasks_olap_status_update_function")}
{_noop("v1_dags_olap_status_update_function")}
{_noop("v1_runs_olap_status_update_function")}
CREATE OR REPLACE FUNCTION v1_runs_olap_insert_function()
RETURNS TRIGGER AS
$$
BEGIN
    INSERT INTO v1_statuses_olap (external_id, readable_status)
    SELECT external_id, readable_status FROM new_rows
    ON CONFLICT (external_id) DO NOTHING;
    RETURN NULL;
END;
$$
LANGUAGE plpgsql;

{_status_triggers()}
-- +goose StatementEnd
"""

V1_0_9_SQL = """-- +goose Up
-- +goose StatementBegin
ALTER TABLE v1_dags_olap ADD COLUMN total_tasks INT NOT NULL DEFAULT 1;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
ALTER TABLE v1_dags_olap DROP COLUMN total_tasks;
-- +goose StatementEnd
"""

V1_0_53_SQL = f"""-- +goose Up
-- +goose StatementBegin
{_insert_functions("inserted_at, id, readable_status, kind", lookup=True)}
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
{_insert_functions("inserted_at, id, readable_status, kind", lookup=False)}
-- +goose StatementEnd
"""

V1_0_62_SQL = f"""-- +goose Up
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION v1_tasks_olap_delete_function()
RETURNS TRIGGER AS
$$
BEGIN
    DELETE FROM v1_runs_olap r USING old_rows o
    WHERE r.inserted_at = o.inserted_at AND r.id = o.id AND r.kind = 'TASK';
    RETURN NULL;
END;
$$
LANGUAGE plpgsql;

{_noop("v1_dags_olap_delete_function")}
{_delete_triggers()}
-- +goose StatementEnd
"""

V1_0_89_SQL = f"""-- +goose Up
-- +goose StatementBegin
{_partition_function(("QUEUED", "RUNNING", "COMPLETED"))}
CREATE TABLE v1_unrelated (id INT);
-- +goose StatementEnd
"""

V1_0_97_SQL = """-- +goose Up
-- +goose StatementBegin
ALTER TABLE v1_unrelated ADD COLUMN note TEXT;
ALTER TABLE v1_tasks_olap ADD COLUMN is_durable BOOLEAN NOT NULL DEFAULT FALSE;
-- +goose StatementEnd
"""

OLDER: dict[int, str] = {
    olap_reshape.V1_0_0: V1_0_0_SQL,
    olap_reshape.V1_0_9: V1_0_9_SQL,
    olap_reshape.V1_0_53: V1_0_53_SQL,
    olap_reshape.V1_0_62: V1_0_62_SQL,
    olap_reshape.V1_0_89: V1_0_89_SQL,
    olap_reshape.V1_0_97: V1_0_97_SQL,
}
FILES = {version: sql.encode() for version, sql in OLDER.items()}

MIRROR_UP = """
DO $test$
DECLARE
    base text;
    part record;
BEGIN
    FOREACH base IN ARRAY ARRAY['v1_runs_olap', 'v1_tasks_olap', 'v1_dags_olap'] LOOP
        EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS, PRIMARY KEY (inserted_at, id))'
                       ' PARTITION BY RANGE (inserted_at)', base || '_new', base);
        FOR part IN SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                    WHERE i.inhparent = base::regclass LOOP
            PERFORM create_v1_range_partition(base || '_new',
                                              to_date(right(part.relname, 8), 'YYYYMMDD'));
            EXECUTE format('ALTER TABLE %I SET UNLOGGED',
                           base || '_new_' || right(part.relname, 8));
        END LOOP;
        EXECUTE format('INSERT INTO %I SELECT * FROM %I', base || '_new', base);
        EXECUTE format('CREATE FUNCTION %I() RETURNS TRIGGER LANGUAGE plpgsql AS '
                       '$f$ BEGIN RETURN NEW; END $f$', base || '_mirror_fn');
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %I FOR EACH ROW EXECUTE FUNCTION %I()',
                       base || '_mirror', base, base || '_mirror_fn');
    END LOOP;
END
$test$;
CREATE INDEX ix_v1_runs_olap_new_parent_task_external_id ON v1_runs_olap_new
    (parent_task_external_id) WHERE parent_task_external_id IS NOT NULL;
CREATE INDEX ix_v1_runs_olap_new_tenant_status_ins_at ON v1_runs_olap_new
    (tenant_id, readable_status, inserted_at DESC);
CREATE INDEX v1_tasks_olap_new_workflow_id_idx ON v1_tasks_olap_new (tenant_id, workflow_id);
CREATE INDEX v1_tasks_olap_new_worker_id_idx ON v1_tasks_olap_new (tenant_id, latest_worker_id)
    WHERE latest_worker_id IS NOT NULL;
CREATE INDEX v1_dags_olap_new_workflow_id_idx ON v1_dags_olap_new (tenant_id, workflow_id);
"""
"""A stand-in for v1_0_99's up: day-only ``_new`` copies, backfilled, with mirror triggers."""

SWAP_UP = f"""
DROP FUNCTION create_v1_olap_partition_with_date_and_status(text, date);
DO $test$
DECLARE
    base text;
    item record;
BEGIN
    FOREACH base IN ARRAY ARRAY['v1_runs_olap', 'v1_tasks_olap', 'v1_dags_olap'] LOOP
        EXECUTE format('DROP TABLE %I CASCADE', base);
        EXECUTE format('ALTER TABLE %I RENAME TO %I', base || '_new', base);
        FOR item IN SELECT c.relname FROM pg_partition_tree(base::regclass) t
                    JOIN pg_index i ON i.indrelid = t.relid JOIN pg_class c ON c.oid = i.indexrelid
                    WHERE strpos(c.relname, base || '_new') > 0 LOOP
            EXECUTE format('ALTER INDEX %I RENAME TO %I', item.relname,
                           replace(item.relname, base || '_new', base));
        END LOOP;
        FOR item IN SELECT c.relname FROM pg_partition_tree(base::regclass) t
                    JOIN pg_class c ON c.oid = t.relid WHERE t.level = 1 LOOP
            EXECUTE format('ALTER TABLE %I SET LOGGED', item.relname);
            EXECUTE format('ALTER TABLE %I RENAME TO %I', item.relname,
                           replace(item.relname, base || '_new_', base || '_'));
        END LOOP;
        EXECUTE format('DROP FUNCTION %I()', base || '_mirror_fn');
    END LOOP;
END
$test$;
{_insert_functions("inserted_at, id", lookup=True)}
{_status_triggers()}
{_delete_triggers()}
"""
"""A stand-in for v1_0_100's up: the old tables dropped, the ``_new`` ones renamed into place."""


@contextmanager
def connect(url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(url, autocommit=True, options="-c TimeZone=UTC") as conn:
        yield conn


def run_ups(conn: psycopg.Connection[Any]) -> None:
    """The older migrations' ups, v1_0_66's index, and today's partitions."""
    for version in sorted(FILES):
        parsed = parse_sql(FILES[version], filename=str(version), direction="up")
        for statement in parsed.statements:
            conn.execute(statement.encode())
    for table in TABLES:
        for day in ("2026-01-01", "2026-01-02"):
            conn.execute(
                "SELECT create_v1_olap_partition_with_date_and_status(%s, %s)", (table, day)
            )
    GO_UPS[20251226153622](conn)


def insert_task(conn: psycopg.Connection[Any], task_id: int, at: str, status: str) -> None:
    conn.execute(
        "INSERT INTO v1_tasks_olap (tenant_id, id, inserted_at, workflow_id, readable_status) "
        "VALUES (gen_random_uuid(), %s, %s, gen_random_uuid(), %s)",
        (task_id, at, status),
    )


def insert_dag(conn: psycopg.Connection[Any], dag_id: int, at: str, status: str) -> None:
    conn.execute(
        "INSERT INTO v1_dags_olap (id, inserted_at, tenant_id, external_id, workflow_id, "
        "readable_status) VALUES (%s, %s, gen_random_uuid(), gen_random_uuid(), "
        "gen_random_uuid(), %s)",
        (dag_id, at, status),
    )


def rows(conn: psycopg.Connection[Any]) -> dict[str, set[tuple[Any, ...]]]:
    out: dict[str, set[tuple[Any, ...]]] = {}
    for table in (*TABLES, "v1_lookup_table_olap", "v1_statuses_olap"):
        found = conn.execute(f"SELECT to_jsonb(t)::text FROM {table} t").fetchall()
        out[table] = {tuple(r) for r in found}
    return out


def where(conn: psycopg.Connection[Any], table: str) -> set[tuple[str, str]]:
    """(leaf partition, status) of every row."""
    found = conn.execute(f"SELECT tableoid::regclass::text, readable_status::text FROM {table}")
    return {(str(a), str(b)) for a, b in found.fetchall()}


def the_patch() -> Patch:
    (patch,) = OLAP_PATCHES[V1_0_100]
    return patch


def reverse(conn: psycopg.Connection[Any]) -> list[str]:
    """As a plan does: both steps built first (on the day-only catalog), then the patch's
    statements in one transaction and v1_0_99's port and patch in autocommit."""
    catalog = ConnectionCatalog(conn)
    statements = the_patch().build(PatchContext(catalog, [], FILES))
    (port,) = [p for p in PORTS[V1_0_99] if NEWEST_V99 in p.blob_shas]
    (fix,) = [p for p in PATCHED_PORTS[V1_0_99] if NEWEST_V99 in p.blob_shas]
    v1_0_99 = fix.build(PatchContext(catalog, port.build(catalog)))
    with conn.transaction():
        for statement in statements:
            conn.execute(statement.encode())
    for statement in v1_0_99:
        conn.execute(statement.encode())
    return statements


@pytest.fixture
def reshaped(database_url: str) -> Iterator[tuple[psycopg.Connection[Any], Any, Any]]:
    """The old shape with rows (and its catalog), then v1_0_99 and v1_0_100 applied."""
    with connect(database_url) as conn:
        run_ups(conn)
        insert_dag(conn, 1, "2026-01-01 09:00+00", "QUEUED")
        insert_task(conn, 1, "2026-01-01 10:00+00", "RUNNING")
        insert_task(conn, 2, "2026-01-02 23:59+00", "QUEUED")
        old_catalog = snapshot(conn)
        conn.execute(MIRROR_UP)
        conn.execute(SWAP_UP.encode())
        yield conn, old_catalog, snapshot(conn)


def test_registered_for_every_v1_0_100_file() -> None:
    assert len(SHAS_V1_0_100) == 5
    patch = the_patch()
    assert patch.version == V1_0_100 and patch.transaction is None
    assert set(patch.reads) == set(FILES) == set(READS)
    for sha in SHAS_V1_0_100:
        assert PROFILE.patch_for(V1_0_100, sha) is patch
    assert PROFILE.reads_for([V1_0_100]) == set(READS)
    assert PROFILE.patch_for(V1_0_100, "0" * 40) is None


def test_builds_without_a_database_and_announces_the_deletes() -> None:
    statements = the_patch().build(PatchContext(EmptyCatalog(), [], FILES))
    deletes = [s for s in statements if s.startswith("DELETE FROM")]
    assert deletes == [
        f'DELETE FROM "{t}_new" WHERE readable_status::text NOT IN '
        "('QUEUED', 'RUNNING', 'COMPLETED')"
        for t in TABLES
    ]
    assert [w for w in data_loss_warnings(statements)] == [
        f"data loss: DELETE FROM {t}_new" for t in TABLES
    ]
    # v1_0_89's second definition wins over v1_0_0's; only the command is taken, not its block.
    (function,) = [s for s in statements if "create_v1_olap_partition_with_date_and_status(\n" in s]
    assert "'COMPLETED'" in function and "v1_unrelated" not in function
    assert not any("v1_unrelated" in s for s in statements)


def test_a_missing_older_file_is_a_lookup_error() -> None:
    files = dict(FILES)
    del files[olap_reshape.V1_0_62]
    with pytest.raises(LookupError, match="20251218153621"):
        the_patch().build(PatchContext(EmptyCatalog(), [], files))


def test_reverse_restores_the_old_shape_and_keeps_the_rows(
    reshaped: tuple[psycopg.Connection[Any], Any, Any],
) -> None:
    conn, old_catalog, new_catalog = reshaped
    assert diff(old_catalog, new_catalog)  # the reshape changed the catalog
    # Rows written after the swap: a new day, a status the old shape has no partition for,
    # and a day-only default partition holding a day no partition covers.
    conn.execute("SELECT create_v1_range_partition('v1_tasks_olap', '2026-01-03')")
    conn.execute("SELECT create_v1_range_partition('v1_runs_olap', '2026-01-03')")
    for table in ("v1_dags_olap", "v1_runs_olap"):
        conn.execute(f"CREATE TABLE {table}_default PARTITION OF {table} DEFAULT")
    insert_task(conn, 3, "2026-01-03 08:00+00", "COMPLETED")
    insert_task(conn, 4, "2026-01-02 08:00+00", "FAILED")
    insert_dag(conn, 2, "2026-02-10 08:00+00", "RUNNING")
    before = rows(conn)
    assert len(before["v1_runs_olap"]) == 6

    statements = reverse(conn)
    # Only the tables holding such rows at plan time get a DELETE (announced as data loss).
    assert data_loss_warnings(statements) == [
        "data loss: DELETE FROM v1_runs_olap_new",
        "data loss: DELETE FROM v1_tasks_olap_new",
    ]

    assert diff(old_catalog, snapshot(conn)) == []
    after = rows(conn)
    failed = {r for r in before["v1_runs_olap"] if '"FAILED"' in r[0]}
    assert len(failed) == 1
    assert after["v1_runs_olap"] == before["v1_runs_olap"] - failed
    assert after["v1_tasks_olap"] == {r for r in before["v1_tasks_olap"] if '"FAILED"' not in r[0]}
    assert after["v1_dags_olap"] == before["v1_dags_olap"]
    # Moving the rows fired no trigger.
    assert after["v1_lookup_table_olap"] == before["v1_lookup_table_olap"]
    assert after["v1_statuses_olap"] == before["v1_statuses_olap"]
    assert where(conn, "v1_tasks_olap") == {
        ("v1_tasks_olap_20260101_running", "RUNNING"),
        ("v1_tasks_olap_20260102_queued", "QUEUED"),
        ("v1_tasks_olap_20260103_completed", "COMPLETED"),
    }
    assert ("v1_dags_olap_20260210_running", "RUNNING") in where(conn, "v1_dags_olap")
    leftovers = conn.execute("SELECT relname FROM pg_class WHERE relname ~ '_olap_new'")
    assert leftovers.fetchall() == []

    # The old shape works as before: the triggers write runs, lookups, statuses.
    insert_task(conn, 5, "2026-01-02 12:00+00", "RUNNING")
    assert len(rows(conn)["v1_runs_olap"]) == len(after["v1_runs_olap"]) + 1

    # The round trip: v1_0_99's and v1_0_100's ups run again and keep every row.
    kept = rows(conn)
    conn.execute(MIRROR_UP)
    conn.execute(SWAP_UP.encode())
    assert diff(new_catalog, snapshot(conn)) == []
    assert rows(conn) == kept


def test_no_delete_when_every_status_has_a_partition(
    reshaped: tuple[psycopg.Connection[Any], Any, Any],
) -> None:
    conn, old_catalog, _new_catalog = reshaped
    before = rows(conn)
    statements = reverse(conn)
    assert not any(s.startswith("DELETE") for s in statements)
    assert data_loss_warnings(statements) == []
    assert diff(old_catalog, snapshot(conn)) == []
    assert rows(conn) == before


def test_an_old_column_the_reshape_lost_comes_back_with_its_default(
    reshaped: tuple[psycopg.Connection[Any], Any, Any],
) -> None:
    """v0.83.46's v1_0_99 built v1_tasks_olap_new without is_durable."""
    conn, old_catalog, _new_catalog = reshaped
    conn.execute("ALTER TABLE v1_tasks_olap DROP COLUMN is_durable")
    count = conn.execute("SELECT count(*) FROM v1_tasks_olap").fetchone()
    statements = reverse(conn)
    (copy,) = [s for s in statements if s.startswith('INSERT INTO "v1_tasks_olap"')]
    assert "is_durable" not in copy
    assert diff(old_catalog, snapshot(conn)) == []
    assert conn.execute("SELECT count(*) FROM v1_tasks_olap WHERE NOT is_durable").fetchone() == (
        count
    )

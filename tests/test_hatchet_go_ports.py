"""Hatchet's Go down ports and their patches, run on real PostgreSQL against small schemas.

Each test builds just the tables a Go migration touches, applies its up from
``scripts/hatchet_go_ups.py``, then sends the port's (or the patch's) statements one by one in
autocommit, as goose's NoTx path does, and checks what is left.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import errors

from migrator.catalog import ConnectionCatalog
from migrator.hatchet import go_ports
from migrator.hatchet.go_ports import PATCHED_PORTS, PORTS
from migrator.profile import EmptyCatalog, Patch, PatchContext, Port

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from hatchet_go_ups import GO_UPS, GO_UPS_BY_SHA

V63 = 20251218153622
V66 = 20251226153622
V79C = 20260216000003
V92 = 20260324135804
V99 = 20260424190713
V107 = 20260511164037
V116 = 20260608141858
V130 = 20260715190323
V137 = 20260806002346
V142 = 20260814121501

UPSTREAM_SHAS: dict[int, set[str]] = {
    V63: {"a1d4ae1e14f46215c9c34e0bb45bfac27fc623ce"},
    V66: {"f39ddf4f83e38412e03297c28a4073d03c67973d"},
    V79C: {"efec15789c48e9e7b8a35744d2448cb4bb360086"},
    V92: {"cb33652f450995fc0644ffc8754d227daf7b4e9e"},
    V99: {
        "21851a601c5fc35b6191b78390007b34c44a43f5",
        "305036769962c3aa5dc5964968f2958909ae0165",
        "3c785bde6293ebafa2ac592df2193d8de0dd19b2",
        "427510a124aedfa3c91ea2e13bdebcf3ff855ceb",
        "56566018df59337f7358c48e4cf6d60e07a2379a",
        "7511097902c3e24c300109109cc80fe4ce8e7171",
        "abe2e60a10fc00550f343da02be1d29e2e1676c7",
        "b7980b9a4da82af3d0cdfb6f70162a59cb5378e3",
        "dba368a02eabda09596f176e1d6e44eba908fb2e",
    },
    V107: {"5a9f0ffc8fae3e3673d58d4f55f4af7046309708"},
    V116: {"a43fd7fc30cb6f14ee60ab72fe1e7dced9e6421a"},
    V130: {"3e1b3d0ed6c90a0bfebc47634c63fd713c381f8d", "a1705ea8a056a3e7058293079a7b94e04b9f91d6"},
    V137: {"a8ab3ab18649a564da1e2766d8aa562610617895"},
    V142: {"451b6e2b1655d2c5535ab4954b454bab919e0538"},
}
V99_DROPPING_TENANT_INDEX = {
    "abe2e60a10fc00550f343da02be1d29e2e1676c7",
    "305036769962c3aa5dc5964968f2958909ae0165",
    "b7980b9a4da82af3d0cdfb6f70162a59cb5378e3",
    "7511097902c3e24c300109109cc80fe4ce8e7171",
    "21851a601c5fc35b6191b78390007b34c44a43f5",
    "427510a124aedfa3c91ea2e13bdebcf3ff855ceb",
}
V99_DROPPING_PROGRESS = {
    "21851a601c5fc35b6191b78390007b34c44a43f5",
    "427510a124aedfa3c91ea2e13bdebcf3ff855ceb",
    "dba368a02eabda09596f176e1d6e44eba908fb2e",
    "3c785bde6293ebafa2ac592df2193d8de0dd19b2",
    "56566018df59337f7358c48e4cf6d60e07a2379a",
}

DAYS = ("20260101", "20260102")
STATUSES = ("QUEUED", "COMPLETED")

OLAP_TYPES = """
CREATE TYPE v1_readable_status_olap AS ENUM
    ('QUEUED', 'RUNNING', 'CANCELLED', 'FAILED', 'COMPLETED', 'EVICTED');
CREATE TYPE v1_run_kind AS ENUM ('TASK', 'DAG');
CREATE TYPE v1_sticky_strategy_olap AS ENUM ('NONE', 'SOFT', 'HARD');
"""

RUNS_COLUMNS = """
    tenant_id UUID NOT NULL,
    id BIGINT NOT NULL,
    inserted_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    external_id UUID NOT NULL DEFAULT gen_random_uuid(),
    readable_status v1_readable_status_olap NOT NULL DEFAULT 'QUEUED',
    kind v1_run_kind NOT NULL,
    workflow_id UUID NOT NULL,
    workflow_version_id UUID NOT NULL,
    additional_metadata JSONB,
    parent_task_external_id UUID
"""

TASKS_COLUMNS = """
    tenant_id UUID NOT NULL, id BIGINT NOT NULL,
    inserted_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    external_id UUID NOT NULL DEFAULT gen_random_uuid(),
    queue TEXT NOT NULL, action_id TEXT NOT NULL, step_id UUID NOT NULL, workflow_id UUID NOT NULL,
    workflow_version_id UUID NOT NULL, workflow_run_id UUID NOT NULL,
    schedule_timeout TEXT NOT NULL, step_timeout TEXT, priority INTEGER DEFAULT 1,
    sticky v1_sticky_strategy_olap NOT NULL, desired_worker_id UUID, display_name TEXT NOT NULL,
    input JSONB NOT NULL, additional_metadata JSONB,
    readable_status v1_readable_status_olap NOT NULL DEFAULT 'QUEUED',
    latest_retry_count INT NOT NULL DEFAULT 0, latest_worker_id UUID, dag_id BIGINT,
    dag_inserted_at TIMESTAMPTZ, parent_task_external_id UUID,
    is_durable BOOLEAN NOT NULL DEFAULT FALSE
"""

DAGS_COLUMNS = """
    id BIGINT NOT NULL, inserted_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
    tenant_id UUID NOT NULL, external_id UUID NOT NULL, display_name TEXT NOT NULL,
    workflow_id UUID NOT NULL, workflow_version_id UUID NOT NULL,
    readable_status v1_readable_status_olap NOT NULL DEFAULT 'QUEUED',
    input JSONB NOT NULL, additional_metadata JSONB, parent_task_external_id UUID,
    total_tasks INT NOT NULL DEFAULT 1
"""

HELPER_FUNCTIONS = """
CREATE FUNCTION create_v1_range_partition(target text, target_date date, ff integer DEFAULT 100)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    child text := lower(format('%s_%s', target, to_char(target_date, 'YYYYMMDD')));
BEGIN
    IF EXISTS (SELECT 1 FROM pg_tables WHERE tablename = child) THEN
        RETURN 0;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING INDEXES INCLUDING CONSTRAINTS)',
                   child, target);
    EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                   target, child, target_date, target_date + 1);
    RETURN 1;
END;
$$;
CREATE FUNCTION v1_status_to_priority(s v1_readable_status_olap) RETURNS int IMMUTABLE
LANGUAGE sql AS $$ SELECT array_position(enum_range(NULL::v1_readable_status_olap), s) $$;
"""


@contextmanager
def connect(url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(url, autocommit=True) as conn:
        yield conn


def execute_all(conn: psycopg.Connection[Any], statements: list[str]) -> None:
    for statement in statements:
        conn.execute(statement.encode())


def port_for(version: int, sha: str) -> Port:
    (port,) = [p for p in PORTS[version] if sha in p.blob_shas]
    return port


def patch_for(version: int, sha: str) -> Patch:
    (patch,) = [p for p in PATCHED_PORTS[version] if sha in p.blob_shas]
    return patch


def only_sha(version: int) -> str:
    (sha,) = UPSTREAM_SHAS[version]
    return sha


def faithful(conn: psycopg.Connection[Any], version: int, sha: str) -> list[str]:
    return port_for(version, sha).build(ConnectionCatalog(conn))


def patched(conn: psycopg.Connection[Any], version: int, sha: str) -> list[str]:
    catalog = ConnectionCatalog(conn)
    return patch_for(version, sha).build(
        PatchContext(catalog, port_for(version, sha).build(catalog))
    )


def indexes(conn: psycopg.Connection[Any], pattern: str = ".*") -> list[str]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('i', 'I') AND n.nspname = 'public' AND c.relname ~ %s ORDER BY 1",
        (pattern,),
    ).fetchall()
    return [str(r[0]) for r in rows]


def index_tree(conn: psycopg.Connection[Any]) -> set[tuple[Any, ...]]:
    """Every index of schema public: name, table, definition, validity, parent index."""
    rows = conn.execute(
        """
        SELECT c.relname, t.relname, pg_get_indexdef(c.oid), i.indisvalid, p.relname
        FROM pg_index i
        JOIN pg_class c ON c.oid = i.indexrelid
        JOIN pg_class t ON t.oid = i.indrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_inherits h ON h.inhrelid = c.oid
        LEFT JOIN pg_class p ON p.oid = h.inhparent
        WHERE n.nspname = 'public'
        """
    ).fetchall()
    return {tuple(r) for r in rows}


def schema(conn: psycopg.Connection[Any]) -> dict[str, set[tuple[Any, ...]]]:
    """Relations, functions, user triggers and indexes of schema public."""
    return {
        "relations": {
            tuple(r)
            for r in conn.execute(
                "SELECT c.relname, c.relkind, c.relpersistence FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')"
            ).fetchall()
        },
        "functions": {
            tuple(r)
            for r in conn.execute(
                "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                "WHERE n.nspname = 'public'"
            ).fetchall()
        },
        "triggers": {
            tuple(r)
            for r in conn.execute(
                "SELECT tgname, tgrelid::regclass::text FROM pg_trigger WHERE NOT tgisinternal"
            ).fetchall()
        },
        "indexes": index_tree(conn),
    }


def to_regclass(conn: psycopg.Connection[Any], name: str) -> Any:
    row = conn.execute("SELECT to_regclass(%s)::text", (name,)).fetchone()
    return None if row is None else row[0]


def create_runs_olap(conn: psycopg.Connection[Any], *, by_status: bool = True) -> None:
    """``v1_runs_olap`` by day, then (``by_status``) by status as before v1_0_100."""
    conn.execute(
        f"CREATE TABLE v1_runs_olap ({RUNS_COLUMNS}, PRIMARY KEY (inserted_at, id, "
        f"readable_status, kind)) PARTITION BY RANGE (inserted_at)"
    )
    create_day_partitions(conn, "v1_runs_olap", by_status=by_status)


def create_day_partitions(conn: psycopg.Connection[Any], table: str, *, by_status: bool) -> None:
    for day in DAYS:
        sub = " PARTITION BY LIST (readable_status)" if by_status else ""
        conn.execute(
            f"CREATE TABLE {table}_{day} PARTITION OF {table} FOR VALUES FROM ('{day}') "
            f"TO ('{day}'::date + 1){sub}"
        )
        if by_status:
            for status in STATUSES:
                conn.execute(
                    f"CREATE TABLE {table}_{day}_{status.lower()} PARTITION OF {table}_{day} "
                    f"FOR VALUES IN ('{status}')"
                )


def create_olap_before_v1_0_99(conn: psycopg.Connection[Any]) -> None:
    """The runs, tasks and dags OLAP tables as v1_0_98 leaves them (v1_0_66's index included)."""
    conn.execute(OLAP_TYPES)
    conn.execute(HELPER_FUNCTIONS)
    create_runs_olap(conn)
    conn.execute(
        f"CREATE TABLE v1_tasks_olap ({TASKS_COLUMNS}, PRIMARY KEY (inserted_at, id, "
        "readable_status)) PARTITION BY RANGE (inserted_at)"
    )
    conn.execute(
        f"CREATE TABLE v1_dags_olap ({DAGS_COLUMNS}, PRIMARY KEY (inserted_at, id, "
        "readable_status)) PARTITION BY RANGE (inserted_at)"
    )
    create_day_partitions(conn, "v1_tasks_olap", by_status=True)
    create_day_partitions(conn, "v1_dags_olap", by_status=True)
    GO_UPS[V66](conn)


def insert_olap_rows(conn: psycopg.Connection[Any], first_id: int) -> None:
    uuid = "gen_random_uuid()"
    conn.execute(
        "INSERT INTO v1_runs_olap (tenant_id, id, inserted_at, readable_status, kind, "
        f"workflow_id, workflow_version_id) VALUES ({uuid}, %s, '2026-01-01 10:00+00', "
        f"'COMPLETED', 'TASK', {uuid}, {uuid})",
        (first_id,),
    )
    conn.execute(
        "INSERT INTO v1_tasks_olap (tenant_id, id, inserted_at, queue, action_id, step_id, "
        "workflow_id, workflow_version_id, workflow_run_id, schedule_timeout, sticky, "
        f"display_name, input) VALUES ({uuid}, %s, '2026-01-02 10:00+00', 'q', 'a', {uuid}, "
        f"{uuid}, {uuid}, {uuid}, '5m', 'NONE', 'task', '{{}}')",
        (first_id,),
    )
    conn.execute(
        "INSERT INTO v1_dags_olap (id, inserted_at, tenant_id, external_id, display_name, "
        f"workflow_id, workflow_version_id, input) VALUES (%s, '2026-01-01 11:00+00', {uuid}, "
        f"{uuid}, 'dag', {uuid}, {uuid}, '{{}}')",
        (first_id,),
    )


def test_registered_shas_match_upstream() -> None:
    assert {v: set().union(*(p.blob_shas for p in ports)) for v, ports in PORTS.items()} == (
        UPSTREAM_SHAS
    )
    for version, ports in PORTS.items():
        assert all(p.version == version and not p.transaction for p in ports)
        assert all(p.file.startswith(f"{version}_") and p.file.endswith(".go") for p in ports)
        assert sum(len(p.blob_shas) for p in ports) == len(UPSTREAM_SHAS[version])
    for version, patches in PATCHED_PORTS.items():
        for patch in patches:
            assert patch.version == version and patch.transaction is False
            assert patch.blob_shas <= UPSTREAM_SHAS[version] and patch.reason
    assert set(GO_UPS_BY_SHA) == set().union(*UPSTREAM_SHAS.values())
    assert set(GO_UPS) == set(PORTS)
    assert GO_UPS[V99] is GO_UPS_BY_SHA["56566018df59337f7358c48e4cf6d60e07a2379a"]


def test_every_port_and_patch_builds_without_a_database() -> None:
    for ports in PORTS.values():
        for port in ports:
            statements = port.build(EmptyCatalog())
            assert all(isinstance(s, str) and s for s in statements)
            for sha in port.blob_shas:
                for patch in PATCHED_PORTS.get(port.version, []):
                    if sha in patch.blob_shas:
                        assert patch.build(PatchContext(EmptyCatalog(), statements))


def test_quote_ident_doubles_quotes() -> None:
    assert go_ports.quote_ident('we"ird') == '"we""ird"'


@pytest.mark.parametrize("version", [V63, V66])
def test_v1_0_66_faithful_fails_on_partitions_and_patch_succeeds(
    database_url: str, version: int
) -> None:
    sha = only_sha(version)
    with connect(database_url) as conn:
        conn.execute(OLAP_TYPES)
        create_runs_olap(conn)
        before = index_tree(conn)
        GO_UPS[version](conn)
        assert len(indexes(conn, "_tenant_id$")) == 1 + len(DAYS) + len(DAYS) * len(STATUSES)

        statements = faithful(conn, version, sha)
        assert statements[0] == (
            'DROP INDEX CONCURRENTLY IF EXISTS "ix_v1_runs_olap_20260101_completed_tenant_id"'
        )
        assert statements[-1] == 'DROP INDEX IF EXISTS "ix_v1_runs_olap_tenant_id"'
        assert len(statements) == len(DAYS) * len(STATUSES) + 1
        with pytest.raises(errors.DependentObjectsStillExist):
            execute_all(conn, statements)

        fixed = patched(conn, version, sha)
        assert fixed[0] == 'DROP INDEX IF EXISTS "ix_v1_runs_olap_tenant_id"'
        execute_all(conn, fixed)
        assert indexes(conn, "_tenant_id$") == []
        assert index_tree(conn) == before


def test_v1_0_66_patch_drops_indexes_a_failed_up_left_unattached(database_url: str) -> None:
    sha = only_sha(V66)
    with connect(database_url) as conn:
        conn.execute(OLAP_TYPES)
        create_runs_olap(conn)
        before = index_tree(conn)
        conn.execute(
            'CREATE INDEX "ix_v1_runs_olap_20260101_queued_tenant_id" '
            "ON v1_runs_olap_20260101_queued (tenant_id)"
        )
        conn.execute(
            'CREATE INDEX "ix_v1_runs_olap_20260102_tenant_id" ON v1_runs_olap_20260102 (tenant_id)'
        )
        execute_all(conn, patched(conn, V66, sha))
        assert index_tree(conn) == before


def test_v1_0_66_ports_without_partitions_or_table(database_url: str) -> None:
    sha = only_sha(V66)
    with connect(database_url) as conn:
        only_parent = ['DROP INDEX IF EXISTS "ix_v1_runs_olap_tenant_id"']
        assert faithful(conn, V66, sha) == only_parent
        assert patched(conn, V66, sha) == only_parent
        execute_all(conn, only_parent)
        conn.execute(OLAP_TYPES)
        conn.execute(f"CREATE TABLE v1_runs_olap ({RUNS_COLUMNS}) PARTITION BY RANGE (inserted_at)")
        GO_UPS[V66](conn)
        assert faithful(conn, V66, sha) == only_parent
        execute_all(conn, faithful(conn, V66, sha))
        assert indexes(conn) == []


def test_v1_0_66_patch_after_v1_0_100_shape(database_url: str) -> None:
    """After v1_0_100 v1_runs_olap is by day only at plan time (olap_reshape rebuilds the old
    shape before v1_0_99's step): v1_0_99's patch builds the parent's index alone, which fits
    either shape, and v1_0_66's patch drops it again."""
    with connect(database_url) as conn:
        conn.execute(OLAP_TYPES)
        create_runs_olap(conn, by_status=False)
        before = index_tree(conn)
        sha = "56566018df59337f7358c48e4cf6d60e07a2379a"
        restore = patch_for(V99, sha).build(PatchContext(ConnectionCatalog(conn), []))
        assert restore == [go_ports.runs_tenant_index_statement()]
        execute_all(conn, restore)
        assert indexes(conn, "_tenant_id$") == ["ix_v1_runs_olap_tenant_id"]
        assert len(indexes(conn, "_tenant_id_inserted_at_id_rea")) == len(DAYS)
        execute_all(conn, patched(conn, V66, only_sha(V66)))
        assert index_tree(conn) == before


def test_v1_0_79_c_up_backfills_and_down_is_empty(database_url: str) -> None:
    with connect(database_url) as conn:
        conn.execute(
            """
            CREATE TABLE "Worker" ("id" UUID PRIMARY KEY, "tenantId" UUID NOT NULL,
                                   "maxRuns" INTEGER);
            CREATE TABLE "Step" ("id" UUID PRIMARY KEY, "tenantId" UUID NOT NULL,
                                 "isDurable" BOOLEAN NOT NULL DEFAULT false);
            CREATE TABLE v1_task_runtime (task_id BIGINT, task_inserted_at TIMESTAMPTZ,
                                          retry_count INT, tenant_id UUID, worker_id UUID);
            CREATE TABLE v1_worker_slot_config (tenant_id UUID, worker_id UUID, slot_type TEXT,
                max_units INT, PRIMARY KEY (tenant_id, worker_id, slot_type));
            CREATE TABLE v1_step_slot_request (tenant_id UUID, step_id UUID, slot_type TEXT,
                units INT, PRIMARY KEY (tenant_id, step_id, slot_type));
            CREATE TABLE v1_task_runtime_slot (tenant_id UUID, task_id BIGINT,
                task_inserted_at TIMESTAMPTZ, retry_count INT, worker_id UUID, slot_type TEXT,
                units INT, PRIMARY KEY (task_id, task_inserted_at, retry_count, slot_type));
            INSERT INTO "Worker" VALUES (gen_random_uuid(), gen_random_uuid(), 5),
                                        (gen_random_uuid(), gen_random_uuid(), NULL);
            INSERT INTO "Step" VALUES (gen_random_uuid(), gen_random_uuid(), true),
                                      (gen_random_uuid(), gen_random_uuid(), false);
            INSERT INTO v1_task_runtime VALUES (1, now(), 0, gen_random_uuid(), gen_random_uuid()),
                                               (2, now(), 0, gen_random_uuid(), NULL);
            """
        )
        GO_UPS[V79C](conn)
        GO_UPS[V79C](conn)
        count = "SELECT count(*) FROM {}"
        assert conn.execute(count.format("v1_worker_slot_config")).fetchone() == (1,)
        slots = conn.execute("SELECT slot_type FROM v1_step_slot_request ORDER BY 1").fetchall()
        assert slots == [("default",), ("durable",)]
        assert conn.execute(count.format("v1_task_runtime_slot")).fetchone() == (1,)
        assert faithful(conn, V79C, only_sha(V79C)) == []


def test_v1_0_92_drops_the_log_line_indexes(database_url: str) -> None:
    with connect(database_url) as conn:
        conn.execute(
            "CREATE TABLE v1_log_line (tenant_id UUID NOT NULL, created_at TIMESTAMPTZ NOT NULL, "
            "level TEXT NOT NULL, task_inserted_at TIMESTAMPTZ NOT NULL) "
            "PARTITION BY RANGE (task_inserted_at)"
        )
        for day in DAYS:
            conn.execute(
                f"CREATE TABLE v1_log_line_{day} PARTITION OF v1_log_line "
                f"FOR VALUES FROM ('{day}') TO ('{day}'::date + 1)"
            )
        GO_UPS[V92](conn)
        assert len(indexes(conn, "^v1_log_line_tenant_id_level_idx")) == 1 + len(DAYS)
        statements = faithful(conn, V92, only_sha(V92))
        assert statements == ['DROP INDEX IF EXISTS "v1_log_line_tenant_id_level_idx"']
        execute_all(conn, statements)
        assert indexes(conn) == []


@pytest.mark.parametrize("sha", sorted(UPSTREAM_SHAS[V99]))
def test_v1_0_99_down_and_patch(database_url: str, sha: str) -> None:
    with connect(database_url) as conn:
        create_olap_before_v1_0_99(conn)
        insert_olap_rows(conn, first_id=1)
        before = schema(conn)

        GO_UPS_BY_SHA[sha](conn)
        for table in ("v1_runs_olap", "v1_tasks_olap", "v1_dags_olap"):
            assert conn.execute(f"SELECT count(*) FROM {table}_new").fetchone() == (1,)
        insert_olap_rows(conn, first_id=2)
        assert conn.execute("SELECT count(*) FROM v1_runs_olap_new").fetchone() == (2,)
        has_tenant_index = bool(indexes(conn, "^ix_v1_runs_olap_tenant_id$"))
        assert has_tenant_index == (sha not in V99_DROPPING_TENANT_INDEX)
        assert to_regclass(conn, "v1_olap_backfill_progress") is None

        statements = faithful(conn, V99, sha)
        drops_progress = statements[0] == "DROP TABLE IF EXISTS v1_olap_backfill_progress"
        assert drops_progress == (sha in V99_DROPPING_PROGRESS)
        assert statements[-3:] == [
            "DROP TRIGGER IF EXISTS v1_dags_olap_mirror ON v1_dags_olap",
            "DROP FUNCTION IF EXISTS v1_dags_olap_mirror_fn()",
            "DROP TABLE IF EXISTS v1_dags_olap_new CASCADE",
        ]
        fixed = patched(conn, V99, sha)
        assert fixed[: len(statements)] == statements

        execute_all(conn, statements)
        after_faithful = schema(conn)
        assert after_faithful["relations"] == before["relations"]
        assert after_faithful["functions"] == before["functions"]
        assert after_faithful["triggers"] == before["triggers"] == set()
        assert (after_faithful == before) == (sha not in V99_DROPPING_TENANT_INDEX)

        execute_all(conn, fixed)
        assert schema(conn) == before


def test_v1_0_99_unlogged_copies(database_url: str) -> None:
    with connect(database_url) as conn:
        create_olap_before_v1_0_99(conn)
        GO_UPS[V99](conn)
        persistence = conn.execute(
            "SELECT DISTINCT relpersistence FROM pg_class WHERE relname ~ '^v1_.*_olap_new_2026'"
        ).fetchall()
        assert persistence == [("u",)]


def test_v1_0_107_drops_the_payload_indexes(database_url: str) -> None:
    with connect(database_url) as conn:
        for table in ("v1_payload", "v1_payloads_olap"):
            conn.execute(
                f"CREATE TABLE {table} (external_id UUID, inserted_at TIMESTAMPTZ NOT NULL) "
                "PARTITION BY RANGE (inserted_at)"
            )
            for day in DAYS:
                conn.execute(
                    f"CREATE TABLE {table}_{day} PARTITION OF {table} "
                    f"FOR VALUES FROM ('{day}') TO ('{day}'::date + 1)"
                )
        GO_UPS[V107](conn)
        assert len(indexes(conn, "_external_id_idx$")) == 2 * (1 + len(DAYS))
        statements = faithful(conn, V107, only_sha(V107))
        assert statements == [
            "DROP INDEX IF EXISTS v1_payload_external_id_idx",
            "DROP INDEX IF EXISTS v1_payloads_olap_external_id_idx",
        ]
        execute_all(conn, statements)
        assert indexes(conn) == []


def test_v1_0_116_restores_the_old_index(database_url: str) -> None:
    with connect(database_url) as conn:
        conn.execute(OLAP_TYPES)
        conn.execute(
            f"CREATE TABLE v1_runs_olap ({RUNS_COLUMNS}, PRIMARY KEY (inserted_at, id)) "
            "PARTITION BY RANGE (inserted_at)"
        )
        conn.execute(
            "CREATE INDEX ix_v1_runs_olap_tenant_status_ins_at "
            "ON v1_runs_olap (tenant_id, readable_status, inserted_at DESC)"
        )
        create_day_partitions(conn, "v1_runs_olap", by_status=False)
        definitions = "SELECT tablename, regexp_replace(indexdef, 'INDEX \\S+ ON', 'INDEX ON') "
        definitions += "FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1, 2"
        before = conn.execute(definitions).fetchall()

        GO_UPS[V116](conn)
        assert indexes(conn, "^ix_v1_runs_olap_tenant_") == ["ix_v1_runs_olap_tenant_ins_at_status"]

        statements = faithful(conn, V116, only_sha(V116))
        assert statements[0] == (
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS "
            '"ix_v1_runs_olap_20260101_tenant_status_ins_at" ON "v1_runs_olap_20260101" '
            "(tenant_id, readable_status, inserted_at DESC);"
        )
        assert statements[-1] == 'DROP INDEX IF EXISTS "ix_v1_runs_olap_tenant_ins_at_status";'
        execute_all(conn, statements)
        assert conn.execute(definitions).fetchall() == before
        assert indexes(conn, "tenant_ins_at_status") == []
        assert V116 not in PATCHED_PORTS


def test_v1_0_130_drops_the_idempotency_indexes(database_url: str) -> None:
    with connect(database_url) as conn:
        for table in ("v1_tasks_olap", "v1_runs_olap"):
            conn.execute(
                f"CREATE TABLE {table} (idempotency_key TEXT, inserted_at TIMESTAMPTZ NOT NULL) "
                "PARTITION BY RANGE (inserted_at)"
            )
            create_day_partitions(conn, table, by_status=False)
        GO_UPS[V130](conn)
        assert len(indexes(conn, "_idempotency_key$")) == 2 * (1 + len(DAYS))
        for sha in UPSTREAM_SHAS[V130]:
            assert faithful(conn, V130, sha) == [
                'DROP INDEX IF EXISTS "ix_v1_tasks_olap_idempotency_key"',
                'DROP INDEX IF EXISTS "ix_v1_runs_olap_idempotency_key"',
            ]
        execute_all(conn, faithful(conn, V130, sorted(UPSTREAM_SHAS[V130])[0]))
        assert indexes(conn) == []


def test_v1_0_137_drops_the_event_unique_index(database_url: str) -> None:
    with connect(database_url) as conn:
        conn.execute(
            "CREATE TABLE v1_event (id BIGINT GENERATED ALWAYS AS IDENTITY, "
            "seen_at TIMESTAMPTZ NOT NULL, tenant_id UUID NOT NULL, external_id UUID NOT NULL, "
            "PRIMARY KEY (tenant_id, seen_at, id)) PARTITION BY RANGE (seen_at)"
        )
        for day in DAYS:
            conn.execute(
                f"CREATE TABLE v1_event_{day} PARTITION OF v1_event "
                f"FOR VALUES FROM ('{day}') TO ('{day}'::date + 1)"
            )
        conn.execute(
            "INSERT INTO v1_event (seen_at, tenant_id, external_id) SELECT '2026-01-01 10:00+00', "
            "'00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000002' "
            "FROM generate_series(1, 3)"
        )
        keys = indexes(conn)
        GO_UPS[V137](conn)
        assert conn.execute("SELECT count(*) FROM v1_event").fetchone() == (1,)
        assert len(indexes(conn, "_external_id_seen_at$")) == 1 + len(DAYS)
        statements = faithful(conn, V137, only_sha(V137))
        assert statements == ['DROP INDEX IF EXISTS "v1_event_external_id_seen_at"']
        execute_all(conn, statements)
        assert indexes(conn) == keys


def test_v1_0_142_up_backfills_and_down_is_empty(database_url: str) -> None:
    with connect(database_url) as conn:
        conn.execute(
            "CREATE TABLE v1_durable_event_log_entry (durable_task_id BIGINT NOT NULL, "
            "durable_task_inserted_at TIMESTAMPTZ NOT NULL, inserted_at TIMESTAMPTZ NOT NULL, "
            "triggered_at TIMESTAMPTZ) PARTITION BY RANGE (durable_task_inserted_at)"
        )
        conn.execute(
            "CREATE TABLE v1_durable_event_log_entry_20260101 PARTITION OF "
            "v1_durable_event_log_entry FOR VALUES FROM ('20260101') TO ('20260102')"
        )
        conn.execute(
            "INSERT INTO v1_durable_event_log_entry VALUES "
            "(1, '2026-01-01 01:00+00', '2026-01-01 02:00+00', NULL)"
        )
        GO_UPS[V142](conn)
        row = conn.execute(
            "SELECT triggered_at = inserted_at FROM v1_durable_event_log_entry"
        ).fetchone()
        assert row == (True,)
        assert faithful(conn, V142, only_sha(V142)) == []

"""Hatchet's patches for the downs between v0.55.0 and v0.86.15, without the git snapshot.

Each builder runs on short statements written here in the shape of upstream's down (and, where
it reads an older migration, on a short stand-in for that file); where the behaviour matters it
also runs on real PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
import pytest

from migrator.catalog import ConnectionCatalog
from migrator.database import connect
from migrator.enum_rebuild import rebuild_statement
from migrator.hatchet.profile import PROFILE
from migrator.plan import Plan
from migrator.planner import build_plan
from migrator.profile import Catalog, EmptyCatalog, Patch, PatchContext, Profile
from migrator.runner import run_plan
from migrator.sources import MigrationFile, blob_sha
from migrator.sqlparser import parse_sql
from migrator.versions import VersionRow, read_version_rows
from tests.goose_up import INSERT_VERSION_SQL, ensure_version_table

V0_19_0 = 20240402034010
V1_0_0 = 20250224171706
V1_0_1 = 20250312151904
V1_0_2 = 20250313202558
V1_0_5 = 20250319192344
V1_0_6 = 20250320210345
V1_0_12 = 20250414130637
V1_0_17 = 20250507193114
V1_0_42 = 20250912162812
V1_0_49 = 20251008083410
V1_0_53 = 20251113195351
V1_0_59 = 20251212170748
V1_0_60 = 20251216163945
V1_0_69 = 20260119123835
V1_0_71 = 20260128120000
V1_0_83 = 20260302193424
V1_0_87 = 20260313020633
V1_0_89 = 20260313020635
V1_0_90 = 20260316185928
V1_0_91 = 20260323184100
V1_0_97 = 20260417212701
V1_0_106 = 20260509015727
V1_0_108 = 20260511174313

SHAS: dict[int, tuple[str, ...]] = {
    V1_0_1: ("728d3df8f07c6a27ba322e65d2621198ea1fb344",),
    V1_0_2: ("3bf05a148d9060cc6ae1a07f4518df369413a509",),
    V1_0_6: ("10a3acd4ce4eb51162331064769afae482a74d3e",),
    V1_0_12: ("93531a812fdf5fde476c66d4b3343a1d4a6f4e9a",),
    V1_0_17: ("68c4fc995f2261c100eab5a226a5515b76a089f8",),
    V1_0_42: ("ffb311598b0919b2a190b60ca755ee91a4a16252",),
    V1_0_53: ("73db168ecab570d2b69fdc8c1e6b657ba3203aeb",),
    V1_0_69: (
        "2f5dddb4d66199dab3e8932a8ba54ca35074ca61",
        "92a5ee97edf68d2b0d66146e589bba6fc573035e",
        "fe7e8c96fd5f1158d3bffa802dd7c7263cf87a90",
    ),
    V1_0_71: ("f05d705943e966c566e60d81e160eed649eb9f46",),
    V1_0_83: ("e1aba014646f36e40116f848439f9488b2f90f99",),
    V1_0_87: ("eb36ec204860a50b6a6cf19362cedbecf010e4c8",),
    V1_0_89: ("f191e56d3a69d551f6b56b7a746a56184dda7818",),
    V1_0_91: ("f29b4de1d3e52bbb4ebb8e0d16eccacf46b39ec1",),
    V1_0_97: ("64a287aba3367912abba7fb4e241da53abe807af",),
    V1_0_106: ("1c8f644dc50b24cb5dbff62591f71b99b5912711",),
    V1_0_108: (
        "b3fdec23b22cd12f68f0e8a5aaaa9a491f03bcc9",
        "66736b1c8f4da8ceb67e940cc1c9638c623951e2",
        "6aa634d2b56776b4a85983708f5a60ebba9fdfbc",
    ),
}


def patch(version: int, sha: str | None = None) -> Patch:
    found = PROFILE.patch_for(version, sha or SHAS[version][0])
    assert found is not None, f"no patch for {version}"
    return found


def build(
    version: int,
    upstream: Sequence[str],
    files: dict[int, bytes] | None = None,
    catalog: Catalog | None = None,
) -> list[str]:
    return patch(version).build(
        PatchContext(catalog or EmptyCatalog(), list(upstream), files or {})
    )


def down_statements(text: str) -> list[str]:
    return list(parse_sql(text.encode(), filename="t.sql", direction="down").statements)


def run(url: str, statements: Sequence[str]) -> None:
    with psycopg.connect(url) as conn, conn.transaction():
        for statement in statements:
            conn.execute(statement.encode())


def rows(url: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query.encode()).fetchall()


def labels(url: str, type_name: str) -> list[str]:
    query = f"SELECT unnest(enum_range(NULL::{type_name}))::text"
    return [str(r[0]) for r in rows(url, query)]


# -- every patch: its SHAs, a reason, the files it reads -------------------------------------


@pytest.mark.parametrize("version", sorted(SHAS))
def test_each_patch_is_keyed_by_its_upstream_shas(version: int) -> None:
    for sha in SHAS[version]:
        found = patch(version, sha)
        assert found.version == version and sha in found.blob_shas
        assert found.reason and "\n" not in found.reason
    assert PROFILE.patch_for(version, "0" * 40) is None


def test_patches_read_the_older_migrations_they_restore_from() -> None:
    assert PROFILE.reads_for([V1_0_91]) == {V1_0_90}
    assert PROFILE.reads_for([V1_0_89, V1_0_83, V1_0_53, V1_0_2, V1_0_1]) == {V1_0_0}
    assert PROFILE.reads_for([V1_0_71]) == {V1_0_49}
    assert PROFILE.reads_for([V1_0_17]) == {V1_0_5}
    assert PROFILE.reads_for([V1_0_6]) == {V0_19_0}
    assert PROFILE.reads_for([V1_0_106]) == {V1_0_83}
    assert PROFILE.reads_for([V1_0_108]) == {V1_0_59, V1_0_60}


# -- restored definitions ----------------------------------------------------------------------


def older_up(*commands: str) -> bytes:
    """A stand-in for an older migration: one StatementBegin block holding ``commands``."""
    body = "\n\n".join(commands)
    return f"-- +goose Up\n-- +goose StatementBegin\n{body}\n-- +goose StatementEnd\n".encode()


def function(name: str, text: str, args: str = "") -> str:
    return (
        f"CREATE OR REPLACE FUNCTION {name}({args}) RETURNS text LANGUAGE plpgsql AS $$\n"
        f"BEGIN\n    -- {text}\n    RETURN '{text}';\nEND;\n$$;"
    )


RESTORED = [
    (V1_0_89, V1_0_0, "create_v1_olap_partition_with_date_and_status", "targettablename text"),
    (V1_0_83, V1_0_0, "v1_retry_queue_item_delete_function", ""),
    (V1_0_71, V1_0_49, "cleanup_workflow_concurrency_slots", "p_strategy_id bigint"),
    (V1_0_53, V1_0_0, "v1_tasks_olap_insert_function", ""),
    (V1_0_17, V1_0_5, "v1_task_update_function", ""),
    (V1_0_6, V0_19_0, "get_refill_value", 'rate_limit "RateLimit"'),
    (V1_0_106, V1_0_83, "v1_task_insert_function", ""),
]


@pytest.mark.parametrize(("version", "older", "name", "args"), RESTORED)
def test_a_function_the_down_recreates_differently_gets_the_older_body(
    version: int, older: int, name: str, args: str
) -> None:
    # Upstream's down: other commands around its (different) copy of the function.
    upstream = [
        "ALTER TABLE t DROP COLUMN IF EXISTS c;",
        "DROP FUNCTION IF EXISTS newer_helper();\n\n"
        + function(name, "as the down has it", args)
        + "\n\nSELECT 1;",
    ]
    files = {
        older: older_up(
            "CREATE TABLE older_table (id int);",
            function(name, "as the older release has it", args),
            function(name + "_other", "unrelated"),
        )
    }
    out = build(version, upstream, files)
    assert out[0] == upstream[0]
    assert out[1].startswith("DROP FUNCTION IF EXISTS newer_helper();")
    assert out[1].endswith("SELECT 1;")
    assert "as the older release has it" in out[1] and "as the down has it" not in out[1]
    assert "older_table" not in out[1] and name + "_other" not in out[1]


def test_a_restore_blocks_the_step_when_the_older_file_lacks_the_definition() -> None:
    with pytest.raises(LookupError):
        build(V1_0_89, ["SELECT 1;"], {V1_0_0: older_up("SELECT 2;")})
    with pytest.raises(LookupError):
        build(V1_0_89, ["SELECT 1;"], {})


def test_restored_comments_reach_the_catalog(database_url: str) -> None:
    """The restored body is byte for byte the older one, comments included (what the catalog
    compares)."""
    name = "v1_retry_queue_item_delete_function"
    run(database_url, [function(name, "as the down has it")])
    out = build(
        V1_0_83,
        [function(name, "as the down has it")],
        {V1_0_0: older_up(function(name, "v1_0_0"))},
    )
    run(database_url, out)
    [(body,)] = rows(database_url, f"SELECT prosrc FROM pg_proc WHERE proname = '{name}'")
    assert "-- v1_0_0" in body


def test_missing_down_of_v1_0_2_restores_both_concurrency_slot_functions() -> None:
    insert = "after_v1_concurrency_slot_insert_function"
    delete = "after_v1_concurrency_slot_delete_function"
    files = {V1_0_0: older_up(function(insert, "v1_0_0 insert"), function(delete, "v1_0_0 del"))}
    out = build(V1_0_2, [], files)
    assert len(out) == 2
    assert insert in out[0] and "v1_0_0 insert" in out[0]
    assert delete in out[1] and "v1_0_0 del" in out[1]


def test_missing_down_of_v1_0_1_recreates_the_task_runtime_trigger(database_url: str) -> None:
    func = "after_v1_task_runtime_delete_function"
    trigger = (
        "CREATE TRIGGER after_v1_task_runtime_delete\nAFTER DELETE ON v1_task_runtime\n"
        f"REFERENCING OLD TABLE AS deleted_rows\nFOR EACH STATEMENT\nEXECUTE FUNCTION {func}();"
    )
    trigger_fn = (
        f"CREATE OR REPLACE FUNCTION {func}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        "BEGIN\n    RETURN NULL;\nEND;\n$$;"
    )
    files = {V1_0_0: older_up("CREATE TABLE v1_task_runtime (id int);", trigger_fn, trigger)}
    out = build(V1_0_1, [], files)
    assert out == [trigger_fn.rstrip(";"), trigger.rstrip(";")]  # commands, as split
    run(database_url, ["CREATE TABLE v1_task_runtime (id int)", *out])
    assert rows(database_url, "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal") == [
        ("after_v1_task_runtime_delete",)
    ]


def body(text: str) -> str:
    """The prosrc of :func:`function` ``(name, text)``."""
    return f"\nBEGIN\n    -- {text}\n    RETURN '{text}';\nEND;\n"


def test_v1_0_106_down_restores_the_insert_function_whitespace_and_all(database_url: str) -> None:
    name = "v1_task_insert_function"
    layout = function(name, "v1_0_83").replace("';\n", "'\n    ;\n")  # the down's " IS NULL\n ;"
    files = {V1_0_83: older_up(function(name, "v1_0_83"))}
    out = build(V1_0_106, ["DROP TABLE IF EXISTS t;\n\n" + layout], files)
    assert out == ["DROP TABLE IF EXISTS t;\n\n" + function(name, "v1_0_83")]
    run(database_url, [layout])
    run(database_url, out)
    assert rows(database_url, f"SELECT prosrc FROM pg_proc WHERE proname = '{name}'") == [
        (body("v1_0_83"),)
    ]


def created(name: str, text: str, args: str) -> str:
    """:func:`function` as v1_0_108's down writes it: ``CREATE FUNCTION``, no OR REPLACE."""
    return function(name, text, args).replace("CREATE OR REPLACE FUNCTION", "CREATE FUNCTION")


def test_v1_0_108_down_restores_the_offload_functions_of_v1_0_59_and_v1_0_60(
    database_url: str,
) -> None:
    plain, olap = "list_paginated_payloads_for_offload", "list_paginated_olap_payloads_for_offload"
    chunks, size = "create_payload_offload_range_chunks", "compute_payload_batch_size"
    old, new = "partition_date date", "partition_date date, batch_size integer"
    # Upstream's down: one block dropping each newer signature and creating the older one.
    upstream = [
        "\n".join(
            [
                f"DROP FUNCTION {plain}(\n    {new}\n);",
                created(plain, "down list, with comments", old),
                f"DROP FUNCTION {size}(\n    {new}\n);",
                created(size, "down size", old),
                f"DROP FUNCTION {chunks}(\n    {new}\n);",
                created(chunks, "down chunks, with comments", old),
                "ALTER TABLE IF EXISTS v1_payload_cutover_job_offset DROP COLUMN last_external_id;",
                f"DROP FUNCTION {olap}(\n    {new}\n);",
                created(olap, "down olap list, with comments", old),
            ]
        )
    ]
    files = {
        V1_0_59: older_up(
            f"DROP FUNCTION {plain}(date, int);",
            function(plain, "v1_0_59 list (v1_0_60 replaced it)", old),
            function(chunks, "v1_0_59 chunks", old),
        ),
        V1_0_60: older_up(
            f"DROP FUNCTION {plain}(date, uuid);",
            function(plain, "v1_0_60 list", old),
            f"DROP FUNCTION {olap}(date, uuid);",
            function(olap, "v1_0_60 olap list", old),
        ),
    }
    for sha in SHAS[V1_0_108]:
        assert patch(V1_0_108, sha).build(PatchContext(EmptyCatalog(), upstream, files)) == build(
            V1_0_108, upstream, files
        )
    [out] = build(V1_0_108, upstream, files)
    assert [line for line in out.split("\n") if "FUNCTION" in line] == [
        f"DROP FUNCTION {plain}(",
        f"CREATE OR REPLACE FUNCTION {plain}({old}) RETURNS text LANGUAGE plpgsql AS $$",
        f"DROP FUNCTION {size}(",
        f"CREATE FUNCTION {size}({old}) RETURNS text LANGUAGE plpgsql AS $$",
        f"DROP FUNCTION {chunks}(",
        f"CREATE OR REPLACE FUNCTION {chunks}({old}) RETURNS text LANGUAGE plpgsql AS $$",
        f"DROP FUNCTION {olap}(",
        f"CREATE OR REPLACE FUNCTION {olap}({old}) RETURNS text LANGUAGE plpgsql AS $$",
    ]
    assert "with comments" not in out and "v1_0_59 list" not in out
    # On PostgreSQL, from v1_0_108's up's signatures: each restored body is the older up's.
    run(database_url, [function(f, "v1_0_108", new) for f in (plain, size, chunks, olap)])
    run(database_url, [out])
    assert rows(
        database_url,
        f"SELECT proname::text, prosrc FROM pg_proc WHERE proname IN "
        f"('{plain}', '{size}', '{chunks}', '{olap}') ORDER BY proname",
    ) == [
        (size, body("down size")),
        (chunks, body("v1_0_59 chunks")),
        (olap, body("v1_0_60 olap list")),
        (plain, body("v1_0_60 list")),
    ]


# -- v1_0_91: the otel tables its up drops -------------------------------------------------------

V1_0_90_UP = b"""-- +goose Up

CREATE TYPE v1_otel_span_kind AS ENUM ('UNSPECIFIED');

CREATE TABLE v1_otel_trace (
    tenant_id UUID NOT NULL,
    start_time TIMESTAMPTZ NOT NULL,
    task_run_external_id UUID,
    workflow_run_external_id UUID,
    PRIMARY KEY (tenant_id, start_time)
) PARTITION BY RANGE (start_time);

CREATE INDEX idx_v1_otel_trace_task_lookup
    ON v1_otel_trace (tenant_id, task_run_external_id);

CREATE INDEX idx_v1_otel_trace_workflow_lookup
    ON v1_otel_trace (tenant_id, workflow_run_external_id);

SELECT create_v1_range_partition('v1_otel_trace'::TEXT, NOW()::DATE);
SELECT create_v1_range_partition('v1_otel_trace'::TEXT, (NOW() + INTERVAL '1 day')::DATE);

CREATE TABLE v1_otel_trace_lookup_table (
    tenant_id UUID NOT NULL,
    start_time TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, start_time)
) PARTITION BY RANGE (start_time);

SELECT create_v1_range_partition('v1_otel_trace_lookup_table'::TEXT, NOW()::DATE);
SELECT create_v1_range_partition('v1_otel_trace_lookup_table'::TEXT, (NOW() + INTERVAL '1 day')
    ::DATE);

-- +goose Down
DROP TABLE v1_otel_trace_lookup_table;
DROP TABLE v1_otel_trace;
DROP TYPE v1_otel_span_kind;
"""


def test_v1_0_91_down_recreates_the_tables_its_up_dropped(database_url: str) -> None:
    upstream = ["DROP TABLE v1_otel_trace_lookup_olap;", "DROP TABLE v1_otel_trace_olap;"]
    out = build(V1_0_91, upstream, {V1_0_90: V1_0_90_UP})
    assert out[:2] == upstream
    assert [s.split("\n")[0] for s in out[2:]] == [
        "CREATE TABLE v1_otel_trace (",
        "CREATE INDEX idx_v1_otel_trace_task_lookup",
        "CREATE INDEX idx_v1_otel_trace_workflow_lookup",
        "SELECT create_v1_range_partition('v1_otel_trace'::TEXT, NOW()::DATE);",
        "SELECT create_v1_range_partition('v1_otel_trace'::TEXT, (NOW() + INTERVAL '1 day')"
        "::DATE);",
        "CREATE TABLE v1_otel_trace_lookup_table (",
        "SELECT create_v1_range_partition('v1_otel_trace_lookup_table'::TEXT, NOW()::DATE);",
        "SELECT create_v1_range_partition('v1_otel_trace_lookup_table'::TEXT, (NOW() + "
        "INTERVAL '1 day')",
    ]
    # With them back, v1_0_90's own down (upstream, unpatched) runs.
    partition_fn = """CREATE FUNCTION create_v1_range_partition(t text, d date) RETURNS int
        LANGUAGE plpgsql AS $$ BEGIN
        EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                       t || '_' || to_char(d, 'YYYYMMDD'), t, d, d + 1);
        RETURN 1; END $$"""
    setup = [
        partition_fn,
        "CREATE TYPE v1_otel_span_kind AS ENUM ('UNSPECIFIED')",
        "CREATE TABLE v1_otel_trace_olap (id int)",
        "CREATE TABLE v1_otel_trace_lookup_olap (id int)",
    ]
    run(database_url, [*setup, *out, *down_statements(V1_0_90_UP.decode())])
    assert rows(database_url, "SELECT count(*) FROM pg_class WHERE relname LIKE 'v1_otel%'") == [
        (0,)
    ]


# -- v1_0_97: a column no up created -------------------------------------------------------------


def test_v1_0_97_down_does_not_add_readable_summary(database_url: str) -> None:
    upstream = down_statements(
        """-- +goose Up
-- +goose Down
-- +goose StatementBegin
ALTER TABLE v1_durable_event_log_entry
    DROP COLUMN user_message,
    DROP COLUMN wait_data,
    DROP COLUMN satisfied_at,
    ADD COLUMN readable_summary TEXT
;
ALTER TABLE v1_tasks_olap DROP COLUMN is_durable;
-- +goose StatementEnd
"""
    )
    out = build(V1_0_97, upstream)
    assert len(out) == 1 and "readable_summary" not in out[0]
    run(
        database_url,
        [
            "CREATE TABLE v1_durable_event_log_entry (id int, user_message text, wait_data jsonb,"
            " satisfied_at timestamptz)",
            "CREATE TABLE v1_tasks_olap (id int, is_durable boolean)",
            *out,
        ],
    )
    assert rows(
        database_url,
        "SELECT attname FROM pg_attribute WHERE attrelid = 'v1_durable_event_log_entry'::regclass"
        " AND attnum > 0 AND NOT attisdropped",
    ) == [("id",)]


# -- v1_0_69: LimitResource ------------------------------------------------------------------------

V1_0_69_DOWN = """-- +goose Up
-- +goose Down
-- +goose StatementBegin

LOCK TABLE "TenantResourceLimit" IN ACCESS EXCLUSIVE MODE;

CREATE TYPE "LimitResource_old" AS ENUM (
    'WORKFLOW_RUN',
    'TASK_RUN',
    'EVENT',
    'WORKER',
    'WORKER_SLOT',
    'CRON',
    'SCHEDULE',
    'INCOMING_WEBHOOK'
);

ALTER TABLE "TenantResourceLimit"
    ALTER COLUMN resource TYPE "LimitResource_old"
    USING resource::text::"LimitResource_old";

DROP TYPE "LimitResource" CASCADE;

ALTER TYPE "LimitResource_old" RENAME TO "LimitResource";

-- +goose StatementEnd
"""

LIMIT_RESOURCE_NOW = [
    """CREATE TYPE "LimitResource" AS ENUM ('TASK_RUN', 'EVENT', 'WORKER', 'WORKER_SLOT',
        'CRON', 'SCHEDULE', 'INCOMING_WEBHOOK')""",
    'CREATE TABLE "TenantResourceLimit" (id int PRIMARY KEY, resource "LimitResource" NOT NULL)',
    """CREATE TABLE "TenantResourceLimitAlert" (id int PRIMARY KEY,
        resource "LimitResource" NOT NULL)""",
    """INSERT INTO "TenantResourceLimit" VALUES (1, 'TASK_RUN'), (2, 'CRON')""",
    """INSERT INTO "TenantResourceLimitAlert" VALUES (1, 'WORKER_SLOT')""",
]


def test_v1_0_69_down_keeps_the_alert_column_and_the_release_label_order(
    database_url: str,
) -> None:
    run(database_url, LIMIT_RESOURCE_NOW)
    upstream = down_statements(V1_0_69_DOWN)
    for sha in SHAS[V1_0_69]:
        assert patch(V1_0_69, sha) is patch(V1_0_69)
    with connect(database_url, read_only=True) as conn:
        out = build(V1_0_69, upstream, catalog=ConnectionCatalog(conn))
    run(database_url, out)
    assert labels(database_url, '"LimitResource"') == [
        "WORKFLOW_RUN", "EVENT", "WORKER", "CRON", "SCHEDULE", "TASK_RUN", "WORKER_SLOT",
        "INCOMING_WEBHOOK",
    ]  # fmt: skip
    assert rows(database_url, 'SELECT id, resource::text FROM "TenantResourceLimitAlert"') == [
        (1, "WORKER_SLOT")
    ]
    assert rows(
        database_url,
        "SELECT count(*) FROM pg_attribute WHERE atttypid = '\"LimitResource\"'::regtype",
    ) == [(2,)]


def test_v1_0_69_down_converts_the_alert_column_only_where_it_exists() -> None:
    upstream = down_statements(V1_0_69_DOWN)
    [out] = build(V1_0_69, upstream)  # EmptyCatalog: no alert column (an old v1_0_69 dropped it)
    assert '"TenantResourceLimitAlert"' not in out
    assert "'SCHEDULE',\n    'TASK_RUN'" in out


# -- v1_0_42 and v1_0_12 -------------------------------------------------------------------------


def test_v1_0_42_down_drops_the_wal_function_its_up_created(database_url: str) -> None:
    upstream = ["DROP TABLE v1_payload_wal;\nDROP TYPE v1_payload_type;"]
    out = build(V1_0_42, upstream)
    assert out[-1] == upstream[0] and len(out) == 3
    run(
        database_url,
        [
            "CREATE TYPE v1_payload_type AS ENUM ('TASK_INPUT')",
            "CREATE TABLE v1_payload_wal (id int)",
            "CREATE FUNCTION find_matching_tenants_in_payload_wal_partition(partition_number int)"
            " RETURNS uuid[] LANGUAGE sql AS 'SELECT ARRAY[]::uuid[]'",
            "CREATE FUNCTION list_paginated_payloads_for_offload(t v1_payload_type) RETURNS int"
            " LANGUAGE sql AS 'SELECT 1'",
            "CREATE FUNCTION list_paginated_payloads_for_offload(n int) RETURNS int"
            " LANGUAGE sql AS 'SELECT 1'",
            *out,
        ],
    )
    assert rows(
        database_url,
        "SELECT count(*) FROM pg_proc WHERE proname IN "
        "('find_matching_tenants_in_payload_wal_partition', 'list_paginated_payloads_for_offload')",
    ) == [(0,)]


def test_v1_0_12_down_adds_the_cron_foreign_key_not_valid(database_url: str) -> None:
    fkey = "WorkflowRunTriggeredBy_cronParentId_cronSchedule_cronName_fkey"
    upstream = [
        f'ALTER TABLE "WorkflowRunTriggeredBy" ADD CONSTRAINT "{fkey}" FOREIGN KEY ("cronParentId",'
        ' "cronSchedule", "cronName") REFERENCES "WorkflowTriggerCronRef"("parentId", "cron",'
        ' "name") ON DELETE SET NULL ON UPDATE CASCADE;'
    ]
    out = build(V1_0_12, upstream)
    assert out == [upstream[0].replace("CASCADE;", "CASCADE NOT VALID;")]
    run(
        database_url,
        [
            """CREATE TABLE "WorkflowTriggerCronRef" ("parentId" uuid, cron text, name text,
                UNIQUE ("parentId", cron, name))""",
            """CREATE TABLE "WorkflowRunTriggeredBy" ("cronParentId" uuid, "cronSchedule" text,
                "cronName" text)""",
            # A row the older release kept although its cron is gone: NOT VALID keeps it.
            """INSERT INTO "WorkflowRunTriggeredBy" VALUES (gen_random_uuid(), '* * * * *', 'x')""",
            *out,
        ],
    )
    assert rows(
        database_url, f"SELECT convalidated FROM pg_constraint WHERE conname = '{fkey}'"
    ) == [(False,)]


# -- v1_0_87: EVICTED out of v1_readable_status_olap, a partition key ---------------------------

OLAP_SCHEMA = """
CREATE TYPE v1_readable_status_olap AS ENUM
    ('QUEUED', 'RUNNING', 'CANCELLED', 'FAILED', 'COMPLETED', 'EVICTED');

CREATE TABLE v1_runs_olap (
    tenant_id uuid NOT NULL,
    id bigint NOT NULL,
    inserted_at timestamptz NOT NULL,
    readable_status v1_readable_status_olap NOT NULL DEFAULT 'QUEUED',
    kind text NOT NULL,
    PRIMARY KEY (inserted_at, id, readable_status, kind)
) PARTITION BY RANGE (inserted_at);
CREATE INDEX ix_v1_runs_olap_tenant_id ON v1_runs_olap (tenant_id);

CREATE TABLE v1_statuses_olap (
    external_id uuid PRIMARY KEY,
    readable_status v1_readable_status_olap NOT NULL DEFAULT 'QUEUED'
);

-- A day partition is itself partitioned by status, one table per label.
CREATE FUNCTION create_status_partition(parent text, status v1_readable_status_olap)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE leaf text := lower(parent || '_' || status::text);
BEGIN
    EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING INDEXES)', leaf, parent);
    EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES IN (%L)', parent, leaf, status);
END $$;

CREATE FUNCTION create_day(day date) RETURNS void LANGUAGE plpgsql AS $$
DECLARE part text := 'v1_runs_olap_' || to_char(day, 'YYYYMMDD');
BEGIN
    EXECUTE format('CREATE TABLE %I (LIKE v1_runs_olap INCLUDING INDEXES)'
                   ' PARTITION BY LIST (readable_status)', part);
    PERFORM create_status_partition(part, s)
       FROM unnest(enum_range(NULL::v1_readable_status_olap)) s;
    EXECUTE format('ALTER TABLE v1_runs_olap ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                   part, day, day + 1);
END $$;

SELECT create_day('2026-01-01');
SELECT create_day('2026-01-02');
-- An index made after the partitions: theirs get generated names.
CREATE INDEX ix_v1_runs_olap_kind ON v1_runs_olap (kind);

INSERT INTO v1_runs_olap
SELECT gen_random_uuid(), n, timestamptz '2026-01-01 00:00:00+00' + n * interval '1 hour',
       (enum_range(NULL::v1_readable_status_olap))[1 + n % 6], 'TASK'
  FROM generate_series(0, 47) n;
INSERT INTO v1_statuses_olap VALUES (gen_random_uuid(), 'EVICTED'), (gen_random_uuid(), 'FAILED');
"""

TREE_SQL = """
SELECT c.relname, c.relkind::text, coalesce(pg_get_expr(c.relpartbound, c.oid), ''),
       coalesce(pg_get_partkeydef(c.oid), ''), coalesce(p.relname, ''),
       (SELECT string_agg(ic.relname || ':' || coalesce(pi.relname, '-') || ':' || i.indisvalid,
                          ',' ORDER BY ic.relname)
          FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
          LEFT JOIN pg_inherits ih ON ih.inhrelid = ic.oid
          LEFT JOIN pg_class pi ON pi.oid = ih.inhparent
         WHERE i.indrelid = c.oid),
       (SELECT string_agg(conname || ':' || contype::text, ',' ORDER BY conname)
          FROM pg_constraint WHERE conrelid = c.oid)
  FROM pg_partition_tree('v1_runs_olap') t
  JOIN pg_class c ON c.oid = t.relid
  LEFT JOIN pg_inherits h ON h.inhrelid = c.oid
  LEFT JOIN pg_class p ON p.oid = h.inhparent
 WHERE c.relname NOT LIKE '%evicted'
 ORDER BY 1
"""

V1_0_87_FILE = b"""-- +goose Up
ALTER TYPE v1_readable_status_olap ADD VALUE IF NOT EXISTS 'EVICTED';

-- +goose Down
-- NOTE: Postgres does not support removing enum values.
"""


def plan_and_run(
    url: str, migrations: dict[int, MigrationFile], target: int, profile: Profile
) -> Plan:
    def replan(version_rows: Sequence[VersionRow], catalog: Catalog) -> Plan:
        return build_plan(version_rows, migrations, target, profile=profile, catalog=catalog)

    with connect(url, read_only=True) as conn:
        plan = replan(read_version_rows(conn), ConnectionCatalog(conn))
    run_plan(url, plan, replan, lock_timeout=2)
    return plan


def test_v1_0_87_removes_evicted_around_the_status_partitions(database_url: str) -> None:
    run(database_url, [OLAP_SCHEMA])
    tree_before = rows(database_url, TREE_SQL)
    kept = rows(
        database_url,
        "SELECT id, readable_status::text FROM v1_runs_olap WHERE readable_status <> 'EVICTED'"
        " ORDER BY id",
    )
    # The real patch, keyed to this stand-in file's SHA, run by the planner and the runner as a
    # Hatchet downgrade would (the planner adds its label fixes and its own rebuild after it).
    migration = MigrationFile(
        V1_0_87, "20260313020633_v1_0_87_readable_status_enum.sql", "sql", V1_0_87_FILE, "test",
        blob_sha(V1_0_87_FILE),
    )  # fmt: skip
    real = patch(V1_0_87)
    keyed = Patch(V1_0_87, frozenset({blob_sha(V1_0_87_FILE)}), real.reason, real.build)
    with psycopg.connect(database_url, autocommit=True) as conn:
        ensure_version_table(conn)
        conn.execute(INSERT_VERSION_SQL, (V1_0_87, True))
    plan = plan_and_run(
        database_url,
        {V1_0_87: migration},
        V1_0_87 - 1,
        Profile(name="test", patches={V1_0_87: [keyed]}),
    )
    [step] = plan.steps
    assert step.patched and step.data_loss == [
        "8 row(s) of public.v1_runs_olap where readable_status IN ('EVICTED'): enum label "
        "'EVICTED' of type v1_readable_status_olap does not exist in the older release",
        "1 row(s) of public.v1_statuses_olap where readable_status IN ('EVICTED'): enum label "
        "'EVICTED' of type v1_readable_status_olap does not exist in the older release",
    ]
    assert labels(database_url, "v1_readable_status_olap") == [
        "QUEUED", "RUNNING", "CANCELLED", "FAILED", "COMPLETED",
    ]  # fmt: skip
    # Same tree, same table, index and constraint names, every index attached; EVICTED gone.
    assert rows(database_url, TREE_SQL) == tree_before
    assert rows(database_url, "SELECT count(*) FROM pg_class WHERE relname LIKE '%evicted'") == [
        (0,)
    ]
    assert (
        rows(database_url, "SELECT id, readable_status::text FROM v1_runs_olap ORDER BY id") == kept
    )
    assert rows(database_url, "SELECT readable_status::text FROM v1_statuses_olap") == [("FAILED",)]
    # The engine's helper (the type in its signature) and the parent's default survive.
    run(
        database_url,
        [
            "SELECT create_day('2026-01-03')",
            "INSERT INTO v1_runs_olap (tenant_id, id, inserted_at, kind)"
            " VALUES (gen_random_uuid(), 99, '2026-01-03 01:00+00', 'DAG')",
        ],
    )
    assert rows(
        database_url, "SELECT tableoid::regclass::text FROM v1_runs_olap WHERE id = 99"
    ) == [("v1_runs_olap_20260103_queued",)]
    # Nothing left for a second rebuild to do, and no leftover bookkeeping table.
    run(database_url, [rebuild_statement("v1_readable_status_olap", ["EVICTED"])])
    assert rows(database_url, "SELECT to_regclass('pg_temp.hatchet_schema_relist')") == [(None,)]


def test_v1_0_87_without_partitions_is_the_rebuild_alone(database_url: str) -> None:
    out = build(V1_0_87, [])
    assert len(out) == 3 and out[1] == rebuild_statement("v1_readable_status_olap", ["EVICTED"])
    run(
        database_url,
        [
            "CREATE TYPE v1_readable_status_olap AS ENUM ('QUEUED', 'EVICTED')",
            "CREATE TABLE v1_tasks_olap (s v1_readable_status_olap NOT NULL, d date NOT NULL)"
            " PARTITION BY RANGE (d)",
            *out,
        ],
    )
    assert labels(database_url, "v1_readable_status_olap") == ["QUEUED"]


def test_v1_0_87_refuses_a_status_partition_listing_evicted_with_other_labels(
    database_url: str,
) -> None:
    run(
        database_url,
        [
            "CREATE TYPE v1_readable_status_olap AS ENUM ('QUEUED', 'EVICTED')",
            "CREATE TABLE t (s v1_readable_status_olap NOT NULL, d date NOT NULL)"
            " PARTITION BY RANGE (d)",
            "CREATE TABLE t_1 PARTITION OF t FOR VALUES FROM ('2026-01-01') TO ('2026-01-02')"
            " PARTITION BY LIST (s)",
            "CREATE TABLE t_1_x PARTITION OF t_1 FOR VALUES IN ('QUEUED', 'EVICTED')",
        ],
    )
    with pytest.raises(psycopg.errors.RaiseException, match="lists a label to remove"):
        run(database_url, build(V1_0_87, []))
    assert labels(database_url, "v1_readable_status_olap") == ["QUEUED", "EVICTED"]

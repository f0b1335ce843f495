"""Python equivalents of the UP functions of Hatchet's Go migrations, for the verification builds.

``scripts/hatchet_build.py`` builds a database at a release by running upstream's ups; a ``.go``
file runs ``GO_UPS[version](conn)`` on an autocommit psycopg 3 connection (statements that must
run outside a transaction, such as ``CREATE INDEX CONCURRENTLY``, rely on that).

Each function does what the Go up does, statement for statement where the schema is concerned.
Batched backfills are reduced to one set-based statement with the same effect, and the ``v1_0_99``
copies run one table after the other where the Go code runs them concurrently.

``v1_0_99`` changed between releases; ``GO_UPS_BY_SHA`` maps every upstream blob SHA of every Go
file to its up, and ``GO_UPS`` (by version, ``v1_0_63``'s orphan version included) holds the
newest one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import psycopg

__all__ = ["GO_UPS", "GO_UPS_BY_SHA", "GoUp"]

GoUp = Callable[[psycopg.Connection[Any]], None]

_PARTITIONS = (
    "SELECT relid::regclass::text FROM pg_partition_tree(%s::regclass) WHERE level = %s ORDER BY 1"
)


def _quote(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'


def _partitions(conn: psycopg.Connection[Any], table: str, level: int) -> list[str]:
    """Hatchet's ``listLeafPartitions``: fails, like the Go code, when ``table`` is missing."""
    return [str(row[0]) for row in conn.execute(_PARTITIONS, (table, level)).fetchall()]


def _run(conn: psycopg.Connection[Any], statement: str) -> None:
    conn.execute(statement.encode(), prepare=False)


def up_v1_0_66(conn: psycopg.Connection[Any]) -> None:
    """``ix_<p>_tenant_id`` on every level-2 (concurrently) and level-1 partition of
    ``v1_runs_olap``, then ``ix_v1_runs_olap_tenant_id`` on the parent (attaching them)."""
    columns = "(tenant_id, inserted_at, id, readable_status, kind)"
    for leaf in _partitions(conn, "v1_runs_olap", 2):
        _run(
            conn,
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {_quote(f'ix_{leaf}_tenant_id')} "
            f"ON {_quote(leaf)} {columns}",
        )
    for middle in _partitions(conn, "v1_runs_olap", 1):
        _run(
            conn,
            f"CREATE INDEX IF NOT EXISTS {_quote(f'ix_{middle}_tenant_id')} "
            f"ON {_quote(middle)} {columns}",
        )
    _run(
        conn,
        f"CREATE INDEX IF NOT EXISTS {_quote('ix_v1_runs_olap_tenant_id')} "
        f"ON {_quote('v1_runs_olap')} {columns}",
    )


def up_v1_0_79_c(conn: psycopg.Connection[Any]) -> None:
    """Backfills the multi-slot tables from ``Worker``, ``Step`` and ``v1_task_runtime``."""
    _run(
        conn,
        """
        INSERT INTO v1_worker_slot_config (tenant_id, worker_id, slot_type, max_units)
        SELECT "tenantId", "id", 'default'::text, "maxRuns"
        FROM "Worker"
        WHERE "maxRuns" IS NOT NULL AND "id" > '00000000-0000-0000-0000-000000000000'::uuid
        ON CONFLICT (tenant_id, worker_id, slot_type) DO NOTHING
        """,
    )
    _run(
        conn,
        """
        INSERT INTO v1_step_slot_request (tenant_id, step_id, slot_type, units)
        SELECT
            "tenantId", "id",
            CASE WHEN "isDurable" THEN 'durable'::text ELSE 'default'::text END,
            1
        FROM "Step"
        WHERE "id" > '00000000-0000-0000-0000-000000000000'::uuid
        ON CONFLICT (tenant_id, step_id, slot_type) DO NOTHING
        """,
    )
    _run(
        conn,
        """
        INSERT INTO v1_task_runtime_slot (
            tenant_id, task_id, task_inserted_at, retry_count, worker_id, slot_type, units
        )
        SELECT tenant_id, task_id, task_inserted_at, retry_count, worker_id, 'default'::text, 1
        FROM v1_task_runtime
        WHERE worker_id IS NOT NULL
          AND (task_id, task_inserted_at, retry_count)
              > (0::bigint, '1970-01-01 00:00:00+00'::timestamptz, 0::int)
        ON CONFLICT (task_id, task_inserted_at, retry_count, slot_type) DO NOTHING
        """,
    )


def up_v1_0_92(conn: psycopg.Connection[Any]) -> None:
    """``v1_log_line_tenant_id_level_idx_<p>`` concurrently on each partition of
    ``v1_log_line``, then ``v1_log_line_tenant_id_level_idx`` on the parent."""
    columns = "(tenant_id ASC, created_at DESC, level ASC)"
    for part in _partitions(conn, "v1_log_line", 1):
        _run(
            conn,
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS "
            f"{_quote(f'v1_log_line_tenant_id_level_idx_{part}')} ON {_quote(part)} {columns}",
        )
    _run(
        conn,
        f"CREATE INDEX IF NOT EXISTS {_quote('v1_log_line_tenant_id_level_idx')} "
        f"ON {_quote('v1_log_line')} {columns}",
    )


@dataclass(frozen=True)
class _Mirror:
    """One OLAP table ``v1_0_99`` copies into ``<table>_new``."""

    table: str
    columns: tuple[tuple[str, str], ...]
    """(name, definition) in table order."""
    indexes: tuple[str, ...]
    upsert_set: str
    """The ``DO UPDATE SET`` of the first ups' whole-table copy."""

    @property
    def new(self) -> str:
        return f"{self.table}_new"

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.columns]


def _higher_status_wins(table: str, column: str, extra: str = "") -> str:
    keep = (
        f"v1_status_to_priority({table}.readable_status) "
        f"> v1_status_to_priority(EXCLUDED.readable_status){extra}"
    )
    return f"{column} = CASE WHEN {keep} THEN {table}.{column} ELSE EXCLUDED.{column} END"


_STATUS = "v1_readable_status_olap NOT NULL DEFAULT 'QUEUED'"
_INSERTED_AT = "TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP"

_RUNS = _Mirror(
    table="v1_runs_olap",
    columns=(
        ("tenant_id", "UUID NOT NULL"),
        ("id", "BIGINT NOT NULL"),
        ("inserted_at", _INSERTED_AT),
        ("external_id", "UUID NOT NULL DEFAULT gen_random_uuid()"),
        ("readable_status", _STATUS),
        ("kind", "v1_run_kind NOT NULL"),
        ("workflow_id", "UUID NOT NULL"),
        ("workflow_version_id", "UUID NOT NULL"),
        ("additional_metadata", "JSONB"),
        ("parent_task_external_id", "UUID"),
    ),
    indexes=(
        "CREATE INDEX IF NOT EXISTS ix_v1_runs_olap_new_parent_task_external_id ON "
        "v1_runs_olap_new (parent_task_external_id) WHERE parent_task_external_id IS NOT NULL",
        "CREATE INDEX IF NOT EXISTS ix_v1_runs_olap_new_tenant_status_ins_at ON "
        "v1_runs_olap_new (tenant_id, readable_status, inserted_at DESC);",
    ),
    upsert_set=", ".join(
        _higher_status_wins("v1_runs_olap_new", column) for column in ("readable_status", "kind")
    ),
)

_TASK_COLUMNS: tuple[tuple[str, str], ...] = (
    ("tenant_id", "UUID NOT NULL"),
    ("id", "BIGINT NOT NULL"),
    ("inserted_at", _INSERTED_AT),
    ("external_id", "UUID NOT NULL DEFAULT gen_random_uuid()"),
    ("queue", "TEXT NOT NULL"),
    ("action_id", "TEXT NOT NULL"),
    ("step_id", "UUID NOT NULL"),
    ("workflow_id", "UUID NOT NULL"),
    ("workflow_version_id", "UUID NOT NULL"),
    ("workflow_run_id", "UUID NOT NULL"),
    ("schedule_timeout", "TEXT NOT NULL"),
    ("step_timeout", "TEXT"),
    ("priority", "INTEGER DEFAULT 1"),
    ("sticky", "v1_sticky_strategy_olap NOT NULL"),
    ("desired_worker_id", "UUID"),
    ("display_name", "TEXT NOT NULL"),
    ("input", "JSONB NOT NULL"),
    ("additional_metadata", "JSONB"),
    ("readable_status", _STATUS),
    ("latest_retry_count", "INT NOT NULL DEFAULT 0"),
    ("latest_worker_id", "UUID"),
    ("dag_id", "BIGINT"),
    ("dag_inserted_at", "TIMESTAMPTZ"),
    ("parent_task_external_id", "UUID"),
)


def _tasks(is_durable: bool) -> _Mirror:
    columns = _TASK_COLUMNS
    if is_durable:
        columns = (*columns, ("is_durable", "BOOLEAN NOT NULL DEFAULT FALSE"))
    return _Mirror(
        table="v1_tasks_olap",
        columns=columns,
        indexes=(
            "CREATE INDEX IF NOT EXISTS v1_tasks_olap_new_workflow_id_idx ON "
            "v1_tasks_olap_new (tenant_id, workflow_id)",
            "CREATE INDEX IF NOT EXISTS v1_tasks_olap_new_worker_id_idx ON "
            "v1_tasks_olap_new (tenant_id, latest_worker_id) WHERE latest_worker_id IS NOT NULL",
        ),
        upsert_set=_higher_status_wins(
            "v1_tasks_olap_new",
            "readable_status",
            " OR v1_tasks_olap_new.latest_retry_count > EXCLUDED.latest_retry_count",
        ),
    )


_DAGS = _Mirror(
    table="v1_dags_olap",
    columns=(
        ("id", "BIGINT NOT NULL"),
        ("inserted_at", _INSERTED_AT),
        ("tenant_id", "UUID NOT NULL"),
        ("external_id", "UUID NOT NULL"),
        ("display_name", "TEXT NOT NULL"),
        ("workflow_id", "UUID NOT NULL"),
        ("workflow_version_id", "UUID NOT NULL"),
        ("readable_status", _STATUS),
        ("input", "JSONB NOT NULL"),
        ("additional_metadata", "JSONB"),
        ("parent_task_external_id", "UUID"),
        ("total_tasks", "INT NOT NULL DEFAULT 1"),
    ),
    indexes=(
        "CREATE INDEX IF NOT EXISTS v1_dags_olap_new_workflow_id_idx ON "
        "v1_dags_olap_new (tenant_id, workflow_id)",
    ),
    upsert_set=_higher_status_wins("v1_dags_olap_new", "readable_status"),
)


def _create_mirror_table(mirror: _Mirror, unlogged: bool) -> str:
    """``<table>_new`` range-partitioned by day, with one partition per partition of the old
    table (its date read from the partition's name), optionally unlogged."""
    definitions = ",\n        ".join(f"{name} {definition}" for name, definition in mirror.columns)
    set_unlogged = (
        f"EXECUTE format('ALTER TABLE %I SET UNLOGGED', "
        f"'{mirror.new}_' || to_char(partition_date, 'YYYYMMDD'));"
        if unlogged
        else ""
    )
    return f"""
DO $$
DECLARE
    child          RECORD;
    partition_date date;
BEGIN
    CREATE TABLE IF NOT EXISTS {mirror.new} (
        {definitions},
        PRIMARY KEY (inserted_at, id)
    ) PARTITION BY RANGE (inserted_at);

    FOR child IN (
        SELECT c.relname
        FROM pg_class c
        JOIN pg_inherits i ON c.oid = i.inhrelid
        JOIN pg_class p ON p.oid = i.inhparent
        WHERE p.relname = '{mirror.table}' AND c.relkind IN ('r', 'p')
    ) LOOP
        partition_date := to_date(
            substring(child.relname from {len(mirror.table) + 2}), 'YYYYMMDD'
        );
        PERFORM create_v1_range_partition('{mirror.new}', partition_date);
        {set_unlogged}
    END LOOP;
END;
$$"""


def _mirror_function(mirror: _Mirror) -> str:
    """A row trigger function replaying every insert, update and delete on ``<table>_new``."""
    names = mirror.names
    payload = [name for name in names if name not in ("inserted_at", "id")]
    excluded = ",\n            ".join(f"{name} = EXCLUDED.{name}" for name in payload)
    updated = ",\n            ".join(f"{name} = NEW.{name}" for name in payload)
    return f"""CREATE OR REPLACE FUNCTION {mirror.table}_mirror_fn()
RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO {mirror.new} ({", ".join(names)})
        VALUES ({", ".join(f"NEW.{name}" for name in names)})
        ON CONFLICT (inserted_at, id) DO UPDATE SET
            {excluded};
        RETURN NEW;
    ELSIF TG_OP = 'UPDATE' THEN
        UPDATE {mirror.new} SET
            {updated}
        WHERE inserted_at = NEW.inserted_at AND id = NEW.id;
        RETURN NEW;
    ELSIF TG_OP = 'DELETE' THEN
        DELETE FROM {mirror.new}
        WHERE inserted_at = OLD.inserted_at AND id = OLD.id;
        RETURN OLD;
    END IF;
    RETURN NULL;
END;
$$"""


def _mirror_trigger(mirror: _Mirror) -> str:
    return (
        f"CREATE OR REPLACE TRIGGER {mirror.table}_mirror\n"
        f"AFTER INSERT OR UPDATE OR DELETE ON {mirror.table}\n"
        f"FOR EACH ROW EXECUTE FUNCTION {mirror.table}_mirror_fn()"
    )


Backfill = Literal["upsert", "not_exists", "by_partition"]
CountCheck = Literal["none", "exact", "within_1000"]


@dataclass(frozen=True)
class _V99:
    """What one upstream file of ``v1_0_99`` does differently."""

    is_durable: bool
    """``v1_tasks_olap_new`` has ``is_durable``."""
    backfill: Backfill
    """Whole-table upsert (higher status wins), whole-table insert of missing rows, or
    partition by partition with progress kept in ``v1_olap_backfill_progress``."""
    count_check: CountCheck
    drop_tenant_index: bool
    """Drops ``ix_v1_runs_olap_tenant_id`` first."""
    unlogged: bool
    """The ``_new`` partitions are created unlogged."""


def _backfill_whole(conn: psycopg.Connection[Any], mirror: _Mirror, spec: _V99) -> None:
    columns = ", ".join(mirror.names)
    sources = ", ".join(f"src.{name}" for name in mirror.names)
    if spec.backfill == "upsert":
        _run(
            conn,
            f"INSERT INTO {mirror.new} ({columns}) SELECT {sources} FROM {mirror.table} src "
            f"ON CONFLICT (inserted_at, id) DO UPDATE SET {mirror.upsert_set}",
        )
    else:
        _run(
            conn,
            f"INSERT INTO {mirror.new} ({columns}) SELECT {sources} FROM {mirror.table} src "
            f"WHERE NOT EXISTS (SELECT 1 FROM {mirror.new} n "
            "WHERE n.id = src.id AND n.inserted_at = src.inserted_at) ON CONFLICT DO NOTHING",
        )


def _backfill_by_partition(conn: psycopg.Connection[Any], mirror: _Mirror) -> None:
    columns = ", ".join(mirror.names)
    sources = ", ".join(f"src.{name}" for name in mirror.names)
    for part in _partitions(conn, mirror.table, 1):
        done = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM v1_olap_backfill_progress "
            "WHERE table_name = %s AND partition_name = %s)",
            (mirror.table, part),
        ).fetchone()
        if done is not None and done[0]:
            continue
        _run(
            conn,
            f"INSERT INTO {mirror.new} ({columns}) SELECT {sources} FROM {part} src "
            "ON CONFLICT DO NOTHING",
        )
        conn.execute(
            "INSERT INTO v1_olap_backfill_progress (table_name, partition_name) "
            "VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (mirror.table, part),
        )


def _check_counts(conn: psycopg.Connection[Any], mirror: _Mirror, check: CountCheck) -> None:
    if check == "none":
        return
    row = conn.execute(
        f"SELECT (SELECT COUNT(*) FROM {mirror.new}), (SELECT COUNT(*) FROM {mirror.table})"
    ).fetchone()
    assert row is not None
    copied, existing = int(row[0]), int(row[1])
    allowed = 0 if check == "exact" else 1000
    if abs(copied - existing) > allowed:
        raise RuntimeError(
            f"row count mismatch after backfill for {mirror.table}: "
            f"new={copied}, existing={existing}"
        )


def _make_v1_0_99(spec: _V99) -> GoUp:
    mirrors: Sequence[_Mirror] = (_RUNS, _tasks(spec.is_durable), _DAGS)

    def up(conn: psycopg.Connection[Any]) -> None:
        """Creates ``<t>_new`` for the runs, tasks and dags OLAP tables, mirrors writes into them
        with a row trigger and copies the existing rows."""
        by_partition = spec.backfill == "by_partition"
        if by_partition:
            _run(
                conn,
                "CREATE TABLE IF NOT EXISTS v1_olap_backfill_progress (\n"
                "    table_name     TEXT NOT NULL,\n"
                "    partition_name TEXT NOT NULL,\n"
                "    completed_at   TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,\n"
                "    PRIMARY KEY (table_name, partition_name)\n"
                ")",
            )
        for mirror in mirrors:
            if mirror.table == "v1_runs_olap" and spec.drop_tenant_index:
                _run(conn, "DROP INDEX IF EXISTS ix_v1_runs_olap_tenant_id")
            _run(conn, _create_mirror_table(mirror, spec.unlogged))
            for index in mirror.indexes:
                _run(conn, index)
            _run(conn, _mirror_function(mirror))
            _run(conn, _mirror_trigger(mirror))
            if by_partition:
                _backfill_by_partition(conn, mirror)
            else:
                _backfill_whole(conn, mirror, spec)
                _check_counts(conn, mirror, spec.count_check)
        if by_partition:
            for mirror in mirrors:
                _check_counts(conn, mirror, spec.count_check)
            _run(conn, "DROP TABLE IF EXISTS v1_olap_backfill_progress")

    return up


def up_v1_0_107(conn: psycopg.Connection[Any]) -> None:
    """``<p>_external_id_idx`` concurrently on each partition of ``v1_payload`` and
    ``v1_payloads_olap``, then ``<table>_external_id_idx`` on each parent."""
    for table in ("v1_payload", "v1_payloads_olap"):
        for part in _partitions(conn, table, 1):
            _run(
                conn,
                f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {_quote(f'{part}_external_id_idx')} "
                f"ON {_quote(part)} (external_id ASC);",
            )
        _run(
            conn,
            f"CREATE INDEX IF NOT EXISTS {table}_external_id_idx ON {table} (external_id ASC);",
        )


def up_v1_0_116(conn: psycopg.Connection[Any]) -> None:
    """Replaces ``ix_v1_runs_olap_tenant_status_ins_at`` with
    ``ix_v1_runs_olap_tenant_ins_at_status`` (built concurrently per partition first)."""
    columns = "(tenant_id, inserted_at DESC, readable_status)"
    for part in _partitions(conn, "v1_runs_olap", 1):
        _run(
            conn,
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS "
            f"{_quote(f'ix_{part}_tenant_ins_at_status')} ON {_quote(part)} {columns};",
        )
    _run(
        conn,
        f"CREATE INDEX IF NOT EXISTS {_quote('ix_v1_runs_olap_tenant_ins_at_status')} "
        f"ON v1_runs_olap {columns};",
    )
    _run(conn, f"DROP INDEX IF EXISTS {_quote('ix_v1_runs_olap_tenant_status_ins_at')};")


def up_v1_0_130(conn: psycopg.Connection[Any]) -> None:
    """Partial ``ix_<t>_idempotency_key`` on ``v1_tasks_olap`` and ``v1_runs_olap`` (per
    partition concurrently, then the parent)."""
    columns = "(idempotency_key, inserted_at) WHERE idempotency_key IS NOT NULL"
    for table in ("v1_tasks_olap", "v1_runs_olap"):
        for part in _partitions(conn, table, 1):
            _run(
                conn,
                f"CREATE INDEX CONCURRENTLY IF NOT EXISTS "
                f"{_quote(f'ix_{part}_idempotency_key')} ON {_quote(part)} {columns};",
            )
        _run(
            conn,
            f"CREATE INDEX IF NOT EXISTS {_quote(f'ix_{table}_idempotency_key')} "
            f"ON {_quote(table)} {columns};",
        )


def up_v1_0_137(conn: psycopg.Connection[Any]) -> None:
    """Unique ``<p>_external_id_seen_at`` on each partition of ``v1_event`` (deleting duplicate
    rows first, skipping partitions whose index is already valid), then on the parent."""
    for part in _partitions(conn, "v1_event", 1):
        index = f"{part}_external_id_seen_at"
        valid = conn.execute(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = %s",
            (index,),
        ).fetchone()
        if valid is not None and valid[0]:
            continue
        _run(conn, f"DROP INDEX CONCURRENTLY IF EXISTS {_quote(index)};")
        _run(
            conn,
            f"DELETE FROM {_quote(part)} a USING {_quote(part)} b "
            "WHERE a.external_id = b.external_id AND a.seen_at = b.seen_at "
            "AND a.tenant_id = b.tenant_id AND a.id > b.id;",
        )
        _run(
            conn,
            f"CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {_quote(index)} "
            f"ON {_quote(part)} (external_id, seen_at);",
        )
    _run(
        conn,
        f"CREATE UNIQUE INDEX IF NOT EXISTS {_quote('v1_event_external_id_seen_at')} "
        f"ON {_quote('v1_event')} (external_id, seen_at);",
    )


def up_v1_0_142(conn: psycopg.Connection[Any]) -> None:
    """Sets ``triggered_at = inserted_at`` where it is NULL, partition by partition, in
    ``v1_durable_event_log_entry``."""
    for part in _partitions(conn, "v1_durable_event_log_entry", 1):
        _run(
            conn,
            f"UPDATE {_quote(part)} SET triggered_at = inserted_at WHERE triggered_at IS NULL",
        )


_V99_BY_SHA: dict[str, _V99] = {
    "abe2e60a10fc00550f343da02be1d29e2e1676c7": _V99(False, "upsert", "none", True, False),
    "305036769962c3aa5dc5964968f2958909ae0165": _V99(True, "upsert", "none", True, False),
    "b7980b9a4da82af3d0cdfb6f70162a59cb5378e3": _V99(True, "upsert", "exact", True, False),
    "7511097902c3e24c300109109cc80fe4ce8e7171": _V99(True, "not_exists", "exact", True, False),
    "21851a601c5fc35b6191b78390007b34c44a43f5": _V99(True, "by_partition", "exact", True, False),
    "427510a124aedfa3c91ea2e13bdebcf3ff855ceb": _V99(
        True, "by_partition", "within_1000", True, False
    ),
    "dba368a02eabda09596f176e1d6e44eba908fb2e": _V99(
        True, "by_partition", "within_1000", False, False
    ),
    "3c785bde6293ebafa2ac592df2193d8de0dd19b2": _V99(
        True, "by_partition", "within_1000", False, True
    ),
    "56566018df59337f7358c48e4cf6d60e07a2379a": _V99(
        True, "by_partition", "within_1000", False, True
    ),
}
"""``v1_0_99``'s files oldest first (v0.83.46 ... v0.96.0)."""

_NEWEST_V99 = "56566018df59337f7358c48e4cf6d60e07a2379a"

GO_UPS_BY_SHA: dict[str, GoUp] = {
    "a1d4ae1e14f46215c9c34e0bb45bfac27fc623ce": up_v1_0_66,
    "f39ddf4f83e38412e03297c28a4073d03c67973d": up_v1_0_66,
    "efec15789c48e9e7b8a35744d2448cb4bb360086": up_v1_0_79_c,
    "cb33652f450995fc0644ffc8754d227daf7b4e9e": up_v1_0_92,
    **{sha: _make_v1_0_99(spec) for sha, spec in _V99_BY_SHA.items()},
    "5a9f0ffc8fae3e3673d58d4f55f4af7046309708": up_v1_0_107,
    "a43fd7fc30cb6f14ee60ab72fe1e7dced9e6421a": up_v1_0_116,
    "3e1b3d0ed6c90a0bfebc47634c63fd713c381f8d": up_v1_0_130,
    "a1705ea8a056a3e7058293079a7b94e04b9f91d6": up_v1_0_130,
    "a8ab3ab18649a564da1e2766d8aa562610617895": up_v1_0_137,
    "451b6e2b1655d2c5535ab4954b454bab919e0538": up_v1_0_142,
}

GO_UPS: dict[int, GoUp] = {
    20251218153622: up_v1_0_66,
    20251226153622: up_v1_0_66,
    20260216000003: up_v1_0_79_c,
    20260324135804: up_v1_0_92,
    20260424190713: GO_UPS_BY_SHA[_NEWEST_V99],
    20260511164037: up_v1_0_107,
    20260608141858: up_v1_0_116,
    20260715190323: up_v1_0_130,
    20260806002346: up_v1_0_137,
    20260814121501: up_v1_0_142,
}

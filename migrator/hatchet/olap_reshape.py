"""Reversing Hatchet's OLAP reshape (``v1_0_99`` + ``v1_0_100``), whose down is empty.

Before the reshape, ``v1_runs_olap``, ``v1_tasks_olap`` and ``v1_dags_olap`` are partitioned by
range of ``inserted_at`` (one partition a day, ``<table>_YYYYMMDD``, made by
``create_v1_olap_partition_with_date_and_status``), and each day by list of ``readable_status``
(``<table>_YYYYMMDD_<status>``); their primary keys carry ``readable_status`` (and ``kind`` for
runs), and so do the ``ON CONFLICT`` targets of ``v1_tasks_olap_insert_function`` and
``v1_dags_olap_insert_function``.

- ``v1_0_99`` (Go) builds ``<table>_new`` copies partitioned by day only, with primary key
  ``(inserted_at, id)``, mirror triggers on the old tables, and backfills them. Its down drops
  the mirrors and the ``_new`` tables.
- ``v1_0_100`` (SQL) drops the old tables ``CASCADE`` (with their triggers), renames each
  ``_new`` table, its partitions, indexes and primary keys into place, sets the partitions
  logged, replaces the two insert functions (new ``ON CONFLICT`` targets), recreates the status
  triggers on the new tables, and drops ``create_v1_olap_partition_with_date_and_status`` and the
  mirror functions. Its Down is empty: a downgrade below it keeps the day-only tables.

The reverse (:data:`OLAP_PATCHES`, one transaction, as upstream's down would be) puts the
database back where ``v1_0_99`` left it, so that ``v1_0_99``'s (ported) down can then drop the
``_new`` tables as upstream does:

1. Each table is renamed to ``<table>_new`` with its partitions and every index (hence primary
   key) whose name carries the table's name, as ``v1_0_99`` named them; the status triggers
   ``v1_0_100`` put on it are dropped (the ``_new`` tables had none).
2. Rows whose ``readable_status`` has no partition in the old shape are deleted from the
   ``_new`` tables, as announced data loss (only when the plan-time count finds some, or cannot
   count). No row can break the old primary keys: they hold the new key's columns and more.
3. ``create_v1_olap_partition_with_date_and_status``, the three old tables (with the columns
   later releases added), a partition for every day the ``_new`` partitions cover (in this
   session's time zone, as the function reads its date) plus today and tomorrow in UTC (the
   engine's ``UpdateTablePartitions``), the copy of every row, the old indexes (and
   ``v1_0_66``'s ``ix_v1_runs_olap_tenant_id``), the status triggers and the old insert
   functions follow, then ``ANALYZE``. Triggers are created after the copy, so moving the rows
   writes nothing else. The copy names the old columns the table still has at plan time: an
   old column the reshape lost (``is_durable`` on a database reshaped by v0.83.46, whose
   ``v1_0_99`` forgot it) comes back with its default.

Every restored definition is read from the older migration that made it (``Patch.reads``),
never copied here: the statement of its Up holding the marker, then the one command of that
statement that starts with it (split with PostgreSQL's own parser). Not restored: the mirror
triggers and functions (Go source, dropped right after by ``v1_0_99``'s down) and the
``_new`` partitions' ``UNLOGGED`` setting (a rewrite of every partition, for tables about to be
dropped).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import pglast
from pglast import ast, enums

from migrator.hatchet.go_ports import (
    DAGS_OLAP,
    RUNS_OLAP,
    TASKS_OLAP,
    quote_ident,
    runs_tenant_index_statement,
)
from migrator.profile import Catalog, Patch, PatchContext

__all__ = ["OLAP_PATCHES", "SHAS_V1_0_100", "V1_0_100"]

V1_0_0 = 20250224171706
V1_0_9 = 20250327185734
V1_0_53 = 20251113195351
V1_0_62 = 20251218153621
V1_0_89 = 20260313020635  # _v1_0_89_olap_evicted_status.sql
V1_0_97 = 20260417212701
V1_0_100 = 20260424205453

SHAS_V1_0_100 = frozenset(
    {
        "a373f9abc981298d90f490ab422516f348c9bd96",  # v0.83.46 .. v0.83.49
        "84e93f021ee5baee354ddc09f4efcde30fdd9814",  # v0.83.50 .. v0.83.55
        "eec034e1d294bcfd8a820f979dae1d15213205b7",  # v0.83.56 .. v0.83.58
        "b84f80c824c0db0254a7eaabfddec98edc802a3e",  # v0.83.59 .. (51 tags)
        "c824f26955d46518d5089ff13bd24ca6e5e51bb1",  # .. v0.104.7 (194 tags)
    }
)
"""Every ``20260424205453_v1_0_100.sql`` upstream shipped; all of them do the reshape (they
differ in lock order and in setting the partitions logged)."""

NEW = "_new"
PARTITION_FUNCTION = "create_v1_olap_partition_with_date_and_status"

Source = tuple[int, str]
"""(version, marker): the command of that migration's Up that starts with ``marker``."""


@dataclass(frozen=True)
class _OldTable:
    name: str
    create: Source
    added_columns: tuple[Source, ...] = ()
    indexes: tuple[Source, ...] = ()
    triggers: tuple[Source, ...] = ()


def _trigger(version: int, name: str) -> Source:
    return (version, f"CREATE TRIGGER {name}")


_TABLES = (
    _OldTable(
        RUNS_OLAP,
        (V1_0_0, "CREATE TABLE v1_runs_olap ("),
        indexes=((V1_0_0, "CREATE INDEX ix_v1_runs_olap_parent_task_external_id "),),
        triggers=(
            _trigger(V1_0_0, "v1_runs_olap_status_insert_trigger"),
            _trigger(V1_0_0, "v1_runs_olap_status_update_trigger"),
        ),
    ),
    _OldTable(
        TASKS_OLAP,
        (V1_0_0, "CREATE TABLE v1_tasks_olap ("),
        added_columns=((V1_0_97, "ALTER TABLE v1_tasks_olap ADD COLUMN is_durable "),),
        indexes=(
            (V1_0_0, "CREATE INDEX v1_tasks_olap_workflow_id_idx "),
            (V1_0_0, "CREATE INDEX v1_tasks_olap_worker_id_idx "),
        ),
        triggers=(
            _trigger(V1_0_0, "v1_tasks_olap_status_insert_trigger"),
            _trigger(V1_0_0, "v1_tasks_olap_status_update_trigger"),
            _trigger(V1_0_62, "v1_tasks_olap_status_delete_trigger"),
        ),
    ),
    _OldTable(
        DAGS_OLAP,
        (V1_0_0, "CREATE TABLE v1_dags_olap ("),
        added_columns=((V1_0_9, "ALTER TABLE v1_dags_olap ADD COLUMN total_tasks "),),
        indexes=((V1_0_0, "CREATE INDEX v1_dags_olap_workflow_id_idx "),),
        triggers=(
            _trigger(V1_0_0, "v1_dags_olap_status_insert_trigger"),
            _trigger(V1_0_0, "v1_dags_olap_status_update_trigger"),
            _trigger(V1_0_62, "v1_dags_olap_status_delete_trigger"),
        ),
    ),
)

_PARTITION_FUNCTION: Source = (V1_0_89, f"CREATE OR REPLACE FUNCTION {PARTITION_FUNCTION}(")
_INSERT_FUNCTIONS: tuple[Source, ...] = (
    (V1_0_53, "CREATE OR REPLACE FUNCTION v1_tasks_olap_insert_function("),
    (V1_0_53, "CREATE OR REPLACE FUNCTION v1_dags_olap_insert_function("),
)
READS = tuple(
    sorted(
        {_PARTITION_FUNCTION[0]}
        | {v for v, _m in _INSERT_FUNCTIONS}
        | {v for t in _TABLES for v, _m in (t.create, *t.added_columns, *t.indexes, *t.triggers)}
    )
)

_STATUS_PARTITION = re.compile(r"create_v1_partition_with_status\(\s*\w+\s*,\s*'([^']+)'\s*\)")


def _starts_with(command: str, marker: str) -> bool:
    """``command`` starts with ``marker``, and a marker ending in a name ends with that name."""
    if not command.startswith(marker):
        return False
    after = command[len(marker) : len(marker) + 1]
    ends_in_name = marker[-1:].isalnum() or marker.endswith("_")
    return not (ends_in_name and (after.isalnum() or after == "_"))


def restored(ctx: PatchContext, source: Source) -> str:
    """The one command of ``version``'s Up that starts with ``marker`` (the last if several)."""
    version, marker = source
    statement = ctx.up_statement(version, marker)
    hits = [c for c in pglast.split(statement) if _starts_with(c.lstrip(), marker)]
    if not hits:
        raise LookupError(f"no command of {version}'s up starts with {marker!r}")
    return hits[-1].strip()


def old_columns(commands: Sequence[str]) -> list[str]:
    """The column names a ``CREATE TABLE`` and the ``ALTER TABLE ... ADD COLUMN`` after it give."""
    names: list[object] = []
    for command in commands:
        for raw in pglast.parse_sql(command):
            stmt = raw.stmt
            if isinstance(stmt, ast.CreateStmt):
                names += [e.colname for e in stmt.tableElts or () if isinstance(e, ast.ColumnDef)]
            elif isinstance(stmt, ast.AlterTableStmt):
                for cmd in stmt.cmds or ():
                    if cmd.subtype == enums.AlterTableType.AT_AddColumn and isinstance(
                        cmd.def_, ast.ColumnDef
                    ):
                        names.append(cmd.def_.colname)
    return [str(n) for n in names]


def partition_statuses(function: str) -> list[str]:
    """The statuses the restored partition function gives each day a partition for."""
    statuses = list(dict.fromkeys(_STATUS_PARTITION.findall(function)))
    if not statuses:
        raise LookupError(f"{PARTITION_FUNCTION} as restored creates no status partition")
    return statuses


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _rename_to_new() -> str:
    """Step 1: each table, its partitions and the indexes named after it get ``_new`` names."""
    tables = ", ".join(_literal(t.name) for t in _TABLES)
    return f"""DO $hatchet_schema$
DECLARE
    base text;
    fresh text;
    item record;
BEGIN
    FOREACH base IN ARRAY ARRAY[{tables}] LOOP
        fresh := base || '{NEW}';
        FOR item IN
            SELECT tgname FROM pg_trigger
            WHERE tgrelid = base::regclass AND NOT tgisinternal
        LOOP
            EXECUTE format('DROP TRIGGER %I ON %I', item.tgname, base);
        END LOOP;
        FOR item IN
            SELECT ix.relname AS name, replace(ix.relname, base, fresh) AS renamed
            FROM pg_partition_tree(base::regclass) tree
            JOIN pg_index i ON i.indrelid = tree.relid
            JOIN pg_class ix ON ix.oid = i.indexrelid
            WHERE strpos(ix.relname, base) > 0
        LOOP
            -- A name the rename would push past 63 bytes keeps its own (it is dropped anyway).
            IF octet_length(item.renamed) <= 63 THEN
                EXECUTE format('ALTER INDEX %I RENAME TO %I', item.name, item.renamed);
            END IF;
        END LOOP;
        FOR item IN
            SELECT c.relname AS name, fresh || substr(c.relname, length(base) + 1) AS renamed
            FROM pg_partition_tree(base::regclass) tree
            JOIN pg_class c ON c.oid = tree.relid
            WHERE tree.level > 0 AND starts_with(c.relname, base || '_')
            ORDER BY tree.level DESC
        LOOP
            EXECUTE format('ALTER TABLE %I RENAME TO %I', item.name, item.renamed);
        END LOOP;
        EXECUTE format('ALTER TABLE %I RENAME TO %I', base, fresh);
    END LOOP;
END
$hatchet_schema$"""


def _day_partitions(table: str) -> str:
    """Step 3: an old-shape partition for every day ``<table>_new``'s partitions cover (rows of
    a partition without plain range bounds are read for theirs), plus UTC today and tomorrow."""
    return f"""DO $hatchet_schema$
DECLARE
    part record;
    low timestamptz;
    high timestamptz;
    day date;
BEGIN
    FOR part IN
        SELECT c.oid::regclass AS rel, pg_get_expr(c.relpartbound, c.oid) AS bound
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = {_literal(table + NEW)}::regclass
    LOOP
        low := substring(part.bound FROM $re$FROM \\('([^']+)'\\)$re$)::timestamptz;
        high := substring(part.bound FROM $re$TO \\('([^']+)'\\)$re$)::timestamptz;
        IF low IS NOT NULL AND high IS NOT NULL THEN
            FOR day IN
                SELECT d::date
                FROM generate_series(low::date, (high - interval '1 microsecond')::date,
                                     interval '1 day') AS d
            LOOP
                PERFORM {PARTITION_FUNCTION}({_literal(table)}, day);
            END LOOP;
        ELSE
            FOR day IN EXECUTE format('SELECT DISTINCT inserted_at::date FROM %s', part.rel) LOOP
                PERFORM {PARTITION_FUNCTION}({_literal(table)}, day);
            END LOOP;
        END IF;
    END LOOP;
    PERFORM {PARTITION_FUNCTION}({_literal(table)}, (now() AT TIME ZONE 'UTC')::date);
    PERFORM {PARTITION_FUNCTION}({_literal(table)}, (now() AT TIME ZONE 'UTC')::date + 1);
END
$hatchet_schema$"""


def _status_list(statuses: Sequence[str]) -> str:
    return ", ".join(_literal(s) for s in statuses)


def _unroutable_rows(catalog: Catalog, table: str, statuses: Sequence[str]) -> int | None:
    """Rows of ``table`` (day-only at plan time) whose status the old shape has no partition
    for; None when the catalog cannot say."""
    exists = catalog.query("SELECT to_regclass(%s::text) IS NOT NULL", (table,))
    if not exists or not exists[0][0]:
        return None
    rows = catalog.query(
        f"SELECT count(*) FROM {quote_ident(table)} "
        f"WHERE readable_status::text NOT IN ({_status_list(statuses)})"
    )
    return int(rows[0][0]) if rows else None


def _copied_columns(catalog: Catalog, table: str, old: list[str]) -> list[str]:
    """The old columns ``table`` (day-only at plan time) still has: the rest take their
    defaults (v0.83.46's ``v1_0_99`` built ``v1_tasks_olap_new`` without ``is_durable``, so a
    database reshaped by it lost that column). All of them when the catalog cannot say."""
    found = catalog.query(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s::text) "
        "AND attnum > 0 AND NOT attisdropped",
        (table,),
    )
    present = {str(row[0]) for row in found}
    return [c for c in old if c in present] if present else old


def _reverse_v1_0_100(ctx: PatchContext) -> list[str]:
    partition_function = restored(ctx, _PARTITION_FUNCTION)
    statuses = partition_statuses(partition_function)
    statements = [_rename_to_new()]
    for table in _TABLES:
        if _unroutable_rows(ctx.catalog, table.name, statuses) != 0:
            statements.append(
                f"DELETE FROM {quote_ident(table.name + NEW)} "
                f"WHERE readable_status::text NOT IN ({_status_list(statuses)})"
            )
    statements.append(partition_function)
    columns: dict[str, list[str]] = {}
    for table in _TABLES:
        definition = [restored(ctx, s) for s in (table.create, *table.added_columns)]
        columns[table.name] = _copied_columns(ctx.catalog, table.name, old_columns(definition))
        statements += [*definition, _day_partitions(table.name)]
    for table in _TABLES:
        listed = ", ".join(quote_ident(c) for c in columns[table.name])
        statements.append(
            f"INSERT INTO {quote_ident(table.name)} ({listed}) "
            f"SELECT {listed} FROM {quote_ident(table.name + NEW)}"
        )
    for table in _TABLES:
        statements += [restored(ctx, s) for s in table.indexes]
    statements.append(runs_tenant_index_statement())
    statements += [restored(ctx, s) for s in _INSERT_FUNCTIONS]
    for table in _TABLES:
        statements += [restored(ctx, s) for s in table.triggers]
    statements += [f"ANALYZE {quote_ident(t.name)}" for t in _TABLES]
    return statements


_REASON = (
    "v1_0_100's down is empty, so the day-only OLAP tables it swapped in would stay: renames "
    "v1_runs_olap, v1_tasks_olap and v1_dags_olap (partitions, indexes, keys) back to v1_0_99's "
    "_new names, recreates the old tables partitioned by day and status with "
    f"{PARTITION_FUNCTION}, their indexes, the old insert functions and triggers (read from "
    "the migrations that made them), and copies every row back into them, day partitions "
    "included; v1_0_99's down then drops the _new tables"
)

OLAP_PATCHES: dict[int, list[Patch]] = {
    V1_0_100: [
        Patch(
            version=V1_0_100,
            blob_shas=SHAS_V1_0_100,
            reason=_REASON,
            build=_reverse_v1_0_100,
            reads=READS,
        )
    ]
}

"""Give a migrated Hatchet database engine-made partitions and realistic rows in every table.

Used by the downgrade verification scripts (never run in CI), so that downgrades are tried on
databases that look like used ones rather than empty ones.

``create_engine_partitions(conn)`` does what the Hatchet engine does at run time: it calls the
partition functions that the migrations define (``create_v1_range_partition``,
``create_v1_weekly_range_partition``, ``create_v1_olap_partition_with_date_and_status``,
``create_v1_hash_partitions``) for yesterday, today and the next two days (UTC), for every
partitioned table. Which function a table needs is read off the partitions its migrations
already made (daily or weekly ranges, range->list sub-partitioning by status); a table without
any falls back on what the engine's queries call (``ENGINE_WEEKLY``) and on its primary key
(``readable_status`` in it means range->list). Hash-partitioned tables get ``NUM_PARTITIONS``.

``seed_all(conn, rows_per_table=3)`` writes rows into every ordinary table and partitioned
parent (not ``goose_db_version`` nor any other goose version table, such as pgoutbox's
``outbox.migrations``), generically, from the catalog: tables in foreign-key order;
values by type (uuid, text, integers, timestamps inside existing partitions, jsonb, bytea,
booleans, arrays, ranges, domains, enums: the newest label in one row and other labels in the
others); every nullable column NULL in at least one row; foreign keys pointing at existing rows
(cycles broken through nullable keys); each insert in its own savepoint and retried with other
values when a constraint, a missing partition or a trigger rejects it. It returns
``SeedResult(seeded, failed)``: row counts per table (after triggers ran) and, for tables left
empty, the last error. Coverage gaps (a nullable column never NULL, an enum column that never
got its newest label) are appended to ``report`` when a list is passed.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import psycopg
from psycopg import sql

__all__ = [
    "ENGINE_FILLFACTOR",
    "ENGINE_WEEKLY",
    "NUM_PARTITIONS",
    "SeedResult",
    "create_engine_partitions",
    "seed_all",
]

NUM_PARTITIONS = 4
"""What the engine passes to ``create_v1_hash_partitions`` (``pkg/repository/olap.go``)."""

ENGINE_WEEKLY = frozenset({"v1_event_lookup_table_olap", "v1_event_lookup_table"})
"""Tables the engine gives weekly partitions (used only when none exists to read it from)."""

ENGINE_FILLFACTOR = {"v1_durable_event_log_entry": 80, "v1_durable_event_log_branch_point": 80}
"""Fillfactor the engine passes to ``create_v1_range_partition`` (``sqlcv1/tasks.sql``)."""

DAY_OFFSETS = (-1, 0, 1, 2)

_GOOSE_COLUMNS = {"id", "version_id", "is_applied", "tstamp"}

_SCHEMA_FILTER = """
    n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast', 'hatchet_schema')
    AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                    AND d.objid = c.oid AND d.deptype = 'e')
"""

_BOUND_RANGE = re.compile(r"FOR VALUES FROM \('([^']*)'\) TO \('([^']*)'\)")
_BOUND_LIST = re.compile(r"FOR VALUES IN \((.*)\)")


def _rows(conn: psycopg.Connection[Any], query: str, params: Sequence[Any] = ()) -> list[Any]:
    return list(conn.execute(query.encode(), params or None, prepare=False).fetchall())


# Partitions ----------------------------------------------------------------------------------


def _function_arities(conn: psycopg.Connection[Any]) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    for name, nargs in _rows(
        conn,
        "SELECT p.proname, p.pronargs FROM pg_proc p JOIN pg_namespace n "
        "ON n.oid = p.pronamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND p.proname LIKE 'create\\_v1\\_%'",
    ):
        out.setdefault(str(name), set()).add(int(nargs))
    return out


def _parse_ts(text: str) -> dt.datetime | None:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def create_engine_partitions(
    conn: psycopg.Connection[Any],
    *,
    days: Iterable[int] = DAY_OFFSETS,
    today: dt.date | None = None,
    strict: bool = True,
) -> list[str]:
    """Create the partitions the engine would, for ``today`` (UTC) plus each of ``days``.

    Returns the names of the relations created (leaves and intermediate levels). Each call runs
    in its own transaction (or savepoint). With ``strict`` a failed call raises RuntimeError
    after all others were tried; otherwise failures are skipped.
    """
    base = today or dt.datetime.now(dt.UTC).date()
    dates = sorted({base + dt.timedelta(days=d) for d in days})
    funcs = _function_arities(conn)
    before = {str(r[0]) for r in _rows(conn, "SELECT oid::regclass::text FROM pg_class")}
    parents = _rows(
        conn,
        f"""
        SELECT c.oid, n.nspname, c.relname, pt.partstrat::text, pt.partnatts,
               (SELECT format_type(a.atttypid, NULL) FROM pg_attribute a
                WHERE a.attrelid = c.oid AND a.attnum = pt.partattrs[0]) AS keytype,
               (SELECT array_agg(a.attname::text) FROM pg_constraint k
                JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = ANY (k.conkey)
                WHERE k.conrelid = c.oid AND k.contype = 'p') AS pkcols
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_partitioned_table pt ON pt.partrelid = c.oid
        WHERE c.relkind = 'p' AND NOT c.relispartition AND {_SCHEMA_FILTER}
        ORDER BY n.nspname, c.relname
        """,
    )
    errors: list[str] = []

    def call(query: str, params: Sequence[Any]) -> None:
        try:
            with conn.transaction():
                conn.execute(query.encode(), params, prepare=False)
        except psycopg.Error as exc:
            errors.append(f"{query % tuple(params)}: {str(exc).strip()}")

    for oid, nsp, name, strat, natts, keytype, pkcols in parents:
        target = name if nsp == "public" else f"{nsp}.{name}"
        children = _rows(
            conn,
            "SELECT c.relkind::text, pg_get_expr(c.relpartbound, c.oid), c.reloptions "
            "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s",
            (oid,),
        )
        if strat == "h":
            if not children and "create_v1_hash_partitions" in funcs:
                call("SELECT create_v1_hash_partitions(%s, %s)", (target, NUM_PARTITIONS))
            continue
        if (
            strat != "r"
            or natts != 1
            or keytype
            not in (
                "timestamp with time zone",
                "timestamp without time zone",
                "date",
            )
        ):
            continue
        weekly = name in ENGINE_WEEKLY
        status = "readable_status" in (pkcols or [])
        fillfactor = ENGINE_FILLFACTOR.get(name)
        for relkind, bound, reloptions in children:
            status = relkind == "p"
            m = _BOUND_RANGE.search(bound or "")
            if m:
                lo, hi = _parse_ts(m.group(1)), _parse_ts(m.group(2))
                if lo and hi:
                    weekly = (hi - lo) >= dt.timedelta(days=7)
            for opt in reloptions or []:
                if opt.startswith("fillfactor=") and name not in ENGINE_FILLFACTOR:
                    fillfactor = int(opt.split("=", 1)[1])
        for day in dates:
            if status and "create_v1_olap_partition_with_date_and_status" in funcs:
                call("SELECT create_v1_olap_partition_with_date_and_status(%s, %s)", (target, day))
            elif weekly and "create_v1_weekly_range_partition" in funcs:
                call("SELECT create_v1_weekly_range_partition(%s, %s)", (target, day))
            elif 3 in funcs.get("create_v1_range_partition", set()) and fillfactor:
                call("SELECT create_v1_range_partition(%s, %s, %s)", (target, day, fillfactor))
            elif "create_v1_range_partition" in funcs:
                call("SELECT create_v1_range_partition(%s, %s)", (target, day))
    after = [str(r[0]) for r in _rows(conn, "SELECT oid::regclass::text FROM pg_class")]
    created = sorted(set(after) - before)
    if errors and strict:
        raise RuntimeError("partition creation failed:\n" + "\n".join(errors))
    return created


# Introspection -------------------------------------------------------------------------------


@dataclass
class _Column:
    name: str
    type_sql: str  # format_type, for the cast
    base: str  # base type name (domains resolved; for arrays the element's)
    is_array: bool
    labels: list[str]  # enum labels in sort order (element's for arrays)
    range_subtype: str | None
    length: int | None  # varchar/char length
    not_null: bool
    has_default: bool
    auto: bool  # identity, serial or generated: never written

    @property
    def nullable(self) -> bool:
        return not self.not_null


@dataclass
class _ForeignKey:
    columns: list[str]
    ref_table: int  # oid
    ref_columns: list[str]


@dataclass
class _Table:
    oid: int
    schema: str
    name: str
    display: str
    columns: dict[str, _Column]
    fks: list[_ForeignKey] = field(default_factory=list)
    partitioned: bool = False
    # allowed values for partition key columns, from the leaf bounds
    key_ranges: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    key_lists: dict[str, set[str]] = field(default_factory=dict)

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)


def _load_tables(conn: psycopg.Connection[Any]) -> dict[int, _Table]:
    tables: dict[int, _Table] = {}
    for oid, nsp, name, relkind, display in _rows(
        conn,
        f"""
        SELECT c.oid, n.nspname, c.relname, c.relkind::text,
               CASE WHEN n.nspname = 'public' THEN '' ELSE quote_ident(n.nspname) || '.' END
               || quote_ident(c.relname)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND {_SCHEMA_FILTER}
          AND NOT (c.relname = 'goose_db_version')
        ORDER BY n.nspname, c.relname
        """,
    ):
        tables[int(oid)] = _Table(
            oid=int(oid),
            schema=str(nsp),
            name=str(name),
            display=str(display),
            columns={},
            partitioned=relkind == "p",
        )
    if not tables:
        return tables
    oids = list(tables)
    for row in _rows(
        conn,
        """
        WITH RECURSIVE cols AS (
            SELECT a.attrelid, a.attname::text AS name, format_type(a.atttypid, a.atttypmod) AS
                   type_sql, a.atttypid AS typ, a.atttypmod AS typmod, a.attnotnull,
                   a.atthasdef, a.attidentity <> '' OR a.attgenerated <> '' AS auto_col,
                   coalesce(pg_get_expr(ad.adbin, ad.adrelid) LIKE 'nextval(%%', false) AS serial
            FROM pg_attribute a
            LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
            WHERE a.attrelid = ANY (%s) AND a.attnum > 0 AND NOT a.attisdropped
        )
        SELECT cols.attrelid, cols.name, cols.type_sql, cols.attnotnull, cols.atthasdef,
               cols.auto_col OR cols.serial, cols.typ, cols.typmod
        FROM cols
        """,
        (oids,),
    ):
        relid, cname, type_sql, notnull, hasdef, auto, typ, typmod = row
        info = _type_info(conn, int(typ), int(typmod))
        tables[int(relid)].columns[str(cname)] = _Column(
            name=str(cname),
            type_sql=str(type_sql),
            base=info[0],
            is_array=info[1],
            labels=info[2],
            range_subtype=info[3],
            length=info[4],
            not_null=bool(notnull),
            has_default=bool(hasdef),
            auto=bool(auto),
        )
    for conrelid, confrelid, cols, refcols in _rows(
        conn,
        """
        SELECT k.conrelid, k.confrelid,
               (SELECT array_agg(a.attname::text ORDER BY u.i) FROM unnest(k.conkey)
                WITH ORDINALITY u(n, i) JOIN pg_attribute a ON a.attrelid = k.conrelid
                AND a.attnum = u.n),
               (SELECT array_agg(a.attname::text ORDER BY u.i) FROM unnest(k.confkey)
                WITH ORDINALITY u(n, i) JOIN pg_attribute a ON a.attrelid = k.confrelid
                AND a.attnum = u.n)
        FROM pg_constraint k WHERE k.contype = 'f' AND k.conrelid = ANY (%s)
        ORDER BY k.conrelid, cardinality(k.conkey) DESC, k.conname
        """,
        (oids,),
    ):
        if int(conrelid) in tables and int(confrelid) in tables:
            tables[int(conrelid)].fks.append(_ForeignKey(list(cols), int(confrelid), list(refcols)))
    for oid in [o for o, t in tables.items() if set(t.columns) == _GOOSE_COLUMNS]:
        del tables[oid]  # a goose version table (pgoutbox keeps one in its own schema)
    for table in tables.values():
        if table.partitioned:
            _load_partition_bounds(conn, table)
    return tables


_TypeInfo = tuple[str, bool, list[str], str | None, int | None]
_type_cache: dict[tuple[int, int], _TypeInfo] = {}


def _type_info(conn: psycopg.Connection[Any], typ: int, typmod: int) -> _TypeInfo:
    """(base type name, is array, enum labels, range subtype name, char length)."""
    key = (typ, typmod)
    if key in _type_cache:
        return _type_cache[key]
    is_array = False
    length: int | None = None
    labels: list[str] = []
    subtype: str | None = None
    current = typ
    result: _TypeInfo
    for _ in range(10):
        typtype, typcat, elem, basetype, typname, basemod = _rows(
            conn,
            "SELECT typtype::text, typcategory::text, typelem, typbasetype, typname::text, "
            "typtypmod FROM pg_type WHERE oid = %s",
            (current,),
        )[0]
        if typtype == "d":
            current = int(basetype)
            typmod = int(basemod)
            continue
        if typcat == "A" and int(elem) != 0 and not is_array:
            is_array = True
            current = int(elem)
            continue
        if typtype == "e":
            labels = [
                str(r[0])
                for r in _rows(
                    conn,
                    "SELECT enumlabel FROM pg_enum WHERE enumtypid = %s ORDER BY enumsortorder",
                    (current,),
                )
            ]
            result = ("enum:" + typname, is_array, labels, None, None)
            break
        if typtype == "r":
            sub = _rows(
                conn,
                "SELECT t.typname::text FROM pg_range r JOIN pg_type t ON t.oid = r.rngsubtype "
                "WHERE r.rngtypid = %s",
                (current,),
            )
            subtype = str(sub[0][0]) if sub else "text"
            result = ("range", is_array, [], subtype, None)
            break
        if typname in ("varchar", "bpchar") and typmod > 4:
            length = typmod - 4
        result = (typname, is_array, labels, None, length)
        break
    else:
        result = ("text", is_array, [], None, None)
    _type_cache[key] = result
    return result


def _load_partition_bounds(conn: psycopg.Connection[Any], table: _Table) -> None:
    """Allowed values of range/list key columns: the union over the leaves' bounds."""
    for relid, _level, isleaf in _rows(
        conn,
        "SELECT relid::oid, level, isleaf FROM pg_partition_tree(%s::oid::regclass)",
        (table.oid,),
    ):
        if isleaf:
            continue
        key = _rows(
            conn,
            "SELECT pt.partstrat::text, (SELECT a.attname::text FROM pg_attribute a "
            "WHERE a.attrelid = pt.partrelid AND a.attnum = pt.partattrs[0]), pt.partnatts "
            "FROM pg_partitioned_table pt WHERE pt.partrelid = %s",
            (relid,),
        )
        if not key or key[0][2] != 1 or key[0][1] is None:
            continue
        strat, column, _ = key[0]
        bounds = [
            str(b[0])
            for b in _rows(
                conn,
                "SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
                "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s",
                (relid,),
            )
        ]
        if any(b == "DEFAULT" for b in bounds):
            continue
        if strat == "r":
            ranges = table.key_ranges.setdefault(str(column), [])
            for b in bounds:
                m = _BOUND_RANGE.search(b)
                if m:
                    ranges.append((m.group(1), m.group(2)))
        elif strat == "l":
            allowed = table.key_lists.setdefault(str(column), set())
            for b in bounds:
                m = _BOUND_LIST.search(b)
                if m:
                    allowed.update(re.findall(r"'((?:[^']|'')*)'", m.group(1)))


def _order(tables: dict[int, _Table]) -> list[_Table]:
    """Foreign-key order: referenced tables first; cycles broken through nullable keys."""
    hard: dict[int, set[int]] = {oid: set() for oid in tables}
    soft: dict[int, set[int]] = {oid: set() for oid in tables}
    for t in tables.values():
        for fk in t.fks:
            if fk.ref_table == t.oid:
                continue
            nullable = any(t.columns[c].nullable for c in fk.columns)
            (soft if nullable else hard)[t.oid].add(fk.ref_table)
    done: list[int] = []
    left = set(tables)
    while left:
        ready = sorted(
            (o for o in left if not (hard[o] | soft[o]) & left),
            key=lambda o: tables[o].display,
        )
        if not ready:
            ready = sorted(
                (o for o in left if not hard[o] & left), key=lambda o: tables[o].display
            )[:1]
        if not ready:
            ready = sorted(left, key=lambda o: tables[o].display)[:1]
        for o in ready:
            done.append(o)
            left.discard(o)
    return [tables[o] for o in done]


# Values --------------------------------------------------------------------------------------


class _Values:
    """Text literals for each type, varied by row number and attempt."""

    def __init__(self, rng: random.Random, now: dt.datetime) -> None:
        self.rng = rng
        self.now = now
        self.counter = 0

    def tag(self) -> str:
        self.counter += 1
        return f"{self.counter}{self.rng.randrange(16**4):04x}"

    def timestamp(self, tz: bool, ranges: list[tuple[str, str]] | None, row: int) -> str:
        """Shortly before now; for a range partition key, inside one of the partitions.

        Rows of a partitioned table are spread over its partitions (row 0 in the one holding
        now, when there is one).
        """
        moment = self.now - dt.timedelta(seconds=self.rng.randrange(0, 600), microseconds=1)
        if ranges:
            usable = sorted(
                (lo, hi)
                for lo, hi in ((_parse_ts(a), _parse_ts(b)) for a, b in ranges)
                if lo is not None and hi is not None and lo < hi
            )
            if usable:
                current = [i for i, (lo, hi) in enumerate(usable) if lo <= moment < hi]
                start = current[0] if current else 0
                lo, hi = usable[(start + row) % len(usable)]
                if not lo <= moment < hi:
                    span = max(1, int((hi - lo).total_seconds()) - 2)
                    moment = lo + dt.timedelta(seconds=self.rng.randrange(1, span + 1))
        if tz:
            return moment.isoformat()
        return moment.replace(tzinfo=None).isoformat()

    def scalar(
        self,
        col: _Column,
        row: int,
        attempt: int,
        enum_label: str | None,
        ranges: list[tuple[str, str]] | None,
    ) -> str:
        base = col.base
        if base.startswith("enum:"):
            return enum_label if enum_label is not None else col.labels[0]
        if base == "uuid":
            return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        if base in ("int2", "int4", "int8", "oid"):
            if attempt == 0:
                return str(row + 1)
            if attempt % 2 == 1:
                return str(self.rng.randint(1, 4))
            top = 32767 if base == "int2" else 2**31 - 1
            return str(self.rng.randint(1, top))
        if base in ("numeric", "float4", "float8", "money"):
            return str(row + 1.5) if attempt == 0 else str(round(self.rng.uniform(0.5, 4), 2))
        if base == "bool":
            return "true" if (row + attempt) % 2 == 0 else "false"
        if base == "timestamptz":
            return self.timestamp(True, ranges, row)
        if base == "timestamp":
            return self.timestamp(False, ranges, row)
        if base == "date":
            if ranges:
                return self.timestamp(True, ranges, row)[:10]
            back = row if attempt == 0 else self.rng.randrange(0, 60)
            return (self.now.date() - dt.timedelta(days=back)).isoformat()
        if base in ("time", "timetz"):
            return "12:00:00"
        if base == "interval":
            return f"{row + 1} minutes"
        if base in ("json", "jsonb"):
            return json.dumps({"seed": self.tag(), "row": row, "ok": True})
        if base == "bytea":
            return "\\x" + f"seed-{self.tag()}".encode().hex()
        if base in ("inet", "cidr"):
            return f"10.0.{row}.{self.rng.randrange(1, 250)}" if base == "inet" else "10.0.0.0/24"
        if base == "macaddr":
            return "08:00:2b:01:02:03"
        if base == "tsvector":
            return "seed"
        if base == "bit" or base == "varbit":
            return "1"
        if base == "range":
            sub = col.range_subtype or "text"
            lo_hi = sorted(
                str(uuid.UUID(int=self.rng.getrandbits(128), version=4)) for _ in range(2)
            )
            if sub in ("int4", "int8"):
                start = self.rng.randrange(1, 1000)
                return f"[{start},{start + 10})"
            if sub in ("timestamptz", "timestamp", "date"):
                a = (self.now - dt.timedelta(hours=1)).isoformat()
                return f'["{a}","{self.now.isoformat()}")'
            return f"[{lo_hi[0]},{lo_hi[1]})"
        text = f"{col.name}-{self.tag()}"
        if col.length:
            text = text[-col.length :]
        return text

    def value(
        self,
        col: _Column,
        row: int,
        attempt: int,
        enum_label: str | None,
        ranges: list[tuple[str, str]] | None,
    ) -> str:
        if not col.is_array:
            return self.scalar(col, row, attempt, enum_label, ranges)
        items = [self.scalar(col, row, attempt, enum_label, None)]
        if attempt == 0 and row == 0 and not col.base.startswith("enum:"):
            items.append(self.scalar(col, row, attempt, enum_label, None))
        quoted = ['"' + i.replace("\\", "\\\\").replace('"', '\\"') + '"' for i in items]
        return "{" + ",".join(quoted) + "}"


# Seeding -------------------------------------------------------------------------------------


class SeedResult(NamedTuple):
    """Row counts of seeded tables, and the last error of each table left empty."""

    seeded: dict[str, int]
    failed: dict[str, str]


@dataclass
class _Coverage:
    nulled: set[str] = field(default_factory=set)
    newest: set[str] = field(default_factory=set)


def _enum_choice(col: _Column, row: int, attempt: int, rng: random.Random) -> str | None:
    if not col.labels:
        return None
    if attempt >= 2:
        return rng.choice(col.labels)
    if row == 0:
        return col.labels[-1]
    others = col.labels[:-1] or col.labels
    return others[(row - 1 + attempt) % len(others)]


def _candidates(
    conn: psycopg.Connection[Any], table: _Table, columns: list[str], limit: int = 40
) -> list[tuple[Any, ...]]:
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    not_null = sql.SQL(" AND ").join(
        sql.SQL("{} IS NOT NULL").format(sql.Identifier(c)) for c in columns
    )
    query = sql.SQL("SELECT DISTINCT {} FROM {} WHERE {} LIMIT {}").format(
        cols, table.ident, not_null, sql.Literal(limit * 5)
    )
    with conn.transaction():
        rows = [tuple(r) for r in conn.execute(query).fetchall()]
    return rows


def _build_row(
    conn: psycopg.Connection[Any],
    table: _Table,
    tables: dict[int, _Table],
    values: _Values,
    row: int,
    attempt: int,
    force_null: set[str],
    force_newest: set[str],
    all_null: bool,
    others_null: bool = True,
) -> tuple[dict[str, Any], str | None]:
    """Column -> value (None = NULL) for one insert; or an error why no row can be built."""
    rng = values.rng
    out: dict[str, Any] = {}
    fk_columns = {c for fk in table.fks for c in fk.columns}
    null_share = 1.0 if all_null else (0.0 if attempt == 0 or not others_null else 0.3)
    for col in table.columns.values():
        if col.auto or col.name in fk_columns:
            continue
        if col.name in force_null:
            out[col.name] = None
            continue
        if col.nullable and col.name not in table.key_ranges and rng.random() < null_share:
            out[col.name] = None
            continue
        if all_null and col.has_default:
            continue  # NOT NULL with a default: let the database fill it in
        label = _enum_choice(col, row, attempt, rng)
        if col.name in force_newest and col.labels:
            label = col.labels[-1]
        allowed = table.key_lists.get(col.name)
        if allowed and label is not None and label not in allowed:
            label = rng.choice(sorted(allowed))
        out[col.name] = values.value(col, row, attempt, label, table.key_ranges.get(col.name))
    for fk in table.fks:
        cols_nullable = all(table.columns[c].nullable for c in fk.columns)
        if any(c in force_null for c in fk.columns) and cols_nullable:
            for c in fk.columns:
                out.setdefault(c, None)
            continue
        if all_null and cols_nullable:
            for c in fk.columns:
                out.setdefault(c, None)
            continue
        ref = tables[fk.ref_table]
        try:
            candidates = _candidates(conn, ref, fk.ref_columns)
        except psycopg.Error as exc:
            return {}, f"cannot read {ref.display}: {exc}"
        # keep candidates consistent with columns another key already set
        fixed = {i: out[c] for i, c in enumerate(fk.columns) if c in out and out[c] is not None}
        consistent = [
            cand for cand in candidates if all(str(cand[i]) == str(v) for i, v in fixed.items())
        ]
        pool = consistent or candidates
        if not pool:
            if fk.ref_table == table.oid and all(
                c in out and out[c] is not None for c in fk.ref_columns
            ):
                for c, rc in zip(fk.columns, fk.ref_columns, strict=True):
                    out[c] = out[rc]
                continue
            if cols_nullable or any(table.columns[c].nullable for c in fk.columns):
                for c in fk.columns:
                    if table.columns[c].nullable:
                        out[c] = None
                continue
            return {}, f"no row in {ref.display} for foreign key ({', '.join(fk.columns)})"
        choice = pool[(row + attempt) % len(pool)] if attempt < 2 else rng.choice(pool)
        for i, (c, v) in enumerate(zip(fk.columns, choice, strict=True)):
            if i in fixed and not consistent:
                continue  # keep the other key's value: this key then fails and is retried
            out[c] = v
    return out, None


def _insert(conn: psycopg.Connection[Any], table: _Table, row: dict[str, Any]) -> str | None:
    """Insert one row inside a savepoint; None on success, else the error text."""
    if row:
        names = list(row)
        query = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            table.ident,
            sql.SQL(", ").join(sql.Identifier(n) for n in names),
            sql.SQL(", ").join(
                sql.SQL("{}::{}").format(sql.Placeholder(), sql.SQL(table.columns[n].type_sql))
                for n in names
            ),
        )
        params: list[Any] = [None if row[n] is None else str(row[n]) for n in names]
    else:
        query = sql.SQL("INSERT INTO {} DEFAULT VALUES").format(table.ident)
        params = []
    try:
        with conn.transaction():
            conn.execute(query, params, prepare=False)
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"{type(exc).__name__}: {first}"
    return None


def _seed_table(
    conn: psycopg.Connection[Any],
    table: _Table,
    tables: dict[int, _Table],
    values: _Values,
    rows_per_table: int,
    attempts: int,
) -> tuple[int, str | None, _Coverage]:
    coverage = _Coverage()
    inserted = 0
    last_error: str | None = None
    nullable = {c.name for c in table.columns.values() if c.nullable and not c.auto}
    enums = {c.name for c in table.columns.values() if c.labels and not c.auto}

    def attempt_row(
        row: int,
        force_null: set[str],
        force_newest: set[str],
        all_null: bool,
        tries: int = attempts,
        others_null: bool = True,
    ) -> bool:
        nonlocal inserted, last_error
        for attempt in range(tries):
            data, why = _build_row(
                conn,
                table,
                tables,
                values,
                row,
                attempt,
                force_null,
                force_newest,
                all_null and attempt < tries // 2,
                others_null,
            )
            if why is not None:
                last_error = why
                continue
            error = _insert(conn, table, data)
            if error is None:
                inserted += 1
                coverage.nulled.update(n for n, v in data.items() if v is None)
                coverage.nulled.update(
                    n for n in nullable if n not in data and not table.columns[n].has_default
                )
                for n in enums:
                    col = table.columns[n]
                    v = data.get(n)
                    if isinstance(v, str) and (
                        v == col.labels[-1] or (col.is_array and col.labels[-1] in v)
                    ):
                        coverage.newest.add(n)
                return True
            last_error = error
        return False

    for row in range(rows_per_table):
        attempt_row(row, set(), set(), all_null=(row == 1))
    # make up for what the planned rows missed: a NULL in each nullable column, newest labels
    extra = rows_per_table
    for _ in range(rows_per_table):
        missing_null = nullable - coverage.nulled
        missing_newest = {
            n for n in enums - coverage.newest if _newest_allowed(table, table.columns[n])
        }
        if not missing_null and not missing_newest:
            break
        attempt_row(extra, missing_null, missing_newest, all_null=False)
        extra += 1
    for name in sorted(nullable - coverage.nulled):
        # one column at a time, in case columns exclude each other
        attempt_row(extra, {name}, set(), False, 3 * attempts, others_null=False)
        extra += 1
    for name in sorted(enums - coverage.newest):
        if _newest_allowed(table, table.columns[name]):
            attempt_row(extra, set(), {name}, False, 3 * attempts, others_null=False)
            extra += 1
    return inserted, last_error, coverage


def _newest_allowed(table: _Table, col: _Column) -> bool:
    allowed = table.key_lists.get(col.name)
    return not allowed or col.labels[-1] in allowed


def seed_all(
    conn: psycopg.Connection[Any],
    rows_per_table: int = 3,
    *,
    attempts: int = 12,
    seed: int = 20260821,
    report: list[str] | None = None,
) -> SeedResult:
    """Write rows into every table (see the module doc); commits when it is done.

    Runs in one transaction (a savepoint per insert), with ``SET CONSTRAINTS ALL IMMEDIATE``.
    ``report``, when given, receives one line per coverage gap.
    """
    rng = random.Random(seed)
    _type_cache.clear()
    with conn.transaction():
        conn.execute("SET CONSTRAINTS ALL IMMEDIATE")
        now_row = conn.execute("SELECT now()").fetchone()
        now = now_row[0] if now_row else dt.datetime.now(dt.UTC)
        tables = _load_tables(conn)
        values = _Values(rng, now)
        errors: dict[str, str] = {}
        for table in _order(tables):
            _inserted, error, coverage = _seed_table(
                conn, table, tables, values, rows_per_table, attempts
            )
            if error is not None:
                errors[table.display] = error
            if report is not None:
                gaps_null = sorted(
                    n
                    for n, c in table.columns.items()
                    if c.nullable and not c.auto and n not in coverage.nulled
                )
                gaps_enum = sorted(
                    n
                    for n, c in table.columns.items()
                    if c.labels
                    and not c.auto
                    and n not in coverage.newest
                    and _newest_allowed(table, c)
                )
                if _inserted and gaps_null:
                    report.append(f"{table.display}: never NULL: {', '.join(gaps_null)}")
                if _inserted and gaps_enum:
                    report.append(
                        f"{table.display}: newest label never used: {', '.join(gaps_enum)}"
                    )
        seeded: dict[str, int] = {}
        failed: dict[str, str] = {}
        for table in tables.values():
            count = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table.ident)).fetchone()
            n = int(count[0]) if count else 0
            if n:
                seeded[table.display] = n
            else:
                failed[table.display] = errors.get(table.display, "no row inserted")
    return SeedResult(dict(sorted(seeded.items())), dict(sorted(failed.items())))

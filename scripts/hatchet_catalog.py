"""Catalog snapshots of a Hatchet database, and a readable diff between two of them.

Used by the downgrade verification scripts (never run in CI): a database downgraded by
hatchet-schema must have the same catalog as a fresh database of the target release.

``snapshot(conn)`` reads, for schema ``public`` and every other non-system schema except
``hatchet_schema`` (the tool's own):

- tables (kind, partition key, persistence, reloptions, row-level security),
- columns (type with arrays/enums, default expression, nullability, identity, generated
  expression, collation),
- constraints (``pg_get_constraintdef``, keyed by table and name),
- indexes (``pg_get_indexdef`` and validity, keyed by name),
- functions and procedures (name, identity arguments, ``pg_get_functiondef``),
- enums (labels in order), domains, composite and range types,
- triggers (``pg_get_triggerdef`` and enabled state), views and materialized views
  (``pg_get_viewdef``), sequences (parameters and owner, not their current value),
- extensions (version and schema), and the schemas themselves.

Ignored: column order (attnum), OIDs, TOAST tables, internal triggers (foreign-key triggers,
whose names carry OIDs), table row types and array types, objects that belong to an extension,
current sequence values, and (with ``ignore_partitions=True``, the default) every partition
(``relispartition``) together with its indexes, constraints, triggers and owned sequences,
which PostgreSQL clones from the parent and the Hatchet engine creates under dated names.
Definitions are compared with runs of whitespace collapsed to one space. Function bodies and
view definitions are also kept as ``body`` (:func:`semantic_sql`: SQL comments removed outside
string literals, whitespace around punctuation dropped); ``diff`` compares ``body`` by default
and the textual ``definition`` with ``strict_bodies=True``.

Names are shown with ``quote_ident`` and without a ``public.`` prefix. The rows of
``goose_db_version`` are not part of the snapshot: ``version_rows(conn)`` returns them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

__all__ = ["Catalog", "diff", "normalise", "semantic_sql", "snapshot", "version_rows"]

EXCLUDED_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast", "hatchet_schema")

Row = dict[str, Any]

_WS = re.compile(r"\s+")


def normalise(text: str | None) -> str | None:
    """Collapse every run of whitespace to one space and strip the ends."""
    if text is None:
        return None
    return _WS.sub(" ", text).strip()


_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_\u0080-\uffff][A-Za-z_0-9\u0080-\uffff]*)?\$")
_IDENT_CHAR = re.compile(r"[A-Za-z_0-9$\u0080-\uffff]")
_AROUND_PUNCT = re.compile(r" ?([(),;=<>+\-*/|\[\]:.!~^%&{}@#?]) ?")


def _literal_end(text: str, start: int, quote: str, backslashes: bool) -> int:
    """Index just past the literal opened by ``text[start] == quote`` (doubled quotes, and
    with ``backslashes`` backslash escapes, stay inside); the end of ``text`` if unclosed."""
    i = start + 1
    while i < len(text):
        c = text[i]
        if backslashes and c == "\\":
            i += 2
            continue
        if c == quote:
            if i + 1 < len(text) and text[i + 1] == quote:
                i += 2
                continue
            return i + 1
        i += 1
    return len(text)


def _comment_end(text: str, start: int) -> int:
    """Index just past the (nestable) ``/* */`` comment at ``start``."""
    depth, i = 0, start
    while i < len(text):
        if text.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif text.startswith("*/", i):
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    return len(text)


def semantic_sql(text: str | None, *, _nested: bool = False) -> str | None:
    """SQL text as compared for meaning: ``--`` and ``/* */`` comments removed, whitespace
    collapsed and dropped next to punctuation; in literals only whitespace is collapsed (as
    :func:`normalise` does everywhere), so this never tells apart what ``normalise`` equates.

    Single-quoted strings (``E''`` ones with backslash escapes) and quoted identifiers keep
    their ``--`` and ``/* */``. The outermost dollar-quoted string (a function's body, as
    ``pg_get_functiondef`` prints it) is normalised the same way inside; dollar-quoted strings
    within a body (e.g. ``EXECUTE $q$...$q$``) are string literals and kept as they are.
    """
    if text is None:
        return None
    pieces: list[tuple[bool, str]] = []  # (is code, text)
    code: list[str] = []

    def flush() -> None:
        if code:
            pieces.append((True, "".join(code)))
            code.clear()

    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end < 0 else end + 1
            code.append(" ")
        elif text.startswith("/*", i):
            i = _comment_end(text, i)
            code.append(" ")
        elif c in "'\"":
            before = "".join(code)
            escapes = (
                c == "'"
                and before[-1:] in ("E", "e")
                and not _IDENT_CHAR.fullmatch(before[-2:-1] or " ")
            )
            end = _literal_end(text, i, c, escapes)
            flush()
            pieces.append((False, text[i:end]))
            i = end
        elif c == "$" and not _IDENT_CHAR.fullmatch(text[i - 1 : i] or " "):
            tag = _DOLLAR_TAG.match(text, i)
            if tag is None:
                code.append(c)
                i += 1
                continue
            close = text.find(tag.group(0), tag.end())
            end = n if close < 0 else close + len(tag.group(0))
            body = text[tag.end() : close if close >= 0 else n]
            flush()
            if _nested:
                pieces.append((False, text[i:end]))
            else:
                inner = semantic_sql(body, _nested=True) or ""
                pieces.append((False, f"{tag.group(0)}{inner}{tag.group(0)}"))
            i = end
        elif c.isspace():
            code.append(" ")
            i += 1
        else:
            code.append(c)
            i += 1
    flush()
    out: list[str] = []
    for is_code, piece in pieces:
        collapsed = _WS.sub(" ", piece)  # in literals too, as the textual comparison does
        out.append(_AROUND_PUNCT.sub(r"\1", collapsed) if is_code else collapsed)
    return "".join(out).strip()


@dataclass(frozen=True)
class Catalog:
    """A normalised, sorted picture of a database's schema objects (see the module doc)."""

    schemas: list[str] = field(default_factory=list)
    tables: dict[str, Row] = field(default_factory=dict)
    columns: dict[str, Row] = field(default_factory=dict)
    constraints: dict[str, Row] = field(default_factory=dict)
    indexes: dict[str, Row] = field(default_factory=dict)
    functions: dict[str, Row] = field(default_factory=dict)
    enums: dict[str, list[str]] = field(default_factory=dict)
    domains: dict[str, Row] = field(default_factory=dict)
    types: dict[str, Row] = field(default_factory=dict)
    triggers: dict[str, Row] = field(default_factory=dict)
    views: dict[str, Row] = field(default_factory=dict)
    sequences: dict[str, Row] = field(default_factory=dict)
    extensions: dict[str, Row] = field(default_factory=dict)

    def summary(self) -> str:
        """Object counts per section, e.g. ``tables=120 columns=1400 ...``."""
        return " ".join(f"{f.name}={len(getattr(self, f.name))}" for f in fields(self))


# SQL fragments -------------------------------------------------------------------------------

_SCHEMA_FILTER = """
    n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast', 'hatchet_schema')
    AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'
"""


def _qual(ns: str, name: str) -> str:
    """SQL expression for a display name: quote_ident, no ``public.`` prefix."""
    return (
        f"(CASE WHEN {ns}.nspname = 'public' THEN '' ELSE quote_ident({ns}.nspname) || '.' END"
        f" || quote_ident({name}))"
    )


def _not_extension_member(classid: str, oid: str) -> str:
    return (
        "NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = "
        f"'{classid}'::regclass AND d.objid = {oid} AND d.deptype = 'e')"
    )


def _partition_filter(alias: str, ignore_partitions: bool) -> str:
    return f"AND NOT {alias}.relispartition" if ignore_partitions else ""


def _fetch(conn: psycopg.Connection[Any], query: str) -> list[Row]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query.encode(), prepare=False)
        return list(cur.fetchall())


def _sorted(items: dict[str, Any]) -> dict[str, Any]:
    return {k: items[k] for k in sorted(items)}


# Snapshot ------------------------------------------------------------------------------------


def snapshot(conn: psycopg.Connection[Any], *, ignore_partitions: bool = True) -> Catalog:
    """Read the catalog of every non-system schema except ``hatchet_schema``.

    Runs read-only queries only; works inside or outside a transaction (PostgreSQL 15+).
    """
    ip = ignore_partitions
    rel = _qual("n", "c.relname")

    schemas = [
        str(r["nspname"])
        for r in _fetch(
            conn,
            f"SELECT n.nspname FROM pg_namespace n WHERE {_SCHEMA_FILTER} "
            f"AND {_not_extension_member('pg_namespace', 'n.oid')} ORDER BY 1",
        )
    ]

    tables: dict[str, Row] = {}
    for r in _fetch(
        conn,
        f"""
        SELECT {rel} AS name, c.relkind::text AS relkind, c.relpersistence::text AS persistence,
               CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END AS partition_key,
               c.reloptions, c.relrowsecurity, c.relforcerowsecurity, c.relispartition,
               CASE WHEN c.relispartition THEN (
                   SELECT {_qual("pn", "p.relname")} FROM pg_inherits i
                   JOIN pg_class p ON p.oid = i.inhparent
                   JOIN pg_namespace pn ON pn.oid = p.relnamespace
                   WHERE i.inhrelid = c.oid) END AS partition_of,
               CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END AS bound
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {_SCHEMA_FILTER} AND c.relkind IN ('r', 'p', 'f')
          AND {_not_extension_member("pg_class", "c.oid")} {_partition_filter("c", ip)}
        """,
    ):
        kind = {"r": "table", "p": "partitioned table", "f": "foreign table"}[r["relkind"]]
        row: Row = {
            "kind": kind,
            "partition_key": r["partition_key"],
            "persistence": {"p": "permanent", "u": "unlogged", "t": "temporary"}.get(
                r["persistence"], r["persistence"]
            ),
            "reloptions": sorted(r["reloptions"] or []),
            "row_security": bool(r["relrowsecurity"]),
            "force_row_security": bool(r["relforcerowsecurity"]),
        }
        if r["relispartition"]:
            row["partition_of"] = r["partition_of"]
            row["partition_bound"] = r["bound"]
        tables[r["name"]] = row

    columns: dict[str, Row] = {}
    for r in _fetch(
        conn,
        f"""
        SELECT {rel} AS rel, quote_ident(a.attname) AS col,
               format_type(a.atttypid, a.atttypmod) AS type,
               CASE WHEN a.attgenerated = '' THEN pg_get_expr(ad.adbin, ad.adrelid) END AS dflt,
               CASE WHEN a.attgenerated <> '' THEN pg_get_expr(ad.adbin, ad.adrelid) END AS gen,
               a.attnotnull, a.attidentity::text AS identity, a.attgenerated::text AS generated,
               CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation
                    THEN (SELECT collname FROM pg_collation WHERE oid = a.attcollation) END
                    AS collation
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_type t ON t.oid = a.atttypid
        LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
        WHERE {_SCHEMA_FILTER} AND c.relkind IN ('r', 'p', 'f')
          AND a.attnum > 0 AND NOT a.attisdropped
          AND {_not_extension_member("pg_class", "c.oid")} {_partition_filter("c", ip)}
        """,
    ):
        columns[f"{r['rel']}.{r['col']}"] = {
            "type": r["type"],
            "default": normalise(r["dflt"]),
            "not_null": bool(r["attnotnull"]),
            "identity": {"a": "ALWAYS", "d": "BY DEFAULT"}.get(r["identity"]),
            "generated": normalise(r["gen"]),
            "collation": r["collation"],
        }

    constraints: dict[str, Row] = {}
    for r in _fetch(
        conn,
        f"""
        SELECT {rel} AS rel, quote_ident(k.conname) AS name, k.contype::text AS type,
               pg_get_constraintdef(k.oid, true) AS def, k.condeferrable, k.condeferred,
               k.convalidated
        FROM pg_constraint k
        JOIN pg_class c ON c.oid = k.conrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {_SCHEMA_FILTER} AND {_not_extension_member("pg_class", "c.oid")}
          {_partition_filter("c", ip)}
          -- PostgreSQL 18 keeps NOT NULL as constraints ('n') named after the table they were
          -- created on, so a table rebuilt and renamed gets other names: nullability is
          -- compared through the columns instead, as on 15.
          AND k.contype <> 'n'
        """,
    ):
        constraints[f"{r['rel']}.{r['name']}"] = {
            "type": {
                "c": "CHECK",
                "f": "FOREIGN KEY",
                "p": "PRIMARY KEY",
                "u": "UNIQUE",
                "t": "TRIGGER",
                "x": "EXCLUDE",
            }.get(r["type"], r["type"]),
            "definition": normalise(r["def"]),
            "deferrable": bool(r["condeferrable"]),
            "deferred": bool(r["condeferred"]),
            "validated": bool(r["convalidated"]),
        }

    indexes: dict[str, Row] = {}
    for r in _fetch(
        conn,
        f"""
        SELECT {_qual("n", "ic.relname")} AS name, {rel} AS rel,
               pg_get_indexdef(i.indexrelid) AS def, i.indisvalid, i.indisready
        FROM pg_index i
        JOIN pg_class ic ON ic.oid = i.indexrelid
        JOIN pg_class c ON c.oid = i.indrelid
        JOIN pg_namespace n ON n.oid = ic.relnamespace
        WHERE {_SCHEMA_FILTER} AND {_not_extension_member("pg_class", "c.oid")}
          {_partition_filter("c", ip)}
        """,
    ):
        indexes[r["name"]] = {
            "table": r["rel"],
            "definition": normalise(r["def"]),
            "valid": bool(r["indisvalid"]),
            "ready": bool(r["indisready"]),
        }

    functions: dict[str, Row] = {}
    for r in _fetch(
        conn,
        f"""
        SELECT {_qual("n", "p.proname")} AS name,
               pg_get_function_identity_arguments(p.oid) AS args,
               p.prokind::text AS kind, pg_get_function_result(p.oid) AS result,
               CASE WHEN p.prokind IN ('f', 'p', 'w') THEN pg_get_functiondef(p.oid) END AS def
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE {_SCHEMA_FILTER} AND {_not_extension_member("pg_proc", "p.oid")}
        """,
    ):
        functions[f"{r['name']}({r['args']})"] = {
            "kind": {"f": "function", "p": "procedure", "a": "aggregate", "w": "window"}.get(
                r["kind"], r["kind"]
            ),
            "result": r["result"],
            "definition": normalise(r["def"]),
            "body": semantic_sql(r["def"]),
        }

    type_filter = f"{_SCHEMA_FILTER} AND {_not_extension_member('pg_type', 't.oid')}"
    enums: dict[str, list[str]] = {}
    for r in _fetch(
        conn,
        f"""
        SELECT {_qual("n", "t.typname")} AS name,
               array_agg(e.enumlabel::text ORDER BY e.enumsortorder) AS labels
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        JOIN pg_enum e ON e.enumtypid = t.oid
        WHERE t.typtype = 'e' AND {type_filter}
        GROUP BY 1
        """,
    ):
        enums[r["name"]] = list(r["labels"])
    for r in _fetch(
        conn,
        f"""SELECT {_qual("n", "t.typname")} AS name FROM pg_type t
        JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.typtype = 'e' AND {type_filter}""",
    ):
        enums.setdefault(r["name"], [])  # an enum without labels

    domains: dict[str, Row] = {}
    for r in _fetch(
        conn,
        f"""
        SELECT {_qual("n", "t.typname")} AS name, format_type(t.typbasetype, t.typtypmod) AS base,
               t.typnotnull, t.typdefault,
               (SELECT coalesce(array_agg(k.conname || ': ' || pg_get_constraintdef(k.oid, true)
                                          ORDER BY k.conname), '{{}}')
                FROM pg_constraint k WHERE k.contypid = t.oid) AS checks
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE t.typtype = 'd' AND {type_filter}
        """,
    ):
        domains[r["name"]] = {
            "base": r["base"],
            "not_null": bool(r["typnotnull"]),
            "default": normalise(r["typdefault"]),
            "constraints": [normalise(c) for c in r["checks"]],
        }

    types: dict[str, Row] = {}
    for r in _fetch(
        conn,
        f"""
        SELECT {_qual("n", "t.typname")} AS name,
               (SELECT array_agg(quote_ident(a.attname) || ' ' ||
                                 format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum)
                FROM pg_attribute a
                WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped)
                AS attributes
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        JOIN pg_class c ON c.oid = t.typrelid
        WHERE t.typtype = 'c' AND c.relkind = 'c' AND {type_filter}
        """,
    ):
        types[r["name"]] = {"kind": "composite", "attributes": list(r["attributes"] or [])}
    for r in _fetch(
        conn,
        f"""
        SELECT {_qual("n", "t.typname")} AS name, format_type(rg.rngsubtype, NULL) AS subtype,
               (SELECT opcname FROM pg_opclass WHERE oid = rg.rngsubopc) AS opclass,
               rg.rngsubdiff::regproc::text AS subdiff,
               rg.rngcanonical::regproc::text AS canonical,
               (SELECT typname FROM pg_type WHERE oid = rg.rngmultitypid) AS multirange
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        JOIN pg_range rg ON rg.rngtypid = t.oid
        WHERE t.typtype = 'r' AND {type_filter}
        """,
    ):
        types[r["name"]] = {
            "kind": "range",
            "subtype": r["subtype"],
            "opclass": r["opclass"],
            "subtype_diff": r["subdiff"],
            "canonical": r["canonical"],
            "multirange": r["multirange"],
        }

    triggers: dict[str, Row] = {}
    for r in _fetch(
        conn,
        f"""
        SELECT {rel} AS rel, quote_ident(tg.tgname) AS name,
               pg_get_triggerdef(tg.oid, true) AS def, tg.tgenabled::text AS enabled
        FROM pg_trigger tg
        JOIN pg_class c ON c.oid = tg.tgrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE NOT tg.tgisinternal AND {_SCHEMA_FILTER}
          AND {_not_extension_member("pg_class", "c.oid")} {_partition_filter("c", ip)}
        """,
    ):
        triggers[f"{r['rel']}.{r['name']}"] = {
            "definition": normalise(r["def"]),
            "enabled": {"O": "origin", "D": "disabled", "R": "replica", "A": "always"}.get(
                r["enabled"], r["enabled"]
            ),
        }

    views: dict[str, Row] = {}
    for r in _fetch(
        conn,
        f"""
        SELECT {rel} AS name, c.relkind::text AS relkind, pg_get_viewdef(c.oid, true) AS def
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('v', 'm') AND {_SCHEMA_FILTER}
          AND {_not_extension_member("pg_class", "c.oid")}
        """,
    ):
        views[r["name"]] = {
            "kind": "materialized view" if r["relkind"] == "m" else "view",
            "definition": normalise(r["def"]),
            "body": semantic_sql(r["def"]),
        }

    sequences: dict[str, Row] = {}
    for r in _fetch(
        conn,
        f"""
        SELECT {rel} AS name, format_type(s.seqtypid, NULL) AS type, s.seqstart, s.seqincrement,
               s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
               (SELECT {_qual("on2", "oc.relname")} || '.' || quote_ident(a.attname)
                FROM pg_depend d
                JOIN pg_class oc ON oc.oid = d.refobjid
                JOIN pg_namespace on2 ON on2.oid = oc.relnamespace
                JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                  AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
                LIMIT 1) AS owned_by,
               (SELECT bool_or(oc.relispartition) FROM pg_depend d
                JOIN pg_class oc ON oc.oid = d.refobjid
                WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                  AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i'))
                AS on_partition
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_sequence s ON s.seqrelid = c.oid
        WHERE c.relkind = 'S' AND {_SCHEMA_FILTER}
          AND {_not_extension_member("pg_class", "c.oid")}
        """,
    ):
        if ip and r["on_partition"]:
            continue
        sequences[r["name"]] = {
            "type": r["type"],
            "start": int(r["seqstart"]),
            "increment": int(r["seqincrement"]),
            "min": int(r["seqmin"]),
            "max": int(r["seqmax"]),
            "cache": int(r["seqcache"]),
            "cycle": bool(r["seqcycle"]),
            "owned_by": r["owned_by"],
        }

    extensions: dict[str, Row] = {}
    for r in _fetch(
        conn,
        """
        SELECT quote_ident(e.extname) AS name, e.extversion, n.nspname
        FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
        WHERE e.extname <> 'plpgsql'
        """,
    ):
        extensions[r["name"]] = {"version": r["extversion"], "schema": r["nspname"]}

    return Catalog(
        schemas=schemas,
        tables=_sorted(tables),
        columns=_sorted(columns),
        constraints=_sorted(constraints),
        indexes=_sorted(indexes),
        functions=_sorted(functions),
        enums=_sorted(enums),
        domains=_sorted(domains),
        types=_sorted(types),
        triggers=_sorted(triggers),
        views=_sorted(views),
        sequences=_sorted(sequences),
        extensions=_sorted(extensions),
    )


def version_rows(
    conn: psycopg.Connection[Any], table: str = "goose_db_version"
) -> list[tuple[int, bool]]:
    """``(version_id, is_applied)`` of every row of a goose table, in id order ([] if none).

    ``table`` is looked up through ``search_path`` like goose does; pass e.g.
    ``"outbox.migrations"`` for pgoutbox's own table.
    """
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
    if not row or not row[0]:
        return []
    query = sql.SQL("SELECT version_id, is_applied FROM {} ORDER BY id").format(
        sql.Identifier(*table.split(".", 1))
    )
    rows = conn.execute(query).fetchall()
    return [(int(v), bool(a)) for v, a in rows]


# Diff ----------------------------------------------------------------------------------------

_SINGULAR = {
    "schemas": "schema",
    "tables": "table",
    "columns": "column",
    "constraints": "constraint",
    "indexes": "index",
    "functions": "function",
    "enums": "enum",
    "domains": "domain",
    "types": "type",
    "triggers": "trigger",
    "views": "view",
    "sequences": "sequence",
    "extensions": "extension",
}

_EXCERPT = 60


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value
    return repr(value)


def _describe_change(expected: Any, actual: Any) -> str:
    """``expected != actual``; long strings shortened around their first difference."""
    exp, act = _show(expected), _show(actual)
    if len(exp) + len(act) <= 2 * _EXCERPT + 20 or not (
        isinstance(expected, str) and isinstance(actual, str)
    ):
        return f"{exp} != {act}"
    pos = 0
    for pos, (a, b) in enumerate(zip(exp, act, strict=False)):  # noqa: B007
        if a != b:
            break
    else:
        pos = min(len(exp), len(act))
    start = max(0, pos - _EXCERPT // 3)

    def cut(text: str) -> str:
        piece = text[start : start + _EXCERPT]
        return ("…" if start else "") + piece + ("…" if start + _EXCERPT < len(text) else "")

    return f"differs at char {pos}: {cut(exp)!r} != {cut(act)!r}"


_BODY_SECTIONS = ("functions", "views")


def diff(expected: Catalog, actual: Catalog, *, strict_bodies: bool = False) -> list[str]:
    """One line per difference between two snapshots, ``expected`` value first.

    Lines look like ``missing table v1_foo`` (in expected only), ``extra index ix_bar`` (in
    actual only), ``column v1_task.foo: type text != integer`` or
    ``enum "TenantMemberRole": labels [...] != [...]``.

    Functions and views are compared by ``body`` (comments and layout ignored: a down that
    recreates a function with the same code but other comments is no difference); with
    ``strict_bodies`` by their textual ``definition`` instead.
    """
    out: list[str] = []
    for f in fields(Catalog):
        label = _SINGULAR[f.name]
        ignored = ("body" if strict_bodies else "definition") if f.name in _BODY_SECTIONS else ""
        exp_section = getattr(expected, f.name)
        act_section = getattr(actual, f.name)
        if isinstance(exp_section, list):
            for name in sorted(set(exp_section) - set(act_section)):
                out.append(f"missing {label} {name}")
            for name in sorted(set(act_section) - set(exp_section)):
                out.append(f"extra {label} {name}")
            continue
        for name in sorted(set(exp_section) | set(act_section)):
            if name not in act_section:
                out.append(f"missing {label} {name}")
                continue
            if name not in exp_section:
                out.append(f"extra {label} {name}")
                continue
            exp_value, act_value = exp_section[name], act_section[name]
            if (
                ignored
                and isinstance(exp_value, dict)
                and isinstance(act_value, dict)
                and ignored in exp_value
                and ignored in act_value
            ):
                exp_value = {k: v for k, v in exp_value.items() if k != ignored}
                act_value = {k: v for k, v in act_value.items() if k != ignored}
            if exp_value == act_value:
                continue
            if isinstance(exp_value, list):
                out.append(f"{label} {name}: labels {exp_value!r} != {act_value!r}")
                continue
            for key in sorted(set(exp_value) | set(act_value)):
                a, b = exp_value.get(key), act_value.get(key)
                if a != b:
                    out.append(f"{label} {name}: {key} {_describe_change(a, b)}")
    return out

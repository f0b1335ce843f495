"""Rows a down's statements would fail on, found by reading them with pglast.

A down that restores an older schema often restores an older constraint too, and rows written
by the newer release may break it: ``SET NOT NULL`` on a column that now holds NULLs, a
``CHECK`` or ``UNIQUE`` the newer code never had to respect, a foreign key to rows since
deleted, an enum without the labels the newer release uses. :func:`data_conflicts` reads the
down's statements in order and returns one :class:`~migrator.profile.DataFix` per such
statement: which rows, why, the SQL that removes (or repairs) them, and the SQL that counts them.
:func:`count` runs that count against a read-only catalog.

What is covered:

- ``ALTER COLUMN c SET NOT NULL``: rows where ``c IS NULL`` are set to the column's default
  (the one the down sets earlier, else the one it has now) or deleted when it has none (or
  the down drops it first).
- ``ADD COLUMN c ... NOT NULL`` without a default: every existing row fails and nothing can be
  done about it by a statement; the fix has ``statement=""``, meaning "blocks".
- ``ADD CONSTRAINT ... CHECK (expr)`` (and ``VALIDATE CONSTRAINT`` of one): rows where
  ``NOT (expr)`` (a CHECK passes on NULL, and so does this condition) are deleted.
- ``ADD CONSTRAINT ... UNIQUE / PRIMARY KEY`` and ``CREATE UNIQUE INDEX`` (partial, expression
  and ``NULLS NOT DISTINCT`` ones too): of each set of duplicates the row with the lowest
  ``ctid`` is kept and the others are deleted; a primary key also deletes rows with a NULL key.
- ``ADD CONSTRAINT ... FOREIGN KEY`` (and ``VALIDATE CONSTRAINT``): rows whose key is set
  (``MATCH SIMPLE``: every column; ``MATCH FULL``: any) and has no referenced row are deleted;
  for a self-referencing key, so are the rows that only referenced those.
- ``ALTER COLUMN c TYPE e [USING expr::e]`` where ``e`` is an enum (created earlier in the
  down, or existing now): rows whose value, as text, is none of its labels are deleted.
- ``ALTER COLUMN c TYPE varchar(n) / char(n)`` and ``TYPE smallint / integer`` without
  ``USING``: rows whose value does not fit are deleted.

What the analysis assumes: the fixes run before any of the down's statements, in the order
returned, and every count is taken before any fix runs. A table the down creates, drops or
writes rows of itself (INSERT, UPDATE, DELETE, MERGE, COPY, TRUNCATE) before the statement is
left alone: the down handles its own rows, and if it does not it fails inside its transaction.
So is a table named in a DO block or in a statement pglast cannot read, and a constraint on a
column the down adds. Renames of tables, columns and types earlier in the down are followed
back to the names the rows have now. Deleted rows trigger whatever ``ON DELETE`` actions other
tables' foreign keys have.

``count_sql`` is sent through :meth:`Catalog.query <migrator.profile.Catalog.query>`, whose
``%s`` placeholders make every literal ``%`` in it ``%%``; ``statement`` is sent as it is.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pglast import ast, enums
from pglast.keywords import COL_NAME_KEYWORDS, RESERVED_KEYWORDS, TYPE_FUNC_NAME_KEYWORDS
from pglast.stream import RawStream

from migrator.profile import Catalog, DataFix
from migrator.sqlast import parse_statements

__all__ = ["count", "data_conflicts", "quote_ident", "quote_literal"]

_AT = enums.AlterTableType
_CT = enums.ConstrType
_OT = enums.ObjectType

_SIMPLE_NAME = re.compile(r"[a-z_][a-z0-9_]*\Z")
_KEYWORDS = frozenset(RESERVED_KEYWORDS) | TYPE_FUNC_NAME_KEYWORDS | COL_NAME_KEYWORDS
_INT_RANGES = {"int2": (-32768, 32767), "int4": (-2147483648, 2147483647)}
_INT_TYPES = ("smallint", "integer", "bigint")
_DML = (ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt, ast.MergeStmt)
_UNSET = (None, "", "\x00")
_SERIAL_TYPES = {"serial", "serial2", "serial4", "serial8", "smallserial", "bigserial"}


def quote_ident(name: str) -> str:
    """``name`` as an SQL identifier: double-quoted unless it is plain lower case, no keyword."""
    if _SIMPLE_NAME.match(name) and name not in _KEYWORDS:
        return name
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """``value`` as a standard SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def _key(schema: str | None, name: str) -> tuple[str, str]:
    return ("" if schema in (None, "", "public") else str(schema), name)


@dataclass(frozen=True)
class _Rel:
    schema: str | None
    name: str

    @classmethod
    def of(cls, rv: Any) -> _Rel:
        return cls(rv.schemaname or None, str(rv.relname))

    @property
    def key(self) -> tuple[str, str]:
        return _key(self.schema, self.name)

    @property
    def sql(self) -> str:
        return ".".join(quote_ident(p) for p in (self.schema, self.name) if p)

    @property
    def ref(self) -> str:
        """How a query on this table qualifies its columns."""
        return quote_ident(self.name)


def _walk(node: Any) -> Iterator[Any]:
    if isinstance(node, ast.Node):
        yield node
        for attr in node:
            yield from _walk(getattr(node, attr))
    elif isinstance(node, tuple | list):
        for item in node:
            yield from _walk(item)


@functools.lru_cache(maxsize=8192)
def _written_relations(sql: str) -> tuple[tuple[Any, ...], ...]:
    """Per statement of ``sql``, the relations its DML (and COPY FROM), at any depth, writes.

    Depends on the text alone, so it is worked out once (the trees are shared: not changed)."""
    out: list[tuple[Any, ...]] = []
    for stmt in _parse(sql) or ():
        found = []
        for node in _walk(stmt):
            writes = isinstance(node, _DML) or (
                isinstance(node, ast.CopyStmt) and bool(node.is_from)
            )
            if writes and node.relation is not None:
                found.append(node.relation)
        out.append(tuple(found))
    return tuple(out)


def _column_names(expr: Any) -> Iterator[str]:
    for node in _walk(expr):
        if isinstance(node, ast.ColumnRef) and node.fields:
            last = node.fields[-1]
            if isinstance(last, ast.String):
                yield str(last.sval)


def _column(name: str) -> ast.ColumnRef:
    return ast.ColumnRef(fields=(ast.String(sval=name),))


def _names(names: Any) -> tuple[str, ...]:
    return tuple(str(getattr(n, "sval", n)) for n in names or ())


def _names_key(names: Sequence[str]) -> tuple[str, str]:
    if not names:
        return ("", "")
    return _key(names[-2] if len(names) > 1 else None, names[-1])


def _type_sql(names: Sequence[str]) -> str:
    return ".".join(quote_ident(n) for n in names)


def _parse(sql: str) -> tuple[Any, ...] | None:
    return parse_statements(sql)  # None: SQL pglast cannot read (cached; never change the nodes)


def _has_default(col: Any) -> bool:
    if col.raw_default is not None or col.identity not in _UNSET or col.generated not in _UNSET:
        return True
    names = _names(getattr(col.typeName, "names", ()))
    if names and names[-1] in _SERIAL_TYPES:
        return True
    for con in col.constraints or ():
        if con.contype in (_CT.CONSTR_IDENTITY, _CT.CONSTR_GENERATED):
            return True
        if con.contype == _CT.CONSTR_DEFAULT:
            expr = con.raw_expr
            if not (isinstance(expr, ast.A_Const) and expr.isnull):
                return True
    return False


def _is_not_null(col: Any) -> bool:
    return bool(col.is_not_null) or any(
        con.contype in (_CT.CONSTR_NOTNULL, _CT.CONSTR_PRIMARY) for con in col.constraints or ()
    )


class _Down:
    """Reads a down statement by statement, tracking what each one changes for the next."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.fixes: list[DataFix] = []
        self.tables: dict[tuple[str, str], _Rel] = {}
        """Table name now (in the down) -> its name before the down."""
        self.columns: dict[tuple[tuple[str, str], str], str] = {}
        self.types: dict[tuple[str, str], tuple[str, ...]] = {}
        self.added: set[tuple[tuple[str, str], str]] = set()
        self.fresh: set[tuple[str, str]] = set()
        self.written: set[tuple[str, str]] = set()
        self.opaque: list[str] = []
        self.defaults: dict[tuple[tuple[str, str], str], Any] = {}
        self.enums: dict[tuple[str, str], list[str]] = {}
        self.enum_additions: dict[tuple[str, str], list[str]] = {}
        self.not_valid: dict[tuple[tuple[str, str], str], Any] = {}

    # Names -----------------------------------------------------------------------------------

    def rel(self, rv: Any) -> _Rel:
        written = _Rel.of(rv)
        return self.tables.get(written.key, written)

    def col(self, rel: _Rel, name: str) -> str:
        return self.columns.get((rel.key, name), name)

    def left_alone(self, rel: _Rel) -> bool:
        if rel.key in self.fresh or rel.key in self.written:
            return True
        name = rel.name.lower()
        return any(name in text for text in self.opaque)

    def uses_added(self, rel: _Rel, *exprs: Any) -> bool:
        return any((rel.key, self.col(rel, c)) in self.added for c in _column_names(exprs))

    def render(self, rel: _Rel, expr: Any, qualifier: str | None = None) -> str:
        """``expr`` as SQL, its columns renamed back and qualified by ``qualifier``."""
        node = copy.deepcopy(expr)
        for sub in _walk(node):
            if isinstance(sub, ast.ColumnRef) and sub.fields:
                last = sub.fields[-1]
                if isinstance(last, ast.String):
                    parts = (qualifier, self.col(rel, str(last.sval)))
                    sub.fields = tuple(ast.String(sval=p) for p in parts if p)
        return str(RawStream()(node))

    def lookup(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        try:
            return self.catalog.query(sql, params)
        except Exception:  # the catalog is best effort here: no answer means no knowledge
            return []

    # Output ----------------------------------------------------------------------------------

    def add(self, rel: _Rel, condition: str, where: str, reason: str, statement: str) -> None:
        count_sql = f"SELECT count(*) FROM {rel.sql} WHERE {where}"
        self.fixes.append(
            DataFix(
                table=rel.sql,
                condition=condition,
                reason=reason,
                statement=statement,
                count_sql=count_sql.replace("%", "%%"),
            )
        )

    def delete(
        self,
        rel: _Rel,
        where: str,
        reason: str,
        condition: str | None = None,
        deleted: str = "those rows are deleted",
    ) -> None:
        statement = f"DELETE FROM {rel.sql} WHERE {where}"
        self.add(rel, condition or where, where, f"{reason}; {deleted}", statement)

    # Statements ------------------------------------------------------------------------------

    def read(self, sql: str) -> None:
        if not sql.strip():
            return
        parsed = _parse(sql)
        if parsed is None:
            self.opaque.append(sql.lower())
            return
        for stmt, written in zip(parsed, _written_relations(sql), strict=True):
            if isinstance(stmt, ast.DoStmt):
                self.opaque.append(sql.lower())
            try:
                self.statement(stmt)
            except Exception:  # a shape this reader does not expect: treat it as unread
                self.opaque.append(sql.lower())
            for relation in written:
                self.written.add(self.rel(relation).key)

    def statement(self, stmt: Any) -> None:
        if isinstance(stmt, ast.AlterTableStmt) and stmt.objtype == _OT.OBJECT_TABLE:
            rel = self.rel(stmt.relation)
            for cmd in stmt.cmds or ():
                self.alter_table(rel, cmd)
        elif isinstance(stmt, ast.IndexStmt) and stmt.unique:
            rel = self.rel(stmt.relation)
            keys = [_column(e.name) if e.name else e.expr for e in stmt.indexParams or ()]
            name = f"unique index {stmt.idxname}" if stmt.idxname else "a unique index"
            self.unique(rel, keys, name, bool(stmt.nulls_not_distinct), stmt.whereClause)
        elif isinstance(stmt, ast.CreateStmt):
            self.fresh.add(self.rel(stmt.relation).key)
        elif isinstance(stmt, ast.CreateTableAsStmt) and stmt.into is not None:
            self.fresh.add(self.rel(stmt.into.rel).key)
        elif isinstance(stmt, ast.SelectStmt) and stmt.intoClause is not None:
            self.fresh.add(self.rel(stmt.intoClause.rel).key)
        elif isinstance(stmt, ast.DropStmt) and stmt.removeType == _OT.OBJECT_TABLE:
            for obj in stmt.objects or ():
                names = _names(obj)
                key = _names_key(names)
                self.fresh.add(self.tables[key].key if key in self.tables else key)
        elif isinstance(stmt, ast.TruncateStmt):
            self.written.update(self.rel(r).key for r in stmt.relations or ())
        elif isinstance(stmt, ast.RenameStmt):
            self.rename(stmt)
        elif isinstance(stmt, ast.AlterObjectSchemaStmt) and stmt.relation is not None:
            if stmt.objectType == _OT.OBJECT_TABLE:
                old = self.rel(stmt.relation)
                self.tables[_key(stmt.newschema, str(stmt.relation.relname))] = old
        elif isinstance(stmt, ast.CreateEnumStmt):
            self.enums[_names_key(_names(stmt.typeName))] = list(_names(stmt.vals))
        elif isinstance(stmt, ast.AlterEnumStmt):
            self.alter_enum(stmt)

    def rename(self, stmt: ast.RenameStmt) -> None:
        new = str(stmt.newname)
        if stmt.renameType == _OT.OBJECT_TABLE and stmt.relation is not None:
            old = self.rel(stmt.relation)
            self.tables[_key(stmt.relation.schemaname, new)] = old
        elif stmt.renameType == _OT.OBJECT_COLUMN and stmt.relation is not None:
            rel = self.rel(stmt.relation)
            subname = str(stmt.subname)
            self.columns[(rel.key, new)] = self.col(rel, subname)
            if (rel.key, subname) in self.added:
                self.added.add((rel.key, new))
        elif stmt.renameType == _OT.OBJECT_TYPE:
            names = _names(stmt.object)
            original = self.types.get(_names_key(names), names)
            self.types[_names_key((*names[:-1], new))] = original

    def alter_enum(self, stmt: ast.AlterEnumStmt) -> None:
        key = _names_key(_names(stmt.typeName))
        labels = self.enums.get(key)
        if stmt.oldVal is not None and labels is not None:
            new = str(stmt.newVal)
            self.enums[key] = [new if label == stmt.oldVal else label for label in labels]
        elif stmt.oldVal is None and stmt.newVal is not None:
            target = labels if labels is not None else self.enum_additions.setdefault(key, [])
            target.append(str(stmt.newVal))

    def alter_table(self, rel: _Rel, cmd: Any) -> None:
        sub = getattr(cmd, "subtype", None)
        if sub == _AT.AT_AddColumn:
            self.add_column(rel, cmd)
            self.added.add((rel.key, str(cmd.def_.colname)))
        elif sub == _AT.AT_SetNotNull:
            self.set_not_null(rel, self.col(rel, str(cmd.name)))
        elif sub == _AT.AT_ColumnDefault:
            default = cmd.def_
            if isinstance(default, ast.A_Const) and default.isnull:
                default = None
            self.defaults[(rel.key, self.col(rel, str(cmd.name)))] = default
        elif sub == _AT.AT_AddConstraint:
            self.constraint(rel, cmd.def_, validate=False)
        elif sub == _AT.AT_ValidateConstraint:
            self.validate(rel, str(cmd.name))
        elif sub == _AT.AT_AlterColumnType:
            self.alter_type(rel, self.col(rel, str(cmd.name)), cmd.def_)

    # Checks ----------------------------------------------------------------------------------

    def add_column(self, rel: _Rel, cmd: Any) -> None:
        col = cmd.def_
        if self.left_alone(rel) or not _is_not_null(col) or _has_default(col):
            return
        name = quote_ident(str(col.colname))
        where = "TRUE"
        if cmd.missing_ok:
            where = (
                "NOT EXISTS (SELECT FROM pg_catalog.pg_attribute WHERE attrelid = "
                f"{quote_literal(rel.sql)}::regclass AND attname = {quote_literal(col.colname)}"
                " AND NOT attisdropped)"
            )
        reason = (
            f"{rel.sql}.{name} is added NOT NULL without a default, which no existing row "
            "satisfies; no statement can fix that"
        )
        self.add(rel, "TRUE", where, reason, "")

    def set_not_null(self, rel: _Rel, col: str) -> None:
        if self.left_alone(rel) or (rel.key, col) in self.added:
            return
        name = quote_ident(col)
        where = f"{name} IS NULL"
        reason = f"{rel.sql}.{name} becomes NOT NULL"
        value: str | None = None
        if (rel.key, col) in self.defaults:
            default = self.defaults[(rel.key, col)]
            if default is not None:
                value = self.render(rel, default)
                reason += f"; those NULLs are set to {value}, the default the down sets"
        elif self.lookup(
            "SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = to_regclass(%s) "
            "AND attname = %s AND atthasdef AND attgenerated = '' AND NOT attisdropped",
            [rel.sql, col],
        ):
            value = "DEFAULT"
            reason += "; those NULLs are set to the column's default"
        if value is None:
            self.delete(rel, where, reason)
        else:
            statement = f"UPDATE {rel.sql} SET {name} = {value} WHERE {where}"
            self.add(rel, where, where, reason, statement)

    def constraint(self, rel: _Rel, con: Any, *, validate: bool) -> None:
        kind = con.contype
        name = f"constraint {con.conname}" if con.conname else None
        if kind in (_CT.CONSTR_CHECK, _CT.CONSTR_FOREIGN) and con.skip_validation and not validate:
            if con.conname:
                self.not_valid[(rel.key, str(con.conname))] = con
            return
        if kind == _CT.CONSTR_CHECK:
            self.check(rel, con, name or "a CHECK constraint")
        elif kind == _CT.CONSTR_FOREIGN:
            self.foreign_key(rel, con, name or "a foreign key")
        elif kind in (_CT.CONSTR_UNIQUE, _CT.CONSTR_PRIMARY) and not con.indexname:
            keys = [_column(str(k.sval)) for k in con.keys or ()]
            if kind == _CT.CONSTR_PRIMARY:
                what = name or "a primary key"
                self.key_not_null(rel, [self.col(rel, str(k.sval)) for k in con.keys or ()], what)
            else:
                what = name or "a UNIQUE constraint"
            self.unique(rel, keys, what, bool(con.nulls_not_distinct), None)

    def validate(self, rel: _Rel, conname: str) -> None:
        con = self.not_valid.get((rel.key, conname))
        if con is None:
            rows = self.lookup(
                "SELECT pg_catalog.pg_get_constraintdef(oid) FROM pg_catalog.pg_constraint "
                "WHERE conrelid = to_regclass(%s) AND conname = %s",
                [rel.sql, conname],
            )
            if not rows:
                return
            parsed = _parse(f"ALTER TABLE t ADD CONSTRAINT {quote_ident(conname)} {rows[0][0]}")
            if not parsed:
                return
            con = parsed[0].cmds[0].def_
        self.constraint(rel, con, validate=True)

    def check(self, rel: _Rel, con: Any, what: str) -> None:
        if self.left_alone(rel) or self.uses_added(rel, con.raw_expr):
            return
        expr = self.render(rel, con.raw_expr)
        self.delete(rel, f"NOT ({expr})", f"{what} CHECK ({expr}) is added")

    def key_not_null(self, rel: _Rel, cols: list[str], what: str) -> None:
        if self.left_alone(rel) or any((rel.key, c) in self.added for c in cols):
            return
        names = [quote_ident(c) for c in cols]
        where = " OR ".join(f"{n} IS NULL" for n in names)
        self.delete(rel, where, f"{what} needs ({', '.join(names)}) NOT NULL")

    def unique(
        self, rel: _Rel, keys: list[Any], what: str, nulls_not_distinct: bool, predicate: Any
    ) -> None:
        if not keys or self.left_alone(rel) or self.uses_added(rel, keys, predicate):
            return
        alias = "dup" if rel.name != "dup" else "dup_2"
        op = "IS NOT DISTINCT FROM" if nulls_not_distinct else "="
        pairs = [
            f"({self.render(rel, k, alias)}) {op} ({self.render(rel, k, rel.name)})" for k in keys
        ]
        pairs.append(f"{alias}.ctid < {rel.ref}.ctid")
        shown = ", ".join(self.render(rel, k) for k in keys)
        condition = f"({shown}) repeats a row with a lower ctid"
        where = ""
        if predicate is not None:
            pairs.append(f"({self.render(rel, predicate, alias)})")
            where = f" AND ({self.render(rel, predicate, rel.name)})"
            condition += f" and {self.render(rel, predicate)}"
        where = f"EXISTS (SELECT FROM {rel.sql} AS {alias} WHERE {' AND '.join(pairs)}){where}"
        deleted = "those rows are deleted and the one with the lowest ctid of each key is kept"
        self.delete(rel, where, f"{what} needs ({shown}) unique", condition, deleted)

    def foreign_key(self, rel: _Rel, con: Any, what: str) -> None:
        if self.left_alone(rel) or con.pktable is None:
            return
        parent = self.rel(con.pktable)
        cols = [self.col(rel, str(a.sval)) for a in con.fk_attrs or ()]
        if not cols or any((rel.key, c) in self.added for c in cols):
            return
        if parent.key != rel.key and (
            parent.key in self.written or any(parent.name.lower() in t for t in self.opaque)
        ):
            return
        fk = [quote_ident(c) for c in cols]
        joiner = " OR " if con.fk_matchtype == "f" else " AND "
        shown = f"({', '.join(fk)})"
        reason = f"{what} to {parent.sql} is added"
        if parent.key in self.fresh:
            where = joiner.join(f"{c} IS NOT NULL" for c in fk)
            condition = f"{shown} is set and {parent.sql} is created empty by the down"
            self.delete(rel, f"({where})", reason, condition)
            return
        pk = [quote_ident(self.col(parent, str(a.sval))) for a in con.pk_attrs or ()]
        if not pk:
            pk = [quote_ident(str(r[0])) for r in self.primary_key(parent)]
        if len(pk) != len(fk):
            return
        alias = "ref" if rel.name != "ref" else "ref_2"

        def orphan(q: str) -> str:
            guard = joiner.join(f"{q}.{c} IS NOT NULL" for c in fk)
            match = " AND ".join(f"{alias}.{p} = {q}.{c}" for p, c in zip(pk, fk, strict=True))
            return f"({guard}) AND NOT EXISTS (SELECT FROM {parent.sql} AS {alias} WHERE {match})"

        condition = f"{shown} has no row in {parent.sql} ({', '.join(pk)})"
        if parent.key != rel.key:
            self.delete(rel, orphan(rel.ref), reason, condition)
            return
        keys = [f"k{i}" for i in range(len(pk))]
        where = (
            f"ctid IN (WITH RECURSIVE orphan(row_id, {', '.join(keys)}) AS ("
            f"SELECT o.ctid, {', '.join(f'o.{p}' for p in pk)} FROM {rel.sql} AS o "
            f"WHERE {orphan('o')} UNION "
            f"SELECT c.ctid, {', '.join(f'c.{p}' for p in pk)} FROM {rel.sql} AS c "
            "JOIN orphan ON "
            + " AND ".join(f"c.{c} = orphan.{k}" for c, k in zip(fk, keys, strict=True))
            + ") SELECT row_id FROM orphan)"
        )
        condition += ", or references such a row"
        self.delete(rel, where, reason, condition)

    def primary_key(self, rel: _Rel) -> list[tuple[Any, ...]]:
        return self.lookup(
            "SELECT a.attname FROM pg_catalog.pg_constraint c "
            "CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord) "
            "JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum "
            "WHERE c.conrelid = to_regclass(%s) AND c.contype = 'p' ORDER BY k.ord",
            [rel.sql],
        )

    def enum_labels(self, names: tuple[str, ...]) -> list[str] | None:
        key = _names_key(names)
        if key in self.enums:
            return self.enums[key]
        if names[0] == "pg_catalog":
            return None
        original = self.types.get(key, names)
        rows = self.lookup(
            "SELECT e.enumlabel FROM pg_catalog.pg_enum e WHERE e.enumtypid = to_regtype(%s) "
            "ORDER BY e.enumsortorder",
            [_type_sql(original)],
        )
        if not rows:
            return None
        return [str(r[0]) for r in rows] + self.enum_additions.get(key, [])

    def current_type(self, rel: _Rel, col: str) -> str | None:
        rows = self.lookup(
            "SELECT pg_catalog.format_type(atttypid, atttypmod) FROM pg_catalog.pg_attribute "
            "WHERE attrelid = to_regclass(%s) AND attname = %s AND NOT attisdropped",
            [rel.sql, col],
        )
        return str(rows[0][0]) if rows else None

    def alter_type(self, rel: _Rel, col: str, coldef: Any) -> None:
        if self.left_alone(rel) or (rel.key, col) in self.added:
            return
        type_name = coldef.typeName
        if type_name is None or type_name.arrayBounds:
            return
        names = _names(type_name.names)
        using = coldef.raw_default
        name = quote_ident(col)
        column = f"{rel.sql}.{name}"
        labels = self.enum_labels(names)
        if labels is not None:
            if using is None:
                inner = name
            elif isinstance(using, ast.TypeCast) and _names_key(
                _names(getattr(using.typeName, "names", ()))
            ) == _names_key(names):
                inner = self.render(rel, using.arg)
            else:
                return
            if labels:
                listed = ", ".join(quote_literal(label) for label in labels)
                where = f"({inner})::text NOT IN ({listed})"
            else:
                where = f"({inner}) IS NOT NULL"
            reason = f"{column} becomes enum type {_type_sql(names)}, which lacks those values"
            self.delete(rel, where, reason)
            return
        if using is not None or len(names) != 2 or names[0] != "pg_catalog":
            return
        target = names[1]
        typmods = type_name.typmods or ()
        if target in ("varchar", "bpchar") and typmods:
            length = getattr(getattr(typmods[0], "val", None), "ival", None)
            if isinstance(length, int):
                shown = f"{'varchar' if target == 'varchar' else 'char'}({length})"
                where = f"char_length(rtrim({name}::text)) > {length}"
                self.delete(rel, where, f"{column} becomes {shown}, too short for those values")
        elif target in _INT_RANGES:
            now = self.current_type(rel, col)
            if now is None or not (now in _INT_TYPES or now.startswith("numeric")):
                return
            low, high = _INT_RANGES[target]
            value = name if now in _INT_TYPES else f"round({name})"
            shown = "smallint" if target == "int2" else "integer"
            where = f"{value} NOT BETWEEN {low} AND {high}"
            self.delete(rel, where, f"{column} becomes {shown}, too small for those values")


def data_conflicts(down_statements: list[str], catalog: Catalog) -> list[DataFix]:
    """Fixes for the rows ``down_statements`` would fail on, in statement order.

    Every candidate is returned, whether or not any row matches now: count them with
    :func:`count`. A fix with an empty ``statement`` has no recipe and blocks its step.
    """
    down = _Down(catalog)
    for sql in down_statements:
        down.read(sql)
    return down.fixes


def count(catalog: Catalog, fix: DataFix) -> int:
    """How many rows ``fix`` touches now: 0 when its table does not exist or the query fails."""
    try:
        exists = catalog.query("SELECT to_regclass(%s) IS NOT NULL", [fix.table])
        if not exists or not exists[0][0]:
            return 0
        rows = catalog.query(fix.count_sql)
    except Exception:  # a count that cannot run finds nothing; the catalog is read-only
        return 0
    return int(rows[0][0] or 0) if rows else 0

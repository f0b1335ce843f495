"""What an up leaves in the database when its migration has no down to undo it.

A goose SQL migration whose Down section is missing or empty reverts nothing: the version row
is deleted and every object the up created, and every change it made, stays. :func:`left_behind`
reads the up's statements with pglast (PostgreSQL's own parser) and names them as short phrases
(``table s.t``, ``column t.c``, ``index ix``, ``function f(...)``, ``enum label 'x' of e``,
``column t.c dropped by the up is not restored``), so an operator knows what the older release
will find. Objects that go away with a table the same up created (its columns, constraints,
indexes, triggers, rows) are covered by that table's phrase and not listed again.

Statements inside DO blocks and function bodies are strings to the parser and are not read;
statements the parser cannot read are counted. Names are shown as PostgreSQL folds them,
unquoted, like the ``data loss:`` warnings of :mod:`migrator.analysis`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Literal

from pglast import ast, enums

from migrator.sqlast import parse_statements

__all__ = ["left_behind", "left_behind_warning"]

MAX_LISTED = 12
"""Phrases a warning names before it says ``and N more``."""

_AT = enums.AlterTableType
_OT = enums.ObjectType

_KIND_NAMES = {
    _OT.OBJECT_MATVIEW: "materialized view",
    _OT.OBJECT_TABCONSTRAINT: "constraint",
    _OT.OBJECT_FOREIGN_TABLE: "foreign table",
    _OT.OBJECT_EVENT_TRIGGER: "event trigger",
    _OT.OBJECT_TSCONFIGURATION: "text search configuration",
    _OT.OBJECT_TSDICTIONARY: "text search dictionary",
    _OT.OBJECT_TSPARSER: "text search parser",
    _OT.OBJECT_TSTEMPLATE: "text search template",
    _OT.OBJECT_STATISTIC_EXT: "statistics",
}

_CONSTRAINT_KINDS = {
    enums.ConstrType.CONSTR_CHECK: "CHECK",
    enums.ConstrType.CONSTR_PRIMARY: "PRIMARY KEY",
    enums.ConstrType.CONSTR_UNIQUE: "UNIQUE",
    enums.ConstrType.CONSTR_FOREIGN: "FOREIGN KEY",
    enums.ConstrType.CONSTR_EXCLUSION: "EXCLUDE",
    enums.ConstrType.CONSTR_NOTNULL: "NOT NULL",
}

_RELATION_KINDS = {"table", "view", "materialized"}

# Statements that change nothing that outlives the session.
_NO_EFFECT = (
    ast.VariableSetStmt,
    ast.VariableShowStmt,
    ast.TransactionStmt,
    ast.ExplainStmt,
    ast.LockStmt,
    ast.NotifyStmt,
    ast.ListenStmt,
    ast.UnlistenStmt,
    ast.CheckPointStmt,
    ast.VacuumStmt,
    ast.DiscardStmt,
    ast.PrepareStmt,
    ast.DeallocateStmt,
    ast.ExecuteStmt,
    ast.DeclareCursorStmt,
    ast.ClosePortalStmt,
    ast.FetchStmt,
    ast.ReindexStmt,
    ast.ClusterStmt,
)


def _kind(kind: Any) -> str:
    if kind in _KIND_NAMES:
        return _KIND_NAMES[kind]
    return str(getattr(kind, "name", kind)).removeprefix("OBJECT_").replace("_", " ").lower()


def _dotted(names: Any) -> str:
    return ".".join(str(getattr(n, "sval", n)) for n in names or ())


def _relation(rel: Any) -> str:
    schema = getattr(rel, "schemaname", None)
    return f"{schema}.{rel.relname}" if schema else str(rel.relname)


def _rel_key(rel: Any) -> tuple[str, str]:
    schema = getattr(rel, "schemaname", None)
    return ("" if schema in (None, "public") else str(schema), str(rel.relname))


def _names_key(names: Any) -> tuple[str, str]:
    parts = [str(getattr(n, "sval", n)) for n in names or ()]
    schema = parts[-2] if len(parts) > 1 else ""
    return ("" if schema == "public" else schema, parts[-1] if parts else "")


def _object(obj: Any) -> str:
    if isinstance(obj, ast.String):
        return str(obj.sval)
    if isinstance(obj, tuple | list):
        return _dotted(obj)
    if isinstance(obj, ast.TypeName):
        return _dotted(obj.names).removeprefix("pg_catalog.")
    if isinstance(obj, ast.ObjectWithArgs):
        return _dotted(obj.objname) + "(...)"
    if isinstance(obj, ast.RangeVar):
        return _relation(obj)
    return "?"


def _words(camel: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", camel).lower()


class _Reader:
    """Collects phrases statement by statement, remembering the tables the up created."""

    def __init__(self) -> None:
        self.phrases: list[str] = []
        self.created_tables: set[tuple[str, str]] = set()
        self.created_types: set[tuple[str, str]] = set()
        self.unparsed = 0
        self.do_blocks = 0

    def add(self, phrase: str) -> None:
        if phrase not in self.phrases:
            self.phrases.append(phrase)

    def on_created_table(self, rel: Any) -> bool:
        return rel is not None and _rel_key(rel) in self.created_tables

    def create_table(self, rel: Any, kind: str = "table") -> None:
        if rel is None or getattr(rel, "relpersistence", "p") == "t":
            return  # a temporary table is gone when the session ends
        self.created_tables.add(_rel_key(rel))
        self.add(f"{kind} {_relation(rel)}")

    def read(self, stmt: Any) -> None:
        handler = getattr(self, f"_{type(stmt).__name__}", None)
        if handler is not None:
            handler(stmt)
        elif isinstance(stmt, ast.DoStmt):
            self.do_blocks += 1
        elif not isinstance(stmt, _NO_EFFECT):
            self.add(f"effects of a {_words(type(stmt).__name__.removesuffix('Stmt'))} statement")

    # Relations -------------------------------------------------------------------------------

    def _CreateStmt(self, stmt: ast.CreateStmt) -> None:
        self.create_table(stmt.relation)

    def _CreateForeignTableStmt(self, stmt: ast.CreateForeignTableStmt) -> None:
        self.create_table(getattr(stmt.base, "relation", None), "foreign table")

    def _CreateTableAsStmt(self, stmt: ast.CreateTableAsStmt) -> None:
        kind = "materialized view" if stmt.objtype == _OT.OBJECT_MATVIEW else "table"
        self.create_table(getattr(stmt.into, "rel", None), kind)

    def _SelectStmt(self, stmt: ast.SelectStmt) -> None:
        if stmt.intoClause is not None:
            self.create_table(stmt.intoClause.rel)

    def _ViewStmt(self, stmt: ast.ViewStmt) -> None:
        self.create_table(stmt.view, "view")

    def _CreateSeqStmt(self, stmt: ast.CreateSeqStmt) -> None:
        self.add(f"sequence {_relation(stmt.sequence)}")

    def _AlterSeqStmt(self, stmt: ast.AlterSeqStmt) -> None:
        self.add(f"change to sequence {_relation(stmt.sequence)}")

    def _IndexStmt(self, stmt: ast.IndexStmt) -> None:
        if self.on_created_table(stmt.relation):
            return
        if stmt.idxname:
            self.add(f"index {stmt.idxname}")
        else:
            self.add(f"index on {_relation(stmt.relation)}")

    def _CreateTrigStmt(self, stmt: ast.CreateTrigStmt) -> None:
        if not self.on_created_table(stmt.relation):
            self.add(f"trigger {stmt.trigname} on {_relation(stmt.relation)}")

    def _RuleStmt(self, stmt: ast.RuleStmt) -> None:
        if not self.on_created_table(stmt.relation):
            self.add(f"rule {stmt.rulename} on {_relation(stmt.relation)}")

    def _CreatePolicyStmt(self, stmt: ast.CreatePolicyStmt) -> None:
        if not self.on_created_table(stmt.table):
            self.add(f"policy {stmt.policy_name} on {_relation(stmt.table)}")

    def _CreateStatsStmt(self, stmt: ast.CreateStatsStmt) -> None:
        rels = stmt.relations or ()
        if not (rels and all(self.on_created_table(r) for r in rels)):
            self.add(f"statistics {_dotted(stmt.defnames) or 'on ' + _object(rels[0])}")

    def _AlterTableStmt(self, stmt: ast.AlterTableStmt) -> None:
        if self.on_created_table(stmt.relation):
            return
        name = _relation(stmt.relation)
        is_type = stmt.objtype == _OT.OBJECT_TYPE
        if is_type and _rel_key(stmt.relation) in self.created_types:
            return
        kind = _kind(stmt.objtype)
        for cmd in stmt.cmds or ():
            self.add(self._alter_table_cmd(cmd, name, kind, is_type))

    @staticmethod
    def _alter_table_cmd(cmd: Any, name: str, kind: str, is_type: bool) -> str:
        sub = getattr(cmd, "subtype", None)
        column = f"{name}.{cmd.name}"
        if sub == _AT.AT_AddColumn:
            return f"{'attribute' if is_type else 'column'} {name}.{cmd.def_.colname}"
        if sub == _AT.AT_DropColumn:
            return f"column {column} dropped by the up is not restored"
        if sub == _AT.AT_AlterColumnType:
            return f"type of column {column} changed by the up is not restored"
        if sub == _AT.AT_ColumnDefault:
            if cmd.def_ is None:
                return f"default of {column} dropped by the up is not restored"
            return f"default of {column}"
        if sub == _AT.AT_SetNotNull:
            return f"NOT NULL on {column}"
        if sub == _AT.AT_DropNotNull:
            return f"NOT NULL dropped from {column} is not restored"
        if sub == _AT.AT_AddConstraint:
            con = cmd.def_
            if con.conname:
                return f"constraint {con.conname} on {name}"
            return f"{_CONSTRAINT_KINDS.get(con.contype, 'a')} constraint on {name}"
        if sub == _AT.AT_DropConstraint:
            return f"constraint {name}.{cmd.name} dropped by the up is not restored"
        if sub == _AT.AT_AttachPartition:
            return f"partition {_relation(cmd.def_.name)} attached to {name}"
        if sub == _AT.AT_DetachPartition:
            return f"partition {_relation(cmd.def_.name)} detached from {name} is not reattached"
        label = _words(str(getattr(sub, "name", sub)).removeprefix("AT_"))
        target = f"{kind} {name}" if kind != "table" else name
        return f"change to {target} ({label})"

    # Types -----------------------------------------------------------------------------------

    def _created_type(self, names: Any, kind: str = "type") -> None:
        self.created_types.add(_names_key(names))
        self.add(f"{kind} {_dotted(names)}")

    def _CreateEnumStmt(self, stmt: ast.CreateEnumStmt) -> None:
        self._created_type(stmt.typeName)

    def _CreateRangeStmt(self, stmt: ast.CreateRangeStmt) -> None:
        self._created_type(stmt.typeName)

    def _CompositeTypeStmt(self, stmt: ast.CompositeTypeStmt) -> None:
        self.created_types.add(_rel_key(stmt.typevar))
        self.add(f"type {_relation(stmt.typevar)}")

    def _CreateDomainStmt(self, stmt: ast.CreateDomainStmt) -> None:
        self._created_type(stmt.domainname, "domain")

    def _AlterDomainStmt(self, stmt: ast.AlterDomainStmt) -> None:
        if _names_key(stmt.typeName) not in self.created_types:
            self.add(f"change to domain {_dotted(stmt.typeName)}")

    def _AlterEnumStmt(self, stmt: ast.AlterEnumStmt) -> None:
        name = _dotted(stmt.typeName)
        if _names_key(stmt.typeName) in self.created_types:
            return
        if stmt.oldVal is not None:
            self.add(f"enum label {stmt.oldVal!r} of {name} renamed to {stmt.newVal!r}")
        elif stmt.newVal is not None:
            self.add(f"enum label {stmt.newVal!r} of {name}")

    # Routines and other objects --------------------------------------------------------------

    def _CreateFunctionStmt(self, stmt: ast.CreateFunctionStmt) -> None:
        kind = "procedure" if stmt.is_procedure else "function"
        self.add(f"{kind} {_dotted(stmt.funcname)}(...)")

    def _AlterFunctionStmt(self, stmt: ast.AlterFunctionStmt) -> None:
        self.add(f"change to {_kind(stmt.objtype)} {_object(stmt.func)}")

    def _CreateEventTrigStmt(self, stmt: ast.CreateEventTrigStmt) -> None:
        self.add(f"event trigger {stmt.trigname}")

    def _CreateSchemaStmt(self, stmt: ast.CreateSchemaStmt) -> None:
        self.add(f"schema {stmt.schemaname}")

    def _CreateExtensionStmt(self, stmt: ast.CreateExtensionStmt) -> None:
        self.add(f"extension {stmt.extname}")

    def _DefineStmt(self, stmt: ast.DefineStmt) -> None:
        self.add(f"{_kind(stmt.kind)} {_dotted(stmt.defnames)}")

    def _CreateCastStmt(self, stmt: ast.CreateCastStmt) -> None:
        self.add(f"cast ({_object(stmt.sourcetype)} AS {_object(stmt.targettype)})")

    # Renames, drops, comments, grants --------------------------------------------------------

    def _RenameStmt(self, stmt: ast.RenameStmt) -> None:
        kind = _kind(stmt.renameType)
        if stmt.relation is not None:
            if self.on_created_table(stmt.relation):
                if stmt.renameType in (_OT.OBJECT_TABLE, _OT.OBJECT_VIEW, _OT.OBJECT_MATVIEW):
                    self._rename_created(stmt.relation, str(stmt.newname))
                return
            old = _relation(stmt.relation)
            if stmt.subname:
                old = f"{old}.{stmt.subname}"
        else:
            old = _object(stmt.object)
        self.add(f"{kind} {old} renamed to {stmt.newname} by the up")

    def _rename_created(self, rel: Any, newname: str) -> None:
        """A table the up created and then renamed is listed under its new name."""
        schema, _ = _rel_key(rel)
        self.created_tables.add((schema, newname))
        old = _relation(rel)
        new = f"{rel.schemaname}.{newname}" if rel.schemaname else newname
        self.phrases = [
            p[: -len(old)] + new
            if p.endswith(f" {old}") and p.split(" ")[0] in _RELATION_KINDS
            else p
            for p in self.phrases
        ]

    def _AlterObjectSchemaStmt(self, stmt: ast.AlterObjectSchemaStmt) -> None:
        what = _relation(stmt.relation) if stmt.relation is not None else _object(stmt.object)
        self.add(f"{_kind(stmt.objectType)} {what} moved to schema {stmt.newschema}")

    def _DropStmt(self, stmt: ast.DropStmt) -> None:
        kind = _kind(stmt.removeType)
        for obj in stmt.objects or ():
            self.add(f"{kind} {_object(obj)} dropped by the up is not restored")

    def _CommentStmt(self, stmt: ast.CommentStmt) -> None:
        self.add(f"comment on {_kind(stmt.objtype)} {_object(stmt.object)}")

    def _GrantStmt(self, stmt: ast.GrantStmt) -> None:
        done = "granted" if stmt.is_grant else "revoked"
        objects = ", ".join(_object(o) for o in stmt.objects or ()) or "all objects"
        self.add(f"privileges {done} on {_kind(stmt.objtype)} {objects}")

    def _GrantRoleStmt(self, stmt: ast.GrantRoleStmt) -> None:
        self.add("role memberships " + ("granted" if stmt.is_grant else "revoked"))

    # Rows ------------------------------------------------------------------------------------

    def _rows(self, rel: Any, phrase: str) -> None:
        if not self.on_created_table(rel):
            self.add(phrase.format(_relation(rel)))

    def _InsertStmt(self, stmt: ast.InsertStmt) -> None:
        self._rows(stmt.relation, "rows inserted into {}")

    def _UpdateStmt(self, stmt: ast.UpdateStmt) -> None:
        self._rows(stmt.relation, "rows of {} updated by the up are not restored")

    def _DeleteStmt(self, stmt: ast.DeleteStmt) -> None:
        self._rows(stmt.relation, "rows of {} deleted by the up are not restored")

    def _MergeStmt(self, stmt: ast.MergeStmt) -> None:
        self._rows(stmt.relation, "rows of {} merged by the up are not restored")

    def _CopyStmt(self, stmt: ast.CopyStmt) -> None:
        if stmt.is_from and stmt.relation is not None:
            self._rows(stmt.relation, "rows copied into {}")

    def _TruncateStmt(self, stmt: ast.TruncateStmt) -> None:
        for rel in stmt.relations or ():
            self._rows(rel, "rows of {} truncated by the up are not restored")


def _parse(sql: str) -> tuple[Any, ...] | None:
    return parse_statements(sql)  # None: SQL pglast cannot read (cached; never change the nodes)


def left_behind(up_statements: list[str]) -> list[str]:
    """Short phrases naming what ``up_statements`` created or changed, in order, without repeats.

    Ends with ``N DO block(s) not analysed`` and ``N statement(s) not analysed`` when the up has
    DO blocks or statements pglast cannot read.
    """
    reader = _Reader()
    for sql in up_statements:
        if not sql.strip():
            continue
        parsed = _parse(sql)
        if parsed is None:
            reader.unparsed += 1
            continue
        for stmt in parsed:
            try:
                reader.read(stmt)
            except Exception:  # a shape this reader does not expect: counted as not analysed
                reader.unparsed += 1
    phrases = list(reader.phrases)
    if reader.do_blocks:
        phrases.append(f"{reader.do_blocks} DO block(s) not analysed")
    if reader.unparsed:
        phrases.append(f"{reader.unparsed} statement(s) not analysed")
    return phrases


def _listing(phrases: Iterable[str], limit: int = MAX_LISTED) -> str:
    items = list(phrases)
    shown = ", ".join(items[:limit])
    return f"{shown} and {len(items) - limit} more" if len(items) > limit else shown


def left_behind_warning(kind: Literal["missing", "empty"], up_statements: list[str]) -> str:
    """One warning line, ``missing down:`` or ``empty down:``, naming what stays after the step."""
    head = (
        "missing down: no Down section"
        if kind == "missing"
        else "empty down: the Down section has no statements"
    )
    if not any(s.strip() for s in up_statements):
        return f"{head}; the up has no statements either, so nothing stays behind"
    phrases = left_behind(up_statements)
    if not phrases:
        return f"{head}; the up changes nothing that outlives its session"
    return f"{head}; what the up created or changed stays: {_listing(phrases)}"

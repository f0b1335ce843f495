"""Warnings for one down step, read from its SQL with pglast (PostgreSQL's own parser).

Every warning starts with a fixed category prefix so scripts can match on it:
``data loss:``, ``irreversible:``, ``empty down:``, ``missing down:``, ``no transaction:``,
``go:`` and ``unparsed:``. Statements inside DO blocks and function bodies are plain strings to
PostgreSQL's parser and are not analysed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pglast import ast, enums

from migrator.sqlast import parse_statements
from migrator.sqlparser import ParsedSQL

__all__ = ["data_loss_warnings", "dropped_tables", "step_warnings"]

GO_WARNING = "go: Go migration compiled into hatchet-migrate; no SQL to run"
NO_TX_WARNING = (
    "no transaction: runs statement by statement; a failure leaves earlier statements applied"
)
EMPTY_DOWN_WARNING = (
    "empty down: the Down section has no statements; "
    "what the up created, changed or dropped stays as it is"
)
MISSING_DOWN_WARNING = (
    "missing down: no Down section; what the up created, changed or dropped stays as it is"
)

# Object kinds whose DROP destroys rows even without CASCADE.
_ALWAYS_DATA_LOSS = {
    enums.ObjectType.OBJECT_TABLE,
    enums.ObjectType.OBJECT_SCHEMA,
    enums.ObjectType.OBJECT_MATVIEW,
}
_KIND_NAMES = {enums.ObjectType.OBJECT_MATVIEW: "MATERIALIZED VIEW"}


def _kind_name(kind: Any) -> str:
    if kind in _KIND_NAMES:
        return _KIND_NAMES[kind]
    return str(getattr(kind, "name", kind)).removeprefix("OBJECT_").replace("_", " ")


def _dotted(names: Any) -> str:
    return ".".join(str(getattr(n, "sval", n)) for n in names or ())


def _object_name(obj: Any) -> str:
    if isinstance(obj, ast.String):
        return str(obj.sval)
    if isinstance(obj, tuple | list):
        return _dotted(obj)
    if isinstance(obj, ast.TypeName):
        return _dotted(obj.names)
    if isinstance(obj, ast.ObjectWithArgs):
        return _dotted(obj.objname) + "(...)"
    return "?"


def _relation(rel: Any) -> str:
    schema = getattr(rel, "schemaname", None)
    return f"{schema}.{rel.relname}" if schema else str(rel.relname)


def _cascade(behavior: Any) -> str:
    return " CASCADE" if behavior == enums.DropBehavior.DROP_CASCADE else ""


def _data_loss(stmt: Any) -> list[str]:
    out: list[str] = []
    if isinstance(stmt, ast.DropStmt):
        cascade = _cascade(stmt.behavior)
        if stmt.removeType in _ALWAYS_DATA_LOSS or cascade:
            kind = _kind_name(stmt.removeType)
            for obj in stmt.objects or ():
                out.append(f"data loss: DROP {kind} {_object_name(obj)}{cascade}")
    elif isinstance(stmt, ast.AlterTableStmt):
        for cmd in stmt.cmds or ():
            if getattr(cmd, "subtype", None) == enums.AlterTableType.AT_DropColumn:
                column = f"{_relation(stmt.relation)}.{cmd.name}"
                out.append(f"data loss: DROP COLUMN {column}{_cascade(cmd.behavior)}")
    elif isinstance(stmt, ast.TruncateStmt):
        for rel in stmt.relations or ():
            out.append(f"data loss: TRUNCATE {_relation(rel)}{_cascade(stmt.behavior)}")
    elif isinstance(stmt, ast.DeleteStmt):
        out.append(f"data loss: DELETE FROM {_relation(stmt.relation)}")
    return out


def _enum_additions(stmt: Any) -> list[str]:
    if isinstance(stmt, ast.AlterEnumStmt) and stmt.newVal is not None and stmt.oldVal is None:
        return [
            f"irreversible: enum value {stmt.newVal!r} added to {_dotted(stmt.typeName)} "
            "by the up stays"
        ]
    return []


def _parse(sql: str) -> tuple[Any, ...] | None:
    return parse_statements(sql)  # None: SQL pglast cannot read (cached; never change the nodes)


def _scan(statements: list[str], label: str, check: Callable[[Any], list[str]]) -> list[str]:
    out: list[str] = []
    for number, sql in enumerate(statements, start=1):
        parsed = _parse(sql)
        if parsed is None:
            out.append(f"unparsed: pglast could not read {label}statement {number}; not analysed")
            continue
        for stmt in parsed:
            out.extend(check(stmt))
    return out


def dropped_tables(statements: list[str]) -> set[str]:
    """Unqualified names of the tables that top-level ``DROP TABLE`` statements remove."""
    names: set[str] = set()
    for sql in statements:
        for stmt in _parse(sql) or ():
            if isinstance(stmt, ast.DropStmt) and stmt.removeType == enums.ObjectType.OBJECT_TABLE:
                names |= {_object_name(obj).rsplit(".", 1)[-1] for obj in stmt.objects or ()}
    return names


def data_loss_warnings(statements: list[str]) -> list[str]:
    """``data loss:`` warnings for statements a port or patch sends (not parsed by goose)."""
    return list(dict.fromkeys(_scan(statements, "", _data_loss)))


def step_warnings(
    *,
    kind: Literal["sql", "go"],
    down: ParsedSQL | None,
    up: ParsedSQL | None,
) -> list[str]:
    """Warnings for reverting one migration: ``down`` is None for Go migrations.

    ``up`` (when known) is read only for what its down cannot undo (enum values added).
    """
    warnings: list[str] = []
    if kind == "go":
        warnings += [GO_WARNING, NO_TX_WARNING]
    elif down is not None:
        if not down.section_present:
            warnings.append(MISSING_DOWN_WARNING)
        elif not any(s.strip() for s in down.statements):
            warnings.append(EMPTY_DOWN_WARNING)
        if not down.use_transaction and down.statements:
            warnings.append(NO_TX_WARNING)
    if down is not None:
        warnings += _scan(down.statements, "", _data_loss)
    if up is not None:
        warnings += _scan(up.statements, "up ", _enum_additions)
    return list(dict.fromkeys(warnings))

"""Where a NO TRANSACTION step stopped: a small journal in the database, so a re-run goes on.

goose runs each statement of a NO TRANSACTION step on its own, so a run killed part-way leaves
some of them applied while the step's version row stays: goose's re-run would send them again,
and most (``ALTER TABLE ... ADD COLUMN``, ``CREATE INDEX`` without ``IF NOT EXISTS``) fail the
second time. The runner records each applied statement in ``hatchet_schema.journal`` (the one
schema the command-line contract lets the tool keep state in), and a re-run skips what it finds
there.

Exactly-once where PostgreSQL allows it: a statement that may run inside a transaction block is
sent as ``BEGIN; <statement>; INSERT INTO journal ...; COMMIT``, so it and its record commit
together or neither (a SIGKILL at any point leaves either both or neither). A statement that may
not (``CREATE INDEX CONCURRENTLY``, ``DROP INDEX CONCURRENTLY``, ``VACUUM``, ...) is recorded
``started`` before it is sent and ``applied`` after; a re-run that finds it only ``started``
settles it from the catalog (:func:`settle_started`): an index that exists and is valid is
done, an INVALID one left by a cancelled build is dropped and built again, a missing one is
built; a ``DROP INDEX`` whose index is gone is done. Anything else left ``started`` blocks: the
tool cannot know whether it ran.

Entries belong to one step variant (``step_key``: version, action, blob SHA): a re-run with
other options (``--no-patches``) that would send different SQL for a half-applied step is
refused instead of mixing the two. The last step's version-row DELETE clears its entries in the
same transaction, and a run that finishes drops the journal (and the schema, when empty), so a
downgrade leaves no trace of its own.

Statements are keyed by the SHA-256 of their text and their occurrence number within the step,
not by position: a Go port's statements are computed from the catalog, and after a partial run
the recomputed list no longer holds what already ran, while what remains keeps its text.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import psycopg
from psycopg import sql

from migrator.sqlast import parse_statements

__all__ = [
    "JOURNAL_SCHEMA",
    "JOURNAL_TABLE",
    "Entry",
    "Interrupted",
    "read_journal",
]

JOURNAL_SCHEMA = "hatchet_schema"
JOURNAL_TABLE = f"{JOURNAL_SCHEMA}.journal"
State = Literal["started", "applied"]

_CREATE = f"""
CREATE SCHEMA IF NOT EXISTS {JOURNAL_SCHEMA};
CREATE TABLE IF NOT EXISTS {JOURNAL_TABLE} (
    version_id bigint NOT NULL,
    step_key text NOT NULL,
    statement_key text NOT NULL,
    position integer NOT NULL,
    statements integer NOT NULL,
    state text NOT NULL CHECK (state IN ('started', 'applied')),
    excerpt text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (version_id, statement_key)
)"""


@dataclass(frozen=True)
class Entry:
    """One journaled statement of an interrupted NO TRANSACTION step."""

    version: int
    step_key: str
    statement_key: str
    position: int
    statements: int
    state: State
    excerpt: str
    recorded_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "statements": self.statements,
            "state": self.state,
            "excerpt": self.excerpt,
            "step_key": self.step_key,
            "recorded_at": self.recorded_at.isoformat() if self.recorded_at else None,
        }


@dataclass(frozen=True)
class Interrupted:
    """What an interrupted run left: per version, its journaled statements."""

    entries: tuple[Entry, ...]

    def versions(self) -> list[int]:
        return sorted({e.version for e in self.entries}, reverse=True)

    def of(self, version: int) -> list[Entry]:
        return sorted((e for e in self.entries if e.version == version), key=lambda e: e.position)

    def describe(self, version: int) -> str:
        """One line: which statements of the step are applied, which were only started."""
        entries = self.of(version)
        applied = [e.position for e in entries if e.state == "applied"]
        started = [e.position for e in entries if e.state == "started"]
        total = entries[0].statements if entries else 0
        when = max((e.recorded_at for e in entries if e.recorded_at), default=None)
        parts = [
            f"version {version}: statement(s) {ranges(applied) or 'none'} of {total} applied "
            "by a run that was stopped"
        ]
        if started:
            parts.append(f"statement(s) {ranges(started)} started, outcome unknown")
        if when is not None:
            parts.append(f"last at {when.isoformat(timespec='seconds')}")
        return "; ".join(parts)


def ranges(positions: Sequence[int]) -> str:
    out: list[str] = []
    for p in sorted(set(positions)):
        if out and out[-1].split("-")[-1] == str(p - 1):
            out[-1] = f"{out[-1].split('-')[0]}-{p}"
        else:
            out.append(str(p))
    return ", ".join(out)


def step_key(version: int, action: str, blob_sha: str | None) -> str:
    return f"{version}:{action}:{blob_sha or '-'}"


def statement_keys(statements: Sequence[str]) -> list[str]:
    """Each statement's key: SHA-256 of its text and its occurrence number in the step."""
    seen: Counter[str] = Counter()
    keys = []
    for text in statements:
        digest = hashlib.sha256(text.encode()).hexdigest()
        seen[digest] += 1
        keys.append(f"{digest}#{seen[digest]}")
    return keys


def excerpt(statement: str, limit: int = 80) -> str:
    first = next((ln.strip() for ln in statement.splitlines() if ln.strip()), "")
    return first if len(first) <= limit else first[: limit - 3] + "..."


def exists(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute(f"SELECT to_regclass('{JOURNAL_TABLE}') IS NOT NULL").fetchone()
    return bool(row and row[0])


def read_journal(conn: psycopg.Connection[Any]) -> Interrupted:
    """The journal's entries (none when there is no journal); read-only."""
    if not exists(conn):
        return Interrupted(entries=())
    rows = conn.execute(
        f"SELECT version_id, step_key, statement_key, position, statements, state, excerpt, "
        f"recorded_at FROM {JOURNAL_TABLE} ORDER BY version_id DESC, position"
    ).fetchall()
    return Interrupted(entries=tuple(Entry(int(r[0]), *r[1:]) for r in rows))


def create(conn: psycopg.Connection[Any]) -> None:
    """The journal table (and its schema), if missing; autocommit."""
    conn.execute(_CREATE)


def drop_if_empty_sql() -> str:
    """Drop the journal when nothing is left in it, and the schema when nothing else is in it
    (may run inside the transaction of a step's last write, so a finished run leaves nothing)."""
    return (
        f"DO $$ BEGIN IF to_regclass('{JOURNAL_TABLE}') IS NOT NULL AND NOT EXISTS "
        f"(SELECT FROM {JOURNAL_TABLE}) THEN DROP TABLE {JOURNAL_TABLE}; END IF; "
        "IF NOT EXISTS (SELECT FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
        f"ON n.oid = c.relnamespace WHERE n.nspname = '{JOURNAL_SCHEMA}') AND NOT EXISTS "
        "(SELECT FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = "
        f"p.pronamespace WHERE n.nspname = '{JOURNAL_SCHEMA}') AND NOT EXISTS (SELECT FROM "
        "pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace "
        f"WHERE n.nspname = '{JOURNAL_SCHEMA}') THEN DROP SCHEMA IF EXISTS {JOURNAL_SCHEMA}; "
        "END IF; END $$"
    )


def drop_if_empty(conn: psycopg.Connection[Any]) -> None:
    """:func:`drop_if_empty_sql`, on its own (autocommit)."""
    conn.execute(drop_if_empty_sql())


def record_sql(
    version: int, key: str, statement_key: str, position: int, total: int, text: str, state: State
) -> sql.Composed:
    """The INSERT (or update to ``applied``) of one statement's entry, as literal SQL: it is sent
    in one simple-protocol round trip with the statement itself."""
    return sql.SQL(
        "INSERT INTO {table} (version_id, step_key, statement_key, position, statements, "
        "state, excerpt) VALUES ({v}, {k}, {sk}, {p}, {n}, {s}, {e}) "
        "ON CONFLICT (version_id, statement_key) DO UPDATE SET state = EXCLUDED.state, "
        "recorded_at = clock_timestamp()"
    ).format(
        table=sql.SQL(JOURNAL_TABLE),
        v=sql.Literal(int(version)),
        k=sql.Literal(key),
        sk=sql.Literal(statement_key),
        p=sql.Literal(position),
        n=sql.Literal(total),
        s=sql.Literal(state),
        e=sql.Literal(excerpt(text)),
    )


def forget_sql(version: int, statement_key: str) -> sql.Composed:
    """Remove one statement's entry (it failed, and PostgreSQL undid it)."""
    return sql.SQL("DELETE FROM {} WHERE version_id = {} AND statement_key = {}").format(
        sql.SQL(JOURNAL_TABLE), sql.Literal(int(version)), sql.Literal(statement_key)
    )


def clear_sql(version: int) -> str:
    return f"DELETE FROM {JOURNAL_TABLE} WHERE version_id = {int(version)}"


# -- which statements may share a transaction with their record ---------------------------------

_NOT_IN_TRANSACTION = {
    "VacuumStmt",
    "CreatedbStmt",
    "DropdbStmt",
    "AlterSystemStmt",
    "CreateTableSpaceStmt",
    "DropTableSpaceStmt",
    "TransactionStmt",
    "CreateSubscriptionStmt",
    "DropSubscriptionStmt",
    "AlterSubscriptionStmt",
    "CallStmt",  # a procedure may COMMIT
}


_ENDS_TRANSACTION = re.compile(r"\b(?:COMMIT|ROLLBACK)\b", re.IGNORECASE)


def _concurrent(node: Any) -> bool:
    name = type(node).__name__
    if name in ("IndexStmt", "DropStmt"):
        return bool(getattr(node, "concurrent", False))
    if name == "ReindexStmt":
        params = getattr(node, "params", None) or ()
        return any(getattr(p, "defname", "") == "concurrently" for p in params)
    return False


def _commits(node: Any) -> bool:
    """A DO block whose body ends transactions itself cannot run inside one."""
    if type(node).__name__ != "DoStmt":
        return False
    for arg in getattr(node, "args", None) or ():
        body = getattr(getattr(arg, "arg", None), "sval", "") or ""
        if _ENDS_TRANSACTION.search(body):
            return True
    return False


def transactional(statement: str) -> bool:
    """Whether ``statement`` may run inside a transaction block together with its record."""
    nodes = parse_statements(statement)
    if not nodes:
        return False  # unreadable (or empty): recorded around it, never inside
    for node in nodes:
        if type(node).__name__ in _NOT_IN_TRANSACTION or _concurrent(node) or _commits(node):
            return False
    return True


# -- a statement left "started" ------------------------------------------------------------------

Settle = Literal["done", "run", "rebuild", "unknown"]


@dataclass(frozen=True)
class Settlement:
    """What to do with a statement an interrupted run started but did not record as applied."""

    action: Settle
    why: str
    drop_first: str | None = None
    """For ``rebuild``: the statement that removes the INVALID index first."""


def _quoted(*parts: str | None) -> str:
    return ".".join('"' + p.replace('"', '""') + '"' for p in parts if p)


def _index_state(conn: psycopg.Connection[Any], name: str) -> bool | None:
    """True valid, False INVALID, None missing."""
    row = conn.execute(
        "SELECT i.indisvalid FROM pg_catalog.pg_index i WHERE i.indexrelid = to_regclass(%s)",
        (name,),
    ).fetchone()
    return None if row is None else bool(row[0])


def settle_started(conn: psycopg.Connection[Any], statement: str) -> Settlement:
    """Decide, from the catalog, whether a started statement ran (see the module docstring)."""
    nodes = parse_statements(statement)
    node: Any = nodes[0] if nodes and len(nodes) == 1 else None
    kind = type(node).__name__ if node is not None else ""
    if kind == "IndexStmt" and node.idxname:
        schema = getattr(node.relation, "schemaname", None)
        name = _quoted(schema, node.idxname)
        state = _index_state(conn, name)
        if state is True:
            return Settlement("done", f"index {name} exists and is valid")
        if state is False:
            return Settlement(
                "rebuild",
                f"index {name} is INVALID (its build was cut off): dropped and built again",
                drop_first=f"DROP INDEX CONCURRENTLY IF EXISTS {name}",
            )
        return Settlement("run", f"index {name} does not exist: built")
    if kind == "DropStmt" and getattr(node.removeType, "name", "") == "OBJECT_INDEX":
        names = [_quoted(*(p.sval for p in obj)) for obj in node.objects]
        present = [n for n in names if _index_state(conn, n) is not None]
        if not present:
            return Settlement("done", f"index {', '.join(names)} is gone")
        return Settlement("run", f"index {', '.join(present)} still exists: dropped")
    if kind in ("VacuumStmt", "ReindexStmt"):
        return Settlement("run", "safe to run again")
    return Settlement(
        "unknown",
        "the tool cannot tell from the catalog whether it ran: check by hand, then mark it "
        f"applied (UPDATE {JOURNAL_TABLE} SET state = 'applied' WHERE ...) or delete the entry "
        "to run it again",
    )

"""goose's version table ``goose_db_version``: reading it and goose's current-version rule.

The table is read, never created: a database without it is not one goose manages, and creating
it (as goose's ``EnsureDBVersion`` would) would make an unrelated database look migrated.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from migrator.errors import BadInputError, MigratorError

VERSION_TABLE = "goose_db_version"


@dataclass(frozen=True)
class VersionRow:
    """One row of ``goose_db_version``."""

    id: int
    version_id: int
    is_applied: bool
    tstamp: datetime | None


def read_version_rows(conn: psycopg.Connection[Any]) -> list[VersionRow]:
    """Every row of ``goose_db_version`` in ``current_schema()``, ordered by ``id``.

    Works for the IDENTITY table of goose >= v3.16 and the older ``serial`` one (same columns).
    Raises :class:`BadInputError` when the table does not exist.
    """
    try:
        found = conn.execute(
            """
            SELECT current_schema(), EXISTS (
                SELECT 1 FROM pg_catalog.pg_tables
                WHERE schemaname = current_schema() AND tablename = %s
            )
            """,
            (VERSION_TABLE,),
        ).fetchone()
        schema, exists = found if found else (None, False)
        if not exists or schema is None:
            raise BadInputError(
                f"no {VERSION_TABLE} table in schema {schema or '(none)'} of database "
                f"{conn.info.dbname}: this is not a goose-managed (Hatchet) database; "
                "check the database URL and its search_path"
            )
        rows = conn.execute(
            sql.SQL("SELECT id, version_id, is_applied, tstamp FROM {}.{} ORDER BY id").format(
                sql.Identifier(schema), sql.Identifier(VERSION_TABLE)
            )
        ).fetchall()
    except psycopg.Error as exc:
        raise MigratorError(f"cannot read {VERSION_TABLE}: {exc}") from None
    return [
        VersionRow(id=int(i), version_id=int(v), is_applied=bool(a), tstamp=t)
        for i, v, a, t in rows
    ]


def _latest_state(rows: Sequence[VersionRow]) -> list[tuple[int, VersionRow]]:
    """For each version, its newest row (highest id), newest first: goose's view of the table."""
    seen: set[int] = set()
    latest: list[tuple[int, VersionRow]] = []
    for row in sorted(rows, key=lambda r: r.id, reverse=True):
        if row.version_id in seen:
            continue
        seen.add(row.version_id)
        latest.append((row.version_id, row))
    return latest


def current_version(rows: Sequence[VersionRow]) -> int:
    """goose's current version: walking rows newest id first, the first applied row's version.

    A version whose newest row is ``is_applied = false`` is skipped entirely, so the result is the
    most recently applied migration, not ``max(version_id)``. 0 when nothing is applied.
    """
    newest_first = sorted(rows, key=lambda r: r.id, reverse=True)
    return current_version_newest_first((r.version_id, r.is_applied) for r in newest_first)


def current_version_newest_first(rows: Iterable[tuple[int, bool]]) -> int:
    """:func:`current_version` over ``(version_id, is_applied)`` pairs already ordered by ``id``
    descending, as goose's own loop reads them: a version seen not applied is skipped, the
    first applied row that is not skipped is current. Usually stops at the first row."""
    skipped: set[int] = set()
    for version, is_applied in rows:
        if is_applied:
            if version not in skipped:
                return int(version)
        else:
            skipped.add(version)
    return 0


def applied_versions(rows: Sequence[VersionRow]) -> list[int]:
    """Versions (except the baseline 0) whose newest row is applied, oldest application first."""
    applied = [v for v, row in _latest_state(rows) if row.is_applied and v != 0]
    applied.reverse()
    return applied

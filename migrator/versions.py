"""goose's version table ``goose_db_version``: reading it and goose's current-version rule.

The table is read, never created: a database without it is not one goose manages, and creating
it (as goose's ``EnsureDBVersion`` would) would make an unrelated database look migrated.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql

from migrator.errors import BadInputError, MigratorError

VERSION_TABLE = "goose_db_version"
BIGINT_MAX = 2**63 - 1  # version_id is a bigint: goose's versions are Go int64s


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
    Raises :class:`BadInputError` when the table does not exist, lacks goose's columns, or holds a
    row goose never writes (a NULL, a version that is not an integer or beyond bigint).
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
    except psycopg.errors.UndefinedColumn as exc:
        raise BadInputError(
            f"{VERSION_TABLE} in schema {schema} is not goose's version table: it lacks goose's "
            f"columns id, version_id, is_applied, tstamp ({str(exc).strip().splitlines()[0]}); "
            "check the database URL and its search_path"
        ) from None
    except psycopg.Error as exc:
        raise MigratorError(f"cannot read {VERSION_TABLE}: {exc}") from None
    return _checked_rows(rows, schema)


def _checked_rows(rows: Sequence[tuple[Any, ...]], schema: str) -> list[VersionRow]:
    """``rows`` as VersionRows; BadInputError naming the rows goose could not have written (a
    NULL, a version that is not an integer or does not fit a bigint)."""
    found: list[VersionRow] = []
    problems: list[str] = []
    for i, v, a, t in rows:
        row_id, version = _integer(i), _integer(v)
        if row_id is None:
            problems.append(f"a row with id {_shown(i)}")
        elif version is None:
            problems.append(f"row id {row_id}: version_id {_shown(v)} is not a version number")
        elif not -BIGINT_MAX - 1 <= version <= BIGINT_MAX:
            problems.append(f"row id {row_id}: version_id {version} is beyond PostgreSQL's bigint")
        elif not isinstance(a, bool):
            problems.append(f"row id {row_id}: is_applied is {_shown(a)}, not true or false")
        else:
            tstamp = t if isinstance(t, datetime) else None
            found.append(VersionRow(id=row_id, version_id=version, is_applied=a, tstamp=tstamp))
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise BadInputError(
            f"{VERSION_TABLE} in schema {schema} holds rows goose does not write: "
            + "; ".join(problems[:3])
            + f"{more}: fix or delete those rows first"
        )
    return found


def _shown(value: object) -> str:
    return "NULL" if value is None else repr(value)


def _integer(value: object) -> int | None:
    """``value`` as an int when it is one (from any integer or integral numeric column)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    return None


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

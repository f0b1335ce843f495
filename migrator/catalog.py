"""Read-only catalog queries over a live connection, for the planner's per-step lookups."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from migrator.errors import MigratorError


class ConnectionCatalog:
    """A :class:`~migrator.profile.Catalog` over an open psycopg connection.

    Each query runs on its own; a failing query is an operation failure (exit 1) naming it,
    never a traceback.
    """

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            with self._conn.cursor() as cur:
                cur.execute(sql, tuple(params))
                return list(cur.fetchall()) if cur.description else []
        except psycopg.Error as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise MigratorError(f"a catalog query for the plan failed: {first}") from None

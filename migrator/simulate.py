"""A database that is not there: goose's version table at a release, for plans made without one.

``downgrade --from-release R --dry-run`` plans from the rows goose's Up leaves when it migrates an
empty database through R's migration files: the baseline ``(0, true)`` row, then one applied row
per file in ascending version order. The planner runs on those rows exactly as on a real table.

What the planner would otherwise read from the database at plan time (partition lists for Go
ports, whether a column exists for a patch, how many rows a down would remove or fail on) is
answered by :class:`SimulatedCatalog` as an empty database answers: no rows. The plan says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from migrator.profile import EmptyCatalog
from migrator.versions import VersionRow

CATALOG_NOTE = (
    "statements computed from a database at plan time (partition lists, column checks) are "
    "shown as for an empty database"
)
DATA_LOSS_NOTE = (
    "data-loss counts are unknown without a database: rows a down removes or fails on are not "
    "counted; dry-run against the real database before running anything"
)


def simulated_rows(versions: Iterable[int]) -> list[VersionRow]:
    """``goose_db_version`` as ``goose up`` from an empty database through ``versions`` leaves
    it: the baseline row, then each version once, ascending, applied."""
    ordered = sorted({int(v) for v in versions if int(v) != 0})
    return [VersionRow(i, v, True, None) for i, v in enumerate([0, *ordered], start=1)]


class SimulatedCatalog(EmptyCatalog):
    """An empty database's answers (no rows), counting the questions the plan asked of it."""

    def __init__(self) -> None:
        self.queries = 0

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self.queries += 1
        return []

"""Rows that Hatchet's downs cannot carry back and the generic checks do not find, per version.

Each entry returns :class:`~migrator.profile.DataFix` values; the planner counts their rows at
plan time and, where there are any, runs the fix inside the step as announced data loss.
"""

from __future__ import annotations

from migrator.profile import Catalog, DataFix, DataFixFinder

_PAUSE_SETTINGS = (
    '"pausedWorkflowCronRunQueueBehavior"',
    '"pausedWorkflowScheduledRunQueueBehavior"',
    '"pausedWorkflowQueueTTL"',
)


def _paused_workflows(_catalog: Catalog) -> list[DataFix]:
    """v1_0_146 (v0.103.0) made pausing a workflow real: a paused ``Workflow`` row carries its
    queue settings, and a CHECK ties them to ``"isPaused"``. Its down drops the settings and
    keeps ``"isPaused" = TRUE``, a state v1_0_146's up rejects (so the database could never be
    upgraded again), and one the older release does not act on: its engine never reads
    ``Workflow."isPaused"`` (only its dashboard shows it). So such workflows are unpaused, as
    the newer release's own unpause does (settings cleared in the same UPDATE, which keeps the
    CHECK satisfied until the down drops it)."""
    cleared = ", ".join(f"{column} = NULL" for column in _PAUSE_SETTINGS)
    return [
        DataFix(
            table='"Workflow"',
            condition='"isPaused"',
            reason="the older release cannot pause workflows and v1_0_146's up rejects a "
            "paused workflow without the pause settings this down drops; they are unpaused",
            statement=f'UPDATE "Workflow" SET "isPaused" = FALSE, {cleared} WHERE "isPaused"',
            count_sql='SELECT count(*) FROM "Workflow" WHERE "isPaused"',
        )
    ]


DATA_FIXES: dict[int, DataFixFinder] = {
    20260819154845: _paused_workflows,  # _v1_0_146.sql (_v1_0_145.sql in v0.103.0)
}

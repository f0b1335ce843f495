"""Rows that Hatchet's downs cannot carry back and the generic checks do not find, per version.

Each entry returns :class:`~migrator.profile.DataFix` values; the planner counts their rows at
plan time and, where there are any, runs the fix inside the step as announced data loss.
"""

from __future__ import annotations

from migrator.profile import DataFixFinder

DATA_FIXES: dict[int, DataFixFinder] = {}

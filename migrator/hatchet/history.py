"""Hatchet's release history as data: renamed and deleted versions, rewritten ids, the floor.

Read off hatchet-dev/hatchet's tags (see shared/HATCHET.md). A database that ran one of the
releases in ``RENAMED`` holds a row no newer release has a file for; its down comes from the
release that shipped it.
"""

from __future__ import annotations

from migrator.profile import Renamed

FLOOR_RELEASE = "v0.55.0"
"""The first release with goose migrations (earlier ones used Atlas and Prisma)."""
FLOOR_VERSION = 20250224171706
"""v0.55.0's newest migration, ``20250224171706_v1_0_0.sql``; no older file has a Down."""

RENAMED: dict[int, Renamed] = {
    r.version: r
    for r in (
        Renamed(20251218153622, "20251218153622_v1_0_63.go", ("v0.73.107",), 20251226153622),
        Renamed(20251218123817, "20251218123817_v1_0_62.sql", ("v0.77.0",), 20260119123835),
        # Deleted upstream, but its only statement (adding "LeaseKind" label
        # TABLE_PARTITION_MAINTENANCE) lives on in 20260529140000_v1_0_115.sql (IF NOT EXISTS):
        # the same migration as far as the schema goes, so it is reverted once, as a twin.
        Renamed(20260529120000, "20260529120000_v1_0_114.sql", ("v0.87.8",), 20260529140000),
        Renamed(
            20260718000000,
            "20260718000000_batching_consolidated_v1_0_132.sql",
            ("v0.98.1", "v0.98.0"),
            20260722000000,
        ),
        Renamed(
            20260718000001,
            "20260718000001_v1_0_126_batch_id_idx_concurrent_v1_0_133.sql",
            ("v0.98.1", "v0.98.0"),
            20260722000001,
        ),
        Renamed(20260817163000, "20260817163000_v1_0_141.sql", ("v0.102.0",), 20260818184000),
    )
}

REWRITTEN_IDS: dict[int, int] = {
    # Newer hatchet-migrate rewrites these bad ids before running; the row may still carry them.
    202609101223115: 20260910122311,
    20261031153238: 20261002182802,
}

"""Hatchet's profile: everything the generic planner needs to know about hatchet-dev/hatchet.

One file per concern: ``go_ports.py`` (Python ports of the Go downs), ``patches.py`` (corrected
downs for the ones broken upstream), ``data_fixes.py`` (rows a down cannot carry back),
``history.py`` (renamed versions, rewritten ids, the oldest reachable release).
"""

from __future__ import annotations

from migrator.hatchet.data_fixes import DATA_FIXES
from migrator.hatchet.go_ports import PATCHED_PORTS, PORTS
from migrator.hatchet.history import FLOOR_RELEASE, FLOOR_VERSION, RENAMED, REWRITTEN_IDS
from migrator.hatchet.olap_reshape import OLAP_PATCHES
from migrator.hatchet.patches import PATCHES
from migrator.profile import Patch, Profile


def _merged(*groups: dict[int, list[Patch]]) -> dict[int, list[Patch]]:
    out: dict[int, list[Patch]] = {}
    for group in groups:
        for version, patches in group.items():
            out.setdefault(version, []).extend(patches)
    return out


PROFILE = Profile(
    name="hatchet",
    ports=PORTS,
    patches=_merged(PATCHES, PATCHED_PORTS, OLAP_PATCHES),
    data_fixes=DATA_FIXES,
    renamed=RENAMED,
    rewritten_ids=REWRITTEN_IDS,
    floor_release=FLOOR_RELEASE,
    floor_version=FLOOR_VERSION,
)

"""Release tag names: which tags are Hatchet releases, which are pre-releases, which are junk.

A release is a tag spelled ``vX.Y.Z``. A pre-release is ``vX.Y.Z`` followed by ``-`` or ``.`` and a
suffix (``-alpha.N``, ``-beta.N``, ``-rc.N``, ``-migration.N``, ``-patch.N``, ``-debug.N``,
``.pre.alpha``...). Everything else (SDK tags such as ``py/...``, ``v.jun-27-demo.3``, ``0.19.2``)
is junk and ignored.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

_STABLE = re.compile(r"v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)")
_PRERELEASE = re.compile(
    r"v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)[-.]([0-9A-Za-z][0-9A-Za-z.-]*)"
)
_TRAILING_NUMBER = re.compile(r"(\d+)$")


@dataclass(frozen=True)
class TagName:
    """A tag name that names a Hatchet release or pre-release, with its sortable version."""

    tag: str
    version: Version
    prerelease: bool


def parse_tag(tag: str) -> TagName | None:
    """Classify ``tag``; ``None`` for junk.

    Pre-release suffixes that packaging can spell (alpha, beta, rc) keep their meaning; the others
    (``-migration.3``, ``-patch.0``, ``.pre.alpha``) become a ``.devN`` of the base release so they
    still sort below it and next to each other.
    """
    stable = _STABLE.fullmatch(tag)
    if stable:
        return TagName(tag, Version(tag[1:]), prerelease=False)
    pre = _PRERELEASE.fullmatch(tag)
    if pre is None:
        return None
    base = ".".join(pre.group(1, 2, 3))
    try:
        version = Version(tag[1:])
    except InvalidVersion:
        number = _TRAILING_NUMBER.search(pre.group(4))
        version = Version(f"{base}.dev{number.group(1) if number else 0}")
    if not version.is_prerelease:
        # e.g. "v1.2.3.4" or "v1.2.3-post.1": not a plain release and not one we can order safely.
        version = Version(f"{base}.dev0")
    return TagName(tag, version, prerelease=True)


def sort_key(name: TagName) -> tuple[Version, str]:
    """Semver order, ties (two spellings of one pre-release) broken by the tag text."""
    return (name.version, name.tag)


def nearest_stable(wanted: str, stable: list[TagName], count: int = 2) -> list[str]:
    """Up to ``count`` stable tags either side of ``wanted`` (in ascending order).

    ``wanted`` that does not parse is placed by its leading ``vX.Y.Z`` if it has one, else the
    newest releases are returned.
    """
    ordered = sorted(stable, key=sort_key)
    if not ordered:
        return []
    head = re.match(r"v?(\d+)\.(\d+)\.(\d+)", wanted)
    if head is None:
        return [t.tag for t in ordered[-count:]]
    target = Version(".".join(head.group(1, 2, 3)))
    versions = [t.version for t in ordered]
    index = bisect.bisect_left(versions, target)
    return [t.tag for t in ordered[max(0, index - count) : index + count]]

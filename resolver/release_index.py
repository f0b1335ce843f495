"""Hatchet's release index: every stable release's commit, migrations tree id, target version,
file count and commit date, shipped as package data (``resolver/data/hatchet_releases.json``).

Listing Hatchet's 900-odd stable releases costs one API request each (two with the date), far
more than the 60 an hour GitHub allows without a token. The index answers for the releases it
knows, and is never taken on its own word: an entry counts only when the live tag list names the
same object for the tag (the commit, or the annotated tag object, whose ids fix the commit). A
tag that moved is listed afresh, a tag that no longer exists is dropped, and tags newer than the
index are listed from the source. The tree ids make every entry checkable against a clone.

It is written by ``scripts/hatchet_release_index.py CLONE`` from a clone of hatchet-dev/hatchet
and used only for that repository and its default migrations path.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from resolver.gitblob import is_sha
from resolver.models import utc_timestamp
from resolver.refs import TagRef
from resolver.settings import DEFAULT_MIGRATIONS_PATH, DEFAULT_REPO
from resolver.tags import parse_tag

FORMAT = 1
RESOURCE = "data/hatchet_releases.json"


@dataclass(frozen=True)
class IndexEntry:
    """One stable release as the index records it."""

    release: str
    commit: str
    tree: str | None
    """The migrations directory's tree id at ``commit``; ``None``: no directory there."""
    version: int | None
    """The largest version among the directory's migration files (``None``: none)."""
    files: int
    date: str
    """The commit's committer date, ISO 8601 UTC."""
    tag_object: str | None = None
    """The annotated tag object the tag names, if it is one (else the tag names ``commit``)."""

    @property
    def ref_sha(self) -> str:
        """What the tag list must name for this entry to hold."""
        return self.tag_object or self.commit

    def to_json(self) -> list[Any]:
        row: list[Any] = [self.release, self.commit, self.tree, self.version, self.files]
        row.append(self.date)
        if self.tag_object:
            row.append(self.tag_object)
        return row

    @staticmethod
    def from_json(row: Any) -> IndexEntry:
        if not isinstance(row, list) or len(row) not in (6, 7):
            raise ValueError(f"not an index row: {row!r}")
        release, commit, tree, version, files, date, *rest = row
        tag_object = rest[0] if rest else None
        name = parse_tag(release) if isinstance(release, str) else None
        if name is None or name.prerelease:
            raise ValueError(f"not a stable release tag: {release!r}")
        shas_ok = isinstance(commit, str) and is_sha(commit)
        shas_ok = shas_ok and (tree is None or (isinstance(tree, str) and is_sha(tree)))
        shas_ok = shas_ok and (tag_object is None or (isinstance(tag_object, str)))
        shas_ok = shas_ok and (tag_object is None or is_sha(tag_object))
        if not shas_ok:
            raise ValueError(f"bad object id in the row of {release}")
        if not (isinstance(files, int) and files >= 0):
            raise ValueError(f"bad file count in the row of {release}")
        if version is not None and not (isinstance(version, int) and version > 0):
            raise ValueError(f"bad version in the row of {release}")
        if (version is None) != (files == 0) or (tree is None and files):
            raise ValueError(f"version, file count and tree disagree in the row of {release}")
        if not isinstance(date, str) or utc_timestamp(date) != date:
            raise ValueError(f"bad date in the row of {release}: {date!r}")
        return IndexEntry(release, commit, tree, version, files, date, tag_object)


@dataclass(frozen=True)
class ReleaseIndex:
    """The index of one repository's migrations directory, by release tag."""

    repo: str
    path: str
    entries: Mapping[str, IndexEntry]

    @staticmethod
    def of(repo: str, path: str, entries: Iterable[IndexEntry]) -> ReleaseIndex:
        return ReleaseIndex(repo, path.strip("/"), {e.release: e for e in entries})

    def dumps(self) -> str:
        """The file's text: newest release first by date, one release per line."""
        rows = sorted(self.entries.values(), key=_date_order, reverse=True)
        body = ",\n".join(json.dumps(e.to_json(), separators=(",", ":")) for e in rows)
        head = json.dumps({"format": FORMAT, "repo": self.repo, "path": self.path})
        return f'{head[:-1]}, "releases": [\n{body}\n]}}\n'

    @staticmethod
    def loads(text: str) -> ReleaseIndex:
        """Parse an index file; :class:`ValueError` naming what is wrong."""
        document = json.loads(text)
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise ValueError(f"not a release index of format {FORMAT}")
        repo, path, rows = document.get("repo"), document.get("path"), document.get("releases")
        if not (isinstance(repo, str) and isinstance(path, str) and isinstance(rows, list)):
            raise ValueError("a release index needs repo, path and releases")
        entries = [IndexEntry.from_json(row) for row in rows]
        index = ReleaseIndex.of(repo, path, entries)
        if len(index.entries) != len(entries):
            raise ValueError("a release is listed twice in the index")
        return index

    def check(self, tags: Sequence[TagRef]) -> IndexCheck:
        """Which entries the live tag list (``v*`` tags, as the source gives them) confirms."""
        live = {t.name: t for t in tags if (n := parse_tag(t.name)) and not n.prerelease}
        confirmed: dict[str, IndexEntry] = {}
        moved: list[str] = []
        for name, tag in live.items():
            entry = self.entries.get(name)
            if entry is None:
                continue
            if tag.sha == entry.ref_sha:
                confirmed[name] = entry
            else:
                moved.append(name)
        return IndexCheck(
            confirmed=confirmed,
            moved=tuple(sorted(moved)),
            gone=tuple(sorted(set(self.entries) - set(live))),
            new=tuple(sorted(set(live) - set(self.entries))),
        )


@dataclass(frozen=True)
class IndexCheck:
    """The index against the live tag list."""

    confirmed: Mapping[str, IndexEntry]
    """Entries whose tag names the same object as the index says."""
    moved: tuple[str, ...]
    """Tags that now name another commit: listed afresh."""
    gone: tuple[str, ...]
    """Tags in the index that no longer exist: dropped."""
    new: tuple[str, ...]
    """Stable tags the index does not know (newer than it): listed from the source."""


def _date_order(entry: IndexEntry) -> tuple[str, Any]:
    name = parse_tag(entry.release)
    assert name is not None
    return (entry.date, name.version)


def packaged_index(repo: str, migrations_path: str) -> ReleaseIndex | None:
    """The index shipped with the tool, for hatchet-dev/hatchet's default migrations path only
    (``None`` for any other repository or path, or when the file is missing or damaged: then
    every release is listed from the source)."""
    if repo.lower() != DEFAULT_REPO or migrations_path.strip("/") != DEFAULT_MIGRATIONS_PATH:
        return None
    try:
        text = resources.files("resolver").joinpath(RESOURCE).read_text(encoding="utf-8")
        index = ReleaseIndex.loads(text)
    except (OSError, ValueError):
        return None
    if index.repo.lower() != repo.lower() or index.path != migrations_path.strip("/"):
        return None
    return index

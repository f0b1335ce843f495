"""Values the resolver hands out: releases, migration files on GitHub, listings, resolutions."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Literal

from packaging.version import Version

FileKind = Literal["sql", "go"]
# strconv.ParseInt(prefix, 10, 64) accepts a sign and ASCII digits only (no Unicode digits).
_GO_INT = re.compile(r"[+-]?[0-9]+")


def utc_timestamp(moment: datetime | str) -> str:
    """``moment`` as an ISO 8601 UTC timestamp to the second (``2025-08-13T18:33:55Z``): the one
    spelling of a commit date whatever the source (git keeps the committer's zone, GitHub UTC);
    :class:`ValueError` for a text that is not such a date or a moment without a zone."""
    when = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    if when.tzinfo is None:
        raise ValueError(f"{moment!r} has no time zone")
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Release:
    """A tag naming a Hatchet release (or pre-release) and, when known, its commit."""

    tag: str
    version: Version
    prerelease: bool
    commit: str | None


@dataclass(frozen=True)
class RemoteFile:
    """One migration file in the migrations directory at some commit."""

    name: str
    version: int
    kind: FileKind
    sha: str
    size: int


def migration_name(name: str) -> tuple[int, FileKind] | None:
    """Version and kind if goose would load ``name`` as a migration, else ``None``.

    Goose's rules: a top-level ``*.sql`` or ``*.go`` (not ``*_test.go``), the version is the
    integer before the first ``_`` (optional sign, int64) and at least 1. (A ``.sql`` without one
    is an error for goose; the migrator reports that when it loads a directory, the listing just
    leaves such a file out.) ``migrator.sources`` applies the same rule on its side of the
    package boundary; ``tests/test_migration_names.py`` holds the two to each other.
    """
    if "/" in name:
        return None
    if name.endswith(".sql"):
        kind: FileKind = "sql"
    elif name.endswith(".go") and not name.endswith("_test.go"):
        kind = "go"
    else:
        return None
    prefix, sep, _ = name.partition("_")
    if not sep or not _GO_INT.fullmatch(prefix):
        return None
    version = int(prefix)
    if not 1 <= version < 2**63:
        return None
    return version, kind


@dataclass(frozen=True)
class Listing:
    """The migration files in the migrations directory at ``commit`` (``ref`` as asked for)."""

    ref: str
    commit: str
    files: tuple[RemoteFile, ...]
    _by_name: dict[str, RemoteFile] = field(
        init=False, repr=False, compare=False, hash=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        self._by_name.update({f.name: f for f in self.files})

    @cached_property
    def versions(self) -> frozenset[int]:
        return frozenset(f.version for f in self.files)

    def file(self, name: str) -> RemoteFile | None:
        return self._by_name.get(name)

    @property
    def newest(self) -> RemoteFile | None:
        """The file with the largest version (``.sql`` and ``.go`` alike)."""
        return max(self.files, key=lambda f: (f.version, f.name), default=None)


@dataclass(frozen=True)
class Resolution:
    """What ``resolve RELEASE`` reports."""

    release: str
    version: int
    file: str
    commit: str
    migrations: int
    listing: Listing = field(repr=False)

    def to_json(self) -> dict[str, object]:
        """Exactly the object of the contract's ``resolve --json``."""
        return {
            "release": self.release,
            "version": self.version,
            "file": self.file,
            "commit": self.commit,
            "migrations": self.migrations,
        }


@dataclass(frozen=True)
class VersionPlace:
    """Where a goose version sits among stable releases (newest release first in each tuple)."""

    version: int
    releases: tuple[str, ...]
    """Releases whose last migration is exactly ``version``."""
    after: str | None
    """When no release ends at ``version``: the newest release ending below it."""
    before: str | None
    """When no release ends at ``version``: the oldest release ending above it."""
    shipped_in: tuple[str, ...]
    """Releases near ``version`` whose migration files include it."""
    unchecked: tuple[str, ...] = ()
    """Releases whose last migration was not looked at (the request budget ran out)."""

    def describe(self) -> str:
        return self._where() + (
            f" ({len(self.unchecked)} release(s) not checked: {_few(self.unchecked)})"
            if self.unchecked
            else ""
        )

    def _where(self) -> str:
        if self.releases:
            return ", ".join(self.releases)
        if self.after and self.before:
            return f"between {self.after} and {self.before}"
        if self.after:
            return f"newer than {self.after} (the newest release)"
        if self.before:
            return f"older than {self.before}"
        return "no release"

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "releases": list(self.releases),
            "after": self.after,
            "before": self.before,
            "shipped_in": list(self.shipped_in),
        }
        if self.unchecked:
            out["unchecked"] = list(self.unchecked)
        return out


def _few(tags: tuple[str, ...], shown: int = 3) -> str:
    return ", ".join(tags[:shown]) + (", ..." if len(tags) > shown else "")


RecordSource = Literal["index", "listed", "unlisted"]


@dataclass(frozen=True)
class ReleaseRecord:
    """One stable release in ``releases --versions``: its date, target version and file count."""

    release: str
    commit: str | None
    date: str | None
    """The commit's committer date, ISO 8601 UTC; ``None`` when the source gives no dates."""
    version: int | None
    """The target version; ``None`` when the release has no migration files (or unlisted)."""
    files: int | None
    """Migration files in the directory (0: no directory); ``None`` when unlisted."""
    source: RecordSource
    """``index``: the packaged release index, confirmed by the live tag list; ``listed``: read
    from the source; ``unlisted``: not read (the request budget, or the cache offline)."""

    def to_json(self) -> dict[str, object]:
        return {
            "release": self.release,
            "version": self.version,
            "date": self.date,
            "commit": self.commit,
            "files": self.files,
            "source": self.source,
        }


@dataclass(frozen=True)
class ReleaseHistory:
    """Every stable release, newest first by date (releases without a date first, newest first
    in semver order): what an operator picks a target from."""

    records: tuple[ReleaseRecord, ...]
    indexed: int
    """Releases answered by the packaged index (0: no index, or it did not match)."""
    moved: tuple[str, ...] = ()
    """Tags the index knows that now name another commit (listed afresh)."""
    gone: tuple[str, ...] = ()
    """Tags the index knows that no longer exist (dropped)."""

    @property
    def unlisted(self) -> tuple[str, ...]:
        return tuple(r.release for r in self.records if r.source == "unlisted")

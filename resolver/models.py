"""Values the resolver hands out: releases, migration files on GitHub, listings, resolutions."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from packaging.version import Version

FileKind = Literal["sql", "go"]
_PREFIX = re.compile(r"(\d+)_")


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

    Goose's rules: ``*.sql`` or ``*.go`` (not ``*_test.go``), the integer before the first ``_``,
    at least 1. (A ``.sql`` without one is an error for goose; the migrator reports that when it
    loads a directory, the listing just leaves such a file out.)
    """
    if name.endswith(".sql"):
        kind: FileKind = "sql"
    elif name.endswith(".go") and not name.endswith("_test.go"):
        kind = "go"
    else:
        return None
    match = _PREFIX.match(name)
    if match is None:
        return None
    version = int(match.group(1))
    if version < 1 or version > 2**63 - 1:
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

    def describe(self) -> str:
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
        return {
            "releases": list(self.releases),
            "after": self.after,
            "before": self.before,
            "shipped_in": list(self.shipped_in),
        }

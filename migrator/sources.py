"""Migration files as goose sees them: discovery rules applied to names and bytes.

Callers pass ``{file name: bytes}`` (from a local directory or from GitHub); the rules are
goose's: only top-level ``*.sql`` and ``*.go`` count, ``*_test.go`` is ignored, the version is the
integer before the first ``_`` and must be >= 1, a ``.sql`` without a numeric prefix is an error,
a ``.go`` without one is skipped, and duplicate versions are an error.

``resolver.models.migration_name`` applies the same naming rule to GitHub listings (the packages
may not import each other); ``tests/test_migration_names.py`` holds the two to each other.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from migrator.errors import BadInputError, MigrationFileError

MigrationKind = Literal["sql", "go"]


@dataclass(frozen=True)
class MigrationFile:
    """One migration file: version, name, kind and (for SQL) its raw bytes."""

    version: int
    name: str
    kind: MigrationKind
    content: bytes | None
    origin: str
    """Where the bytes came from, for display: a directory path or a git ref."""
    blob_sha: str | None = None


_SQL_EXT, _GO_EXT = ".sql", ".go"


def blob_sha(data: bytes) -> str:
    """The git blob id of ``data``: what ports and patches are keyed by."""
    digest = hashlib.sha1(b"blob %d\0" % len(data), usedforsecurity=False)
    digest.update(data)
    return digest.hexdigest()


_GO_INT64 = re.compile(r"[+-]?[0-9]+")


def _sha_of(content: bytes | None) -> str | None:
    return None if content is None else blob_sha(content)


def _version_of(name: str) -> int | str:
    """goose's NumericComponent: the version, or why the name has none."""
    sep = name.find("_")
    if sep < 0:
        return "no '_' after the version number"
    prefix = name[:sep]
    # strconv.ParseInt(prefix, 10, 64): optional sign, ASCII digits, int64 range.
    if not _GO_INT64.fullmatch(prefix) or not -(2**63) <= int(prefix) < 2**63:
        return f"{prefix!r} is not a version number"
    version = int(prefix)
    if version < 1:
        return "the version must be greater than zero"
    return version


def _kind_of(name: str) -> MigrationKind | None:
    if "/" in name:
        return None  # goose reads only the top level of the directory
    if name.endswith(_SQL_EXT):
        return "sql"
    if name.endswith(_GO_EXT):
        return "go"
    return None


def collect(
    files: Mapping[str, bytes | None],
    *,
    origin: str,
    blob_shas: Mapping[str, str] | None = None,
) -> dict[int, MigrationFile]:
    """Apply goose's discovery rules to ``{file name: bytes}``; the result is keyed by version.

    Names that goose would not read (other extensions, sub-paths, ``*_test.go``, ``.go`` files
    without a version) are ignored. Raises ``MigrationFileError`` naming every offending file
    when a ``.sql`` file has no valid version or two files share a version.
    """
    shas = blob_shas or {}
    problems: list[str] = []
    by_version: dict[int, list[str]] = {}
    found: dict[int, MigrationFile] = {}
    for name in sorted(files):
        kind = _kind_of(name)
        if kind is None:
            continue
        version = _version_of(name)
        if kind == "go" and (isinstance(version, str) or name.endswith("_test.go")):
            continue
        if isinstance(version, str):
            problems.append(f"{name}: {version}")
            continue
        by_version.setdefault(version, []).append(name)
        found[version] = MigrationFile(
            version=version,
            name=name,
            kind=kind,
            content=files[name],
            origin=origin,
            blob_sha=shas.get(name) or _sha_of(files[name]),
        )
    for version, names in sorted(by_version.items()):
        if len(names) > 1:
            problems.append(f"duplicate version {version}: " + ", ".join(names))
    if problems:
        raise MigrationFileError(
            f"migration files in {origin} break goose's naming rules: " + "; ".join(problems)
        )
    return found


def load_directory(path: str | Path) -> dict[int, MigrationFile]:
    """Read the migration files at the top level of a local directory and ``collect`` them."""
    directory = Path(path)
    files: dict[str, bytes | None] = {}
    try:
        if not directory.is_dir():  # inside: a name too long for the file system raises
            raise BadInputError(
                f"migrations directory {str(directory)!r} does not exist or is not a directory"
            )
        for entry in sorted(directory.iterdir()):
            if _kind_of(entry.name) is None or not entry.is_file():
                continue
            files[entry.name] = entry.read_bytes()
    except OSError as exc:
        raise BadInputError(
            f"cannot read migrations directory {str(directory)!r}: {exc.strerror or exc}"
        ) from None
    return collect(files, origin=str(directory))

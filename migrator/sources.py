"""Migration files as goose sees them: discovery rules applied to names and bytes.

Callers pass ``{file name: bytes}`` (from a local directory or from GitHub); the rules are
goose's: only top-level ``*.sql`` and ``*.go`` count, ``*_test.go`` is ignored, the version is the
integer before the first ``_`` and must be >= 1, a ``.sql`` without a numeric prefix is an error,
a ``.go`` without one is skipped, and duplicate versions are an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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

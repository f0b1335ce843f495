"""The downgrade plan: an in-memory simulation of goose's down-to, as dataclasses.

``Plan`` and ``Step`` are what the dry-run prints, what ``--json`` serialises and what the runner
executes, so a dry run and the real run cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

StepKind = Literal["sql", "go", "missing"]
StepStatus = Literal["ready", "blocked", "done", "failed", "not run"]


@dataclass
class Step:
    """One migration to revert, newest first."""

    version: int
    file: str | None
    """File name; None when no source file has this version (an orphan row)."""
    kind: StepKind
    transaction: bool
    statements: list[str] = field(default_factory=list)
    """The exact SQL goose would send, in order (without the version-row DELETE)."""
    warnings: list[str] = field(default_factory=list)
    status: StepStatus = "ready"
    reason: str | None = None
    """Why the step is blocked (or failed), in one sentence."""
    source: str | None = None
    """Where the file came from: a directory or a git ref."""
    blob_sha: str | None = None

    @property
    def blocked(self) -> bool:
        return self.status == "blocked"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "version": self.version,
            "file": self.file,
            "kind": self.kind,
            "transaction": self.transaction,
            "statements": len(self.statements),
            "warnings": list(self.warnings),
            "status": self.status,
        }
        if self.reason:
            out["reason"] = self.reason
        if self.source:
            out["source"] = self.source
        if self.blob_sha:
            out["blob_sha"] = self.blob_sha
        return out


@dataclass
class Plan:
    """Everything a downgrade from ``from_version`` to ``to_version`` would do."""

    from_version: int
    to_version: int
    steps: list[Step] = field(default_factory=list)
    source: str | None = None
    """The directory or git ref the down SQL comes from."""

    @property
    def blocked_steps(self) -> list[Step]:
        return [s for s in self.steps if s.blocked]

    @property
    def blocked(self) -> bool:
        return bool(self.blocked_steps)

    @property
    def nothing_to_do(self) -> bool:
        return self.to_version >= self.from_version

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "from_version": self.from_version,
            "to_version": self.to_version,
            "blocked": self.blocked,
            "steps": [s.to_json() for s in self.steps],
        }
        if self.source:
            out["source"] = self.source
        return out

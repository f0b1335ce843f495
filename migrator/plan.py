"""The downgrade plan: an in-memory simulation of goose's down-to, as dataclasses.

``Plan`` and ``Step`` are what the dry-run prints, what ``--json`` serialises and what the runner
executes, so a dry run and the real run cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

StepKind = Literal["sql", "go", "missing"]
StepStatus = Literal["ready", "blocked", "done", "failed", "interrupted", "not run"]
StepAction = Literal["upstream", "port", "patch", "row only", "blocked"]
"""What the step sends: upstream's down, a Go port, a patched down, or only the row DELETE."""


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
    action: StepAction = "upstream"
    patch_reason: str | None = None
    """Why the step runs corrected SQL instead of upstream's (set for patched steps)."""
    data_loss: list[str] = field(default_factory=list)
    """Rows the step removes or changes because the older schema cannot hold them."""
    below_target: bool = False
    """A renamed row at or below the target that the target release does not ship."""

    @property
    def patched(self) -> bool:
        return self.action == "patch"

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
            "action": self.action,
            "patched": self.patched,
        }
        if self.patch_reason:
            out["patch_reason"] = self.patch_reason
        if self.data_loss:
            out["data_loss"] = list(self.data_loss)
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
    notes: list[str] = field(default_factory=list)
    """Plan-level warnings (e.g. orphan rows left below the target)."""

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
        if self.notes:
            out["notes"] = list(self.notes)
        return out

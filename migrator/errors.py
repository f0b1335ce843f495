"""Errors the migrator raises: each carries one user-facing message and its category.

The categories are the command-line contract's kinds of failure; the exit code of each is
defined once, where errors leave the tool (``cli.exit_code_of``), for this package and
``resolver`` alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Category = Literal["failed", "bad_input", "blocked", "locked", "interrupted"]
"""failed: an operation failed; bad_input: usage, URL, version; blocked: a safety check
refused; locked: another migrator or a live session; interrupted: a signal stopped it."""


class MigratorError(Exception):
    """An expected failure: ``str(err)`` is the message shown to the user, never a traceback."""

    category: Category = "failed"

    def __init__(self, message: str, category: Category | None = None) -> None:
        super().__init__(message)
        self.message = message
        if category is not None:
            self.category = category


class BadInputError(MigratorError):
    """Bad input: a missing or malformed directory, URL, version or version table."""

    category: Category = "bad_input"


class MigrationFileError(MigratorError):
    """A migration directory breaks goose's file rules (bad name, duplicate version)."""

    category: Category = "bad_input"


class SQLParseError(MigratorError):
    """A migration's SQL cannot be parsed the way goose parses it; names file and line."""

    category: Category = "blocked"

    def __init__(self, filename: str, line: int | None, problem: str) -> None:
        where = f"{filename}:{line}" if line is not None else filename
        super().__init__(f"{where}: {problem}")
        self.filename = filename
        self.line = line
        self.problem = problem


class LockError(MigratorError):
    """Another migrator holds the goose lock, or a live session would race the run."""

    category: Category = "locked"


@dataclass(frozen=True)
class StopPoint:
    """Where a run stopped, as a value (the JSON after a stop needs no second database read)."""

    final_version: int | None
    """The version the database is at (None when it could not be read)."""
    step: int | None = None
    """The version of the step that was running (None: between steps or before the first)."""
    statement: int | None = None
    """The statement of that step that failed or was running (1-based; None: not in one)."""
    applied: tuple[int, ...] = ()
    """Statements of that NO TRANSACTION step that are applied and stay applied."""
    reverted: tuple[int, ...] = ()
    """Versions reverted (committed) in this run, in order."""

    def to_json(self) -> dict[str, Any]:
        return {
            "final_version": self.final_version,
            "step": self.step,
            "statement": self.statement,
            "applied_statements": list(self.applied),
            "reverted": list(self.reverted),
        }


class RunStopped(MigratorError):
    """A run stopped part-way (a step failed, the lock was lost, a signal); ``stop`` says where."""

    def __init__(self, message: str, stop: StopPoint, category: Category | None = None) -> None:
        super().__init__(message, category)
        self.stop = stop
        self.steps: list[Any] = []
        """The run's steps with their final status (set by the runner)."""


class StepFailedError(RunStopped):
    """A step's SQL failed; the message names the step, statement and what was already applied."""

    category: Category = "failed"


class LockLostError(RunStopped, LockError):
    """The lock session lost the goose lock mid-run; nothing more was run."""

    category: Category = "locked"


class RunInterrupted(RunStopped):
    """SIGINT, SIGTERM or SIGHUP stopped the run (``signum``)."""

    category: Category = "interrupted"

    def __init__(self, message: str, stop: StopPoint, signum: int) -> None:
        super().__init__(message, stop)
        self.signum = signum

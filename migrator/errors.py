"""Errors the migrator raises: each carries one user-facing message and a CLI exit code."""

from __future__ import annotations

# Exit codes of the command-line contract.
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_BLOCKED = 3
EXIT_LOCKED = 4


class MigratorError(Exception):
    """An expected failure: ``str(err)`` is the message shown to the user, never a traceback."""

    exit_code: int = EXIT_FAILED

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code


class BadInputError(MigratorError):
    """Bad input: a missing or malformed directory, URL, version or version table."""

    exit_code = EXIT_BAD_INPUT


class MigrationFileError(MigratorError):
    """A migration directory breaks goose's file rules (bad name, duplicate version)."""

    exit_code = EXIT_BAD_INPUT


class SQLParseError(MigratorError):
    """A migration's SQL cannot be parsed the way goose parses it; names file and line."""

    exit_code = EXIT_BLOCKED

    def __init__(self, filename: str, line: int | None, problem: str) -> None:
        where = f"{filename}:{line}" if line is not None else filename
        super().__init__(f"{where}: {problem}")
        self.filename = filename
        self.line = line
        self.problem = problem


class LockError(MigratorError):
    """Another migrator holds the goose lock, or a live session would race the run."""

    exit_code = EXIT_LOCKED


class StepFailedError(MigratorError):
    """A step's SQL failed; the message names the step, statement and what was already applied."""

    exit_code = EXIT_FAILED

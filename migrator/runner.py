"""Runs a downgrade plan against PostgreSQL exactly as goose's down-to would.

Before touching anything: refuse a blocked plan, refuse when other client sessions are connected
(a live Hatchet engine would race the downgrade), take goose's lock and rebuild the plan from the
version table as it is now, refusing if it no longer matches what the operator approved. Then
goose's loop: check the current version, run the step's statements and delete its version row;
a transactional step commits both together or neither.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import psycopg

from migrator.catalog import ConnectionCatalog
from migrator.database import SessionInfo, connect, other_sessions
from migrator.errors import EXIT_BLOCKED, LockError, MigratorError, StepFailedError
from migrator.lock import goose_lock
from migrator.plan import Plan, Step
from migrator.profile import Catalog
from migrator.versions import (
    VERSION_TABLE,
    VersionRow,
    applied_versions,
    current_version,
    read_version_rows,
)

EventName = Literal["start", "done", "failed"]
EventCallback = Callable[[str, Step, float], None]
Replan = Callable[[Sequence[VersionRow], Catalog], Plan]
"""Builds the plan again from the version rows and catalog as they are (same inputs otherwise)."""

DELETE_VERSION_SQL = f"DELETE FROM {VERSION_TABLE} WHERE version_id = %s"


@dataclass
class RunResult:
    """The version the database is at after the run, and every step with its final status."""

    final_version: int
    steps: list[Step]


def _step_name(step: Step) -> str:
    return step.file or f"version {step.version}"


def _refuse_blocked(plan: Plan) -> None:
    if not plan.blocked:
        return
    lines = [f"{_step_name(s)}: {s.reason or 'blocked'}" for s in plan.blocked_steps]
    raise MigratorError(
        f"the plan is blocked, nothing was changed; {len(lines)} step(s) cannot run: "
        + "; ".join(lines),
        exit_code=EXIT_BLOCKED,
    )


def _refuse_sessions(conn: psycopg.Connection[Any], exclude: Collection[int], ignore: bool) -> None:
    if ignore:
        return
    try:
        sessions = other_sessions(conn, exclude_pids=exclude)
    except psycopg.Error as exc:
        raise MigratorError(f"cannot list the sessions connected to the database: {exc}") from None
    refuse_sessions(sessions, conn.info.dbname)


def refuse_sessions(sessions: Sequence[SessionInfo], dbname: str) -> None:
    """Raise :class:`LockError` (exit 4) when other client sessions are connected."""
    if not sessions:
        return
    listed = "; ".join(s.describe() for s in sessions)
    raise LockError(
        f"{len(sessions)} other client session(s) are connected to database {dbname} "
        f"({listed}); a running Hatchet engine, API or migrate job would race the downgrade: "
        "stop them first (or pass --ignore-active-sessions if they are known to be harmless)"
    )


def _signature(plan: Plan) -> list[tuple[int, str | None, str, str, bool, list[str]]]:
    return [
        (s.version, s.file, s.kind, s.action, s.transaction, list(s.statements)) for s in plan.steps
    ]


def _refuse_changed(approved: Plan, fresh: Plan) -> None:
    if approved.from_version == fresh.from_version and _signature(approved) == _signature(fresh):
        return
    raise MigratorError(
        "the database changed since the plan was made (planned from version "
        f"{approved.from_version} with {len(approved.steps)} step(s), now at version "
        f"{fresh.from_version} with {len(fresh.steps)} step(s)); nothing was changed: "
        "make a new plan and review it",
        exit_code=EXIT_BLOCKED,
    )


def _pg_error(exc: psycopg.Error) -> str:
    diag = exc.diag
    primary = diag.message_primary if diag else None
    if not primary:
        text = str(exc).strip()
        return text.splitlines()[0] if text else type(exc).__name__
    out = primary
    if diag.message_detail:
        out += f" ({diag.message_detail})"
    if exc.sqlstate:
        out += f" [SQLSTATE {exc.sqlstate}]"
    return out


def _excerpt(statement: str, limit: int = 80) -> str:
    first = next((ln.strip() for ln in statement.splitlines() if ln.strip()), "")
    return first if len(first) <= limit else first[: limit - 3] + "..."


def _failure_message(
    step: Step, index: int | None, exc: psycopg.Error, reverted: Sequence[Step]
) -> str:
    total = len(step.statements)
    if index is None:
        where = f"while deleting its row from {VERSION_TABLE}"
    else:
        where = f"at statement {index} of {total} ({_excerpt(step.statements[index - 1])!r})"
    parts = [f"step {_step_name(step)} (version {step.version}) failed {where}: {_pg_error(exc)}."]
    if step.transaction:
        parts.append("Its transaction was rolled back: none of this step's statements are applied.")
    else:
        done = total if index is None else index - 1
        if done:
            which = (
                "statement 1 was already applied and stays applied"
                if done == 1
                else f"statements 1-{done} were already applied and stay applied"
            )
            parts.append(
                f"This step runs without a transaction (NO TRANSACTION): {which}; "
                "a retry runs them again."
            )
        else:
            parts.append("This step runs without a transaction; none of its statements ran.")
    parts.append(
        f"Its row is still in {VERSION_TABLE}, so the database stays at version {step.version}."
    )
    if reverted:
        names = ", ".join(_step_name(s) for s in reverted)
        parts.append(f"Already reverted in this run (committed): {names}.")
    else:
        parts.append("No step was reverted in this run.")
    return " ".join(parts)


def _execute_statements(cur: psycopg.Cursor[Any], step: Step, progress: list[int]) -> None:
    for index, statement in enumerate(step.statements, start=1):
        progress[0] = index
        # No parameters: psycopg uses the simple query protocol, as goose does, so a statement
        # may hold several commands. prepare=False keeps repeated text off the extended protocol.
        cur.execute(statement, prepare=False)
    progress[0] = 0
    cur.execute(DELETE_VERSION_SQL, (step.version,))


def _run_step(
    conn: psycopg.Connection[Any],
    step: Step,
    reverted: Sequence[Step],
    on_event: EventCallback | None,
) -> None:
    started = time.monotonic()
    if on_event:
        on_event("start", step, 0.0)
    progress = [0]  # statement being sent, 0 for the version-row DELETE
    try:
        with conn.cursor() as cur:
            if step.transaction:
                with conn.transaction():
                    _execute_statements(cur, step, progress)
            else:
                _execute_statements(cur, step, progress)
    except psycopg.Error as exc:
        step.status = "failed"
        index = progress[0] or None
        step.reason = _failure_message(step, index, exc, reverted)
        if on_event:
            on_event("failed", step, time.monotonic() - started)
        raise StepFailedError(step.reason) from None
    step.status = "done"
    if on_event:
        on_event("done", step, time.monotonic() - started)


def _mark_not_run(steps: Sequence[Step]) -> None:
    for step in steps:
        if step.status in ("ready", "blocked"):
            step.status = "not run"


def _check_position(conn: psycopg.Connection[Any], step: Step, reverted: Sequence[Step]) -> None:
    """goose re-reads the table before each step; the step's version must be the current one
    (or, for a renamed row below the target, still applied)."""
    rows = read_version_rows(conn)
    if step.below_target:
        if step.version in applied_versions(rows):
            return
        found = f"version {step.version} is no longer applied"
    else:
        current = current_version(rows)
        if current == step.version:
            return
        found = f"found {current}"
    done = ", ".join(_step_name(s) for s in reverted) or "none"
    raise MigratorError(
        f"the database changed during the run: expected version {step.version} "
        f"before {_step_name(step)}, {found}; stopped before it "
        f"(already reverted in this run: {done})"
    )


def run_plan(
    url: str,
    plan: Plan,
    replan: Replan,
    *,
    lock_timeout: float = 300.0,
    ignore_active_sessions: bool = False,
    on_event: EventCallback | None = None,
) -> RunResult:
    """Revert ``plan``'s steps in order; returns the final version.

    Raises :class:`MigratorError` (exit 3) for a blocked or stale plan, :class:`LockError`
    (exit 4) for other sessions or a held lock, :class:`StepFailedError` (exit 1) when a step's
    SQL fails; nothing runs after a failed step.
    """
    _refuse_blocked(plan)
    if not plan.steps:
        with connect(url, read_only=True) as conn:
            rows = read_version_rows(conn)
            _refuse_changed(plan, replan(rows, ConnectionCatalog(conn)))
        return RunResult(final_version=current_version(rows), steps=[])

    conn = connect(url)
    try:
        _refuse_sessions(conn, (), ignore_active_sessions)
        with goose_lock(url, timeout=lock_timeout) as lock_pid:
            # Checked again with the lock held: a session may have connected meanwhile.
            _refuse_sessions(conn, (lock_pid,), ignore_active_sessions)
            fresh = replan(read_version_rows(conn), ConnectionCatalog(conn))
            _refuse_changed(plan, fresh)
            reverted: list[Step] = []
            for step in plan.steps:
                _check_position(conn, step, reverted)
                _run_step(conn, step, reverted, on_event)
                reverted.append(step)
            final = current_version(read_version_rows(conn))
    finally:
        _mark_not_run(plan.steps)
        conn.close()
    return RunResult(final_version=final, steps=plan.steps)

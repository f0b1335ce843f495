"""Runs a downgrade plan against PostgreSQL exactly as goose's down-to would.

Before touching anything: refuse a blocked plan, refuse when other client sessions are connected
(a live Hatchet engine would race the downgrade), take goose's lock and rebuild the plan from the
version table as it is now, refusing if it no longer matches what the operator approved. Then
goose's loop: check the current version, run the step's statements and delete its version row;
a transactional step commits both together or neither.

Before every step (and every retry) the version read also asks ``pg_locks`` whether the lock
session still holds both goose lock ids; if not, the run stops there (exit 4) and says where the
database is. Statements run with PostgreSQL's ``lock_timeout`` (``ddl_lock_timeout``); a try
that hits it is rolled back (a NO TRANSACTION step resumes at the statement that waited) and
tried again after a backoff, naming the session in the way (:mod:`migrator.lockwait`).

Round trips per transactional step: ``BEGIN`` with the version read, each statement, and the
version-row ``DELETE`` with ``COMMIT``, one fewer than ``psql -f`` of the same script.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from typing import Any, Literal

import psycopg
from psycopg.pq import TransactionStatus

from migrator import interrupts, journal
from migrator.catalog import ConnectionCatalog
from migrator.database import APPLICATION_NAME, connect, other_sessions
from migrator.errors import (
    LockError,
    LockLostError,
    MigratorError,
    RunInterrupted,
    RunStopped,
    StepFailedError,
    StopPoint,
)
from migrator.lock import HeldLock, goose_lock, refuse_pooler
from migrator.lockwait import LockWait, WaitObserver, WaitSample, probable_blockers
from migrator.plan import Plan, Step
from migrator.profile import Catalog
from migrator.sessions import Session
from migrator.versions import (
    VERSION_TABLE,
    VersionRow,
    applied_versions,
    current_version,
    current_version_newest_first,
    read_version_rows,
)

__all__ = [
    "DEFAULT_DDL_LOCK_RETRIES",
    "DEFAULT_DDL_LOCK_TIMEOUT",
    "DEFAULT_STATEMENT_TIMEOUT",
    "EventCallback",
    "LockWait",
    "NoticeCallback",
    "Replan",
    "RunResult",
    "WaitCallback",
    "refuse_sessions",
    "run_plan",
]

EventName = Literal["start", "done", "failed"]
EventCallback = Callable[[str, Step, float], None]
WaitCallback = Callable[[LockWait], None]
"""Called when a step's statement gave up waiting for a lock and will be tried again."""
NoticeCallback = Callable[[str], None]
"""Gets one-line notes about the run (a killed run's sessions, its journal)."""
Replan = Callable[[Sequence[VersionRow], Catalog], Plan]
"""Builds the plan again from the version rows and catalog as they are (same inputs otherwise)."""

# PostgreSQL lock_timeout for every statement of a step: a DDL statement queued behind a long
# transaction makes every later query on that table queue behind it, so it gives up early and
# is retried instead (hatchet-migrate waits forever).
DEFAULT_DDL_LOCK_TIMEOUT = 5.0
DEFAULT_DDL_LOCK_RETRIES = 5
DEFAULT_STATEMENT_TIMEOUT = 0.0  # as hatchet-migrate: a long down is not cut off
# A killed run's server sessions end within about client_connection_check_interval (database.py).
DEFAULT_LEFTOVER_WAIT = 15.0
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 30.0  # seconds between tries: 0.5, 1, 2, 4, 8, ... <= 30
LOCK_NOT_AVAILABLE = "55P03"
# A cancelled CREATE INDEX CONCURRENTLY (or REINDEX CONCURRENTLY) can leave an INVALID index
# behind; running it again would fail on it or, with IF NOT EXISTS, keep it. Not retried.
_LEAVES_INVALID_INDEX = re.compile(
    r"\b(?:CREATE\s+(?:UNIQUE\s+)?INDEX|REINDEX)\b[^;]*\bCONCURRENTLY\b", re.IGNORECASE
)


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
        category="blocked",
    )


def _refuse_sessions(conn: psycopg.Connection[Any], exclude: Collection[int], ignore: bool) -> None:
    if ignore:
        return
    try:
        sessions = other_sessions(conn, exclude_pids=exclude)
    except psycopg.Error as exc:
        raise MigratorError(f"cannot list the sessions connected to the database: {exc}") from None
    refuse_sessions(sessions, conn.info.dbname)


def refuse_sessions(sessions: Sequence[Session], dbname: str) -> None:
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
        category="blocked",
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
    step: Step,
    index: int | None,
    exc: psycopg.Error,
    reverted: Sequence[Step],
    *,
    at_commit: bool = False,
    journaled: bool = False,
) -> str:
    total = len(step.statements)
    if at_commit:
        where = "at COMMIT"
    elif index is None:
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
            again = (
                f"they are recorded in {journal.JOURNAL_TABLE}, and a re-run goes on at "
                f"statement {done + 1}"
                if journaled
                else "a retry runs them again"
            )
            parts.append(
                f"This step runs without a transaction (NO TRANSACTION): {which}; {again}."
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


@dataclass
class _Run:
    """What every step of a run shares: the connection, the lock, the limits, the callbacks."""

    conn: psycopg.Connection[Any]
    lock: HeldLock
    plan: Plan
    ddl_lock_timeout: float
    tries: int
    sleep: Callable[[float], None]
    on_event: EventCallback | None
    on_wait: WaitCallback | None
    observer: WaitObserver | None
    reverted: list[Step] = field(default_factory=list)
    journal: bool = False
    """NO TRANSACTION statements are recorded in :mod:`migrator.journal`."""
    applied: dict[int, set[str]] = field(default_factory=dict)
    """Per version, the keys of statements already applied (by this or an interrupted run)."""
    current: Step | None = None
    progress: _Progress | None = None
    last_journaled: Step | None = None
    """The plan's last NO TRANSACTION step: its final commit drops the empty journal."""


@dataclass
class _Progress:
    """Where a try is: the statement being sent (0: the version-row DELETE), the observer's
    token for it, and whether the failure came at COMMIT."""

    statement: int = 0
    token: int = 0
    at_commit: bool = False


def _milliseconds(seconds: float) -> int:
    """A PostgreSQL timeout in ms; 0 (none) stays 0, anything above never rounds down to 0."""
    return 0 if seconds <= 0 else max(1, round(seconds * 1000))


def _backoff(attempt: int) -> float:
    return float(min(BACKOFF_FIRST * 2 ** (attempt - 1), BACKOFF_MAX))


_READ_STATEMENT = "hatchet_schema_version_read"


def _read_sql(lock: HeldLock) -> str:
    """goose's per-step read of the version table, newest row first as goose reads it, with the
    lock ids the lock session holds (``pg_locks``) on each row: one statement, no extra round
    trip. The table name is unqualified, as goose reads it and as the DELETE writes it."""
    return (
        f"SELECT ARRAY({lock.held_ids_sql()}), version_id, is_applied "
        f"FROM {VERSION_TABLE} ORDER BY id DESC"
    )


def _prepare_read(conn: psycopg.Connection[Any], lock: HeldLock) -> None:
    """The read as a prepared statement of this session (SQL PREPARE, so EXECUTE can share a
    simple-protocol round trip with BEGIN): planned once, not before every step. The step's own
    statements are never prepared."""
    try:
        conn.execute(f"PREPARE {_READ_STATEMENT} AS {_read_sql(lock)}")
    except psycopg.Error as exc:
        raise MigratorError(f"cannot read {VERSION_TABLE}: {_pg_error(exc)}") from None


def _read(run: _Run, cur: psycopg.Cursor[Any], *, begin: bool) -> list[tuple[Any, ...]]:
    """The read's rows (``begin``: after BEGIN, in the same round trip); prepared again when a
    step's statements dropped it (DEALLOCATE ALL)."""
    query = f"EXECUTE {_READ_STATEMENT}"
    for again in (False, True):
        try:
            cur.execute("BEGIN; " + query if begin else query, prepare=False)
            if begin:
                cur.nextset()
            return cur.fetchall()
        except psycopg.errors.InvalidSqlStatementName:
            if again:
                raise
            if run.conn.info.transaction_status != TransactionStatus.IDLE:
                run.conn.execute("ROLLBACK")
            _prepare_read(run.conn, run.lock)
    raise AssertionError("unreachable")


def _version_rows(newest_first: Sequence[tuple[Any, ...]]) -> list[VersionRow]:
    """The rows in :class:`VersionRow` form (ids stand in for the real ones: same order)."""
    count = len(newest_first)
    return [
        VersionRow(id=count - n, version_id=int(v), is_applied=bool(a), tstamp=None)
        for n, (_held, v, a) in enumerate(newest_first)
    ]


def _lock_lost(
    run: _Run, step: Step, current: int, problem: str, *, retrying: bool
) -> LockLostError:
    done, total = len(run.reverted), len(run.plan.steps)
    names = ", ".join(_step_name(s) for s in run.reverted)
    where = "before retrying" if retrying else "before"
    reverted = (
        f"{done} of {total} step(s) were reverted in this run (committed): {names}"
        if done
        else f"none of the {total} step(s) was reverted in this run"
    )
    return LockLostError(
        f"the goose migration lock was lost {where} step {_step_name(step)} (version "
        f"{step.version}): {problem}. Another migrator (hatchet-migrate, goose) could now run "
        f"alongside this one, so nothing more was run. The database is at version {current}; "
        f"{reverted}. Make sure no other migrator is running, then run the downgrade again: "
        f"it goes on from version {current}.",
        _stop_point(run, current, step=None),
    )


def _changed(step: Step, found: str, reverted: Sequence[Step]) -> MigratorError:
    done = ", ".join(_step_name(s) for s in reverted) or "none"
    return MigratorError(
        f"the database changed during the run: expected version {step.version} "
        f"before {_step_name(step)}, {found}; stopped before it "
        f"(already reverted in this run: {done})"
    )


def _guard(run: _Run, cur: psycopg.Cursor[Any], step: Step, *, begin: bool, retrying: bool) -> None:
    """Before a try: goose's re-read of the version table (``begin``: as the first statement of
    the step's transaction, in the same round trip as BEGIN) and the lock check. The lock must
    hold, and the step's version must be the current one (or, for a renamed row below the
    target, still applied)."""
    try:
        rows = _read(run, cur, begin=begin)
    except psycopg.Error as exc:
        raise MigratorError(f"cannot read {VERSION_TABLE}: {_pg_error(exc)}") from None
    current = current_version_newest_first((v, a) for _held, v, a in rows)
    problem = run.lock.check(rows[0][0] if rows else None)
    if problem:
        raise _lock_lost(run, step, current, problem, retrying=retrying)
    if step.below_target:
        if step.version not in applied_versions(_version_rows(rows)):
            raise _changed(step, f"version {step.version} is no longer applied", run.reverted)
    elif current != step.version:
        raise _changed(step, f"found {current}", run.reverted)


def _execute_statements(
    cur: psycopg.Cursor[Any],
    step: Step,
    first: int,
    progress: _Progress,
    observer: WaitObserver | None,
) -> None:
    """A transactional step's statements ``first``.., then its version-row DELETE and COMMIT in
    the same round trip; ``progress`` says how far it got."""
    statements = step.statements
    for index in range(first, len(statements) + 1):
        progress.statement = index
        if observer is not None:
            progress.token = observer.begin()
        # No parameters: psycopg uses the simple query protocol, as goose does, so a statement
        # may hold several commands. prepare=False keeps repeated text off the extended protocol.
        cur.execute(statements[index - 1], prepare=False)
    progress.statement = 0
    if observer is not None:
        progress.token = observer.begin()
    cur.execute(_delete_sql(step) + "; COMMIT", prepare=False)
    if observer is not None:
        observer.end()


def _delete_sql(step: Step) -> str:
    return f"DELETE FROM {VERSION_TABLE} WHERE version_id = {int(step.version)}"


def _rollback_open(conn: psycopg.Connection[Any]) -> None:
    if conn.info.transaction_status in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
        with suppress(psycopg.Error):
            conn.execute("ROLLBACK")


def _execute_no_transaction(
    run: _Run, cur: psycopg.Cursor[Any], step: Step, first: int, progress: _Progress
) -> None:
    """A NO TRANSACTION step's statements ``first``.. each on its own, as goose sends them, then
    its version-row DELETE. With the journal, each statement commits together with its record
    (or, when it cannot run in a transaction block, is recorded before and after), statements an
    interrupted run applied are skipped, and a signal lets the running statement finish."""
    statements = step.statements
    keys = journal.statement_keys(statements)
    done = run.applied.setdefault(step.version, set())
    step_key = journal.step_key(step.version, step.action, step.blob_sha)
    for index in range(first, len(statements) + 1):
        progress.statement = index
        key, text = keys[index - 1], statements[index - 1]
        if key in done:
            continue
        if run.observer is not None:
            progress.token = run.observer.begin()
        with interrupts.deferred():
            if not run.journal:
                cur.execute(text, prepare=False)
            else:
                record = _recorder(step, step_key, key, index, text)
                if journal.transactional(text):
                    try:
                        wrapped = f"BEGIN;\n{text}\n;\n{record('applied')};\nCOMMIT"
                        cur.execute(wrapped, prepare=False)
                    except BaseException:
                        _rollback_open(run.conn)
                        raise
                else:
                    cur.execute(record("started"), prepare=False)
                    try:
                        cur.execute(text, prepare=False)
                    except psycopg.Error:
                        # PostgreSQL undid it, unless a cut-off index build left an INVALID
                        # index: that one stays "started" for the re-run to settle.
                        if not _LEAVES_INVALID_INDEX.search(text):
                            with suppress(psycopg.Error):
                                cur.execute(journal.forget_sql(step.version, key))
                        raise
                    cur.execute(record("applied"), prepare=False)
            done.add(key)
    progress.statement = 0
    if run.observer is not None:
        progress.token = run.observer.begin()
    if run.journal:
        clear = journal.clear_sql(step.version)
        if step is run.last_journaled:  # the journal goes with the last write that needs it
            clear += "; " + journal.drop_if_empty_sql()
        try:
            cur.execute(f"BEGIN; {_delete_sql(step)}; {clear}; COMMIT", prepare=False)
        except BaseException:
            _rollback_open(run.conn)
            raise
    else:
        cur.execute(_delete_sql(step), prepare=False)
    if run.observer is not None:
        run.observer.end()


def _recorder(
    step: Step, step_key: str, key: str, index: int, text: str
) -> Callable[[journal.State], str]:
    """The journal INSERT for one statement, in the state given (literal SQL)."""

    def record(state: journal.State) -> str:
        composed = journal.record_sql(
            step.version, step_key, key, index, len(step.statements), text, state
        )
        return composed.as_string(None)

    return record


def _try_step(run: _Run, step: Step, first: int, progress: _Progress, retrying: bool) -> None:
    """One try: the guard, the statements from ``first`` and the version-row DELETE. A
    transactional step runs BEGIN .. COMMIT and is rolled back on any failure."""
    conn = run.conn
    with conn.cursor() as cur:
        if not step.transaction:
            _guard(run, cur, step, begin=False, retrying=retrying)
            _execute_no_transaction(run, cur, step, first, progress)
            return
        try:
            _guard(run, cur, step, begin=True, retrying=retrying)
            _execute_statements(cur, step, 1, progress, run.observer)
        except BaseException:
            status = conn.info.transaction_status
            # A failed COMMIT ends the transaction itself; anything earlier leaves it open.
            progress.at_commit = progress.statement == 0 and status == TransactionStatus.IDLE
            _rollback_open(conn)
            raise


def _wait_info(
    run: _Run, step: Step, index: int | None, attempt: int, token: int, retry_in: float | None
) -> LockWait:
    sample: WaitSample | None = run.observer.sample(token) if run.observer else None
    blockers = sample.blockers if sample else probable_blockers(run.conn, [run.lock.pid])
    return LockWait(
        step_name=_step_name(step),
        version=step.version,
        statement=index,
        statements=len(step.statements),
        attempt=attempt,
        tries=run.tries,
        timeout=run.ddl_lock_timeout,
        mode=sample.mode if sample else None,
        target=sample.target if sample else None,
        blockers=blockers,
        observed=sample is not None,
        retry_in=retry_in,
    )


def _retryable(step: Step, index: int | None) -> bool:
    if step.transaction or index is None:
        return True
    return not _LEAVES_INVALID_INDEX.search(step.statements[index - 1])


def _give_up_note(run: _Run, step: Step, index: int | None, wait: LockWait) -> str:
    if not _retryable(step, index):
        return (
            f" It waited {run.ddl_lock_timeout:g} s for {wait.blocked_by()}. It was not "
            "retried: a cancelled CREATE INDEX CONCURRENTLY can leave an INVALID index behind "
            "(drop it with DROP INDEX CONCURRENTLY before running again)."
        )
    pids = [b.pid for b in wait.blockers]
    stop = f" (SELECT pg_terminate_backend({pids[0]}))" if len(pids) == 1 else ""
    tries = f"on each of {run.tries} tries" if run.tries > 1 else "on its only try"
    return (
        f" It waited {run.ddl_lock_timeout:g} s {tries} for {wait.blocked_by()}. Let that "
        f"session finish or stop it{stop}, or raise --ddl-lock-timeout / --ddl-lock-retries, "
        "then run the downgrade again."
    )


def _run_step(run: _Run, step: Step) -> None:
    """One step, goose's way, with the lock and the version re-checked before every try; a try
    that hit lock_timeout is rolled back (or, without a transaction, resumed at the statement
    that waited) and tried again after a backoff."""
    started = time.monotonic()
    if run.on_event:
        run.on_event("start", step, 0.0)
    first, attempt = 1, 0
    while True:
        attempt += 1
        progress = run.progress = _Progress()
        try:
            _try_step(run, step, first, progress, retrying=attempt > 1)
            break
        except psycopg.Error as exc:
            if run.observer:
                run.observer.end()
            index = progress.statement or None
            wait = None
            if exc.sqlstate == LOCK_NOT_AVAILABLE:
                last = attempt >= run.tries or not _retryable(step, index)
                delay = None if last else _backoff(attempt)
                wait = _wait_info(run, step, index, attempt, progress.token, delay)
                if delay is not None:
                    if run.on_wait:
                        run.on_wait(wait)
                    run.sleep(delay)
                    if not step.transaction:  # what ran stays applied: go on from here
                        first = index or len(step.statements) + 1
                    continue
            step.status = "failed"
            step.reason = _failure_message(
                step, index, exc, run.reverted, at_commit=progress.at_commit,
                journaled=run.journal,
            )  # fmt: skip
            if wait is not None:
                step.reason += _give_up_note(run, step, index, wait)
            if run.on_event:
                run.on_event("failed", step, time.monotonic() - started)
            raise StepFailedError(
                step.reason, _stop_point(run, step.version, step=step, statement=index)
            ) from None
    step.status = "done"
    if run.on_event:
        run.on_event("done", step, time.monotonic() - started)


def _final_version(run: _Run) -> int:
    try:
        with run.conn.cursor() as cur:
            rows = _read(run, cur, begin=False)
    except psycopg.Error as exc:
        raise MigratorError(f"cannot read {VERSION_TABLE}: {_pg_error(exc)}") from None
    return current_version_newest_first((v, a) for _held, v, a in rows)


def _mark_not_run(steps: Sequence[Step]) -> None:
    for step in steps:
        if step.status in ("ready", "blocked"):
            step.status = "not run"


def _set_limits(
    conn: psycopg.Connection[Any], ddl_lock_timeout: float, statement_timeout: float
) -> None:
    try:
        conn.execute(
            f"SET lock_timeout = {_milliseconds(ddl_lock_timeout)}; "
            f"SET statement_timeout = {_milliseconds(statement_timeout)}"
        )
    except psycopg.Error as exc:
        raise MigratorError(f"cannot set lock_timeout and statement_timeout: {exc}") from None


def _stop_point(
    run: _Run, fallback: int | None, *, step: Step | None, statement: int | None = None
) -> StopPoint:
    """Where the run is now: the version read afresh when the connection allows it."""
    final: int | None = fallback
    with suppress(psycopg.Error, MigratorError):
        if not run.conn.closed:
            _rollback_open(run.conn)
            final = _final_version(run)
    applied: tuple[int, ...] = ()
    if step is not None and not step.transaction:
        done = run.applied.get(step.version, set())
        keys = journal.statement_keys(step.statements)
        applied = tuple(i for i, key in enumerate(keys, start=1) if key in done)
    return StopPoint(
        final_version=final,
        step=step.version if step is not None else None,
        statement=statement,
        applied=applied,
        reverted=tuple(s.version for s in run.reverted),
    )


def _interrupted(run: _Run | None, signum: int, total: int) -> RunInterrupted:
    """The report of where a signal left the database (the contract's exit 128 + signal)."""
    name = interrupts.signal_name(signum)
    if run is None:
        return RunInterrupted(
            f"stopped by {name} before the first step: nothing was changed",
            StopPoint(final_version=None),
            signum,
        )
    step = run.current
    running = run.progress.statement if run.progress is not None else 0
    stop = _stop_point(run, None, step=step, statement=running or None)
    at = f"version {stop.final_version}" if stop.final_version is not None else "an unread version"
    parts = [f"stopped by {name}"]
    if step is None or step.status == "done":
        parts.append(f"between steps; the database is at {at}.")
    else:
        step.status = "interrupted"
        parts.append(f"during step {_step_name(step)} (version {step.version}).")
        if step.transaction:
            parts.append("Its transaction was rolled back: none of its statements are applied.")
        elif stop.applied:
            where = (
                f"recorded in {journal.JOURNAL_TABLE}: a re-run goes on with the rest"
                if run.journal
                else "without the journal a re-run would send them again"
            )
            parts.append(
                f"It runs without a transaction: statement(s) {journal.ranges(stop.applied)} of "
                f"{len(step.statements)} are applied and stay applied ({where})."
            )
        else:
            parts.append("It runs without a transaction; none of its statements are applied.")
        parts.append(f"The database is at {at}.")
    done = len(run.reverted)
    names = ", ".join(_step_name(s) for s in run.reverted)
    parts.append(
        f"{done} of {total} step(s) were reverted in this run: {names}."
        if done
        else f"None of the {total} step(s) was reverted in this run."
    )
    parts.append("The goose lock was released. Run the downgrade again to go on.")
    return RunInterrupted(" ".join(parts), stop, signum)


def _open_journal(run: _Run, rows: Sequence[VersionRow], notify: NoticeCallback | None) -> None:
    """Set up the journal for the plan's NO TRANSACTION steps, and take over what an interrupted
    run left in it: applied statements are skipped, started ones settled from the catalog."""
    conn, steps = run.conn, run.plan.steps
    found = journal.read_journal(conn)
    if any(not s.transaction and s.statements for s in steps):
        try:
            journal.create(conn)
            run.journal = True
            run.last_journaled = [s for s in steps if not s.transaction][-1]
        except psycopg.errors.InsufficientPrivilege:
            if notify:
                notify(
                    f"cannot create {journal.JOURNAL_TABLE} (no CREATE privilege on the "
                    "database): NO TRANSACTION steps run without a journal, as goose runs "
                    "them; a run killed part-way through one cannot be resumed safely"
                )
        except psycopg.Error as exc:
            problem = _pg_error(exc)
            raise MigratorError(f"cannot create {journal.JOURNAL_TABLE}: {problem}") from None
    applied_now = applied_versions(list(rows))
    by_version = {s.version: s for s in steps if not s.below_target}
    for version in found.versions():
        step = by_version.get(version)
        entries = found.of(version)
        if step is None:
            if version not in applied_now:  # finished since: the entries are stale
                conn.execute(journal.clear_sql(version))
            elif notify:
                notify(f"{found.describe(version)}; this plan does not revert it")
            continue
        key = journal.step_key(step.version, step.action, step.blob_sha)
        if step.transaction or any(e.step_key != key for e in entries):
            raise MigratorError(
                f"{found.describe(version)} ({_step_name(step)} as {entries[0].step_key}); "
                f"this plan would run it differently ({key}), so nothing was changed: run the "
                "downgrade with the options the interrupted run had (--no-patches, "
                "--trust-go-ports, --from-ref), or finish that step by hand",
                category="blocked",
            )
        texts = dict(zip(journal.statement_keys(step.statements), step.statements, strict=True))
        done = run.applied.setdefault(version, set())
        for entry in entries:
            if entry.state == "applied" or entry.statement_key not in texts:
                # Not in a recomputed port's list any more: what it did is done.
                done.add(entry.statement_key)
                continue
            settled = journal.settle_started(conn, texts[entry.statement_key])
            where = f"statement {entry.position} of {_step_name(step)} ({entry.excerpt!r})"
            if settled.action == "unknown":
                raise MigratorError(
                    f"an interrupted run started {where} and may or may not have finished it: "
                    f"{settled.why}; nothing was changed",
                    category="blocked",
                )
            if notify:
                notify(f"interrupted run: {where}: {settled.why}")
            if settled.action == "done":
                done.add(entry.statement_key)
            elif settled.drop_first:
                conn.execute(settled.drop_first)


def _own_leftovers(
    conn: psycopg.Connection[Any],
    exclude: Collection[int],
    wait: float,
    notify: NoticeCallback | None,
    sleep: Callable[[float], None],
) -> None:
    """Sessions of this tool from a run that was killed (SIGKILL, a lost terminal) still end
    on the server: PostgreSQL notices the vanished client at its next read, or within
    ``client_connection_check_interval`` when a statement is running. Wait up to ``wait``
    seconds for them; one still there is named, with how to end it (exit 4)."""
    deadline = time.monotonic() + wait
    told = False
    while True:
        try:
            ours = [s for s in other_sessions(conn, exclude_pids=exclude)
                    if s.application_name == APPLICATION_NAME]  # fmt: skip
        except psycopg.Error:
            return
        if not ours:
            return
        if time.monotonic() >= deadline:
            listed = "; ".join(s.describe() for s in ours)
            stop = "; ".join(f"SELECT pg_terminate_backend({s.pid})" for s in ours)
            raise LockError(
                f"{len(ours)} session(s) of {APPLICATION_NAME} are still connected after "
                f"{wait:g} s ({listed}): left by a run that was killed, or another "
                f"{APPLICATION_NAME} is running. If none is running, end them ({stop}) and "
                "run again; nothing was changed"
            )
        if not told and notify:
            told = True
            notify(
                f"waiting up to {wait:g} s for {len(ours)} session(s) of {APPLICATION_NAME} to "
                f"end (pid {', '.join(str(s.pid) for s in ours)}): probably left by a run that "
                "was killed; not a Hatchet engine"
            )
        sleep(0.2)


def run_plan(
    url: str,
    plan: Plan,
    replan: Replan,
    *,
    lock_timeout: float = 300.0,
    ignore_active_sessions: bool = False,
    on_event: EventCallback | None = None,
    ddl_lock_timeout: float = DEFAULT_DDL_LOCK_TIMEOUT,
    ddl_lock_retries: int = DEFAULT_DDL_LOCK_RETRIES,
    statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT,
    on_wait: WaitCallback | None = None,
    on_notice: NoticeCallback | None = None,
    leftover_wait: float = DEFAULT_LEFTOVER_WAIT,
    sleep: Callable[[float], None] = time.sleep,
) -> RunResult:
    """Revert ``plan``'s steps in order; returns the final version and the steps as run.

    The caller's ``plan`` is not changed: the run works on a copy (``RunResult.steps`` and
    ``RunStopped.steps`` are its steps, with their final status).

    ``lock_timeout`` is how long to wait for goose's migration lock; ``ddl_lock_timeout`` is
    PostgreSQL's ``lock_timeout`` for each statement (0: wait forever), and a try that hits it
    is tried again up to ``ddl_lock_retries`` times after a backoff (``sleep``), reported
    through ``on_wait``; ``statement_timeout`` (0: none) caps each statement. ``on_notice``
    gets one-line notes (waiting for a killed run's sessions, taking over its journal).

    Raises :class:`MigratorError` (exit 3) for a blocked or stale plan, (exit 2) through a
    connection pooler, :class:`LockError` (exit 4) for other sessions or a held lock,
    :class:`LockLostError` (exit 4) for a lock lost mid-run, :class:`StepFailedError` (exit 1)
    when a step's SQL fails or still waits after the last try, :class:`RunInterrupted` (exit
    128 + signal) on SIGINT, SIGTERM or SIGHUP; nothing runs after a failed step.
    """
    plan = copy.deepcopy(plan)
    _refuse_blocked(plan)
    if not plan.steps:
        with connect(url, read_only=True) as reader:
            rows = read_version_rows(reader)
            _refuse_changed(plan, replan(rows, ConnectionCatalog(reader)))
        return RunResult(final_version=current_version(rows), steps=[])
    with interrupts.signals_raise():
        try:
            return _run_locked(
                url, plan, replan, lock_timeout, ignore_active_sessions, on_event,
                (ddl_lock_timeout, ddl_lock_retries, statement_timeout),
                on_wait, on_notice, leftover_wait, sleep,
            )  # fmt: skip
        except KeyboardInterrupt as exc:
            raise _interrupted(None, interrupts.signum_of(exc), len(plan.steps)) from None
        except RunStopped as exc:
            exc.steps = plan.steps
            raise


def _run_locked(
    url: str,
    plan: Plan,
    replan: Replan,
    lock_timeout: float,
    ignore_active_sessions: bool,
    on_event: EventCallback | None,
    limits: tuple[float, int, float],
    on_wait: WaitCallback | None,
    on_notice: NoticeCallback | None,
    leftover_wait: float,
    sleep: Callable[[float], None],
) -> RunResult:
    ddl_lock_timeout, ddl_lock_retries, statement_timeout = limits
    # The lock session connects while this one does.
    pending = _connect_in_background(url)
    opening: Future[psycopg.Connection[Any]] | None = pending  # None once the lock owns it
    conn: psycopg.Connection[Any] | None = None
    try:
        conn = connect(url)
        refuse_pooler(conn)
        lock_pid = pending.result().info.backend_pid
        _own_leftovers(conn, (lock_pid,), leftover_wait, on_notice, sleep)
        _refuse_sessions(conn, (lock_pid,), ignore_active_sessions)
        lock_conn, opening = pending.result(), None
        with goose_lock(url, timeout=lock_timeout, conn=lock_conn) as lock, ExitStack() as stack:
            # Checked again with the lock held: a session may have connected meanwhile.
            _refuse_sessions(conn, (lock.pid,), ignore_active_sessions)
            rows = read_version_rows(conn)
            fresh = replan(rows, ConnectionCatalog(conn))
            _refuse_changed(plan, fresh)
            _set_limits(conn, ddl_lock_timeout, statement_timeout)
            _prepare_read(conn, lock)
            observer = None
            if ddl_lock_timeout > 0:
                interval = min(max(ddl_lock_timeout / 4, 0.02), 0.5)
                watcher = WaitObserver(lock.conn, conn.info.backend_pid, interval=interval)
                observer = stack.enter_context(watcher)
            run = _Run(
                conn=conn,
                lock=lock,
                plan=plan,
                ddl_lock_timeout=ddl_lock_timeout,
                tries=max(ddl_lock_retries, 0) + 1,
                sleep=sleep,
                on_event=on_event,
                on_wait=on_wait,
                observer=observer,
            )
            _open_journal(run, rows, on_notice)
            try:
                for step in plan.steps:
                    run.current, run.progress = step, None
                    _run_step(run, step)
                    run.reverted.append(step)
                run.current = None
                final = _final_version(run)
            except KeyboardInterrupt as exc:
                raise _interrupted(run, interrupts.signum_of(exc), len(plan.steps)) from None
            finally:
                if run.journal:  # an empty journal leaves no trace
                    with suppress(psycopg.Error), interrupts.held():
                        _rollback_open(conn)
                        journal.drop_if_empty(conn)
    finally:
        _mark_not_run(plan.steps)
        if conn is not None:
            conn.close()
        if opening is not None:  # not handed to the lock: close it once it is open
            opening.add_done_callback(_close_opened)
    return RunResult(final_version=final, steps=plan.steps)


def _connect_in_background(url: str) -> Future[psycopg.Connection[Any]]:
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hatchet-schema-connect")
    try:
        return pool.submit(connect, url)
    finally:
        pool.shutdown(wait=False)


def _close_opened(opened: Future[psycopg.Connection[Any]]) -> None:
    if not opened.cancelled() and opened.exception() is None:
        opened.result().close()

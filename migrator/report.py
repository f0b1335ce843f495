"""Showing a downgrade: the plan as a rich table for people, each step's progress while it
runs, the one-line messages (blocked, nothing to do, the confirmation question) and the JSON
objects ``downgrade --json`` prints; none of it needs typer, ``cli.py`` only prints it. (The
``--sql`` script is :mod:`migrator.sqlscript`.)
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from migrator.errors import MigratorError, RunStopped
from migrator.plan import Plan, Step

if TYPE_CHECKING:
    from migrator.commands import SimulatedDowngrade, Target
    from migrator.lockholders import GooseLockWait
    from migrator.rehearsal import RehearsalResult
    from migrator.runner import EventCallback, RunResult

__all__ = [
    "SimulationReport",
    "blocked_message",
    "confirmation_question",
    "describe_database",
    "dry_run_json",
    "nothing_to_do",
    "nothing_to_do_json",
    "rehearsal_failed_json",
    "render_plan",
    "run_json",
    "step_progress",
    "stopped_json",
    "way_forward",
]


def _notes(step: Step) -> list[Text]:
    lines: list[Text] = []
    if step.reason:
        style = "bold red" if step.blocked or step.status == "failed" else ""
        lines.append(Text(f"{step.status}: {step.reason}", style=style))
        hint = way_forward(step) if step.blocked else None
        if hint:
            lines.append(Text(f"way forward: {hint}", style="bold"))
    lines += [Text(w, style="yellow" if w.startswith("data loss") else "") for w in step.warnings]
    return lines


def way_forward(step: Step) -> str | None:
    """How to unblock ``step`` when its reason does not say so already (None: it does, or no
    option of this tool is known to help)."""
    reason = step.reason or ""
    if step.file is None:
        source = (
            f"take the migrations from a source that has version {step.version}: --from-ref "
            "REF (e.g. the release that shipped it) or --migrations-dir DIR"
        )
        if f"--skip-orphan {step.version}" in reason:
            return source
        return (
            f"{source}; or --skip-orphan {step.version} deletes just its row (whatever it "
            "created stays)"
        )
    if "cannot be parsed" in reason:
        return (
            "take the file from a ref whose copy parses (--from-ref REF) or from a corrected "
            "copy (--migrations-dir DIR)"
        )
    if "patch for this step cannot be built" in reason:
        return "--no-patches runs upstream's down as it is (it may then fail as upstream's does)"
    return None


_STATUS_STYLE = {"blocked": "bold red", "failed": "bold red", "done": "green"}
_COLUMNS = ("version", "file", "kind", "runs", "transaction", "statements", "status")
# Narrower headers for the same columns, tried before giving up on a table.
_SHORT = {"transaction": "tx", "statements": "stmts"}


def _hanging(console: Console, lead: str, text: Text | str) -> None:
    """``lead`` then ``text``, wrapped at word boundaries under itself (a hanging indent); a word
    longer than the line (a long file name) stays whole on a line of its own."""
    body = text if isinstance(text, Text) else Text(text)
    room = max(console.width - len(lead), 20)
    lines = textwrap.wrap(body.plain, room, break_long_words=False, break_on_hyphens=False) or [""]
    for number, line in enumerate(lines):
        indent = lead if number == 0 else " " * len(lead)
        console.print(Text(indent) + Text(line, style=body.style), soft_wrap=True)


def _table(plan: Plan, *, short: bool) -> Table:
    with_blobs = any(step.blob_sha for step in plan.steps)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    if short:  # two spaces between columns, no blank edge lines
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, collapse_padding=True)
    for column in (*_COLUMNS, *(("blob",) if with_blobs else ())):
        table.add_column(_SHORT.get(column, column) if short else column, no_wrap=True)
    for step in plan.steps:
        row: list[str | Text] = [
            str(step.version),
            Text(step.file or "(no file)"),
            step.kind,
            step.action,
            "yes" if step.transaction else "no",
            str(len(step.statements)),
            Text(step.status, style=_STATUS_STYLE.get(step.status, "")),
        ]
        if with_blobs:
            row.append((step.blob_sha or "")[:12])
        table.add_row(*row)
    return table


def _fits(console: Console, table: Table) -> bool:
    """Whether ``table`` fits the console without shrinking a column (measured unconstrained)."""
    unbounded = console.options.update(max_width=10_000)
    return Measurement.get(console, unbounded, table).maximum <= console.width


def _print_blocks(console: Console, plan: Plan) -> None:
    """One block per step, for a terminal too narrow for the table: status and file name on the
    first line, the other columns on the second, then the step's notes."""
    total = len(plan.steps)
    width = len(f"{total}/{total}")
    status_width = max(len(step.status) for step in plan.steps)
    for index, step in enumerate(plan.steps, start=1):
        head = Text(f"{f'{index}/{total}':>{width}} ")
        head.append(f"{step.status:<{status_width}}", style=_STATUS_STYLE.get(step.status, ""))
        name = step.file or f"version {step.version} (no file)"
        if len(head) + 1 + len(name) <= console.width:
            console.print(head + " " + name, soft_wrap=True)
        else:  # on a line of its own, and whole even if longer than that: never folded
            head.rstrip()
            console.print(head, soft_wrap=True)
            console.print(Text(name), soft_wrap=True)
        details = [
            f"version {step.version}",
            step.kind,
            f"runs {step.action}",
            "transaction" if step.transaction else "no transaction",
            f"{len(step.statements)} statement(s)",
        ]
        if step.blob_sha:
            details.append(f"blob {step.blob_sha[:12]}")
        indent = " " * (width + 1)
        _hanging(console, indent, ", ".join(details))
        for note in _notes(step):
            _hanging(console, indent + "- ", note)


def render_plan(plan: Plan, console: Console, *, header: Mapping[str, str] | None = None) -> None:
    """Print the plan for a person: header lines, one table row per step, each step's warnings
    and blocking reasons below the table (long sentences do not fit a table cell), the verdict.

    On a console too narrow for the table (shorter headers are tried first) each step is a
    block of lines instead: a version, status or file name is never cut off, and long lines
    wrap at word boundaries.
    """
    fields = dict(header or {})
    if plan.source and "source" not in fields:
        fields["source"] = plan.source
    fields.setdefault("current", str(plan.from_version))
    fields.setdefault("target", str(plan.to_version))
    width = max(len(k) for k in fields)
    for key, value in fields.items():
        _hanging(console, f"{key + ':':<{width + 1}} ", value)
    if plan.nothing_to_do or not plan.steps:
        console.print("nothing to do: the database is already at or below the target")
        return

    table = next(
        (t for t in (_table(plan, short=s) for s in (False, True)) if _fits(console, t)), None
    )
    if table is None:
        console.print()
        _print_blocks(console, plan)
        console.print()
    else:
        console.print(table)
        if not table.show_edge:
            console.print()
        noted = [(step, _notes(step)) for step in plan.steps]
        if any(notes for _, notes in noted):
            console.print("warnings and blocking reasons:")
            for step, notes in noted:
                if notes:
                    _hanging(console, "  ", f"{step.version} {step.file or '(no file)'}")
                    for note in notes:
                        _hanging(console, "    - ", note)
    blocked = len(plan.blocked_steps)
    if blocked:
        console.print(Text(f"plan is BLOCKED by {blocked} step(s)", style="bold red"))
    else:
        console.print(Text("plan can run", style="bold green"))


def blocked_message(plan: Plan, outcome: str) -> str:
    """One line naming every blocking step, why, and the way forward where the reason does not
    say it (a blocked plan lists them all)."""
    steps = plan.blocked_steps
    named = "; ".join(
        f"{s.file or f'version {s.version} (no file)'}: {s.reason or 'blocked'}"
        + (f" (way forward: {hint})" if (hint := way_forward(s)) else "")
        for s in steps
    )
    return f"the plan is blocked by {len(steps)} step(s), {outcome}: {named}"


def nothing_to_do(current: int, target: int) -> str:
    """Why there is no plan: the target is the current version, or above it."""
    if target > current:
        return (
            f"target {target} is above the current version {current}: this tool only "
            "downgrades; use hatchet-migrate to upgrade"
        )
    return f"the database is already at {current}: nothing to do"


def nothing_to_do_json(current: int, target: int) -> dict[str, Any]:
    """``downgrade --json`` when there is nothing to do: a plan without steps."""
    return {
        "from_version": current,
        "to_version": target,
        "steps": [],
        "final_version": current,
        "message": nothing_to_do(current, target),
    }


def confirmation_question(
    plan: Plan, database: str, rehearsal: RehearsalResult | None = None
) -> str:
    """What a real run asks before it changes ``database``: how many steps, what they lose."""
    losses = [w for s in plan.steps for w in s.warnings if w.startswith("data loss:")]
    rows = [what for s in plan.steps for what in s.data_loss]
    patched = sum(1 for s in plan.steps if s.patched)
    rehearsed = ""
    if rehearsal is not None:
        rehearsed = (
            f" Rehearsed on a {rehearsal.mode} copy: passed, its steps took "
            f"{rehearsal.run_seconds:.2f}s."
        )
    return (
        f"Revert {len(plan.steps)} migration(s) on {database}, {plan.from_version} -> "
        f"{plan.to_version} ({len(losses)} data-loss warning(s), {len(rows)} of them rows that "
        f"do not fit the older schema; {patched} patched step(s))?{rehearsed}"
    )


def describe_database(url: str) -> str:
    """``database DBNAME on HOST port PORT`` of ``url``, never the password."""
    from migrator.database import parse_url

    params = parse_url(url)
    host = params.get("host") or params.get("hostaddr") or "the local socket"
    port = params.get("port") or "5432"
    dbname = params.get("dbname") or params.get("user") or "?"
    return f"database {dbname} on {host} port {port}"


# The JSON objects of ``downgrade --json``: the plan's own fields, then what the run adds.


def dry_run_json(
    plan: Plan, target_release: str | None, rehearsal: RehearsalResult | None = None
) -> dict[str, Any]:
    """The plan as a dry run (or a blocked real run) prints it; with a rehearsal's result."""
    out = plan.to_json()
    out.update(target_release=target_release, dry_run=True)
    if rehearsal is not None:
        out.update(rehearsal=rehearsal.to_json())
        if not rehearsal.ok:
            out.update(error=rehearsal.error)
    return out


def rehearsal_failed_json(
    plan: Plan, rehearsal: RehearsalResult, *, current: int, target_release: str | None
) -> dict[str, Any]:
    """A real run that stopped because its rehearsal failed: the database was not touched."""
    out = plan.to_json()
    out.update(final_version=current, target_release=target_release, dry_run=False)
    out.update(rehearsal=rehearsal.to_json(), error=rehearsal.error)
    return out


def run_json(
    plan: Plan,
    result: RunResult,
    *,
    target_release: str | None,
    rehearsal: RehearsalResult | None = None,
) -> dict[str, Any]:
    """A real run that finished: each step as it ran, and the final version."""
    out = replace(plan, steps=result.steps).to_json()
    out.update(final_version=result.final_version)
    out.update(target_release=target_release, dry_run=False)
    if rehearsal is not None:
        out.update(rehearsal=rehearsal.to_json())
    return out


def stopped_json(
    plan: Plan,
    error: MigratorError,
    *,
    current: int,
    target_release: str | None,
    rehearsal: RehearsalResult | None = None,
) -> dict[str, Any]:
    """A real run refused before its first step or stopped part-way: each step's status and
    where the database is, from the error (no second read of the database)."""
    if isinstance(error, RunStopped):
        out = replace(plan, steps=error.steps or plan.steps).to_json()
        out.update(final_version=error.stop.final_version, stopped=error.stop.to_json())
    else:  # nothing ran (the lock is held, a session connected, the plan went stale)
        untouched = [replace(s, status="not run") for s in plan.steps]
        out = replace(plan, steps=untouched).to_json()
        out.update(final_version=current, stopped=None)
    out.update(target_release=target_release, dry_run=False, error=error.message)
    if rehearsal is not None:
        out.update(rehearsal=rehearsal.to_json())
    return out


@dataclass(frozen=True)
class SimulationReport:
    """What ``downgrade --from-release R --dry-run`` says about the database it did not read:
    the simulated version table at R, and what a plan made without a database cannot know."""

    simulation: SimulatedDowngrade
    release: str
    """R, the release the simulated database is at."""
    version: int
    commit: str
    database_ignored: bool
    """A database was configured (DATABASE_URL) and, by design, not read."""

    @property
    def database(self) -> str:
        return (
            f"a simulated goose_db_version at {self.release}, its "
            f"{len(self.simulation.rows) - 1} migrations applied as goose up leaves them"
            + (
                "; the configured database (DATABASE_URL) is not read"
                if self.database_ignored
                else ""
            )
        )

    @property
    def caveat(self) -> str:
        from migrator.simulate import CATALOG_NOTE

        lookups = self.simulation.catalog_lookups
        return CATALOG_NOTE + (
            f" ({lookups} plan-time lookups answered with no rows)" if lookups else ""
        )

    def notes(self) -> list[str]:
        """The notes the plan carries (its JSON's ``notes``)."""
        from migrator.simulate import DATA_LOSS_NOTE

        return [f"no database read: {self.database}", self.caveat, DATA_LOSS_NOTE]

    def script_comment(self) -> str:
        """The comment lines above the ``--sql`` script."""
        from migrator.simulate import DATA_LOSS_NOTE

        lines = [
            f"SIMULATED: planned without a database, for one at {self.release} ({self.version})",
            self.caveat,
            DATA_LOSS_NOTE,
        ]
        return "".join(f"-- {line}\n" for line in lines)

    def header(self, target: Target) -> dict[str, str]:
        """The lines above the plan table."""
        from migrator.simulate import DATA_LOSS_NOTE

        current, place = self.simulation.current, self.simulation.current_place
        return {
            "current": f"{current} ({place})" if place else str(current),
            "target": f"{target.version}" + (f" ({target.release})" if target.release else ""),
            "source": self.simulation.source,
            "database": f"none read: {self.database}",
            "sessions": "not checked: no database",
            "statements": self.caveat,
            "data loss": DATA_LOSS_NOTE,
        }

    def to_json(self, plan: Plan, target_release: str | None) -> dict[str, Any]:
        out = plan.to_json()
        out.update(target_release=target_release, dry_run=True, from_release=self.release)
        out.update(
            simulated={
                "from_release": self.release,
                "from_commit": self.commit,
                "rows": len(self.simulation.rows),
                "database_read": False,
                "catalog_lookups": self.simulation.catalog_lookups,
            }
        )
        return out


# A plain-text lock wait repeats at most this often (seconds) while nothing changes.
_LOCK_WAIT_REPEAT = 30.0


class _StepLines:
    """The plain-text lines of a run's progress: one per step event, and a lock wait when it
    is news (the first report, other holders, the lock taken, or half a minute since the last
    line)."""

    def __init__(self, plan: Plan, label: str) -> None:
        self.label = label
        self.total = len(plan.steps)
        self.index = {s.version: i for i, s in enumerate(plan.steps, start=1)}
        self.said_holders: tuple[int, ...] | None = None  # the last lock wait line shown
        self.said_at = 0.0

    def step(self, event: str, step: Step, elapsed: float) -> str | None:
        n, name = self.index.get(step.version, 0), step.file or str(step.version)
        at = f"{self.label}[{n}/{self.total}]"
        if event == "done":
            return f"{at} reverted {name} in {elapsed:.2f}s"
        if event == "failed":
            return f"{at} FAILED {name} after {elapsed:.2f}s"
        return f"{at} reverting {name} ..." if event == "start" else None

    def lock_wait(self, wait: GooseLockWait) -> str | None:
        news = wait.taken or self.said_holders != wait.holder_pids()
        if not news and wait.waited - self.said_at < _LOCK_WAIT_REPEAT:
            return None
        self.said_holders, self.said_at = wait.holder_pids(), wait.waited
        return f"{self.label}{wait.describe()}"


@contextmanager
def step_progress(
    plan: Plan, *, console: Console | None, say: Callable[[str], None], label: str = ""
) -> Iterator[EventCallback]:
    """Per-step progress: a rich bar on ``console`` (a terminal), else plain lines through
    ``say``; ``label`` starts every line (``rehearsal: `` for the steps run on the scratch copy).

    Waits for goose's lock inside the block are shown too (who holds it, how long it will be
    waited for); a finished bar says how many steps were reverted, never "reverting".
    """
    from migrator.lockholders import reporting_lock_waits

    lines = _StepLines(plan, label)
    if console is None:

        def plain(event: str, step: Step, elapsed: float) -> None:
            text = lines.step(event, step, elapsed)
            if text:
                say(text)

        def plain_wait(wait: GooseLockWait) -> None:
            text = lines.lock_wait(wait)
            if text:
                say(text)

        with reporting_lock_waits(plain_wait):
            yield plain
        return
    with _progress_bar(plan, console, lines) as (on_event, on_wait), reporting_lock_waits(on_wait):
        yield on_event


@contextmanager
def _progress_bar(
    plan: Plan, console: Console, lines: _StepLines
) -> Iterator[tuple[EventCallback, Callable[[GooseLockWait], None]]]:
    """The rich bar of :func:`step_progress`: its step and lock-wait callbacks."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    label, total = lines.label, len(plan.steps)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task(f"{label}starting", total=total)
        done: list[Step] = []
        failed: list[Step] = []

        def on_event(event: str, step: Step, elapsed: float) -> None:
            name = step.file or str(step.version)
            if event == "start":
                bar.update(task, description=f"{label}reverting {name}")
                return
            text = lines.step(event, step, elapsed)
            if text:
                bar.console.print(Text(text, style="red" if event == "failed" else ""))
            if event == "done":
                done.append(step)
                bar.advance(task)
                if len(done) == total:
                    bar.update(task, description=f"{label}reverted {total} step(s)")
            elif event == "failed":
                failed.append(step)
                bar.update(task, description=f"{label}FAILED at {name}")

        def on_wait(wait: GooseLockWait) -> None:
            text = lines.lock_wait(wait)
            if text:
                bar.console.print(Text(text))
            bar.update(
                task,
                description=f"{label}lock taken, starting"
                if wait.taken
                else f"{label}waiting for the goose lock (gives up in {wait.remaining:.0f} s)",
            )

        try:
            yield on_event, on_wait
        finally:
            if len(done) < total and not failed:  # stopped otherwise: lock lost, a signal
                bar.update(task, description=f"{label}stopped: {len(done)} of {total} reverted")

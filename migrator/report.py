"""Showing a downgrade plan: a rich table for people, and the exact SQL as a psql script.

``sql_script`` writes what the runner sends, in the order it sends it: per transactional step
``BEGIN``, the statements, the goose version-row ``DELETE`` and ``COMMIT``; per NO TRANSACTION
step the statements and the ``DELETE`` with no transaction around them.
"""

from __future__ import annotations

from collections.abc import Mapping

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from migrator.plan import Plan, Step
from migrator.sqlparser import ends_with_semicolon

__all__ = ["render_plan", "sql_script", "version_row_delete"]


def version_row_delete(version: int) -> str:
    """The statement goose runs after a step's down SQL."""
    return f"DELETE FROM goose_db_version WHERE version_id = {int(version)};"


def _notes(step: Step) -> list[Text]:
    lines: list[Text] = []
    if step.reason:
        style = "bold red" if step.blocked or step.status == "failed" else ""
        lines.append(Text(f"{step.status}: {step.reason}", style=style))
    lines += [Text(w, style="yellow" if w.startswith("data loss") else "") for w in step.warnings]
    return lines


def render_plan(plan: Plan, console: Console, *, header: Mapping[str, str] | None = None) -> None:
    """Print the plan for a person: header lines, one table row per step, each step's warnings
    and blocking reasons below the table (long sentences do not fit a table cell), the verdict."""
    fields = dict(header or {})
    if plan.source and "source" not in fields:
        fields["source"] = plan.source
    fields.setdefault("current", str(plan.from_version))
    fields.setdefault("target", str(plan.to_version))
    width = max(len(k) for k in fields)
    for key, value in fields.items():
        console.print(Text(f"{key + ':':<{width + 1}} {value}"))
    if plan.nothing_to_do or not plan.steps:
        console.print("nothing to do: the database is already at or below the target")
        return

    with_blobs = any(step.blob_sha for step in plan.steps)
    columns = ["version", "file", "kind", "runs", "transaction", "statements", "status"]
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for column in columns + (["blob"] if with_blobs else []):
        table.add_column(column, no_wrap=True)
    status_style = {"blocked": "bold red", "failed": "bold red", "done": "green"}
    for step in plan.steps:
        row: list[str | Text] = [
            str(step.version),
            Text(step.file or "(no file)"),
            step.kind,
            step.action,
            "yes" if step.transaction else "no",
            str(len(step.statements)),
            Text(step.status, style=status_style.get(step.status, "")),
        ]
        if with_blobs:
            row.append((step.blob_sha or "")[:12])
        table.add_row(*row)
    console.print(table)
    noted = [(step, _notes(step)) for step in plan.steps]
    if any(notes for _, notes in noted):
        console.print("warnings and blocking reasons:")
        for step, notes in noted:
            if notes:
                console.print(Text(f"  {step.version} {step.file or '(no file)'}"))
                for note in notes:
                    console.print(Text("    - ") + note, soft_wrap=True)
    blocked = len(plan.blocked_steps)
    if blocked:
        console.print(Text(f"plan is BLOCKED by {blocked} step(s)", style="bold red"))
    else:
        console.print(Text("plan can run", style="bold green"))


def _terminated(statement: str) -> str:
    """The statement with a ``;`` psql will see, even after a trailing ``--`` comment."""
    last_line = statement.rstrip().rsplit("\n", 1)[-1]
    # goose ended the statement on this line because its last word before any ``--`` word
    # ends with ``;``; psql then sees that ``;`` too, unless a block comment is involved.
    if ends_with_semicolon(last_line) and "/*" not in last_line:
        return statement.rstrip()
    return statement.rstrip() + "\n;"


def _comment(text: str) -> str:
    return "\n".join(f"-- {line}".rstrip() for line in text.splitlines() or [""])


def sql_script(plan: Plan) -> str:
    """The exact SQL of ``plan`` as a script for ``psql -v ON_ERROR_STOP=1 -f FILE``."""
    out = [
        _comment(
            f"hatchet-schema downgrade from {plan.from_version} to {plan.to_version}"
            + (f"\nsource: {plan.source}" if plan.source else "")
            + "\nrun with: psql -v ON_ERROR_STOP=1 -f THIS_FILE (never --single-transaction)"
        )
    ]
    if plan.blocked:
        out.append(
            _comment(
                f"THIS PLAN IS BLOCKED by {len(plan.blocked_steps)} step(s); "
                "hatchet-schema will not run it"
            )
        )
    stopped_at: Step | None = None
    total = len(plan.steps)
    for index, step in enumerate(plan.steps, start=1):
        title = (
            f"step {index}/{total}: version {step.version}, file {step.file or '(none)'}, "
            f"source {step.source or plan.source or '(unknown)'}"
        )
        if stopped_at is not None:
            out.append(
                _comment(f"{title}\nnot reached: step for version {stopped_at.version} is blocked")
            )
            continue
        if step.blocked:
            stopped_at = step
            out.append(
                _comment(f"{title}\nBLOCKED, cannot run: {step.reason or 'no reason given'}")
            )
            continue
        mode = "transaction" if step.transaction else "NO TRANSACTION: each statement on its own"
        notes = [f"runs: {step.action}"]
        if step.patch_reason:
            notes.append(f"patched: {step.patch_reason}")
        notes += [f"data loss: {what}" for what in step.data_loss]
        lines = [_comment(f"{title}\n{mode}\n" + "\n".join(notes))]
        if step.transaction:
            lines.append("BEGIN;")
        for statement in step.statements:
            if statement.strip():
                lines.append(_terminated(statement))
            else:
                lines.append("-- (empty statement: goose sends an empty query here)")
        lines.append(version_row_delete(step.version))
        if step.transaction:
            lines.append("COMMIT;")
        out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"

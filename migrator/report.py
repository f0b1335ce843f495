"""Showing a downgrade plan: a rich table for people, and the exact SQL as a psql script.

``sql_script`` (from :mod:`migrator.sqlscript`) writes what the runner sends, in the order it
sends it, as a psql script that is safe to run by hand.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from migrator.plan import Plan, Step
from migrator.sqlscript import ScriptSettings, sql_script, version_row_delete

__all__ = ["ScriptSettings", "render_plan", "sql_script", "version_row_delete", "way_forward"]


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

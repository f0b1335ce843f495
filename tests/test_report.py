"""The human plan: what a person reads (the SQL script: tests/test_sqlscript.py)."""

from __future__ import annotations

from rich.console import Console

from migrator.plan import Plan, Step
from migrator.report import render_plan
from tests.sample_plans import two_step_plan


def _render(plan: Plan, header: dict[str, str] | None = None) -> str:
    console = Console(record=True, width=200, color_system=None)
    render_plan(plan, console, header=header)
    return console.export_text()


def test_render_plan_shows_header_columns_and_verdict() -> None:
    text = _render(two_step_plan(), {"current": "3 (v0.72.0)", "target": "1 (v0.70.0)"})
    assert "current: 3 (v0.72.0)" in text
    assert "target:  1 (v0.70.0)" in text
    assert "source:  v0.71.0" in text
    for column in ("version", "file", "kind", "transaction", "statements", "status", "warnings"):
        assert column in text
    assert "00003_drop_t3.sql" in text
    assert "data loss: DROP TABLE t3" in text
    rows = [line for line in text.splitlines() if "00002_index.sql" in line]
    assert rows and " no " in rows[0] and " 2 " in rows[0] and "ready" in rows[0]
    assert text.rstrip().endswith("plan can run")


def test_render_plan_blocked_step_shows_reason() -> None:
    plan = two_step_plan()
    plan.steps.append(
        Step(
            version=1,
            file=None,
            kind="missing",
            transaction=True,
            status="blocked",
            reason="no migration file has version 1 (orphan row)",
        )
    )
    text = _render(plan)
    assert "blocked: no migration file has version 1 (orphan row)" in text
    assert "(no file)" in text
    assert text.rstrip().endswith("plan is BLOCKED by 1 step(s)")


def test_render_plan_nothing_to_do() -> None:
    assert "nothing to do" in _render(Plan(from_version=5, to_version=7))

"""The human plan: what a person reads (the SQL script: tests/test_sqlscript.py)."""

from __future__ import annotations

from rich.console import Console

from migrator.plan import Plan, Step
from migrator.report import render_plan


def _plan() -> Plan:
    return Plan(
        from_version=3,
        to_version=1,
        source="v0.71.0",
        steps=[
            Step(
                version=3,
                file="00003_drop_t3.sql",
                kind="sql",
                transaction=True,
                statements=[
                    "DROP TABLE t3;",
                    "",  # goose's empty-block quirk: an empty query
                    "-- +goose-free comment\nINSERT INTO log VALUES ('step 3') -- no semicolon",
                ],
                warnings=["data loss: DROP TABLE t3"],
                source="v0.71.0",
            ),
            Step(
                version=2,
                file="00002_index.sql",
                kind="sql",
                transaction=False,
                statements=["DROP INDEX t2_idx;", "INSERT INTO log VALUES ('step 2')"],
                warnings=[
                    "no transaction: runs statement by statement; a failure leaves "
                    "earlier statements applied"
                ],
            ),
        ],
    )


def _render(plan: Plan, header: dict[str, str] | None = None) -> str:
    console = Console(record=True, width=200, color_system=None)
    render_plan(plan, console, header=header)
    return console.export_text()


def test_render_plan_shows_header_columns_and_verdict() -> None:
    text = _render(_plan(), {"current": "3 (v0.72.0)", "target": "1 (v0.70.0)"})
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
    plan = _plan()
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

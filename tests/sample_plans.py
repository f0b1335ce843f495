"""A small hand-made plan shared by the tests of its two renderings: the human plan
(tests/test_report.py) and the SQL script (tests/test_sqlscript.py)."""

from __future__ import annotations

from migrator.plan import Plan, Step


def two_step_plan() -> Plan:
    """3 -> 1: a transactional step with goose's quirks (an empty statement, a last statement
    without a semicolon) and a NO TRANSACTION step."""
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

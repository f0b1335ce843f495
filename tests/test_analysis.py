"""Step warnings: each category, read from real SQL by PostgreSQL's parser."""

from __future__ import annotations

import pytest

from migrator.analysis import step_warnings
from migrator.sqlparser import ParsedSQL, parse_sql


def _down(*statements: str, tx: bool = True, present: bool = True) -> ParsedSQL:
    return ParsedSQL(list(statements), tx, present)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("DROP TABLE v1_log_line;", ["data loss: DROP TABLE v1_log_line"]),
        ("DROP TABLE IF EXISTS a, s.b;", ["data loss: DROP TABLE a", "data loss: DROP TABLE s.b"]),
        ("DROP TABLE t CASCADE;", ["data loss: DROP TABLE t CASCADE"]),
        (
            "ALTER TABLE v1_task DROP COLUMN retry_count;",
            ["data loss: DROP COLUMN v1_task.retry_count"],
        ),
        (
            "ALTER TABLE s.t ADD COLUMN a int, DROP COLUMN IF EXISTS b CASCADE;",
            ["data loss: DROP COLUMN s.t.b CASCADE"],
        ),
        ("DROP SCHEMA archive;", ["data loss: DROP SCHEMA archive"]),
        ("DROP MATERIALIZED VIEW mv;", ["data loss: DROP MATERIALIZED VIEW mv"]),
        ("TRUNCATE a, b;", ["data loss: TRUNCATE a", "data loss: TRUNCATE b"]),
        ("DELETE FROM v1_queue_item WHERE priority > 1;", ["data loss: DELETE FROM v1_queue_item"]),
        ("DROP TYPE v1_status CASCADE;", ["data loss: DROP TYPE v1_status CASCADE"]),
        ("DROP FUNCTION f(int) CASCADE;", ["data loss: DROP FUNCTION f(...) CASCADE"]),
        ("DROP TYPE v1_status;", []),
        ("DROP INDEX CONCURRENTLY ix;", []),
        ("DROP VIEW v;", []),
        ("ALTER TABLE t DROP CONSTRAINT c;", []),
        ("SELECT 1; DROP TABLE x;", ["data loss: DROP TABLE x"]),
        ("DO $$ BEGIN DROP TABLE hidden; END $$;", []),
        ("CREATE FUNCTION f() RETURNS void AS $$ DELETE FROM t $$ LANGUAGE sql;", []),
    ],
)
def test_data_loss(sql: str, expected: list[str]) -> None:
    assert step_warnings(kind="sql", down=_down(sql), up=None) == expected


def test_enum_values_added_by_the_up_are_irreversible() -> None:
    up = _down(
        "ALTER TYPE v1_task_status ADD VALUE 'CANCELLED';",
        "ALTER TYPE public.kind ADD VALUE IF NOT EXISTS 'X' BEFORE 'Y';",
        "ALTER TYPE kind RENAME VALUE 'a' TO 'b';",
    )
    assert step_warnings(kind="sql", down=_down("SELECT 1;"), up=up) == [
        "irreversible: enum value 'CANCELLED' added to v1_task_status by the up stays",
        "irreversible: enum value 'X' added to public.kind by the up stays",
    ]


def test_empty_and_missing_down() -> None:
    assert step_warnings(kind="sql", down=_down(), up=None) == [
        "empty down: the Down section has no statements; "
        "what the up created, changed or dropped stays as it is"
    ]
    assert step_warnings(kind="sql", down=_down("", ""), up=None) == [
        "empty down: the Down section has no statements; "
        "what the up created, changed or dropped stays as it is"
    ]
    assert step_warnings(kind="sql", down=_down(present=False), up=None) == [
        "missing down: no Down section; what the up created, changed or dropped stays as it is"
    ]


def test_no_transaction() -> None:
    warnings = step_warnings(
        kind="sql", down=_down("DROP INDEX CONCURRENTLY i;", tx=False), up=None
    )
    assert warnings == [
        "no transaction: runs statement by statement; a failure leaves earlier statements applied"
    ]


def test_go_migration() -> None:
    assert step_warnings(kind="go", down=None, up=None) == [
        "go: Go migration compiled into hatchet-migrate; no SQL to run",
        "no transaction: runs statement by statement; a failure leaves earlier statements applied",
    ]


def test_unparsable_statements_are_reported_not_fatal() -> None:
    down = _down("DROP TABLE a;", "THIS IS NOT SQL;", "DROP TABLE b;", "SELECT '\x00';")
    up = _down("ALTER TYPE e ADD VALUE 'v';", "garbage (")
    assert step_warnings(kind="sql", down=down, up=up) == [
        "data loss: DROP TABLE a",
        "unparsed: pglast could not read statement 2; not analysed",
        "data loss: DROP TABLE b",
        "unparsed: pglast could not read statement 4; not analysed",
        "irreversible: enum value 'v' added to e by the up stays",
        "unparsed: pglast could not read up statement 2; not analysed",
    ]


def test_every_warning_starts_with_a_known_category() -> None:
    text = (
        "-- +goose NO TRANSACTION\n-- +goose Up\nALTER TYPE s ADD VALUE 'n';\n"
        "-- +goose Down\n-- +goose StatementBegin\nDROP TABLE t;\nALTER TABLE u DROP COLUMN c;\n"
        "-- +goose StatementEnd\nwhat;\n"
    )
    warnings = step_warnings(
        kind="sql",
        down=parse_sql(text, filename="1_x.sql", direction="down"),
        up=parse_sql(text, filename="1_x.sql", direction="up"),
    )
    assert warnings == [
        "no transaction: runs statement by statement; a failure leaves earlier statements applied",
        "data loss: DROP TABLE t",
        "data loss: DROP COLUMN u.c",
        "unparsed: pglast could not read statement 2; not analysed",
        "irreversible: enum value 'n' added to s by the up stays",
    ]

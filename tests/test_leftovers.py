"""What an up leaves behind when its down is missing or empty: named from real SQL by pglast."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from migrator.leftovers import MAX_LISTED, left_behind, left_behind_warning


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("CREATE TABLE v1_foo (id bigint PRIMARY KEY);", ["table v1_foo"]),
        ("CREATE TABLE IF NOT EXISTS s.t (a int);", ["table s.t"]),
        ("CREATE TEMP TABLE scratch (a int);", []),
        ("CREATE TABLE p1 PARTITION OF p FOR VALUES IN (1);", ["table p1"]),
        ("CREATE INDEX ix_bar ON v1_task (a);", ["index ix_bar"]),
        ("CREATE INDEX ON v1_task (a);", ["index on v1_task"]),
        ("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS ux ON s.t (a);", ["index ux"]),
        ("ALTER TABLE v1_task ADD COLUMN baz int;", ["column v1_task.baz"]),
        (
            "ALTER TABLE v1_task ADD COLUMN IF NOT EXISTS a int, ADD COLUMN b text;",
            ["column v1_task.a", "column v1_task.b"],
        ),
        (
            "ALTER TABLE v1_task DROP COLUMN old;",
            ["column v1_task.old dropped by the up is not restored"],
        ),
        (
            "ALTER TABLE v1_task ALTER COLUMN x TYPE bigint;",
            ["type of column v1_task.x changed by the up is not restored"],
        ),
        ("ALTER TABLE t ALTER c SET DEFAULT now();", ["default of t.c"]),
        (
            "ALTER TABLE t ALTER c DROP DEFAULT;",
            ["default of t.c dropped by the up is not restored"],
        ),
        ("ALTER TABLE t ALTER c SET NOT NULL;", ["NOT NULL on t.c"]),
        ("ALTER TABLE t ALTER c DROP NOT NULL;", ["NOT NULL dropped from t.c is not restored"]),
        ("ALTER TABLE t ADD CONSTRAINT k CHECK (a > 0);", ["constraint k on t"]),
        ("ALTER TABLE t ADD UNIQUE (a);", ["UNIQUE constraint on t"]),
        ("ALTER TABLE t ADD FOREIGN KEY (a) REFERENCES p;", ["FOREIGN KEY constraint on t"]),
        ("ALTER TABLE t DROP CONSTRAINT k;", ["constraint t.k dropped by the up is not restored"]),
        ("ALTER TABLE t ENABLE ROW LEVEL SECURITY;", ["change to t (enable row security)"]),
        ("ALTER INDEX ix SET (fillfactor = 50);", ["change to index ix (set rel options)"]),
        ("ALTER TABLE t ATTACH PARTITION p FOR VALUES IN (1);", ["partition p attached to t"]),
        ("CREATE TYPE v1_status AS ENUM ('A', 'B');", ["type v1_status"]),
        ("CREATE TYPE s.pair AS (a int, b int);", ["type s.pair"]),
        ("CREATE DOMAIN positive AS int CHECK (VALUE > 0);", ["domain positive"]),
        ("ALTER TYPE v1_status ADD VALUE 'C';", ["enum label 'C' of v1_status"]),
        (
            "ALTER TYPE v1_status ADD VALUE IF NOT EXISTS 'C' BEFORE 'A';",
            ["enum label 'C' of v1_status"],
        ),
        (
            "ALTER TYPE v1_status RENAME VALUE 'A' TO 'Z';",
            ["enum label 'A' of v1_status renamed to 'Z'"],
        ),
        (
            "CREATE OR REPLACE FUNCTION s.f(a int) RETURNS int LANGUAGE sql AS 'SELECT a';",
            ["function s.f(...)"],
        ),
        ("CREATE PROCEDURE p() LANGUAGE sql AS '';", ["procedure p(...)"]),
        (
            "CREATE TRIGGER tr BEFORE INSERT ON v1_task FOR EACH ROW EXECUTE FUNCTION f();",
            ["trigger tr on v1_task"],
        ),
        ("CREATE OR REPLACE VIEW v AS SELECT 1;", ["view v"]),
        ("CREATE MATERIALIZED VIEW mv AS SELECT 1;", ["materialized view mv"]),
        ("CREATE TABLE copy AS SELECT * FROM t;", ["table copy"]),
        ("SELECT * INTO copy2 FROM t;", ["table copy2"]),
        ("CREATE SEQUENCE seq;", ["sequence seq"]),
        ("ALTER SEQUENCE seq RESTART;", ["change to sequence seq"]),
        ("CREATE SCHEMA archive;", ["schema archive"]),
        ("CREATE EXTENSION IF NOT EXISTS pgcrypto;", ["extension pgcrypto"]),
        ("CREATE POLICY p ON t USING (true);", ["policy p on t"]),
        (
            "CREATE EVENT TRIGGER et ON ddl_command_start EXECUTE FUNCTION f();",
            ["event trigger et"],
        ),
        ("ALTER TABLE t RENAME TO u;", ["table t renamed to u by the up"]),
        ("ALTER TABLE t RENAME COLUMN a TO b;", ["column t.a renamed to b by the up"]),
        ("ALTER TABLE t SET SCHEMA archive;", ["table t moved to schema archive"]),
        ("DROP INDEX ix;", ["index ix dropped by the up is not restored"]),
        (
            "DROP TABLE IF EXISTS a, b;",
            [f"table {n} dropped by the up is not restored" for n in "ab"],
        ),
        ("COMMENT ON TABLE t IS 'x';", ["comment on table t"]),
        ("GRANT SELECT ON t TO r;", ["privileges granted on table t"]),
        ("INSERT INTO settings VALUES (1);", ["rows inserted into settings"]),
        ("UPDATE t SET a = 1;", ["rows of t updated by the up are not restored"]),
        ("DELETE FROM t;", ["rows of t deleted by the up are not restored"]),
        ("TRUNCATE t;", ["rows of t truncated by the up are not restored"]),
        ("CREATE PUBLICATION pub FOR ALL TABLES;", ["effects of a create publication statement"]),
        ("SET lock_timeout = '1s'; SELECT 1; BEGIN; COMMIT;", []),
        ("DO $$ BEGIN CREATE TABLE hidden (a int); END $$;", ["1 DO block(s) not analysed"]),
        ("CREATE TABEL oops (a int);", ["1 statement(s) not analysed"]),
        ("", []),
    ],
)
def test_left_behind_names_each_kind(sql: str, expected: list[str]) -> None:
    assert left_behind([sql]) == expected


def test_a_created_table_covers_what_goes_with_it() -> None:
    up = [
        "CREATE TABLE v1_foo (id bigint PRIMARY KEY, a text);",
        "CREATE INDEX ix_foo_a ON v1_foo (a);",
        "ALTER TABLE v1_foo ADD COLUMN b int, ADD CONSTRAINT k CHECK (b > 0);",
        "CREATE TRIGGER tr AFTER INSERT ON v1_foo FOR EACH ROW EXECUTE FUNCTION f();",
        "INSERT INTO v1_foo VALUES (1, 'x', 2);",
        "ALTER TABLE v1_foo RENAME TO v1_bar;",
        "CREATE INDEX ix_bar_b ON v1_bar (b);",
        "CREATE TYPE st AS ENUM ('a');",
        "ALTER TYPE st ADD VALUE 'b';",
        "CREATE INDEX ix_other ON public.other (a);",
    ]
    assert left_behind(up) == ["table v1_bar", "type st", "index ix_other"]


def test_repeats_are_named_once_and_unreadable_statements_are_counted() -> None:
    up = [
        "ALTER TABLE t ADD COLUMN a int;",
        "not sql at all",
        "ALTER TABLE t ADD COLUMN IF NOT EXISTS a int;",
        "also not sql",
        "   ",
    ]
    assert left_behind(up) == ["column t.a", "2 statement(s) not analysed"]


def test_names_keep_case_and_schema_as_postgresql_folds_them() -> None:
    up = ['CREATE TABLE "Mixed"."Case" (a int); ALTER TABLE Plain ADD COLUMN "Col" int;']
    assert left_behind(up) == ["table Mixed.Case", "column plain.Col"]


def test_warning_lists_what_stays() -> None:
    up = ["CREATE TABLE v1_foo (a int);", "CREATE INDEX ix_bar ON v1_task (a);"]
    assert left_behind_warning("missing", up) == (
        "missing down: no Down section; what the up created or changed stays: "
        "table v1_foo, index ix_bar"
    )
    assert left_behind_warning("empty", up).startswith(
        "empty down: the Down section has no statements; what the up created or changed stays: "
    )


def test_warning_when_nothing_is_named() -> None:
    assert left_behind_warning("empty", []) == (
        "empty down: the Down section has no statements; the up has no statements either, "
        "so nothing stays behind"
    )
    assert left_behind_warning("missing", ["SELECT 1;"]) == (
        "missing down: no Down section; the up changes nothing that outlives its session"
    )


@given(st.integers(min_value=1, max_value=40))
def test_warning_caps_the_list(n: int) -> None:
    up = [f"CREATE TABLE t{i} (a int);" for i in range(n)]
    line = left_behind_warning("missing", up)
    listed = line.split("stays: ", 1)[1]
    shown = min(n, MAX_LISTED)
    assert listed.count("table t") == shown
    assert line.count("\n") == 0
    if n > MAX_LISTED:
        assert listed.endswith(f"table t{MAX_LISTED - 1} and {n - MAX_LISTED} more")
    else:
        assert listed.endswith(f"table t{n - 1}")


@given(st.lists(st.text(max_size=40), max_size=8))
def test_never_raises_on_arbitrary_text(statements: list[str]) -> None:
    phrases = left_behind(statements)
    assert len(phrases) == len(set(phrases))
    assert left_behind_warning("empty", statements).startswith("empty down:")

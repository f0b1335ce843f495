"""Rows a down would fail on, on real PostgreSQL: each fix is counted through a read-only
catalog, run, and followed by the down, which must then succeed having lost exactly the rows
announced."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migrator.datacheck import count, data_conflicts, quote_ident, quote_literal
from migrator.profile import DataFix, EmptyCatalog

DB_SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


class ReadOnlyCatalog:
    """A catalog over its own connection whose every transaction is read-only."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(
            url, autocommit=True, options="-c default_transaction_read_only=on"
        )

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.conn.cursor() as cur:
            cur.execute(sql, tuple(params))
            return list(cur.fetchall()) if cur.description else []


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def catalog(database_url: str) -> Iterator[ReadOnlyCatalog]:
    cat = ReadOnlyCatalog(database_url)
    try:
        yield cat
    finally:
        cat.conn.close()


@dataclass
class Outcome:
    fixes: list[DataFix]
    counts: list[int]
    before: dict[Any, tuple[Any, ...]]
    after: dict[Any, tuple[Any, ...]]

    @property
    def gone(self) -> set[Any]:
        return set(self.before) - set(self.after)

    @property
    def announced(self) -> int:
        return sum(n for fix, n in zip(self.fixes, self.counts, strict=True) if fix.statement)


def _rows(conn: psycopg.Connection[Any], table: str) -> dict[Any, tuple[Any, ...]]:
    return {row[0]: row for row in conn.execute(f"SELECT * FROM {table}").fetchall()}


def _down_fails(conn: psycopg.Connection[Any], down: list[str]) -> bool:
    try:
        with conn.transaction(force_rollback=True):
            for sql in down:
                conn.execute(sql)
    except psycopg.Error:
        return True
    return False


def downgrade(
    conn: psycopg.Connection[Any], catalog: ReadOnlyCatalog, down: list[str], table: str
) -> Outcome:
    """Count and run the fixes, then the down, in one transaction; rows are keyed by column 1."""
    before = _rows(conn, table)
    assert _down_fails(conn, down), "the case must need a fix"
    fixes = data_conflicts(down, catalog)
    counts = [count(catalog, fix) for fix in fixes]
    with conn.transaction():
        for fix, n in zip(fixes, counts, strict=True):
            if n:
                assert fix.statement, f"blocked: {fix.describe(n)}"
                conn.execute(fix.statement)
        for sql in down:
            conn.execute(sql)
    return Outcome(fixes, counts, before, _rows(conn, table))


def deleted_exactly(outcome: Outcome, ids: set[Any], *, same_rows: bool = True) -> None:
    """Exactly ``ids`` went, as many as announced; the others are as they were."""
    assert outcome.gone == ids
    assert outcome.announced == len(ids)
    if same_rows:
        for key, row in outcome.after.items():
            assert outcome.before[key] == row


# SET NOT NULL ---------------------------------------------------------------------------------


def test_set_not_null_without_default_deletes_the_null_rows(db: Any, catalog: Any) -> None:
    db.execute("CREATE TABLE v1_task (id int PRIMARY KEY, c text)")
    db.execute("INSERT INTO v1_task VALUES (1, 'a'), (2, NULL), (3, NULL)")
    out = downgrade(db, catalog, ["ALTER TABLE v1_task ALTER COLUMN c SET NOT NULL;"], "v1_task")
    deleted_exactly(out, {2, 3})
    [fix] = out.fixes
    assert fix.table == "v1_task"
    assert fix.condition == "c IS NULL"
    assert fix.statement == "DELETE FROM v1_task WHERE c IS NULL"
    assert fix.reason.startswith("v1_task.c becomes NOT NULL")
    assert fix.describe(2).startswith("2 row(s) of v1_task where c IS NULL: ")


def test_set_not_null_with_a_default_now_sets_the_default(db: Any, catalog: Any) -> None:
    db.execute("CREATE TABLE v1_task (id int PRIMARY KEY, c text DEFAULT 'none')")
    db.execute("INSERT INTO v1_task VALUES (1, 'a'), (2, NULL)")
    out = downgrade(db, catalog, ["ALTER TABLE v1_task ALTER c SET NOT NULL"], "v1_task")
    assert out.fixes[0].statement == "UPDATE v1_task SET c = DEFAULT WHERE c IS NULL"
    assert out.counts == [1]
    assert out.after == {1: (1, "a"), 2: (2, "none")}


def test_set_not_null_uses_the_default_the_down_sets_first(db: Any, catalog: Any) -> None:
    db.execute("CREATE TABLE t (id int PRIMARY KEY, n int)")
    db.execute("INSERT INTO t VALUES (1, 5), (2, NULL)")
    down = ["ALTER TABLE t ALTER n SET DEFAULT 7;", "ALTER TABLE t ALTER n SET NOT NULL;"]
    out = downgrade(db, catalog, down, "t")
    assert out.fixes[0].statement == "UPDATE t SET n = 7 WHERE n IS NULL"
    assert out.after == {1: (1, 5), 2: (2, 7)}


def test_renames_in_the_down_are_followed_back(db: Any, catalog: Any) -> None:
    db.execute("CREATE TABLE new_name (id int PRIMARY KEY, new_col int)")
    db.execute("INSERT INTO new_name VALUES (1, 1), (2, NULL)")
    down = [
        "ALTER TABLE new_name RENAME TO old_name;",
        "ALTER TABLE old_name RENAME COLUMN new_col TO old_col;",
        "ALTER TABLE old_name ALTER old_col SET NOT NULL, ADD CHECK (old_col > 1);",
    ]
    before = _rows(db, "new_name")
    fixes = data_conflicts(down, catalog)
    assert [f.table for f in fixes] == ["new_name", "new_name"]
    assert [count(catalog, f) for f in fixes] == [1, 1]
    with db.transaction():
        for fix in fixes:
            db.execute(fix.statement)
        for sql in down:
            db.execute(sql)
    assert before and _rows(db, "old_name") == {}


# ADD COLUMN NOT NULL ----------------------------------------------------------------------------


def test_add_not_null_column_without_default_blocks(db: Any, catalog: Any) -> None:
    db.execute("CREATE TABLE t (id int); CREATE TABLE empty (id int)")
    db.execute("INSERT INTO t VALUES (1), (2)")
    down = [
        "ALTER TABLE t ADD COLUMN c int NOT NULL;",
        "ALTER TABLE empty ADD COLUMN c int PRIMARY KEY;",
        "ALTER TABLE t ADD COLUMN d int NOT NULL DEFAULT 0, ADD COLUMN e serial NOT NULL;",
        "ALTER TABLE t ADD COLUMN f int GENERATED ALWAYS AS IDENTITY NOT NULL;",
        "ALTER TABLE t ADD COLUMN g int GENERATED ALWAYS AS (id + 1) STORED NOT NULL;",
        "ALTER TABLE t ADD COLUMN h int DEFAULT NULL NOT NULL;",
    ]
    fixes = data_conflicts(down, catalog)
    assert [(f.table, f.statement) for f in fixes] == [("t", ""), ("empty", ""), ("t", "")]
    assert [count(catalog, f) for f in fixes] == [2, 0, 2]
    assert "t.c is added NOT NULL without a default" in fixes[0].reason


def test_add_column_if_not_exists_counts_nothing_when_the_column_is_there(
    db: Any, catalog: Any
) -> None:
    db.execute("CREATE TABLE t (id int, c int); INSERT INTO t VALUES (1, 1)")
    [there] = data_conflicts(["ALTER TABLE t ADD COLUMN IF NOT EXISTS c int NOT NULL"], catalog)
    [absent] = data_conflicts(["ALTER TABLE t ADD COLUMN IF NOT EXISTS x int NOT NULL"], catalog)
    assert (count(catalog, there), count(catalog, absent)) == (0, 1)


# CHECK ------------------------------------------------------------------------------------------


def test_check_deletes_failing_rows_and_keeps_nulls(db: Any, catalog: Any) -> None:
    db.execute("CREATE TABLE t (id int PRIMARY KEY, n int, s text)")
    db.execute("INSERT INTO t VALUES (1, 1, 'a%'), (2, -1, 'b%'), (3, NULL, 'c%'), (4, 2, 'd')")
    down = ["ALTER TABLE t ADD CONSTRAINT k CHECK (n > 0 AND s LIKE '%\\%')"]
    out = downgrade(db, catalog, down, "t")
    deleted_exactly(out, {2, 4})
    [fix] = out.fixes
    assert fix.condition == "NOT (n > 0 AND s LIKE '%\\%')"
    assert "%%" in fix.count_sql and "%%" not in fix.statement
    assert fix.reason.startswith("constraint k CHECK (n > 0 AND s LIKE '%\\%') is added")


def test_not_valid_check_is_checked_when_validated(db: Any, catalog: Any) -> None:
    db.execute("CREATE TABLE t (id int PRIMARY KEY, n int)")
    db.execute("INSERT INTO t VALUES (1, 1), (2, -1)")
    db.execute("ALTER TABLE t ADD CONSTRAINT old CHECK (n <> 1) NOT VALID")
    down = [
        "ALTER TABLE t ADD CONSTRAINT pos CHECK (n > 0) NOT VALID;",
        "ALTER TABLE t VALIDATE CONSTRAINT pos;",
        "ALTER TABLE t VALIDATE CONSTRAINT old;",
    ]
    out = downgrade(db, catalog, down, "t")
    deleted_exactly(out, {1, 2})
    assert [f.condition for f in out.fixes] == ["NOT (n > 0)", "NOT (n <> 1)"]


@DB_SETTINGS
@given(st.lists(st.one_of(st.none(), st.integers(-5, 15)), max_size=12))
def test_check_property(db: Any, catalog: Any, values: list[int | None]) -> None:
    db.execute("DROP TABLE IF EXISTS prop; CREATE TABLE prop (id int, v int)")
    with db.cursor() as cur:
        cur.executemany("INSERT INTO prop VALUES (%s, %s)", list(enumerate(values)))
    [fix] = data_conflicts(["ALTER TABLE prop ADD CHECK (v BETWEEN 0 AND 10)"], catalog)
    failing = {i for i, v in enumerate(values) if v is not None and not 0 <= v <= 10}
    assert count(catalog, fix) == len(failing)
    with db.transaction():
        db.execute(fix.statement)
        db.execute("ALTER TABLE prop ADD CHECK (v BETWEEN 0 AND 10)")
    assert set(_rows(db, "prop")) == set(range(len(values))) - failing


# UNIQUE, PRIMARY KEY, UNIQUE INDEX --------------------------------------------------------------


def test_unique_constraint_keeps_the_first_of_each_key(db: Any, catalog: Any) -> None:
    db.execute("CREATE TABLE t (id int, a int, b text)")
    db.execute(
        "INSERT INTO t VALUES (1, 1, 'x'), (2, 1, 'x'), (3, 1, 'y'), (4, NULL, 'x'), "
        "(5, NULL, 'x'), (6, 1, 'x')"
    )
    out = downgrade(db, catalog, ["ALTER TABLE t ADD CONSTRAINT u UNIQUE (a, b)"], "t")
    deleted_exactly(out, {2, 6})
    assert out.fixes[0].condition == "(a, b) repeats a row with a lower ctid"


def test_unique_nulls_not_distinct(db: Any, catalog: Any) -> None:
    db.execute("CREATE TABLE t (id int, a int)")
    db.execute("INSERT INTO t VALUES (1, NULL), (2, NULL), (3, 1)")
    out = downgrade(db, catalog, ["ALTER TABLE t ADD UNIQUE NULLS NOT DISTINCT (a)"], "t")
    deleted_exactly(out, {2})


def test_primary_key_deletes_null_keys_and_duplicates(db: Any, catalog: Any) -> None:
    db.execute("CREATE TABLE t (id int, k int, v text)")
    db.execute("INSERT INTO t VALUES (1, 1, 'a'), (2, NULL, 'b'), (3, 1, 'c'), (4, 2, 'd')")
    out = downgrade(db, catalog, ["ALTER TABLE t ADD PRIMARY KEY (k)"], "t")
    deleted_exactly(out, {2, 3})
    assert [f.condition for f in out.fixes] == ["k IS NULL", "(k) repeats a row with a lower ctid"]


def test_partial_expression_unique_index(db: Any, catalog: Any) -> None:
    db.execute("CREATE TABLE t (id int, name text, live bool)")
    db.execute(
        "INSERT INTO t VALUES (1, 'A', true), (2, 'a', true), (3, 'a', false), "
        "(4, 'b', true), (5, 'a', false)"
    )
    down = ["CREATE UNIQUE INDEX ux ON t (lower(name)) WHERE live"]
    out = downgrade(db, catalog, down, "t")
    deleted_exactly(out, {2})
    assert out.fixes[0].condition == "(lower(name)) repeats a row with a lower ctid and live"
    assert out.fixes[0].reason.startswith("unique index ux needs (lower(name)) unique")


@DB_SETTINGS
@given(
    st.lists(st.tuples(st.sampled_from([None, 1, 2]), st.sampled_from([None, "x"])), max_size=10),
    st.booleans(),
)
def test_unique_property(
    db: Any, catalog: Any, pairs: list[tuple[int | None, str | None]], nnd: bool
) -> None:
    db.execute("DROP TABLE IF EXISTS prop; CREATE TABLE prop (id int, a int, b text)")
    with db.cursor() as cur:
        cur.executemany(
            "INSERT INTO prop VALUES (%s, %s, %s)", [(i, a, b) for i, (a, b) in enumerate(pairs)]
        )
    nulls = " NULLS NOT DISTINCT" if nnd else ""
    down = [f"CREATE UNIQUE INDEX prop_u ON prop (a, b){nulls}"]
    [fix] = data_conflicts(down, catalog)
    seen: set[tuple[int | None, str | None]] = set()
    expected: set[int] = set()
    for i, pair in enumerate(pairs):
        if not nnd and None in pair:
            continue
        if pair in seen:
            expected.add(i)
        seen.add(pair)
    assert count(catalog, fix) == len(expected)
    with db.transaction():
        db.execute(fix.statement)
        db.execute(down[0])
    assert set(_rows(db, "prop")) == set(range(len(pairs))) - expected


# FOREIGN KEY ------------------------------------------------------------------------------------


def test_foreign_key_deletes_rows_without_a_referenced_row(db: Any, catalog: Any) -> None:
    db.execute("CREATE TABLE parent (id int PRIMARY KEY); INSERT INTO parent VALUES (1)")
    db.execute("CREATE TABLE child (id int, parent_id int)")
    db.execute("INSERT INTO child VALUES (1, 1), (2, 2), (3, NULL), (4, 3)")
    down = ["ALTER TABLE child ADD CONSTRAINT fk FOREIGN KEY (parent_id) REFERENCES parent"]
    out = downgrade(db, catalog, down, "child")
    deleted_exactly(out, {2, 4})
    assert out.fixes[0].condition == "(parent_id) has no row in parent (id)"


def test_foreign_key_match_full_and_match_simple(db: Any, catalog: Any) -> None:
    db.execute("CREATE TABLE p (a int, b int, UNIQUE (a, b)); INSERT INTO p VALUES (1, 1)")
    db.execute("CREATE TABLE c (id int, a int, b int)")
    db.execute("INSERT INTO c VALUES (1, 1, 1), (2, 1, NULL), (3, NULL, NULL), (4, 2, 2)")
    db.execute("CREATE TABLE c2 AS SELECT * FROM c")
    full = ["ALTER TABLE c ADD FOREIGN KEY (a, b) REFERENCES p (a, b) MATCH FULL"]
    deleted_exactly(downgrade(db, catalog, full, "c"), {2, 4})
    simple = ["ALTER TABLE c2 ADD FOREIGN KEY (a, b) REFERENCES p (a, b)"]
    deleted_exactly(downgrade(db, catalog, simple, "c2"), {4})


def test_foreign_key_to_a_table_the_down_creates(db: Any, catalog: Any) -> None:
    db.execute("CREATE TABLE child (id int, ref int)")
    db.execute("INSERT INTO child VALUES (1, 1), (2, NULL)")
    down = [
        "CREATE TABLE legacy (id int PRIMARY KEY);",
        "ALTER TABLE child ADD FOREIGN KEY (ref) REFERENCES legacy;",
    ]
    out = downgrade(db, catalog, down, "child")
    deleted_exactly(out, {1})
    assert out.fixes[0].condition == "(ref) is set and legacy is created empty by the down"


def test_not_valid_foreign_key_validated_from_the_catalog(db: Any, catalog: Any) -> None:
    db.execute("CREATE TABLE p (id int PRIMARY KEY); INSERT INTO p VALUES (1)")
    db.execute("CREATE TABLE c (id int, p_id int); INSERT INTO c VALUES (1, 1), (2, 5)")
    db.execute("ALTER TABLE c ADD CONSTRAINT fk FOREIGN KEY (p_id) REFERENCES p NOT VALID")
    out = downgrade(db, catalog, ["ALTER TABLE c VALIDATE CONSTRAINT fk"], "c")
    deleted_exactly(out, {2})


def _orphans(parents: list[int | None]) -> set[int]:
    """Rows of a self-referencing table whose chain of parents reaches a missing row."""
    ids = set(range(len(parents)))
    bad: set[int] = set()
    changed = True
    while changed:
        changed = False
        for i, p in enumerate(parents):
            if i not in bad and p is not None and (p not in ids or p in bad):
                bad.add(i)
                changed = True
    return bad


@DB_SETTINGS
@given(st.lists(st.one_of(st.none(), st.integers(0, 12)), max_size=10))
def test_self_referencing_foreign_key_property(
    db: Any, catalog: Any, parents: list[int | None]
) -> None:
    db.execute("DROP TABLE IF EXISTS tree; CREATE TABLE tree (id int PRIMARY KEY, parent int)")
    with db.cursor() as cur:
        cur.executemany("INSERT INTO tree VALUES (%s, %s)", list(enumerate(parents)))
    down = ["ALTER TABLE tree ADD FOREIGN KEY (parent) REFERENCES tree (id)"]
    [fix] = data_conflicts(down, catalog)
    expected = _orphans(parents)
    assert count(catalog, fix) == len(expected)
    with db.transaction():
        db.execute(fix.statement)
        db.execute(down[0])
    assert set(_rows(db, "tree")) == set(range(len(parents))) - expected


# Column types -----------------------------------------------------------------------------------


def test_enum_created_by_the_down(db: Any, catalog: Any) -> None:
    db.execute("CREATE TYPE v1_status AS ENUM ('QUEUED', 'RUNNING', 'EVICTED')")
    db.execute("CREATE TABLE v1_task (id int, status v1_status, note text)")
    db.execute("INSERT INTO v1_task VALUES (1, 'QUEUED', 'x'), (2, 'EVICTED', 'y'), (3, NULL, 'z')")
    down = [
        "ALTER TYPE v1_status RENAME TO v1_status_new;",
        "CREATE TYPE v1_status AS ENUM ('QUEUED', 'RUNNING');",
        "ALTER TABLE v1_task ALTER COLUMN status TYPE v1_status USING status::text::v1_status;",
        "DROP TYPE v1_status_new;",
    ]
    out = downgrade(db, catalog, down, "v1_task")
    deleted_exactly(out, {2})
    assert out.fixes[0].condition == "(CAST(status AS text))::text NOT IN ('QUEUED', 'RUNNING')"


def test_enum_from_the_catalog_with_a_case_using(db: Any, catalog: Any) -> None:
    db.execute("CREATE TYPE kind AS ENUM ('a', 'b')")
    db.execute("CREATE TABLE t (id int, k text)")
    db.execute("INSERT INTO t VALUES (1, 'a'), (2, 'new'), (3, 'c'), (4, 'b')")
    down = ["ALTER TABLE t ALTER k TYPE kind USING (CASE WHEN k = 'new' THEN 'b' ELSE k END)::kind"]
    out = downgrade(db, catalog, down, "t")
    deleted_exactly(out, {3}, same_rows=False)
    assert out.after == {1: (1, "a"), 2: (2, "b"), 4: (4, "b")}


def test_enum_labels_added_in_the_down_count(db: Any, catalog: Any) -> None:
    db.execute("CREATE TABLE t (id int, k text); INSERT INTO t VALUES (1, 'a'), (2, 'c')")
    down = [
        "CREATE TYPE e AS ENUM ('a');",
        "ALTER TYPE e ADD VALUE 'c';",
        "ALTER TABLE t ALTER k TYPE e USING k::e;",
    ]
    [fix] = data_conflicts(down, catalog)
    assert count(catalog, fix) == 0
    assert fix.condition == "(k)::text NOT IN ('a', 'c')"


@DB_SETTINGS
@given(st.lists(st.text(alphabet="ab ", max_size=6), max_size=8))
def test_varchar_narrowing_property(db: Any, catalog: Any, values: list[str]) -> None:
    db.execute("DROP TABLE IF EXISTS prop; CREATE TABLE prop (id int, s text)")
    with db.cursor() as cur:
        cur.executemany("INSERT INTO prop VALUES (%s, %s)", list(enumerate(values)))
    down = ["ALTER TABLE prop ALTER s TYPE varchar(3)"]
    [fix] = data_conflicts(down, catalog)
    expected = {i for i, s in enumerate(values) if len(s.rstrip(" ")) > 3}
    assert count(catalog, fix) == len(expected)
    with db.transaction():
        db.execute(fix.statement)
        db.execute(down[0])
    assert set(_rows(db, "prop")) == set(range(len(values))) - expected


def test_integer_narrowing(db: Any, catalog: Any) -> None:
    db.execute("CREATE TABLE t (id int, big bigint, num numeric)")
    db.execute(
        "INSERT INTO t VALUES (1, 1, 2147483647.4), (2, 40000, 1), (3, -32768, 2147483647.5), "
        "(4, NULL, -2147483648.5)"
    )
    down = ["ALTER TABLE t ALTER big TYPE smallint, ALTER num TYPE integer"]
    out = downgrade(db, catalog, down, "t")
    deleted_exactly(out, {2, 3, 4}, same_rows=False)
    assert out.after == {1: (1, 1, 2147483647)}
    assert [f.condition for f in out.fixes] == [
        "big NOT BETWEEN -32768 AND 32767",
        "round(num) NOT BETWEEN -2147483648 AND 2147483647",
    ]


# Names ------------------------------------------------------------------------------------------


def test_quoted_and_schema_qualified_names(db: Any, catalog: Any) -> None:
    db.execute('CREATE SCHEMA "Arch"; CREATE TABLE "Arch"."order" (id int, "user" text, "Ab" int)')
    db.execute(
        "INSERT INTO \"Arch\".\"order\" VALUES (1, NULL, 1), (2, 'x', 1), (3, 'x', 1), (4, 'y', 2)"
    )
    down = [
        'ALTER TABLE "Arch"."order" ALTER "user" SET NOT NULL;',
        'CREATE UNIQUE INDEX ON "Arch"."order" ("user");',
        'ALTER TABLE "Arch"."order" ADD CHECK ("Ab" < 2);',
    ]
    out = downgrade(db, catalog, down, '"Arch"."order"')
    deleted_exactly(out, {1, 3, 4})
    assert {f.table for f in out.fixes} == {'"Arch"."order"'}
    assert out.fixes[0].reason.startswith('"Arch"."order"."user" becomes NOT NULL')


def test_quoting_helpers() -> None:
    assert [quote_ident(n) for n in ["plain", "Mixed", "user", "a b", 'q"t', "_x1"]] == [
        "plain",
        '"Mixed"',
        '"user"',
        '"a b"',
        '"q""t"',
        "_x1",
    ]
    assert quote_literal("it's") == "'it''s'"


# What is left alone -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "down",
    [
        ["CREATE TABLE t (a int);", "ALTER TABLE t ALTER a SET NOT NULL;"],
        ["DROP TABLE t;", "CREATE TABLE t (a int);", "ALTER TABLE t ADD CHECK (a > 0);"],
        ["UPDATE t SET a = 0 WHERE a IS NULL;", "ALTER TABLE t ALTER a SET NOT NULL;"],
        ["DELETE FROM t WHERE a IS NULL;", "ALTER TABLE t ALTER a SET NOT NULL;"],
        ["WITH d AS (DELETE FROM t RETURNING 1) SELECT 1;", "ALTER TABLE t ADD UNIQUE (a);"],
        ["TRUNCATE t;", "ALTER TABLE t ADD COLUMN b int NOT NULL;"],
        ["DO $$ BEGIN UPDATE T SET a = 1; END $$;", "ALTER TABLE t ALTER a SET NOT NULL;"],
        ["not sql touching t", "ALTER TABLE t ALTER a SET NOT NULL;"],
        ["ALTER TABLE t ADD COLUMN b int;", "ALTER TABLE t ALTER b SET NOT NULL;"],
        ["ALTER TABLE t ADD COLUMN b int DEFAULT 0, ADD CHECK (b > 0);"],
        ["ALTER TABLE t ADD COLUMN b int REFERENCES p, ADD COLUMN c int UNIQUE;"],
        ["INSERT INTO p VALUES (1);", "ALTER TABLE t ADD FOREIGN KEY (a) REFERENCES p (id);"],
        ["ALTER TABLE t ADD CONSTRAINT k CHECK (a > 0) NOT VALID;"],
        ["ALTER TABLE t ADD CONSTRAINT u UNIQUE USING INDEX ix;"],
        ["ALTER TABLE t ADD EXCLUDE USING gist (a WITH =);"],
        ["ALTER TABLE t ALTER a TYPE bigint, ALTER b TYPE text;"],
        ["ALTER TABLE t ALTER a TYPE varchar(3) USING a::varchar(3);"],
        ["ALTER TABLE t ALTER a TYPE unknown_type[];"],
        ["CREATE INDEX ON t (a);", "SELECT 1;", ""],
    ],
)
def test_nothing_to_fix(down: list[str]) -> None:
    assert data_conflicts(down, EmptyCatalog()) == []


def test_the_down_s_own_repair_is_not_preempted(db: Any, catalog: Any) -> None:
    db.execute("CREATE TABLE t (id int, a int); INSERT INTO t VALUES (1, NULL)")
    down = ["UPDATE t SET a = 0 WHERE a IS NULL;", "ALTER TABLE t ALTER a SET NOT NULL;"]
    assert data_conflicts(down, catalog) == []


# count() ----------------------------------------------------------------------------------------


def test_count_is_zero_for_a_missing_table_or_a_failing_query(db: Any, catalog: Any) -> None:
    db.execute("CREATE TABLE t (id int); INSERT INTO t VALUES (1)")
    ok = DataFix("t", "TRUE", "r", "DELETE FROM t", "SELECT count(*) FROM t")
    missing = DataFix("nowhere", "TRUE", "r", "", "SELECT count(*) FROM nowhere")
    broken = DataFix("t", "x", "r", "", "SELECT count(*) FROM t WHERE no_such_column")
    bad_name = DataFix("a.b.c.d", "x", "r", "", "SELECT 1")
    assert [count(catalog, f) for f in (ok, missing, broken, bad_name, ok)] == [1, 0, 0, 0, 1]
    assert count(EmptyCatalog(), ok) == 0


def test_count_runs_read_only(db: Any, catalog: Any) -> None:
    db.execute("CREATE TABLE t (id int); INSERT INTO t VALUES (1)")
    sneaky = DataFix(
        "t", "x", "r", "", "WITH d AS (DELETE FROM t RETURNING 1) SELECT count(*) FROM d"
    )
    assert count(catalog, sneaky) == 0
    assert _rows(db, "t") == {1: (1,)}


_POOL = [
    "ALTER TABLE t ALTER a SET NOT NULL;",
    "ALTER TABLE t ALTER a SET DEFAULT 1;",
    "ALTER TABLE t ALTER a DROP DEFAULT;",
    "ALTER TABLE t ADD COLUMN b int NOT NULL;",
    "ALTER TABLE IF EXISTS s.t ADD COLUMN IF NOT EXISTS b int PRIMARY KEY;",
    "ALTER TABLE t ADD CONSTRAINT k CHECK (a > 0) NOT VALID;",
    "ALTER TABLE t VALIDATE CONSTRAINT k;",
    "ALTER TABLE t ADD UNIQUE (a, b);",
    "ALTER TABLE t ADD PRIMARY KEY (a);",
    "CREATE UNIQUE INDEX ux ON t (lower(b)) WHERE a > 0;",
    "ALTER TABLE t ADD FOREIGN KEY (a) REFERENCES t (b);",
    "ALTER TABLE t ADD FOREIGN KEY (a) REFERENCES p MATCH FULL;",
    "ALTER TABLE t RENAME TO u;",
    "ALTER TABLE u RENAME TO t;",
    "ALTER TABLE t RENAME COLUMN a TO b;",
    "ALTER TABLE t SET SCHEMA s;",
    "ALTER TYPE e RENAME TO e_old;",
    "CREATE TYPE e AS ENUM ('x');",
    "ALTER TYPE e ADD VALUE 'y';",
    "ALTER TYPE e RENAME VALUE 'x' TO 'z';",
    "ALTER TABLE t ALTER a TYPE e USING a::text::e;",
    "ALTER TABLE t ALTER a TYPE varchar(2), ALTER b TYPE int;",
    "CREATE TABLE p (id int PRIMARY KEY);",
    "DROP TABLE IF EXISTS p, q;",
    "INSERT INTO p VALUES (1);",
    "DO $$ BEGIN NULL; END $$;",
    "COPY t FROM STDIN;",
    "this is not sql;",
    "",
]


@given(st.lists(st.sampled_from(_POOL), max_size=10))
def test_any_sequence_of_statements_is_read_without_error(down: list[str]) -> None:
    for fix in data_conflicts(down, EmptyCatalog()):
        assert fix.count_sql.startswith(f"SELECT count(*) FROM {fix.table} WHERE ")
        assert fix.statement == "" or fix.statement.startswith(("DELETE FROM ", "UPDATE "))
        assert fix.reason and fix.condition

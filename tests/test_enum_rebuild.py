"""migrator.enum_rebuild on real PostgreSQL: a type rebuilt without labels has the same catalog as
a database that created it with the remaining labels only.

Each case builds its schema twice on the module's fresh database, each time inside a transaction
that is rolled back: once with every label followed by the rebuild, once directly with the reduced
type. Partitions' ``attndims`` is left out: ALTER COLUMN TYPE copies the parent's array dimensions
into them where PARTITION OF leaves 0 (PostgreSQL ignores the value).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pglast
import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from migrator.datacheck import count
from migrator.enum_rebuild import (
    added_enum_labels,
    label_usage_fixes,
    rebuild_statement,
)
from tests.conftest import fresh_database

LABELS = ["A", "X", "B", "Y", "C"]
REMOVE = ["X", "Y"]

_USER_SCHEMAS = "n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')"
SNAPSHOT = {
    "enums": f"""
        SELECT n.nspname, t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder)
          FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
          JOIN pg_namespace n ON n.oid = t.typnamespace
         WHERE {_USER_SCHEMAS} GROUP BY 1, 2 ORDER BY 1, 2""",
    "types": f"""
        SELECT n.nspname, t.typname, t.typtype, obj_description(t.oid, 'pg_type'),
               pg_get_userbyid(t.typowner), t.typacl::text[]
          FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
         WHERE {_USER_SCHEMAS} ORDER BY 1, 2""",
    "columns": f"""
        SELECT n.nspname, c.relname, c.relkind, a.attname, format_type(a.atttypid, a.atttypmod),
               CASE WHEN c.relispartition THEN NULL ELSE a.attndims END, a.attnotnull,
               a.attinhcount, pg_get_expr(d.adbin, d.adrelid),
               col_description(c.oid, a.attnum)
          FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
          LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE {_USER_SCHEMAS} AND a.attnum > 0 AND NOT a.attisdropped
           AND c.relkind IN ('r', 'p', 'v', 'm')
         ORDER BY 1, 2, a.attnum""",
    "views": f"""
        SELECT n.nspname, c.relname, c.relkind, pg_get_viewdef(c.oid), c.reloptions,
               c.relispopulated, obj_description(c.oid, 'pg_class'), pg_get_userbyid(c.relowner),
               (SELECT array_agg(x::text ORDER BY x::text) FROM unnest(c.relacl) x)
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE {_USER_SCHEMAS} AND c.relkind IN ('v', 'm') ORDER BY 1, 2""",
    "functions": f"""
        SELECT p.oid::regprocedure::text, pg_get_functiondef(p.oid),
               obj_description(p.oid, 'pg_proc'),
               (SELECT array_agg(x::text ORDER BY x::text) FROM unnest(p.proacl) x)
          FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE {_USER_SCHEMAS} ORDER BY 1""",
    "indexes": f"""
        SELECT n.nspname, c.relname, t.relname, pg_get_indexdef(c.oid),
               (SELECT pc.relname FROM pg_inherits h JOIN pg_class pc ON pc.oid = h.inhparent
                 WHERE h.inhrelid = c.oid),
               i.indisvalid, i.indisclustered, obj_description(c.oid, 'pg_class')
          FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
          JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE {_USER_SCHEMAS} ORDER BY 1, 2""",
    "constraints": f"""
        SELECT n.nspname, t.relname, con.conname, con.contype, pg_get_constraintdef(con.oid),
               con.coninhcount, con.conislocal, con.convalidated,
               (SELECT pc.conname FROM pg_constraint pc WHERE pc.oid = con.conparentid),
               obj_description(con.oid, 'pg_constraint')
          FROM pg_constraint con JOIN pg_class t ON t.oid = con.conrelid
          JOIN pg_namespace n ON n.oid = t.relnamespace
         WHERE {_USER_SCHEMAS} ORDER BY 1, 2, 3""",
    "triggers": f"""
        SELECT n.nspname, t.relname, tg.tgname, pg_get_triggerdef(tg.oid), tg.tgenabled,
               tg.tgparentid <> 0
          FROM pg_trigger tg JOIN pg_class t ON t.oid = tg.tgrelid
          JOIN pg_namespace n ON n.oid = t.relnamespace
         WHERE {_USER_SCHEMAS} AND NOT tg.tgisinternal ORDER BY 1, 2, 3""",
}
_TABLES = f"""
    SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE {_USER_SCHEMAS} AND c.relkind IN ('r', 'm') AND c.relispopulated ORDER BY 1"""


def snapshot(conn: psycopg.Connection[Any]) -> dict[str, list[tuple[Any, ...]]]:
    """The catalog of every user schema (no oids) plus every table's and matview's rows."""
    out = {key: conn.execute(sql).fetchall() for key, sql in SNAPSHOT.items()}
    for (table,) in conn.execute(_TABLES).fetchall():
        out[f"rows {table}"] = conn.execute(
            f"SELECT hs_row::text FROM {table} hs_row ORDER BY 1"
        ).fetchall()
    return out


def literals(labels: Sequence[str]) -> str:
    return ", ".join("'" + label.replace("'", "''") + "'" for label in labels)


@pytest.fixture(scope="module")
def conn(pg_server_url: str) -> Iterator[psycopg.Connection[Any]]:
    """One fresh database for the module: every test works in transactions it rolls back."""
    with (
        fresh_database(pg_server_url, prefix="hs_enum") as url,
        psycopg.connect(url, autocommit=True) as connection,
    ):
        yield connection


def compare(
    conn: psycopg.Connection[Any],
    ddl: str,
    *,
    labels: Sequence[str] = LABELS,
    remove: Sequence[str] = REMOVE,
    type_name: str = "status",
    after: str = "",
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(rebuilt, direct): ``ddl`` (``@LABELS@`` = the labels) built with every label and then
    rebuilt without ``remove``, and built with the remaining labels; ``after`` runs on both."""
    kept = [label for label in labels if label not in remove]
    with conn.transaction(force_rollback=True):
        conn.execute(ddl.replace("@LABELS@", literals(labels)))
        conn.execute(rebuild_statement(type_name, list(remove)))
        if after:
            conn.execute(after)
        rebuilt = snapshot(conn)
    with conn.transaction(force_rollback=True):
        conn.execute(ddl.replace("@LABELS@", literals(kept)))
        if after:
            conn.execute(after)
        direct = snapshot(conn)
    return rebuilt, direct


def assert_same(conn: psycopg.Connection[Any], ddl: str, **kwargs: Any) -> dict[str, Any]:
    rebuilt, direct = compare(conn, ddl, **kwargs)
    assert rebuilt == direct
    return rebuilt


PLAIN = """
CREATE TYPE status AS ENUM (@LABELS@);
COMMENT ON TYPE status IS 'a status';
REVOKE USAGE ON TYPE status FROM PUBLIC;
CREATE TABLE job (id int PRIMARY KEY, s status NOT NULL, other text);
CREATE INDEX job_s ON job (s);
CREATE UNIQUE INDEX job_id_s ON job (id, s);
INSERT INTO job VALUES (1, 'A', 'x'), (2, 'C', 'y'), (3, 'B', NULL);
"""


def test_plain_column(conn: psycopg.Connection[Any]) -> None:
    rebuilt = assert_same(conn, PLAIN, after="INSERT INTO job VALUES (4, 'B', 'z')")
    assert rebuilt["enums"] == [("public", "status", ["A", "B", "C"])]
    assert ("public", "job", "r", "s", "status", 0, True, 0, None, None) in rebuilt["columns"]


def test_labels_in_the_middle_keep_their_order(conn: psycopg.Connection[Any]) -> None:
    labels = ["first", "X", "second", "Y", "third", "Z"]
    rebuilt = assert_same(conn, PLAIN.replace("'A'", "'first'").replace("'B'", "'second'")
                          .replace("'C'", "'third'"),
                          labels=labels, remove=["Z", "X", "Y"])  # fmt: skip
    assert rebuilt["enums"] == [("public", "status", ["first", "second", "third"])]
    assert conn.execute("SELECT 1").fetchone() == (1,)


def test_array_columns(conn: psycopg.Connection[Any]) -> None:
    ddl = """
    CREATE TYPE status AS ENUM (@LABELS@);
    CREATE TABLE bag (id int, one status[], two status[][] NOT NULL DEFAULT '{{A,B},{C,A}}');
    CREATE INDEX bag_one ON bag USING gin (one);
    INSERT INTO bag VALUES (1, '{A,C}', DEFAULT), (2, NULL, '{{B}}'), (3, '{}', '{}');
    """
    rebuilt = assert_same(conn, ddl)
    assert ("public", "bag", "r", "two", "status[]", 2, True, 0, "'{{A,B},{C,A}}'::status[]",
            None) in rebuilt["columns"]  # fmt: skip


def test_defaults(conn: psycopg.Connection[Any]) -> None:
    ddl = """
    CREATE TYPE status AS ENUM (@LABELS@);
    CREATE TABLE job (id int, s status DEFAULT 'B', t status[] DEFAULT ARRAY['A', 'C']::status[],
                      u status DEFAULT NULL, v text DEFAULT 'A'::status::text);
    INSERT INTO job (id) VALUES (1);
    """
    rebuilt = assert_same(conn, ddl, after="INSERT INTO job (id) VALUES (2)")
    assert rebuilt["rows public.job"] == [('(1,B,"{A,C}",,A)',), ('(2,B,"{A,C}",,A)',)]


PARTITIONED = """
CREATE TYPE status AS ENUM (@LABELS@);
CREATE TABLE run (id int, s status NOT NULL DEFAULT 'A', tags status[] DEFAULT '{C}',
                  CONSTRAINT run_s_not_b CHECK (s <> 'B'), PRIMARY KEY (id, s))
    PARTITION BY RANGE (id);
CREATE TABLE run_1 PARTITION OF run FOR VALUES FROM (0) TO (10);
CREATE TABLE run_2 PARTITION OF run FOR VALUES FROM (10) TO (20) PARTITION BY LIST (id);
CREATE TABLE run_2a PARTITION OF run_2 FOR VALUES IN (11, 14);
CREATE TABLE run_2c PARTITION OF run_2 DEFAULT;
CREATE TABLE run_other PARTITION OF run DEFAULT;
ALTER TABLE ONLY run_other ALTER COLUMN s SET DEFAULT 'C';
CREATE INDEX custom_run_1_s ON run_1 (s);
CREATE INDEX run_partial ON run (id) WHERE s = 'C';
CREATE INDEX run_s ON run (s);
CREATE INDEX run_tags ON run USING gin (tags);
CREATE VIEW run_view AS SELECT id, s FROM run_1 WHERE s <> 'A';
CREATE FUNCTION run_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.tags := coalesce(NEW.tags, '{}') || NEW.s; RETURN NEW; END $$;
CREATE TRIGGER run_touch BEFORE INSERT ON run FOR EACH ROW WHEN (NEW.s = 'C')
    EXECUTE FUNCTION run_touch();
INSERT INTO run VALUES (1, 'A', NULL), (11, 'A', '{A}'), (12, 'C', NULL), (30, 'C', '{A,C}');
"""


def test_partitioned_table(conn: psycopg.Connection[Any]) -> None:
    rebuilt = assert_same(conn, PARTITIONED, after="INSERT INTO run VALUES (13, 'C', NULL)")
    names = {(row[1], row[2]) for row in rebuilt["indexes"]}
    assert ("custom_run_1_s", "run_1") in names  # attached under its own name, not a new one
    assert ("public", "run_other", "r", "s", "status", None, True, 1, "'C'::status",
            None) in rebuilt["columns"]  # fmt: skip


def test_views(conn: psycopg.Connection[Any]) -> None:
    ddl = """
    CREATE TYPE status AS ENUM (@LABELS@);
    CREATE TABLE job (id int, s status, t status[]);
    INSERT INTO job VALUES (1, 'A', '{A}'), (2, 'C', NULL);
    CREATE VIEW job_view WITH (security_barrier) AS SELECT id, s, t FROM job WHERE s <> 'B';
    COMMENT ON VIEW job_view IS 'the jobs';
    COMMENT ON COLUMN job_view.s IS 'their status';
    GRANT SELECT ON job_view TO PUBLIC;
    CREATE VIEW job_text AS SELECT id, s::text AS label FROM job;
    CREATE VIEW job_view_view AS SELECT s FROM job_view WHERE s IN ('A', 'C')
        WITH LOCAL CHECK OPTION;
    CREATE VIEW job_const AS SELECT 'C'::status AS c;
    CREATE MATERIALIZED VIEW job_counts AS SELECT s, count(*) AS n FROM job GROUP BY s;
    CREATE UNIQUE INDEX job_counts_s ON job_counts (s);
    CREATE MATERIALIZED VIEW job_later AS SELECT s FROM job WITH NO DATA;
    CREATE FUNCTION job_rows() RETURNS SETOF job_view LANGUAGE sql
        AS $$ SELECT * FROM job_view $$;
    """
    assert_same(conn, ddl, after="REFRESH MATERIALIZED VIEW job_counts")


def test_functions_with_the_type_in_their_signature(conn: psycopg.Connection[Any]) -> None:
    ddl = """
    CREATE TYPE status AS ENUM (@LABELS@);
    CREATE TABLE job (id int, s status);
    INSERT INTO job VALUES (1, 'A'), (2, 'C');
    CREATE FUNCTION next_status(x status, fallback status DEFAULT 'C') RETURNS status
        LANGUAGE sql IMMUTABLE AS $$ SELECT coalesce(x, fallback) $$;
    COMMENT ON FUNCTION next_status(status, status) IS 'next';
    REVOKE EXECUTE ON FUNCTION next_status(status, status) FROM PUBLIC;
    CREATE FUNCTION all_of(xs status[]) RETURNS TABLE (s status, n int)
        LANGUAGE sql AS $$ SELECT x, 1 FROM unnest(xs) x $$;
    CREATE FUNCTION atomic_first(x status) RETURNS status LANGUAGE sql
        BEGIN ATOMIC SELECT x; END;
    CREATE FUNCTION atomic_user() RETURNS status LANGUAGE sql
        BEGIN ATOMIC SELECT atomic_first('A'); END;
    CREATE PROCEDURE set_all(x status) LANGUAGE sql AS $$ UPDATE job SET s = x $$;
    CREATE VIEW job_next AS SELECT id, next_status(s) AS s FROM job;
    CREATE INDEX job_next_s ON job (next_status(s));
    CREATE TABLE later (s status DEFAULT next_status(NULL),
                        CHECK (next_status(s) IS NOT NULL));
    """
    assert_same(conn, ddl, after="CALL set_all('B'); INSERT INTO later DEFAULT VALUES")


def test_function_using_the_type_only_in_its_body(conn: psycopg.Connection[Any]) -> None:
    ddl = """
    CREATE TYPE status AS ENUM (@LABELS@);
    CREATE FUNCTION pick(n int) RETURNS text LANGUAGE plpgsql AS $$
    DECLARE v status := 'A';
    BEGIN IF n > 1 THEN v := 'C'; END IF; RETURN v::text; END $$;
    CREATE FUNCTION unrelated() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;
    """
    assert_same(conn, ddl)
    with conn.transaction(force_rollback=True):
        conn.execute(ddl.replace("@LABELS@", literals(LABELS)))
        assert conn.execute("SELECT pick(2)").fetchone() == ("C",)  # compiled in this session
        conn.execute(rebuild_statement("status", REMOVE))
        assert conn.execute("SELECT pick(2), pick(1)").fetchone() == ("C", "A")


def test_partial_and_expression_indexes(conn: psycopg.Connection[Any]) -> None:
    ddl = """
    CREATE TYPE status AS ENUM (@LABELS@);
    CREATE TABLE job (id int, s status);
    INSERT INTO job VALUES (1, 'A'), (2, 'C');
    CREATE INDEX job_c ON job (id) WHERE s = 'C';
    CREATE INDEX job_ac ON job (id) WHERE s IN ('A', 'C');
    CREATE INDEX job_is_a ON job ((s = 'A'));
    COMMENT ON INDEX job_c IS 'the Cs';
    ALTER TABLE job CLUSTER ON job_is_a;
    """
    assert_same(conn, ddl)


def test_check_and_foreign_key_constraints(conn: psycopg.Connection[Any]) -> None:
    ddl = """
    CREATE TYPE status AS ENUM (@LABELS@);
    CREATE TABLE kind (s status PRIMARY KEY);
    INSERT INTO kind VALUES ('A'), ('B'), ('C');
    CREATE TABLE job (id int, s status REFERENCES kind ON DELETE CASCADE,
                      CONSTRAINT job_not_b CHECK (s <> 'B'),
                      CONSTRAINT job_known CHECK (s IS NOT NULL));
    ALTER TABLE job ADD CONSTRAINT job_ac CHECK (s IN ('A', 'C')) NOT VALID;
    COMMENT ON CONSTRAINT job_not_b ON job IS 'no Bs';
    CREATE TABLE elsewhere (label text CHECK (label::status <> 'A'));
    INSERT INTO job VALUES (1, 'A'), (2, 'C');
    """
    assert_same(conn, ddl, after="DELETE FROM kind WHERE s = 'A'")


def test_triggers(conn: psycopg.Connection[Any]) -> None:
    ddl = """
    CREATE TYPE status AS ENUM (@LABELS@);
    CREATE TABLE job (id int, s status, seen status[]);
    CREATE FUNCTION job_default() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.s IS NULL THEN NEW.s := 'C'::status; END IF;
        NEW.seen := coalesce(NEW.seen, '{}'::status[]) || NEW.s;
        RETURN NEW;
    END $$;
    CREATE TRIGGER job_default BEFORE INSERT ON job FOR EACH ROW EXECUTE FUNCTION job_default();
    CREATE TRIGGER job_when BEFORE UPDATE ON job FOR EACH ROW WHEN (NEW.s = 'A')
        EXECUTE FUNCTION job_default();
    CREATE TRIGGER job_of BEFORE UPDATE OF s ON job FOR EACH ROW
        EXECUTE FUNCTION job_default();
    ALTER TABLE job DISABLE TRIGGER job_of;
    COMMENT ON TRIGGER job_when ON job IS 'when A';
    INSERT INTO job (id) VALUES (1);
    """
    with conn.transaction(force_rollback=True):
        conn.execute(ddl.replace("@LABELS@", literals(LABELS)))
        conn.execute(rebuild_statement("status", REMOVE))
        conn.execute("INSERT INTO job (id) VALUES (2)")  # the trigger, compiled before, works
        conn.execute("UPDATE job SET s = 'A' WHERE id = 2")
        assert conn.execute("SELECT s::text, seen::text FROM job ORDER BY id").fetchall() == [
            ("C", "{C}"),
            ("A", "{C,A}"),
        ]
    assert_same(conn, ddl, after="INSERT INTO job (id) VALUES (2)")


def test_quoted_and_schema_qualified_types(conn: psycopg.Connection[Any]) -> None:
    ddl = """
    CREATE SCHEMA app;
    CREATE TYPE app."Role" AS ENUM (@ROLE@);
    CREATE TYPE "TenantMemberRole" AS ENUM (@TMR@);
    CREATE TABLE app.member (id int, role app."Role" DEFAULT 'A', tmr "TenantMemberRole");
    CREATE VIEW app.member_view AS SELECT role, tmr FROM app.member WHERE tmr <> 'C';
    INSERT INTO app.member VALUES (1, 'C', 'B');
    """
    statements = (
        rebuild_statement("app.Role", REMOVE) + ";" + rebuild_statement("TenantMemberRole", ["X"])
    )
    with conn.transaction(force_rollback=True):
        conn.execute(ddl.replace("@ROLE@", literals(LABELS)).replace("@TMR@", literals(LABELS)))
        conn.execute(statements)
        rebuilt = snapshot(conn)
    with conn.transaction(force_rollback=True):
        conn.execute(
            ddl.replace("@ROLE@", literals(["A", "B", "C"])).replace(
                "@TMR@", literals(["A", "B", "Y", "C"])
            )
        )
        direct = snapshot(conn)
    assert rebuilt == direct
    assert ("app", "Role", ["A", "B", "C"]) in rebuilt["enums"]
    assert ("public", "TenantMemberRole", ["A", "B", "Y", "C"]) in rebuilt["enums"]


def test_nothing_to_remove_and_missing_type(conn: psycopg.Connection[Any]) -> None:
    with conn.transaction(force_rollback=True):
        conn.execute(PLAIN.replace("@LABELS@", literals(LABELS)))
        before = snapshot(conn)
        conn.execute(rebuild_statement("status", ["nope", "never"]))
        conn.execute(rebuild_statement("status", []))
        conn.execute(rebuild_statement("missing", REMOVE))
        conn.execute(rebuild_statement("other_schema.status", REMOVE))
        assert snapshot(conn) == before


def test_rows_using_a_removed_label_stop_it(conn: psycopg.Connection[Any]) -> None:
    with conn.transaction(force_rollback=True):
        conn.execute(PARTITIONED.replace("@LABELS@", literals(LABELS)))
        conn.execute("INSERT INTO run VALUES (31, 'C', '{A,Y}'), (2, 'X', NULL)")
        before = snapshot(conn)
        with pytest.raises(psycopg.errors.RaiseException) as raised, conn.transaction():
            conn.execute(rebuild_statement("status", REMOVE))
        message = str(raised.value)
        assert "rows still use label(s) 'X', 'Y' in column(s) run.s, run.tags" in message
        assert snapshot(conn) == before


def test_not_an_enum_and_unsupported_dependents(conn: psycopg.Connection[Any]) -> None:
    with conn.transaction(force_rollback=True):
        conn.execute("CREATE DOMAIN plain AS int")
        with pytest.raises(psycopg.errors.RaiseException, match="not an enum"), conn.transaction():
            conn.execute(rebuild_statement("plain", ["X"]))
        conn.execute(f"""
            CREATE TYPE status AS ENUM ({literals(LABELS)});
            CREATE DOMAIN good_status AS status CHECK (VALUE <> 'A');
            CREATE TABLE job (s good_status);""")
        before = snapshot(conn)
        with (
            pytest.raises(psycopg.errors.RaiseException, match="type good_status"),
            conn.transaction(),
        ):
            conn.execute(rebuild_statement("status", REMOVE))
        assert snapshot(conn) == before


def test_partition_keys_are_refused(conn: psycopg.Connection[Any]) -> None:
    with conn.transaction(force_rollback=True):
        conn.execute(f"""
            CREATE TYPE status AS ENUM ({literals(LABELS)});
            CREATE TABLE olap (id int, s status) PARTITION BY LIST (s);
            CREATE TABLE olap_a PARTITION OF olap FOR VALUES IN ('A');""")
        before = snapshot(conn)
        with (
            pytest.raises(
                psycopg.errors.RaiseException,
                match=r"column s of table olap \(a partition key\)",
            ),
            conn.transaction(),
        ):
            conn.execute(rebuild_statement("status", REMOVE))
        assert snapshot(conn) == before


def test_one_statement() -> None:
    sql = rebuild_statement('we\'re."odd" $x$', ["$hatchet_enum_rebuild$", "it's", "5%"])
    assert len(pglast.parse_sql(sql)) == 1
    assert sql.startswith("DO $hatchet_enum_rebuild_$")


def test_recreating_a_dependent_that_needs_a_removed_label_fails_cleanly(
    conn: psycopg.Connection[Any],
) -> None:
    with conn.transaction(force_rollback=True):
        conn.execute(PLAIN.replace("@LABELS@", literals(LABELS)))
        conn.execute("CREATE INDEX job_x ON job (id) WHERE s = 'X'")
        before = snapshot(conn)
        with (
            pytest.raises(psycopg.errors.InvalidTextRepresentation) as raised,
            conn.transaction(),
        ):
            conn.execute(rebuild_statement("status", REMOVE))
        assert "enum rebuild of public.status failed" in str(raised.value)
        assert "CREATE INDEX job_x" in (raised.value.diag.message_detail or "")
        assert snapshot(conn) == before


_label = st.text(
    st.characters(codec="utf-8", exclude_characters="\x00"),
    min_size=1,
    max_size=8,
).filter(lambda s: len(s.encode()) <= 63)


@st.composite
def _labels_and_removal(draw: st.DrawFn) -> tuple[list[str], list[str], list[str]]:
    labels = draw(st.lists(_label, min_size=1, max_size=7, unique=True))
    remove = draw(st.lists(st.sampled_from(labels), unique=True))
    kept = [label for label in labels if label not in remove]
    rows = draw(st.lists(st.sampled_from(kept), max_size=4)) if kept else []
    return labels, remove, rows


@settings(
    max_examples=25,
    deadline=None,
)
@given(case=_labels_and_removal())
def test_any_labels_any_removal(
    conn: psycopg.Connection[Any], case: tuple[list[str], list[str], list[str]]
) -> None:
    labels, remove, rows = case
    kept = [label for label in labels if label not in remove]
    default = f"DEFAULT {literals(kept[-1:])}" if kept else ""
    values = ", ".join(f'({literals([r])}, ARRAY[{literals([r])}]::"my Type"[])' for r in rows)
    ddl = f"""
    CREATE TYPE "my Type" AS ENUM (@LABELS@);
    CREATE TABLE t (s "my Type" {default}, a "my Type"[]);
    CREATE VIEW v AS SELECT s, a FROM t;
    {f"INSERT INTO t VALUES {values};" if values else ""}
    """
    rebuilt = assert_same(conn, ddl, labels=labels, remove=remove, type_name="my Type")
    assert rebuilt["enums"] == ([("public", "my Type", kept)] if kept else [])


# added_enum_labels


def test_added_labels_as_written() -> None:
    up = [
        """ALTER TYPE "TenantMemberRole" ADD VALUE 'OWNER';
           ALTER TYPE public."StepRunStatus" ADD VALUE IF NOT EXISTS 'BACKOFF' BEFORE 'FAILED';""",
        "ALTER TYPE WorkerStatus ADD VALUE 'PAUSED' AFTER 'ACTIVE'",
        "ALTER TYPE \"TenantMemberRole\" ADD VALUE 'it''s'",
        "ALTER TYPE \"TenantMemberRole\" ADD VALUE IF NOT EXISTS 'OWNER'",
        "ALTER TYPE \"TenantMemberRole\" RENAME VALUE 'MEMBER' TO 'USER'",
        "DO $$ BEGIN ALTER TYPE hidden ADD VALUE 'NO'; END $$",
        "this is not SQL",
        "",
    ]
    assert added_enum_labels(up) == {
        "TenantMemberRole": ["OWNER", "it's"],
        "public.StepRunStatus": ["BACKOFF"],
        "workerstatus": ["PAUSED"],
    }


def test_types_the_up_creates_are_not_additions() -> None:
    up = [
        "ALTER TYPE fresh ADD VALUE 'EARLY'",
        "CREATE TYPE fresh AS ENUM ('A'); ALTER TYPE fresh ADD VALUE 'B'",
        "ALTER TYPE fresh ADD VALUE 'C'; ALTER TYPE old ADD VALUE 'D'",
    ]
    assert added_enum_labels(up) == {"old": ["D"]}


@given(
    name=st.text(st.characters(codec="utf-8", exclude_characters='\x00."'),
                 min_size=1, max_size=10),
    labels=st.lists(_label, min_size=1, max_size=5, unique=True),
)  # fmt: skip
def test_added_labels_round_trip(name: str, labels: list[str]) -> None:
    quoted = '"' + name + '"'
    up = [f"ALTER TYPE {quoted} ADD VALUE {literals([label])}" for label in labels]
    assert added_enum_labels(up) == {name: labels}


# label_usage_fixes


class PgCatalog:
    """A Catalog over a psycopg connection, passing ``params`` on as given (even empty)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, params).fetchall()


def test_label_usage_fixes(conn: psycopg.Connection[Any]) -> None:
    labels = ["A", "X", "B", "50%", "C"]
    catalog = PgCatalog(conn)
    with conn.transaction(force_rollback=True):
        conn.execute(PARTITIONED.replace("@LABELS@", literals(labels)))
        conn.execute("""CREATE TABLE "Plain" ("Who" status);
            INSERT INTO "Plain" VALUES ('50%'), ('A'), (NULL);
            INSERT INTO run VALUES (2, 'X', '{A}'), (3, 'X', '{X}'), (14, 'A', '{C,50%}');""")
        fixes = label_usage_fixes(catalog, "status", ["50%", "X", "not there"])
        assert [(f.table, f.condition) for f in fixes] == [
            ('public."Plain"', "\"Who\" IN ('X', '50%')"),
            ("public.run", "s IN ('X', '50%')"),
            ("public.run", "tags && ARRAY['X', '50%']"),
        ]
        assert fixes[0].reason == (
            "enum labels 'X', '50%' of type status do not exist in the older release"
        )
        assert [count(catalog, f) for f in fixes] == [1, 2, 2]
        assert fixes[1].describe(2).startswith("2 row(s) of public.run where s IN")
        for fix in fixes:
            conn.execute(fix.statement)
        assert [count(catalog, f) for f in fixes] == [0, 0, 0]
        assert conn.execute("SELECT count(*) FROM run").fetchone() == (4,)
        conn.execute(rebuild_statement("status", ["X", "50%"]))
        assert label_usage_fixes(catalog, "status", ["X", "50%"]) == []

        one = label_usage_fixes(catalog, "status", ["C"])
        assert one[0].reason == "enum label 'C' of type status does not exist in the older release"
        assert label_usage_fixes(catalog, "missing", ["C"]) == []
        assert label_usage_fixes(catalog, "int4", ["C"]) == []

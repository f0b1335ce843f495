"""goose's own SQL parser tests, case by case, run on inputs of our own.

pressly/goose tests its parser (``internal/sqlparser/parser_test.go`` and ``parse_test.go``) on a
set of inputs: each case here names the goose test (and input) it mirrors. Goose's files are not
copied: the inputs in ``fixtures/goose_cases/`` are Hatchet-style migrations written for this
project that put the parser in the same situation, and the expected statements below are exact:
what goose v3.24 to v3.27 sends for that direction. (They agreed, byte for byte, with goose
v3.27.1's parser built from source when they were written; the suite needs no Go.)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from cli import EXIT_BLOCKED, exit_code_of
from migrator.errors import SQLParseError
from migrator.sqlparser import ends_with_semicolon, parse_sql

CASES_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "goose_cases"
ENV = {"HS_PREFIX": "eu_", "HS_ROLE": "hatchet", "HS_EMPTY": ""}  # HS_UNSET stays unset

# Every goose parser test input, by name. ``TestParseAllFromFS/file_not_exist`` is left out: it
# opens a file that is not there, which is the directory loader's business, not the parser's.
GOOSE_TESTS = {
    "TestSemicolons",
    *(
        f"TestSplitStatements/{name}"
        for name in (
            "multilineSQL",
            "emptySQL",
            "emptySQL2",
            "functxt",
            "mysqlChangeDelimiter",
            "copyFromStdin",
            "plpgsqlSyntax",
            "plpgsqlSyntaxMixedStatements",
        )
    ),
    *(f"TestInvalidUp/{name}.sql" for name in "abcd"),
    "TestUseTransactions/00001_create_users_table.sql",
    "TestUseTransactions/00002_rename_root.sql",
    "TestUseTransactions/00003_no_transaction.sql",
    *(
        f"TestParsingErrors/{name}"
        for name in (
            "statementBeginNoStatementEnd",
            "unfinishedSQL",
            "noUpDownAnnotations",
            "multiUpDown",
            "downFirst",
        )
    ),
    *(f"TestValidUp/test0{n}" for n in range(1, 10)),
    *(f"TestEnvsub/test0{n}" for n in range(1, 4)),
    "TestEnvsubError",
    *(
        f"Test_extractAnnotation/{name}"
        for name in (
            "Up",
            "Down",
            "StmtBegin",
            "NoTransact",
            "Unsupported",
            "Empty",
            "statement with spaces and Uppercase",
            "statement with leading whitespace - error",
            "statement with leading \\t - error",
            "multiple +goose annotations - error",
        )
    ),
    "TestParseAllFromFS/empty_file",
    "TestParseAllFromFS/all_statements",
}


@dataclass(frozen=True)
class Err:
    """goose refuses the file; ours says why at ``line``."""

    line: int
    problem: str


@dataclass(frozen=True)
class Case:
    file: str
    """Under ``fixtures/goose_cases/``."""
    mirrors: str
    up: list[str] | Err
    down: list[str] | Err
    use_transaction: bool = True


_UNFINISHED_BEFORE_DOWN = "before '-- +goose Down' (missing semicolon?)"

CASES = [
    Case(
        "split_plain_statements.sql",
        "TestSplitStatements/multilineSQL",
        up=[
            "CREATE TABLE v1_lookup (\n"
            "    tenant_id uuid NOT NULL,\n"
            "    external_id uuid NOT NULL,\n"
            "    PRIMARY KEY (tenant_id, external_id)\n"
            ");                      -- first",
            "SELECT 'v1_lookup';     -- second",
            "SELECT 1; SELECT 2;     -- third: one statement, two commands",
            "SELECT 3;               -- fourth",
        ],
        down=["DROP TABLE v1_lookup;   -- the only one"],
    ),
    Case("split_only_a_comment.sql", "TestSplitStatements/emptySQL", up=[], down=[]),
    Case("split_blank_lines_and_comments.sql", "TestSplitStatements/emptySQL2", up=[], down=[]),
    Case(
        "split_function_block_then_plain_down.sql",
        "TestSplitStatements/functxt",
        up=[
            "CREATE TABLE IF NOT EXISTS v1_log_line (\n"
            "    tenant_id uuid NOT NULL,\n"
            "    inserted_at timestamptz NOT NULL DEFAULT now(),\n"
            "    message text NOT NULL\n"
            ") PARTITION BY RANGE (inserted_at);",
            "CREATE OR REPLACE FUNCTION create_v1_log_line_partitions(first_day date, days int)\n"
            "RETURNS void AS $$\n"
            "DECLARE\n"
            "    day date;\n"
            "BEGIN\n"
            "    FOR day IN SELECT generate_series(first_day, first_day + days - 1, '1 day')"
            "::date\n"
            "    LOOP\n"
            "        EXECUTE format(\n"
            "            'CREATE TABLE IF NOT EXISTS %I PARTITION OF v1_log_line "
            "FOR VALUES FROM (%L) TO (%L)',\n"
            "            'v1_log_line_' || to_char(day, 'YYYYMMDD'), day, day + 1\n"
            "        );\n"
            "    END LOOP;  -- one partition a day\n"
            "END;         -- end of the function\n"
            "$$\n"
            "LANGUAGE plpgsql;",
        ],
        down=[
            "DROP FUNCTION create_v1_log_line_partitions(date, int);",
            "DROP TABLE v1_log_line;",
        ],
    ),
    Case(
        "split_single_line_blocks.sql",
        "TestSplitStatements/mysqlChangeDelimiter",
        up=[
            "SET lock_timeout = '5s'",
            "CREATE FUNCTION v1_tenant_slug(tenant_name text) RETURNS text IMMUTABLE\n"
            "AS $$ \n"
            "  SELECT lower(regexp_replace(tenant_name, '[^a-z0-9]+', '-', 'gi')) \n"
            "$$ LANGUAGE sql",
            "RESET lock_timeout",
            "SELECT v1_tenant_slug('Default Tenant');",
        ],
        down=[],
    ),
    Case(
        "split_copy_from_stdin.sql",
        "TestSplitStatements/copyFromStdin",
        up=[
            "COPY public.v1_worker_label (id, worker_id, key, value) FROM stdin;\n"
            "1\tw-1\tregion\teu-west\n"
            "2\tw-1\tgpu\tnone\n"
            "3\tw-2\tregion\tus-east\n"
            "\\."
        ],
        down=[],
    ),
    Case(
        "split_blocks_in_both_sections.sql",
        "TestSplitStatements/plpgsqlSyntax",
        up=[
            "CREATE OR REPLACE FUNCTION v1_touch_updated_at()\n"
            "RETURNS TRIGGER AS $$\n"
            "BEGIN\n"
            '    NEW."updatedAt" = now();\n'
            "    RETURN NEW;\n"
            "END;\n"
            "$$ language 'plpgsql';",
            'CREATE TRIGGER v1_workflow_touch BEFORE UPDATE ON "Workflow" '
            "FOR EACH ROW EXECUTE PROCEDURE v1_touch_updated_at();",
        ],
        down=[
            'DROP TRIGGER v1_workflow_touch ON "Workflow"',
            "DROP FUNCTION v1_touch_updated_at()",
        ],
    ),
    Case(
        "split_block_then_plain_multiline.sql",
        "TestSplitStatements/plpgsqlSyntaxMixedStatements",
        up=[
            "CREATE OR REPLACE FUNCTION v1_touch_updated_at()\n"
            "RETURNS TRIGGER AS $$\n"
            "BEGIN\n"
            '    NEW."updatedAt" = now();\n'
            "    RETURN NEW;\n"
            "END;\n"
            "$$ language 'plpgsql';",
            "CREATE TRIGGER v1_workflow_touch\n"
            "BEFORE UPDATE\n"
            'ON "Workflow" \n'
            "FOR EACH ROW EXECUTE PROCEDURE v1_touch_updated_at();",
        ],
        down=[
            'DROP TRIGGER v1_workflow_touch ON "Workflow";',
            "DROP FUNCTION v1_touch_updated_at();",
        ],
    ),
    # goose's TestInvalidUp parses the up only; the legacy down path never reads the up's text.
    Case(
        "invalid_second_up_statement_unterminated.sql",
        "TestInvalidUp/a.sql",
        up=Err(
            3,
            "unfinished SQL statement 'CREATE INDEX v1_queue_name_idx ON v1_queue (name)' "
            + _UNFINISHED_BEFORE_DOWN,
        ),
        down=["DROP TABLE v1_queue;"],
    ),
    Case(
        "invalid_only_up_statement_unterminated.sql",
        "TestInvalidUp/b.sql",
        up=Err(
            2,
            "unfinished SQL statement 'ALTER TABLE v1_queue ADD COLUMN paused boolean' "
            + _UNFINISHED_BEFORE_DOWN,
        ),
        down=["ALTER TABLE v1_queue DROP COLUMN paused;"],
    ),
    Case(
        "invalid_unterminated_before_empty_down.sql",
        "TestInvalidUp/c.sql",
        up=Err(
            2,
            "unfinished SQL statement 'ALTER TABLE v1_queue ADD COLUMN paused boolean' "
            + _UNFINISHED_BEFORE_DOWN,
        ),
        down=[],
    ),
    Case(
        "invalid_unterminated_at_end_of_file.sql",
        "TestInvalidUp/d.sql",
        up=Err(
            2,
            "unfinished SQL statement 'ALTER TABLE v1_queue ADD COLUMN paused boolean' "
            "at end of file (missing semicolon?)",
        ),
        down=[],
    ),
    Case(
        "txn_plain_statements.sql",
        "TestUseTransactions/00001_create_users_table.sql",
        up=[
            "CREATE TABLE v1_tenant_alert (\n"
            "    tenant_id uuid NOT NULL PRIMARY KEY,\n"
            "    email text,\n"
            "    enabled boolean\n"
            ");",
            "INSERT INTO v1_tenant_alert VALUES\n"
            "('00000000-0000-0000-0000-000000000000', NULL, false),\n"
            "('707d0855-80ab-4e1f-a156-f1c4546cbf52', 'ops@example.com', true);",
        ],
        down=["DROP TABLE v1_tenant_alert;"],
    ),
    Case(
        "txn_statement_blocks.sql",
        "TestUseTransactions/00002_rename_root.sql",
        up=["UPDATE v1_tenant_alert SET enabled = true WHERE email IS NOT NULL;"],
        down=["UPDATE v1_tenant_alert SET enabled = false WHERE email IS NOT NULL;"],
    ),
    Case(
        "txn_no_transaction.sql",
        "TestUseTransactions/00003_no_transaction.sql",
        up=[
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS v1_task_tenant_idx\n"
            "    ON v1_task (tenant_id, inserted_at);"
        ],
        down=["DROP INDEX CONCURRENTLY IF EXISTS v1_task_tenant_idx;"],
        use_transaction=False,
    ),
    Case(
        "error_block_never_ended.sql",
        "TestParsingErrors/statementBeginNoStatementEnd",
        up=(
            never_ended := Err(
                14,
                "'-- +goose Down' inside the StatementBegin block opened at line 7 "
                "(missing '-- +goose StatementEnd'?)",
            )
        ),
        down=never_ended,
    ),
    Case(
        "error_unfinished_statement.sql",
        "TestParsingErrors/unfinishedSQL",
        up=Err(3, "unfinished SQL statement 'ALTER TABLE v1_queue' " + _UNFINISHED_BEFORE_DOWN),
        down=[],
    ),
    Case(
        "error_no_annotations.sql",
        "TestParsingErrors/noUpDownAnnotations",
        up=(no_up := Err(2, "SQL text before '-- +goose Up': 'CREATE TABLE v1_queue ('")),
        down=no_up,
    ),
    Case(
        "error_two_up_sections.sql",
        "TestParsingErrors/multiUpDown",
        up=(twice := Err(7, "duplicate '-- +goose Up' annotation")),
        down=twice,
    ),
    Case(
        "error_down_first.sql",
        "TestParsingErrors/downFirst",
        up=(down_first := Err(1, "'-- +goose Down' before '-- +goose Up'")),
        down=down_first,
    ),
    Case(
        "valid_mixed_case_annotations.sql",
        "TestValidUp/test01",
        up=[
            "CREATE TABLE v1_step_run_audit (\n"
            "    step_run_id uuid,\n"
            "    retries integer,\n"
            "    changed_at timestamptz,\n"
            "    changed_by text\n"
            ");",
            "CREATE FUNCTION v1_step_run_audit_stamp() RETURNS trigger AS $stamp$\n"
            "    BEGIN\n"
            "        -- a step run always has an id and a retry count\n"
            "        IF NEW.step_run_id IS NULL THEN\n"
            "            RAISE EXCEPTION 'step_run_id cannot be null';\n"
            "        END IF;\n"
            "        IF NEW.retries IS NULL THEN\n"
            "            RAISE EXCEPTION '% has no retry count', NEW.step_run_id;\n"
            "        END IF;\n"
            "\n"
            "        -- negative retries mean a bug upstream\n"
            "        IF NEW.retries < 0 THEN\n"
            "            RAISE EXCEPTION '% has negative retries', NEW.step_run_id;\n"
            "        END IF;\n"
            "\n"
            "        -- remember who touched it and when\n"
            "        NEW.changed_at := current_timestamp;\n"
            "        NEW.changed_by := current_user;\n"
            "        RETURN NEW;\n"
            "    END;\n"
            "$stamp$ LANGUAGE plpgsql;",
            "CREATE TRIGGER v1_step_run_audit_stamp BEFORE INSERT OR UPDATE ON v1_step_run_audit\n"
            "    FOR EACH ROW EXECUTE FUNCTION v1_step_run_audit_stamp();",
        ],
        down=[],
    ),
    Case(
        "valid_one_block_many_commands.sql",
        "TestValidUp/test02",
        up=[
            "CREATE TABLE v1_event (\n"
            "    id                bigint NOT NULL,\n"
            "    key               text\n"
            ");\n"
            "\n"
            "CREATE TABLE v1_event_audit(\n"
            "    operation         char(1)     NOT NULL,\n"
            "    stamp             timestamptz NOT NULL,\n"
            "    userid            text        NOT NULL,\n"
            "    id                bigint      NOT NULL,\n"
            "    key               text\n"
            ");\n"
            "\n"
            "CREATE OR REPLACE FUNCTION v1_event_audit_fn() RETURNS TRIGGER AS $audit$\n"
            "    BEGIN\n"
            "        --\n"
            "        -- One row in v1_event_audit per change to v1_event; TG_OP tells\n"
            "        -- which kind of change it was.\n"
            "        --\n"
            "        IF (TG_OP = 'DELETE') THEN\n"
            "            INSERT INTO v1_event_audit SELECT 'D', now(), user, OLD.*;\n"
            "        ELSIF (TG_OP = 'UPDATE') THEN\n"
            "            INSERT INTO v1_event_audit SELECT 'U', now(), user, NEW.*;\n"
            "        ELSIF (TG_OP = 'INSERT') THEN\n"
            "            INSERT INTO v1_event_audit SELECT 'I', now(), user, NEW.*;\n"
            "        END IF;\n"
            "        RETURN NULL; -- ignored: an AFTER trigger\n"
            "    END;\n"
            "$audit$ LANGUAGE plpgsql;\n"
            "\n"
            "CREATE TRIGGER v1_event_audit\n"
            "AFTER INSERT OR UPDATE OR DELETE ON v1_event\n"
            "    FOR EACH ROW EXECUTE FUNCTION v1_event_audit_fn();"
        ],
        down=[],
    ),
    Case(
        "valid_single_quoted_function_body.sql",
        "TestValidUp/test03",
        up=[
            "CREATE FUNCTION v1_build_router() RETURNS integer AS '\n"
            "DECLARE\n"
            "    rule RECORD;  -- one routing rule at a time\n"
            "    body varchar(4000);\n"
            "BEGIN \n"
            "    body := ''CREATE FUNCTION v1_route(varchar, varchar) \n"
            "                  RETURNS varchar AS '''' \n"
            "                     DECLARE \n"
            "                         v_tenant ALIAS FOR $1; \n"
            "                         v_queue ALIAS FOR $2;\n"
            "                     BEGIN ''; \n"
            "\n"
            "-- \n"
            "-- every rule becomes one IF in the generated function\n"
            "--\n"
            "\n"
            "    FOR rule IN SELECT * FROM v1_route_rule ORDER BY priority LOOP\n"
            "        body := body || '' IF v_queue LIKE '''''''''' \n"
            "                 || rule.pattern || '''''''''' THEN RETURN '''''' \n"
            "                 || rule.target || ''''''; END IF;''; \n"
            "    END LOOP; \n"
            "  \n"
            "    body := body || '' RETURN NULL; END; '''' LANGUAGE ''''plpgsql'''';''; \n"
            " \n"
            "    -- EXECUTE is fine here: nothing is interpolated\n"
            "    \n"
            "    EXECUTE body; \n"
            "END; \n"
            "' LANGUAGE 'plpgsql'; -- kept: still inside the block\n"
            "-- kept as well"
        ],
        down=[],
    ),
    Case(
        "valid_multiline_string_literals.sql",
        "TestValidUp/test04",
        up=[
            "CREATE TABLE v1_tenant_certificate (\n"
            "    id integer NOT NULL,\n"
            '    "pemData" text\n'
            ");",
            'INSERT INTO v1_tenant_certificate (id, "pemData") VALUES (1, \''
            "-----BEGIN CERTIFICATE-----\n"
            "MIIBszCCAVmgAwIBAgIUHatchetSchemaFixtureNotARealKey0wCgYIKoZIzj0E\n"
            "AwIwGDEWMBQGA1UEAwwNaGF0Y2hldC1zY2hlbWEwHhcNMjUwMzExMDAwMDAwWhcN\n"
            "MzUwMzExMDAwMDAwWjAYMRYwFAYDVQQDDA1oYXRjaGV0LXNjaGVtYTBZMBMGByqG\n"
            "SM49AgEGCCqGSM49AwEHA0IABFakeFakeFakeFakeFakeFakeFakeFakeFake+/A=\n"
            "-----END CERTIFICATE-----\n"
            "');",
            'INSERT INTO v1_tenant_certificate (id, "pemData") VALUES (2, \''
            "-----BEGIN CERTIFICATE-----\n"
            "MIIBtDCCAVqgAwIBAgIUAnotherFixtureCertificateForTests0wCgYIKoZIzj0E\n"
            "AwIwGDEWMBQGA1UEAwwNaGF0Y2hldC1zY2hlbWEwHhcNMjUwMzExMDAwMDAwWhcN\n"
            "MzUwMzExMDAwMDAwWjAYMRYwFAYDVQQDDA1oYXRjaGV0LXNjaGVtYTBZMBMGByqG\n"
            "SM49AgEGCCqGSM49AwEHA0IABStillFakeStillFakeStillFakeStillFake+/B=\n"
            "-----END CERTIFICATE-----\n"
            "');",
        ],
        down=[],
    ),
    Case(
        "valid_comments_inside_statements.sql",
        "TestValidUp/test05",
        up=[
            "CREATE TABLE v1_webhook (\n"
            "    id integer NOT NULL,\n"
            '    "secret" text\n'
            "-- a comment at column one, inside the statement\n"
            ");",
            "CREATE TABLE v1_webhook_backup (\n"
            "    id integer NOT NULL,\n"
            "    -- an indented comment inside the statement\n"
            '    "secret" text\n'
            "    -- and one before the closing parenthesis\n"
            ");",
        ],
        down=[],
    ),
    Case(
        "valid_blank_lines_in_strings_and_blocks.sql",
        "TestValidUp/test06",
        up=[
            "CREATE TABLE v1_workflow_doc (\n    id text,\n            body text);",
            "INSERT INTO v1_workflow_doc (id, body) VALUES ('wf_0001',  E'# Nightly export\n"
            "\n"
            "runs at midnight\n"
            "\n"
            "retries three times');",
            "INSERT INTO v1_workflow_doc (id, body) VALUES ('wf_0002',  E'# Hourly sync \n"
            "\n"
            "pulls from the queue\n"
            "\n"
            "skips paused tenants\n"
            "\n"
            "-- not a comment: inside the string\n"
            "    -- neither is this\n"
            "\n"
            "ends here');",
            "CREATE FUNCTION v1_export_tenant(tenant TEXT) RETURNS INTEGER AS $$\n"
            "BEGIN\n"
            "  -- collect the runs\n"
            "  PERFORM v1_collect_runs(tenant);\n"
            "\n"
            "  -- write the file\n"
            "  PERFORM v1_write_export(tenant);\n"
            "\n"
            "  -- report success\n"
            "  RETURN 1;\n"
            "END;\n"
            "$$ LANGUAGE plpgsql;\n"
            "\n"
            "-- 3 kept: the block has started\n"
            "  -- 4 kept as well",
            "INSERT INTO v1_workflow_doc (id, body)\n"
            "VALUES ('wf_0003', '\n"
            "an insert whose string holds empty lines.\n"
            "\n"
            "they are part of the value.\n"
            "\n"
            "keep them.\n"
            "');",
        ],
        down=["TRUNCATE TABLE v1_workflow_doc;"],
    ),
    Case(
        "valid_whitespace_line_before_up.sql",
        "TestValidUp/test07",
        up=["CREATE INDEX ON public.v1_task (tenant_id);"],
        down=["DROP INDEX IF EXISTS v1_task_tenant_id_idx;"],
    ),
    Case(
        "valid_c_style_comments.sql",
        "TestValidUp/test08",
        up=[
            *(
                f'CREATE TABLE "v1_table_{t}" (\n'
                '    "column_1" timestamptz DEFAULT now(),\n'
                '    "column_2" timestamptz DEFAULT now()\n'
                ") WITH (fillfactor = 90);"
                for t in "abc"
            ),
            '/* v1_0_12 */ ALTER TABLE "v1_table_a" ALTER COLUMN "column_1" SET NOT NULL '
            "/* was nullable */;",
            '/* v1_0_12 */ ALTER TABLE "v1_table_b" ALTER COLUMN "column_2" SET NOT NULL '
            "/* was nullable */;",
            '/* ALTER TABLE "v1_table_c" ALTER COLUMN "column_1" SET NOT NULL */;',
        ],
        down=[],
    ),
    Case(
        "valid_block_last_line_without_semicolon.sql",
        "TestValidUp/test09",
        up=[
            "create table v1_t ( id int );\n"
            "update v1_rows set value = now() -- no semicolon: fine inside a block, fails when run"
        ],
        down=["DROP TABLE IF EXISTS v1_t;"],
    ),
    Case(
        "envsub_on_before_up.sql",
        "TestEnvsub/test01",
        up=[
            "CREATE TABLE eu_queue (\n"
            "\t\tname text NOT NULL,\n"
            "\t\tpaused boolean,\n"
            "\t\tPRIMARY KEY(name)\n"
            ");                  -- first",
            "SELECT 2;           -- second",
            "SELECT 3; SELECT 3; -- third",
            "SELECT 4;           -- fourth",
        ],
        down=["DROP TABLE eu_queue;    -- the only one"],
    ),
    Case(
        "envsub_toggled_in_sections_and_blocks.sql",
        "TestEnvsub/test02",
        up=[
            "CREATE TABLE v1_tenant_setting (\n"
            "\tid int NOT NULL,\n"
            "\thatchet text,\n"
            "\thatchet_backup text,\n"
            "\tfallback_a text,\n"
            "\t_b text\n"
            ");",
            "CREATE TABLE v1_tenant_setting_raw (\n"
            "\tid int NOT NULL,\n"
            "\t$HS_ROLE text,\n"
            "\t${HS_ROLE}_backup text,\n"
            "\t${HS_UNSET:-fallback}_a text,\n"
            "\t${HS_EMPTY-fallback}_b text\n"
            ");",
            "CREATE OR REPLACE FUNCTION v1_whoami()\n"
            "RETURNS void AS $$\n"
            "BEGIN\n"
            "\tRAISE NOTICE 'hatchet $HS_ROLE $HS_ROLE';\n"
            "END;\n"
            "$$ LANGUAGE plpgsql;",
        ],
        down=[],
    ),
    Case(
        "envsub_off_keeps_placeholders.sql",
        "TestEnvsub/test03",
        up=[
            "CREATE TABLE v1_tenant_setting (\n"
            "\tid int NOT NULL,\n"
            "\t$HS_ROLE text,\n"
            "\t${HS_ROLE}_backup text,\n"
            "\t${HS_UNSET:-fallback}_a text,\n"
            "\t${HS_EMPTY-fallback}_b text\n"
            ");"
        ],
        down=[],
    ),
    # Substitution runs before the direction is known, so the down fails on the up's line too.
    Case(
        "envsub_required_variable.sql",
        "TestEnvsubError",
        up=(
            required := Err(
                6, "variable substitution failed: $HS_UNSET: set HS_UNSET to the column name"
            )
        ),
        down=required,
    ),
    Case(
        "fs_empty_file.sql",
        "TestParseAllFromFS/empty_file",
        up=(empty := Err(1, "no '-- +goose Up' annotation")),
        down=empty,
    ),
    Case("fs_up_annotation_only.sql", "TestParseAllFromFS/all_statements", up=[], down=[]),
    Case(
        "fs_up_and_down_annotations_only.sql", "TestParseAllFromFS/all_statements", up=[], down=[]
    ),
    Case(
        "fs_two_up_one_down.sql",
        "TestParseAllFromFS/all_statements",
        up=["CREATE TABLE v1_a (id int);", "CREATE TABLE v1_b (id int);"],
        down=["DROP TABLE v1_b;"],
    ),
    Case(
        "fs_no_transaction.sql",
        "TestParseAllFromFS/all_statements",
        up=["CREATE TABLE v1_a (id int);"],
        down=["DROP TABLE v1_a;"],
        use_transaction=False,
    ),
]


@pytest.mark.parametrize(
    ("case", "direction"),
    [(c, d) for c in CASES for d in ("up", "down")],
    ids=[f"{c.file.removesuffix('.sql')}-{d}" for c in CASES for d in ("up", "down")],
)
def test_goose_case(case: Case, direction: str) -> None:
    data = (CASES_DIR / case.file).read_bytes()
    expected = case.up if direction == "up" else case.down
    if isinstance(expected, Err):
        with pytest.raises(SQLParseError) as caught:
            parse_sql(data, filename=case.file, direction=direction, env=ENV)  # type: ignore[arg-type]
        assert str(caught.value) == f"{case.file}:{expected.line}: {expected.problem}"
        assert exit_code_of(caught.value) == EXIT_BLOCKED
        return
    parsed = parse_sql(data, filename=case.file, direction=direction, env=ENV)  # type: ignore[arg-type]
    assert parsed.statements == expected
    assert parsed.use_transaction is case.use_transaction


# -- goose's line-level tests: the statement-end rule and annotation lines -------------------

# (line, whether it ends a statement outside StatementBegin/End), after goose's TestSemicolons
SEMICOLON_LINES = [
    ("DROP TABLE v1_queue;", True),
    ("DROP TABLE v1_queue; -- loses every queued item", True),
    ("DROP TABLE v1_queue   ; -- spaced out", True),
    ("DROP TABLE v1_queue -- not yet", False),
    ("DROP TABLE v1_queue -- the end ;", False),
    ("RAISE NOTICE ' ; ' -- quoted, but goose does not know quotes", False),
]


@pytest.mark.parametrize(("line", "ends"), SEMICOLON_LINES)
def test_goose_semicolons(line: str, ends: bool) -> None:
    assert ends_with_semicolon(line) is ends
    text = f"-- +goose Up\n{line}\n"
    if ends:
        assert parse_sql(text, filename="x.sql", direction="up").statements == [line]
    else:
        with pytest.raises(SQLParseError, match=r"^x\.sql:2: unfinished SQL statement .* end of"):
            parse_sql(text, filename="x.sql", direction="up")


# A file around each annotation line that shows which annotation goose took it for.
_CONTEXT = {
    "Up": ("{line}\nSELECT 1;\n", "up", ["SELECT 1;"], True),
    "Down": ("-- +goose Up\nSELECT 1;\n{line}\nSELECT 2;\n", "down", ["SELECT 2;"], True),
    "StatementBegin": (
        "-- +goose Up\n{line}\nSELECT 1;\nSELECT 2;\n-- +goose StatementEnd\n",
        "up",
        ["SELECT 1;\nSELECT 2;"],
        True,
    ),
    "NO TRANSACTION": ("-- +goose Up\n{line}\nSELECT 1;\n", "up", ["SELECT 1;"], False),
}
_UNKNOWN = (
    "; goose accepts only Up, Down, StatementBegin, StatementEnd, NO TRANSACTION, ENVSUB ON, "
    "ENVSUB OFF (nothing else on the line)"
)

# (goose subtest, line, annotation it is, or Err for the refusal on line 1)
ANNOTATION_LINES: list[tuple[str, str, str | Err]] = [
    ("Up", "-- +goose Up", "Up"),
    ("Down", "-- +goose Down", "Down"),
    ("StmtBegin", "-- +goose StatementBegin", "StatementBegin"),
    ("NoTransact", "-- +goose NO TRANSACTION", "NO TRANSACTION"),
    ("NoTransact", "-- +goose no transaction", "NO TRANSACTION"),
    (
        "Unsupported",
        "-- +goose Upgrade",
        Err(1, "unknown annotation '-- +goose Upgrade'" + _UNKNOWN),
    ),
    ("Empty", "-- +goose", Err(1, "empty annotation '-- +goose'")),
    ("statement with spaces and Uppercase", "-- +goose   DOWN \t", "Down"),
    (
        "statement with leading whitespace - error",
        " -- +goose   DOWN \t",
        Err(1, "annotation '-- +goose   DOWN' must not be indented"),
    ),
    (
        "statement with leading \\t - error",
        "\t-- +goose   DOWN \t",
        Err(1, "annotation '-- +goose   DOWN' must not be indented"),
    ),
    (
        "multiple +goose annotations - error",
        "-- +goose +goose Down",
        Err(1, "annotation '-- +goose +goose Down' contains '+goose' more than once"),
    ),
]


@pytest.mark.parametrize(
    ("line", "expected"),
    [a[1:] for a in ANNOTATION_LINES],
    ids=[f"{a[0]}: {a[1]!r}" for a in ANNOTATION_LINES],
)
def test_goose_annotation_lines(line: str, expected: str | Err) -> None:
    if isinstance(expected, Err):
        with pytest.raises(SQLParseError) as caught:
            parse_sql(line + "\n-- +goose Up\n", filename="x.sql", direction="up")
        assert str(caught.value) == f"x.sql:{expected.line}: {expected.problem}"
        return
    template, direction, statements, use_transaction = _CONTEXT[expected]
    parsed = parse_sql(template.format(line=line), filename="x.sql", direction=direction)  # type: ignore[arg-type]
    assert (parsed.statements, parsed.use_transaction) == (statements, use_transaction)


def test_every_input_file_has_a_case() -> None:
    on_disk = {p.name for p in CASES_DIR.glob("*.sql")}
    assert on_disk == {c.file for c in CASES}
    assert len(CASES) == len(on_disk)  # no file listed twice


def test_every_goose_parser_test_is_mirrored() -> None:
    mirrored = {c.mirrors for c in CASES} | ({"TestSemicolons"} if SEMICOLON_LINES else set())
    mirrored |= {f"Test_extractAnnotation/{a[0]}" for a in ANNOTATION_LINES}
    assert mirrored == GOOSE_TESTS

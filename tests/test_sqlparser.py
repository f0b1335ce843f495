"""Golden vectors for the goose SQL parser: every rule and quirk, exact statements and errors."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cli import EXIT_BLOCKED, exit_code_of
from migrator.errors import SQLParseError
from migrator.sqlparser import ParsedSQL, ends_with_semicolon, go_trim_space, parse_sql

F = "00001_x.sql"
ENV = {"SCHEMA": "app", "EMPTY": "", "NAME": "héllo"}

# (id, file text, direction, expected statements)
VALID: list[tuple[str, str, str, list[str]]] = [
    ("simple up", "-- +goose Up\nSELECT 1;\n", "up", ["SELECT 1;"]),
    ("no down section", "-- +goose Up\nSELECT 1;\n", "down", []),
    (
        "down only its own section",
        "-- +goose Up\nCREATE TABLE t (id int);\n-- +goose Down\nDROP TABLE t;\n",
        "down",
        ["DROP TABLE t;"],
    ),
    (
        "up stops at down",
        "-- +goose Up\nCREATE TABLE t (id int);\n-- +goose Down\nDROP TABLE t;\n",
        "up",
        ["CREATE TABLE t (id int);"],
    ),
    (
        "multi-line statement keeps indentation",
        "-- +goose Up\nCREATE TABLE t (\n    id int\n);\n",
        "up",
        ["CREATE TABLE t (\n    id int\n);"],
    ),
    (
        "comments and empty lines before a statement are dropped",
        "-- +goose Up\n-- first\n\n-- second\nSELECT 1;\n",
        "up",
        ["SELECT 1;"],
    ),
    (
        "comment and empty line inside a statement are kept",
        "-- +goose Up\nSELECT\n-- inner\n\n1;\n",
        "up",
        ["SELECT\n-- inner\n\n1;"],
    ),
    (
        "whitespace-only line starts a statement and keeps later comments",
        "-- +goose Up\n   \n-- kept\nSELECT 1;\n",
        "up",
        ["-- kept\nSELECT 1;"],
    ),
    (
        "two commands on one line are one statement",
        "-- +goose Up\nSELECT 1; SELECT 2;\n",
        "up",
        ["SELECT 1; SELECT 2;"],
    ),
    (
        "semicolon glued to a -- word does not end the statement",
        "-- +goose Up\nSELECT 1;-- x\nSELECT 2;\n",
        "up",
        ["SELECT 1;-- x\nSELECT 2;"],
    ),
    (
        "trailing comment after a semicolon",
        "-- +goose Up\nSELECT 1; -- note\n",
        "up",
        ["SELECT 1; -- note"],
    ),
    (
        "semicolon inside a trailing comment does not count",
        "-- +goose Up\nSELECT 1 -- not the end;\n;\n",
        "up",
        ["SELECT 1 -- not the end;\n;"],
    ),
    ("a lone semicolon word ends it", "-- +goose Up\nSELECT 1 ;\n", "up", ["SELECT 1 ;"]),
    ("tab before the comment", "-- +goose Up\nSELECT 1;\t--x\n", "up", ["SELECT 1;\t--x"]),
    (
        "no quote awareness: a semicolon in a string splits",
        "-- +goose Up\nINSERT INTO t VALUES ('a;\nb');\n",
        "up",
        ["INSERT INTO t VALUES ('a;", "b');"],
    ),
    (
        "no dollar-quote awareness without StatementBegin",
        "-- +goose Up\nDO $$ BEGIN\nPERFORM 1;\nEND $$;\n",
        "up",
        ["DO $$ BEGIN\nPERFORM 1;", "END $$;"],
    ),
    (
        "StatementBegin/End keeps several commands together",
        "-- +goose Up\n-- +goose StatementBegin\nCREATE FUNCTION f() RETURNS int AS $$\n"
        "BEGIN RETURN 1; END;\n$$ LANGUAGE plpgsql;\nSELECT f();\n-- +goose StatementEnd\n",
        "up",
        [
            "CREATE FUNCTION f() RETURNS int AS $$\nBEGIN RETURN 1; END;\n$$ LANGUAGE plpgsql;\n"
            "SELECT f();"
        ],
    ),
    (
        "StatementBegin in the down section",
        "-- +goose Up\nSELECT 1;\n-- +goose Down\n-- +goose StatementBegin\nSELECT 2;\n"
        "SELECT 3;\n-- +goose StatementEnd\nSELECT 4;\n",
        "down",
        ["SELECT 2;\nSELECT 3;", "SELECT 4;"],
    ),
    (
        "block without trailing semicolon is fine",
        "-- +goose Up\n-- +goose StatementBegin\nSELECT 1\n-- +goose StatementEnd\n",
        "up",
        ["SELECT 1"],
    ),
    (
        "empty block swallows the next non-comment line and yields an empty statement",
        "-- +goose Up\n-- +goose StatementBegin\n-- +goose StatementEnd\n-- c\n\n"
        "SELECT 1;\nSELECT 2;\n",
        "up",
        ["", "SELECT 2;"],
    ),
    (
        "empty block swallows a whitespace-only line",
        "-- +goose Up\n-- +goose StatementBegin\n-- +goose StatementEnd\n  \nSELECT 2;\n",
        "up",
        ["", "SELECT 2;"],
    ),
    (
        "empty block followed by Down yields nothing",
        "-- +goose Up\nSELECT 1;\n-- +goose StatementBegin\n-- +goose StatementEnd\n"
        "-- +goose Down\nSELECT 2;\n",
        "up",
        ["SELECT 1;"],
    ),
    (
        "empty block at end of file yields nothing",
        "-- +goose Up\n-- +goose Down\n-- +goose StatementBegin\n-- +goose StatementEnd\n",
        "down",
        [],
    ),
    ("empty down section", "-- +goose Up\nSELECT 1;\n-- +goose Down\n", "down", []),
    (
        "annotations are case-insensitive",
        "-- +goose up\nSELECT 1;\n-- +goose DOWN\n-- +goose statementbegin\nSELECT 2;\n"
        "-- +goose STATEMENTEND\n",
        "down",
        ["SELECT 2;"],
    ),
    ("no space after --", "--+goose Up\nSELECT 1;\n", "up", ["SELECT 1;"]),
    ("padding inside the annotation", "-- +goose   Up \t\nSELECT 1;\n", "up", ["SELECT 1;"]),
    ("every -- is removed", "---- +goose Up --\nSELECT 1;\n", "up", ["SELECT 1;"]),
    (
        "Go simple case folding (long s)",
        "-- +goose Up\n-- +goose \u017ftatementBegin\nSELECT 1;\n-- +goose StatementEnd\n",
        "up",
        ["SELECT 1;"],
    ),
    (
        "vertical tab is not leading whitespace for goose",
        "\v-- +goose Up\nSELECT 1;\n",
        "up",
        ["SELECT 1;"],
    ),
    (
        "+GOOSE in capitals is an ordinary comment",
        "-- +goose Up\n-- +GOOSE Down\nSELECT 1;\n",
        "up",
        ["SELECT 1;"],
    ),
    (
        "blank and whitespace lines before Up",
        "\n   \n\t\n-- +goose Up\nSELECT 1;\n",
        "up",
        ["SELECT 1;"],
    ),
    (
        "comments before Up",
        "-- header\n-- more\n-- +goose Up\nSELECT 1;\n",
        "up",
        ["SELECT 1;"],
    ),
    (
        "NBSP-only line before Up is Go white space",
        "\u00a0\n-- +goose Up\nSELECT 1;\n",
        "up",
        ["SELECT 1;"],
    ),
    (
        "CRLF line endings",
        "-- +goose Up\r\nSELECT\r\n1;\r\n-- +goose Down\r\nSELECT 2;\r\n",
        "up",
        ["SELECT\n1;"],
    ),
    (
        "lone CR is not a line break",
        "-- +goose Up\nSELECT 1;\rSELECT 2;\n",
        "up",
        ["SELECT 1;\rSELECT 2;"],
    ),
    ("no newline at end of file", "-- +goose Up\nSELECT 1;", "up", ["SELECT 1;"]),
    (
        "legacy path: an unfinished up statement does not block the down",
        "-- +goose Up\nSELECT 1\n-- +goose Down\nSELECT 2;\n",
        "down",
        ["SELECT 2;"],
    ),
    (
        "legacy path: an unfinished down statement does not block the up",
        "-- +goose Up\nSELECT 1;\n-- +goose Down\nSELECT 2\n",
        "up",
        ["SELECT 1;"],
    ),
    (
        "envsub: $VAR, ${VAR}, defaults, escapes",
        "-- +goose ENVSUB ON\n-- +goose Up\n"
        "SELECT '$SCHEMA ${SCHEMA} ${EMPTY:-d1} ${EMPTY-d2} ${NOPE-d3} $$ \\$ \\\\ $(x)';\n",
        "up",
        ["SELECT 'app app d1  d3 $ $ \\\\ $(x)';"],
    ),
    (
        "envsub: a $ at the very end of a line is literal",
        "-- +goose Up\n-- +goose ENVSUB ON\n-- +goose StatementBegin\nSELECT 1; -- costs 5$\n"
        "-- +goose StatementEnd\n",
        "up",
        ["SELECT 1; -- costs 5$"],
    ),
    (
        "envsub: unset variable is empty; nested default; substring is bytes",
        "-- +goose Up\n-- +goose ENVSUB ON\n"
        "SELECT '$NOPE|${NOPE:-${SCHEMA}}|${NAME:0:3}|${SCHEMA:-2}';\n",
        "up",
        ["SELECT '|app|h\u00e9|app';"],
    ),
    (
        "envsub OFF stops substitution",
        "-- +goose Up\n-- +goose ENVSUB ON\nSELECT '$SCHEMA';\n-- +goose ENVSUB OFF\n"
        "SELECT '$SCHEMA';\n",
        "up",
        ["SELECT 'app';", "SELECT '$SCHEMA';"],
    ),
    (
        "envsub inside a StatementBegin block",
        "-- +goose Up\n-- +goose ENVSUB ON\n-- +goose StatementBegin\nCREATE SCHEMA ${SCHEMA};\n"
        "SELECT $$x$$;\n-- +goose StatementEnd\n",
        "up",
        ["CREATE SCHEMA app;\nSELECT $x$;"],
    ),
    (
        "envsub leaves comments before a statement alone",
        "-- +goose Up\n-- +goose ENVSUB ON\n-- costs $1\nSELECT 1;\n",
        "up",
        ["SELECT 1;"],
    ),
]

# (id, file text, direction, exact error message)
INVALID: list[tuple[str, str, str, str]] = [
    ("empty file", "", "down", f"{F}:1: no '-- +goose Up' annotation"),
    ("only comments", "-- a\n-- b\n", "down", f"{F}:2: no '-- +goose Up' annotation"),
    (
        "SQL before Up",
        "SELECT 1;\n-- +goose Up\n",
        "down",
        f"{F}:1: SQL text before '-- +goose Up': 'SELECT 1;'",
    ),
    (
        "UTF-8 BOM breaks the parse",
        "\ufeff-- +goose Up\nSELECT 1;\n",
        "up",
        f"{F}:1: SQL text before '-- +goose Up': '\\ufeff-- +goose Up'",
    ),
    (
        "Go white space excludes \\x1c",
        "\x1c\n-- +goose Up\n",
        "up",
        f"{F}:1: SQL text before '-- +goose Up': '\\x1c'",
    ),
    (
        "duplicate Up",
        "-- +goose Up\nSELECT 1;\n-- +goose Up\n",
        "down",
        f"{F}:3: duplicate '-- +goose Up' annotation",
    ),
    (
        "Down before Up",
        "-- +goose Down\n-- +goose Up\n",
        "down",
        f"{F}:1: '-- +goose Down' before '-- +goose Up'",
    ),
    (
        "Down twice",
        "-- +goose Up\n-- +goose Down\n-- +goose Down\n",
        "down",
        f"{F}:3: duplicate '-- +goose Down' annotation",
    ),
    (
        "Down inside an open block (blocks the down too)",
        "-- +goose Up\n-- +goose StatementBegin\nSELECT 1;\n-- +goose Down\n",
        "down",
        f"{F}:4: '-- +goose Down' inside the StatementBegin block opened at line 2 "
        "(missing '-- +goose StatementEnd'?)",
    ),
    (
        "StatementBegin before Up",
        "-- +goose StatementBegin\n",
        "down",
        f"{F}:1: '-- +goose StatementBegin' before '-- +goose Up'",
    ),
    (
        "nested StatementBegin",
        "-- +goose Up\n-- +goose StatementBegin\n-- +goose StatementBegin\n",
        "up",
        f"{F}:3: '-- +goose StatementBegin' inside the block opened at line 2 "
        "(missing '-- +goose StatementEnd'?)",
    ),
    (
        "StatementEnd without Begin",
        "-- +goose Up\n-- +goose StatementEnd\n",
        "up",
        f"{F}:2: '-- +goose StatementEnd' without a StatementBegin",
    ),
    (
        "missing StatementEnd at end of file",
        "-- +goose Up\nSELECT 1;\n-- +goose Down\n-- +goose StatementBegin\nSELECT 2;\n",
        "up",
        f"{F}:4: '-- +goose StatementBegin' has no matching StatementEnd",
    ),
    (
        "unfinished statement at end of file",
        "-- +goose Up\n-- +goose Down\nDROP\nTABLE t\n",
        "down",
        f"{F}:3: unfinished SQL statement 'DROP' at end of file (missing semicolon?)",
    ),
    (
        "unfinished up statement before Down",
        "-- +goose Up\nSELECT 1\n-- +goose Down\n",
        "up",
        f"{F}:2: unfinished SQL statement 'SELECT 1' before '-- +goose Down' (missing semicolon?)",
    ),
    (
        "indented annotation",
        "-- +goose Up\n  -- +goose Down\n",
        "down",
        f"{F}:2: annotation '-- +goose Down' must not be indented",
    ),
    (
        "anything after the annotation",
        "-- +goose Up\n-- +goose Down -- note\n",
        "down",
        f"{F}:2: unknown annotation '-- +goose Down -- note'; goose accepts only Up, Down, "
        "StatementBegin, StatementEnd, NO TRANSACTION, ENVSUB ON, ENVSUB OFF "
        "(nothing else on the line)",
    ),
    (
        "ENVSUBST is not ENVSUB",
        "-- +goose ENVSUBST ON\n",
        "up",
        f"{F}:1: unknown annotation '-- +goose ENVSUBST ON'; goose accepts only Up, Down, "
        "StatementBegin, StatementEnd, NO TRANSACTION, ENVSUB ON, ENVSUB OFF "
        "(nothing else on the line)",
    ),
    ("empty annotation", "-- +goose\n", "up", f"{F}:1: empty annotation '-- +goose'"),
    (
        "two +goose",
        "-- +goose +goose Up\n",
        "up",
        f"{F}:1: annotation '-- +goose +goose Up' contains '+goose' more than once",
    ),
    (
        "a comment mentioning +goose is an annotation",
        "-- +goose Up\nSELECT 1;\n-- see +goose docs\n",
        "up",
        f"{F}:3: unknown annotation '-- see +goose docs'; goose accepts only Up, Down, "
        "StatementBegin, StatementEnd, NO TRANSACTION, ENVSUB ON, ENVSUB OFF "
        "(nothing else on the line)",
    ),
    (
        "envsub: $1 is not a variable",
        "-- +goose Up\n-- +goose ENVSUB ON\nSELECT $1;\n",
        "up",
        f"{F}:3: variable substitution failed: expected a variable name (a letter) after '$' "
        "at column 9, got '1'; write $$ for a literal $",
    ),
    (
        "envsub error in the up section blocks the down too",
        "-- +goose ENVSUB ON\n-- +goose Up\nSELECT $1;\n-- +goose Down\nSELECT 2;\n",
        "down",
        f"{F}:3: variable substitution failed: expected a variable name (a letter) after '$' "
        "at column 9, got '1'; write $$ for a literal $",
    ),
    (
        "envsub: required variable",
        "-- +goose Up\n-- +goose ENVSUB ON\nSELECT '${NOPE?set NOPE first}';\n",
        "up",
        f"{F}:3: variable substitution failed: $NOPE: set NOPE first",
    ),
    (
        "envsub: required variable, default message",
        "-- +goose Up\n-- +goose ENVSUB ON\nSELECT '${NOPE?}';\n",
        "up",
        f"{F}:3: variable substitution failed: $NOPE: not set",
    ),
    (
        "envsub: unclosed brace",
        "-- +goose Up\n-- +goose ENVSUB ON\nSELECT '${SCHEMA:-x';\n",
        "up",
        f"{F}:3: variable substitution failed: '${{SCHEMA' is not closed with '}}' "
        "(got end of line)",
    ),
]


@pytest.mark.parametrize(
    ("text", "direction", "expected"), [c[1:] for c in VALID], ids=[c[0] for c in VALID]
)
def test_statements_match_goose(text: str, direction: str, expected: list[str]) -> None:
    parsed = parse_sql(text, filename=F, direction=direction, env=ENV)  # type: ignore[arg-type]
    assert parsed.statements == expected
    # Bytes in, same answer.
    again = parse_sql(text.encode(), filename=F, direction=direction, env=ENV)  # type: ignore[arg-type]
    assert again == parsed


@pytest.mark.parametrize(
    ("text", "direction", "message"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_errors_name_file_and_line(text: str, direction: str, message: str) -> None:
    with pytest.raises(SQLParseError) as err:
        parse_sql(text, filename=F, direction=direction, env=ENV)  # type: ignore[arg-type]
    assert str(err.value) == message
    assert exit_code_of(err.value) == EXIT_BLOCKED


def test_no_transaction_anywhere_applies_to_both_directions() -> None:
    text = "-- +goose Up\nSELECT 1;\n-- +goose Down\n-- +goose no transaction\nSELECT 2;\n"
    for direction in ("up", "down"):
        parsed = parse_sql(text, filename=F, direction=direction)  # type: ignore[arg-type]
        assert parsed.use_transaction is False
    plain = parse_sql("-- +goose Up\nSELECT 1;\n", filename=F, direction="up")
    assert plain.use_transaction is True


def test_no_transaction_before_up() -> None:
    text = "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX CONCURRENTLY i ON t (c);\n"
    assert parse_sql(text, filename=F, direction="up") == ParsedSQL(
        ["CREATE INDEX CONCURRENTLY i ON t (c);"], False, True
    )


def test_section_present_tells_missing_from_empty_down() -> None:
    missing = parse_sql("-- +goose Up\nSELECT 1;\n", filename=F, direction="down")
    empty = parse_sql("-- +goose Up\nSELECT 1;\n-- +goose Down\n", filename=F, direction="down")
    assert (missing.section_present, empty.section_present) == (False, True)
    assert missing.statements == empty.statements == []


def test_env_defaults_to_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HS_TEST_SCHEMA", "from_env")
    text = "-- +goose Up\n-- +goose ENVSUB ON\nCREATE SCHEMA $HS_TEST_SCHEMA;\n"
    assert parse_sql(text, filename=F, direction="up").statements == ["CREATE SCHEMA from_env;"]


def test_unfinished_statement_message_never_shows_substituted_values() -> None:
    text = "-- +goose Up\n-- +goose ENVSUB ON\nSELECT '${SECRET}'\n"
    with pytest.raises(SQLParseError) as err:
        parse_sql(text, filename=F, direction="up", env={"SECRET": "hunter2"})
    assert "hunter2" not in str(err.value)
    assert "${SECRET}" in str(err.value)


def test_invalid_utf8_in_a_statement_to_run_is_refused_but_not_elsewhere() -> None:
    data = b"-- +goose Up\nSELECT '\xff';\n-- +goose Down\nSELECT 2;\n"
    assert parse_sql(data, filename=F, direction="down").statements == ["SELECT 2;"]
    with pytest.raises(SQLParseError, match=r"00001_x\.sql:2: statement is not valid UTF-8"):
        parse_sql(data, filename=F, direction="up")


def test_line_of_4_mib_cannot_be_read() -> None:
    long_line = "SELECT '" + "x" * (4 * 1024 * 1024) + "';"
    with pytest.raises(SQLParseError, match=r":2: line is 4 MiB or longer"):
        parse_sql("-- +goose Up\n" + long_line + "\n", filename=F, direction="up")
    fits = "SELECT '" + "x" * (4 * 1024 * 1024 - 20) + "';"
    assert parse_sql("-- +goose Up\n" + fits, filename=F, direction="up").statements == [fits]


@pytest.mark.parametrize(
    ("line", "ends"),
    [
        ("END;", True),
        ("END; -- comment", True),
        ("END   ; -- comment", True),
        ("END -- comment", False),
        ("END -- comment ;", False),
        ('END " ; " -- comment', False),
        ("SELECT 1;--x", False),
        ("SELECT 1;\u3000", True),
        ("", False),
    ],
)
def test_last_word_semicolon_rule(line: str, ends: bool) -> None:
    assert ends_with_semicolon(line) is ends


_LINES = st.sampled_from(
    [
        "-- +goose Up",
        "-- +goose Down",
        "-- +goose StatementBegin",
        "-- +goose StatementEnd",
        "-- +goose NO TRANSACTION",
        "-- +goose ENVSUB ON",
        "-- +goose ENVSUB OFF",
        "SELECT 1;",
        "SELECT",
        "1;",
        "-- c",
        "",
        "  ",
        "$$",
        "${A",
        "$1",
        "\ufeff",
        "-- +goose x",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(st.one_of(_LINES, st.text(max_size=20)), max_size=25),
    direction=st.sampled_from(["up", "down"]),
    envsub=st.booleans(),
)
def test_any_text_parses_or_raises_parse_error(
    lines: list[str], direction: str, envsub: bool
) -> None:
    text = ("-- +goose ENVSUB ON\n" if envsub else "") + "\n".join(lines)
    try:
        parsed = parse_sql(text, filename=F, direction=direction, env={"A": "1"})  # type: ignore[arg-type]
    except SQLParseError as exc:
        assert str(exc).startswith(F + ":")
    else:
        assert all(s == go_trim_space(s) for s in parsed.statements)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=200), direction=st.sampled_from(["up", "down"]))
def test_any_bytes_parse_or_raise_parse_error(data: bytes, direction: str) -> None:
    with contextlib.suppress(SQLParseError):
        parse_sql(b"-- +goose Up\n" + data, filename=F, direction=direction, env={})  # type: ignore[arg-type]

"""goose's version table and current-version rule, and connecting the way hatchet-migrate does."""

from __future__ import annotations

from datetime import datetime

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from cli import exit_code_of
from migrator.database import connect, redact_url
from migrator.errors import BadInputError, MigratorError
from migrator.versions import VersionRow, applied_versions, current_version, read_version_rows
from tests.goose_up import FIXTURE_MIGRATIONS, apply_up, ensure_version_table


def rows(*spec: tuple[int, bool]) -> list[VersionRow]:
    """Rows with ids 1..n in the given order (baseline first if given)."""
    return [VersionRow(id=i, version_id=v, is_applied=a, tstamp=None) for i, (v, a) in
            enumerate(spec, start=1)]  # fmt: skip


# --- goose's current-version rule (pure) ------------------------------------------------------


def test_current_is_the_most_recently_applied_row_not_the_largest_version() -> None:
    table = rows((0, True), (10, True), (30, True), (20, True))
    assert current_version(table) == 20
    assert applied_versions(table) == [10, 30, 20]


def test_a_version_whose_newest_row_is_not_applied_is_skipped() -> None:
    # goose's old down wrote is_applied=false rows instead of deleting.
    table = rows((0, True), (10, True), (20, True), (20, False))
    assert current_version(table) == 10
    assert applied_versions(table) == [10]


def test_an_older_applied_row_of_a_skipped_version_does_not_count() -> None:
    table = rows((0, True), (10, True), (20, True), (30, True), (20, False), (30, False))
    assert current_version(table) == 10


def test_a_reapplied_version_counts_from_its_newest_row() -> None:
    table = rows((0, True), (10, True), (20, True), (20, False), (30, True), (20, True))
    assert current_version(table) == 20
    assert applied_versions(table) == [10, 30, 20]


def test_row_order_is_by_id_not_by_list_position() -> None:
    table = [
        VersionRow(id=5, version_id=20, is_applied=True, tstamp=None),
        VersionRow(id=9, version_id=10, is_applied=True, tstamp=None),
        VersionRow(id=1, version_id=0, is_applied=True, tstamp=None),
    ]
    assert current_version(table) == 10


def test_baseline_only_or_empty_is_version_zero() -> None:
    assert current_version(rows((0, True))) == 0
    assert current_version([]) == 0
    assert applied_versions(rows((0, True))) == []


# --- reading the table from PostgreSQL ---------------------------------------------------------


@pytest.mark.parametrize("serial_table", [False, True], ids=["identity", "serial"])
def test_reads_both_table_forms_after_goose_up(database_url: str, serial_table: bool) -> None:
    apply_up(database_url, FIXTURE_MIGRATIONS, to_version=20250402090000,
             serial_table=serial_table)  # fmt: skip
    with connect(database_url, read_only=True) as conn:
        table = read_version_rows(conn)
    assert [r.version_id for r in table] == [
        0, 20250311000000, 20250318101500, 20250325120000, 20250402090000,
    ]  # fmt: skip
    assert all(r.is_applied for r in table)
    assert all(isinstance(r.tstamp, datetime) for r in table)
    assert current_version(table) == 20250402090000


def test_current_version_from_a_table_with_unapplied_and_reapplied_rows(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        ensure_version_table(conn)
        for version, applied in [(1, True), (3, True), (2, True), (3, False), (2, False),
                                 (2, True)]:  # fmt: skip
            conn.execute(
                "INSERT INTO goose_db_version (version_id, is_applied) VALUES (%s, %s)",
                (version, applied),
            )
    with connect(database_url, read_only=True) as conn:
        table = read_version_rows(conn)
    assert current_version(table) == 2
    assert applied_versions(table) == [1, 2]


def test_database_without_version_table_is_bad_input_and_is_not_created(
    database_url: str,
) -> None:
    with connect(database_url) as conn:
        with pytest.raises(BadInputError) as err:
            read_version_rows(conn)
        exists = conn.execute("SELECT to_regclass('goose_db_version')").fetchone()
    assert exit_code_of(err.value) == 2
    assert "not a goose-managed" in str(err.value)
    assert exists == (None,)


def test_table_in_another_schema_is_not_used(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA elsewhere")
        conn.execute("SET search_path = elsewhere")
        ensure_version_table(conn)
    with connect(database_url) as conn, pytest.raises(BadInputError):
        read_version_rows(conn)


# --- connecting --------------------------------------------------------------------------------


def test_connect_sets_up_the_session_like_hatchet_migrate(database_url: str) -> None:
    with connect(database_url) as conn:
        settings = conn.execute(
            "SELECT current_setting('statement_timeout'), "
            "current_setting('idle_in_transaction_session_timeout'), "
            "current_setting('application_name'), current_setting('default_transaction_read_only')"
        ).fetchone()
        assert conn.autocommit
    assert settings == ("0", "0", "hatchet-schema", "off")


def test_read_only_connection_cannot_write(database_url: str) -> None:
    with (
        connect(database_url, read_only=True) as conn,
        pytest.raises(psycopg.errors.ReadOnlySqlTransaction),
    ):
        conn.execute("CREATE TABLE should_not_exist (id int)")
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT to_regclass('should_not_exist')").fetchone() == (None,)


@pytest.mark.parametrize(
    "url",
    ["not a url at all", "postgresql://user:s3cretpw@127.0.0.1:notaport/db", "   "],
)
def test_malformed_url_is_bad_input_without_password(url: str) -> None:
    with pytest.raises(BadInputError) as err:
        connect(url)
    assert exit_code_of(err.value) == 2
    assert "s3cretpw" not in str(err.value)


def test_unreachable_server_fails_with_exit_1_without_password() -> None:
    # Port 1 on loopback: nothing listens there, the connection is refused at once.
    with pytest.raises(MigratorError) as err:
        connect("postgresql://hatchet:s3cretpw@127.0.0.1:1/hatchet?connect_timeout=2")
    assert exit_code_of(err.value) == 1
    assert "s3cretpw" not in str(err.value)
    assert "127.0.0.1" in str(err.value)


def test_wrong_password_message_does_not_echo_it(database_url: str) -> None:
    params = conninfo_to_dict(database_url)
    params.update(user="no_such_role_hs", password="s3cretpw")
    with pytest.raises(MigratorError) as err:
        connect(make_conninfo(**params))
    assert "s3cretpw" not in str(err.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://hatchet:s3cret@db:5432/hatchet", "postgresql://hatchet:***@db:5432/hatchet"),
        ("postgres://hatchet@db/hatchet", "postgres://hatchet@db/hatchet"),
        ("postgresql://u:p%40ss@h/d?sslmode=disable", "postgresql://u:***@h/d?sslmode=disable"),
        ("postgresql://h/d?user=u&password=s3cret", "postgresql://h/d?user=u&password=***"),
        ("host=db user=u password=s3cret dbname=d", "host=db user=u password=*** dbname=d"),
        ("host=db password='s3 cret' dbname=d", "host=db password=*** dbname=d"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected

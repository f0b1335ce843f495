"""The CLI's lock options: ``--lock-timeout`` is goose's lock, ``--ddl-lock-timeout``,
``--ddl-lock-retries`` and ``--statement-timeout`` reach the run, and waits show on stderr.
In-process (``invoke_cli``), with the runner's backoff recorded instead of slept."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import pytest

from tests.e2e_helpers import invoke_cli_with_database, no_real_sleeps, ok, refused
from tests.goose_up import apply_up, relation_names, version_ids

pytestmark = pytest.mark.e2e

BASE, LOCKED = 20250301000000, 20250302000000  # above the floor (v0.55.0)


def two_migrations(tmp_path: Path) -> Path:
    directory = tmp_path / "migrations"
    directory.mkdir()
    (directory / f"{BASE}_base.sql").write_text(
        "-- +goose Up\nCREATE TABLE hs_base (id INT);\n-- +goose Down\nDROP TABLE hs_base;\n"
    )
    (directory / f"{LOCKED}_locked.sql").write_text(
        "-- +goose Up\nCREATE TABLE hs_locked (id INT);\n-- +goose Down\nDROP TABLE hs_locked;\n"
    )
    return directory


def test_help_says_which_lock_each_option_is_about(tmp_path: Path) -> None:
    result = invoke_cli_with_database(["downgrade", "--help"], None, tmp_path, None)
    text = re.sub(r"[\s│]+", " ", ok(result).stdout)
    assert "--lock-timeout" in text and "goose's migration lock" in text
    for option in ("--ddl-lock-timeout", "--ddl-lock-retries", "--statement-timeout"):
        assert option in text
    assert "lock_timeout" in text and "statement_timeout" in text


def test_ddl_lock_wait_is_shown_and_the_run_fails_naming_the_session(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps = no_real_sleeps(monkeypatch)
    directory = two_migrations(tmp_path)
    apply_up(database_url, directory)
    args = ["downgrade", "--to-version", str(BASE), "--migrations-dir", str(directory), "--yes",
            "--ignore-active-sessions", "--ddl-lock-timeout", "0.2", "--ddl-lock-retries", "1",
            "--statement-timeout", "30"]  # fmt: skip
    with psycopg.connect(database_url, application_name="hatchet-api") as holder:
        holder.execute("SELECT count(*) FROM hs_locked")  # ACCESS SHARE until the rollback
        pid = holder.info.backend_pid
        result = invoke_cli_with_database(args, None, tmp_path, database_url)
        holder.rollback()
    message = refused(result, 1)
    waits = [line for line in message.splitlines() if line.startswith("lock wait:")]
    assert len(waits) == 1, message
    assert f"pid {pid}" in waits[0] and "hatchet-api" in waits[0] and "hs_locked" in waits[0]
    assert "try 1 of 2" in waits[0]
    assert sleeps == [0.5]  # one backoff (0.5 s, as the README says), before the only retry
    assert f"pg_terminate_backend({pid})" in message
    assert version_ids(database_url)[-1] == LOCKED
    assert "hs_locked" in relation_names(database_url)

    # Without the blocker the same command runs.
    ok(invoke_cli_with_database(args, None, tmp_path, database_url))
    assert version_ids(database_url)[-1] == BASE

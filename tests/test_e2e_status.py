"""End to end: ``hatchet-schema status`` in-process (``invoke_cli``), against the local GitHub
emulator and a real database migrated up through the fixture migrations."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from fixtures.github_emulator import Emulator
from tests.e2e_helpers import CliResult, invoke_cli, invoke_cli_with_database
from tests.goose_up import FIXTURE_MIGRATIONS, apply_up, schema_snapshot

pytestmark = pytest.mark.e2e

NEWEST = 20250611170000
ORPHAN = 20250620000000


def status(gh: Emulator, tmp_path: Path, database_url: str | None, *extra: str) -> CliResult:
    return invoke_cli_with_database(["status", *extra], gh, tmp_path, database_url)


def status_json(gh: Emulator, tmp_path: Path, database_url: str) -> dict[str, object]:
    result = status(gh, tmp_path, database_url, "--json")
    assert result.returncode == 0, str(result)
    document = json.loads(result.stdout)
    assert isinstance(document, dict)
    return document


def test_status_at_the_newest_release(gh: Emulator, migrated: str, tmp_path: Path) -> None:
    before = schema_snapshot(migrated)
    document = status_json(gh, tmp_path, migrated)
    assert document["current_version"] == NEWEST
    assert document["releases"] == ["v0.60.0"]
    assert document["orphans"] == []
    assert document["other_sessions"] == []
    result = status(gh, tmp_path, migrated)
    assert result.returncode == 0, str(result)
    assert str(NEWEST) in result.stdout and "v0.60.0" in result.stdout
    assert schema_snapshot(migrated) == before  # read-only


def test_status_names_every_release_at_the_version(
    gh: Emulator, database_url: str, tmp_path: Path
) -> None:
    apply_up(database_url, FIXTURE_MIGRATIONS, to_version=20250521090000)
    document = status_json(gh, tmp_path, database_url)
    assert document["current_version"] == 20250521090000
    assert document["releases"] == ["v0.58.1", "v0.58.0"]


def test_status_reports_orphan_rows(gh: Emulator, migrated: str, tmp_path: Path) -> None:
    with psycopg.connect(migrated, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO goose_db_version (version_id, is_applied) VALUES (%s, true)", (ORPHAN,)
        )
    document = status_json(gh, tmp_path, migrated)
    assert document["orphans"] == [ORPHAN]
    assert document["current_version"] == ORPHAN  # goose: the most recently applied row
    result = status(gh, tmp_path, migrated)
    assert result.returncode == 0, str(result)
    assert str(ORPHAN) in result.stdout and "orphan" in result.stdout


def test_status_places_a_version_between_releases(
    gh: Emulator, database_url: str, tmp_path: Path
) -> None:
    # 20250416080000 is past v0.55.1's last migration and before v0.56.0's.
    apply_up(database_url, FIXTURE_MIGRATIONS, to_version=20250416080000)
    document = status_json(gh, tmp_path, database_url)
    assert document["releases"] == []
    assert document["release_range"] == {
        "releases": [],
        "after": "v0.55.1",
        "before": "v0.56.0",
        "shipped_in": ["v0.60.0", "v0.59.0", "v0.58.1", "v0.58.0", "v0.57.1", "v0.57.0", "v0.56.0"],
    }
    result = status(gh, tmp_path, database_url)
    assert "between v0.55.1 and v0.56.0" in result.stdout


def test_status_says_where_a_deleted_version_shipped(
    gh: Emulator, migrated: str, tmp_path: Path
) -> None:
    deleted = 20250505000000  # only v0.57.1 has it; later releases deleted the file
    with psycopg.connect(migrated, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO goose_db_version (version_id, is_applied) VALUES (%s, true), (%s, true)",
            (deleted, NEWEST),
        )
    document = status_json(gh, tmp_path, migrated)
    assert document["orphans"] == [deleted]
    assert document["orphans_shipped_in"] == {str(deleted): ["v0.57.1"]}
    assert f"{deleted} (shipped in v0.57.1)" in status(gh, tmp_path, migrated).stdout


def test_status_lists_other_sessions(gh: Emulator, migrated: str, tmp_path: Path) -> None:
    with psycopg.connect(migrated, autocommit=True, application_name="hatchet-engine") as conn:
        pid = conn.info.backend_pid
        document = status_json(gh, tmp_path, migrated)
        sessions = document["other_sessions"]
        assert isinstance(sessions, list)
        assert [(s["pid"], s["application_name"]) for s in sessions] == [(pid, "hatchet-engine")]
        result = status(gh, tmp_path, migrated)
        assert result.returncode == 0, str(result)
        assert "hatchet-engine" in result.stdout and str(pid) in result.stdout


def test_status_against_a_local_directory_needs_no_github(migrated: str, tmp_path: Path) -> None:
    args = ["status", "--json", "--migrations-dir", str(FIXTURE_MIGRATIONS)]
    # An API URL nothing listens on: any request to GitHub would fail the command.
    result = invoke_cli(
        args,
        None,
        cache_dir=tmp_path / "cache",
        api_url="http://127.0.0.1:9/api/v3",
        env={"DATABASE_URL": migrated},
    )
    assert result.returncode == 0, str(result)
    document = json.loads(result.stdout)
    assert (document["current_version"], document["orphans"]) == (NEWEST, [])


def test_status_without_a_database_url_is_bad_input(gh: Emulator, tmp_path: Path) -> None:
    result = status(gh, tmp_path, None)
    assert result.returncode == 2, str(result)
    assert "DATABASE_URL" in result.stderr


def test_status_of_a_database_goose_does_not_manage(
    gh: Emulator, database_url: str, tmp_path: Path
) -> None:
    result = status(gh, tmp_path, database_url)
    assert result.returncode == 2, str(result)
    assert "goose_db_version" in result.stderr
    assert schema_snapshot(database_url)["versions"] is None

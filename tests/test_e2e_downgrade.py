"""End to end: ``hatchet-schema downgrade --to-release`` in-process (``invoke_cli``), against the
local GitHub emulator serving the fixture history and a real database migrated up to its newest
release (v0.60.0, all 14 fixture migrations)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from fixtures.github_emulator import Emulator
from migrator.backup import find_pg_tool
from tests.conftest import fresh_database
from tests.e2e_helpers import invoke_cli_with_database as cli
from tests.e2e_helpers import ok, refused
from tests.goose_up import (
    FIXTURE_MIGRATIONS,
    relation_names,
    schema_snapshot,
    version_ids,
)

pytestmark = pytest.mark.e2e

ALL_VERSIONS = sorted(
    int(p.name.split("_", 1)[0])
    for p in FIXTURE_MIGRATIONS.iterdir()
    if p.suffix in (".sql", ".go")
)
NEWEST = ALL_VERSIONS[-1]
GO_FILE = "20250430000000_v1_0_7.go"
ORPHAN = 20250620000000
COMPOSE = Path(__file__).resolve().parents[1] / "fixtures" / "compose"
GOLDEN_RELEASE = "v0.60.0"  # the release the compose golden files are written for
STEP_KEYS = {"version", "file", "kind", "transaction", "statements", "warnings", "status"}

# The relation each fixture migration's up creates; its down removes it (v1_0_10 has no Down,
# so its table stays behind).
MARKERS = {
    20250611170000: "v1_match",
    20250604130000: "v1_durable_sleep",
    20250528100000: "v1_task_view",
    20250521090000: "v1_lease",
    20250514120000: "v1_log_line_tenant_id_idx",
    20250507150000: "v1_runs_olap",
    20250430000000: "v1_go_made",
}
NO_DOWN = {20250521090000}


@pytest.fixture
def twin(pg_server_url: str, migrated_template: str) -> Iterator[str]:
    """A second fresh database, migrated up like ``migrated``."""
    with fresh_database(pg_server_url, prefix="hs_twin", template=migrated_template) as url:
        yield url


def git_blob_sha(path: Path) -> str:
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def assert_at(url: str, target: int) -> None:
    """The version table and the schema are exactly what reverting down to ``target`` leaves."""
    assert version_ids(url) == [0, *(v for v in ALL_VERSIONS if v <= target)]
    relations = relation_names(url)
    for version, relation in MARKERS.items():
        if version <= target or version in NO_DOWN:
            assert relation in relations, (version, relation)
        else:
            assert relation not in relations, (version, relation)


# -- real downgrades to every reachable release --------------------------------------------------


@pytest.mark.parametrize(
    ("release", "target"),
    [
        ("v0.59.0", 20250604130000),
        ("v0.58.1", 20250521090000),
        ("v0.58.0", 20250521090000),
        ("v0.57.1", 20250505000000),  # a version the database never had: goose stops below it
        ("v0.57.0", 20250430000000),  # the release's newest file is the .go migration
    ],
)
def test_downgrade_to_each_older_release(
    gh: Emulator, migrated: str, tmp_path: Path, release: str, target: int
) -> None:
    result = ok(cli(["downgrade", "--to-release", release, "--yes"], gh, tmp_path, migrated))
    assert_at(migrated, target)
    expected_final = max(v for v in ALL_VERSIONS if v <= target)
    assert f"-> {expected_final}" in result.stderr
    assert f"{release}" in result.stderr  # the image tags to pin
    assert "sharedConfig.image.tag" in result.stderr


def test_downgrade_release_by_release(gh: Emulator, migrated: str, tmp_path: Path) -> None:
    for release, target in (("v0.59.0", 20250604130000), ("v0.58.1", 20250521090000)):
        ok(cli(["downgrade", "--to-release", release, "--yes"], gh, tmp_path, migrated))
        assert_at(migrated, target)
    result = ok(cli(["downgrade", "--to-release", "v0.58.0", "--yes"], gh, tmp_path, migrated))
    assert "nothing to do" in result.stdout + result.stderr


# -- dry runs ------------------------------------------------------------------------------------


def test_dry_runs_change_nothing(gh: Emulator, migrated: str, tmp_path: Path) -> None:
    before = schema_snapshot(migrated)
    for extra in ([], ["--sql"], ["--json"]):
        args = ["downgrade", "--to-release", "v0.57.0", "--dry-run", *extra]
        ok(cli(args, gh, tmp_path, migrated))
    assert schema_snapshot(migrated) == before


def test_dry_run_names_the_source_ref_and_blob_shas(
    gh: Emulator, migrated: str, tmp_path: Path
) -> None:
    args = ["downgrade", "--to-release", "v0.58.1", "--dry-run"]
    text = ok(cli(args, gh, tmp_path, migrated)).stdout
    assert "v0.60.0" in text  # current release and the source ref
    assert "v0.58.1" in text
    document = json.loads(ok(cli([*args, "--json"], gh, tmp_path, migrated)).stdout)
    assert "v0.60.0" in document["source"]
    for step in document["steps"]:
        assert step["blob_sha"] == git_blob_sha(FIXTURE_MIGRATIONS / step["file"])


def test_dry_run_json_has_the_contract_fields(gh: Emulator, migrated: str, tmp_path: Path) -> None:
    args = ["downgrade", "--to-release", "v0.57.0", "--dry-run", "--json"]
    document = json.loads(ok(cli(args, gh, tmp_path, migrated)).stdout)
    assert document["from_version"] == NEWEST
    assert document["to_version"] == 20250430000000
    assert [s["version"] for s in document["steps"]] == [
        v for v in reversed(ALL_VERSIONS) if v > 20250430000000
    ]
    for step in document["steps"]:
        assert step.keys() >= STEP_KEYS
        assert isinstance(step["version"], int) and isinstance(step["statements"], int)
        assert isinstance(step["transaction"], bool) and isinstance(step["warnings"], list)
        assert step["kind"] == "sql" and step["status"] == "ready"
    by_file = {s["file"]: s for s in document["steps"]}
    assert by_file["20250514120000_v1_0_9.sql"]["transaction"] is False
    assert any("data loss" in w for w in by_file["20250507150000_v1_0_8.sql"]["warnings"])


def test_real_run_json_reports_the_final_version(
    gh: Emulator, migrated: str, tmp_path: Path
) -> None:
    args = ["downgrade", "--to-release", "v0.58.1", "--yes", "--json"]
    document = json.loads(ok(cli(args, gh, tmp_path, migrated)).stdout)
    assert document["final_version"] == 20250521090000
    assert document["from_version"] == NEWEST
    assert all(s["status"] == "done" for s in document["steps"])
    assert {s["version"] for s in document["steps"]} == {
        20250611170000,
        20250604130000,
        20250528100000,
    }


def test_printed_sql_is_what_the_real_run_does(
    gh: Emulator, migrated: str, twin: str, tmp_path: Path
) -> None:
    """The --sql script run by psql on one database leaves exactly what the tool's real run
    leaves on an identical one."""
    args = ["downgrade", "--to-release", "v0.57.0"]
    script = ok(cli([*args, "--dry-run", "--sql"], gh, tmp_path, migrated)).stdout
    path = tmp_path / "down.sql"
    path.write_text(script)
    psql = find_pg_tool("psql")
    assert psql is not None, "psql is needed for this test"
    subprocess.run(
        [str(psql), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", twin, "-f", str(path)],
        check=True,
        capture_output=True,
    )
    ok(cli([*args, "--yes"], gh, tmp_path, migrated))
    assert_at(migrated, 20250430000000)
    assert schema_snapshot(twin) == schema_snapshot(migrated)


# -- backup and compose --------------------------------------------------------------------------


def test_backup_is_a_dump_pg_restore_reads(gh: Emulator, migrated: str, tmp_path: Path) -> None:
    dump = tmp_path / "before.dump"
    args = ["downgrade", "--to-release", "v0.59.0", "--yes", "--backup", str(dump)]
    ok(cli(args, gh, tmp_path, migrated))
    assert_at(migrated, 20250604130000)
    pg_restore = find_pg_tool("pg_restore")
    assert pg_restore is not None, "pg_restore is needed for this test"
    listing = subprocess.run(
        [str(pg_restore), "--list", str(dump)], capture_output=True, text=True, check=True
    ).stdout
    assert "TABLE public v1_match" in listing  # taken before the downgrade


def test_backup_to_an_existing_file_is_refused(gh: Emulator, migrated: str, tmp_path: Path) -> None:
    dump = tmp_path / "exists.dump"
    dump.write_bytes(b"keep me")
    before = schema_snapshot(migrated)
    args = ["downgrade", "--to-release", "v0.59.0", "--yes", "--backup", str(dump)]
    refused(cli(args, gh, tmp_path, migrated), 2)
    assert dump.read_bytes() == b"keep me"
    assert schema_snapshot(migrated) == before


def _compose_copy(tmp_path: Path) -> Path:
    target = tmp_path / "docker-compose.yml"
    target.write_bytes((COMPOSE / "hatchet-stack.input.yml").read_bytes())
    return target


def _golden_for(release: str) -> tuple[bytes, list[str]]:
    golden = (COMPOSE / "hatchet-stack.golden.yml").read_bytes()
    warnings = (COMPOSE / "hatchet-stack.warnings.txt").read_text().splitlines()
    return (
        golden.replace(GOLDEN_RELEASE.encode(), release.encode()),
        [w.replace(GOLDEN_RELEASE, release) for w in warnings if w.strip()],
    )


def test_compose_file_is_pinned_and_kept_as_bak(
    gh: Emulator, migrated: str, tmp_path: Path
) -> None:
    compose = _compose_copy(tmp_path)
    original = compose.read_bytes()
    args = ["downgrade", "--to-release", "v0.59.0", "--yes", "--compose-file", str(compose)]
    result = ok(cli(args, gh, tmp_path, migrated))
    golden, warnings = _golden_for("v0.59.0")
    assert compose.read_bytes() == golden
    assert (tmp_path / "docker-compose.yml.bak").read_bytes() == original
    for warning in warnings:
        assert warning in result.stderr


def test_compose_dry_run_prints_the_diff_only(gh: Emulator, migrated: str, tmp_path: Path) -> None:
    compose = _compose_copy(tmp_path)
    original = compose.read_bytes()
    args = ["downgrade", "--to-release", "v0.59.0", "--dry-run", "--compose-file", str(compose)]
    result = ok(cli(args, gh, tmp_path, migrated))
    assert "+    image: ghcr.io/hatchet-dev/hatchet/hatchet-migrate:v0.59.0" in result.stdout
    assert "-    image: ghcr.io/hatchet-dev/hatchet/hatchet-migrate:latest" in result.stdout
    assert compose.read_bytes() == original
    assert not (tmp_path / "docker-compose.yml.bak").exists()


# -- refusals ------------------------------------------------------------------------------------


def test_prerelease_target_is_refused_unless_allowed(
    gh: Emulator, migrated: str, tmp_path: Path
) -> None:
    args = ["downgrade", "--to-release", "v0.58.0-alpha.1", "--dry-run"]
    assert "--allow-prerelease" in refused(cli(args, gh, tmp_path, migrated), 2)
    document = json.loads(
        ok(cli([*args, "--allow-prerelease", "--json"], gh, tmp_path, migrated)).stdout
    )
    assert document["to_version"] == 20250510000000


def test_unknown_tag_names_the_nearest_releases(
    gh: Emulator, migrated: str, tmp_path: Path
) -> None:
    message = refused(
        cli(["downgrade", "--to-release", "v0.59.9", "--yes"], gh, tmp_path, migrated), 2
    )
    assert "v0.59.0" in message or "v0.60.0" in message


def test_release_before_goose_is_refused(gh: Emulator, migrated: str, tmp_path: Path) -> None:
    message = refused(
        cli(["downgrade", "--to-release", "v0.54.0", "--yes"], gh, tmp_path, migrated), 2
    )
    assert "v0.55.0" in message


def test_no_database_url_is_bad_input(gh: Emulator, tmp_path: Path) -> None:
    message = refused(
        cli(["downgrade", "--to-release", "v0.59.0", "--dry-run"], gh, tmp_path, None), 2
    )
    assert "DATABASE_URL" in message


def test_no_terminal_and_no_yes_is_refused(gh: Emulator, migrated: str, tmp_path: Path) -> None:
    before = schema_snapshot(migrated)
    message = refused(cli(["downgrade", "--to-release", "v0.59.0"], gh, tmp_path, migrated), 2)
    assert "--yes" in message
    assert schema_snapshot(migrated) == before


@pytest.mark.parametrize("mode", ["--dry-run", "--yes"])
def test_plan_through_a_go_step_is_blocked(
    gh: Emulator, migrated: str, tmp_path: Path, mode: str
) -> None:
    before = schema_snapshot(migrated)
    message = refused(
        cli(["downgrade", "--to-release", "v0.56.0", mode], gh, tmp_path, migrated), 3
    )
    assert GO_FILE in message
    assert schema_snapshot(migrated) == before


def test_orphan_row_blocks_the_plan(gh: Emulator, migrated: str, tmp_path: Path) -> None:
    with psycopg.connect(migrated, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO goose_db_version (version_id, is_applied) VALUES (%s, true)", (ORPHAN,)
        )
    before = schema_snapshot(migrated)
    for mode in ("--dry-run", "--yes"):
        message = refused(
            cli(["downgrade", "--to-release", "v0.59.0", mode], gh, tmp_path, migrated), 3
        )
        assert str(ORPHAN) in message
    assert schema_snapshot(migrated) == before

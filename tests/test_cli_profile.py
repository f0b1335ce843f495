"""The profile flags of ``downgrade`` (--trust-go-ports, --no-patches, --skip-orphan) and the
floor, driven in-process with typer's CliRunner against real PostgreSQL and ``--migrations-dir``.
"""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from cli import app
from migrator.hatchet.go_ports import V1_0_66
from tests.goose_up import INSERT_VERSION_SQL, apply_up

CASES = Path(__file__).resolve().parents[1] / "fixtures" / "cases"
UPSTREAM_66 = "f39ddf4f83e38412e03297c28a4073d03c67973d"


def run(database_url: str, *args: str) -> tuple[int, str, str]:
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["downgrade", *args],
        env={"DATABASE_URL": database_url, "HATCHET_SCHEMA_OFFLINE": "1", "NO_COLOR": "1"},
        catch_exceptions=False,
    )
    return result.exit_code, result.stdout, result.stderr


def versions(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT version_id FROM goose_db_version ORDER BY id").fetchall()
    return [int(v) for (v,) in rows]


def test_go_port_sha_mismatch_blocks_then_runs_when_trusted(partitioned: str) -> None:
    directory = str(CASES / "go_partitioned")
    code, out, err = run(
        partitioned, "--to-version", "20250401000000", "--migrations-dir", directory, "--dry-run"
    )
    assert code == 3
    assert UPSTREAM_66 in err and "--trust-go-ports" in err
    assert "Traceback" not in err

    code, out, err = run(
        partitioned,
        "--to-version",
        "20250401000000",
        "--migrations-dir",
        directory,
        "--trust-go-ports",
        "--dry-run",
        "--sql",
    )
    assert code == 0, err
    # Each statement the port sends is in the script, the parent index first (the patch).
    assert out.index('DROP INDEX IF EXISTS "ix_v1_runs_olap_tenant_id"') < out.index(
        "ix_v1_runs_olap_20250401_queued_tenant_id"
    )
    assert "patched:" in out and "NO TRANSACTION" in out
    assert versions(partitioned)[-1] == V1_0_66

    code, out, err = run(
        partitioned,
        "--to-version",
        "20250401000000",
        "--migrations-dir",
        directory,
        "--trust-go-ports",
        "--yes",
        "--json",
    )
    assert code == 0, err
    [step] = json.loads(out)["steps"]
    assert (step["kind"], step["patched"], step["status"]) == ("go", True, "done")
    assert step["patch_reason"]
    assert versions(partitioned) == [0, 20250401000000]


@pytest.fixture
def members(database_url: str) -> str:
    apply_up(database_url, CASES / "enum_in_use")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("""INSERT INTO "TenantMember" VALUES (1, 'OWNER', 'a'), (2, 'VIEWER', NULL)""")
    return database_url


def test_data_loss_is_announced_and_no_patches_turns_it_off(members: str) -> None:
    directory = str(CASES / "enum_in_use")
    args = ["--to-version", "20250401000000", "--migrations-dir", directory, "--dry-run"]
    code, out, _ = run(members, *args, "--json")
    assert code == 0
    steps = json.loads(out)["steps"]
    assert [s["version"] for s in steps] == [20250403000000, 20250402000000]
    assert "1 row(s)" in steps[0]["data_loss"][0]
    assert "VIEWER" in steps[1]["data_loss"][0]
    assert all(s["patched"] is False for s in steps)

    code, out, _ = run(members, *args, "--json", "--no-patches")
    assert code == 0
    plain = json.loads(out)["steps"]
    assert all("data_loss" not in s for s in plain)
    assert plain[1]["statements"] == 0  # upstream's down is empty: the label would stay

    code, out, _ = run(members, *args, "--sql")
    assert code == 0
    assert 'DELETE FROM "TenantMember"' in out and "data loss:" in out


def test_unknown_orphan_blocks_and_skip_orphan_deletes_just_its_row(members: str) -> None:
    with psycopg.connect(members, autocommit=True) as conn:
        conn.execute(INSERT_VERSION_SQL, (20250404000000, True))
    directory = str(CASES / "enum_in_use")
    args = ["--to-version", "20250402000000", "--migrations-dir", directory]
    code, _, err = run(members, *args, "--dry-run")
    assert code == 3 and "--skip-orphan 20250404000000" in err
    code, _, err = run(members, *args, "--yes", "--skip-orphan", "20250404000000")
    assert code == 0, err
    assert versions(members) == [0, 20250401000000, 20250402000000]


def test_targets_below_the_first_goose_release_are_refused(members: str) -> None:
    code, _, err = run(
        members,
        "--to-version",
        "20240101000000",
        "--migrations-dir",
        str(CASES / "enum_in_use"),
        "--dry-run",
    )
    assert code == 2
    assert "v0.55.0" in err and "oldest release" in err

"""``downgrade --from-release R --dry-run``: the plan for a database at R, made without one.

In-process (typer's CliRunner) against the GitHub emulator's fixture history. Each simulated
plan is compared with the plan of a real database migrated up through R's fixture migrations:
the JSON steps, the plan table and the SQL script must be the same. The README's first command
is also run against a history shaped like Hatchet's, cold and anonymous, counting requests.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bench.planning_cost import hatchet_shaped_history
from cli import app
from fixtures.github_emulator import Emulator
from fixtures.github_emulator.history import HISTORY_DIR
from migrator.simulate import simulated_rows
from migrator.versions import current_version
from tests.goose_up import FIXTURE_MIGRATIONS, apply_up

# Settings of the caller's shell that would change what the CLI does (None unsets them).
CLEAN_ENV: dict[str, str | None] = {
    "DATABASE_URL": None,
    "GH_TOKEN": None,
    "GITHUB_TOKEN": None,
    "GITHUB_API_URL": None,
    "HATCHET_SCHEMA_OFFLINE": None,
    "HATCHET_SCHEMA_REPO": None,
    "HATCHET_SCHEMA_MIGRATIONS_PATH": None,
    "NO_COLOR": "1",
    "COLUMNS": "200",
}
SIMULATED_SQL_LINES = 3  # the "-- SIMULATED ..." comment before the script


def downgrade(
    emulator: Emulator, cache: Path, *args: str, database_url: str | None = None
) -> tuple[int, str, str]:
    env = {**CLEAN_ENV, "DATABASE_URL": database_url}
    argv = ["downgrade", *args, "--api-url", emulator.api_url, "--cache-dir", str(cache)]
    result = CliRunner().invoke(app, argv, env=env, catch_exceptions=False)
    assert "Traceback" not in result.stdout + result.stderr
    return result.exit_code, result.stdout, result.stderr


def release_directory(tmp_path: Path, count: int, extra: tuple[str, ...] = ()) -> Path:
    """The first ``count`` fixture migrations plus ``extra`` history files: one release's set."""
    target = tmp_path / "release"
    target.mkdir()
    for source in sorted(FIXTURE_MIGRATIONS.glob("*_*.*[lo]"))[:count]:  # .sql and .go
        shutil.copy(source, target / source.name)
    for name in extra:
        shutil.copy(HISTORY_DIR / "extra" / name, target / name)
    return target


def plan_table(text: str) -> list[str]:
    """The plan's table, warnings and verdict: everything below the header lines."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("version "))
    return lines[start:]


# (source release, its fixture files, extra history files, target release, exit code)
CASES = [
    ("v0.60.0", 14, (), "v0.58.0", 0),
    ("v0.59.0", 13, (), "v0.56.0", 3),  # the .go migration has no port: blocked
    ("v0.57.1", 8, ("20250505000000_v1_0_8a.sql",), "v0.56.0", 3),  # a version later deleted
]


@pytest.mark.parametrize(("release", "count", "extra", "target", "code"), CASES)
def test_the_plan_is_the_one_a_real_database_at_that_release_gets(
    gh: Emulator,
    database_url: str,
    tmp_path: Path,
    release: str,
    count: int,
    extra: tuple[str, ...],
    target: str,
    code: int,
) -> None:
    apply_up(database_url, release_directory(tmp_path, count, extra))
    cache = tmp_path / "cache"
    simulated = ["--from-release", release, "--to-release", target, "--dry-run"]
    real = ["--to-release", target, "--dry-run"]

    got_code, out, err = downgrade(gh, cache, *simulated, "--json")
    want_code, want_out, want_err = downgrade(gh, cache, *real, "--json", database_url=database_url)
    assert (got_code, want_code) == (code, code), err + want_err
    got, want = json.loads(out), json.loads(want_out)
    assert got["steps"] == want["steps"]
    assert got["steps"], "a plan with steps"
    for key in ("from_version", "to_version", "source", "blocked", "target_release"):
        assert got[key] == want[key], key
    assert got["from_release"] == release
    assert got["simulated"]["database_read"] is False
    assert got["simulated"]["rows"] == 1 + count + len(extra)
    assert any("empty database" in note for note in got["notes"])
    assert any("unknown without a database" in note for note in got["notes"])

    got_code, out, err = downgrade(gh, cache, *simulated)
    want_code, want_out, want_err = downgrade(gh, cache, *real, database_url=database_url)
    assert (got_code, want_code) == (code, code)
    assert plan_table(out) == plan_table(want_out)
    assert err == want_err  # a blocked plan: the same one-line reason
    assert f"database:   none read: a simulated goose_db_version at {release}" in out
    assert "shown as for an empty database" in out
    assert "data-loss counts are unknown without a database" in out

    got_code, out, _ = downgrade(gh, cache, *simulated, "--sql")
    want_code, want_out, _ = downgrade(gh, cache, *real, "--sql", database_url=database_url)
    assert (got_code, want_code) == (code, code)
    *comment, script = out.split("\n", SIMULATED_SQL_LINES)
    assert comment[0].startswith(f"-- SIMULATED: planned without a database, for one at {release}")
    assert "unknown without a database" in comment[2]
    assert script == want_out


def test_the_simulated_sql_bakes_in_the_lock_options(gh: Emulator, tmp_path: Path) -> None:
    """--sql without a database bakes in the given limits, as the database path does."""
    args = ["--from-release", "v0.60.0", "--to-release", "v0.58.0", "--dry-run", "--sql"]
    code, out, err = downgrade(gh, tmp_path / "cache", *args)
    assert code == 0, err
    assert "interval '300 seconds'" in out and "SET lock_timeout = 5000;" in out  # the defaults
    limits = ["--lock-timeout", "42", "--ddl-lock-timeout", "7.5", "--statement-timeout", "30"]
    code, out, err = downgrade(gh, tmp_path / "cache", *args, *limits)
    assert code == 0, err
    assert out.startswith("-- SIMULATED: planned without a database")
    assert "interval '42 seconds'" in out
    assert "SET lock_timeout = 7500;" in out
    assert "SET statement_timeout = 30000;" in out
    assert "interval '300 seconds'" not in out and "SET lock_timeout = 5000;" not in out


def test_the_simulated_table_is_what_goose_up_from_empty_leaves() -> None:
    rows = simulated_rows([20250402090000, 20250311000000, 20250318101500, 20250311000000])
    assert [(r.id, r.version_id, r.is_applied) for r in rows] == [
        (1, 0, True),
        (2, 20250311000000, True),
        (3, 20250318101500, True),
        (4, 20250402090000, True),
    ]
    assert current_version(rows) == 20250402090000
    assert current_version(simulated_rows([])) == 0


def test_a_configured_database_is_not_read(gh: Emulator, tmp_path: Path) -> None:
    # Nothing listens on port 1: any connection attempt would fail the command.
    url = "postgresql://hatchet:s3cretPassw0rd@127.0.0.1:1/hatchet"
    args = ["--from-release", "v0.60.0", "--to-release", "v0.58.0", "--dry-run"]
    code, out, err = downgrade(gh, tmp_path / "cache", *args, database_url=url)
    assert code == 0, err
    assert "the configured database (DATABASE_URL) is not read" in out
    assert "s3cretPassw0rd" not in out + err
    code, out, err = downgrade(gh, tmp_path / "cache", *args, "--database-url", url, "--json")
    assert code == 0, err
    assert json.loads(out)["simulated"]["database_read"] is False


def test_no_database_anywhere_is_enough(gh: Emulator, tmp_path: Path) -> None:
    args = ["--from-release", "v0.60.0", "--to-version", "20250521090000", "--dry-run", "--json"]
    code, out, err = downgrade(gh, tmp_path / "cache", *args)
    assert code == 0, err
    plan = json.loads(out)
    assert [s["version"] for s in plan["steps"]] == [20250611170000, 20250604130000, 20250528100000]
    assert plan["target_release"] is None


def test_the_text_plan_names_where_it_starts_and_where_it_goes(
    gh: Emulator, tmp_path: Path
) -> None:
    args = ["--from-release", "v0.60.0", "--to-version", "20250521090000", "--dry-run"]
    code, out, err = downgrade(gh, tmp_path / "cache", *args)
    assert code == 0, err
    lines = {ln.split(":", 1)[0].strip(): ln.split(":", 1)[1].strip() for ln in out.splitlines()
             if ln[:1].isalpha() and ":" in ln}  # fmt: skip
    assert lines["target"] == "20250521090000"
    assert lines["current"].startswith("20250611170000")
    assert lines["database"].startswith("none read: a simulated goose_db_version at v0.60.0")


PLAN = ["--from-release", "v0.60.0", "--to-release", "v0.58.0"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (PLAN, "use it with --dry-run"),
        ([*PLAN, "--yes"], "use it with --dry-run"),
        ([*PLAN, "--dry-run", "--rehearse", "schema"], "--rehearse"),
        (["--from-release", "v0.99.0", "--to-release", "v0.58.0", "--dry-run"], "v0.60.0"),
        (["--from-release", "v0.54.0", "--to-release", "v0.55.0", "--dry-run"], "no migrations"),
        (
            ["--from-release", "v0.60.0-migration.1", "--to-release", "v0.58.0", "--dry-run"],
            "--allow-prerelease",
        ),
        (["--from-release", "v0.60.0", "--dry-run"], "exactly one of --to-release"),
    ],
)
def test_bad_combinations_are_refused_with_exit_2(
    gh: Emulator, tmp_path: Path, args: list[str], needle: str
) -> None:
    code, out, err = downgrade(gh, tmp_path / "cache", *args)
    assert code == 2, out + err
    assert needle in err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert out == ""


def test_a_prerelease_source_is_planned_when_allowed(gh: Emulator, tmp_path: Path) -> None:
    args = ["--from-release", "v0.60.0-migration.1", "--to-release", "v0.58.0", "--dry-run"]
    code, out, err = downgrade(gh, tmp_path / "cache", *args, "--allow-prerelease", "--json")
    assert code == 0, err
    assert len(json.loads(out)["steps"]) == 3


def test_a_source_release_at_or_below_the_target_has_nothing_to_do(
    gh: Emulator, tmp_path: Path
) -> None:
    args = ["--from-release", "v0.56.0", "--to-release", "v0.58.0", "--dry-run"]
    code, out, err = downgrade(gh, tmp_path / "cache", *args, "--json")
    assert code == 0, err
    plan = json.loads(out)
    assert (plan["steps"], plan["from_version"]) == ([], 20250423110000)
    code, out, _ = downgrade(gh, tmp_path / "cache", *args)
    assert code == 0
    assert "simulated goose_db_version at v0.56.0" in out and "only downgrades" in out


@pytest.fixture(scope="module")
def hatchet_gh() -> Iterator[Emulator]:
    """A history shaped like Hatchet's (935 stable tags; v0.104.7 -> v0.71.0 is 112 steps), with
    the anonymous quota GitHub gives."""
    with Emulator([hatchet_shaped_history().build()], anonymous_limit=60) as emulator:
        yield emulator


def test_the_readme_command_costs_at_most_5_core_requests_cold_and_none_warm(
    hatchet_gh: Emulator, tmp_path: Path
) -> None:
    args = ["--from-release", "v0.104.7", "--to-release", "v0.71.0", "--dry-run", "--json"]
    spent: list[Any] = []
    for _run in ("cold", "warm"):
        hatchet_gh.reset_counts()
        code, out, err = downgrade(hatchet_gh, tmp_path / "cache", *args)
        steps = json.loads(out)["steps"]
        assert len(steps) == 112
        # this history's .go files are made up, so no port exists: blocked, as said
        assert code == 3, err
        assert [s["kind"] for s in steps if s["status"] == "blocked"] == ["go"] * 5
        spent.append(hatchet_gh.counts.core)
    cold, warm = spent
    assert cold <= 5, hatchet_gh.requests
    assert warm == 0

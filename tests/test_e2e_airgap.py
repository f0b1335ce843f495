"""End to end, air-gapped: a bundle made from the GitHub emulator (by the CLI), and a
local git clone of the same history, plan and run downgrades of real databases to every fixture
release exactly as the online run does, with the emulator stopped.

The online runs happen first, each from a cold cache (what a bundle replays), on databases
cloned from one migrated up to the newest fixture release; then the emulator stops and the same
commands run with ``--bundle FILE`` and with ``--git-dir DIR`` on fresh clones. Outputs must be
equal but for the name of the bundle or clone that plans print beside their source ref, and the
schema and version table after each real run equal to the online run's."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from fixtures.github_emulator import Emulator, load_history
from fixtures.github_emulator.gitrepo import write_git_dir
from tests.conftest import fresh_database
from tests.e2e_helpers import (
    invoke_cli,
    invoke_cli_with_database,
    ok,
    refused,
    run_cli_with_database,
)
from tests.goose_up import schema_snapshot, version_ids

pytestmark = pytest.mark.e2e

RELEASES = [
    "v0.60.0",
    "v0.59.0",
    "v0.58.1",
    "v0.58.0",
    "v0.57.1",
    "v0.57.0",
    "v0.56.0",  # blocked: the .go migration has no port (exit 3)
    "v0.55.1",
    "v0.55.0",
]
PLANS = (["--dry-run"], ["--dry-run", "--json"], ["--dry-run", "--sql"])
STATUS = (["status"], ["status", "--json"])
SOURCES = ("bundle", "git-dir")


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Outcome:
    plans: dict[str, Run]
    real: Run
    schema: dict[str, object]
    versions: list[int]


@dataclass(frozen=True)
class World:
    server: str
    template: str
    bundle: Path
    narrow: Path
    git_dir: Path
    stopped_api: str
    online: dict[str, Outcome]
    status: dict[str, Run]
    tmp: Path


def normalized(text: str) -> str:
    return re.sub(r" from (?:bundle|git-dir) [^\s\",]+", "", text)


def invoke(args: list[str], url: str, *, api_url: str, cache: Path) -> Run:
    result = CliRunner().invoke(
        app,
        args,
        env={
            "DATABASE_URL": url,
            "GITHUB_API_URL": api_url,
            "HATCHET_SCHEMA_CACHE_DIR": str(cache),
            "GH_TOKEN": None,
            "GITHUB_TOKEN": None,
            "HATCHET_SCHEMA_OFFLINE": None,
            "NO_COLOR": "1",
            "COLUMNS": "200",
        },
    )
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    return Run(result.exit_code, normalized(result.stdout), normalized(result.stderr))


@contextmanager
def clone_of(server: str, template: str) -> Iterator[str]:
    """A new database created from ``template`` (an exact copy); dropped on exit."""
    with fresh_database(server, prefix="hs_airgap", template=template) as url:
        yield url


def _real(release: str) -> list[str]:
    return ["downgrade", "--to-release", release, "--yes", "--json"]


@pytest.fixture(scope="module")
def world(
    pg_server_url: str, migrated_template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("airgap")
    git_dir = write_git_dir(load_history().build(), tmp / "hatchet.git")
    bundle, narrow = tmp / "hatchet-v0.55.0.bundle", tmp / "narrow.bundle"
    caches = (tmp / f"cache-{n}" for n in range(10_000))
    with ExitStack() as stack:
        gh = stack.enter_context(Emulator(anonymous_limit=100_000))
        made = invoke_cli(
            ["bundle", "--to-release", "v0.55.0", "--listings", "all", "--output", str(bundle)],
            gh,
            cache_dir=tmp / "bundle-cache",
        )
        ok(made)
        assert "sha256" in made.stdout
        args = ["bundle", "--to-release", "v0.58.0", "--from-release", "v0.59.0"]
        ok(invoke_cli([*args, "--output", str(narrow)], gh, cache_dir=tmp / "narrow-cache"))
        online: dict[str, Outcome] = {}
        for release in RELEASES:
            with clone_of(pg_server_url, migrated_template) as url:
                plans = {
                    " ".join(a): invoke(
                        ["downgrade", "--to-release", release, *a],
                        url,
                        api_url=gh.api_url,
                        cache=next(caches),
                    )
                    for a in PLANS
                }
                real = invoke(_real(release), url, api_url=gh.api_url, cache=next(caches))
                online[release] = Outcome(plans, real, schema_snapshot(url), version_ids(url))
        with clone_of(pg_server_url, migrated_template) as url:
            status = {
                " ".join(a): invoke(a, url, api_url=gh.api_url, cache=next(caches)) for a in STATUS
            }
        stopped_api = gh.api_url
        gh.stop()  # from here on nothing answers there
        yield World(
            pg_server_url,
            migrated_template,
            bundle,
            narrow,
            git_dir,
            stopped_api,
            online,
            status,
            tmp,
        )


def source_args(world: World, source: str) -> list[str]:
    return (
        ["--bundle", str(world.bundle)] if source == "bundle" else ["--git-dir", str(world.git_dir)]
    )


def test_the_online_runs_cover_every_outcome(world: World) -> None:
    codes = {release: outcome.real.code for release, outcome in world.online.items()}
    assert codes["v0.60.0"] == 0 and "nothing to do" in world.online["v0.60.0"].real.stdout
    assert {codes[r] for r in ("v0.59.0", "v0.58.1", "v0.58.0", "v0.57.1", "v0.57.0")} == {0}
    assert {codes[r] for r in ("v0.56.0", "v0.55.1", "v0.55.0")} == {3}  # the .go step blocks
    assert json.loads(world.online["v0.57.0"].real.stdout)["final_version"] == 20250430000000


@pytest.mark.parametrize("release", RELEASES)
@pytest.mark.parametrize("source", SOURCES)
def test_a_downgrade_without_github_is_the_online_one(
    world: World, source: str, release: str
) -> None:
    expected = world.online[release]
    with clone_of(world.server, world.template) as url:
        for args, plan in expected.plans.items():
            run = invoke(
                ["downgrade", "--to-release", release, *args.split(), *source_args(world, source)],
                url,
                api_url=world.stopped_api,
                cache=world.tmp / "unused-cache",
            )
            assert run == plan, args
        real = invoke(
            [*_real(release), *source_args(world, source)],
            url,
            api_url=world.stopped_api,
            cache=world.tmp / "unused-cache",
        )
        assert real.code == expected.real.code, real
        if expected.real.code == 0:
            got, want = json.loads(real.stdout), json.loads(expected.real.stdout)
            assert got.get("final_version") == want.get("final_version")
            assert [s["version"] for s in got["steps"]] == [s["version"] for s in want["steps"]]
            assert [s.get("blob_sha") for s in got["steps"]] == [
                s.get("blob_sha") for s in want["steps"]
            ]
        assert version_ids(url) == expected.versions
        assert schema_snapshot(url) == expected.schema
    assert not (world.tmp / "unused-cache").exists()  # nothing was cached: nothing was fetched


@pytest.mark.parametrize("source", SOURCES)
def test_status_without_github_is_the_online_one(world: World, source: str) -> None:
    with clone_of(world.server, world.template) as url:
        for args, expected in world.status.items():
            run = invoke(
                [*args.split(), *source_args(world, source)],
                url,
                api_url=world.stopped_api,
                cache=world.tmp / "unused-cache",
            )
            assert run == expected, args


def test_the_plan_names_the_bundle_beside_the_source_ref(world: World) -> None:
    with clone_of(world.server, world.template) as url:
        args = ["downgrade", "--to-release", "v0.58.1", "--dry-run", "--bundle", str(world.bundle)]
        result = CliRunner().invoke(app, args, env={"DATABASE_URL": url, "NO_COLOR": "1"})
        assert result.exit_code == 0, result.stdout + result.stderr
        assert re.search(
            r"source:\s+v0\.60\.0 \([0-9a-f]{12}\) from bundle hatchet-v0\.55\.0\.bundle",
            result.stdout,
        ), result.stdout
        result = CliRunner().invoke(app, [*args, "--json"], env={"DATABASE_URL": url})
        document = json.loads(result.stdout)
        assert document["source"].endswith(" from bundle hatchet-v0.55.0.bundle")


def test_the_installed_cli_downgrades_with_the_bundle(world: World, tmp_path: Path) -> None:
    """The console script, in a subprocess, with nothing answering at the API URL."""
    expected = world.online["v0.58.1"]
    with clone_of(world.server, world.template) as url:
        result = run_cli_with_database(
            ["downgrade", "--to-release", "v0.58.1", "--yes", "--bundle", str(world.bundle)],
            None,
            tmp_path,
            url,
        )
        ok(result)
        assert "-> 20250521090000" in result.stderr
        assert schema_snapshot(url) == expected.schema
        assert version_ids(url) == expected.versions


def test_a_database_the_bundle_does_not_cover_is_refused(world: World) -> None:
    """The narrow bundle covers databases at or below v0.59.0; this one is at v0.60.0."""
    with clone_of(world.server, world.template) as url:
        before = schema_snapshot(url)
        for mode in ("--dry-run", "--yes"):
            args = ["downgrade", "--to-release", "v0.58.0", mode, "--bundle", str(world.narrow)]
            run = invoke(args, url, api_url=world.stopped_api, cache=world.tmp / "unused-cache")
            assert run.code == 2, run
            assert "does not hold 20250611170000_v1_0_13.sql" in run.stderr
            assert "hatchet-schema bundle --to-release v0.58.0 --output FILE" in run.stderr
        args = ["downgrade", "--to-release", "v0.57.0", "--dry-run", "--bundle", str(world.narrow)]
        run = invoke(args, url, api_url=world.stopped_api, cache=world.tmp / "unused-cache")
        assert run.code == 2 and "does not hold release v0.57.0" in run.stderr
        assert "hatchet-schema bundle --to-release v0.57.0 --from-release v0.59.0" in run.stderr
        assert schema_snapshot(url) == before


def test_a_tampered_bundle_changes_nothing(world: World, tmp_path: Path) -> None:
    data = bytearray(world.bundle.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad = tmp_path / "bad.bundle"
    bad.write_bytes(bytes(data))
    with clone_of(world.server, world.template) as url:
        before = schema_snapshot(url)
        result = invoke_cli_with_database(
            ["downgrade", "--to-release", "v0.58.1", "--yes", "--bundle", str(bad)],
            None,
            tmp_path,
            url,
        )
        assert "is refused" in refused(result, 2)
        assert schema_snapshot(url) == before

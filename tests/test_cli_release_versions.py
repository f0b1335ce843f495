"""``releases --versions`` and the release index in ``status``, in-process (typer's CliRunner)
against the GitHub emulator serving the fixture history, with an index made from that history
standing in for the packaged one (which describes Hatchet's real commits)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import psycopg
import pytest
from typer.testing import CliRunner

import resolver.release_index
from bench.releases_cost import index_of
from cli import app
from fixtures.github_emulator import Emulator, load_history
from fixtures.github_emulator.gitrepo import write_git_dir
from resolver.release_index import ReleaseIndex
from tests.goose_up import FIXTURE_MIGRATIONS, apply_up

TOKEN = "ghp_releaseVersionsToken0000000000000000"
UNREACHABLE = "http://127.0.0.1:9/api/v3"
ROOT = Path(__file__).resolve().parents[1]
REPO = load_history().build()
FULL = index_of(REPO)
NEW = ("v0.60.0", "v0.58.1")  # left out of the stale index: newer than it
MOVED = "v0.57.0"


def stale_index() -> ReleaseIndex:
    kept = [e for e in FULL.entries.values() if e.release not in NEW]
    kept = [dataclasses.replace(e, commit="0" * 40) if e.release == MOVED else e for e in kept]
    gone = dataclasses.replace(FULL.entries["v0.53.5"], release="v0.53.9")
    return ReleaseIndex.of(FULL.repo, FULL.path, [*kept, gone])


@pytest.fixture(scope="module")
def gh() -> Iterator[Emulator]:
    with Emulator([REPO], token=TOKEN, anonymous_limit=100_000) as emulator:
        yield emulator


def use_index(monkeypatch: pytest.MonkeyPatch, index: ReleaseIndex | None) -> None:
    monkeypatch.setattr(resolver.release_index, "packaged_index", lambda repo, path: index)


@dataclasses.dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str
    core: int
    graphql: int

    def records(self) -> list[dict[str, object]]:
        assert self.code == 0, self.stderr
        document = json.loads(self.stdout)
        assert isinstance(document, list)
        return document


def invoke(
    gh: Emulator | None, cache: Path, *args: str, token: str | None = None, **env: str
) -> Run:
    if gh is not None:
        gh.reset_counts()
    result = CliRunner().invoke(
        app,
        [*args, "--api-url", gh.api_url if gh is not None else UNREACHABLE],
        env={
            "HATCHET_SCHEMA_CACHE_DIR": str(cache),
            "GH_TOKEN": token,
            "GITHUB_TOKEN": None,
            "HATCHET_SCHEMA_OFFLINE": None,
            "NO_COLOR": "1",
            **env,
        },
    )
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    counts = gh.counts if gh is not None else None
    return Run(
        result.exit_code,
        result.stdout,
        result.stderr,
        counts.core if counts else 0,
        counts.graphql if counts else 0,
    )


def expected() -> list[dict[str, object]]:
    """Every stable release of the fixture history, as the history itself has them."""
    rows = sorted(FULL.entries.values(), key=lambda e: e.date, reverse=True)
    return [
        {
            "release": e.release,
            "version": e.version,
            "date": e.date,
            "commit": e.commit,
            "files": e.files,
        }
        for e in rows
    ]


def without_source(records: list[dict[str, object]]) -> list[dict[str, object]]:
    return [{k: v for k, v in r.items() if k != "source"} for r in records]


def test_a_confirmed_index_answers_every_release_for_the_tag_list_alone(
    gh: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_index(monkeypatch, FULL)
    run = invoke(gh, tmp_path, "releases", "--versions", "--json")
    records = run.records()
    assert without_source(records) == expected()
    assert {r["source"] for r in records} == {"index"}
    assert run.core == 1 and run.graphql == 0
    # by date, not semver: v0.58.1 (a patch release) came out after v0.59.0
    tags = [r["release"] for r in records]
    assert tags[:4] == ["v0.60.0", "v0.58.1", "v0.59.0", "v0.58.0"]

    text = invoke(gh, tmp_path, "releases", "--versions", "--limit", "3")
    assert text.code == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].split() == ["release", "date", "version", "files"]
    assert lines[1].split() == ["v0.60.0", "2025-06-12T10:00:00Z", "20250611170000", "14"]
    assert len(lines) == 4 and text.stderr == ""
    old = invoke(gh, tmp_path, "releases", "--versions")
    assert "v0.54.0     2025-03-04T10:00:00Z  -               0" in old.stdout


def test_without_a_token_a_stale_index_is_extended_within_three_requests(
    gh: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_index(monkeypatch, stale_index())
    run = invoke(gh, tmp_path, "releases", "--versions", "--json")
    by_tag = {r["release"]: r for r in run.records()}
    assert run.core <= 3
    want = {r["release"]: r for r in expected()}
    assert by_tag["v0.60.0"] == {**want["v0.60.0"], "source": "listed"}
    for tag in ("v0.58.1", MOVED):  # the budget is spent: said so, not guessed
        assert (by_tag[tag]["source"], by_tag[tag]["version"], by_tag[tag]["date"]) == (
            "unlisted",
            None,
            None,
        )
    assert "v0.53.9" not in by_tag
    assert f"{MOVED}) moved since the release index was made" in run.stderr
    assert "v0.53.9) in the release index no longer exist" in run.stderr
    assert "2 release(s)" in run.stderr and "GH_TOKEN" in run.stderr

    # Offline, the same cache: what it holds is listed, the rest said to be missing; no request.
    offline = invoke(gh, tmp_path, "releases", "--versions", "--json", "--offline")
    assert offline.core == 0 and offline.graphql == 0
    assert {r["release"]: r for r in offline.records()}["v0.60.0"]["source"] == "listed"
    assert "not in the cache; run once without --offline" in offline.stderr


def test_with_a_token_moved_and_new_tags_are_listed_afresh_in_batches(
    gh: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_index(monkeypatch, stale_index())
    run = invoke(gh, tmp_path, "releases", "--versions", "--json", token=TOKEN)
    records = run.records()
    assert without_source(records) == expected()  # the moved tag at its real commit
    listed = {str(r["release"]) for r in records if r["source"] == "listed"}
    assert listed == {*NEW, MOVED}
    assert run.core == 1 and 1 <= run.graphql <= 4


def test_without_any_index_a_token_lists_every_release(
    gh: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_index(monkeypatch, None)
    run = invoke(gh, tmp_path, "releases", "--versions", "--json", token=TOKEN)
    assert without_source(run.records()) == expected()
    # 328 releases: dates 100 per query, tree ids 250 per query, trees 40 per query
    assert run.core == 1 and run.graphql <= 10


def test_a_git_dir_gives_the_same_history_from_git_and_so_does_the_generator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_index(monkeypatch, stale_index())  # never used with --git-dir
    clone = write_git_dir(REPO, tmp_path / "hatchet.git")
    run = invoke(
        None, tmp_path / "cache", "releases", "--versions", "--json", "--git-dir", str(clone)
    )
    records = run.records()
    assert without_source(records) == expected()
    assert {r["source"] for r in records} == {"listed"}

    script = load_script(ROOT / "scripts" / "hatchet_release_index.py")
    output = tmp_path / "index.json"
    assert script.main([str(clone), "--output", str(output)]) == 0
    assert ReleaseIndex.loads(output.read_text()) == FULL
    assert script.main([str(clone), "--output", str(output), "--check"]) == 0


def load_script(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_versions_is_for_stable_releases_and_offline_needs_a_cache(
    gh: Emulator, tmp_path: Path
) -> None:
    run = invoke(gh, tmp_path, "releases", "--versions", "--include-prereleases")
    assert run.code == 2 and "stable releases only" in run.stderr
    run = invoke(gh, tmp_path / "empty", "releases", "--versions", "--offline")
    assert run.code == 2 and "run the same command once without --offline" in run.stderr


# -- status ---------------------------------------------------------------------------------


def status(gh: Emulator, cache: Path, url: str) -> tuple[Run, dict[str, object]]:
    run = invoke(gh, cache, "status", "--json", DATABASE_URL=url)
    assert run.code == 0, run.stderr
    document = json.loads(run.stdout)
    assert isinstance(document, dict)
    return run, document


def test_status_names_releases_from_the_index_within_three_requests(
    gh: Emulator, migrated: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_index(monkeypatch, FULL)
    deleted = 20250505000000  # only v0.57.1 has it (its last migration); later ones deleted it
    with psycopg.connect(migrated, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO goose_db_version (version_id, is_applied) VALUES (%s, true), (%s, true)",
            (deleted, 20250611170000),
        )
    run, document = status(gh, tmp_path, migrated)
    assert document["releases"] == ["v0.60.0"]
    assert document["orphans"] == [deleted]
    assert document["orphans_shipped_in"] == {str(deleted): ["v0.57.1"]}
    assert run.core <= 3  # before the index: one listing per release bisected, 12 here


def test_status_names_every_release_at_the_version_from_the_index(
    gh: Emulator, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_index(monkeypatch, FULL)
    apply_up(database_url, FIXTURE_MIGRATIONS, to_version=20250521090000)
    run, document = status(gh, tmp_path, database_url)
    assert document["releases"] == ["v0.58.1", "v0.58.0"] and run.core <= 3


def test_status_places_a_version_between_releases_and_says_what_it_did_not_check(
    gh: Emulator, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_index(monkeypatch, stale_index())
    # 20250416080000 is past v0.55.1's last migration and before v0.56.0's
    apply_up(database_url, FIXTURE_MIGRATIONS, to_version=20250416080000)
    run, document = status(gh, tmp_path, database_url)
    place = document["release_range"]
    assert isinstance(place, dict)
    assert (document["releases"], place["after"], place["before"]) == ([], "v0.55.1", "v0.56.0")
    assert run.core <= 3
    # the tag list and the newest listing leave one request: v0.58.1 read, v0.57.0 (moved) not
    assert place["unchecked"] == [MOVED]
    text = invoke(gh, tmp_path / "cold", "status", DATABASE_URL=database_url)
    assert "between v0.55.1 and v0.56.0 (1 release(s) not checked: v0.57.0)" in text.stdout

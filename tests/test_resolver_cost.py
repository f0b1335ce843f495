"""What planning a downgrade costs in GitHub core-API requests, and ``Resolver.find_file``.

In-process resolvers against the local GitHub emulator: the fixture history (module-wide ``gh``
of conftest.py) and a generated history shaped like Hatchet's (935 stable tags, v0.104.7 ->
v0.71.0 is 112 steps; see bench/planning_cost.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.planning_cost import REPO, hatchet_shaped_history, planning_flow
from cli import exit_code_of
from fixtures.github_emulator import Emulator
from fixtures.github_emulator.history import HISTORY_DIR
from resolver.errors import ResolverError
from resolver.gitblob import git_blob_sha
from resolver.service import Resolver
from resolver.settings import GitHubSettings

CORE_BUDGET = 3
DELETED = 20250505000000  # only v0.57.1 ships it; later releases deleted the file
DELETED_FILE = "20250505000000_v1_0_8a.sql"


def make(gh: Emulator, cache: Path, *, repo: str = "hatchet-dev/hatchet") -> Resolver:
    settings = GitHubSettings(api_url=gh.api_url, repo=repo, cache_dir=cache)
    return Resolver(settings, sleep=lambda _s: None)


def versions_between(resolver: Resolver, source: str, target: str) -> tuple[list[int], int]:
    """The versions a database at ``source`` reverts to reach ``target`` (read on a side
    resolver so the measured one starts cold), and its current version."""
    newer = resolver.listing(source).versions
    floor = resolver.resolve(target).version
    versions = sorted(v for v in newer if v > floor)
    return versions, versions[-1]


@pytest.fixture(scope="module")
def hatchet_gh() -> Iterator[Emulator]:
    with Emulator([hatchet_shaped_history().build()], anonymous_limit=100_000) as emulator:
        yield emulator


# -- the planning flow ------------------------------------------------------------------------


def test_cold_anonymous_planning_of_112_steps_costs_at_most_3_core_requests(
    hatchet_gh: Emulator, tmp_path: Path
) -> None:
    with make(hatchet_gh, tmp_path / "side", repo=REPO) as side:
        versions, current = versions_between(side, "v0.104.7", "v0.71.0")
    assert len(versions) == 112
    with make(hatchet_gh, tmp_path / "cache", repo=REPO) as resolver:
        hatchet_gh.reset_counts()
        assert planning_flow(resolver, "v0.71.0", current, versions) == 112
        assert hatchet_gh.counts.core <= CORE_BUDGET, hatchet_gh.requests
        assert resolver.stats.core == hatchet_gh.counts.core
        # the header's "current: X (v0.104.7)" comes from listings already read
        assert resolver.place_version(current, budget=0).describe() == "v0.104.7"
        assert hatchet_gh.counts.core <= CORE_BUDGET
    with make(hatchet_gh, tmp_path / "cache", repo=REPO) as warm:
        hatchet_gh.reset_counts()
        planning_flow(warm, "v0.71.0", current, versions)
        assert hatchet_gh.counts.core == 0


def test_cold_anonymous_planning_on_the_fixture_history(gh: Emulator, tmp_path: Path) -> None:
    with make(gh, tmp_path / "side") as side:
        versions, current = versions_between(side, "v0.60.0", "v0.55.0")
    with make(gh, tmp_path / "cache") as resolver:
        gh.reset_counts()
        assert planning_flow(resolver, "v0.55.0", current, versions) == len(versions)
        assert gh.counts.core <= CORE_BUDGET, gh.requests
        assert resolver.place_version(current, budget=0).releases == ("v0.60.0",)


def test_a_budgeted_place_version_reports_the_range_the_known_listings_give(
    gh: Emulator, tmp_path: Path
) -> None:
    with make(gh, tmp_path / "cache") as resolver:
        resolver.resolve("v0.55.0")
        resolver.find_source([20250611170000])  # reads v0.60.0, the newest release
        gh.reset_counts()
        place = resolver.place_version(20250416080000, budget=0)
        assert gh.counts.core == 0
        assert (place.releases, place.after, place.before) == ((), "v0.55.0", "v0.60.0")
        assert place.shipped_in == ("v0.60.0",)
        # with no budget the answer is exact, as status reports it
        exact = resolver.place_version(20250416080000)
        assert (exact.after, exact.before) == ("v0.55.1", "v0.56.0")


def test_a_place_version_budget_caps_the_listings_read(gh: Emulator, tmp_path: Path) -> None:
    with make(gh, tmp_path / "cache") as resolver:
        resolver.releases()
        gh.reset_counts()
        resolver.place_version(20250416080000, budget=2)
        assert gh.counts.core <= 2


def test_find_source_with_a_spent_budget_blocks(gh: Emulator, tmp_path: Path) -> None:
    with make(gh, tmp_path / "cache") as resolver:
        resolver.releases()
        gh.reset_counts()
        with pytest.raises(ResolverError) as caught:
            resolver.find_source([20250611170000], budget=0)
        assert exit_code_of(caught.value) == 3
        assert gh.counts.core == 0
        assert resolver.find_source([20250611170000], budget=1).ref == "v0.60.0"
        assert gh.counts.core == 1


# -- find_file ----------------------------------------------------------------------------------


def test_find_file_finds_a_version_only_an_older_release_has(gh: Emulator, tmp_path: Path) -> None:
    with make(gh, tmp_path / "cache") as resolver:
        assert resolver.listing("v0.60.0").file(DELETED_FILE) is None
        found = resolver.find_file(DELETED)
        assert found is not None
        listing, item = found
        assert (listing.ref, item.name, item.version) == ("v0.57.1", DELETED_FILE, DELETED)
        data = resolver.fetch_files(listing, [item.name])[item.name]
    assert data == (HISTORY_DIR / "extra" / DELETED_FILE).read_bytes()
    assert git_blob_sha(data) == item.sha


def test_find_file_tries_the_hinted_tags_first(gh: Emulator, tmp_path: Path) -> None:
    with make(gh, tmp_path / "cache") as resolver:
        resolver.releases()
        gh.reset_counts()
        found = resolver.find_file(DELETED, ["v9.9.9", "not-a-tag", "v0.57.1"])
        assert found is not None and found[0].ref == "v0.57.1"
        assert gh.counts.core == 1  # v0.57.1's listing; the bad hints cost nothing here


def test_find_file_falls_back_when_the_hints_lack_the_version(gh: Emulator, tmp_path: Path) -> None:
    with make(gh, tmp_path / "cache") as resolver:
        found = resolver.find_file(DELETED, ["v0.60.0"])
        assert found is not None and found[0].ref == "v0.57.1"


def test_find_file_of_a_version_no_release_has_is_none(gh: Emulator, tmp_path: Path) -> None:
    with make(gh, tmp_path / "cache") as resolver:
        assert resolver.find_file(20250510000000) is None  # only a pre-release ships it
        assert resolver.find_file(20991231000000, ["v0.60.0"]) is None

"""The Resolver facade against a fake GitHub: resolve, releases, listings, contents, sources."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from cli import exit_code_of
from resolver.errors import BadInputError, CacheMissError, ResolverError
from resolver.gitblob import git_blob_sha
from resolver.service import Resolver
from resolver.settings import GitHubSettings
from tests.test_resolver_fakegithub import MIG, FakeGitHub, fake_github, sql

__all__ = ["fake_github"]

TOKEN = "ghp_SECRETtoken1234567890"


def make(tmp_path: Path, *, token: str | None = None, offline: bool = False) -> Resolver:
    settings = GitHubSettings(token=token, cache_dir=tmp_path / "cache", offline=offline)
    return Resolver(settings, sleep=lambda _s: None)


# -- resolve --------------------------------------------------------------------------------


def test_resolve_prints_the_newest_migration_in_two_requests(
    fake_github: FakeGitHub, tmp_path: Path
) -> None:
    with make(tmp_path) as resolver:
        resolution = resolver.resolve("v0.71.0")
        assert resolver.stats.core == 2
    assert resolution.to_json() == {
        "release": "v0.71.0",
        "version": 20250813183355,
        "file": "20250813183355_v1_0_36.sql",
        "commit": fake_github._commit("v0.71.0"),
        "migrations": 5,
    }
    names = [f.name for f in resolution.listing.files]
    assert "README.md" not in names and "helper_test.go" not in names


def test_warm_resolve_spends_no_core_request(fake_github: FakeGitHub, tmp_path: Path) -> None:
    with make(tmp_path) as resolver:
        resolver.resolve("v0.71.0")
    with make(tmp_path) as resolver:
        again = resolver.resolve("v0.71.0")
        assert (resolver.stats.core, resolver.stats.not_modified) == (0, 1)
    assert again.version == 20250813183355


def test_a_go_migration_counts_as_the_newest(fake_github: FakeGitHub, tmp_path: Path) -> None:
    with make(tmp_path) as resolver:
        resolution = resolver.resolve("v0.70.0")
    assert (resolution.version, resolution.file) == (20250801000000, "20250801000000_v1_0_30.go")


def test_unknown_release_names_the_nearest_stable_ones(
    fake_github: FakeGitHub, tmp_path: Path
) -> None:
    with make(tmp_path) as resolver, pytest.raises(BadInputError) as caught:
        resolver.resolve("v0.65.3")
    assert exit_code_of(caught.value) == 2
    assert "v0.60.0" in caught.value.message and "v0.70.0" in caught.value.message
    assert "alpha" not in caught.value.message


@pytest.mark.parametrize("tag", ["v0.72.0-alpha.1", "v0.71.1-migration.2"])
def test_prerelease_is_refused_unless_allowed(
    fake_github: FakeGitHub, tmp_path: Path, tag: str
) -> None:
    with make(tmp_path) as resolver:
        with pytest.raises(BadInputError, match="pre-release"):
            resolver.resolve(tag)
        assert resolver.resolve(tag, allow_prerelease=True).release == tag


@pytest.mark.parametrize("tag", ["0.71.0", "v.jun-27-demo.3", "py/v1.0.0", "latest"])
def test_junk_names_are_bad_input(fake_github: FakeGitHub, tmp_path: Path, tag: str) -> None:
    with make(tmp_path) as resolver, pytest.raises(BadInputError, match="not a Hatchet release"):
        resolver.resolve(tag)


def test_release_before_the_directory_existed_is_bad_input(
    fake_github: FakeGitHub, tmp_path: Path
) -> None:
    with make(tmp_path) as resolver, pytest.raises(BadInputError) as caught:
        resolver.resolve("v0.50.0")
    assert "v0.55.0" in caught.value.message and "no migrations directory" in caught.value.message


def test_truncated_tree_falls_back_to_the_contents_api(
    fake_github: FakeGitHub, tmp_path: Path
) -> None:
    fake_github.truncate_trees = True
    with make(tmp_path) as resolver:
        resolution = resolver.resolve("v0.71.0")
    assert resolution.migrations == 5
    assert fake_github.count("/contents/") == 1


def test_annotated_tag_is_peeled_to_its_commit(fake_github: FakeGitHub, tmp_path: Path) -> None:
    commit = fake_github.add_release("v0.80.0", dict([sql(20251001000000)]), annotated=True)
    with make(tmp_path) as resolver:
        assert resolver.resolve("v0.80.0").commit == commit
    with make(tmp_path) as resolver:
        resolver.resolve("v0.80.0")
        assert resolver.stats.core == 0


def test_releases_are_newest_first_in_semver_order(fake_github: FakeGitHub, tmp_path: Path) -> None:
    fake_github.add_release("v0.100.19", {})
    fake_github.add_release("v0.101.0", {})
    with make(tmp_path) as resolver:
        stable = [r.tag for r in resolver.releases()]
        everything = [r.tag for r in resolver.releases(include_prereleases=True)]
    assert stable == [
        "v0.101.0",
        "v0.100.19",
        "v0.71.0",
        "v0.70.0",
        "v0.60.0",
        "v0.55.0",
        "v0.50.0",
    ]
    assert everything.index("v0.72.0-alpha.1") == 2
    assert "py/v1.0.0" not in everything and "v.jun-27-demo.3" not in everything


# -- offline ----------------------------------------------------------------------------------


def test_offline_miss_says_what_is_missing(fake_github: FakeGitHub, tmp_path: Path) -> None:
    with make(tmp_path, offline=True) as resolver, pytest.raises(CacheMissError) as caught:
        resolver.resolve("v0.71.0")
    assert "without --offline" in caught.value.message
    assert fake_github.requests == []


def test_offline_reads_the_cache_only(fake_github: FakeGitHub, tmp_path: Path) -> None:
    with make(tmp_path) as resolver:
        listing = resolver.resolve("v0.71.0").listing
        resolver.fetch_files(listing, [listing.files[0].name])
    sent = len(fake_github.requests)
    with make(tmp_path, offline=True) as resolver:
        listing = resolver.resolve("v0.71.0").listing
        assert resolver.fetch_files(listing, [listing.files[0].name])
        with pytest.raises(CacheMissError):
            resolver.fetch_files(listing, [listing.files[1].name])
    assert len(fake_github.requests) == sent


def test_corrupt_cache_entries_are_refetched(fake_github: FakeGitHub, tmp_path: Path) -> None:
    with make(tmp_path) as resolver:
        listing = resolver.resolve("v0.71.0").listing
        name = listing.files[0].name
        resolver.fetch_files(listing, [name])
    for path in (tmp_path / "cache").rglob("*"):
        if path.is_file():
            path.write_bytes(b"{not json" if path.suffix == ".json" else b"garbage")
    with make(tmp_path) as resolver:
        listing = resolver.resolve("v0.71.0").listing
        data = resolver.fetch_files(listing, [name])[name]
    assert git_blob_sha(data) == listing.files[0].sha


# -- listings -----------------------------------------------------------------------------------


def test_listing_of_a_branch_and_of_a_commit(fake_github: FakeGitHub, tmp_path: Path) -> None:
    commit = fake_github._commit("v0.71.0")
    assert commit is not None
    fake_github.branches["main"] = commit
    with make(tmp_path) as resolver:
        assert resolver.listing("main").commit == commit
        assert resolver.listing(commit).versions == resolver.listing("v0.71.0").versions


def test_listing_of_unknown_commit_is_told_apart_from_missing_directory(
    fake_github: FakeGitHub, tmp_path: Path
) -> None:
    with make(tmp_path) as resolver:
        with pytest.raises(BadInputError, match="no commit"):
            resolver.listing("a" * 40)
        with pytest.raises(BadInputError, match="no migrations directory"):
            resolver.listing(fake_github._commit("v0.50.0") or "")
        with pytest.raises(BadInputError, match="no ref"):
            resolver.listing("no-such-branch")


# -- contents ---------------------------------------------------------------------------------


def test_fetch_files_uses_raw_downloads_not_core_quota(
    fake_github: FakeGitHub, tmp_path: Path
) -> None:
    with make(tmp_path) as resolver:
        listing = resolver.resolve("v0.71.0").listing
        core = resolver.stats.core
        files = resolver.fetch_files(listing, [f.name for f in listing.files])
        assert resolver.stats.core == core
        assert resolver.stats.raw == 5
    assert all(git_blob_sha(files[f.name]) == f.sha for f in listing.files)


def test_raw_mismatch_is_an_error_never_used(fake_github: FakeGitHub, tmp_path: Path) -> None:
    name = "20250813183355_v1_0_36.sql"
    fake_github.raw_overrides[name] = httpx.Response(
        200, content=b"-- +goose Up\nDROP DATABASE x;\n"
    )
    with make(tmp_path) as resolver:
        listing = resolver.resolve("v0.71.0").listing
        with pytest.raises(ResolverError, match="does not match its git blob SHA"):
            resolver.fetch_files(listing, [name])
    assert not list((tmp_path / "cache").rglob("blobs/*/*"))


def test_raw_404_falls_back_to_the_blobs_api(fake_github: FakeGitHub, tmp_path: Path) -> None:
    name = "20250813183355_v1_0_36.sql"
    fake_github.raw_overrides[name] = httpx.Response(404, text="404: Not Found")
    with make(tmp_path) as resolver:
        listing = resolver.resolve("v0.71.0").listing
        data = resolver.fetch_files(listing, [name])[name]
    assert data == dict([sql(20250813183355, "v1_0_36")])[name]
    assert fake_github.count("/git/blobs/") == 1


def test_with_a_token_graphql_fetches_all_files_in_one_request(
    fake_github: FakeGitHub, tmp_path: Path
) -> None:
    with make(tmp_path, token=TOKEN) as resolver:
        listing = resolver.resolve("v0.71.0").listing
        files = resolver.fetch_files(listing, [f.name for f in listing.files])
        assert (resolver.stats.graphql, resolver.stats.raw) == (1, 0)
    assert len(files) == 5
    graphql = [r for r in fake_github.requests if r.url.path == "/graphql"]
    assert graphql[0].headers["authorization"] == f"Bearer {TOKEN}"


def test_truncated_graphql_texts_are_fetched_again(fake_github: FakeGitHub, tmp_path: Path) -> None:
    fake_github.graphql_truncated = True
    with make(tmp_path, token=TOKEN) as resolver:
        listing = resolver.resolve("v0.71.0").listing
        files = resolver.fetch_files(listing, [f.name for f in listing.files])
        assert (resolver.stats.graphql, resolver.stats.raw) == (1, 5)
    assert all(git_blob_sha(files[f.name]) == f.sha for f in listing.files)
    raw = [r for r in fake_github.requests if r.url.host == "raw.githubusercontent.com"]
    assert raw and all("authorization" not in r.headers for r in raw)


def test_fetched_files_are_cached_by_sha(fake_github: FakeGitHub, tmp_path: Path) -> None:
    with make(tmp_path) as resolver:
        listing = resolver.resolve("v0.71.0").listing
        resolver.fetch_files(listing, [f.name for f in listing.files])
    with make(tmp_path) as resolver:
        listing = resolver.resolve("v0.60.0").listing  # shares blobs with v0.71.0
        resolver.fetch_files(listing, [f.name for f in listing.files])
        assert resolver.stats.raw == 0


def test_fetching_a_name_not_in_the_listing_is_an_error(
    fake_github: FakeGitHub, tmp_path: Path
) -> None:
    with make(tmp_path) as resolver:
        listing = resolver.resolve("v0.60.0").listing
        with pytest.raises(ResolverError, match="not a migration file"):
            resolver.fetch_files(listing, ["20250813183355_v1_0_36.sql"])


# -- sources ----------------------------------------------------------------------------------


def test_find_source_takes_the_newest_release_holding_every_version(
    fake_github: FakeGitHub, tmp_path: Path
) -> None:
    with make(tmp_path) as resolver:
        assert resolver.find_source([20250417150604, 20250813183355]).ref == "v0.71.0"
        # a version that later releases deleted is found in the older release that had it
        fake_github.add_release("v0.90.0", dict([sql(20250813183355, "v1_0_36")]))
    with make(tmp_path) as resolver:
        assert resolver.find_source([20250401000000, 20250813183355]).ref == "v0.71.0"


def test_find_source_blocks_naming_versions_no_release_has(
    fake_github: FakeGitHub, tmp_path: Path
) -> None:
    with make(tmp_path) as resolver, pytest.raises(ResolverError) as caught:
        resolver.find_source([20250813183355, 20250901000000])
    assert exit_code_of(caught.value) == 3
    assert "20250901000000" in caught.value.message
    assert "20250813183355" not in caught.value.message


def test_newest_listing_is_the_newest_stable_release(
    fake_github: FakeGitHub, tmp_path: Path
) -> None:
    with make(tmp_path) as resolver:
        assert resolver.newest_listing().ref == resolver.releases()[0].tag


def test_a_repository_without_stable_releases_blocks_cleanly(
    fake_github: FakeGitHub, tmp_path: Path
) -> None:
    fake_github.tags = {n: t for n, t in fake_github.tags.items() if "-" in n}
    with make(tmp_path) as resolver:
        for call in (resolver.newest_listing, lambda: resolver.find_source([20250813183355])):
            with pytest.raises(ResolverError) as caught:
                call()
            assert exit_code_of(caught.value) == 3
            assert "has no stable releases" in caught.value.message


def test_releases_whose_last_migration_is_a_version(
    fake_github: FakeGitHub, tmp_path: Path
) -> None:
    fake_github.add_release(
        "v0.71.1", fake_github.commits[fake_github._commit("v0.71.0") or ""].files
    )
    with make(tmp_path) as resolver:
        assert resolver.place_version(20250813183355).releases == ("v0.71.1", "v0.71.0")
        assert resolver.place_version(20250417150604).releases == ("v0.60.0",)
        assert resolver.place_version(20250801000000).releases == ("v0.70.0",)
        assert resolver.place_version(20250501000000).releases == ()


def test_the_token_is_never_written_to_the_cache(fake_github: FakeGitHub, tmp_path: Path) -> None:
    with make(tmp_path, token=TOKEN) as resolver:
        listing = resolver.resolve("v0.71.0").listing
        resolver.fetch_files(listing, [f.name for f in listing.files])
        assert TOKEN not in repr(resolver)
    for path in (tmp_path / "cache").rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes()
    assert MIG

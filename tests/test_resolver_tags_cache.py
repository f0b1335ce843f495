"""Tag names (release, pre-release, junk, nearest) and the on-disk cache's guarantees."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resolver.cache import Cache
from resolver.gitblob import git_blob_sha
from resolver.tags import nearest_stable, parse_tag, sort_key

# -- tags -------------------------------------------------------------------------------------


@pytest.mark.parametrize("tag", ["v0.71.0", "v0.104.7", "v0.0.0", "v1.0.0"])
def test_stable_releases(tag: str) -> None:
    parsed = parse_tag(tag)
    assert parsed is not None and not parsed.prerelease


@pytest.mark.parametrize(
    "tag",
    [
        "v0.72.0-alpha.1",
        "v0.72.0-beta.3",
        "v0.72.0-rc.1",
        "v0.55.0-migration.3",
        "v0.60.1-patch.0",
        "v0.61.0-debug.0",
        "v0.1.0.pre.alpha",
    ],
)
def test_prereleases(tag: str) -> None:
    parsed = parse_tag(tag)
    assert parsed is not None and parsed.prerelease
    stable = parse_tag(tag.split("-")[0].removesuffix(".pre.alpha"))
    assert stable is not None and parsed.version < stable.version


@pytest.mark.parametrize(
    "tag",
    ["0.19.2", "v.jun-27-demo.3", "py/v0.1.0", "vscode/v1.0.0", "v1.2", "v01.2.3", "v1.2.3+x"],
)
def test_junk(tag: str) -> None:
    assert parse_tag(tag) is None


def test_prereleases_sort_below_their_release_and_above_the_previous() -> None:
    names = ["v0.72.0", "v0.72.0-alpha.2", "v0.72.0-alpha.10", "v0.71.9", "v0.72.0-rc.1"]
    parsed = sorted((p for p in map(parse_tag, names) if p), key=sort_key)
    assert [p.tag for p in parsed] == [
        "v0.71.9",
        "v0.72.0-alpha.2",
        "v0.72.0-alpha.10",
        "v0.72.0-rc.1",
        "v0.72.0",
    ]


def test_nearest_stable_names_neighbours_on_both_sides() -> None:
    stable = [
        p for p in map(parse_tag, ["v0.60.0", "v0.70.0", "v0.71.0", "v0.72.0", "v0.80.0"]) if p
    ]
    assert nearest_stable("v0.71.5", stable) == ["v0.70.0", "v0.71.0", "v0.72.0", "v0.80.0"]
    assert nearest_stable("v9.0.0", stable) == ["v0.72.0", "v0.80.0"]


@given(st.tuples(st.integers(0, 999), st.integers(0, 999), st.integers(0, 999)))
def test_every_plain_vxyz_is_a_stable_release(parts: tuple[int, int, int]) -> None:
    parsed = parse_tag("v{}.{}.{}".format(*parts))
    assert parsed is not None and not parsed.prerelease and parsed.version.release == parts


# -- cache ------------------------------------------------------------------------------------


def _cache(tmp_path: Path) -> Cache:
    return Cache(tmp_path / "c", "https://api.github.com", "hatchet-dev/hatchet")


def test_entries_are_private_files_in_private_directories(tmp_path: Path) -> None:
    cache = _cache(tmp_path)
    cache.write_json("refs/tags-v", {"a": 1})
    data = b"hello\n"
    cache.write_blob(git_blob_sha(data), data)
    files = [p for p in (tmp_path / "c").rglob("*") if p.is_file()]
    dirs = [p for p in (tmp_path / "c" / "github-v1").rglob("*") if p.is_dir()]
    assert len(files) == 2 and dirs
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files)
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o700 for p in dirs)
    assert stat.S_IMODE((tmp_path / "c").stat().st_mode) == 0o700
    assert cache.read_json("refs/tags-v") == {"a": 1}
    assert cache.read_blob(git_blob_sha(data)) == data


def test_a_user_chosen_existing_directory_keeps_its_mode(tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o755)
    Cache(tmp_path, "https://api.github.com", "o/r").write_json("k", 1)
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755


def test_corrupt_entries_are_discarded(tmp_path: Path) -> None:
    cache = _cache(tmp_path)
    cache.write_json("listing/x", [1])
    data = b"content"
    sha = git_blob_sha(data)
    cache.write_blob(sha, data)
    (json_file,) = (tmp_path / "c").rglob("x.json")
    (blob_file,) = (tmp_path / "c").rglob(sha)
    json_file.write_text('{"format": 1, "key": "listing/x", "val')
    blob_file.write_bytes(b"contenT")
    assert cache.read_json("listing/x") is None and not json_file.exists()
    assert cache.read_blob(sha) is None and not blob_file.exists()


def test_no_temporary_files_are_left_behind(tmp_path: Path) -> None:
    cache = _cache(tmp_path)
    for i in range(5):
        cache.write_json("k", i)
    assert [p.name for p in (tmp_path / "c").rglob("*") if p.is_file()] == ["k.json"]
    assert cache.read_json("k") == 4


def test_hosts_and_repositories_do_not_share_entries(tmp_path: Path) -> None:
    Cache(tmp_path, "https://api.github.com", "o/r").write_json("k", "public")
    assert Cache(tmp_path, "https://ghe.example.com/api/v3", "o/r").read_json("k") is None
    assert Cache(tmp_path, "https://api.github.com", "o/other").read_json("k") is None


def test_an_unwritable_cache_is_not_an_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    cache = Cache(blocker, "https://api.github.com", "o/r")
    cache.write_json("k", 1)
    assert cache.read_json("k") is None

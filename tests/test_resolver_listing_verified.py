"""Directory listings are verified against the git tree id, fetched or read from the cache.

In-process resolvers against the local GitHub emulator (whose trees are real git trees), serving
a small repository whose migrations directory also holds a README, a subdirectory and a ``.go``
file. Tampering with the network is done by an httpx transport that edits answers on their way
to the resolver.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli import exit_code_of
from fixtures.github_emulator import Emulator, Repository, load_history
from fixtures.github_emulator.history import DEFAULT_MIGRATIONS_PATH
from resolver.errors import CacheMissError, ResolverError
from resolver.gitblob import git_blob_sha, git_tree_sha
from resolver.service import Resolver
from resolver.settings import GitHubSettings

REPO = "acme/hatchet"
MIG = DEFAULT_MIGRATIONS_PATH
OLD_TAG, NEW_TAG = "v0.60.0", "v0.61.0"
NEWEST = 20250201000000
NEWEST_FILE = f"{NEWEST}_v1_0_2.go"
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
TREES_BY_EXPRESSION = r"/git/trees/[0-9a-f]{40}:"


def _sql(version: int) -> bytes:
    up = f"-- +goose Up\nCREATE TABLE t{version} (id int);\n"
    return (up + f"-- +goose Down\nDROP TABLE t{version};\n").encode()


def build_repo() -> Repository:
    repo = Repository("acme", "hatchet")
    v60 = {
        "VERSION": b"v0.60.0\n",
        f"{MIG}/20250101000000_v1_0_0.sql": _sql(20250101000000),
        f"{MIG}/20250102000000_v1_0_1.sql": _sql(20250102000000),
        f"{MIG}/README.md": b"not a migration\n",
        f"{MIG}/older/20240101000000_v0_9_0.sql": _sql(20240101000000),
    }
    v61 = {**v60, "VERSION": b"v0.61.0\n", f"{MIG}/{NEWEST_FILE}": b"package migrations\n"}
    parent: tuple[str, ...] = ()
    for day, (tag, files) in enumerate([(OLD_TAG, v60), (NEW_TAG, v61)], start=1):
        commit = repo.add_commit(
            repo.add_tree(files), parent, f"release {tag}", datetime(2025, 3, day, tzinfo=UTC)
        )
        repo.tags[tag] = commit
        parent = (commit,)
    repo.branches["main"] = parent[0]
    return repo


@pytest.fixture(scope="module")
def gh() -> Iterator[Emulator]:
    with Emulator([build_repo()], anonymous_limit=100_000) as emulator:
        yield emulator


Edit = Callable[[httpx.Request, Any], Any]


class Tamper(httpx.BaseTransport):
    """Passes requests to the emulator and lets ``edit`` rewrite each JSON answer."""

    def __init__(self, edit: Edit) -> None:
        self._inner = httpx.HTTPTransport()
        self._edit = edit
        self.paths: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        response.read()
        self.paths.append(request.url.raw_path.decode())
        if response.status_code != 200 or "json" not in response.headers.get("content-type", ""):
            return response
        body = self._edit(request, json.loads(response.content))
        headers = {
            k: v
            for k, v in response.headers.items()
            if k.lower() not in ("content-length", "content-encoding", "transfer-encoding")
        }
        return httpx.Response(
            response.status_code, headers=headers, content=json.dumps(body).encode()
        )

    def close(self) -> None:
        self._inner.close()


def make(
    gh: Emulator,
    cache: Path,
    *,
    offline: bool = False,
    transport: httpx.BaseTransport | None = None,
) -> Resolver:
    settings = GitHubSettings(api_url=gh.api_url, repo=REPO, cache_dir=cache, offline=offline)
    return Resolver(settings, sleep=lambda _s: None, transport=transport)


def listing_file(cache: Path, gh: Emulator, tag: str) -> Path:
    commit = gh.repos[REPO].tags[tag]
    (path,) = cache.rglob(f"json/listing/{commit}-*.json")
    return path


def edit_cached(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    envelope = json.loads(path.read_text())
    change(envelope["value"])
    path.write_text(json.dumps(envelope))


def directory_of(gh: Emulator, tag: str, path: str = MIG) -> str:
    repo = gh.repos[REPO]
    entry = repo.lookup(repo.commits[repo.tags[tag]].tree, path)
    assert entry is not None
    return entry.sha


# -- the tree id ------------------------------------------------------------------------------


def test_the_tree_id_of_every_emulator_tree_is_recomputed() -> None:
    repo = load_history().build()
    assert len(repo.trees) > 20
    for sha, tree in repo.trees.items():
        assert git_tree_sha((e.mode, e.name, e.sha) for e in tree.entries) == sha
    assert git_tree_sha([]) == EMPTY_TREE


def test_the_trees_api_answer_hashes_to_its_own_sha(gh: Emulator) -> None:
    with httpx.Client(base_url=gh.api_url, trust_env=False) as api:
        for treeish in (f"{NEW_TAG}:{MIG}", f"{OLD_TAG}:{MIG}", NEW_TAG, f"{NEW_TAG}:cmd"):
            answer = api.get(f"/repos/{REPO}/git/trees/{treeish}").json()
            entries = [(e["mode"], e["path"], e["sha"]) for e in answer["tree"]]
            assert git_tree_sha(entries) == answer["sha"]
            assert git_tree_sha(reversed(entries)) == answer["sha"]  # order does not matter
            # every entry counts, not only the migration files
            assert git_tree_sha(entries[1:]) != answer["sha"]


@pytest.mark.parametrize(
    "entries",
    [
        [("100644", "a", "0" * 40), ("100644", "a", "1" * 40)],  # a name twice
        [("100645x", "a", "0" * 40)],
        [("100644", "a/b", "0" * 40)],
        [("100644", "", "0" * 40)],
        [("100644", "a", "0" * 39)],
    ],
)
def test_entries_git_would_not_write_are_refused(entries: list[tuple[str, str, str]]) -> None:
    with pytest.raises(ValueError):
        git_tree_sha(entries)


needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _git(cwd: Path, *args: str, stdin: str | None = None) -> str:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    done = subprocess.run(
        ["git", *args], cwd=cwd, input=stdin, capture_output=True, text=True, check=True, env=env
    )
    return done.stdout


@needs_git
def test_the_tree_id_matches_git_mktree(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q")
    blob = git_blob_sha(b"x\n")
    entries = [
        ("040000", "foo", EMPTY_TREE),  # sorts as "foo/": after "foo.sql", before "foo0"
        ("100644", "foo.sql", blob),
        ("100644", "foo0", blob),
        ("100644", "foo-bar", blob),
        ("100755", "run.sh", blob),
        ("120000", "link", git_blob_sha(b"foo.sql")),
        ("160000", "sub", "1" * 40),
        ("100644", "20250101000000_v1_0_0.sql", blob),
    ]
    kinds = {"040000": "tree", "160000": "commit"}
    for count in (1, 3, len(entries)):
        lines = "".join(
            f"{mode} {kinds.get(mode, 'blob')} {sha}\t{name}\n"
            for mode, name, sha in entries[:count]
        )
        want = _git(tmp_path, "mktree", "--missing", stdin=lines).strip()
        assert git_tree_sha(entries[:count]) == want


@needs_git
def test_the_tree_id_matches_git_write_tree_of_a_real_directory(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q")
    (tmp_path / "older").mkdir()
    (tmp_path / "older" / "1_a.sql").write_bytes(b"-- old\n")
    (tmp_path / "2_b.sql").write_bytes(b"-- b\n")
    (tmp_path / "2_b.sql.orig").write_bytes(b"")
    (tmp_path / "run.sh").write_bytes(b"#!/bin/sh\n")
    (tmp_path / "run.sh").chmod(0o755)
    os.symlink("2_b.sql", tmp_path / "link.sql")
    _git(tmp_path, "add", "-A")
    root = _git(tmp_path, "write-tree").strip()
    listed = []
    for line in _git(tmp_path, "ls-tree", root).splitlines():
        meta, name = line.split("\t")
        mode, _kind, sha = meta.split()
        listed.append((mode, name, sha))
    assert {m for m, _n, _s in listed} == {"040000", "100644", "100755", "120000"}
    assert git_tree_sha(listed) == root
    data = (tmp_path / "2_b.sql").read_bytes()
    assert git_blob_sha(data) == _git(tmp_path, "hash-object", "2_b.sql").strip()


# -- what is cached ---------------------------------------------------------------------------


def test_the_cached_listing_keeps_every_entry_and_the_tree_id(gh: Emulator, tmp_path: Path) -> None:
    with make(gh, tmp_path) as resolver:
        assert resolver.resolve(NEW_TAG).version == NEWEST
    value = json.loads(listing_file(tmp_path, gh, NEW_TAG).read_text())["value"]
    assert value["tree"] == directory_of(gh, NEW_TAG)
    by_name = {name: (mode, kind) for mode, kind, _sha, name, _size in value["entries"]}
    assert by_name["older"] == ("40000", "tree")
    assert by_name["README.md"] == ("100644", "blob")
    assert len(by_name) == 5


# -- a tampered cache -------------------------------------------------------------------------


def _rename_newest(value: dict[str, Any]) -> None:
    for entry in value["entries"]:
        if entry[3] == NEWEST_FILE:
            entry[3] = "20991231000000_v1_0_2.go"


def _add_file(value: dict[str, Any]) -> None:
    value["entries"].append(["100644", "blob", git_blob_sha(b"x"), "20991231000000_x.sql", 1])


def _remove_newest(value: dict[str, Any]) -> None:
    value["entries"] = [e for e in value["entries"] if e[3] != NEWEST_FILE]


def _change_sha(value: dict[str, Any]) -> None:
    for entry in value["entries"]:
        if entry[3] == NEWEST_FILE:
            entry[2] = git_blob_sha(b"something else\n")


def _remove_subdirectory(value: dict[str, Any]) -> None:
    value["entries"] = [e for e in value["entries"] if e[3] != "older"]


def _file_as_symlink(value: dict[str, Any]) -> None:
    for entry in value["entries"]:
        if entry[3] == NEWEST_FILE:
            entry[0] = "120000"  # to_files would skip it


def _file_as_tree(value: dict[str, Any]) -> None:
    for entry in value["entries"]:
        if entry[3] == NEWEST_FILE:
            entry[1] = "tree"  # the type must agree with the (hashed) mode


def _old_format(value: dict[str, Any]) -> None:
    value["entries"] = [[e[3], e[2], e[4]] for e in value["entries"] if e[1] == "blob"]
    del value["tree"]


TAMPERS = {
    "version changed": _rename_newest,
    "file added": _add_file,
    "file removed": _remove_newest,
    "sha changed": _change_sha,
    "subdirectory removed": _remove_subdirectory,
    "mode changed": _file_as_symlink,
    "type changed": _file_as_tree,
    "old format": _old_format,
}


@pytest.mark.parametrize("tamper", list(TAMPERS.values()), ids=list(TAMPERS))
def test_a_tampered_cache_entry_is_discarded_and_fetched_again(
    gh: Emulator, tmp_path: Path, tamper: Callable[[dict[str, Any]], None]
) -> None:
    with make(gh, tmp_path) as resolver:
        resolver.resolve(NEW_TAG)
    path = listing_file(tmp_path, gh, NEW_TAG)
    good = json.loads(path.read_text())
    edit_cached(path, tamper)
    with make(gh, tmp_path) as resolver:
        gh.reset_counts()
        resolution = resolver.resolve(NEW_TAG)
        assert (resolution.version, resolution.file) == (NEWEST, NEWEST_FILE)
        assert resolution.migrations == 3
        assert (resolver.stats.core, resolver.stats.not_modified) == (1, 1)  # the listing again
    assert json.loads(path.read_text()) == good


@pytest.mark.parametrize("tamper", list(TAMPERS.values()), ids=list(TAMPERS))
def test_a_tampered_cache_entry_is_an_error_offline(
    gh: Emulator, tmp_path: Path, tamper: Callable[[dict[str, Any]], None]
) -> None:
    with make(gh, tmp_path) as resolver:
        resolver.resolve(NEW_TAG)
    path = listing_file(tmp_path, gh, NEW_TAG)
    edit_cached(path, tamper)
    with make(gh, tmp_path, offline=True) as resolver, pytest.raises(CacheMissError) as caught:
        resolver.resolve(NEW_TAG)
    assert exit_code_of(caught.value) == 2
    assert str(path) in caught.value.message
    assert "failed verification" in caught.value.message
    assert "once without --offline" in caught.value.message
    assert not path.exists()


def test_an_intact_cache_entry_works_offline(gh: Emulator, tmp_path: Path) -> None:
    with make(gh, tmp_path) as resolver:
        resolver.resolve(NEW_TAG)
    with make(gh, tmp_path, offline=True) as resolver:
        assert resolver.resolve(NEW_TAG).version == NEWEST


def test_budgeted_searches_do_not_use_a_tampered_listing(gh: Emulator, tmp_path: Path) -> None:
    with make(gh, tmp_path) as resolver:
        resolver.resolve(NEW_TAG)
    edit_cached(listing_file(tmp_path, gh, NEW_TAG), _add_file)
    with make(gh, tmp_path) as resolver:
        resolver.releases()
        gh.reset_counts()
        with pytest.raises(ResolverError) as caught:  # it would "find" 20991231000000 in v0.61.0
            resolver.find_source([20991231000000], budget=0)
        assert exit_code_of(caught.value) == 3
        assert gh.counts.core == 0
        assert resolver.find_source([NEWEST], budget=1).ref == NEW_TAG  # fetched again


# -- a tampered network answer ----------------------------------------------------------------


def _on(fragment: str, change: Callable[[Any], None]) -> Edit:
    def edit(request: httpx.Request, body: Any) -> Any:
        if fragment in request.url.raw_path.decode():
            change(body)
        return body

    return edit


def _tree_rename(body: Any) -> None:
    for item in body["tree"]:
        if item["path"] == NEWEST_FILE:
            item["path"] = "20991231000000_v1_0_2.go"


def _tree_drop(body: Any) -> None:
    body["tree"] = [i for i in body["tree"] if i["path"] != NEWEST_FILE]


def _tree_add(body: Any) -> None:
    body["tree"].append(
        {"path": "20991231000000_x.sql", "mode": "100644", "type": "blob",
         "sha": git_blob_sha(b"x"), "size": 1}
    )  # fmt: skip


def _tree_sha(body: Any) -> None:
    body["sha"] = git_blob_sha(b"another tree")


def _tree_mode(body: Any) -> None:
    for item in body["tree"]:
        if item["path"] == "older":
            item["mode"], item["type"] = "160000", "commit"


NETWORK_TAMPERS = {
    "name changed": _tree_rename,
    "entry dropped": _tree_drop,
    "entry added": _tree_add,
    "tree id changed": _tree_sha,
    "mode changed": _tree_mode,
}


@pytest.mark.parametrize("change", list(NETWORK_TAMPERS.values()), ids=list(NETWORK_TAMPERS))
def test_a_tampered_trees_answer_is_refused(
    gh: Emulator, tmp_path: Path, change: Callable[[Any], None]
) -> None:
    transport = Tamper(_on("/git/trees/", change))
    with (
        make(gh, tmp_path, transport=transport) as resolver,
        pytest.raises(ResolverError) as caught,
    ):
        resolver.resolve(NEW_TAG)
    assert exit_code_of(caught.value) == 1
    assert "failed verification" in caught.value.message
    assert "git trees API" in caught.value.message
    assert not list(tmp_path.rglob("json/listing/*.json"))  # nothing was cached


def _contents_rename(body: Any) -> None:
    items = body if isinstance(body, list) else body["entries"]
    for item in items:
        if item["name"] == NEWEST_FILE:
            item["name"] = "20991231000000_v1_0_2.go"


def test_a_tampered_contents_answer_is_refused(gh: Emulator, tmp_path: Path) -> None:
    transport = Tamper(_on(f"/contents/{MIG}", _contents_rename))
    with make(gh, tmp_path, transport=transport) as resolver:
        resolver.releases()
        gh.fail(TREES_BY_EXPRESSION, 422, message="Invalid tree expression")
        with pytest.raises(ResolverError) as caught:
            resolver.resolve(NEW_TAG)
    assert exit_code_of(caught.value) == 1
    assert "failed verification" in caught.value.message
    assert not list(tmp_path.rglob("json/listing/*.json"))


# -- the contents API paths -------------------------------------------------------------------


def _expected_files(gh: Emulator, tmp_path: Path) -> tuple[object, ...]:
    with make(gh, tmp_path / "reference") as resolver:
        return resolver.listing(NEW_TAG).files


def test_after_a_422_the_tree_id_comes_from_the_parent_listing(
    gh: Emulator, tmp_path: Path
) -> None:
    want = _expected_files(gh, tmp_path)
    with make(gh, tmp_path / "cache") as resolver:
        resolver.releases()
        gh.fail(TREES_BY_EXPRESSION, 422, message="Invalid tree expression")
        gh.reset_counts()
        assert resolver.listing(NEW_TAG).files == want
        paths = [r.path.split("?")[0].split(f"/repos/{REPO}")[1] for r in gh.requests]
    parent = MIG.rsplit("/", 1)[0]
    assert [p.split("/")[1] for p in paths] == ["git", "contents", "contents"]
    assert paths[2] == f"/contents/{parent}"
    with make(gh, tmp_path / "cache", offline=True) as resolver:
        assert resolver.listing(NEW_TAG).files == want  # and the cached entry verifies


def _as_object(gh: Emulator) -> Edit:
    """Answer contents requests for the object media type as GitHub does."""

    def edit(request: httpx.Request, body: Any) -> Any:
        if "object" not in request.headers.get("accept", "") or not isinstance(body, list):
            return body
        tag = next(t for t, c in gh.repos[REPO].tags.items() if c in str(request.url))
        path = request.url.path.split("/contents/", 1)[1]
        sha = directory_of(gh, tag, path)
        return {"type": "dir", "name": path.rsplit("/", 1)[-1], "path": path, "sha": sha,
                "size": 0, "entries": body}  # fmt: skip

    return edit


def test_after_a_422_the_object_shape_gives_the_tree_id_in_the_same_request(
    gh: Emulator, tmp_path: Path
) -> None:
    want = _expected_files(gh, tmp_path)
    transport = Tamper(_as_object(gh))
    with make(gh, tmp_path / "cache", transport=transport) as resolver:
        resolver.releases()
        gh.fail(TREES_BY_EXPRESSION, 422, message="Invalid tree expression")
        gh.reset_counts()
        assert resolver.listing(NEW_TAG).files == want
        assert gh.counts.core == 2  # the 422 and the contents listing


def _dir_as_file(request: httpx.Request, body: Any) -> Any:
    # a submodule in a contents listing says "file": the guessed mode is then wrong
    if f"/contents/{MIG}" in request.url.raw_path.decode() and isinstance(body, list):
        for item in body:
            if item["name"] == "older":
                item["type"] = "file"
    return body


def test_wrongly_guessed_modes_are_read_from_the_tree_by_its_id(
    gh: Emulator, tmp_path: Path
) -> None:
    want = _expected_files(gh, tmp_path)
    transport = Tamper(_dir_as_file)
    with make(gh, tmp_path / "cache", transport=transport) as resolver:
        resolver.releases()
        gh.fail(TREES_BY_EXPRESSION, 422, message="Invalid tree expression")
        gh.reset_counts()
        assert resolver.listing(NEW_TAG).files == want
    tree = directory_of(gh, NEW_TAG)
    assert any(p.endswith(f"/git/trees/{tree}") for p in transport.paths)
    assert gh.counts.core == 4


def _truncate(request: httpx.Request, body: Any) -> Any:
    if "/git/trees/" in request.url.raw_path.decode():
        body["tree"], body["truncated"] = body["tree"][:2], True
    return body


def test_a_truncated_tree_is_completed_by_the_contents_api_and_verified(
    gh: Emulator, tmp_path: Path
) -> None:
    want = _expected_files(gh, tmp_path)
    with make(gh, tmp_path / "cache", transport=Tamper(_truncate)) as resolver:
        resolver.releases()
        gh.reset_counts()
        assert resolver.listing(NEW_TAG).files == want
        assert gh.counts.core == 2  # the truncated tree gave the tree id


def test_a_contents_answer_that_misses_entries_after_truncation_is_refused(
    gh: Emulator, tmp_path: Path
) -> None:
    def edit(request: httpx.Request, body: Any) -> Any:
        body = _truncate(request, body)
        if "/contents/" in request.url.raw_path.decode() and isinstance(body, list):
            body = [i for i in body if i["name"] != "README.md"]  # e.g. a 1,000-entry cap
        return body

    with (
        make(gh, tmp_path, transport=Tamper(edit)) as resolver,
        pytest.raises(ResolverError) as caught,
    ):
        resolver.resolve(NEW_TAG)
    assert exit_code_of(caught.value) == 1 and "contents API" in caught.value.message

"""``--git-dir DIR``: the fixture history written out as a real git repository (bare, and a
``git clone`` of it with a work tree) answers exactly as the GitHub emulator serving the same
history does; a damaged or partial repository is refused naming the object. In-process."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app, exit_code_of
from fixtures.github_emulator import Emulator, load_history
from fixtures.github_emulator.gitrepo import clone_work_tree, write_git_dir
from resolver.errors import BadInputError, ResolverError
from resolver.gitdir import GitDirResolver, GitRepository
from resolver.service import Resolver
from resolver.settings import GitHubSettings

UNREACHABLE = "http://127.0.0.1:9/api/v3"
HISTORY = load_history()
FILLER = re.compile(r"v0\.([1-9]|[1-4]\d|5[0-3])\.\d+")  # the 318 releases before v0.54.0
TAGS = [*sorted(t.name for t in HISTORY.tags if not FILLER.fullmatch(t.name)), "v0.1.0", "v0.53.5"]
VERSIONS = sorted(
    {int(name.split("_", 1)[0]) for t in HISTORY.tags for name in (t.migrations or {})}
)


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Clones:
    bare: Path
    work: Path


@pytest.fixture(scope="module")
def clones(tmp_path_factory: pytest.TempPathFactory) -> Clones:
    tmp = tmp_path_factory.mktemp("git")
    bare = write_git_dir(HISTORY.build(), tmp / "hatchet.git")
    return Clones(bare, clone_work_tree(bare, tmp / "hatchet"))


def invoke(args: list[str], *, api_url: str, cache: Path) -> Run:
    result = CliRunner().invoke(
        app,
        args,
        env={
            "GITHUB_API_URL": api_url,
            "HATCHET_SCHEMA_CACHE_DIR": str(cache),
            "GH_TOKEN": None,
            "GITHUB_TOKEN": None,
            "NO_COLOR": "1",
        },
    )
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    return Run(result.exit_code, result.stdout, result.stderr)


def without_origin(run: Run, where: Path) -> Run:
    return Run(run.code, run.stdout, run.stderr.replace(f" (git-dir {where})", ""))


CASES = {
    "resolve": [["resolve", tag] for tag in TAGS]
    + [["resolve", tag, "--json"] for tag in TAGS if tag.startswith("v")]
    + [["resolve", tag, "--allow-prerelease", "--json"] for tag in TAGS if "-" in tag]
    + [["resolve", "v0.59.9"], ["resolve", "v9.9.9"], ["resolve", " v0.59.0 "]],
    "releases": [
        ["releases"],
        ["releases", "--include-prereleases", "--json"],
        ["releases", "--limit", "4"],
    ],
}


@pytest.mark.parametrize("family", list(CASES))
def test_a_local_clone_answers_as_the_api(
    gh: Emulator, clones: Clones, tmp_path: Path, family: str
) -> None:
    for args in CASES[family]:
        online = invoke(args, api_url=gh.api_url, cache=tmp_path / "cache")
        for where in (clones.bare, clones.work):
            local = invoke([*args, "--git-dir", str(where)], api_url=UNREACHABLE, cache=tmp_path)
            assert without_origin(local, where) == online, args


def test_the_resolver_api_answers_as_online(gh: Emulator, clones: Clones, tmp_path: Path) -> None:
    settings = GitHubSettings(api_url=gh.api_url, cache_dir=tmp_path / "cache")
    with Resolver(settings) as online, GitDirResolver(clones.bare, settings) as local:
        assert local.origin == f"git-dir {clones.bare}"
        assert local.releases(include_prereleases=True) == online.releases(include_prereleases=True)
        for version in [*VERSIONS, 20240101000000, 20990101000000]:
            assert local.place_version(version) == online.place_version(version), version
            assert local.place_version(version, budget=0) == online.place_version(
                version, budget=0
            ), version
        for wanted in ([VERSIONS[-1]], VERSIONS[3:9], [20250505000000, 20250402090000]):
            try:
                expected = online.find_source(wanted, budget=10)
            except ResolverError as exc:
                with pytest.raises(ResolverError) as caught:
                    local.find_source(wanted, budget=10)
                assert exit_code_of(caught.value) == exit_code_of(exc)
            else:
                assert local.find_source(wanted, budget=10) == expected
        assert local.find_file(20250505000000, ["v0.57.1"]) == online.find_file(
            20250505000000, ["v0.57.1"]
        )
        assert local.find_file(20250505000000) == online.find_file(20250505000000)
        for ref in ("main", "v0.56.0", online.listing("v0.58.1").commit):
            assert local.listing(ref) == online.listing(ref)
        newest = online.newest_listing()
        names = [f.name for f in newest.files]
        assert local.fetch_files(newest, names) == online.fetch_files(newest, names)


def test_refs_that_do_not_exist_are_bad_input(clones: Clones) -> None:
    with GitDirResolver(clones.bare, GitHubSettings()) as local:
        for ref in ("no-such-branch", "--output=x", "0" * 40, "v0.59.0:README.md"):
            with pytest.raises(BadInputError):
                local.listing(ref)


def test_not_a_repository_is_bad_input(tmp_path: Path) -> None:
    for where, message in ((tmp_path, "is not a git repository"), (tmp_path / "x", "no such")):
        run = invoke(
            ["resolve", "v0.59.0", "--git-dir", str(where)], api_url=UNREACHABLE, cache=tmp_path
        )
        assert run.code == 2 and message in run.stderr, run


def test_the_callers_git_variables_do_not_redirect_the_reads(
    clones: Clones, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty.git"
    subprocess.run(["git", "init", "-q", "--bare", str(empty)], check=True)
    monkeypatch.setenv("GIT_DIR", str(empty))
    monkeypatch.setenv("GIT_OBJECT_DIRECTORY", str(empty / "objects"))
    monkeypatch.setenv("GIT_NAMESPACE", "elsewhere")
    run = invoke(
        ["resolve", "v0.59.0", "--git-dir", str(clones.bare)], api_url=UNREACHABLE, cache=tmp_path
    )
    assert (run.code, run.stdout) == (0, "20250604130000\n")


# -- damaged and partial repositories ---------------------------------------------------------


@pytest.fixture
def copy(clones: Clones, tmp_path: Path) -> Iterator[Path]:
    target = tmp_path / "copy.git"
    shutil.copytree(clones.bare, target)
    yield target


def _object_path(repo: Path, sha: str) -> Path:
    return repo / "objects" / sha[:2] / sha[2:]


def _newest_file(repo: Path) -> tuple[str, str]:
    with GitDirResolver(repo, GitHubSettings()) as local:
        newest = local.newest_listing().newest
    assert newest is not None
    return newest.name, newest.sha


def test_an_object_that_does_not_match_its_id_is_refused(copy: Path, tmp_path: Path) -> None:
    name, sha = _newest_file(copy)
    path = _object_path(copy, sha)
    os.chmod(path, 0o644)
    body = b"-- +goose Down\nDROP SCHEMA public CASCADE;\n"
    path.write_bytes(zlib.compress(b"blob %d\0" % len(body) + body))
    args = ["downgrade", "--to-version", "20250604130000", "--dry-run", "--git-dir", str(copy)]
    with GitDirResolver(copy, GitHubSettings()) as local:
        listing = local.newest_listing()
        with pytest.raises(ResolverError) as caught:
            local.fetch_files(listing, [name])
    assert exit_code_of(caught.value) == 1
    assert sha in caught.value.message and "does not match its id" in caught.value.message
    assert args  # the CLI path is covered end to end in test_e2e_airgap


def test_a_missing_blob_names_it(copy: Path) -> None:
    name, sha = _newest_file(copy)
    _object_path(copy, sha).unlink()
    with GitDirResolver(copy, GitHubSettings()) as local:
        listing = local.newest_listing()
        with pytest.raises(ResolverError) as caught:
            local.fetch_files(listing, [name])
    assert exit_code_of(caught.value) == 1
    assert f"lacks blob {sha} ({name}" in caught.value.message
    assert "partial clone" in caught.value.message


def test_a_missing_tree_names_it(copy: Path) -> None:
    with GitDirResolver(copy, GitHubSettings()) as local:
        commit = local.release("v0.59.0").commit
        assert commit is not None
        tree = local.listing("v0.59.0")
    repo = GitRepository(copy)
    found = repo.read(commit)
    repo.close()
    assert found is not None
    root = re.search(rb"^tree ([0-9a-f]{40})", found.body, re.M)
    assert root is not None
    _object_path(copy, root.group(1).decode()).unlink()
    with GitDirResolver(copy, GitHubSettings()) as local, pytest.raises(ResolverError) as caught:
        local.listing("v0.59.0")
    assert exit_code_of(caught.value) == 1 and "lacks tree" in caught.value.message
    assert tree.files  # it was readable before

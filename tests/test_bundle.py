"""Bundles (``hatchet-schema bundle`` and ``--bundle FILE``), in-process against the GitHub
emulator's fixture history: the file format (a tar.gz with a JSON manifest, readable without the
tool), the same output as the online run without any request, refusal of tampered or truncated
bundles, coverage errors that name the ``bundle`` command to run, and the requests a bundle costs.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli import app
from fixtures.github_emulator import Emulator, load_history

TOKEN = "ghp_bundleTestToken00000000000000000000000"
UNREACHABLE = "http://127.0.0.1:9/api/v3"  # nothing listens there: a request would fail
HISTORY = load_history()
ALL_TAGS = sorted(t.name for t in HISTORY.tags)
STABLE = [
    t
    for t in ALL_TAGS
    if re.fullmatch(r"v\d+\.\d+\.\d+", t) and tuple(map(int, t[1:].split("."))) >= (0, 55, 0)
]


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str


def invoke(args: list[str], *, api_url: str, cache: Path, token: str | None = None) -> Run:
    result = CliRunner().invoke(
        app,
        args,
        env={
            "GITHUB_API_URL": api_url,
            "HATCHET_SCHEMA_CACHE_DIR": str(cache),
            "GH_TOKEN": token,
            "GITHUB_TOKEN": None,
            "HATCHET_SCHEMA_OFFLINE": None,
            "NO_COLOR": "1",
            "COLUMNS": "200",
        },
    )
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    return Run(result.exit_code, result.stdout, result.stderr)


def normalized(text: str) -> str:
    """Output without the name of the bundle or clone a plan names beside its source ref."""
    return re.sub(r" from (?:bundle|git-dir) [^\s\",]+", "", text)


@dataclass(frozen=True)
class Made:
    full: Path
    lean: Path
    narrow: Path
    gh: Emulator
    cache: Path


@pytest.fixture(scope="module")
def made(gh: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Made]:
    tmp = tmp_path_factory.mktemp("bundles")
    full, lean, narrow = tmp / "full.bundle", tmp / "lean.bundle", tmp / "narrow.bundle"
    for n, args in enumerate(
        (
            ["--to-release", "v0.55.0", "--listings", "all", "--output", str(full)],
            ["--to-release", "v0.55.0", "--output", str(lean)],  # anonymous: "plan"
            ["--to-release", "v0.57.0", "--from-release", "v0.58.0", "--output", str(narrow)],
        )
    ):  # each from a cold cache: a bundle holds what its own run read
        run = invoke(["bundle", *args], api_url=gh.api_url, cache=tmp / f"cache{n}")
        assert run.code == 0, run
    yield Made(full, lean, narrow, gh, tmp / "cache")


# -- the format -------------------------------------------------------------------------------


def test_a_bundle_is_a_tar_gz_with_a_json_manifest_readable_without_the_tool(made: Made) -> None:
    with tarfile.open(made.full, "r:gz") as tar:
        names = tar.getnames()
        members = {n: tar.extractfile(n).read() for n in names}  # type: ignore[union-attr]
    assert names[:2] == ["manifest.json", "README.txt"]
    manifest = json.loads(members["manifest.json"])
    assert manifest["format"] == "hatchet-schema-bundle" and manifest["format_version"] == 1
    assert manifest["tool"] == "hatchet-schema" and manifest["tool_version"]
    assert manifest["repository"] == "hatchet-dev/hatchet"
    assert manifest["to_release"] == "v0.55.0" and manifest["from_release"] == "v0.60.0"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", manifest["created"])
    assert set(manifest["releases"]) >= set(STABLE)
    assert {t[0] for t in manifest["tags"]} == {t for t in ALL_TAGS if t.startswith("v")}
    for sha, meta in manifest["blobs"].items():
        data = members[f"blobs/{sha}"]
        assert hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest() == sha
        assert meta["size"] == len(data) and meta["name"].endswith((".sql", ".go"))
    assert sorted(names[2:]) == sorted(f"blobs/{sha}" for sha in manifest["blobs"])
    # every listing's commit is a release's, and its tree lists every file with its blob SHA
    for tag, commit in manifest["releases"].items():
        tree = manifest["commits"][commit]
        if tree is not None:
            entries = [manifest["entries"][i] for i in manifest["trees"][tree]]
            assert all(len(e) == 4 for e in entries), tag


def test_a_bundle_is_reproducible_but_for_its_creation_time(made: Made, tmp_path: Path) -> None:
    again = tmp_path / "again.bundle"
    run = invoke(
        ["bundle", "--to-release", "v0.55.0", "--listings", "all", "--output", str(again)],
        api_url=made.gh.api_url,
        cache=made.cache,
    )
    assert run.code == 0, run

    def content(path: Path) -> dict[str, Any]:
        with tarfile.open(path, "r:gz") as tar:
            manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        manifest.pop("created")
        return dict(manifest)

    assert content(again) == content(made.full)


# -- the same output as the online run, without a request ------------------------------------


RESOLVE_CASES = [
    *([tag] for tag in STABLE),
    *([tag, "--json"] for tag in STABLE),
    ["v0.59.9"],  # unknown: the nearest releases
    ["0.59.0"],  # junk: did you mean v0.59.0?
    ["v0.58.0-alpha.1"],  # a pre-release: refused without --allow-prerelease
]


@pytest.mark.parametrize("args", RESOLVE_CASES, ids=" ".join)
def test_resolve_with_a_bundle_is_the_online_answer(made: Made, args: list[str]) -> None:
    online = invoke(["resolve", *args], api_url=made.gh.api_url, cache=made.cache)
    before = made.gh.counts.total
    offline = invoke(
        ["resolve", *args, "--bundle", str(made.full)], api_url=UNREACHABLE, cache=made.cache
    )
    assert offline == online
    lean = invoke(  # it holds fewer listings: the same answer, or "not held" (exit 2)
        ["resolve", *args, "--bundle", str(made.lean)], api_url=UNREACHABLE, cache=made.cache
    )
    assert lean == online or (lean.code == 2 and "does not hold release" in lean.stderr)
    assert made.gh.counts.total == before


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--include-prereleases"],
        ["--json"],
        ["--limit", "3"],
        ["--include-prereleases", "--json"],
    ],
    ids=str,
)
def test_releases_with_a_bundle_are_the_online_list(made: Made, args: list[str]) -> None:
    online = invoke(["releases", *args], api_url=made.gh.api_url, cache=made.cache)
    assert online.code == 0
    for bundle in (made.full, made.lean, made.narrow):
        assert (
            invoke(
                ["releases", *args, "--bundle", str(bundle)], api_url=UNREACHABLE, cache=made.cache
            )
            == online
        )


def test_the_resolver_api_answers_as_online(made: Made, tmp_path: Path) -> None:
    from resolver.bundle import BundleResolver
    from resolver.service import Resolver
    from resolver.settings import GitHubSettings

    settings = GitHubSettings(api_url=made.gh.api_url, cache_dir=tmp_path / "cold")
    with Resolver(settings) as online, BundleResolver.open(made.full, settings) as offline:
        assert offline.origin == "bundle full.bundle" and online.origin is None
        for version in (20250611170000, 20250604130000, 20250521090000, 20250505000000):
            assert offline.place_version(version) == online.place_version(version)
        assert offline.newest_listing() == online.newest_listing()
        wanted = [20250611170000, 20250604130000]
        assert offline.find_source(wanted, budget=10) == online.find_source(wanted, budget=10)
        assert offline.find_file(20250505000000, ["v0.57.1"]) == online.find_file(
            20250505000000, ["v0.57.1"]
        )
        listing = online.listing("v0.59.0")
        assert offline.listing(listing.commit) == online.listing(listing.commit)
        newest = online.newest_listing()
        names = [f.name for f in newest.files if f.version > 20250325120000]  # above the target
        listing = newest
        assert offline.fetch_files(listing, names) == online.fetch_files(listing, names)


# -- refusals: tampered, truncated, not covered -----------------------------------------------


def rewrite(source: Path, target: Path, change: Callable[[dict[str, bytes]], None]) -> Path:
    """A copy of bundle ``source`` whose members ``change`` edited (same layout otherwise)."""
    with tarfile.open(source, "r:gz") as tar:
        members = {n: tar.extractfile(n).read() for n in tar.getnames()}  # type: ignore[union-attr]
    change(members)
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb") as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    target.write_bytes(raw.getvalue())
    return target


def _manifest(members: dict[str, bytes]) -> dict[str, Any]:
    return dict(json.loads(members["manifest.json"]))


def _set_manifest(members: dict[str, bytes], manifest: dict[str, Any]) -> None:
    members["manifest.json"] = json.dumps(manifest).encode()


def _first_blob(members: dict[str, bytes]) -> str:
    return next(n for n in sorted(members) if n.startswith("blobs/"))


def _change_a_byte(members: dict[str, bytes]) -> None:
    name = _first_blob(members)
    data = bytearray(members[name])
    data[len(data) // 2] ^= 0x01
    members[name] = bytes(data)


def _drop_a_blob(members: dict[str, bytes]) -> None:
    del members[_first_blob(members)]


def _add_a_member(members: dict[str, bytes]) -> None:
    members["blobs/extra.sql"] = b"DROP TABLE everything;"


def _retarget_an_entry(members: dict[str, bytes]) -> None:
    manifest = _manifest(members)
    entry = next(e for e in manifest["entries"] if e[1].endswith(".sql"))
    entry[2] = hashlib.sha1(b"blob 1\0x").hexdigest()
    _set_manifest(members, manifest)


def _drop_an_entry(members: dict[str, bytes]) -> None:
    manifest = _manifest(members)
    tree = next(iter(manifest["trees"]))
    manifest["trees"][tree] = manifest["trees"][tree][1:]
    _set_manifest(members, manifest)


def _newer_format(members: dict[str, bytes]) -> None:
    manifest = _manifest(members)
    manifest["format_version"] = 99
    _set_manifest(members, manifest)


def _lie_about_a_size(members: dict[str, bytes]) -> None:
    manifest = _manifest(members)
    meta = next(iter(manifest["blobs"].values()))
    meta["size"] += 1
    _set_manifest(members, manifest)


TAMPERS: dict[str, tuple[Callable[[dict[str, bytes]], None], str]] = {
    "a blob byte changed": (_change_a_byte, "does not match its git blob SHA"),
    "a blob removed": (_drop_a_blob, "lacks blobs/"),
    "a member added": (_add_a_member, "members its manifest does not list: blobs/extra.sql"),
    "a listing entry retargeted": (_retarget_an_entry, "failed verification"),
    "a listing entry dropped": (_drop_an_entry, "failed verification"),
    "a newer format": (_newer_format, "format version 99"),
    "a size changed": (_lie_about_a_size, "bytes, not"),
}


@pytest.mark.parametrize("tamper", list(TAMPERS), ids=list(TAMPERS))
def test_a_tampered_bundle_is_refused_naming_what_failed(
    made: Made, tmp_path: Path, tamper: str
) -> None:
    change, expected = TAMPERS[tamper]
    bad = rewrite(made.full, tmp_path / "bad.bundle", change)
    for args in (["resolve", "v0.59.0"], ["releases"]):
        run = invoke([*args, "--bundle", str(bad)], api_url=UNREACHABLE, cache=made.cache)
        assert run.code == 2, run
        assert "bundle" in run.stderr and "is refused" in run.stderr
        assert expected in run.stderr, run.stderr
        assert run.stdout == ""


@pytest.mark.parametrize("keep", [0.0, 0.1, 0.5, 0.9, 0.999])
def test_a_truncated_bundle_is_refused(made: Made, tmp_path: Path, keep: float) -> None:
    data = made.full.read_bytes()
    cut = tmp_path / "cut.bundle"
    cut.write_bytes(data[: int(len(data) * keep)])
    run = invoke(
        ["resolve", "v0.59.0", "--bundle", str(cut)], api_url=UNREACHABLE, cache=made.cache
    )
    assert run.code == 2, run
    assert "truncated" in run.stderr and str(cut) in run.stderr


def test_a_missing_bundle_is_bad_input(made: Made, tmp_path: Path) -> None:
    run = invoke(
        ["resolve", "v0.59.0", "--bundle", str(tmp_path / "nope.bundle")],
        api_url=UNREACHABLE,
        cache=made.cache,
    )
    assert run.code == 2 and "no such file" in run.stderr


@pytest.mark.parametrize(
    ("tag", "command"),
    [
        ("v0.59.0", "hatchet-schema bundle --to-release v0.57.0 --from-release v0.59.0 --output"),
        ("v0.58.1", "hatchet-schema bundle --to-release v0.57.0 --from-release v0.58.1 --output"),
        ("v0.55.1", "hatchet-schema bundle --to-release v0.55.1 --from-release v0.58.0 --output"),
    ],
)
def test_a_release_the_bundle_does_not_cover_names_the_bundle_command(
    made: Made, tag: str, command: str
) -> None:
    run = invoke(
        ["resolve", tag, "--bundle", str(made.narrow)], api_url=UNREACHABLE, cache=made.cache
    )
    assert run.code == 2, run
    assert f"does not hold release {tag}" in run.stderr
    assert "made for downgrades to v0.57.0" in run.stderr and "at or below v0.58.0" in run.stderr
    assert command in run.stderr


def test_a_prerelease_the_bundle_does_not_hold_needs_allow_prerelease(made: Made) -> None:
    args = ["resolve", "v0.58.0-alpha.1", "--allow-prerelease", "--bundle", str(made.full)]
    run = invoke(args, api_url=UNREACHABLE, cache=made.cache)
    assert run.code == 2
    assert "hatchet-schema bundle --to-release v0.58.0-alpha.1" in run.stderr
    assert "--allow-prerelease" in run.stderr


def test_files_the_bundle_does_not_hold_name_the_bundle_command(made: Made) -> None:
    from resolver.bundle import BundleResolver, NotInBundle
    from resolver.settings import GitHubSettings

    with BundleResolver.open(made.narrow, GitHubSettings(api_url=UNREACHABLE)) as offline:
        newest = offline.newest_listing()
        with pytest.raises(NotInBundle) as caught:  # the newest file: above --from-release
            offline.fetch_files(newest, [newest.files[-1].name])
        assert "newer than v0.58.0" in caught.value.message
        assert "hatchet-schema bundle --to-release v0.57.0 --output FILE" in caught.value.message
        with pytest.raises(NotInBundle) as caught:  # below the target
            offline.fetch_files(newest, [newest.files[0].name])
        assert "at or below v0.57.0" in caught.value.message
        assert "--from-release v0.58.0" in caught.value.message
        with pytest.raises(NotInBundle) as caught:  # a branch: bundles hold releases only
            offline.listing("main")
        assert "release tags and their commits only" in caught.value.message


def test_bundle_refusals(made: Made, tmp_path: Path) -> None:
    api, cache = made.gh.api_url, made.cache
    exists = tmp_path / "exists.bundle"
    exists.write_bytes(b"keep")
    run = invoke(
        ["bundle", "--to-release", "v0.58.0", "--output", str(exists)], api_url=api, cache=cache
    )
    assert run.code == 2 and "exists" in run.stderr and exists.read_bytes() == b"keep"
    out = tmp_path / "x.bundle"
    args = ["bundle", "--to-release", "v0.59.0", "--from-release", "v0.58.0", "--output", str(out)]
    run = invoke(args, api_url=api, cache=cache)
    assert run.code == 2 and "older than --to-release" in run.stderr and not out.exists()
    run = invoke(
        ["bundle", "--to-release", "v0.54.0", "--output", str(out)], api_url=api, cache=cache
    )
    assert run.code == 2 and "no migrations directory" in run.stderr and not out.exists()
    args = ["bundle", "--to-release", "v0.58.0", "--listings", "some", "--output", str(out)]
    run = invoke(args, api_url=api, cache=cache)
    assert run.code == 2 and "--listings" in run.stderr
    args = ["resolve", "v0.59.0", "--bundle", str(made.full), "--git-dir", str(tmp_path)]
    run = invoke(args, api_url=UNREACHABLE, cache=cache)
    assert run.code == 2 and "at most one of --bundle and --git-dir" in run.stderr
    args = ["resolve", "v0.59.0", "--bundle", str(made.full), "--repo", "someone/else"]
    run = invoke(args, api_url=UNREACHABLE, cache=cache)
    assert run.code == 2 and "holds hatchet-dev/hatchet, not someone/else" in run.stderr
    assert list(tmp_path.glob(".x.bundle.*")) == []  # no temporary file left behind


# -- what a bundle costs ------------------------------------------------------------------------


def test_a_bundle_costs_a_handful_of_requests(tmp_path: Path) -> None:
    """Without a token: the tag list, a few listings and one peel (annotated v0.56.0) on the
    core quota, files from the raw host; with one: the tag list, and GraphQL for the rest."""
    with Emulator(token=TOKEN, anonymous_limit=1000) as gh:
        spent: dict[str, Any] = {}
        for name, token, listings in (
            ("anonymous", None, "auto"),
            ("token", TOKEN, "auto"),
            ("anonymous-all", None, "all"),
        ):
            gh.reset_counts()
            out = tmp_path / f"{name}.bundle"
            args = ["bundle", "--to-release", "v0.55.0", "--listings", listings, "--json"]
            args += ["--output", str(out)]
            run = invoke(args, api_url=gh.api_url, cache=tmp_path / name, token=token)
            assert run.code == 0, run
            document = json.loads(run.stdout)
            assert document["requests"]["total"] == gh.counts.total
            spent[name] = (gh.counts.core, gh.counts.graphql, gh.counts.raw)
            if name != "anonymous":
                assert document["releases"] >= len(STABLE)
        assert spent["anonymous"][0] <= 8 and spent["anonymous"][1] == 0
        assert spent["token"][0] == 1 and spent["token"][1] <= 7 and spent["token"][2] == 0
        assert spent["anonymous-all"][0] <= 20
        gh.reset_counts()  # a warm cache: the tag list's revalidation only
        again = tmp_path / "again.bundle"
        args = ["bundle", "--to-release", "v0.55.0", "--listings", "all", "--output", str(again)]
        assert invoke(args, api_url=gh.api_url, cache=tmp_path / "anonymous-all").code == 0
        assert (gh.counts.core, gh.counts.not_modified, gh.counts.raw) == (0, 1, 0)

"""A respx-backed fake of the GitHub endpoints the resolver uses, shaped as GitHub's docs show.

Other ``test_resolver_*`` modules import :class:`FakeGitHub`; the tests at the bottom check the
fake itself answers like GitHub (so a broken fake cannot make the resolver tests pass).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
import respx

from fixtures.github_emulator.gitobjects import git_object_sha
from resolver.gitblob import git_blob_sha

API = "https://api.github.com"
RAW = "https://raw.githubusercontent.com"
REPO = "hatchet-dev/hatchet"
MIG = "cmd/hatchet-migrate/migrate/migrations"


def sha_of(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def basic_error(status: int, message: str) -> httpx.Response:
    return httpx.Response(
        status,
        json={
            "message": message,
            "documentation_url": "https://docs.github.com/rest",
            "status": str(status),
        },
    )


def tree_id(tree: list[dict[str, Any]]) -> str:
    """The real git id of the tree object holding these trees-API entries (as GitHub gives)."""

    def key(e: dict[str, Any]) -> bytes:
        return (e["path"] + ("/" if e["type"] == "tree" else "")).encode()

    body = b"".join(
        f"{e['mode'].lstrip('0')} {e['path']}".encode() + b"\0" + bytes.fromhex(e["sha"])
        for e in sorted(tree, key=key)
    )
    return git_object_sha("tree", body)


@dataclass
class Commit:
    """A commit whose migrations directory holds ``files`` (None: no directory)."""

    sha: str
    files: dict[str, bytes] | None


@dataclass
class FakeGitHub:
    """Tags, commits and files; answers like api.github.com, raw and GraphQL."""

    commits: dict[str, Commit] = field(default_factory=dict)
    tags: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (sha, type)
    tag_objects: dict[str, str] = field(default_factory=dict)  # tag object sha -> commit sha
    branches: dict[str, str] = field(default_factory=dict)
    truncate_trees: bool = False
    raw_overrides: dict[str, httpx.Response] = field(default_factory=dict)  # file name -> answer
    graphql_truncated: bool = False
    tags_version: int = 1
    requests: list[httpx.Request] = field(default_factory=list)

    def add_release(
        self, tag: str, files: dict[str, bytes] | None, *, annotated: bool = False
    ) -> str:
        commit = sha_of(f"commit {tag}")
        self.commits[commit] = Commit(commit, files)
        if annotated:
            obj = sha_of(f"tagobj {tag}")
            self.tag_objects[obj] = commit
            self.tags[tag] = (obj, "tag")
        else:
            self.tags[tag] = (commit, "commit")
        self.tags_version += 1
        return commit

    # -- answers ----------------------------------------------------------------------------

    def _json(self, body: Any, etag: str | None = None) -> httpx.Response:
        headers = {
            "x-ratelimit-limit": "60",
            "x-ratelimit-remaining": "59",
            "x-ratelimit-reset": "4102444800",
            "x-ratelimit-used": "1",
            "x-ratelimit-resource": "core",
        }
        if etag:
            headers["etag"] = etag
        return httpx.Response(200, json=body, headers=headers)

    def matching_refs(self, request: httpx.Request) -> httpx.Response:
        etag = f'W/"tags-{self.tags_version}"'
        if request.headers.get("if-none-match") == etag:
            return httpx.Response(304, headers={"etag": etag})
        body = [
            {
                "ref": f"refs/tags/{name}",
                "node_id": "x",
                "url": f"{API}/repos/{REPO}/git/refs/tags/{name}",
                "object": {"sha": sha, "type": kind, "url": f"{API}/x"},
            }
            for name, (sha, kind) in sorted(self.tags.items())
        ]
        return self._json(body, etag)

    def tree(self, request: httpx.Request, expression: str) -> httpx.Response:
        ref, _, path = unquote(expression).partition(":")
        commit = self.commits.get(self._commit(ref) or "")
        if commit is None or commit.files is None or path != MIG:
            return basic_error(404, "Not Found")
        tree = [
            {
                "path": name,
                "mode": "100644",
                "type": "blob",
                "sha": git_blob_sha(data),
                "size": len(data),
                "url": f"{API}/repos/{REPO}/git/blobs/{git_blob_sha(data)}",
            }
            for name, data in sorted(commit.files.items())
        ]
        tree.append({"path": "sub", "mode": "040000", "type": "tree", "sha": "0" * 40, "url": ""})
        return self._json(
            {"sha": tree_id(tree), "url": "", "tree": tree, "truncated": self.truncate_trees}
        )

    def contents(self, request: httpx.Request, path: str) -> httpx.Response:
        commit = self.commits.get(self._commit(request.url.params.get("ref", "")) or "")
        if commit is None or commit.files is None or unquote(path) != MIG:
            return basic_error(404, "Not Found")
        body = [
            {
                "type": "file",
                "size": len(data),
                "name": name,
                "path": f"{MIG}/{name}",
                "sha": git_blob_sha(data),
                "url": "",
                "git_url": "",
                "html_url": "",
                "download_url": f"{RAW}/{REPO}/{commit.sha}/{MIG}/{name}",
                "_links": {},
            }
            for name, data in sorted(commit.files.items())
        ]
        body.append(
            {"type": "dir", "size": 0, "name": "sub", "path": f"{MIG}/sub", "sha": "0" * 40}
        )
        return self._json(body)

    def blob(self, request: httpx.Request, sha: str) -> httpx.Response:
        for commit in self.commits.values():
            for data in (commit.files or {}).values():
                if git_blob_sha(data) == sha:
                    encoded = base64.encodebytes(data).decode()  # 60-char lines, as GitHub
                    return self._json(
                        {"sha": sha, "node_id": "x", "size": len(data), "url": "",
                         "content": encoded, "encoding": "base64"}
                    )  # fmt: skip
        return basic_error(404, "Not Found")

    def tag_object(self, request: httpx.Request, sha: str) -> httpx.Response:
        if sha not in self.tag_objects:
            return basic_error(404, "Not Found")
        target = self.tag_objects[sha]
        return self._json({"sha": sha, "tag": "t", "object": {"sha": target, "type": "commit"}})

    def commit(self, request: httpx.Request, ref: str) -> httpx.Response:
        sha = self._commit(unquote(ref))
        if sha is None or sha not in self.commits:
            return basic_error(422, f"No commit found for SHA: {ref}")
        etag = f'W/"commit-{sha}"'
        if request.headers.get("if-none-match") == etag:
            return httpx.Response(304, headers={"etag": etag})
        return self._json({"sha": sha, "commit": {}}, etag)

    def raw(self, request: httpx.Request, commit_sha: str, path: str) -> httpx.Response:
        name = path.rsplit("/", 1)[-1]
        if name in self.raw_overrides:
            return self.raw_overrides[name]
        commit = self.commits.get(commit_sha)
        if commit is None or commit.files is None or name not in commit.files:
            return httpx.Response(404, text="404: Not Found")
        return httpx.Response(
            200, content=commit.files[name], headers={"content-type": "text/plain"}
        )

    def graphql(self, request: httpx.Request) -> httpx.Response:
        query = json.loads(request.content)["query"]
        out: dict[str, Any] = {}
        for alias, expr in re.findall(r'(f\d+): object\(expression: "([^"]+)"\)', query):
            ref, _, path = expr.partition(":")
            commit = self.commits.get(ref)
            name = path.rsplit("/", 1)[-1]
            data = (commit.files or {}).get(name) if commit else None
            if data is None:
                out[alias] = None
                continue
            out[alias] = {
                "oid": git_blob_sha(data),
                "byteSize": len(data),
                "isTruncated": self.graphql_truncated,
                "text": None if self.graphql_truncated else data.decode(),
            }
        return httpx.Response(200, json={"data": {"repository": out}})

    def _commit(self, ref: str) -> str | None:
        if ref in self.commits:
            return ref
        if ref in self.tags:
            sha, kind = self.tags[ref]
            return self.tag_objects[sha] if kind == "tag" else sha
        return self.branches.get(ref)

    # -- wiring -----------------------------------------------------------------------------

    def install(self, router: respx.MockRouter) -> None:
        def record(handler: Any) -> Any:
            def side_effect(request: httpx.Request, **kwargs: str) -> httpx.Response:
                self.requests.append(request)
                return handler(request, **kwargs)  # type: ignore[no-any-return]

            return side_effect

        base = re.escape(f"{API}/repos/{REPO}")
        get_routes = [
            (rf"^{base}/git/matching-refs/tags/v$", self.matching_refs),
            (rf"^{base}/git/trees/(?P<expression>[^?]+)$", self.tree),
            (rf"^{base}/contents/(?P<path>[^?]+)\?", self.contents),
            (rf"^{base}/git/blobs/(?P<sha>[0-9a-f]+)$", self.blob),
            (rf"^{base}/git/tags/(?P<sha>[0-9a-f]+)$", self.tag_object),
            (rf"^{base}/commits/(?P<ref>.+)$", self.commit),
            (rf"^{re.escape(RAW)}/{REPO}/(?P<commit_sha>[0-9a-f]{{40}})/(?P<path>.+)$", self.raw),
        ]
        for pattern, handler in get_routes:
            router.get(url__regex=pattern).mock(side_effect=record(handler))
        router.post(f"{API}/graphql").mock(side_effect=record(self.graphql))

    def count(self, fragment: str) -> int:
        return sum(1 for r in self.requests if fragment in str(r.url))


def sql(version: int, name: str = "v1_0_1") -> tuple[str, bytes]:
    return (
        f"{version}_{name}.sql",
        f"-- +goose Up\nCREATE TABLE t{version} (id int);\n-- +goose Down\n"
        f"DROP TABLE t{version};\n".encode(),
    )


def standard_fake() -> FakeGitHub:
    """Releases v0.50.0 (no directory) .. v0.71.0, pre-releases and junk tags."""
    fake = FakeGitHub()
    base = dict([sql(20250301000000, "v1_0_0"), sql(20250401000000)])
    fake.add_release("v0.50.0", None)
    fake.add_release("v0.55.0", dict(base))
    v60 = {**base, **dict([sql(20250417150604, "v1_0_15")])}
    fake.add_release("v0.60.0", v60)
    v70 = {**v60, "20250801000000_v1_0_30.go": b"package migrations\n", "helper_test.go": b"x"}
    fake.add_release("v0.70.0", v70)
    v71 = {**v70, **dict([sql(20250813183355, "v1_0_36")]), "README.md": b"docs"}
    fake.add_release("v0.71.0", v71)
    fake.add_release("v0.72.0-alpha.1", {**v71, **dict([sql(20250901000000, "v1_0_40")])})
    fake.add_release("v0.71.1-migration.2", dict(v71))
    fake.tags["py/v1.0.0"] = (sha_of("py"), "commit")
    fake.tags["v.jun-27-demo.3"] = (sha_of("junk"), "commit")
    return fake


@pytest.fixture
def fake_github() -> Iterator[FakeGitHub]:
    fake = standard_fake()
    with respx.mock(assert_all_called=False) as router:
        fake.install(router)
        yield fake


def test_fake_tree_lists_blob_shas_that_match_git(fake_github: FakeGitHub) -> None:
    commit = fake_github._commit("v0.71.0")
    answer = httpx.get(f"{API}/repos/{REPO}/git/trees/{commit}%3A{MIG.replace('/', '%2F')}")
    entries = {e["path"]: e for e in answer.json()["tree"]}
    data = dict([sql(20250813183355, "v1_0_36")])["20250813183355_v1_0_36.sql"]
    assert entries["20250813183355_v1_0_36.sql"]["sha"] == git_blob_sha(data)


def test_fake_answers_unknown_paths_with_a_basic_error(fake_github: FakeGitHub) -> None:
    answer = httpx.get(f"{API}/repos/{REPO}/git/trees/v0.50.0:{MIG}")
    assert answer.status_code == 404
    assert answer.json()["status"] == "404"

"""The release index (``resolver/release_index.py``, the packaged ``hatchet_releases.json``) and
``release_history``: index rows checked against the live tag list (a moved tag is listed afresh,
a gone one dropped, new ones listed), dates batched through GraphQL with a token, and the
anonymous request budget. GitHub is mocked with respx."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import respx

from resolver.cache import Cache
from resolver.gitblob import git_tree_sha
from resolver.http import GitHubHTTP
from resolver.refs import DATES_KEY, RefDirectory, TagRef
from resolver.release_index import IndexEntry, ReleaseIndex, packaged_index
from resolver.service import HISTORY_REQUESTS, Resolver
from resolver.settings import DEFAULT_MIGRATIONS_PATH, DEFAULT_REPO, GitHubSettings

API = "https://api.github.com"
REPO = DEFAULT_REPO
PATH = DEFAULT_MIGRATIONS_PATH
TOKEN = "ghp_releaseIndexTestToken000000000000000"


def sha(n: int, kind: str = "c") -> str:
    """A made-up object id: ``a...`` for commits, ``b...`` for trees."""
    return f"{'a' if kind == 'c' else 'b'}{n:039x}"


def entry(tag: str, n: int, version: int, files: int, date: str) -> IndexEntry:
    return IndexEntry(tag, sha(n), sha(n, "t"), version, files, date)


# -- the file format ------------------------------------------------------------------------


def test_an_index_reads_back_what_it_wrote_newest_first_by_date() -> None:
    index = ReleaseIndex.of(
        REPO,
        PATH,
        [
            entry("v1.0.5", 1, 20250101000000, 3, "2025-01-02T00:00:00Z"),
            entry("v1.0.4", 2, 20250102000000, 4, "2025-01-03T00:00:00Z"),  # newer by date
            IndexEntry("v0.9.0", sha(3), None, None, 0, "2024-01-01T00:00:00Z", sha(9)),
        ],
    )
    text = index.dumps()
    assert ReleaseIndex.loads(text) == index
    rows = json.loads(text)["releases"]
    assert [r[0] for r in rows] == ["v1.0.4", "v1.0.5", "v0.9.0"]
    assert rows[2] == ["v0.9.0", sha(3), None, None, 0, "2024-01-01T00:00:00Z", sha(9)]


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        (["v1.0.0-rc.1", sha(1), sha(1, "t"), 1, 1, "2025-01-01T00:00:00Z"], "stable"),
        (["v1.0.0", "abc", sha(1, "t"), 1, 1, "2025-01-01T00:00:00Z"], "object id"),
        (["v1.0.0", sha(1), sha(1, "t"), None, 3, "2025-01-01T00:00:00Z"], "disagree"),
        (["v1.0.0", sha(1), None, 5, 3, "2025-01-01T00:00:00Z"], "disagree"),
        (["v1.0.0", sha(1), sha(1, "t"), 5, 3, "2025-01-01T02:00:00+02:00"], "date"),
    ],
)
def test_a_damaged_row_is_refused_naming_the_problem(row: list[object], problem: str) -> None:
    text = json.dumps({"format": 1, "repo": REPO, "path": PATH, "releases": [row]})
    with pytest.raises(ValueError, match=problem):
        ReleaseIndex.loads(text)


def test_the_check_confirms_same_objects_and_sorts_out_moved_gone_and_new() -> None:
    annotated = IndexEntry("v1.0.2", sha(2), sha(2, "t"), 3, 3, "2025-01-03T00:00:00Z", sha(22))
    index = ReleaseIndex.of(
        REPO,
        PATH,
        [
            entry("v1.0.0", 0, 1, 1, "2025-01-01T00:00:00Z"),
            entry("v1.0.1", 1, 2, 2, "2025-01-02T00:00:00Z"),
            annotated,
            entry("v0.9.9", 9, 1, 1, "2024-01-01T00:00:00Z"),
        ],
    )
    tags = [
        TagRef("v1.0.0", sha(0), "commit"),
        TagRef("v1.0.1", sha(7), "commit"),  # moved
        TagRef("v1.0.2", sha(22), "tag"),  # annotated: the tag object is what the list names
        TagRef("v1.0.3", sha(3), "commit"),  # new
        TagRef("v1.0.3-rc.1", sha(4), "commit"),  # pre-releases are not the index's business
    ]
    check = index.check(tags)
    assert sorted(check.confirmed) == ["v1.0.0", "v1.0.2"]
    assert (check.moved, check.gone, check.new) == (("v1.0.1",), ("v0.9.9",), ("v1.0.3",))


def test_the_packaged_index_is_hatchets_and_only_for_its_default_path() -> None:
    index = packaged_index(REPO, PATH)
    assert index is not None
    assert len(index.entries) >= 935
    v71 = index.entries["v0.71.0"]
    assert (v71.version, v71.files) == (20250813183355, 121)
    assert index.entries["v0.91.4"].date > index.entries["v0.91.5"].date  # patch branches
    assert index.entries["v0.54.0"].tree is None and index.entries["v0.54.0"].files == 0
    assert packaged_index("someone/fork", PATH) is None
    assert packaged_index(REPO, "sql/migrations") is None


# -- dates through GraphQL ------------------------------------------------------------------


def graphql_dates(request: httpx.Request) -> httpx.Response:
    query = json.loads(request.content)["query"]
    found = re.findall(r'(d\d+): object\(oid: "([0-9a-f]{40})"\)', query)
    data = {
        alias: {"oid": oid, "committedDate": "2025-03-04T05:06:07Z"}
        for alias, oid in found
        if not oid.endswith("f")  # GitHub leaves some out: those fall back on REST
    }
    return httpx.Response(200, json={"data": {"repository": data}})


@respx.mock
def test_dates_are_batched_a_hundred_per_query_and_cached_in_one_entry(tmp_path: Path) -> None:
    route = respx.post(f"{API}/graphql").mock(side_effect=graphql_dates)
    rest = respx.get(url__regex=rf"{API}/repos/{REPO}/git/commits/[0-9a-f]+").mock(
        side_effect=lambda request: httpx.Response(
            200,
            json={
                "sha": request.url.path.rsplit("/", 1)[1],
                "committer": {"date": "2025-03-04T06:06:07+01:00"},
            },
        )
    )
    http = GitHubHTTP(API, TOKEN)
    cache = Cache(tmp_path, API, REPO)
    commits = [f"{n:040x}" for n in range(1, 251)]
    refs = RefDirectory(http, cache, REPO, offline=False)
    refs.prefetch_dates(commits)
    queries = [json.loads(call.request.content)["query"] for call in route.calls]
    sizes = [len(re.findall(r"object\(oid:", query)) for query in queries]
    assert sizes == [100, 100, 50]
    assert refs.cached_commit_date(commits[0]) == "2025-03-04T05:06:07Z"
    missing = commits[14]  # ends in "f": GraphQL left it out
    assert refs.cached_commit_date(missing) is None
    assert refs.commit_date(missing) == "2025-03-04T05:06:07Z"  # REST, in UTC
    assert rest.call_count == 1
    # A new process: every date from the one cache entry, no request.
    again = RefDirectory(http, cache, REPO, offline=True)
    assert again.commit_date(missing) == again.commit_date(commits[-1]) == "2025-03-04T05:06:07Z"
    assert len(cache.read_json(DATES_KEY)) == 235 + 1
    assert route.call_count == 3 and rest.call_count == 1


# -- release_history against a mocked GitHub ------------------------------------------------


class FakeGitHub:
    """Tags, listings (git trees API) and commit dates for a handful of releases."""

    def __init__(self, tags: dict[str, tuple[str, int]]) -> None:
        self.tags = tags  # name -> (commit, number of migration files)
        self.dates = {commit: f"2025-02-{10 + i:02d}T12:00:00Z" for i, (commit, _) in
                      enumerate(tags.values())}  # fmt: skip
        self.core = 0

    def files(self, commit: str) -> list[dict[str, object]]:
        count = dict(self.tags.values())[commit]
        return [
            {
                "path": f"2025010{i}000000_v1_0_{i}.sql",
                "mode": "100644",
                "type": "blob",
                "sha": f"{i + 1:040x}",
                "size": 10,
            }
            for i in range(1, count + 1)
        ]

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.core += 1
        path = request.url.path
        if path.endswith("/git/matching-refs/tags/v"):
            return httpx.Response(
                200,
                json=[
                    {"ref": f"refs/tags/{n}", "object": {"sha": c, "type": "commit"}}
                    for n, (c, _) in self.tags.items()
                ],
            )
        if "/git/trees/" in path:
            commit = path.split("/git/trees/", 1)[1].split(":", 1)[0]
            files = self.files(commit)
            tree = git_tree_sha((str(f["mode"]), str(f["path"]), str(f["sha"])) for f in files)
            return httpx.Response(200, json={"sha": tree, "tree": files, "truncated": False})
        if "/git/commits/" in path:
            commit = path.rsplit("/", 1)[1]
            return httpx.Response(
                200, json={"sha": commit, "committer": {"date": self.dates[commit]}}
            )
        return httpx.Response(404, json={"message": "Not Found"})


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub(
        {
            "v1.0.0": (sha(0), 1),  # confirmed by the index
            "v1.0.1": (sha(11), 2),  # the index has it at another commit: moved
            "v1.0.2": (sha(2), 3),  # newer than the index
        }
    )
    with respx.mock:
        respx.get(url__startswith=f"{API}/repos/").mock(side_effect=fake.handle)
        respx.post(f"{API}/graphql").respond(503)  # GraphQL down: REST takes over
        yield fake


INDEX = ReleaseIndex.of(
    REPO,
    PATH,
    [
        IndexEntry("v1.0.0", sha(0), sha(0, "t"), 20250101000000, 1, "2025-01-01T00:00:00Z"),
        IndexEntry("v1.0.1", sha(1), sha(1, "t"), 20250102000000, 2, "2025-01-02T00:00:00Z"),
        IndexEntry("v0.9.0", sha(9), None, None, 0, "2024-12-01T00:00:00Z"),  # gone
    ],
)


def history_of(tmp_path: Path, token: str | None) -> tuple[list[dict[str, object]], int]:
    settings = GitHubSettings(token=token, cache_dir=tmp_path)
    with Resolver(settings, sleep=lambda _s: None) as resolver:
        history = resolver.release_history(INDEX)
        spent = resolver.stats.core
    assert history.moved == ("v1.0.1",) and history.gone == ("v0.9.0",)
    return [r.to_json() for r in history.records], spent


def test_moved_tags_are_listed_afresh_new_ones_listed_gone_ones_dropped(
    github: FakeGitHub, tmp_path: Path
) -> None:
    records, spent = history_of(tmp_path, TOKEN)
    by_tag = {r["release"]: r for r in records}
    assert list(by_tag) == ["v1.0.2", "v1.0.1", "v1.0.0"]  # by date, newest first
    assert by_tag["v1.0.0"] == {
        "release": "v1.0.0",
        "version": 20250101000000,
        "date": "2025-01-01T00:00:00Z",
        "commit": sha(0),
        "files": 1,
        "source": "index",
    }
    moved = by_tag["v1.0.1"]
    assert (moved["commit"], moved["version"], moved["files"]) == (sha(11), 20250102000000, 2)
    assert (moved["source"], moved["date"]) == ("listed", github.dates[sha(11)])
    assert (by_tag["v1.0.2"]["version"], by_tag["v1.0.2"]["source"]) == (20250103000000, "listed")
    assert "v0.9.0" not in by_tag
    # tag list + (listing + date) for each of the two releases the index could not answer
    assert spent == github.core == 5


def test_without_a_token_the_history_stays_within_its_request_budget(
    github: FakeGitHub, tmp_path: Path
) -> None:
    records, spent = history_of(tmp_path, None)
    assert spent == github.core == HISTORY_REQUESTS == 3
    by_tag = {r["release"]: r for r in records}
    assert by_tag["v1.0.2"]["source"] == "listed"  # the newest first
    assert by_tag["v1.0.1"] == {
        "release": "v1.0.1",
        "version": None,
        "date": None,
        "commit": sha(11),
        "files": None,
        "source": "unlisted",
    }
    assert next(iter(by_tag)) == "v1.0.1"  # undated first: what is not known yet is newest
    # the next run lists what the cache does not hold yet, again within the budget
    records, spent = history_of(tmp_path, None)
    assert spent == 3 and all(r["source"] != "unlisted" for r in records)

"""The GitHub API emulator answers like GitHub: shapes, object ids, pagination, quotas, faults."""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fixtures.github_emulator import Emulator, generated_history, load_history
from tests.e2e_helpers import REPO_ROOT

REPO = "/repos/hatchet-dev/hatchet"
MIG = "cmd/hatchet-migrate/migrate/migrations"
SHARED = REPO_ROOT / "fixtures" / "migrations"
TOKEN = "ghp_emulatorTestToken0123456789"


@pytest.fixture(scope="module")
def gh() -> Iterator[Emulator]:
    with Emulator(token=TOKEN, anonymous_limit=10_000) as emulator:
        yield emulator


@pytest.fixture
def api(gh: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gh.api_url, trust_env=False) as client:
        yield client


def git_blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def listing(api: httpx.Client, tag: str) -> dict[str, dict[str, object]]:
    response = api.get(f"{REPO}/git/trees/{tag}%3A{MIG.replace('/', '%2F')}")
    assert response.status_code == 200, response.text
    return {str(item["path"]): item for item in response.json()["tree"]}


def test_matching_refs_returns_only_v_tags_with_annotated_ones_typed_tag(
    api: httpx.Client,
) -> None:
    refs = api.get(f"{REPO}/git/matching-refs/tags/v").json()
    names = {r["ref"].removeprefix("refs/tags/") for r in refs}
    assert {"v0.60.0", "v0.54.0", "v0.1.0", "v.jun-27-demo.3", "v0.60.1-rc.1"} <= names
    assert "py/v0.1.0" not in names and "0.19.2" not in names
    annotated = [r for r in refs if r["object"]["type"] == "tag"]
    assert [r["ref"] for r in annotated] == ["refs/tags/v0.56.0"]
    tag = api.get(annotated[0]["object"]["url"]).json()
    assert tag["tag"] == "v0.56.0" and tag["object"]["type"] == "commit"
    sha = api.get(f"{REPO}/commits/v0.56.0", headers={"accept": "application/vnd.github.sha"})
    assert sha.text == tag["object"]["sha"] != annotated[0]["object"]["sha"]


def test_tags_are_paginated_with_link_headers(api: httpx.Client) -> None:
    url: str | None = f"{REPO}/tags?per_page=100"
    names: list[str] = []
    pages = 0
    while url:
        response = api.get(url)
        pages += 1
        names += [t["name"] for t in response.json()]
        url = response.links.get("next", {}).get("url")
    refs = api.get(f"{REPO}/git/matching-refs/tags/").json()
    assert pages >= 3
    assert sorted(names) == sorted(r["ref"].removeprefix("refs/tags/") for r in refs)
    assert names.index("v0.60.0") < names.index("v0.59.0") < names.index("v0.58.1")


def test_tree_listing_by_tag_and_path_with_or_without_encoding(api: httpx.Client) -> None:
    encoded = listing(api, "v0.60.0")
    plain = api.get(f"{REPO}/git/trees/v0.60.0:{MIG}").json()
    assert plain["tree"] == list(encoded.values())
    assert sorted(encoded) == sorted(p.name for p in SHARED.glob("2*_*.*"))
    for name, item in encoded.items():
        data = (SHARED / name).read_bytes()
        assert item["sha"] == git_blob_sha(data) and item["size"] == len(data)
        assert item["mode"] == "100644" and item["type"] == "blob"
    assert plain["truncated"] is False


def test_release_contents_follow_the_history(api: httpx.Client) -> None:
    assert max(listing(api, "v0.57.0")) == "20250430000000_v1_0_7.go"
    assert "20250505000000_v1_0_8a.sql" in listing(api, "v0.57.1")
    assert "20250505000000_v1_0_8a.sql" not in listing(api, "v0.58.0")
    assert len(listing(api, "v0.55.0")) == 3
    edited = "20250318101500_v1_0_1.sql"
    assert listing(api, "v0.58.1")[edited]["sha"] != listing(api, "v0.59.0")[edited]["sha"]
    assert listing(api, "v0.59.0")[edited]["sha"] == git_blob_sha((SHARED / edited).read_bytes())
    alpha = set(listing(api, "v0.58.0-alpha.1"))
    stable = {
        n for t in ("v0.57.1", "v0.58.0", "v0.58.1", "v0.59.0", "v0.60.0") for n in listing(api, t)
    }
    assert alpha - stable == {"20250510000000_v1_0_8b.sql"}


def test_missing_directory_and_unknown_ref_are_both_404(api: httpx.Client) -> None:
    for treeish in (f"v0.54.0:{MIG}", f"v9.9.9:{MIG}"):
        response = api.get(f"{REPO}/git/trees/{treeish}")
        assert response.status_code == 404
        assert response.json() == {
            "message": "Not Found",
            "documentation_url": "https://docs.github.com/rest",
            "status": "404",
        }
    assert api.get(f"{REPO}/git/trees/v0.54.0").status_code == 200


def test_contents_listing_download_urls_and_blobs_agree(gh: Emulator, api: httpx.Client) -> None:
    entries = api.get(f"{REPO}/contents/{MIG}", params={"ref": "v0.56.0"}).json()
    assert len(entries) == 7
    before = gh.counts
    for entry in entries[:2]:
        assert set(entry["_links"]) == {"self", "git", "html"}
        raw = httpx.get(entry["download_url"], trust_env=False)
        assert raw.status_code == 200 and git_blob_sha(raw.content) == entry["sha"]
        blob = api.get(entry["git_url"]).json()
        assert blob["encoding"] == "base64" and blob["size"] == len(raw.content)
        lines = blob["content"].split("\n")
        assert all(len(line) <= 60 for line in lines) and blob["content"].endswith("\n")
        assert base64.b64decode(blob["content"]) == raw.content
    after = gh.counts
    assert (after.raw - before.raw, after.core - before.core) == (2, 2)
    missing = api.get(f"{REPO}/contents/{MIG}", params={"ref": "v0.54.0"})
    assert missing.status_code == 404
    unknown = api.get(f"{REPO}/contents/{MIG}", params={"ref": "v7.7.7"})
    assert unknown.json()["message"] == "No commit found for the ref v7.7.7"


def test_object_ids_are_real_git_ids(api: httpx.Client, tmp_path: Path) -> None:
    git = shutil.which("git")
    if git is None:
        pytest.fail("git is needed to check the emulator's object ids")
    work = tmp_path / "w" / MIG
    work.mkdir(parents=True)
    for name in listing(api, "v0.60.0"):
        (work / name).write_bytes((SHARED / name).read_bytes())

    def run(*args: str) -> str:
        cwd = tmp_path / "w"
        return subprocess.run(
            [git, *args], cwd=cwd, check=True, capture_output=True, text=True
        ).stdout.strip()

    run("init", "-q")
    run("add", "-A")
    root = run("write-tree")
    expected = run("rev-parse", f"{root}:{MIG}")
    tree = api.get(f"{REPO}/git/trees/v0.60.0:{MIG}").json()
    assert tree["sha"] == expected


def test_conditional_requests_get_304_without_spending_quota(
    gh: Emulator, api: httpx.Client
) -> None:
    first = api.get(f"{REPO}/git/matching-refs/tags/v")
    before = gh.counts
    again = api.get(
        f"{REPO}/git/matching-refs/tags/v", headers={"if-none-match": first.headers["etag"]}
    )
    assert again.status_code == 304 and again.content == b""
    assert first.headers["etag"].startswith('W/"')
    assert again.headers["x-ratelimit-remaining"] == first.headers["x-ratelimit-remaining"]
    after = gh.counts
    assert (after.core, after.not_modified) == (before.core, before.not_modified + 1)


def test_anonymous_quota_runs_out_and_a_token_has_its_own() -> None:
    with Emulator(token=TOKEN, anonymous_limit=3) as gh, httpx.Client(trust_env=False) as client:
        url = f"{gh.api_url}{REPO}"
        statuses = [client.get(url).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 403]
        limited = client.get(url)
        assert limited.headers["x-ratelimit-remaining"] == "0"
        assert int(limited.headers["x-ratelimit-reset"]) > 0
        assert limited.json()["message"].startswith("API rate limit exceeded for")
        authed = client.get(url, headers={"authorization": f"Bearer {TOKEN}"})
        assert authed.status_code == 200 and authed.headers["x-ratelimit-limit"] == "5000"
        wrong = client.get(url, headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.json()["message"] == "Bad credentials"
        free = client.get(f"{gh.api_url}/rate_limit").json()
        assert free["resources"]["core"]["remaining"] == 0
        assert gh.counts.free == 1


def test_exhausted_limit_with_reset_and_secondary_limit() -> None:
    with Emulator() as gh, httpx.Client(base_url=gh.api_url, trust_env=False) as client:
        gh.exhaust_rate_limit(reset_in=7200)
        response = client.get(REPO)
        assert response.status_code == 403
        assert int(response.headers["x-ratelimit-reset"]) >= gh.rate_limit().reset - 1
        gh.set_rate_limit(remaining=60)
        gh.secondary_limit("/tags", retry_after=7)
        limited = client.get(f"{REPO}/tags")
        assert limited.status_code == 403 and limited.headers["retry-after"] == "7"
        assert "secondary rate limit" in limited.json()["message"]
        assert client.get(f"{REPO}/tags").status_code == 200


def test_injected_faults_happen_the_given_number_of_times(gh: Emulator, api: httpx.Client) -> None:
    gh.fail("matching-refs", 502, times=2)
    gh.fail("/git/trees/", 503, body="html")
    gh.fail("/commits/", 200, body="malformed")
    statuses = [api.get(f"{REPO}/git/matching-refs/tags/v").status_code for _ in range(3)]
    assert statuses == [502, 502, 200]
    html = api.get(f"{REPO}/git/trees/v0.60.0")
    assert html.status_code == 503 and html.headers["content-type"].startswith("text/html")
    broken = api.get(f"{REPO}/commits/main")
    with pytest.raises(ValueError):
        broken.json()
    assert api.get(f"{REPO}/commits/main").json()["sha"]


def test_graphql_returns_blob_texts_by_expression_and_needs_a_token(gh: Emulator) -> None:
    name = "20250430000000_v1_0_7.go"
    query = (
        'query { repository(owner: "hatchet-dev", name: "hatchet") {'
        f' f0: object(expression: "v0.57.0:{MIG}/{name}")'
        " { ... on Blob { oid byteSize isTruncated text } }"
        f' f1: object(expression: "v0.54.0:{MIG}/{name}") {{ ... on Blob {{ oid }} }} }} }}'
    )
    anonymous = httpx.post(gh.graphql_url, json={"query": query}, trust_env=False)
    assert anonymous.status_code == 401
    before = gh.counts.graphql
    answer = httpx.post(
        gh.graphql_url,
        json={"query": query},
        headers={"authorization": f"bearer {TOKEN}"},
        trust_env=False,
    ).json()
    data = (SHARED / name).read_bytes()
    repo = answer["data"]["repository"]
    assert repo["f0"] == {
        "oid": git_blob_sha(data),
        "byteSize": len(data),
        "isTruncated": False,
        "text": data.decode(),
    }
    assert repo["f1"] is None
    assert gh.counts.graphql == before + 1


def test_graphql_marks_long_texts_truncated() -> None:
    history = generated_history(files=2, file_size=4000)
    with Emulator([history.build()], token=TOKEN, graphql_text_limit=1000) as gh:
        tree = httpx.get(
            f"{gh.api_url}/repos/bench-org/hatchet/git/trees/v1.0.0:{MIG}", trust_env=False
        ).json()
        path = tree["tree"][0]["path"]
        query = (
            "query($o: String!, $n: String!) { repository(owner: $o, name: $n) {"
            f' a: object(expression: "v1.0.0:{MIG}/{path}")'
            " { ... on Blob { isTruncated byteSize } } } }"
        )
        answer = httpx.post(
            gh.graphql_url,
            json={"query": query, "variables": {"o": "bench-org", "n": "hatchet"}},
            headers={"authorization": f"Bearer {TOKEN}"},
            trust_env=False,
        ).json()
        assert answer["data"]["repository"]["a"]["isTruncated"] is True
        assert answer["data"]["repository"]["a"]["byteSize"] > 1000


def test_generated_history_has_the_requested_number_of_files() -> None:
    repo = generated_history(files=112).build()
    entry = repo.resolve_treeish(f"v1.0.0:{MIG}")
    assert entry is not None
    names = [e.name for e in repo.trees[entry.sha].entries]
    assert len(names) == 112 and max(names).endswith(".go")


def test_history_manifest_is_deterministic() -> None:
    first, second = load_history().build(), load_history().build()
    assert first.tags == second.tags and first.branches["main"] == first.tags["v0.60.0"]


def test_runs_as_a_module_and_prints_its_api_url() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "fixtures.github_emulator", "--port", "0", "--latency-ms", "1"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/api/v3")
        response = httpx.get(f"{url}{REPO}/git/matching-refs/tags/v0.60", trust_env=False)
        assert [r["ref"] for r in response.json()] == [
            "refs/tags/v0.60.0",
            "refs/tags/v0.60.0-migration.1",
            "refs/tags/v0.60.1-rc.1",
        ]
    finally:
        process.terminate()
        process.wait(timeout=10)

"""Tags and refs on GitHub: every ``v*`` tag in one request, and refs turned into commits.

The tag list comes from ``git/matching-refs/tags/v`` (one request for all of Hatchet's tags; Link
pagination is followed if a server pages it), cached with each page's ETag and revalidated once per
process: an unchanged list costs a 304, which spends no quota. A server without matching-refs
gets ``/tags?per_page=100`` instead. Annotated tags are peeled to their commit once and cached by
the tag object's SHA, which is immutable.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

from resolver.cache import Cache
from resolver.errors import (
    BadInputError,
    CacheMissError,
    HTTPStatusError,
    NetworkError,
    NotFoundError,
)
from resolver.gitblob import is_sha
from resolver.http import GitHubHTTP, Reply
from resolver.models import utc_timestamp

_NEXT_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')
TAGS_KEY = "refs/tags-v"
DATES_KEY = "refs/commit-dates"
MAX_PAGES = 100
MAX_PEEL = 5


@dataclass(frozen=True)
class TagRef:
    """A tag as git stores it: the object is a commit, or a tag object for annotated tags."""

    name: str
    sha: str
    type: str


def next_link(reply: Reply) -> str | None:
    """The ``rel="next"`` URL of a ``Link`` header, if any."""
    for part in reply.headers.get("link", "").split(","):
        match = _NEXT_LINK.search(part)
        if match:
            return match.group(1)
    return None


def _bad_shape(what: str) -> NetworkError:
    return NetworkError(f"GitHub's answer for {what} did not have the expected shape")


def graphql_objects(
    http: GitHubHTTP, repo: str, fields: Sequence[str]
) -> tuple[dict[str, Any], bool] | None:
    """The ``repository`` object of a GraphQL query made of ``fields`` (aliased ``object``
    lookups), and whether the answer carried no errors; ``None`` when the query failed (GraphQL
    only ever saves requests: callers fall back on REST)."""
    owner, _, name = repo.partition("/")
    query = (
        f"query {{ repository(owner: {json.dumps(owner)}, name: {json.dumps(name)}) {{\n"
        + "\n".join(fields)
        + "\n} }"
    )
    try:
        document = http.graphql(query)
    except NetworkError:
        return None
    data = document.get("data") if isinstance(document, dict) else None
    repository = data.get("repository") if isinstance(data, dict) else None
    if not isinstance(repository, dict):
        return None
    return repository, not document.get("errors")


T = TypeVar("T")
Lookup = tuple[T, Any, bool]
"""An item, what its aliased ``object`` lookup answered (None: nothing), and whether the answer
named the alias at all."""


def graphql_batches(
    http: GitHubHTTP,
    repo: str,
    items: Sequence[T],
    lookup: Callable[[T], str],
    *,
    batch: int,
    alias: str = "o",
) -> Iterator[tuple[list[Lookup[T]], bool] | None]:
    """``object`` lookups for ``items`` (``lookup`` gives each one's ``object(...) {...}``,
    named ``alias`` + index), ``batch`` per GraphQL query: per query, each item with its
    answer, and whether the answer carried no errors; ``None`` for a query that failed (the
    caller decides whether to go on: stopping the iteration sends no further query)."""
    for start in range(0, len(items), batch):
        chunk = items[start : start + batch]
        named = [(f"{alias}{i}", item) for i, item in enumerate(chunk)]
        answer = graphql_objects(http, repo, [f"{name}: {lookup(item)}" for name, item in named])
        if answer is None:
            yield None
            continue
        objects, clean = answer
        yield [(item, objects.get(name), name in objects) for name, item in named], clean


def offline_miss(what: str) -> CacheMissError:
    return CacheMissError(
        f"--offline: the cache holds no {what}; run the same command once without --offline",
        category="bad_input",
    )


class RefDirectory:
    """Looks up tags and refs of one repository, through the cache."""

    def __init__(self, http: GitHubHTTP, cache: Cache, repo: str, *, offline: bool) -> None:
        self._http = http
        self._cache = cache
        self._repo = repo
        self._offline = offline
        self._tags: list[TagRef] | None = None
        self._dates: dict[str, str] | None = None

    # -- the tag list -------------------------------------------------------------------------

    def tags(self) -> list[TagRef]:
        """Every tag whose name starts with ``v`` (validated against GitHub once per process)."""
        if self._tags is None:
            self._tags = self._load_tags()
        return self._tags

    def _load_tags(self) -> list[TagRef]:
        cached = self._cache.read_json(TAGS_KEY)
        pages = cached.get("pages") if isinstance(cached, dict) else None
        old_pages: dict[str, dict[str, Any]] = {}
        if isinstance(pages, list):
            old_pages = {p["url"]: p for p in pages if isinstance(p, dict) and "url" in p}
        if self._offline:
            if not isinstance(pages, list):
                raise offline_miss(f"tag list of {self._repo}")
            return self._refs_of(pages)
        first = f"/repos/{self._repo}/git/matching-refs/tags/v"
        try:
            fresh = self._walk(first, old_pages, self._parse_matching_refs)
        except NotFoundError:
            # No matching-refs here (an old GitHub Enterprise?) or no such repository.
            try:
                fresh = self._walk(
                    f"/repos/{self._repo}/tags?per_page=100", old_pages, self._parse_tags
                )
            except NotFoundError:
                raise BadInputError(
                    f"repository {self._repo} was not found on {self._http.endpoints.api} "
                    "(a private repository needs GH_TOKEN)"
                ) from None
        self._cache.write_json(TAGS_KEY, {"pages": fresh})
        return self._refs_of(fresh)

    def _walk(
        self,
        first: str,
        old_pages: dict[str, dict[str, Any]],
        parse: Any,
    ) -> list[dict[str, Any]]:
        url: str | None = first
        out: list[dict[str, Any]] = []
        while url is not None and len(out) < MAX_PAGES:
            old = old_pages.get(url)
            etag = old.get("etag") if old else None
            reply = self._http.api_get(url, etag=etag if isinstance(etag, str) else None)
            if reply.status == 304 and old is not None:
                page = old
            else:
                page = {
                    "url": url,
                    "etag": reply.etag,
                    "next": next_link(reply),
                    "refs": parse(reply.json()),
                }
            out.append(page)
            nxt = page.get("next")
            url = nxt if isinstance(nxt, str) else None
        return out

    @staticmethod
    def _refs_of(pages: list[Any]) -> list[TagRef]:
        refs: list[TagRef] = []
        for page in pages:
            for item in page.get("refs", []) if isinstance(page, dict) else []:
                if (
                    isinstance(item, list)
                    and len(item) == 3
                    and all(isinstance(x, str) for x in item)
                ):
                    refs.append(TagRef(item[0], item[1], item[2]))
        return refs

    @staticmethod
    def _parse_matching_refs(body: Any) -> list[list[str]]:
        if not isinstance(body, list):
            raise _bad_shape("the tag list")
        refs: list[list[str]] = []
        for entry in body:
            try:
                name = entry["ref"]
                sha = entry["object"]["sha"]
                kind = entry["object"]["type"]
            except (TypeError, KeyError):
                raise _bad_shape("the tag list") from None
            if isinstance(name, str) and name.startswith("refs/tags/") and isinstance(sha, str):
                refs.append([name.removeprefix("refs/tags/"), sha, str(kind)])
        return refs

    @staticmethod
    def _parse_tags(body: Any) -> list[list[str]]:
        if not isinstance(body, list):
            raise _bad_shape("the tag list")
        refs: list[list[str]] = []
        for entry in body:
            try:
                name = entry["name"]
                sha = entry["commit"]["sha"]
            except (TypeError, KeyError):
                raise _bad_shape("the tag list") from None
            if isinstance(name, str) and name.startswith("v") and isinstance(sha, str):
                refs.append([name, sha, "commit"])
        return refs

    # -- commits ------------------------------------------------------------------------------

    def peel(self, tag: TagRef) -> str:
        """The commit a tag points at (annotated tags are dereferenced, cached by object SHA)."""
        sha, kind = tag.sha, tag.type
        for _ in range(MAX_PEEL):
            if kind != "tag":
                return sha
            key = f"tagobj/{sha}"
            cached = self._cache.read_json(key)
            if isinstance(cached, list) and len(cached) == 2:
                sha, kind = str(cached[0]), str(cached[1])
                continue
            if self._offline:
                raise offline_miss(f"commit of tag {tag.name}")
            body = self._http.api_get(f"/repos/{self._repo}/git/tags/{sha}").json()
            try:
                target, target_kind = body["object"]["sha"], body["object"]["type"]
            except (TypeError, KeyError):
                raise _bad_shape(f"tag {tag.name}") from None
            self._cache.write_json(key, [target, target_kind])
            sha, kind = str(target), str(target_kind)
        if kind != "commit":
            raise BadInputError(f"tag {tag.name} does not point at a commit")
        return sha

    def prefetch_peels(self, tags: Sequence[TagRef], *, batch: int = 100) -> None:
        """Cache the targets of annotated tags through GraphQL, ``batch`` per request (one
        ``git/tags`` REST request each otherwise); tags already known cost nothing."""
        todo = [t for t in tags if t.type == "tag" and self.cached_peel(t) is None]
        todo = list({t.sha: t for t in todo}.values())
        if self._offline:
            return

        def peel(tag: TagRef) -> str:
            return (
                f"object(oid: {json.dumps(tag.sha)}) "
                "{ ... on Tag { target { __typename oid } } }"
            )

        for answer in graphql_batches(self._http, self._repo, todo, peel, batch=batch, alias="t"):
            if answer is None:
                return
            for tag, item, _named in answer[0]:
                target = item.get("target") if isinstance(item, dict) else None
                oid = target.get("oid") if isinstance(target, dict) else None
                kind = target.get("__typename") if isinstance(target, dict) else None
                if isinstance(oid, str) and is_sha(oid) and kind in ("Commit", "Tag"):
                    self._cache.write_json(f"tagobj/{tag.sha}", [oid, str(kind).lower()])

    def cached_peel(self, tag: TagRef) -> str | None:
        """The commit a tag points at if it is known without a request, else ``None``."""
        sha, kind = tag.sha, tag.type
        for _ in range(MAX_PEEL):
            if kind == "commit":
                return sha
            if kind != "tag":
                return None
            cached = self._cache.read_json(f"tagobj/{sha}")
            if not (isinstance(cached, list) and len(cached) == 2):
                return None
            sha, kind = str(cached[0]), str(cached[1])
        return None

    # -- commit dates (immutable: never revalidated) -----------------------------------------

    def _date_table(self) -> dict[str, str]:
        """Every commit date known, by commit: one cache entry (``DATES_KEY``) for them all,
        read once, so that 900 dates cost one file, not 900."""
        if self._dates is None:
            cached = self._cache.read_json(DATES_KEY)
            table = cached if isinstance(cached, dict) else {}
            self._dates = {
                c: d
                for c, d in table.items()
                if isinstance(c, str) and is_sha(c) and isinstance(d, str) and _is_utc_stamp(d)
            }
        return self._dates

    def _remember_dates(self, dates: dict[str, str]) -> None:
        if dates:
            table = self._date_table()
            table.update(dates)
            self._cache.write_json(DATES_KEY, table)

    def cached_commit_date(self, commit: str) -> str | None:
        """The commit's committer date (ISO 8601 UTC) if it is known without a request."""
        return self._date_table().get(commit)

    def commit_date(self, commit: str) -> str:
        """The commit's committer date, ISO 8601 UTC (``git/commits/{sha}``: one request)."""
        known = self.cached_commit_date(commit)
        if known is not None:
            return known
        if self._offline:
            raise offline_miss(f"date of commit {commit}")
        body = self._http.api_get(f"/repos/{self._repo}/git/commits/{commit}").json()
        committer = body.get("committer") if isinstance(body, dict) else None
        date = _utc_stamp(committer.get("date") if isinstance(committer, dict) else None)
        if date is None or not isinstance(body, dict) or body.get("sha") != commit:
            raise _bad_shape(f"commit {commit}")
        self._remember_dates({commit: date})
        return date

    def prefetch_dates(self, commits: Sequence[str], *, batch: int = 100) -> None:
        """Cache the dates of ``commits`` through GraphQL, ``batch`` per request (one REST
        request each otherwise); dates already known cost nothing, a failed query nothing
        either (those dates are read through REST when asked for)."""
        todo = [c for c in dict.fromkeys(commits) if is_sha(c) and not self.cached_commit_date(c)]
        if self._offline:
            return

        def dated(commit: str) -> str:
            return f"object(oid: {json.dumps(commit)}) {{ ... on Commit {{ oid committedDate }} }}"

        for answer in graphql_batches(self._http, self._repo, todo, dated, batch=batch, alias="d"):
            if answer is None:
                return
            found: dict[str, str] = {}
            for commit, item, _named in answer[0]:
                if not isinstance(item, dict) or item.get("oid") != commit:
                    continue
                date = _utc_stamp(item.get("committedDate"))
                if date is not None:
                    found[commit] = date
            self._remember_dates(found)

    def commit_of(self, ref: str) -> str:
        """The commit SHA of a branch, tag or (abbreviated) commit, via ``commits/{ref}``.

        Revalidated with its ETag (a branch moves); an unknown ref is :class:`BadInputError`.
        """
        key = "refs/commit-" + hashlib.sha256(ref.encode()).hexdigest()[:32]
        cached = self._cache.read_json(key)
        known = cached if isinstance(cached, dict) and is_sha(str(cached.get("sha"))) else None
        if self._offline:
            if known is None:
                raise offline_miss(f"commit of ref {ref}")
            return str(known["sha"])
        etag = known.get("etag") if known else None
        try:
            reply = self._http.api_get(
                f"/repos/{self._repo}/commits/{quote(ref, safe='/')}",
                etag=etag if isinstance(etag, str) else None,
            )
        except HTTPStatusError as exc:
            if exc.status in (404, 422):
                raise BadInputError(f"no ref {ref} in {self._repo}") from None
            raise
        if reply.status == 304 and known is not None:
            return str(known["sha"])
        body = reply.json()
        sha = body.get("sha") if isinstance(body, dict) else None
        if not isinstance(sha, str) or not is_sha(sha):
            raise _bad_shape(f"commit {ref}")
        self._cache.write_json(key, {"sha": sha, "etag": reply.etag})
        return sha


def _utc_stamp(value: Any) -> str | None:
    """``value`` as :func:`resolver.models.utc_timestamp` spells it, ``None`` if not a date."""
    if not isinstance(value, str):
        return None
    try:
        return utc_timestamp(value)
    except ValueError:
        return None


def _is_utc_stamp(value: str) -> bool:
    return _utc_stamp(value) == value

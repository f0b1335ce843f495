"""The migrations directory at one commit: names, blob SHAs and sizes in one request.

Asks the git trees API for ``{commit}:{path}`` (one request, no recursion). A truncated tree, or
a server whose trees API refuses the expression, falls back to the contents API. A 404 means the
directory does not exist at that commit (Hatchet before v0.55.0) once the commit itself is known
to exist. Listings are cached by commit SHA and path: a commit never changes, so they are never
revalidated, and a missing directory is remembered as well.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from resolver.cache import Cache
from resolver.errors import BadInputError, HTTPStatusError, NetworkError, NotFoundError
from resolver.gitblob import is_sha
from resolver.http import GitHubHTTP
from resolver.models import RemoteFile, migration_name
from resolver.refs import offline_miss

Entry = tuple[str, str, int]
"""(name, blob sha, size) of a regular file in the directory."""


class DirectoryMissing(Exception):
    """The migrations directory does not exist at the commit (internal signal)."""


def _bad_shape(what: str) -> NetworkError:
    return NetworkError(f"GitHub's answer for {what} did not have the expected shape")


def _tree_entries(body: Any, what: str) -> tuple[list[Entry], bool]:
    if not isinstance(body, dict) or not isinstance(body.get("tree"), list):
        raise _bad_shape(what)
    entries: list[Entry] = []
    for item in body["tree"]:
        if not isinstance(item, dict):
            raise _bad_shape(what)
        if item.get("type") != "blob" or item.get("mode") == "120000":
            continue
        name, sha, size = item.get("path"), item.get("sha"), item.get("size", 0)
        if not isinstance(name, str) or not isinstance(sha, str) or not isinstance(size, int):
            raise _bad_shape(what)
        entries.append((name, sha, size))
    return entries, body.get("truncated") is True


def _contents_entries(body: Any, what: str) -> list[Entry]:
    if not isinstance(body, list):
        raise _bad_shape(what)
    entries: list[Entry] = []
    for item in body:
        if not isinstance(item, dict):
            raise _bad_shape(what)
        if item.get("type") != "file":
            continue
        name, sha, size = item.get("name"), item.get("sha"), item.get("size", 0)
        if not isinstance(name, str) or not isinstance(sha, str) or not isinstance(size, int):
            raise _bad_shape(what)
        entries.append((name, sha, size))
    return entries


def to_files(entries: list[Entry]) -> tuple[RemoteFile, ...]:
    """The entries goose would load as migrations, in version order."""
    files: list[RemoteFile] = []
    for name, sha, size in entries:
        if "/" in name:
            continue
        parsed = migration_name(name)
        if parsed is not None and is_sha(sha):
            files.append(RemoteFile(name, parsed[0], parsed[1], sha, size))
    return tuple(sorted(files, key=lambda f: (f.version, f.name)))


class DirectoryLister:
    """Lists the migrations directory of one repository at a commit, through the cache."""

    def __init__(
        self,
        http: GitHubHTTP,
        cache: Cache,
        repo: str,
        path: str,
        *,
        offline: bool,
        commit_exists: Callable[[str], bool],
    ) -> None:
        self._http = http
        self._cache = cache
        self._repo = repo
        self._path = path.strip("/")
        self._offline = offline
        self._commit_exists = commit_exists

    def files_at(self, commit: str, *, commit_known: bool) -> tuple[RemoteFile, ...]:
        """Migration files at ``commit``; :class:`DirectoryMissing` if the directory is absent.

        ``commit_known`` says the commit came from GitHub (a tag's target); otherwise a 404 is
        checked against the commit itself so an unknown SHA is told apart from a missing
        directory.
        """
        key = self._key(commit)
        files = self.cached_files_at(commit)
        if files is not None:
            return files
        if self._offline:
            raise offline_miss(f"listing of {self._path} at {commit}")
        try:
            entries = self._fetch(commit)
        except DirectoryMissing:
            if not commit_known and not self._commit_exists(commit):
                raise BadInputError(f"no commit {commit} in {self._repo}") from None
            self._cache.write_json(key, {"missing": True})
            raise
        self._cache.write_json(key, {"missing": False, "entries": [list(e) for e in entries]})
        return to_files(entries)

    def cached_files_at(self, commit: str) -> tuple[RemoteFile, ...] | None:
        """The cached listing at ``commit`` without any request: ``None`` on a cache miss,
        :class:`DirectoryMissing` when the cache remembers that the directory is absent."""
        cached = self._cache.read_json(self._key(commit))
        if isinstance(cached, dict):
            if cached.get("missing") is True:
                raise DirectoryMissing(commit)
            entries = self._cached_entries(cached)
            if entries is not None:
                return to_files(entries)
        return None

    def _key(self, commit: str) -> str:
        return f"listing/{commit}-" + hashlib.sha256(self._path.encode()).hexdigest()[:16]

    @staticmethod
    def _cached_entries(cached: dict[str, Any]) -> list[Entry] | None:
        raw = cached.get("entries")
        if not isinstance(raw, list):
            return None
        entries: list[Entry] = []
        for item in raw:
            if not (
                isinstance(item, list)
                and len(item) == 3
                and isinstance(item[0], str)
                and isinstance(item[1], str)
                and isinstance(item[2], int)
            ):
                return None
            entries.append((item[0], item[1], item[2]))
        return entries

    def _fetch(self, commit: str) -> list[Entry]:
        what = f"{self._path} at {commit}"
        expression = quote(f"{commit}:{self._path}", safe="/:")
        try:
            body = self._http.api_get(f"/repos/{self._repo}/git/trees/{expression}").json()
        except NotFoundError:
            raise DirectoryMissing(commit) from None
        except HTTPStatusError as exc:
            if exc.status != 422:
                raise
            body = None  # this server does not take "ref:path" expressions
        if body is not None:
            entries, truncated = _tree_entries(body, what)
            if not truncated:
                return entries
        return self._fetch_contents(commit, what)

    def _fetch_contents(self, commit: str, what: str) -> list[Entry]:
        path = quote(self._path, safe="/")
        try:
            reply = self._http.api_get(f"/repos/{self._repo}/contents/{path}?ref={commit}")
        except NotFoundError:
            raise DirectoryMissing(commit) from None
        return _contents_entries(reply.json(), what)

"""File contents at a commit: cache first, then GraphQL (with a token), raw downloads, blobs API.

Every file's bytes are checked against the git blob SHA of the listing before they are used or
cached. Order of sources:
1. the cache, by blob SHA (immutable; a corrupt entry is dropped and refetched);
2. with a token, GraphQL: up to ``GRAPHQL_BATCH`` files per request (a truncated or mismatching
   text is simply fetched again below, it is never used);
3. the raw download URL, concurrently on a bounded pool (spends no core API quota);
4. the git blobs API (base64), for files the raw host does not serve.
A raw or blob body whose SHA does not match is an error, never used.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any
from urllib.parse import quote

from resolver.cache import Cache
from resolver.errors import NetworkError, ResolverError
from resolver.gitblob import git_blob_sha
from resolver.http import GitHubHTTP
from resolver.models import RemoteFile
from resolver.refs import graphql_objects, offline_miss

GRAPHQL_BATCH = 100
DEFAULT_WORKERS = 32


def _mismatch(name: str, commit: str, source: str) -> ResolverError:
    return ResolverError(
        f"{name} at {commit[:12]} from {source} does not match its git blob SHA; refusing to use it"
    )


class ContentFetcher:
    """Fetches the bytes of migration files of one repository and directory."""

    def __init__(
        self,
        http: GitHubHTTP,
        cache: Cache,
        repo: str,
        path: str,
        *,
        offline: bool,
        max_workers: int = DEFAULT_WORKERS,
    ) -> None:
        self._http = http
        self._cache = cache
        self._repo = repo
        self._path = path.strip("/")
        self._offline = offline
        self._workers = max(1, max_workers)

    def fetch(self, commit: str, files: Sequence[RemoteFile]) -> dict[str, bytes]:
        """``{name: bytes}`` for ``files`` as they are at ``commit``."""
        found: dict[str, bytes] = {}
        missing: list[RemoteFile] = []
        for item in files:
            data = self._cache.read_blob(item.sha)
            if data is None:
                missing.append(item)
            else:
                found[item.name] = data
        if missing and self._offline:
            names = ", ".join(f.name for f in missing[:3]) + (", ..." if len(missing) > 3 else "")
            raise offline_miss(f"content for {len(missing)} file(s) ({names})")
        if missing and self._http.has_token:
            fetched = self._graphql(commit, missing)
            found.update(fetched)
            missing = [f for f in missing if f.name not in fetched]
        if missing:
            found.update(self._rest(commit, missing))
        return found

    # -- GraphQL ------------------------------------------------------------------------------

    def _graphql(self, commit: str, files: Sequence[RemoteFile]) -> dict[str, bytes]:
        batches = [files[i : i + GRAPHQL_BATCH] for i in range(0, len(files), GRAPHQL_BATCH)]
        found: dict[str, bytes] = {}
        results = self._pool(lambda batch: self._graphql_batch(commit, batch), batches)
        for part in results:
            found.update(part)
        return found

    def _graphql_batch(self, commit: str, files: Sequence[RemoteFile]) -> dict[str, bytes]:
        fields = [
            f"f{i}: object(expression: {json.dumps(f'{commit}:{self._file_path(f.name)}')}) "
            "{ ... on Blob { oid byteSize isTruncated text } }"
            for i, f in enumerate(files)
        ]
        answer = graphql_objects(self._http, self._repo, fields)
        found: dict[str, bytes] = {}
        if answer is None:
            return found  # GraphQL is an optimisation: REST fetches whatever it did not deliver
        repository = answer[0]
        for i, item in enumerate(files):
            blob = repository.get(f"f{i}")
            if not isinstance(blob, dict) or blob.get("isTruncated") is not False:
                continue
            text = blob.get("text")
            if not isinstance(text, str):
                continue
            data = text.encode("utf-8")
            if blob.get("oid") == item.sha and git_blob_sha(data) == item.sha:
                self._cache.write_blob(item.sha, data)
                found[item.name] = data
        return found

    # -- REST ---------------------------------------------------------------------------------

    def _rest(self, commit: str, files: Sequence[RemoteFile]) -> dict[str, bytes]:
        results = self._pool(lambda item: (item.name, self._one(commit, item)), files)
        return dict(results)

    def _one(self, commit: str, item: RemoteFile) -> bytes:
        url = f"{self._http.endpoints.raw}/{quote(self._repo)}/{commit}/{self._quoted(item.name)}"
        try:
            data = self._http.raw_get(url)
        except NetworkError:
            data = None  # the blobs API below is the fallback for any raw-host failure
        if data is not None:
            if git_blob_sha(data) != item.sha:
                raise _mismatch(item.name, commit, "the raw download")
        else:
            data = self._blob(item)
            if git_blob_sha(data) != item.sha:
                raise _mismatch(item.name, commit, "the git blobs API")
        self._cache.write_blob(item.sha, data)
        return data

    def _blob(self, item: RemoteFile) -> bytes:
        body = self._http.api_get(f"/repos/{self._repo}/git/blobs/{item.sha}").json()
        content = body.get("content") if isinstance(body, dict) else None
        encoding = body.get("encoding") if isinstance(body, dict) else None
        if not isinstance(content, str):
            raise NetworkError(f"GitHub's blob for {item.name} did not have the expected shape")
        if encoding == "base64":
            try:
                return base64.b64decode("".join(content.split()), validate=True)
            except (binascii.Error, ValueError):
                raise NetworkError(f"GitHub's blob for {item.name} is not valid base64") from None
        if encoding in ("utf-8", "utf8"):
            return content.encode("utf-8")
        raise NetworkError(f"GitHub's blob for {item.name} has an unknown encoding {encoding!r}")

    # -- helpers ------------------------------------------------------------------------------

    def _file_path(self, name: str) -> str:
        return f"{self._path}/{name}" if self._path else name

    def _quoted(self, name: str) -> str:
        return quote(self._file_path(name), safe="/")

    def _pool(self, work: Any, items: Sequence[Any]) -> list[Any]:
        """Run ``work`` over ``items`` on a bounded pool; the first exception wins."""
        if len(items) <= 1:
            return [work(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(self._workers, len(items))) as pool:
            futures = [pool.submit(work, item) for item in items]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            for future in done:
                error = future.exception()
                if error is not None:
                    for pending in futures:
                        pending.cancel()
                    raise error
            return [future.result() for future in futures]

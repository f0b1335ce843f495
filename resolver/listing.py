"""The migrations directory at one commit: every entry with its mode and SHA, verified.

Asks the git trees API for ``{commit}:{path}`` (one request, no recursion). A truncated tree, or
a server whose trees API refuses the expression, falls back to the contents API. A 404 means the
directory does not exist at that commit (Hatchet before v0.55.0) once the commit itself is known
to exist. Listings are cached by commit SHA and path: a commit never changes, so they are never
revalidated, and a missing directory is remembered as well.

Every listing is checked against the directory's git tree id, whether it was just fetched or
read back from the cache: the tree object of the id GitHub gave for ``{commit}:{path}`` is
rebuilt from the listing's entries (mode, name and SHA of EVERY entry of the directory, not only
the migration files: subdirectories are entries of mode 40000, symlinks 120000, submodules
160000) and hashed. Where the id comes from, per path:

* trees API: the answer's own ``sha`` is the tree's id, in the same request.
* contents API after a truncated tree: the ``sha`` of that truncated trees answer (the same
  ``{commit}:{path}``); modes come from the truncated tree's entries where it lists them.
* contents API after a 422: it is asked for the ``application/vnd.github.object+json`` shape,
  whose top-level ``sha`` is the directory's tree id (same request); a server that answers with
  the plain array instead costs one more request, the parent directory's listing (contents API;
  the commit's ``tree`` for a directory at the root), whose entry for the directory carries its
  id. The contents API gives no modes: files are taken as 100644, and if the tree does not match
  that guess (an executable file, a submodule listed as a file) the tree is read once by its id
  through the trees API, which gives the modes.

A fetched listing that fails the check is refused (exit 1, nothing cached). A cached one that
fails is removed from the cache and fetched again; with ``--offline`` it is an error (exit 2)
naming the cache file. Not covered by the tree id: blob sizes (the bytes themselves are verified
by SHA when they are fetched) and a cached "no directory at this commit" entry.

:meth:`DirectoryLister.prefetch` reads many listings through GraphQL (with a token): one query
gives the directory's tree id at up to ``PREFETCH_BATCH`` commits, one more the entries of up to
``TREES_BATCH`` distinct trees (releases without a migration between them share one tree). Each
listing is verified against its tree id exactly as above before it is cached; anything GraphQL
does not deliver is read through REST as usual when it is asked for.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from resolver.cache import Cache
from resolver.errors import (
    BadInputError,
    CacheMissError,
    HTTPStatusError,
    NetworkError,
    NotFoundError,
    ResolverError,
)
from resolver.gitblob import (
    DIR_MODE,
    FILE_MODE,
    SUBMODULE_MODE,
    SYMLINK_MODE,
    git_tree_sha,
    is_sha,
    object_type,
    tree_mode,
)
from resolver.http import GitHubHTTP
from resolver.models import RemoteFile, migration_name
from resolver.refs import Lookup, graphql_batches, offline_miss

OBJECT_MEDIA_TYPE = "application/vnd.github.object+json"
PREFETCH_BATCH = 250
TREES_BATCH = 40
_CONTENTS_MODES = {
    "file": FILE_MODE,
    "dir": DIR_MODE,
    "symlink": SYMLINK_MODE,
    "submodule": SUBMODULE_MODE,
}


@dataclass(frozen=True)
class DirEntry:
    """One entry of the directory's tree object (``mode`` as git writes it: ``40000``)."""

    mode: str
    name: str
    sha: str
    size: int = 0
    """Bytes of a blob as GitHub lists it (not covered by the tree id); 0 for other entries."""

    @property
    def type(self) -> str:
        return object_type(self.mode)

    @property
    def is_file(self) -> bool:
        """A regular file (100644, 100755 or a legacy 100xxx mode), not a symlink."""
        return self.mode.startswith("100")


@dataclass(frozen=True)
class TreeListing:
    """Every entry of the directory and the tree id GitHub gave for it."""

    tree: str
    entries: tuple[DirEntry, ...]

    def problem(self) -> str | None:
        """Why the entries are not the tree ``tree``, or ``None`` when they are."""
        if not is_sha(self.tree):
            return f"{self.tree!r} is not a tree id"
        try:
            actual = git_tree_sha((e.mode, e.name, e.sha) for e in self.entries)
        except ValueError as exc:
            return str(exc)
        if actual != self.tree:
            return f"its {len(self.entries)} entries hash to tree {actual}, not {self.tree}"
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "missing": False,
            "tree": self.tree,
            "entries": [[e.mode, e.type, e.sha, e.name, e.size] for e in self.entries],
        }

    @staticmethod
    def from_json(value: Any) -> TreeListing | None:
        """The listing a cache entry holds, ``None`` if it is not one (an older format too)."""
        if not isinstance(value, dict):
            return None
        tree, raw = value.get("tree"), value.get("entries")
        if not isinstance(tree, str) or not isinstance(raw, list):
            return None
        entries: list[DirEntry] = []
        for item in raw:
            if not (isinstance(item, list) and len(item) == 5):
                return None
            mode, kind, sha, name, size = item
            if not (
                isinstance(mode, str)
                and tree_mode(mode) == mode
                and kind == object_type(mode)
                and isinstance(sha, str)
                and isinstance(name, str)
                and isinstance(size, int)
            ):
                return None
            entries.append(DirEntry(mode, name, sha, size))
        return TreeListing(tree, tuple(entries))


class DirectoryMissing(Exception):
    """The migrations directory does not exist at the commit (internal signal)."""


def _bad_shape(what: str) -> NetworkError:
    return NetworkError(f"GitHub's answer for {what} did not have the expected shape")


def _tree_answer(body: Any, what: str) -> tuple[str, list[DirEntry], bool]:
    """(tree id, entries, truncated) of a trees API answer."""
    if not isinstance(body, dict) or not isinstance(body.get("tree"), list):
        raise _bad_shape(what)
    tree = body.get("sha")
    if not isinstance(tree, str):
        raise _bad_shape(what)
    entries: list[DirEntry] = []
    for item in body["tree"]:
        if not isinstance(item, dict):
            raise _bad_shape(what)
        name, sha, mode, kind = (
            item.get("path"),
            item.get("sha"),
            item.get("mode"),
            item.get("type"),
        )
        if not (isinstance(name, str) and isinstance(sha, str) and isinstance(mode, str)):
            raise _bad_shape(what)
        canonical = tree_mode(mode)
        if canonical is None or kind != object_type(canonical):
            raise _bad_shape(what)
        size = item.get("size", 0) if kind == "blob" else 0
        if not isinstance(size, int):
            raise _bad_shape(what)
        entries.append(DirEntry(canonical, name, sha, size))
    return tree, entries, body.get("truncated") is True


def _contents_entries(
    items: Sequence[Any], what: str, modes: Mapping[str, str]
) -> tuple[list[DirEntry], bool]:
    """Entries of a contents API directory listing, and whether a file's mode was guessed.

    ``modes`` are known modes by name (from a truncated trees answer of the same directory).
    """
    entries: list[DirEntry] = []
    guessed = False
    for item in items:
        if not isinstance(item, dict):
            raise _bad_shape(what)
        kind, name, sha = item.get("type"), item.get("name"), item.get("sha")
        if not (isinstance(kind, str) and isinstance(name, str) and isinstance(sha, str)):
            raise _bad_shape(what)
        if kind not in _CONTENTS_MODES:
            raise _bad_shape(what)
        mode = modes.get(name)
        if mode is None:
            mode = _CONTENTS_MODES[kind]
            guessed = guessed or kind == "file"
        size = item.get("size", 0) if object_type(mode) == "blob" else 0
        if not isinstance(size, int):
            raise _bad_shape(what)
        entries.append(DirEntry(mode, name, sha, size))
    return entries, guessed


def to_files(entries: Sequence[DirEntry]) -> tuple[RemoteFile, ...]:
    """The entries goose would load as migrations, in version order."""
    files: list[RemoteFile] = []
    for entry in entries:
        if not entry.is_file or "/" in entry.name:
            continue
        parsed = migration_name(entry.name)
        if parsed is not None and is_sha(entry.sha):
            files.append(RemoteFile(entry.name, parsed[0], parsed[1], entry.sha, entry.size))
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
        # verified once per process: a commit's listing never changes
        self._verified: dict[str, TreeListing | None] = {}

    def files_at(self, commit: str, *, commit_known: bool) -> tuple[RemoteFile, ...]:
        """Migration files at ``commit``; :class:`DirectoryMissing` if the directory is absent.

        ``commit_known`` says the commit came from GitHub (a tag's target); otherwise a 404 is
        checked against the commit itself so an unknown SHA is told apart from a missing
        directory.
        """
        return to_files(self.listing_at(commit, commit_known=commit_known).entries)

    def listing_at(self, commit: str, *, commit_known: bool) -> TreeListing:
        """Every entry of the directory at ``commit``, verified (see :meth:`files_at`)."""
        key = self._key(commit)
        listing = self.cached_listing_at(commit)
        if listing is not None:
            return listing
        if self._offline:
            raise offline_miss(f"listing of {self._path} at {commit}")
        try:
            listing = self._fetch(commit)
        except DirectoryMissing:
            if not commit_known and not self._commit_exists(commit):
                raise BadInputError(f"no commit {commit} in {self._repo}") from None
            self._cache.write_json(key, {"missing": True})
            self._verified[commit] = None
            raise
        self._cache.write_json(key, listing.to_json())
        self._verified[commit] = listing
        return listing

    def cached_listing_at(self, commit: str) -> TreeListing | None:
        """The cached, verified listing at ``commit``, or ``None``.

        An entry that fails verification is removed (a miss); offline that is an error.
        """
        if commit in self._verified:
            known = self._verified[commit]
            if known is None:
                raise DirectoryMissing(commit)
            return known
        key = self._key(commit)
        cached = self._cache.read_json(key)
        if cached is None:
            return None
        if isinstance(cached, dict) and cached.get("missing") is True:
            self._verified[commit] = None
            raise DirectoryMissing(commit)
        listing = TreeListing.from_json(cached)
        problem = (
            "it is not a listing with a tree id (an older or damaged entry)"
            if listing is None
            else listing.problem()
        )
        if listing is not None and problem is None:
            self._verified[commit] = listing
            return listing
        self._cache.discard_json(key)
        if self._offline:
            raise CacheMissError(
                f"--offline: the cached listing of {self._path} at {commit} failed "
                f"verification ({problem}), so it was removed from the cache: "
                f"{self._cache.json_path(key)}; run the same command once without --offline",
                category="bad_input",
            )
        return None

    def prefetch(self, commits: Sequence[str]) -> None:
        """Cache the listings of ``commits`` (commits GitHub gave, e.g. tags' targets) through
        GraphQL, many per request; listings already cached cost nothing. A failed query is not
        an error: those listings are read through REST when they are asked for."""
        todo: list[str] = []
        for commit in dict.fromkeys(commits):
            try:
                if self.cached_listing_at(commit) is not None:
                    continue
            except DirectoryMissing:
                continue
            todo.append(commit)
        if self._offline or not todo:
            return

        def tree_at(commit: str) -> str:
            where = json.dumps(f"{commit}:{self._path}")
            return f"object(expression: {where}) {{ ... on Tree {{ oid }} }}"

        def entries(tree: str) -> str:
            return (
                f"object(oid: {json.dumps(tree)}) "
                "{ ... on Tree { entries { name mode oid type size } } }"
            )

        tree_of: dict[str, str] = {}
        for answer in self._graphql(todo, tree_at, PREFETCH_BATCH, "c"):
            if answer is None:
                return
            looked_up, clean = answer
            for commit, item, named in looked_up:
                oid = item.get("oid") if isinstance(item, dict) else None
                if isinstance(oid, str) and is_sha(oid):
                    tree_of[commit] = oid
                elif item is None and clean and named:
                    self._cache.write_json(self._key(commit), {"missing": True})
        verified: dict[str, TreeListing] = {}
        for answer in self._graphql(sorted(set(tree_of.values())), entries, TREES_BATCH, "t"):
            if answer is None:
                break
            for tree, item, _named in answer[0]:
                listing = _graphql_tree(tree, item)
                if listing is not None and listing.problem() is None:
                    verified[tree] = listing
        for commit, tree in tree_of.items():
            if tree in verified:
                self._cache.write_json(self._key(commit), verified[tree].to_json())

    def _graphql(
        self, items: Sequence[str], lookup: Callable[[str], str], batch: int, alias: str
    ) -> Iterator[tuple[list[Lookup[str]], bool] | None]:
        return graphql_batches(self._http, self._repo, items, lookup, batch=batch, alias=alias)

    def _key(self, commit: str) -> str:
        return f"listing/{commit}-" + hashlib.sha256(self._path.encode()).hexdigest()[:16]

    # -- fetching -----------------------------------------------------------------------------

    def _fetch(self, commit: str) -> TreeListing:
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
        if body is None:
            return self._fetch_contents(commit, what, tree=None, modes={})
        tree, entries, truncated = _tree_answer(body, what)
        if truncated:
            known = {e.name: e.mode for e in entries}
            return self._fetch_contents(commit, what, tree=tree, modes=known)
        return self._checked(TreeListing(tree, tuple(entries)), commit, "the git trees API")

    def _fetch_contents(
        self, commit: str, what: str, *, tree: str | None, modes: Mapping[str, str]
    ) -> TreeListing:
        """The listing from the contents API; ``tree`` is the id when a truncated trees answer
        gave it (then ``modes`` are the modes it listed)."""
        after_truncated = tree is not None
        path = quote(self._path, safe="/")
        try:
            reply = self._http.api_get(
                f"/repos/{self._repo}/contents/{path}?ref={commit}", accept=OBJECT_MEDIA_TYPE
            )
        except NotFoundError:
            raise DirectoryMissing(commit) from None
        body = reply.json()
        own: str | None = None
        if isinstance(body, dict):
            # the object shape: the directory itself, its tree id and its entries
            items, own = body.get("entries"), body.get("sha")
            if body.get("type") != "dir" or not isinstance(items, list):
                raise _bad_shape(what)
            if not isinstance(own, str):
                raise _bad_shape(what)
        elif isinstance(body, list):
            items = body
        else:
            raise _bad_shape(what)
        entries, guessed = _contents_entries(items, what, modes)
        source = "the contents API"
        if tree is not None:
            if own is not None and own != tree:
                raise _refused(what, source, f"it names tree {own}, the git trees API tree {tree}")
        elif own is not None:
            tree = own
        else:
            tree = self._tree_id_from_parent(commit, what)
            source = "the contents API (tree id from the parent directory's listing)"
        listing = TreeListing(tree, tuple(entries))
        if guessed and not after_truncated and listing.problem() is not None:
            # the contents API gives no modes: ask the trees API for the tree by its id
            exact = self._tree_by_id(tree, what)
            if exact is not None:
                self._checked(exact, commit, f"the git trees API (tree {tree})")
                mismatch = _differs_beyond_modes(listing.entries, exact.entries)
                if mismatch is not None:
                    raise _refused(what, source, f"it disagrees with tree {tree} ({mismatch})")
                listing = exact
        return self._checked(listing, commit, source)

    def _tree_id_from_parent(self, commit: str, what: str) -> str:
        """The directory's tree id as its parent's listing (or the commit) gives it."""
        parent, _, base = self._path.rpartition("/")
        if not base:
            body = self._http.api_get(f"/repos/{self._repo}/git/commits/{commit}").json()
            tree = body.get("tree") if isinstance(body, dict) else None
            sha = tree.get("sha") if isinstance(tree, dict) else None
            if not isinstance(sha, str):
                raise _bad_shape(f"commit {commit}")
            return sha
        url = f"/repos/{self._repo}/contents" + (f"/{quote(parent, safe='/')}" if parent else "")
        body = self._http.api_get(f"{url}?ref={commit}").json()
        items = body.get("entries") if isinstance(body, dict) else body
        if not isinstance(items, list):
            raise _bad_shape(f"{parent or 'the repository root'} at {commit}")
        for item in items:
            if isinstance(item, dict) and item.get("name") == base and item.get("type") == "dir":
                sha = item.get("sha")
                if isinstance(sha, str):
                    return sha
        raise ResolverError(
            f"GitHub's listing of {parent or 'the repository root'} at {commit} does not show "
            f"{base} as a directory, so the listing of {what} cannot be verified"
        )

    def _tree_by_id(self, tree: str, what: str) -> TreeListing | None:
        """The trees API's listing of tree ``tree`` (``None`` if it is truncated)."""
        if not is_sha(tree):
            return None
        body = self._http.api_get(f"/repos/{self._repo}/git/trees/{tree}").json()
        _own, entries, truncated = _tree_answer(body, what)
        return None if truncated else TreeListing(tree, tuple(entries))

    def _checked(self, listing: TreeListing, commit: str, source: str) -> TreeListing:
        problem = listing.problem()
        if problem is not None:
            raise _refused(
                f"{self._path} at {commit}",
                source,
                f"{problem}, the tree id GitHub gave for {commit[:12]}:{self._path}",
            )
        return listing


def _graphql_tree(tree: str, item: Any) -> TreeListing | None:
    """The listing a GraphQL ``... on Tree { entries { name mode oid type size } }`` gives, or
    ``None`` if it does not have that shape (modes are integers there: 33188 is 100644)."""
    raw = item.get("entries") if isinstance(item, dict) else None
    if not isinstance(raw, list):
        return None
    entries: list[DirEntry] = []
    for entry in raw:
        if not isinstance(entry, dict):
            return None
        name, mode, oid, size = (entry.get(k) for k in ("name", "mode", "oid", "size"))
        if not (isinstance(name, str) and isinstance(mode, int) and isinstance(oid, str)):
            return None
        canonical = tree_mode(format(mode, "o"))
        if canonical is None or entry.get("type") != object_type(canonical):
            return None
        blob_size = size if isinstance(size, int) and object_type(canonical) == "blob" else 0
        entries.append(DirEntry(canonical, name, oid, blob_size))
    return TreeListing(tree, tuple(entries))


def _differs_beyond_modes(guessed: Sequence[DirEntry], exact: Sequence[DirEntry]) -> str | None:
    """How a contents listing (file modes guessed) differs from the tree, if not in modes only."""
    listed = {e.name: e for e in guessed}
    actual = {e.name: e for e in exact}
    if listed.keys() != actual.keys():
        extra = ", ".join(sorted(listed.keys() - actual.keys())[:3]) or "none"
        lacking = ", ".join(sorted(actual.keys() - listed.keys())[:3]) or "none"
        return f"names only in the contents listing: {extra}; only in the tree: {lacking}"
    for name, entry in sorted(listed.items()):
        other = actual[name]
        if entry.sha != other.sha or (entry.mode != FILE_MODE and entry.mode != other.mode):
            return f"another id or mode for {name}"
    return None


def _refused(what: str, source: str, problem: str) -> ResolverError:
    return ResolverError(
        f"GitHub's listing of {what} from {source} failed verification: {problem}; refusing to "
        "use it (nothing was cached)"
    )

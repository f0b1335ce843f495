"""The resolver facade the CLI uses: releases, resolution, listings, file contents, sources.

:class:`ReleaseResolver` holds the release logic over any source's parts (see
:mod:`resolver.source`); :class:`Resolver` is it over the GitHub API and the on-disk cache. A
cold ``resolve`` costs two core requests (the tag list and the directory listing); a warm one
costs a single 304 revalidation of the tag list, which spends no quota.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, Self

import httpx

from resolver.cache import Cache
from resolver.contents import DEFAULT_WORKERS, ContentFetcher
from resolver.errors import BadInputError, ResolverError
from resolver.gitblob import is_sha
from resolver.http import Clock, GitHubHTTP, RequestStats, Sleep
from resolver.listing import DirectoryLister, DirectoryMissing, TreeListing, to_files
from resolver.models import (
    Listing,
    Release,
    ReleaseHistory,
    ReleaseRecord,
    RemoteFile,
    Resolution,
    VersionPlace,
)
from resolver.refs import RefDirectory, TagRef
from resolver.release_index import IndexCheck, ReleaseIndex
from resolver.settings import GitHubSettings
from resolver.source import BlobStore, TagStore, TreeStore
from resolver.tags import TagName, nearest_stable, parse_tag, sort_key

__all__ = [
    "Listing",
    "Release",
    "ReleaseResolver",
    "RemoteFile",
    "Resolution",
    "Resolver",
]

_REPO = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
FIRST_GOOSE_RELEASE = "v0.55.0"
# find_source stops after this many releases in a row that are all older than the versions
# wanted (their newest migration is below the newest version wanted): older ones cannot help.
STALE_RUN = 10
# place_version looks this many releases past the bisection point before giving up.
SCAN_SLACK = 3
# Core requests release_history may spend without a token, the tag list included: the index
# answers for the releases it knows, so this is enough unless many tags are new.
HISTORY_REQUESTS = 3


class _Unknown(enum.Enum):
    """A release listing that is not cached and that the request budget does not allow."""

    LISTING = 0


UNKNOWN = _Unknown.LISTING
Known = Listing | None | Literal[_Unknown.LISTING]
"""A release's listing, ``None`` when the release predates the directory, or ``UNKNOWN``."""


@dataclass
class _Budget:
    """How many more release listings may be read from GitHub (``None``: no limit)."""

    left: int | None

    def take(self) -> bool:
        if self.left is None:
            return True
        if self.left <= 0:
            return False
        self.left -= 1
        return True


class ReleaseResolver:
    """Release resolution over one repository's tags, directory listings and file contents,
    wherever they come from (the parts: see :mod:`resolver.source`); a context manager.

    Every source (the GitHub API, a local clone, a bundle) runs this same logic, so stable-release
    rules, pre-releases, the choice of source release and the SHA checks are the same for all.
    """

    def __init__(
        self,
        *,
        repo: str,
        migrations_path: str,
        refs: TagStore,
        lister: TreeStore,
        contents: BlobStore,
        origin: str | None = None,
    ) -> None:
        self._repo = repo
        self._path = migrations_path.strip("/")
        self._refs = refs
        self._lister = lister
        self._contents = contents
        self._origin = origin
        self._sorted_releases: tuple[list[TagRef], list[Release]] | None = None
        self._files_by_tree: dict[str, tuple[RemoteFile, ...]] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(repo={self._repo!r}, origin={self._origin!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release what the source holds open (connections, processes); idempotent."""

    @property
    def origin(self) -> str | None:
        """``"bundle FILE"`` or ``"git-dir DIR"``; ``None`` for the GitHub API."""
        return self._origin

    @property
    def repo(self) -> str:
        return self._repo

    @property
    def migrations_path(self) -> str:
        return self._path

    def parts(self) -> tuple[TagStore, TreeStore, BlobStore]:
        """The tag, tree and blob parts this resolver reads through."""
        return self._refs, self._lister, self._contents

    # -- hooks a source overrides: request accounting and commit dates -----------------------

    def _spent(self) -> int:
        """Core requests spent so far (a local source spends none)."""
        return 0

    def _history_limit(self) -> int | None:
        """How many core requests :meth:`release_history` may have spent in all; ``None``: no
        limit (a local source, or one that batches)."""
        return None

    def _commit_date(self, commit: str) -> str | None:
        """The commit's committer date (ISO 8601 UTC), ``None`` if the source has no dates."""
        return None

    def _cached_commit_date(self, commit: str) -> str | None:
        """The commit's date if it is known without a request."""
        return None

    def _prefetch_dates(self, commits: Sequence[str]) -> None:
        """Read many commits' dates at once where that is cheaper; a no-op by default."""

    def with_parts(self, refs: TagStore, lister: TreeStore, contents: BlobStore) -> ReleaseResolver:
        """The same logic over other parts (e.g. ones that record what is read); the new
        resolver owns nothing, closing it closes nothing."""
        return ReleaseResolver(
            repo=self._repo,
            migrations_path=self._path,
            refs=refs,
            lister=lister,
            contents=contents,
            origin=self._origin,
        )

    @property
    def cheap_listings(self) -> bool:
        """Whether reading hundreds of listings is cheap here (a local source: yes)."""
        return True

    def prefetch(self, releases: Sequence[Release]) -> None:
        """Read the commits and listings of many releases at once where the source can do that
        more cheaply than one at a time (later reads then hit the cache); a no-op by default."""

    def _files_at(self, commit: str, *, commit_known: bool) -> tuple[RemoteFile, ...]:
        return self._files_of(self._lister.listing_at(commit, commit_known=commit_known))

    def _cached_files_at(self, commit: str) -> tuple[RemoteFile, ...] | None:
        listing = self._lister.cached_listing_at(commit)
        return None if listing is None else self._files_of(listing)

    def _files_of(self, listing: TreeListing) -> tuple[RemoteFile, ...]:
        """The migration files of a verified listing (once per tree id: it fixes the entries)."""
        files = self._files_by_tree.get(listing.tree)
        if files is None:
            files = self._files_by_tree[listing.tree] = to_files(listing.entries)
        return files

    # -- releases -----------------------------------------------------------------------------

    def _tag_names(self) -> list[tuple[TagName, str | None]]:
        out: list[tuple[TagName, str | None]] = []
        for ref in self._refs.tags():
            name = parse_tag(ref.name)
            if name is not None:
                out.append((name, ref.sha if ref.type == "commit" else None))
        return out

    def releases(self, *, include_prereleases: bool = False) -> list[Release]:
        """Releases newest first in semver order (stable only unless asked otherwise)."""
        tags = self._refs.tags()
        known = self._sorted_releases
        if known is None or known[0] is not tags:  # parsed once per tag list
            named = self._tag_names()
            named.sort(key=lambda pair: sort_key(pair[0]), reverse=True)
            ordered = [Release(n.tag, n.version, n.prerelease, commit) for n, commit in named]
            known = self._sorted_releases = (tags, ordered)
        return [r for r in known[1] if include_prereleases or not r.prerelease]

    def release(self, tag: str, *, allow_prerelease: bool = False) -> Release:
        """The release called ``tag``, with its commit.

        Junk names, pre-releases (unless allowed) and unknown tags are :class:`BadInputError`;
        an unknown tag's message names the nearest stable releases.
        """
        name = tag.strip()
        parsed = parse_tag(name)
        if parsed is None:
            hint = f"; did you mean v{name}?" if re.fullmatch(r"\d+\.\d+\.\d+", name) else ""
            raise BadInputError(
                f"{name!r} is not a Hatchet release tag: releases are named vX.Y.Z "
                f"(e.g. v0.71.0){hint}"
            )
        if parsed.prerelease and not allow_prerelease:
            raise BadInputError(
                f"{name} is a pre-release; pre-releases carry migrations that no stable release "
                "has. Pass --allow-prerelease to use it anyway"
            )
        refs = {ref.name: ref for ref in self._refs.tags()}
        ref = refs.get(name)
        if ref is None:
            stable = [n for n in map(parse_tag, refs) if n is not None and not n.prerelease]
            near = nearest_stable(name, stable)
            known = f"; nearest stable releases: {', '.join(near)}" if near else ""
            raise BadInputError(f"no release {name} in {self._repo}{known}")
        commit = self._refs.peel(ref)
        return Release(name, parsed.version, parsed.prerelease, commit)

    # -- resolution and listings --------------------------------------------------------------

    def resolve(self, tag: str, *, allow_prerelease: bool = False) -> Resolution:
        """The release's target version: the largest over ALL migration files (.sql and .go)."""
        release = self.release(tag, allow_prerelease=allow_prerelease)
        assert release.commit is not None
        try:
            files = self._files_at(release.commit, commit_known=True)
        except DirectoryMissing:
            raise BadInputError(
                f"{release.tag} has no migrations directory ({self._path}): "
                f"Hatchet ships goose migrations only from {FIRST_GOOSE_RELEASE} on, so the "
                "schema cannot be moved to this release"
            ) from None
        listing = Listing(release.tag, release.commit, files)
        newest = listing.newest
        if newest is None:
            raise BadInputError(f"{release.tag} has no migration files in {self._path}")
        return Resolution(
            release=release.tag,
            version=newest.version,
            file=newest.name,
            commit=release.commit,
            migrations=len(files),
            listing=listing,
        )

    def listing(self, ref: str) -> Listing:
        """The migration files at a tag, branch or commit SHA."""
        ref = ref.strip()
        if not ref:
            raise BadInputError("an empty ref was given")
        commit: str | None = None
        known = True
        if is_sha(ref.lower()):
            commit, known = ref.lower(), False
        elif parse_tag(ref) is not None:
            tag = next((t for t in self._refs.tags() if t.name == ref), None)
            if tag is not None:
                commit = self._refs.peel(tag)
        if commit is None:
            commit = self._refs.commit_of(ref)
        try:
            files = self._files_at(commit, commit_known=known)
        except DirectoryMissing:
            raise BadInputError(f"{ref} has no migrations directory ({self._path})") from None
        return Listing(ref, commit, files)

    def _stable_releases(self) -> list[Release]:
        """Stable releases newest first; a repository without any cannot supply down SQL."""
        releases = self.releases()
        if not releases:
            raise ResolverError(f"{self._repo} has no stable releases", "blocked")
        return releases

    def newest_listing(self) -> Listing:
        """The migration files of the newest stable release (the migrations now in force)."""
        return self.listing(self._stable_releases()[0].tag)

    def _release_listing(self, release: Release) -> Listing | None:
        """A stable release's listing, or ``None`` when it predates the directory."""
        commit = release.commit
        if commit is None:
            commit = self.release(release.tag, allow_prerelease=True).commit
            assert commit is not None
        try:
            files = self._files_at(commit, commit_known=True)
        except DirectoryMissing:
            return None
        return Listing(release.tag, commit, files)

    def _cached_release_listing(self, release: Release) -> Known:
        """A release's listing from the cache alone (no request): ``UNKNOWN`` on a miss."""
        commit = release.commit
        if commit is None:
            ref = next((t for t in self._refs.tags() if t.name == release.tag), None)
            commit = self._refs.cached_peel(ref) if ref is not None else None
            if commit is None:
                return UNKNOWN
        try:
            files = self._cached_files_at(commit)
        except DirectoryMissing:
            return None
        return UNKNOWN if files is None else Listing(release.tag, commit, files)

    def _budgeted_listing(self, release: Release, budget: _Budget) -> Known:
        """The cached listing, else one read from GitHub if ``budget`` allows it."""
        known = self._cached_release_listing(release)
        if known is not UNKNOWN:
            return known
        if not budget.take():
            return UNKNOWN
        return self._release_listing(release)  # offline: the usual "run once online" error

    # -- the release history (releases --versions) ---------------------------------------

    def check_index(self, index: ReleaseIndex) -> IndexCheck:
        """The packaged index against this source's tag list (read once, no other request)."""
        return index.check(self._refs.tags())

    def release_history(
        self, index: ReleaseIndex | None = None, *, dates: bool = True
    ) -> ReleaseHistory:
        """Every stable release with its date, target version and file count, newest first by
        date (semver order is not date order: patch branches).

        Releases the index knows, whose tag still names the same object, come from the index
        for free; the others (new tags, moved tags, or all of them without an index) are read
        from the source: with a token a hundred per GraphQL query, without one each costs a
        listing and a date request, within ``HISTORY_REQUESTS`` core requests in all; the rest
        are ``unlisted``. ``dates=False`` skips the date requests (records read from the source
        then have none).
        """
        releases = self.releases()
        check = self.check_index(index) if index is not None else None
        if check is not None and not check.confirmed:
            check = None  # not the indexed history at all (a rewritten mirror): no notes
        confirmed = check.confirmed if check is not None else {}
        refs = {ref.name: ref for ref in self._refs.tags()}
        todo = [r for r in releases if r.tag not in confirmed]
        if todo and self.cheap_listings:
            self.prefetch(todo)
            if dates:
                peeled = (r.commit or self._refs.cached_peel(refs[r.tag]) for r in todo)
                self._prefetch_dates([c for c in peeled if c is not None])
        limit = self._history_limit()
        records: list[ReleaseRecord] = []
        for release in releases:
            entry = confirmed.get(release.tag)
            if entry is not None:
                records.append(
                    ReleaseRecord(
                        release.tag, entry.commit, entry.date, entry.version, entry.files, "index"
                    )
                )
            else:
                records.append(self._listed_record(release, refs[release.tag], limit, dates))
        order = {r.tag: i for i, r in enumerate(releases)}  # semver, newest first
        undated = [r for r in records if r.date is None]
        dated = sorted(
            (r for r in records if r.date is not None),
            key=lambda r: (r.date or "", -order[r.release]),
            reverse=True,
        )
        return ReleaseHistory(
            records=tuple(undated + dated),
            indexed=len(confirmed),
            moved=check.moved if check is not None else (),
            gone=check.gone if check is not None else (),
        )

    def _listed_record(
        self, release: Release, ref: TagRef, limit: int | None, dates: bool
    ) -> ReleaseRecord:
        """A release read from the source, or ``unlisted`` when that would pass ``limit``."""
        unlisted = ReleaseRecord(release.tag, release.commit, None, None, None, "unlisted")
        commit = release.commit or self._refs.cached_peel(ref)
        if limit is not None and self._spent() + self._record_cost(commit, dates) > limit:
            return unlisted
        if commit is None:
            try:
                commit = self._refs.peel(ref)
            except BadInputError:  # e.g. a bundle without this tag's commit
                return unlisted
        known = self._budgeted_listing(
            Release(release.tag, release.version, release.prerelease, commit), _Budget(None)
        )
        if known is UNKNOWN:
            return dataclasses.replace(unlisted, commit=commit)
        newest = known.newest if known is not None else None
        return ReleaseRecord(
            release=release.tag,
            commit=commit,
            date=self._commit_date(commit) if dates else None,
            version=newest.version if newest is not None else None,
            files=len(known.files) if known is not None else 0,
            source="listed",
        )

    def _record_cost(self, commit: str | None, dates: bool) -> int:
        """Requests a release still needs: its commit (annotated tag), listing and date."""
        if commit is None:
            return 3 if dates else 2
        try:
            listed = self._lister.cached_listing_at(commit) is not None
        except DirectoryMissing:
            listed = True
        dated = not dates or self._cached_commit_date(commit) is not None
        return (0 if listed else 1) + (0 if dated else 1)

    def place_in_history(self, version: int, history: ReleaseHistory) -> VersionPlace:
        """Where ``version`` sits among the releases of ``history`` (no request): the releases
        whose last migration it is (newest first in semver order), else the release with the
        largest target below it and the one with the smallest target above it (by date, the
        last to stop below and the first to go past); ``shipped_in`` are the exact ones;
        ``unchecked`` the releases the history could not list."""
        semver = {r.tag: r.version for r in self.releases()}
        known = [r for r in history.records if r.source != "unlisted" and r.version is not None]
        exact = sorted(
            (r.release for r in known if r.version == version),
            key=lambda tag: semver[tag],
            reverse=True,
        )
        below = [r for r in known if r.version is not None and r.version < version]
        above = [r for r in known if r.version is not None and r.version > version]
        after = max(below, key=lambda r: (r.version or 0, r.date or ""), default=None)
        before = min(above, key=lambda r: (r.version or 0, r.date or "~"), default=None)
        return VersionPlace(
            version=version,
            releases=tuple(exact),
            after=after.release if after is not None and not exact else None,
            before=before.release if before is not None and not exact else None,
            shipped_in=tuple(exact),
            unchecked=history.unlisted,
        )

    # -- contents -----------------------------------------------------------------------------

    def fetch_files(self, listing: Listing, names: Iterable[str]) -> dict[str, bytes]:
        """``{name: bytes}`` for the named files of ``listing``, every one SHA-verified."""
        wanted: list[RemoteFile] = []
        for name in dict.fromkeys(names):
            item = listing.file(name)
            if item is None:
                raise ResolverError(f"{name} is not a migration file of {listing.ref}")
            wanted.append(item)
        return self._contents.fetch(listing.commit, wanted)

    # -- sources ------------------------------------------------------------------------------

    def find_source(self, versions: Collection[int], *, budget: int | None = None) -> Listing:
        """The newest stable release whose listing holds every one of ``versions``.

        Walks releases newest first (listings come from the cache when they can) and stops at the
        first hit, or after a run of releases too old to hold the newest version wanted. The
        newest release usually holds them all, so a cold search costs one listing. ``budget``
        caps how many listings are read from GitHub (cached ones are free); when it runs out the
        search stops and fails as if no release matched.
        """
        wanted = frozenset(versions)
        releases = self._stable_releases()
        allowance = _Budget(budget)
        seen: set[int] = set()
        stale = 0
        checked = 0
        for release in releases:
            listing = self._budgeted_listing(release, allowance)
            if listing is UNKNOWN:
                break
            checked += 1
            have = listing.versions if listing is not None else frozenset()
            seen |= wanted & have
            if listing is not None and wanted <= have:
                return listing
            if max(have, default=0) < max(wanted, default=0):
                stale += 1
                if stale >= STALE_RUN:
                    break
            else:
                stale = 0
        absent = sorted(wanted - seen)
        if absent:
            listed = ", ".join(map(str, absent[:10])) + (", ..." if len(absent) > 10 else "")
            problem = f"no stable release has version(s) {listed}"
        else:
            problem = "no single stable release has all of them"
        span = f"{releases[0].tag} down to {releases[checked - 1].tag}" if checked else "none"
        raise ResolverError(
            f"cannot find the down migrations to run: {problem} (checked the {checked} newest "
            f"releases, {span}); pass --from-ref REF or --migrations-dir DIR",
            "blocked",
        )

    def find_file(
        self, version: int, hint_tags: Sequence[str] = (), *, budget: int | None = None
    ) -> tuple[Listing, RemoteFile] | None:
        """A release listing holding ``version`` and its file, for a version that the source ref
        lacks (deleted or renamed later): ``fetch_files(listing, [file.name])`` gets its bytes.

        Tries ``hint_tags`` first (one listing each; names that are not tags of the repository
        cost nothing and are skipped, as are tags without the migrations directory), then the
        releases :meth:`place_version` finds shipping it (``budget`` is passed on). ``None``
        when none of them has it.
        """
        refs = {ref.name: ref for ref in self._refs.tags()}
        for tag in dict.fromkeys(t.strip() for t in hint_tags):
            ref = refs.get(tag)
            if ref is None:
                continue
            commit = self._refs.peel(ref)
            try:
                listing = Listing(tag, commit, self._files_at(commit, commit_known=True))
            except DirectoryMissing:
                continue
            hit = _file_with(listing, version)
            if hit is not None:
                return listing, hit
        for tag in self.place_version(version, budget=budget).shipped_in:
            listing = self.listing(tag)
            hit = _file_with(listing, version)
            if hit is not None:
                return listing, hit
        return None

    def place_version(self, version: int, *, budget: int | None = None) -> VersionPlace:
        """Where ``version`` sits among stable releases: the releases whose last migration it is,
        else the two releases it falls between, and the releases whose files hold it.

        Reading every release's listing would cost one request per release, so this bisects the
        releases (in semver order the newest migration almost always grows) to where ``version``
        would be, then scans outwards until ``SCAN_SLACK`` releases in a row do not match. Patch
        branches that break the order may be missed; the answer is informational.

        ``budget`` caps how many listings are read from GitHub (cached ones are free). Once it
        is spent the bisection goes on over the cached listings only (the newest release's is
        looked at first: after ``find_source`` it is usually cached and often the answer), so
        ``budget=0`` costs no request at all; the answer is then the best the known listings
        give: fewer ``releases``, or a wider ``after``/``before`` range.
        """
        ascending = list(reversed(self.releases()))
        n = len(ascending)
        allowance = _Budget(budget)
        listings: dict[int, Known] = {}

        def listing_at(i: int) -> Known:
            # UNKNOWN is kept too: it means the budget is spent, and it never grows back
            if i not in listings:
                listings[i] = self._budgeted_listing(ascending[i], allowance)
            return listings[i]

        def last(i: int) -> int | None:
            listing = listing_at(i)
            if listing is UNKNOWN:
                return None
            top = listing.newest if listing is not None else None
            return top.version if top is not None else 0

        if budget is not None and n:
            last(n - 1)
        lo, hi = 0, n
        while lo < hi:
            mid = (lo + hi) // 2
            top = last(mid)
            if top is None:
                # the budget is spent: go on over the listings already known
                known = [i for i in range(lo, hi) if last(i) is not None]
                if not known:
                    break
                mid = known[len(known) // 2]
                top = last(mid)
                assert top is not None
            if top < version:
                lo = mid + 1
            else:
                hi = mid
        # lo == hi unless the budget ran out: then the releases in [lo, hi) are not known
        found: list[int] = []
        for indexes in (range(hi, n), range(hi - 1, -1, -1)):
            misses = 0
            for i in indexes:
                top = last(i)
                if top is None:
                    break
                if top == version:
                    found.append(i)
                    misses = 0
                else:
                    misses += 1
                    if misses >= SCAN_SLACK or found:
                        break
        holding = [
            i
            for i in range(lo, min(hi + SCAN_SLACK * 3, n))
            if isinstance(listing := listing_at(i), Listing) and version in listing.versions
        ]
        below = ascending[lo - 1].tag if lo > 0 and not found else None
        above = ascending[hi].tag if hi < n and not found else None
        return VersionPlace(
            version=version,
            releases=tuple(ascending[i].tag for i in sorted(found, reverse=True)),
            after=below,
            before=above,
            shipped_in=tuple(ascending[i].tag for i in sorted(holding, reverse=True)),
        )


class Resolver(ReleaseResolver):
    """GitHub-aware release resolution for one repository (REST, GraphQL, raw downloads and the
    on-disk cache); a context manager."""

    def __init__(
        self,
        settings: GitHubSettings,
        *,
        sleep: Sleep = time.sleep,
        clock: Clock = time.time,
        max_workers: int = DEFAULT_WORKERS,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if _REPO.fullmatch(settings.repo) is None:
            raise BadInputError(f"the repository must be OWNER/NAME, not {settings.repo!r}")
        self._settings = settings
        self._http = GitHubHTTP(
            settings.api_url, settings.token, sleep=sleep, clock=clock, transport=transport
        )
        cache = Cache(settings.cache_dir, self._http.endpoints.api, settings.repo)
        refs = RefDirectory(self._http, cache, settings.repo, offline=settings.offline)
        self._directory = DirectoryLister(
            self._http,
            cache,
            settings.repo,
            settings.migrations_path,
            offline=settings.offline,
            commit_exists=self._commit_exists,
        )
        contents = ContentFetcher(
            self._http,
            cache,
            settings.repo,
            settings.migrations_path,
            offline=settings.offline,
            max_workers=max_workers,
        )
        super().__init__(
            repo=settings.repo,
            migrations_path=settings.migrations_path,
            refs=refs,
            lister=self._directory,
            contents=contents,
        )
        self._ref_directory = refs

    def __repr__(self) -> str:
        return f"Resolver(repo={self._settings.repo!r}, api={self._http.endpoints.api!r})"

    def close(self) -> None:
        self._http.close()

    @property
    def stats(self) -> RequestStats:
        """Requests sent so far (``core`` spends REST quota; 304s are counted apart)."""
        return self._http.stats

    @property
    def cheap_listings(self) -> bool:
        """With a token GraphQL reads a hundred listings per request; without one each listing
        is a REST request of the 60 an hour (``--offline``: the cache, free)."""
        return self._settings.offline or self._http.has_token

    def prefetch(self, releases: Sequence[Release]) -> None:
        """With a token, read the commits of annotated tags and the listings of ``releases``
        through GraphQL, a hundred per request, into the cache (each listing verified against
        its tree id); without one, nothing happens and each costs its REST request when read."""
        if self._settings.offline or not self._http.has_token:
            return
        wanted = {r.tag for r in releases}
        tags = [t for t in self._ref_directory.tags() if t.name in wanted]
        self._ref_directory.prefetch_peels(tags)
        commits = [self._ref_directory.cached_peel(t) for t in tags]
        self._directory.prefetch([c for c in commits if c is not None])

    def _spent(self) -> int:
        return self._http.stats.core

    def _history_limit(self) -> int | None:
        if self._settings.offline:
            return 0  # the cache only: what it does not hold is unlisted, not an error
        return None if self._http.has_token else HISTORY_REQUESTS

    def _commit_date(self, commit: str) -> str | None:
        return self._ref_directory.commit_date(commit)

    def _cached_commit_date(self, commit: str) -> str | None:
        return self._ref_directory.cached_commit_date(commit)

    def _prefetch_dates(self, commits: Sequence[str]) -> None:
        if not self._settings.offline and self._http.has_token:
            self._ref_directory.prefetch_dates(commits)

    def _commit_exists(self, sha: str) -> bool:
        try:
            self._ref_directory.commit_of(sha)
        except BadInputError:
            return False
        return True


def _file_with(listing: Listing, version: int) -> RemoteFile | None:
    """The first file of ``listing`` (by name) with ``version``, if any."""
    return next((f for f in listing.files if f.version == version), None)

"""Where releases, listings and file contents come from: the interface the CLI uses, and the
three parts every source is made of.

Three sources implement :class:`ReleaseSource`, all with the same release logic
(:class:`resolver.service.ReleaseResolver`: stable-release rules, pre-releases, the newest
release holding every version, SHA checks) over different parts:

* :class:`resolver.service.Resolver`: the GitHub API (with its on-disk cache);
* :class:`resolver.gitdir.GitDirResolver`: a local clone, read with the ``git`` command;
* :class:`resolver.bundle.BundleResolver`: a bundle file made by ``hatchet-schema bundle``,
  which never touches the network.

:func:`open_source` picks one from the settings.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

from resolver.errors import BadInputError
from resolver.models import (
    Listing,
    Release,
    ReleaseHistory,
    RemoteFile,
    Resolution,
    VersionPlace,
)

if TYPE_CHECKING:
    from resolver.listing import TreeListing
    from resolver.refs import TagRef
    from resolver.release_index import IndexCheck, ReleaseIndex
    from resolver.settings import GitHubSettings


class ReleaseSource(Protocol):
    """What the CLI asks of a source of Hatchet releases; a context manager."""

    @property
    def origin(self) -> str | None:
        """Where the data comes from when it is not the GitHub API (``"bundle FILE"``,
        ``"git-dir DIR"``); plans name it next to the source ref. ``None`` for the API."""
        ...

    def __enter__(self) -> ReleaseSource: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def close(self) -> None: ...

    def releases(self, *, include_prereleases: bool = False) -> list[Release]: ...

    def release(self, tag: str, *, allow_prerelease: bool = False) -> Release: ...

    def resolve(self, tag: str, *, allow_prerelease: bool = False) -> Resolution: ...

    def listing(self, ref: str) -> Listing: ...

    def newest_listing(self) -> Listing: ...

    def fetch_files(self, listing: Listing, names: Iterable[str]) -> dict[str, bytes]: ...

    def find_source(self, versions: Collection[int], *, budget: int | None = None) -> Listing: ...

    def find_file(
        self, version: int, hint_tags: Sequence[str] = (), *, budget: int | None = None
    ) -> tuple[Listing, RemoteFile] | None: ...

    def place_version(self, version: int, *, budget: int | None = None) -> VersionPlace: ...

    def check_index(self, index: ReleaseIndex) -> IndexCheck:
        """The packaged release index against the source's tag list."""
        ...

    def release_history(
        self, index: ReleaseIndex | None = None, *, dates: bool = True
    ) -> ReleaseHistory:
        """Every stable release with its date, target version and file count, newest first."""
        ...

    def place_in_history(self, version: int, history: ReleaseHistory) -> VersionPlace:
        """Where ``version`` sits among the releases of ``history`` (no request)."""
        ...

    @property
    def cheap_listings(self) -> bool:
        """Whether reading hundreds of listings is cheap (local, cached, or batched)."""
        ...

    def prefetch(self, releases: Sequence[Release]) -> None:
        """Read the commits and listings of many releases at once where that saves requests."""
        ...


# -- the parts of a source -------------------------------------------------------------------


class TagStore(Protocol):
    """The repository's ``v*`` tags and the commits refs name."""

    def tags(self) -> list[TagRef]:
        """Every tag whose name starts with ``v``."""
        ...

    def peel(self, tag: TagRef) -> str:
        """The commit ``tag`` points at (annotated tags dereferenced)."""
        ...

    def cached_peel(self, tag: TagRef) -> str | None:
        """The commit ``tag`` points at if it is known without reading anything, else ``None``."""
        ...

    def commit_of(self, ref: str) -> str:
        """The commit a branch, tag or (abbreviated) commit id names; unknown: BadInputError."""
        ...


class TreeStore(Protocol):
    """The migrations directory at a commit: every entry, verified against its tree id."""

    def listing_at(self, commit: str, *, commit_known: bool) -> TreeListing:
        """The directory at ``commit``; ``DirectoryMissing`` when it does not exist there."""
        ...

    def cached_listing_at(self, commit: str) -> TreeListing | None:
        """The listing if it is known without reading anything (``None`` when it is not,
        ``DirectoryMissing`` when the directory is known to be absent)."""
        ...


class BlobStore(Protocol):
    """File contents, each checked against its git blob SHA."""

    def fetch(self, commit: str, files: Sequence[RemoteFile]) -> dict[str, bytes]:
        """``{name: bytes}`` for ``files`` as they are at ``commit``."""
        ...


def open_source(settings: GitHubSettings) -> ReleaseSource:
    """The source the settings ask for: a bundle file, a local git clone, else the GitHub API."""
    if settings.bundle is not None and settings.git_dir is not None:
        raise BadInputError("give at most one of --bundle and --git-dir")
    if settings.bundle is not None:
        from resolver.bundle import BundleResolver

        return BundleResolver.open(settings.bundle, settings)
    if settings.git_dir is not None:
        from resolver.gitdir import GitDirResolver

        return GitDirResolver(settings.git_dir, settings)
    from resolver.service import Resolver

    return Resolver(settings)

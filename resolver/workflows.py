"""The release side of the commands, over any :class:`~resolver.source.ReleaseSource`: the files
a downgrade reads (:func:`down_files`), where ``status``'s versions sit among the releases
(:func:`place_database`), and what a bundle records (:func:`record_bundle`).

What only the migrator knows comes in as plain values and callbacks (``resolver`` never imports
``migrator``; ``cli.py`` wires the two): the versions renamed or deleted upstream with the
releases that shipped them, how file contents are read as migrations, which versions a plan for
a given version table reverts.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from resolver.errors import BadInputError, ResolverError

if TYPE_CHECKING:
    from pathlib import Path

    from resolver.bundle import BundleHeader, WrittenBundle
    from resolver.models import Release, Resolution, VersionPlace
    from resolver.release_index import ReleaseIndex
    from resolver.service import ReleaseResolver
    from resolver.source import ReleaseSource

__all__ = ["DatabasePlace", "down_files", "place_database", "record_bundle"]

F = TypeVar("F")
Collect = Callable[[Mapping[str, bytes], str, Mapping[str, str]], Mapping[int, F]]
"""``(contents by file name, origin, blob SHA by file name) -> files by version``."""


def down_files(
    resolver: ReleaseSource,
    from_ref: str | None,
    versions: Sequence[int],
    *,
    renamed: Mapping[int, Sequence[str]],
    also_read: Collection[int],
    collect: Collect[F],
) -> tuple[dict[int, F], str]:
    """The files of every version to revert (and of ``also_read``), read with ``collect``, and
    the name of the source they come from.

    Versions in ``renamed`` (renamed or deleted upstream: version -> the releases that shipped
    it) come from a release that shipped them (their file is in no newer release) unless the
    source has them; the rest from one source ref: ``from_ref``, else the newest stable release
    holding every version to revert.
    """
    orphans = [v for v in versions if v in renamed]
    wanted_versions = [v for v in versions if v not in renamed]
    if from_ref:
        listing = resolver.listing(from_ref)
    else:
        try:
            listing = resolver.find_source(wanted_versions or versions, budget=10)
        except ResolverError as exc:
            if exc.category != "blocked":
                raise
            # Some versions are in no release (orphan rows): plan from the newest release and
            # let the planner block exactly those steps.
            listing = resolver.newest_listing()
    needed = set(versions) | set(also_read)
    wanted = [f for f in listing.files if f.version in needed]
    contents = resolver.fetch_files(listing, [f.name for f in wanted])
    via = f" from {resolver.origin}" if resolver.origin else ""  # a bundle or a local clone
    source = f"{listing.ref} ({listing.commit[:12]}){via}"
    found = dict(collect(contents, source, {f.name: f.sha for f in wanted}))
    for version in orphans:
        if version in found:
            continue
        hit = resolver.find_file(version, renamed[version], budget=10)
        if hit is None:
            continue
        older, item = hit
        data = resolver.fetch_files(older, [item.name])
        origin = f"{older.ref} ({older.commit[:12]}){via}"
        found.update(collect(data, origin, {item.name: item.sha}))
    return found, source


@dataclass(frozen=True)
class DatabasePlace:
    """Where a database's versions sit among the releases (``status``)."""

    place: VersionPlace
    """Where the current version sits."""
    known: frozenset[int]
    """The newest release's versions: an applied version not among them is an orphan row."""
    known_from: str
    """The newest release's ref."""
    shipped: dict[int, list[str]]
    """The releases that shipped each orphan row's version, where known."""


def place_database(
    resolver: ReleaseSource, index: ReleaseIndex | None, current: int, applied: Sequence[int]
) -> DatabasePlace:
    """Judge a database at ``current`` with ``applied`` rows against the newest release;
    ``index``: the packaged release index, used when the source confirms it."""
    shipped: dict[int, list[str]] = {}
    newest = resolver.newest_listing()
    known = newest.versions
    if index is not None and resolver.check_index(index).confirmed:
        # The index names the releases at any version for free (<= 3 requests cold and
        # anonymous); an orphan's release is named when one ends at it.
        history = resolver.release_history(index, dates=False)
        place = resolver.place_in_history(current, history)
        for v in applied:
            ending = resolver.place_in_history(v, history).shipped_in
            if v not in known and ending:
                shipped[v] = list(ending)
    else:
        place = resolver.place_version(current)
        for v in applied:
            if v not in known:
                shipped[v] = list(resolver.place_version(v).shipped_in)
    return DatabasePlace(place, frozenset(known), newest.ref, shipped)


def record_bundle(
    source: ReleaseSource,
    output: Path,
    *,
    to_release: str,
    from_release: str | None,
    allow_prerelease: bool,
    every_listing: bool,
    renamed: Mapping[int, Sequence[str]],
    check_target: Callable[[int], None],
    read_downgrade: Callable[[ReleaseResolver, Sequence[int], Resolution], None],
    made_from: str,
) -> tuple[WrittenBundle, BundleHeader]:
    """Record what ``downgrade`` and ``status`` read for the database states a bundle for
    ``to_release`` covers, and write it to ``output``.

    The states: the database holding exactly the migrations of ``from_release``, and of each
    release that shipped a version in ``renamed``; with ``every_listing`` also of each release
    from ``to_release`` to ``from_release`` (semver order). For each, the same resolver calls as
    ``downgrade --to-release`` (the target, the source release, and through ``read_downgrade``
    every file the plan reads) and, with ``every_listing``, ``status`` (where the version sits,
    orphan rows) run through a resolver that records what it reads; the bundle holds exactly
    that, so replaying it answers as the online run does. ``check_target`` refuses a target
    version no downgrade can reach (by raising).
    """
    from resolver.bundle import BundleHeader, record, write_bundle

    recorder, recording = record(source)
    releases = recorder.releases(include_prereleases=True)
    if every_listing:  # every stable release: the span and what status's search visits
        source.prefetch([r for r in releases if not r.prerelease])
    newest = recorder.newest_listing()
    target = recorder.resolve(to_release, allow_prerelease=allow_prerelease)
    check_target(target.version)
    upper = recorder.resolve(from_release or newest.ref, allow_prerelease=allow_prerelease)
    if upper.version < target.version:
        raise BadInputError(
            f"--from-release {upper.release} ({upper.version}) is older than --to-release "
            f"{target.release} ({target.version}): a bundle covers downgrades from "
            "--from-release down to --to-release"
        )
    states = _bundle_states(recorder, releases, target, upper, every_listing, renamed)
    # newest state first: its plan reads nearly every file, in one batch; later ones re-use them
    for state in sorted(states, key=lambda versions: max(versions, default=0), reverse=True):
        applied = sorted(state)
        if not applied:
            continue
        current = applied[-1]
        if current > target.version:  # downgrade --to-release: what the plan reads
            read_downgrade(recorder, applied, target)
            recorder.place_version(current, budget=0)
        if every_listing:  # status: where the version sits, and orphan rows
            recorder.place_version(current)
            for version in applied:
                if version not in newest.versions:
                    recorder.place_version(version)
    header = BundleHeader(
        repository=recorder.repo,
        migrations_path=recorder.migrations_path,
        to_release=target.release,
        to_version=target.version,
        from_release=upper.release,
        from_version=upper.version,
        newest_release=newest.ref,
        made_from=made_from,
    )
    return write_bundle(output, header, recording), header


def _bundle_states(
    recorder: ReleaseResolver,
    releases: Sequence[Release],
    target: Resolution,
    upper: Resolution,
    every_listing: bool,
    renamed: Mapping[int, Sequence[str]],
) -> set[frozenset[int]]:
    """The version tables a bundle from ``upper`` down to ``target`` covers."""
    from resolver.bundle import stable_between

    low = recorder.release(target.release, allow_prerelease=True)
    high = recorder.release(upper.release, allow_prerelease=True)
    span = stable_between(releases, low, high)
    # releases that shipped a renamed or deleted version the target lacks: a database at or below
    # --from-release that ran one holds an orphan row whose down only that release has
    at_or_below = {r.tag for r in releases if r.version <= high.version}
    shipped = [
        tag
        for version, shipped_in in renamed.items()
        if version not in target.listing.versions
        for tag in shipped_in
        if tag in at_or_below
    ]
    states: set[frozenset[int]] = {upper.listing.versions}
    for tag in dict.fromkeys([*(r.tag for r in span if every_listing), *shipped]):
        states.add(recorder.listing(tag).versions)
    return states

"""Plain text over resolver values, as ``cli.py`` prints it (no typer here): the table and notes
of ``releases --versions``, the summary of a written bundle with the requests it cost, and the
outcome of pinning a compose file's images.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # types only: each command imports just what it uses
    from pathlib import Path

    from resolver.bundle import BundleHeader, WrittenBundle
    from resolver.images import PinResult
    from resolver.models import ReleaseHistory, ReleaseRecord
    from resolver.source import ReleaseSource

__all__ = ["bundle_summary", "history_notes", "history_table", "pin_outcome", "requests_spent"]


def history_table(records: Sequence[ReleaseRecord]) -> list[str]:
    """``releases --versions``: one line per release (``?``: not listed, ``-``: none)."""
    lines = [f"{'release':<11} {'date':<20}  {'version':<14}  files"]
    for r in records:
        listed = r.source != "unlisted"
        version = f"{r.version:014d}" if r.version is not None else ("-" if listed else "?")
        files = str(r.files) if r.files is not None else "?"
        date = r.date or ("-" if listed else "?")
        lines.append(f"{r.release:<11} {date:<20}  {version:<14}  {files}")
    return lines


def history_notes(history: ReleaseHistory, *, bundle: bool, offline: bool) -> list[str]:
    """What the table of ``history`` lacks, and why: tags moved or gone since the release index
    was made, releases not listed; ``bundle``/``offline``: where it was read from."""
    notes = []
    if history.moved:
        notes.append(
            f"note: {_some(history.moved)} moved since the release index was made: listed afresh"
        )
    if history.gone:
        notes.append(f"note: {_some(history.gone)} in the release index no longer exist: left out")
    if history.unlisted:
        if bundle:
            how = "the bundle holds no listing of them"
        elif offline:
            how = "not in the cache; run once without --offline"
        else:
            how = (
                "each costs about 2 API requests without a token; set GH_TOKEN to list them "
                "all (a hundred per request), or read a clone with --git-dir DIR"
            )
        notes.append(f"note: {_some(history.unlisted)} not listed ({how})")
    if bundle and any(r.date is None for r in history.records):
        notes.append(
            "note: a bundle holds no commit dates: only the releases the packaged release "
            "index confirms have one ('-')"
        )
    return notes


def _some(tags: Sequence[str], shown: int = 5) -> str:
    """``3 release(s) (v1, v2, v3)``: a count and the first few names."""
    names = ", ".join(tags[:shown]) + (", ..." if len(tags) > shown else "")
    return f"{len(tags)} release(s) ({names})"


def requests_spent(source: ReleaseSource) -> dict[str, int] | None:
    """What a GitHub-backed source sent; ``None`` for a local clone."""
    from resolver.service import Resolver

    if not isinstance(source, Resolver):
        return None
    stats = source.stats
    counts = {
        "core": stats.core,
        "not_modified": stats.not_modified,
        "raw": stats.raw,
        "graphql": stats.graphql,
    }
    return {**counts, "total": sum(counts.values())}


def bundle_summary(
    written: WrittenBundle, header: BundleHeader, requests: dict[str, int] | None, api_url: str
) -> list[str]:
    """What ``bundle`` wrote, what it covers and holds, what it cost, and how to use it."""
    lines = [
        f"wrote {written.path}: {written.size:,} bytes, sha256 {written.sha256}",
        f"covers:   downgrades to {header.to_release} ({header.to_version}) of databases at "
        f"or below {header.from_release} ({header.from_version})",
        f"holds:    {len(written.releases)} release listings ({written.trees} distinct "
        f"trees), {written.blobs} files ({written.blob_bytes:,} bytes), the tag list",
    ]
    if requests is not None:
        spent = ", ".join(f"{k} {v}" for k, v in requests.items() if k != "total")
        lines.append(f"requests: {requests['total']} to {api_url} ({spent})")
    lines.append(
        f"use it:   hatchet-schema downgrade --to-release {header.to_release} "
        f"--bundle {written.path} --dry-run"
    )
    return lines


def pin_outcome(result: PinResult, compose_file: Path, release: str) -> str:
    """The line after ``compose_file``'s images were pinned to ``release`` (not a dry run)."""
    if result.changed:
        return (
            f"pinned {len(result.changes)} Hatchet image reference(s) in {compose_file} "
            f"to {release} (original kept as {result.backup})"
        )
    if result.pinned_images:
        names = ", ".join(result.pinned_images)
        return f"{compose_file}: {names} already pinned to {release}; nothing changed"
    return f"{compose_file}: no Hatchet image was pinned"

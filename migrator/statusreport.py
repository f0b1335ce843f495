"""What ``status`` shows: the database as :func:`migrator.commands.read_status` read it, judged
against the migrations in force, as the JSON object of ``status --json`` or lines for a person.

Where the version sits among releases comes from ``resolver`` (through ``cli.py``), already
turned into strings and plain JSON values: this module does not know releases.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from migrator.commands import DatabaseStatus
from migrator.profile import Profile

__all__ = ["StatusReport"]


@dataclass(frozen=True)
class StatusReport:
    """``status``'s findings, ready to show."""

    db: DatabaseStatus
    known: frozenset[int]
    """The versions of the migrations in force (the newest release's, or --migrations-dir's)."""
    known_from: str
    """Where ``known`` comes from: a ref or a directory."""
    releases: Sequence[str] = ()
    """The releases whose last migration is the current version."""
    release_range: Mapping[str, Any] | None = None
    """Where the current version falls among releases, as JSON (None: not looked up)."""
    place: str = "-"
    """The same, for a person."""
    shipped: Mapping[int, Sequence[str]] = field(default_factory=dict)
    """The releases that shipped each orphan row's version, where known."""

    @property
    def orphans(self) -> list[int]:
        """Applied versions the migrations in force no longer have (renamed or deleted since, or
        from a pre-release): goose's down-to stops at them."""
        return [v for v in self.db.applied if v not in self.known]

    def to_json(self) -> dict[str, Any]:
        db = self.db
        return {
            "current_version": db.current,
            "releases": list(self.releases),
            "release_range": dict(self.release_range) if self.release_range is not None else None,
            "orphans": self.orphans,
            "orphans_judged_against": self.known_from,
            "orphans_shipped_in": {str(v): list(tags) for v, tags in self.shipped.items()},
            "applied": len(db.applied),
            "other_sessions": [
                {
                    "pid": s.pid,
                    "user": s.user,
                    "application_name": s.application_name,
                    "client_addr": s.client_addr,
                    "state": s.state,
                }
                for s in db.sessions
            ],
            "rehearsal_leftovers": [left.to_json() for left in db.leftovers],
            "interrupted_run": [
                {
                    "version": v,
                    "describe": db.interrupted.describe(v),
                    "statements": [e.to_json() for e in db.interrupted.of(v)],
                }
                for v in db.interrupted.versions()
            ],
        }

    def lines(self, profile: Profile) -> list[str]:
        """The text of ``status``; ``profile`` says what became of an orphan version."""
        db = self.db
        out = [
            f"current version: {db.current}",
            f"release(s):      {self.place}",
            f"applied rows:    {len(db.applied)}",
        ]
        orphans = self.orphans
        if orphans:
            out.append(f"orphan rows:     {len(orphans)} (applied, not in {self.known_from})")
            for v in orphans:
                where = self.shipped.get(v)
                note = f" (shipped in {', '.join(where)})" if where else " (no release has it)"
                out.append(f"  {v}{note if v in self.shipped else ''}{_orphan_fate(v, profile)}")
        else:
            out.append(f"orphan rows:     none (judged against {self.known_from})")
        if db.sessions:
            out.append(f"other sessions:  {len(db.sessions)} connected to this database")
            for s in db.sessions:
                out.append(
                    f"  pid {s.pid} {s.application_name or '-'} {s.client_addr or 'local'} "
                    f"{s.state or ''}".rstrip()
                )
        else:
            out.append("other sessions:  none")
        for v in db.interrupted.versions():
            out.append(f"interrupted run: {db.interrupted.describe(v)}")
            out.append(
                "  a NO TRANSACTION step was stopped part-way; the next downgrade goes on with "
                "the statements not yet applied (use the same options as the stopped run)"
            )
        if db.leftovers:
            out.append(f"rehearsal copies: {len(db.leftovers)} scratch database(s) on this server")
            out.extend(f"  {left.describe()}" for left in db.leftovers)
        return out


def _orphan_fate(version: int, profile: Profile) -> str:
    """What the profile knows of an orphan version: renamed (to what) or deleted upstream."""
    renamed = profile.renamed.get(version)
    became = renamed.became if renamed else profile.rewritten_ids.get(version)
    if became:
        return f"; renamed upstream to {became}, a downgrade reverts it once"
    if renamed:
        return f"; deleted upstream, a downgrade reverts it with {renamed.file}"
    return ""

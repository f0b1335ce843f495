"""Other sessions on the database, as rows of ``pg_stat_activity``: one value for the live-session
check (:func:`migrator.database.other_sessions`), the holders of goose's lock
(:mod:`migrator.lockholders`) and the sessions a statement waits for (:mod:`migrator.lockwait`),
and the ways a message names one.

PostgreSQL does not record when a lock was granted: an advisory lock lives as long as its
session, so a holder is dated by its session start; a table or row lock lives as long as its
transaction, so a blocker is dated by its state and its transaction start.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["ACTIVITY_COLUMNS", "Session", "clock", "duration"]

# The columns Session.from_row reads, in its order, from pg_stat_activity as ``a``.
ACTIVITY_COLUMNS = (
    "a.pid, a.usename, a.application_name, host(a.client_addr), a.state, a.backend_start, "
    "a.state_change, a.xact_start, now()"
)


def clock(moment: datetime) -> str:
    """``2026-08-21 12:00:01 UTC``: the server's time, in the session's time zone."""
    zone = moment.tzname()
    return moment.strftime("%Y-%m-%d %H:%M:%S") + (f" {zone}" if zone else "")


def duration(seconds: float) -> str:
    """``12 s``, ``3 min``, ``2.5 h``."""
    seconds = max(seconds, 0.0)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@dataclass(frozen=True)
class Session:
    """A client session; the fields PostgreSQL hides from this role are None."""

    pid: int
    user: str | None
    application_name: str
    """'' when the client set none."""
    client_addr: str | None
    """None: a local (Unix-domain socket) connection."""
    state: str | None
    backend_start: datetime | None = None
    state_change: datetime | None = None
    xact_start: datetime | None = None
    observed_at: datetime | None = None
    """The server's now() when the row was read: what the ages above are measured against."""

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Session:
        """A row of :data:`ACTIVITY_COLUMNS`."""
        pid, user, app, addr, state, started, changed, xact, now = row
        return cls(int(pid), user, app or "", addr, state, started, changed, xact, now)

    def who(self) -> str:
        """``pid 42 (application hatchet-migrate, user hatchet, from 10.0.0.5)``"""
        app = self.application_name or "(none)"
        where = self.client_addr or "local socket"
        return f"pid {self.pid} (application {app}, user {self.user or '?'}, from {where})"

    def _at(self, moment: datetime) -> str:
        if self.observed_at is None:
            return clock(moment)
        return f"{clock(moment)} ({duration((self.observed_at - moment).total_seconds())} ago)"

    def describe(self) -> str:
        """``<who>, session started <when>, <state>``: how long it has been connected (a
        session-level lock, like goose's, is held as long)."""
        text = self.who()
        if self.backend_start is not None:
            text += f", session started {self._at(self.backend_start)}"
        return f"{text}, {self.state}" if self.state else text

    def describe_blocking(self) -> str:
        """``<who>: <state> since <when>, transaction open since <when>``: for a holder of a
        transaction's lock (a table or row lock is held until the transaction ends)."""
        text = self.who()
        if self.state:
            text += f": {self.state}"
            if self.state_change is not None:
                text += f" since {self._at(self.state_change)}"
        if self.xact_start is not None:
            text += f", transaction open since {self._at(self.xact_start)}"
        return text

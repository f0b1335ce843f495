"""The downgrade and status workflows as plain functions over dataclasses (no typer, no GitHub).

``cli.py`` parses the command line, resolves the target release and renders; everything in
between lives here: read the database, pick the versions to revert, get their files, plan,
check the sessions, back up, run. :func:`prepare_downgrade` reads and plans (read-only);
:func:`execute_downgrade` runs what was prepared; :func:`read_status` reads what ``status``
shows. The release side comes in through :class:`MigrationSupplier`, which ``cli.py`` implements
over ``resolver`` (the contract lets only ``cli.py`` import both packages) and which
:class:`DirectorySupplier` implements for ``--migrations-dir``: so these functions are tested
without a terminal and without GitHub.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from migrator.catalog import ConnectionCatalog
from migrator.database import APPLICATION_NAME, connect, other_sessions
from migrator.errors import BadInputError
from migrator.journal import Interrupted, read_journal
from migrator.plan import Plan
from migrator.planner import PlanOptions, build_plan, versions_to_revert
from migrator.profile import Catalog, Profile
from migrator.rehearsal import Leftover, find_leftovers
from migrator.runner import (
    DEFAULT_DDL_LOCK_RETRIES,
    DEFAULT_DDL_LOCK_TIMEOUT,
    DEFAULT_STATEMENT_TIMEOUT,
    EventCallback,
    NoticeCallback,
    RunResult,
    WaitCallback,
    refuse_sessions,
    run_plan,
)
from migrator.sessions import Session
from migrator.sources import MigrationFile, load_directory
from migrator.sqlscript import ScriptSettings
from migrator.versions import VersionRow, applied_versions, current_version, read_version_rows

__all__ = [
    "DatabaseStatus",
    "DirectorySupplier",
    "MigrationSupplier",
    "PreparedDowngrade",
    "RunLimits",
    "SimulatedDowngrade",
    "Target",
    "execute_downgrade",
    "plan_simulated",
    "prepare_downgrade",
    "read_status",
    "refuse_below_floor",
]


class MigrationSupplier(Protocol):
    """Where the down SQL comes from."""

    def migrations(self, versions: Sequence[int]) -> tuple[Mapping[int, MigrationFile], str]:
        """The migration files (at least those of ``versions``) and a name for their source."""
        ...

    def describe_version(self, version: int) -> str:
        """The release(s) a version belongs to, for the plan's header ("" when unknown)."""
        ...


@dataclass(frozen=True)
class DirectorySupplier:
    """``--migrations-dir``: every file of a local directory, read once."""

    directory: Path

    def migrations(self, versions: Sequence[int]) -> tuple[Mapping[int, MigrationFile], str]:
        return load_directory(self.directory), str(self.directory)

    def describe_version(self, version: int) -> str:
        return ""


def refuse_below_floor(version: int, profile: Profile) -> None:
    """Below the project's first release with goose downs there is nothing to migrate down to:
    ``BadInputError`` (exit 2)."""
    if profile.floor_version is not None and 0 < version < profile.floor_version:
        raise BadInputError(
            f"version {version} is older than {profile.floor_release} ({profile.floor_version}), "
            f"the oldest release a downgrade can reach: releases before it have no goose "
            "migrations to migrate down to, and no option changes that (restore a backup or "
            "snapshot taken at that release instead)"
        )


@dataclass(frozen=True)
class Target:
    """The version to go down to; from a release, also the versions that release ships."""

    version: int
    release: str | None = None
    versions: frozenset[int] | None = None


@dataclass(frozen=True)
class RunLimits:
    """How long a run waits and what it lets pass (``downgrade``'s --lock-timeout,
    --ddl-lock-timeout, --ddl-lock-retries, --statement-timeout, --ignore-active-sessions): one
    value for the real run, the rehearsal and the ``--sql`` script alike."""

    lock_timeout: float = 300.0
    """Seconds to wait for goose's migration lock."""
    ddl_lock_timeout: float = DEFAULT_DDL_LOCK_TIMEOUT
    """PostgreSQL ``lock_timeout`` per statement (0: wait forever)."""
    ddl_lock_retries: int = DEFAULT_DDL_LOCK_RETRIES
    """How often a step that hit ``ddl_lock_timeout`` is tried again."""
    statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT
    """PostgreSQL ``statement_timeout`` per statement (0: none)."""
    ignore_active_sessions: bool = False
    """Run even when other client sessions are connected."""

    def run_options(self, *, on_wait: WaitCallback | None = None) -> dict[str, Any]:
        """``run_plan``'s keyword arguments for these limits (for :func:`execute_downgrade` and
        the rehearsal, which runs with exactly the options the real run will)."""
        return {
            "lock_timeout": self.lock_timeout,
            "ignore_active_sessions": self.ignore_active_sessions,
            "ddl_lock_timeout": self.ddl_lock_timeout,
            "ddl_lock_retries": self.ddl_lock_retries,
            "statement_timeout": self.statement_timeout,
            "on_wait": on_wait,
        }

    def script_settings(self) -> ScriptSettings:
        """What the ``--sql`` script bakes in of these limits."""
        return ScriptSettings(
            lock_wait=self.lock_timeout,
            ddl_lock_timeout=self.ddl_lock_timeout,
            statement_timeout=self.statement_timeout,
        )


@dataclass
class PreparedDowngrade:
    """Everything a downgrade needs and the operator reviews, read from the database once."""

    url: str
    target: Target
    current: int
    dbname: str
    sessions: list[Session]
    interrupted: Interrupted
    plan: Plan | None = None
    """None when there is nothing to do (the target is not below the current version)."""
    source: str = ""
    current_place: str = ""
    replan: Callable[[Sequence[VersionRow], Catalog], Plan] | None = field(default=None, repr=False)

    @property
    def nothing_to_do(self) -> bool:
        return self.plan is None

    def header(self) -> dict[str, str]:
        """The lines above the plan: where the database is, where it goes, the source, the
        sessions a real run would refuse, a stopped run's leftovers."""
        place = f" ({self.current_place})" if self.current_place else ""
        release = f" ({self.target.release})" if self.target.release else ""
        sessions = (
            f"{len(self.sessions)} other client session(s) connected: a real run refuses "
            "(exit 4) unless they are stopped or --ignore-active-sessions is given"
            if self.sessions
            else "no other client sessions"
        )
        out = {
            "current": f"{self.current}{place}",
            "target": f"{self.target.version}{release}",
            "source": self.source,
            "sessions": sessions,
        }
        for version in self.interrupted.versions():
            out["stopped run"] = (
                f"{self.interrupted.describe(version)}; the run goes on with the rest"
            )
        return out


def prepare_downgrade(
    url: str,
    target: Target,
    supplier: MigrationSupplier,
    *,
    profile: Profile,
    options: PlanOptions,
) -> PreparedDowngrade:
    """Read the database (read-only) and plan the downgrade to ``target``."""
    with connect(url, read_only=True) as conn:
        rows = read_version_rows(conn)
        prepared = PreparedDowngrade(
            url=url,
            target=target,
            current=current_version(rows),
            dbname=conn.info.dbname,
            sessions=other_sessions(conn),
            interrupted=read_journal(conn),
        )
        if target.version >= prepared.current:
            return prepared
        versions = versions_to_revert(
            rows, target.version, profile=profile, target_versions=target.versions
        )
        migrations, source = supplier.migrations(versions)
        files = dict(migrations)

        def replan(now: Sequence[VersionRow], catalog: Catalog) -> Plan:
            return build_plan(
                now,
                files,
                target.version,
                source=source,
                profile=profile,
                catalog=catalog,
                options=options,
                target_versions=target.versions,
            )

        prepared.plan = replan(rows, ConnectionCatalog(conn))
    prepared.source = source
    prepared.current_place = supplier.describe_version(prepared.current)
    prepared.replan = replan
    return prepared


def refuse_live_sessions(prepared: PreparedDowngrade) -> None:
    """Exit 4 (``LockError``) before the prompt and the backup when other sessions are
    connected; the runner checks again with the lock held. Sessions of this tool are left to
    the runner, which waits for a killed run's to end before it refuses."""
    others = [s for s in prepared.sessions if s.application_name != APPLICATION_NAME]
    refuse_sessions(others, prepared.dbname)


def execute_downgrade(
    prepared: PreparedDowngrade,
    *,
    run_options: Mapping[str, Any],
    on_event: EventCallback | None = None,
    on_notice: NoticeCallback | None = None,
) -> RunResult:
    """Run the prepared plan (goose lock, sessions re-checked, the plan rebuilt and compared
    under the lock). Raises ``RunStopped`` values (step failed, lock lost, signal) that say
    where the database is; the prepared plan itself is never changed."""
    assert prepared.plan is not None and prepared.replan is not None, "nothing to run"
    return run_plan(
        prepared.url,
        prepared.plan,
        prepared.replan,
        on_event=on_event,
        on_notice=on_notice,
        **dict(run_options),
    )


@dataclass(frozen=True)
class DatabaseStatus:
    """What ``status`` reads from the database (read-only)."""

    current: int
    applied: list[int]
    sessions: list[Session]
    leftovers: list[Leftover]
    interrupted: Interrupted


def read_status(url: str) -> DatabaseStatus:
    """The version table, other sessions, rehearsal leftovers and a stopped run's journal."""
    with connect(url, read_only=True) as conn:
        rows = read_version_rows(conn)
        return DatabaseStatus(
            current=current_version(rows),
            applied=[v for v in applied_versions(rows) if v != 0],
            sessions=other_sessions(conn),
            leftovers=find_leftovers(conn),
            interrupted=read_journal(conn),
        )


@dataclass
class SimulatedDowngrade:
    """The plan for a database as goose's up from empty through a release's files leaves it
    (``--from-release``): no database is read; plan-time catalog questions get no rows."""

    rows: list[VersionRow]
    current: int
    plan: Plan | None = None
    source: str = ""
    current_place: str = ""
    catalog_lookups: int = 0


def plan_simulated(
    target: Target,
    supplier: MigrationSupplier,
    shipped: frozenset[int],
    *,
    profile: Profile,
    options: PlanOptions,
) -> SimulatedDowngrade:
    """Plan the downgrade to ``target`` from a simulated version table holding ``shipped``."""
    from migrator.simulate import SimulatedCatalog, simulated_rows

    rows = simulated_rows(shipped)
    out = SimulatedDowngrade(rows=rows, current=current_version(rows))
    if target.version >= out.current:
        return out
    versions = versions_to_revert(
        rows, target.version, profile=profile, target_versions=target.versions
    )
    migrations, out.source = supplier.migrations(versions)
    catalog = SimulatedCatalog()
    out.plan = build_plan(
        rows,
        dict(migrations),
        target.version,
        source=out.source,
        profile=profile,
        catalog=catalog,
        options=options,
        target_versions=target.versions,
    )
    out.catalog_lookups = catalog.queries
    out.current_place = supplier.describe_version(out.current)
    return out

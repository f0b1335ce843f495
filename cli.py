"""hatchet-schema command line: a thin typer layer wiring ``resolver`` and ``migrator``.

This is the only module that imports both packages. Heavy modules (httpx, psycopg, rich, pglast)
are imported inside the commands so that ``--help`` stays fast.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:
    from collections.abc import Sequence

    from rich.console import Console

    from migrator.plan import Plan, Step
    from migrator.planner import PlanOptions
    from migrator.profile import Catalog, Profile
    from migrator.rehearsal import RehearsalResult
    from migrator.runner import EventCallback, Replan, RunResult
    from migrator.sources import MigrationFile
    from migrator.versions import VersionRow
    from resolver.bundle import BundleHeader, WrittenBundle
    from resolver.models import VersionPlace
    from resolver.settings import GitHubSettings
    from resolver.source import ReleaseSource

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Move a self-hosted Hatchet PostgreSQL schema back to an older release, safely.",
)

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_BLOCKED = 3

# ---------------------------------------------------------------------------------------------
# Options shared by several commands (flag > environment > default, as in CONTRACT.md).

ApiUrl = Annotated[
    str,
    typer.Option(
        "--api-url",
        envvar="GITHUB_API_URL",
        help="GitHub API base (Enterprise: https://HOST/api/v3).",
    ),
]
Token = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar=["GH_TOKEN", "GITHUB_TOKEN"],
        show_default=False,
        show_envvar=True,
        help="GitHub token (anonymous: 60 requests/hour).",
    ),
]
Repo = Annotated[str, typer.Option("--repo", envvar="HATCHET_SCHEMA_REPO", help="owner/name.")]
MigrationsPath = Annotated[
    str,
    typer.Option(
        "--migrations-path",
        envvar="HATCHET_SCHEMA_MIGRATIONS_PATH",
        help="Migrations directory inside the repository.",
    ),
]
CacheDir = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir",
        envvar="HATCHET_SCHEMA_CACHE_DIR",
        show_default=False,
        help="Cache directory [default: the user cache dir].",
    ),
]
Offline = Annotated[
    bool,
    typer.Option(
        "--offline",
        envvar="HATCHET_SCHEMA_OFFLINE",
        help="Read only the cache; a miss is an error.",
    ),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="DATABASE_URL",
        show_default=False,
        help="PostgreSQL URL of the Hatchet database.",
    ),
]
JsonOut = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
BundleFile = Annotated[
    Path | None,
    typer.Option(
        "--bundle",
        metavar="FILE",
        show_default=False,
        help="Read tags, listings and files from this bundle (see `bundle`); no network.",
    ),
]
GitDir = Annotated[
    Path | None,
    typer.Option(
        "--git-dir",
        metavar="DIR",
        show_default=False,
        help="Read tags, listings and files from this local clone (bare or not), not the API.",
    ),
]

DEFAULT_API_URL = "https://api.github.com"
DEFAULT_REPO = "hatchet-dev/hatchet"
DEFAULT_MIGRATIONS_PATH = "cmd/hatchet-migrate/migrate/migrations"


# ---------------------------------------------------------------------------------------------
# Error handling: every expected failure is one line on stderr and an exit code.


def _fail(message: str, code: int) -> NoReturn:
    from migrator.database import scrub_message  # no password, in any form, in any message

    typer.echo(scrub_message(f"error: {message}"), err=True)
    raise typer.Exit(code)


@contextmanager
def _errors() -> Iterator[None]:
    """Turn the packages' error values into one clear message and the contract's exit code."""
    from migrator.database import scrubbed_output
    from migrator.errors import MigratorError
    from resolver.errors import ResolverError

    try:
        with scrubbed_output():  # stdout/stderr (echo, rich, JSON) never carry a password
            yield
    except (MigratorError, ResolverError) as exc:
        _fail(exc.message, exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted", 130)


def _settings(
    api_url: str,
    token: str | None,
    repo: str,
    migrations_path: str,
    cache_dir: Path | None,
    offline: bool,
) -> GitHubSettings:
    from resolver.settings import GitHubSettings, default_cache_dir

    return GitHubSettings(
        api_url=api_url,
        token=token or None,
        repo=repo,
        migrations_path=migrations_path.strip("/"),
        cache_dir=cache_dir or default_cache_dir(),
        offline=offline,
    )


def _with_source(
    settings: GitHubSettings, bundle_file: Path | None, git_dir: Path | None
) -> GitHubSettings:
    """``settings`` reading from a bundle or a local clone instead of the API, when asked."""
    import dataclasses

    if bundle_file is not None and git_dir is not None:
        _fail("give at most one of --bundle and --git-dir", EXIT_BAD_INPUT)
    return dataclasses.replace(settings, bundle=bundle_file, git_dir=git_dir)


def _resolver(settings: GitHubSettings) -> ReleaseSource:
    """The GitHub API, or the bundle / local clone the settings name (resolver.source)."""
    from resolver.source import open_source

    return open_source(settings)


def _print_json(obj: Any) -> None:
    from migrator.database import scrub_json  # before json.dumps escapes anything

    typer.echo(json.dumps(scrub_json(obj), indent=2, default=str))


def _require_database_url(url: str | None) -> str:
    if not url:
        _fail("no database: pass --database-url or set DATABASE_URL", EXIT_BAD_INPUT)
    return url


def _parse_version(text: str) -> int:
    if not text.isdigit():
        _fail(f"--to-version must be a goose version number, got {text!r}", EXIT_BAD_INPUT)
    return int(text)


# ---------------------------------------------------------------------------------------------
# resolve / releases


@app.command()
def resolve(
    release: Annotated[str, typer.Argument(help="A release tag, e.g. v0.71.0.")],
    json_out: JsonOut = False,
    allow_prerelease: Annotated[
        bool, typer.Option("--allow-prerelease", help="Accept -alpha/-rc/... tags.")
    ] = False,
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
    repo: Repo = DEFAULT_REPO,
    migrations_path: MigrationsPath = DEFAULT_MIGRATIONS_PATH,
    cache_dir: CacheDir = None,
    offline: Offline = False,
    bundle_file: BundleFile = None,
    git_dir: GitDir = None,
) -> None:
    """Print the release's target migration version (its newest migration file)."""
    with _errors():
        settings = _with_source(
            _settings(api_url, token, repo, migrations_path, cache_dir, offline),
            bundle_file,
            git_dir,
        )
        with _resolver(settings) as resolver:
            resolution = resolver.resolve(release, allow_prerelease=allow_prerelease)
        if json_out:
            _print_json(resolution.to_json())
        else:
            typer.echo(f"{resolution.version:014d}")


@app.command()
def releases(
    include_prereleases: Annotated[
        bool, typer.Option("--include-prereleases", help="List pre-release tags too.")
    ] = False,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most N.")] = None,
    json_out: JsonOut = False,
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
    repo: Repo = DEFAULT_REPO,
    migrations_path: MigrationsPath = DEFAULT_MIGRATIONS_PATH,
    cache_dir: CacheDir = None,
    offline: Offline = False,
    bundle_file: BundleFile = None,
    git_dir: GitDir = None,
) -> None:
    """List stable releases, newest first."""
    with _errors():
        settings = _with_source(
            _settings(api_url, token, repo, migrations_path, cache_dir, offline),
            bundle_file,
            git_dir,
        )
        with _resolver(settings) as resolver:
            found = resolver.releases(include_prereleases=include_prereleases)
        if limit is not None:
            found = found[:limit]
        if json_out:
            _print_json(
                [{"release": r.tag, "prerelease": r.prerelease, "commit": r.commit} for r in found]
            )
        else:
            for r in found:
                typer.echo(r.tag)


# ---------------------------------------------------------------------------------------------
# status


@app.command()
def status(
    database_url: DatabaseUrl = None,
    json_out: JsonOut = False,
    migrations_dir: Annotated[
        Path | None,
        typer.Option("--migrations-dir", help="Judge orphans against a local directory."),
    ] = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
    repo: Repo = DEFAULT_REPO,
    migrations_path: MigrationsPath = DEFAULT_MIGRATIONS_PATH,
    cache_dir: CacheDir = None,
    offline: Offline = False,
    bundle_file: BundleFile = None,
    git_dir: GitDir = None,
) -> None:
    """Show the database's goose version, its release(s), orphan rows and other sessions."""
    with _errors():
        from migrator.database import connect, other_sessions
        from migrator.rehearsal import find_leftovers
        from migrator.versions import applied_versions, current_version, read_version_rows

        url = _require_database_url(database_url)
        with connect(url, read_only=True) as conn:
            rows = read_version_rows(conn)
            sessions = other_sessions(conn)
            leftovers = find_leftovers(conn)  # scratch databases of rehearsals
        current = current_version(rows)
        applied = [v for v in applied_versions(rows) if v != 0]

        place: VersionPlace | None = None
        shipped: dict[int, list[str]] = {}
        if migrations_dir is not None:
            from migrator.sources import load_directory

            known = frozenset(load_directory(migrations_dir))
            known_from = str(migrations_dir)
        else:
            settings = _with_source(
                _settings(api_url, token, repo, migrations_path, cache_dir, offline),
                bundle_file,
                git_dir,
            )
            with _resolver(settings) as resolver:
                place = resolver.place_version(current)
                newest = resolver.newest_listing()
                known, known_from = newest.versions, newest.ref
                for v in applied:
                    if v not in known:
                        shipped[v] = list(resolver.place_version(v).shipped_in)
        # An orphan row is an applied version the migrations in force no longer have (renamed or
        # deleted since, or from a pre-release): goose's down-to stops at it.
        orphans = [v for v in applied if v not in known]

        if json_out:
            _print_json(
                {
                    "current_version": current,
                    "releases": list(place.releases) if place else [],
                    "release_range": place.to_json() if place else None,
                    "orphans": orphans,
                    "orphans_judged_against": known_from,
                    "orphans_shipped_in": {str(v): tags for v, tags in shipped.items()},
                    "applied": len(applied),
                    "other_sessions": [
                        {
                            "pid": s.pid,
                            "user": s.user,
                            "application_name": s.application_name,
                            "client_addr": s.client_addr,
                            "state": s.state,
                        }
                        for s in sessions
                    ],
                    "rehearsal_leftovers": [left.to_json() for left in leftovers],
                }
            )
            return
        typer.echo(f"current version: {current}")
        typer.echo(f"release(s):      {place.describe() if place else '-'}")
        typer.echo(f"applied rows:    {len(applied)}")
        if orphans:
            typer.echo(f"orphan rows:     {len(orphans)} (applied, not in {known_from})")
            for v in orphans:
                where = shipped.get(v)
                note = f" (shipped in {', '.join(where)})" if where else " (no release has it)"
                typer.echo(f"  {v}{note if v in shipped else ''}{_orphan_fate(v)}")
        else:
            typer.echo(f"orphan rows:     none (judged against {known_from})")
        if sessions:
            typer.echo(f"other sessions:  {len(sessions)} connected to this database")
            for s in sessions:
                typer.echo(
                    f"  pid {s.pid} {s.application_name or '-'} {s.client_addr or 'local'} "
                    f"{s.state or ''}".rstrip()
                )
        else:
            typer.echo("other sessions:  none")
        if leftovers:
            typer.echo(f"rehearsal copies: {len(leftovers)} scratch database(s) on this server")
            for left in leftovers:
                typer.echo(f"  {left.describe()}")


def _orphan_fate(version: int) -> str:
    """What the profile knows of an orphan version: renamed (to what) or deleted upstream."""
    from migrator.hatchet.profile import PROFILE

    renamed = PROFILE.renamed.get(version)
    became = renamed.became if renamed else PROFILE.rewritten_ids.get(version)
    if became:
        return f"; renamed upstream to {became}, a downgrade reverts it once"
    if renamed:
        return f"; deleted upstream, a downgrade reverts it with {renamed.file}"
    return ""


# ---------------------------------------------------------------------------------------------
# downgrade


def _remote_migrations(
    resolver: ReleaseSource,
    from_ref: str | None,
    versions: list[int],
    profile: Profile,
) -> tuple[dict[int, MigrationFile], str]:
    """Fetch from GitHub the files of every version to revert; returns them and the ref used.

    Versions the profile knows as renamed or deleted come from the release that shipped them
    (their file is in no newer release); the rest from one source ref.
    """
    from migrator.sources import collect
    from resolver.errors import ResolverError

    orphans = [v for v in versions if v in profile.renamed]
    wanted_versions = [v for v in versions if v not in profile.renamed]
    if from_ref:
        listing = resolver.listing(from_ref)
    else:
        try:
            listing = resolver.find_source(wanted_versions or versions, budget=10)
        except ResolverError as exc:
            if exc.exit_code != EXIT_BLOCKED:
                raise
            # Some versions are in no release (orphan rows): plan from the newest release and
            # let the planner block exactly those steps.
            listing = resolver.newest_listing()
    needed = set(versions) | profile.reads_for(versions)
    wanted = [f for f in listing.files if f.version in needed]
    contents = resolver.fetch_files(listing, [f.name for f in wanted])
    via = f" from {resolver.origin}" if resolver.origin else ""  # a bundle or a local clone
    source = f"{listing.ref} ({listing.commit[:12]}){via}"
    found = collect(contents, origin=source, blob_shas={f.name: f.sha for f in wanted})
    for version in orphans:
        if version in found:
            continue
        hit = resolver.find_file(version, profile.renamed[version].shipped_in, budget=10)
        if hit is None:
            continue
        older, item = hit
        data = resolver.fetch_files(older, [item.name])
        origin = f"{older.ref} ({older.commit[:12]}){via}"
        found.update(collect(data, origin=origin, blob_shas={item.name: item.sha}))
    return found, source


@app.command()
def downgrade(
    to_release: Annotated[
        str | None, typer.Option("--to-release", help="Target release tag, e.g. v0.71.0.")
    ] = None,
    to_version: Annotated[
        str | None, typer.Option("--to-version", help="Target goose version.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Change nothing; print the plan.")
    ] = False,
    sql: Annotated[bool, typer.Option("--sql", help="With --dry-run: print the SQL.")] = False,
    json_out: JsonOut = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    from_ref: Annotated[
        str | None, typer.Option("--from-ref", help="Git ref to take the down SQL from.")
    ] = None,
    migrations_dir: Annotated[
        Path | None,
        typer.Option("--migrations-dir", help="Take migrations from a local directory."),
    ] = None,
    lock_timeout: Annotated[
        float,
        typer.Option(
            "--lock-timeout",
            min=0,
            metavar="SECONDS",
            help="Seconds to wait for goose's migration lock, the advisory lock every "
            "hatchet-migrate takes (300, as hatchet-migrate waits); not PostgreSQL's "
            "lock_timeout, which is --ddl-lock-timeout.",
        ),
    ] = 300.0,
    ddl_lock_timeout: Annotated[
        float,
        typer.Option(
            "--ddl-lock-timeout",
            min=0,
            metavar="SECONDS",
            help="PostgreSQL lock_timeout for each statement of a step (0: wait forever); a "
            "step that hits it is rolled back and retried, naming the session in its way.",
        ),
    ] = 5.0,
    ddl_lock_retries: Annotated[
        int,
        typer.Option(
            "--ddl-lock-retries",
            min=0,
            metavar="N",
            help="How often a step that hit --ddl-lock-timeout is retried (with backoff).",
        ),
    ] = 5,
    statement_timeout: Annotated[
        float,
        typer.Option(
            "--statement-timeout",
            min=0,
            metavar="SECONDS",
            help="PostgreSQL statement_timeout for each statement (0: none, as hatchet-migrate).",
        ),
    ] = 0.0,
    ignore_active_sessions: Annotated[
        bool,
        typer.Option(
            "--ignore-active-sessions", help="Run even when other sessions are connected."
        ),
    ] = False,
    backup: Annotated[
        Path | None,
        typer.Option("--backup", help="pg_dump --format=custom to FILE before changing."),
    ] = None,
    compose_file: Annotated[
        Path | None,
        typer.Option("--compose-file", help="Pin Hatchet image tags in this compose file."),
    ] = None,
    allow_prerelease: Annotated[
        bool, typer.Option("--allow-prerelease", help="Accept a pre-release target.")
    ] = False,
    no_patches: Annotated[
        bool,
        typer.Option(
            "--no-patches",
            help="Run upstream's downs exactly as they are (broken ones fail as upstream's do): "
            "no patches, no data fixes, no enum rebuilds.",
        ),
    ] = False,
    trust_go_ports: Annotated[
        bool,
        typer.Option(
            "--trust-go-ports",
            help="Run a Go port even when the source file's SHA differs from the one it was "
            "written for.",
        ),
    ] = False,
    skip_orphan: Annotated[
        list[int] | None,
        typer.Option(
            "--skip-orphan",
            metavar="VERSION",
            help="Delete just this orphan row, running no down (repeatable).",
        ),
    ] = None,
    rehearse: Annotated[
        str | None,
        typer.Option(
            "--rehearse",
            metavar="schema|data",
            show_default=False,
            help="First run the exact plan on a scratch copy of the database (schema: the "
            "schema and the goose version table; data: everything), then drop the copy; the "
            "real run starts only if it passed. With --dry-run only the rehearsal runs.",
        ),
    ] = None,
    rehearse_url: Annotated[
        str | None,
        typer.Option(
            "--rehearse-url",
            envvar="HATCHET_SCHEMA_REHEARSE_URL",
            show_default=False,
            help="Server for the scratch database (a URL whose database the scratch one is "
            "created through, e.g. .../postgres) [default: the database's own server].",
        ),
    ] = None,
    database_url: DatabaseUrl = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
    repo: Repo = DEFAULT_REPO,
    migrations_path: MigrationsPath = DEFAULT_MIGRATIONS_PATH,
    cache_dir: CacheDir = None,
    offline: Offline = False,
    bundle_file: BundleFile = None,
    git_dir: GitDir = None,
) -> None:
    """Revert every applied migration newer than the target, newest first (goose down-to)."""
    from migrator.planner import PlanOptions

    if (to_release is None) == (to_version is None):
        _fail("give exactly one of --to-release and --to-version", EXIT_BAD_INPUT)
    if sql and not dry_run:
        _fail("--sql prints what would run; use it with --dry-run", EXIT_BAD_INPUT)
    if compose_file is not None and to_release is None:
        _fail("--compose-file pins images to a release: use it with --to-release", EXIT_BAD_INPUT)
    if compose_file is not None and not compose_file.is_file():
        _fail(f"--compose-file {compose_file}: no such file", EXIT_BAD_INPUT)
    if backup is not None and backup.exists():
        _fail(f"--backup {backup}: the file exists; choose a new name", EXIT_BAD_INPUT)
    if rehearse is not None and rehearse not in ("schema", "data"):
        _fail(f"--rehearse takes schema or data, not {rehearse!r}", EXIT_BAD_INPUT)
    if rehearse_url is not None and rehearse is None:
        _fail("--rehearse-url says where to rehearse: use it with --rehearse", EXIT_BAD_INPUT)
    if rehearse is not None and sql:
        _fail("--sql prints only the script; rehearse without --sql", EXIT_BAD_INPUT)
    with _errors():
        _downgrade(
            to_release=to_release,
            to_version=to_version,
            dry_run=dry_run,
            sql=sql,
            json_out=json_out,
            yes=yes,
            from_ref=from_ref,
            migrations_dir=migrations_dir,
            lock_timeout=lock_timeout,
            ddl_limits=(ddl_lock_timeout, ddl_lock_retries, statement_timeout),
            ignore_active_sessions=ignore_active_sessions,
            backup=backup,
            compose_file=compose_file,
            allow_prerelease=allow_prerelease,
            options=PlanOptions(
                no_patches=no_patches,
                trust_go_ports=trust_go_ports,
                skip_orphans=frozenset(skip_orphan or ()),
            ),
            database_url=database_url,
            settings=_with_source(
                _settings(api_url, token, repo, migrations_path, cache_dir, offline),
                bundle_file,
                git_dir,
            ),
            rehearse=rehearse,
            rehearse_url=rehearse_url,
        )


def _downgrade(
    *,
    to_release: str | None,
    to_version: str | None,
    dry_run: bool,
    sql: bool,
    json_out: bool,
    yes: bool,
    from_ref: str | None,
    migrations_dir: Path | None,
    lock_timeout: float,
    ddl_limits: tuple[float, int, float],
    ignore_active_sessions: bool,
    backup: Path | None,
    compose_file: Path | None,
    allow_prerelease: bool,
    options: PlanOptions,
    database_url: str | None,
    settings: GitHubSettings,
    rehearse: str | None = None,
    rehearse_url: str | None = None,
) -> None:
    from migrator.catalog import ConnectionCatalog
    from migrator.database import connect, other_sessions
    from migrator.errors import StepFailedError
    from migrator.hatchet.profile import PROFILE
    from migrator.planner import build_plan, versions_to_revert
    from migrator.runner import refuse_sessions
    from migrator.versions import current_version, read_version_rows

    url = _require_database_url(database_url)
    if rehearse_url is not None:
        from migrator.database import parse_url

        parse_url(rehearse_url)  # malformed: exit 2 before anything is read
    profile = PROFILE
    with ExitStack() as stack:
        resolver: ReleaseSource | None = None
        if to_release is not None or migrations_dir is None:
            resolver = stack.enter_context(_resolver(settings))
        target_release: str | None = None
        target_versions: frozenset[int] | None = None
        if to_release is not None and resolver is not None:
            resolution = resolver.resolve(to_release, allow_prerelease=allow_prerelease)
            target, target_release = resolution.version, resolution.release
            target_versions = resolution.listing.versions
        else:
            target = _parse_version(to_version or "")
        _refuse_below_floor(target, profile)

        conn = stack.enter_context(connect(url, read_only=True))
        rows = read_version_rows(conn)
        sessions = other_sessions(conn)
        dbname = conn.info.dbname
        current = current_version(rows)
        if target >= current:
            _nothing_to_do(current, target, json_out)
            return

        versions = versions_to_revert(
            rows, target, profile=profile, target_versions=target_versions
        )
        current_place = ""
        if migrations_dir is not None:
            from migrator.sources import load_directory

            migrations = load_directory(migrations_dir)
            source = str(migrations_dir)
        else:
            assert resolver is not None
            migrations, source = _remote_migrations(resolver, from_ref, versions, profile)
            current_place = resolver.place_version(current, budget=0).describe()

        def replan(now: Sequence[VersionRow], catalog: Catalog) -> Plan:
            return build_plan(
                now,
                migrations,
                target,
                source=source,
                profile=profile,
                catalog=catalog,
                options=options,
                target_versions=target_versions,
            )

        plan = replan(rows, ConnectionCatalog(conn))

    header = {
        "current": f"{current} ({current_place})" if current_place else str(current),
        "target": f"{target}" + (f" ({target_release})" if target_release else ""),
        "source": source,
        "sessions": (
            f"{len(sessions)} other client session(s) connected: a real run refuses (exit 4) "
            "unless they are stopped or --ignore-active-sessions is given"
            if sessions
            else "no other client sessions"
        ),
    }
    run_options = _run_options(lock_timeout, ignore_active_sessions, ddl_limits)
    if dry_run and rehearse is not None and not plan.blocked:
        if not json_out:
            _show_plan(plan, header, json_out=False, sql=False, target_release=target_release)
            if compose_file is not None and target_release:
                _pin_images(compose_file, target_release, dry_run=True)
        rehearsed = _rehearse(url, plan, replan, rehearse, rehearse_url, run_options)
        if json_out:
            _report_rehearsal(rehearsed, stderr=True)
            out = plan.to_json()
            out.update(target_release=target_release, dry_run=True, rehearsal=rehearsed.to_json())
            if not rehearsed.ok:
                out.update(error=rehearsed.error)
            _print_json(out)
        else:
            _report_rehearsal(rehearsed, stderr=False)
        if not rehearsed.ok:
            _fail(rehearsed.error or "the rehearsal failed", EXIT_FAILED)
        return
    if dry_run:
        _show_plan(plan, header, json_out=json_out, sql=sql, target_release=target_release)
        if compose_file is not None and target_release and not json_out and not sql:
            _pin_images(compose_file, target_release, dry_run=True)
        if plan.blocked:
            _fail(_blocked_message(plan, "the plan cannot run"), EXIT_BLOCKED)
        return

    if plan.blocked:
        _show_plan(plan, header, json_out=json_out, sql=False, target_release=target_release)
        _fail(_blocked_message(plan, "nothing was changed"), EXIT_BLOCKED)
    if not json_out:
        _show_plan(plan, header, json_out=False, sql=False, target_release=target_release)
    if not ignore_active_sessions:
        # Fail before the prompt and the backup; run_plan checks again with the lock held.
        refuse_sessions(sessions, dbname)
    rehearsal: RehearsalResult | None = None
    if rehearse is not None:
        rehearsal = _rehearse(url, plan, replan, rehearse, rehearse_url, run_options)
        if yes or not rehearsal.ok or not sys.stdin.isatty():  # else the prompt shows it
            _report_rehearsal(rehearsal, stderr=True)
        if not rehearsal.ok:
            if json_out:
                out = plan.to_json()
                out.update(final_version=current, target_release=target_release, dry_run=False)
                out.update(rehearsal=rehearsal.to_json(), error=rehearsal.error)
                _print_json(out)
            _fail(rehearsal.error or "the rehearsal failed", EXIT_FAILED)
    _confirm(yes, plan, _describe_database(url), rehearsal)
    if backup is not None:
        from migrator.backup import pg_dump_backup

        _progress(f"backing up the database to {backup} (pg_dump --format=custom) ...")
        size = pg_dump_backup(url, backup)
        _progress(f"backup written: {backup} ({size:,} bytes)")
    try:
        result = _run(url, plan, replan, lock_timeout, ignore_active_sessions, ddl_limits)
    except StepFailedError as exc:
        if json_out:
            # Scripts still get the plan with each step's status, and where the database is now.
            with connect(url, read_only=True) as conn:
                now = current_version(read_version_rows(conn))
            out = plan.to_json()
            out.update(final_version=now, target_release=target_release)
            out.update(dry_run=False, error=exc.message)
            if rehearsal is not None:
                out.update(rehearsal=rehearsal.to_json())
            _print_json(out)
        raise
    if json_out:
        out = plan.to_json()
        out.update(final_version=result.final_version)
        out.update(target_release=target_release, dry_run=False)
        if rehearsal is not None:
            out.update(rehearsal=rehearsal.to_json())
        _print_json(out)
    if target_release:
        if compose_file is not None:
            _pin_images(compose_file, target_release, dry_run=False)
        from resolver.images import next_steps

        for line in next_steps(target_release):
            _progress(line)


def _refuse_below_floor(target: int, profile: Profile) -> None:
    """Below the project's first release with goose downs there is nothing to migrate down to."""
    if profile.floor_version is not None and 0 < target < profile.floor_version:
        _fail(
            f"version {target} is older than {profile.floor_release} ({profile.floor_version}), "
            f"the oldest release a downgrade can reach: releases before it have no goose "
            "migrations to migrate down to",
            EXIT_BAD_INPUT,
        )


def _blocked_message(plan: Plan, outcome: str) -> str:
    """One line naming every blocking step and why (a blocked plan lists them all)."""
    steps = plan.blocked_steps
    named = "; ".join(
        f"{s.file or f'version {s.version} (no file)'}: {s.reason or 'blocked'}" for s in steps
    )
    return f"the plan is blocked by {len(steps)} step(s), {outcome}: {named}"


def _nothing_to_do(current: int, target: int, json_out: bool) -> None:
    if target > current:
        message = (
            f"target {target} is above the current version {current}: this tool only "
            "downgrades; use hatchet-migrate to upgrade"
        )
    else:
        message = f"the database is already at {current}: nothing to do"
    if json_out:
        _print_json(
            {
                "from_version": current,
                "to_version": target,
                "steps": [],
                "final_version": current,
                "message": message,
            }
        )
    else:
        typer.echo(message)


def _show_plan(
    plan: Plan, header: dict[str, str], *, json_out: bool, sql: bool, target_release: str | None
) -> None:
    if sql:
        from migrator.report import sql_script

        sys.stdout.write(sql_script(plan))
        return
    if json_out:
        out = plan.to_json()
        out.update(target_release=target_release, dry_run=True)
        _print_json(out)
        return
    from migrator.report import render_plan

    render_plan(plan, _console(stderr=False), header=header)


def _no_color() -> bool:
    return bool(os.environ.get("NO_COLOR"))


def _console(*, stderr: bool) -> Console:
    """A rich console; off a terminal it is wide enough that plan columns are never cut."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() or os.environ.get("COLUMNS") else 200
    return Console(file=stream, no_color=_no_color(), width=width, highlight=False)


def _describe_database(url: str) -> str:
    """host:port/dbname of ``url``, never the password."""
    from migrator.database import parse_url

    params = parse_url(url)
    host = params.get("host") or params.get("hostaddr") or "local socket"
    port = params.get("port") or "5432"
    return f"{host}:{port}/{params.get('dbname') or params.get('user') or '?'}"


def _confirm(
    yes: bool, plan: Plan, database: str, rehearsal: RehearsalResult | None = None
) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        _fail(
            "refusing to change the database without confirmation: stdin is not a terminal; "
            "pass --yes",
            EXIT_BAD_INPUT,
        )
    n = len(plan.steps)
    losses = [w for s in plan.steps for w in s.warnings if w.startswith("data loss:")]
    rows = [what for s in plan.steps for what in s.data_loss]
    patched = sum(1 for s in plan.steps if s.patched)
    for what in rows:
        _progress(f"rows that go: {what}")
    rehearsed = ""
    if rehearsal is not None:
        _report_rehearsal(rehearsal, stderr=True)  # its result and the time of each step
        rehearsed = (
            f" Rehearsed on a {rehearsal.mode} copy: passed, its steps took "
            f"{rehearsal.run_seconds:.2f}s."
        )
    question = (
        f"Revert {n} migration(s) on {database}, {plan.from_version} -> {plan.to_version} "
        f"({len(losses)} data-loss warning(s), {len(rows)} of them rows that do not fit the "
        f"older schema; {patched} patched step(s))?{rehearsed}"
    )
    if not typer.confirm(question, err=True):
        _fail("cancelled; nothing was changed", EXIT_BAD_INPUT)


def _progress(line: str) -> None:
    typer.echo(line, err=True)


@contextmanager
def _step_progress(plan: Plan, label: str = "") -> Iterator[EventCallback]:
    """Per-step progress on stderr: a rich bar on a terminal, plain lines otherwise; ``label``
    starts every line (``rehearsal: `` for the steps run on the scratch copy)."""
    total = len(plan.steps)
    index = {s.version: i for i, s in enumerate(plan.steps, start=1)}

    def line(event: str, step: Step, elapsed: float) -> str | None:
        n, name = index.get(step.version, 0), step.file or str(step.version)
        if event == "done":
            return f"{label}[{n}/{total}] reverted {name} in {elapsed:.2f}s"
        if event == "failed":
            return f"{label}[{n}/{total}] FAILED {name} after {elapsed:.2f}s"
        return f"{label}[{n}/{total}] reverting {name} ..." if event == "start" else None

    if not sys.stderr.isatty():

        def plain(event: str, step: Step, elapsed: float) -> None:
            text = line(event, step, elapsed)
            if text:
                _progress(text)

        yield plain
        return

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.text import Text

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=_console(stderr=True)) as bar:
        task = bar.add_task(f"{label}reverting", total=total)

        def rich_event(event: str, step: Step, elapsed: float) -> None:
            if event == "start":
                bar.update(task, description=f"{label}reverting {step.file or step.version}")
                return
            text = line(event, step, elapsed)
            if text:
                bar.console.print(Text(text, style="red" if event == "failed" else ""))
            if event == "done":
                bar.advance(task)

        yield rich_event


def _run(
    url: str,
    plan: Plan,
    replan: Replan,
    lock_timeout: float,
    ignore_active_sessions: bool,
    ddl_limits: tuple[float, int, float] = (5.0, 5, 0.0),
) -> RunResult:
    from migrator.runner import run_plan

    options = _run_options(lock_timeout, ignore_active_sessions, ddl_limits)
    started = time.monotonic()
    with _step_progress(plan) as on_event:
        result = run_plan(url, plan, replan, on_event=on_event, **options)
    done = sum(1 for s in result.steps if s.status == "done")
    _progress(
        f"done: {plan.from_version} -> {result.final_version}, {done} step(s) reverted "
        f"in {time.monotonic() - started:.1f}s"
    )
    return result


def _run_options(
    lock_timeout: float,
    ignore_active_sessions: bool,
    ddl_limits: tuple[float, int, float] = (5.0, 5, 0.0),
) -> dict[str, Any]:
    """run_plan's keyword arguments (all but on_event) for the real run and the rehearsal
    alike: the rehearsal runs with exactly the options the real run will."""
    ddl_lock_timeout, ddl_lock_retries, statement_timeout = ddl_limits
    return {
        "lock_timeout": lock_timeout,
        "ignore_active_sessions": ignore_active_sessions,
        "ddl_lock_timeout": ddl_lock_timeout,
        "ddl_lock_retries": ddl_lock_retries,
        "statement_timeout": statement_timeout,
        "on_wait": lambda wait: _progress(f"lock wait: {wait.describe()}"),
    }


def _rehearse(
    url: str,
    plan: Plan,
    replan: Replan,
    mode: str,
    server_url: str | None,
    run_options: dict[str, Any],
) -> RehearsalResult:
    """Run ``plan`` on a scratch copy (migrator.rehearsal); progress of the copy and of each
    step on stderr. ``plan`` is not changed: the rehearsal runs a copy of it."""
    from migrator.rehearsal import MODES, rehearse

    chosen = next(m for m in MODES if m == mode)
    with ExitStack() as stack:
        bar: list[EventCallback] = []

        def on_event(event: str, step: Step, elapsed: float) -> None:
            if not bar:  # the bar starts with the first step, after the copy
                bar.append(stack.enter_context(_step_progress(plan, label="rehearsal: ")))
            bar[0](event, step, elapsed)

        return rehearse(
            url,
            plan,
            replan,
            mode=chosen,
            server_url=server_url,
            run_options=run_options,
            on_event=on_event,
            on_progress=_progress,
        )


def _report_rehearsal(rehearsal: RehearsalResult, *, stderr: bool) -> None:
    for line in rehearsal.summary_lines():
        typer.echo(line, err=stderr)


def _pin_images(compose_file: Path, release: str, *, dry_run: bool) -> None:
    from resolver.images import diff, rewrite_compose_file

    result = rewrite_compose_file(compose_file, release, dry_run=dry_run)
    for warning in result.warnings:
        _progress(f"warning: {warning}")
    if dry_run:
        sys.stdout.write(diff(result.original, result.text, str(compose_file)))
    elif result.changed:
        _progress(
            f"pinned {len(result.changes)} Hatchet image reference(s) in {compose_file} "
            f"to {release} (original kept as {result.backup})"
        )
    else:
        _progress(f"{compose_file}: every Hatchet image is already pinned to {release}")


# ---------------------------------------------------------------------------------------------
# bundle


@app.command()
def bundle(
    to_release: Annotated[
        str, typer.Option("--to-release", help="The release the bundle downgrades to.")
    ],
    output: Annotated[
        Path, typer.Option("--output", metavar="FILE", help="The bundle to write (a new file).")
    ],
    from_release: Annotated[
        str | None,
        typer.Option(
            "--from-release",
            help="The newest release a database to downgrade may be at [default: the newest "
            "stable release].",
            show_default=False,
        ),
    ] = None,
    allow_prerelease: Annotated[
        bool, typer.Option("--allow-prerelease", help="Accept pre-release tags.")
    ] = False,
    listings: Annotated[
        str,
        typer.Option(
            "--listings",
            metavar="all|plan|auto",
            help="all: every release's listing from --to-release to --from-release, so status "
            "with the bundle names releases as online; plan: only those a downgrade reads "
            "(a few requests); auto: all with a token or --git-dir, plan without.",
        ),
    ] = "auto",
    json_out: JsonOut = False,
    api_url: ApiUrl = DEFAULT_API_URL,
    token: Token = None,
    repo: Repo = DEFAULT_REPO,
    migrations_path: MigrationsPath = DEFAULT_MIGRATIONS_PATH,
    cache_dir: CacheDir = None,
    offline: Offline = False,
    git_dir: GitDir = None,
) -> None:
    """Write one file holding everything a downgrade to --to-release needs (tags, listings,
    migration files), for machines without GitHub: pass it as --bundle FILE."""
    if output.exists():
        _fail(f"--output {output}: the file exists; choose a new name", EXIT_BAD_INPUT)
    if listings not in ("all", "plan", "auto"):
        _fail(f"--listings takes all, plan or auto, not {listings!r}", EXIT_BAD_INPUT)
    with _errors():
        settings = _with_source(
            _settings(api_url, token, repo, migrations_path, cache_dir, offline), None, git_dir
        )
        with _resolver(settings) as source:
            every = listings == "all" or (listings == "auto" and source.cheap_listings)
            if not every and listings == "auto":
                _progress(
                    "without a token, the bundle holds the listings a downgrade reads, not every "
                    "release's: status with it names releases less precisely (set GH_TOKEN, or "
                    "pass --listings all and wait out the rate limit, for all of them)"
                )
            written, header = _make_bundle(
                source, to_release, from_release, output, allow_prerelease, every, settings
            )
            requests = _requests_spent(source)
        from resolver.bundle import summary_json

        if json_out:
            _print_json({**summary_json(written, header), "requests": requests})
            return
        typer.echo(f"wrote {written.path}: {written.size:,} bytes, sha256 {written.sha256}")
        typer.echo(
            f"covers:   downgrades to {header.to_release} ({header.to_version}) of databases at "
            f"or below {header.from_release} ({header.from_version})"
        )
        typer.echo(
            f"holds:    {len(written.releases)} release listings ({written.trees} distinct "
            f"trees), {written.blobs} files ({written.blob_bytes:,} bytes), the tag list"
        )
        if requests is not None:
            spent = ", ".join(f"{k} {v}" for k, v in requests.items() if k != "total")
            typer.echo(f"requests: {requests['total']} to {settings.api_url} ({spent})")
        typer.echo(
            f"use it:   hatchet-schema downgrade --to-release {header.to_release} "
            f"--bundle {written.path} --dry-run"
        )


def _requests_spent(source: ReleaseSource) -> dict[str, int] | None:
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


def _make_bundle(
    source: ReleaseSource,
    to_release: str,
    from_release: str | None,
    output: Path,
    allow_prerelease: bool,
    every_listing: bool,
    settings: GitHubSettings,
) -> tuple[WrittenBundle, BundleHeader]:
    """Record what ``downgrade`` and ``status`` read for the database states a bundle for
    ``to_release`` covers, and write it.

    The states: the database holding exactly the migrations of ``from_release``, and of each
    release that shipped a renamed or deleted version (see the profile); with ``every_listing``
    also of each release from ``to_release`` to ``from_release`` (semver order). For each, the
    same resolver calls as ``downgrade --to-release`` (the target, the source release, every
    file the plan reads, renamed versions from the releases that shipped them) and, with
    ``every_listing``, ``status`` (where the version sits, orphan rows) run through a resolver
    that records what it reads; the bundle holds exactly that, so replaying it answers as the
    online run does.
    """
    from migrator.hatchet.profile import PROFILE
    from migrator.planner import versions_to_revert
    from migrator.versions import VersionRow
    from resolver.bundle import BundleHeader, record, stable_between, write_bundle

    profile = PROFILE
    recorder, recording = record(source)
    releases = recorder.releases(include_prereleases=True)
    stable = [r for r in releases if not r.prerelease]
    if every_listing:  # every stable release: the span and what status's search visits
        source.prefetch(stable)
    newest = recorder.newest_listing()
    target = recorder.resolve(to_release, allow_prerelease=allow_prerelease)
    _refuse_below_floor(target.version, profile)
    upper = recorder.resolve(from_release or newest.ref, allow_prerelease=allow_prerelease)
    if upper.version < target.version:
        _fail(
            f"--from-release {upper.release} ({upper.version}) is older than --to-release "
            f"{target.release} ({target.version}): a bundle covers downgrades from "
            "--from-release down to --to-release",
            EXIT_BAD_INPUT,
        )
    low = recorder.release(target.release, allow_prerelease=True)
    high = recorder.release(upper.release, allow_prerelease=True)
    span = stable_between(releases, low, high)
    # releases that shipped a renamed or deleted version the target lacks: a database at or below
    # --from-release that ran one holds an orphan row whose down only that release has
    at_or_below = {r.tag for r in releases if r.version <= high.version}
    shipped = [
        tag
        for old in profile.renamed.values()
        if old.version not in target.listing.versions
        for tag in old.shipped_in
        if tag in at_or_below
    ]
    states: set[frozenset[int]] = {upper.listing.versions}
    for tag in dict.fromkeys([*(r.tag for r in span if every_listing), *shipped]):
        states.add(recorder.listing(tag).versions)
    # newest state first: its plan reads nearly every file, in one batch; later ones re-use them
    for state in sorted(states, key=lambda versions: max(versions, default=0), reverse=True):
        applied = sorted(state)
        if not applied:
            continue
        rows = [VersionRow(i, v, True, None) for i, v in enumerate([0, *applied], start=1)]
        current = applied[-1]
        if current > target.version:  # downgrade --to-release: what the plan reads
            versions = versions_to_revert(
                rows, target.version, profile=profile, target_versions=target.listing.versions
            )
            _remote_migrations(recorder, None, versions, profile)
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
        made_from=source.origin or f"GitHub API {settings.api_url}",
    )
    return write_bundle(output, header, recording), header


def main() -> None:
    app()


if __name__ == "__main__":
    main()

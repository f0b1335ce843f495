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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from resolver.settings import DEFAULT_API_URL, DEFAULT_MIGRATIONS_PATH, DEFAULT_REPO

if TYPE_CHECKING:
    from collections.abc import Sequence

    from rich.console import Console

    from migrator.commands import PreparedDowngrade
    from migrator.plan import Plan, Step
    from migrator.planner import PlanOptions
    from migrator.profile import Profile
    from migrator.rehearsal import RehearsalResult
    from migrator.runner import EventCallback, Replan, RunResult
    from migrator.sources import MigrationFile
    from resolver.bundle import BundleHeader, WrittenBundle
    from resolver.images import PinResult
    from resolver.models import VersionPlace
    from resolver.release_index import ReleaseIndex
    from resolver.settings import GitHubSettings
    from resolver.source import ReleaseSource


def tool_version() -> str:
    """This tool's version: the installed distribution's, else the checkout's pyproject.toml."""
    from importlib import metadata

    try:
        return metadata.version("hatchet-schema")
    except metadata.PackageNotFoundError:
        pass
    import tomllib

    try:
        with open(Path(__file__).resolve().with_name("pyproject.toml"), "rb") as f:
            return str(tomllib.load(f)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


class _Group(TyperGroup):
    """The command group, with the root's ``--version`` on every command too."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        shared = [p for p in self.params if p.name == "version"]
        for command in self.commands.values():
            have = {p.name for p in command.params}
            command.params.extend(p for p in shared if p.name not in have)


app = typer.Typer(
    cls=_Group,
    no_args_is_help=True,
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Move a self-hosted Hatchet PostgreSQL schema back to an older release, safely.",
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"hatchet-schema {tool_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_show_version,
            is_eager=True,
            expose_value=False,  # the commands that share it (_Group) take no such argument
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    pass


# The contract's exit codes, defined here once for both packages' error categories; a signal
# (SIGINT, SIGTERM, SIGHUP) that stopped the command exits 128 + its number (130, 143, 129).
EXIT_CODES: dict[str, int] = {"failed": 1, "bad_input": 2, "blocked": 3, "locked": 4}
EXIT_FAILED, EXIT_BAD_INPUT = EXIT_CODES["failed"], EXIT_CODES["bad_input"]
EXIT_BLOCKED = EXIT_CODES["blocked"]


def exit_code_of(error: Exception) -> int:
    """The exit code of a ``MigratorError`` or ``ResolverError`` (by its category)."""
    category = getattr(error, "category", "failed")
    if category == "interrupted":
        return 128 + int(getattr(error, "signum", 2))
    return EXIT_CODES.get(category, EXIT_CODES["failed"])


# ---------------------------------------------------------------------------------------------
# Options shared by several commands (flag > environment > default, as in CONTRACT.md).

ApiUrl = Annotated[
    str,
    typer.Option(
        "--api-url",
        envvar="GITHUB_API_URL",
        metavar="URL",
        help="GitHub API base (Enterprise: https://HOST/api/v3).",
    ),
]
Token = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar=["GH_TOKEN", "GITHUB_TOKEN"],
        metavar="TOKEN",
        show_default=False,
        show_envvar=True,
        help="GitHub token (anonymous: 60 requests/hour).",
    ),
]
Repo = Annotated[
    str,
    typer.Option(
        "--repo",
        envvar="HATCHET_SCHEMA_REPO",
        metavar="OWNER/NAME",
        help="The GitHub repository Hatchet's releases come from.",
    ),
]
MigrationsPath = Annotated[
    str,
    typer.Option(
        "--migrations-path",
        envvar="HATCHET_SCHEMA_MIGRATIONS_PATH",
        metavar="PATH",
        help="Where the migrations live inside the GitHub repository (a path in the repo, "
        "not on this machine; for a local directory see --migrations-dir).",
    ),
]
CacheDir = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir",
        envvar="HATCHET_SCHEMA_CACHE_DIR",
        metavar="DIR",
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
        metavar="URL",
        show_default=False,
        help="PostgreSQL URL of the Hatchet database (postgresql://USER@HOST:PORT/DBNAME).",
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

# ---------------------------------------------------------------------------------------------
# Error handling: every expected failure is one line on stderr and an exit code.


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(_shown(f"error: {message}"), err=True)
    raise typer.Exit(code)


def _shown(message: str) -> str:
    """``message`` as it may be shown: no password, in any form, and long inputs cut short. The
    scrub comes last too: the shortening adds text ("... (N characters)") a password could be."""
    from migrator.database import scrub_message

    return scrub_message(_shorten_inputs(scrub_message(message)))


# An input longer than _LONG_INPUT characters is echoed as its first _SHOWN_CHARS and "...";
# so is any run of _LONG_RUN non-space characters (a long input echoed in part, e.g. a URL).
_LONG_INPUT = 100
_SHOWN_CHARS = 60
_LONG_RUN = 200
# What main() was given: the arguments, and the environment variables the commands read.
_inputs: list[str] = []


def _remember_inputs(args: Sequence[str]) -> None:
    _inputs.clear()
    _inputs.extend(args)
    _inputs.extend(a.partition("=")[2] for a in args if a.startswith("--") and "=" in a)
    _inputs.extend(
        value
        for name, value in os.environ.items()
        if name in ("DATABASE_URL", "GITHUB_API_URL", "GH_TOKEN", "GITHUB_TOKEN")
        or name.startswith("HATCHET_SCHEMA_")
    )


def _shorten_inputs(message: str) -> str:
    """``message`` (scrubbed, about to be shown) with every long input it echoes cut short: the
    one place that shortens, for the tool's errors and click's usage errors alike."""
    import re

    from migrator.database import scrub_message

    def short(form: str, length: int) -> str:
        return f"{form[:_SHOWN_CHARS]}... ({length} characters)"

    long_inputs = {text for text in _inputs if len(text) > _LONG_INPUT}
    for text in sorted(long_inputs, key=len, reverse=True):
        forms = {text, repr(text)[1:-1], json.dumps(text)[1:-1], scrub_message(text)}
        forms.add(json.dumps(text, ensure_ascii=False)[1:-1])
        for form in sorted(forms, key=len, reverse=True):
            message = message.replace(form, short(form, len(text)))
    return re.sub(rf"\S{{{_LONG_RUN},}}", lambda m: short(m.group(), len(m.group())), message)


@contextmanager
def _errors() -> Iterator[None]:
    """Turn the packages' error values into one clear message and the contract's exit code."""
    from migrator.database import scrubbed_output
    from migrator.errors import MigratorError
    from migrator.interrupts import signal_name, signals_raise, signum_of
    from resolver.errors import ResolverError

    try:
        # SIGTERM and SIGHUP stop the command like Ctrl-C does, with a report, not silently.
        with scrubbed_output(), signals_raise():  # no password in stdout/stderr, in any form
            yield
    except (MigratorError, ResolverError) as exc:
        _fail(exc.message, exit_code_of(exc))
    except KeyboardInterrupt as exc:
        signum = signum_of(exc)
        _fail(f"stopped by {signal_name(signum)}; nothing was changed", 128 + signum)


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
        cache_dir=_checked_path("--cache-dir", cache_dir) or default_cache_dir(),
        offline=offline,
    )


def _with_source(
    settings: GitHubSettings, bundle_file: Path | None, git_dir: Path | None
) -> GitHubSettings:
    """``settings`` reading from a bundle or a local clone instead of the API, when asked."""
    import dataclasses

    if bundle_file is not None and git_dir is not None:
        _fail("give at most one of --bundle and --git-dir", EXIT_BAD_INPUT)
    _checked_path("--bundle", bundle_file)
    _checked_path("--git-dir", git_dir)
    return dataclasses.replace(settings, bundle=bundle_file, git_dir=git_dir)


def _resolver(settings: GitHubSettings) -> ReleaseSource:
    """The GitHub API, or the bundle / local clone the settings name (resolver.source)."""
    from resolver.source import open_source

    return open_source(settings)


def _print_json(obj: Any) -> None:
    from migrator.database import scrub_json  # before json.dumps escapes anything

    if isinstance(obj, dict):  # a list (releases --json) stays a list, as scripts read it
        obj = {**obj, "tool_version": tool_version()}
    typer.echo(json.dumps(scrub_json(obj), indent=2, default=str))


def _require_database_url(url: str | None) -> str:
    if not url:
        _fail("no database: pass --database-url or set DATABASE_URL", EXIT_BAD_INPUT)
    return url


def _parse_version(text: str) -> int:
    """``--to-version``: ASCII digits (not any Unicode digit ``str.isdigit`` accepts) that fit
    the bigint goose keeps versions in."""
    from migrator.versions import BIGINT_MAX

    if not (text.isascii() and text.isdigit()):
        _fail(
            f"--to-version must be a goose version number (digits 0-9), got {text!r}",
            EXIT_BAD_INPUT,
        )
    version = int(text)
    if version > BIGINT_MAX:
        _fail(
            f"--to-version {text} is beyond PostgreSQL's bigint ({BIGINT_MAX}), where goose "
            "keeps versions: no migration can have it",
            EXIT_BAD_INPUT,
        )
    return version


def _checked_path(option: str, path: Path | None) -> Path | None:
    """``path``, unless the file system refuses to even look it up (a name too long for it, a
    loop of symbolic links): then exit 2 naming ``option``."""
    if path is not None:
        try:
            path.exists()
        except OSError as exc:
            _fail(f"{option} {path}: {exc.strerror or exc}", EXIT_BAD_INPUT)
    return path


# ---------------------------------------------------------------------------------------------
# resolve / releases


@app.command(short_help="Print a release's target migration version.")
def resolve(
    # Described in the docstring: typer would list the argument with a "<str>" placeholder.
    release: Annotated[str, typer.Argument(metavar="RELEASE", hidden=True)],
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
    """Print the target migration version of RELEASE, a release tag such as v0.71.0: the
    version of its newest migration file (.sql or .go).

    Examples:

    \b
      hatchet-schema resolve v0.71.0          # 20250813183355
      hatchet-schema resolve v0.71.0 --json   # with the file, commit and migration count
    """
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
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=1, metavar="N", show_default=False, help="At most N."),
    ] = None,
    versions: Annotated[
        bool,
        typer.Option(
            "--versions",
            help="With each release's date, target version and file count, newest first by date.",
        ),
    ] = False,
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
    """List stable releases, newest first.

    --versions: the packaged release index of hatchet-dev/hatchet answers for the releases whose
    tags it confirms; the rest are read from the source, without a token within 3 API requests
    in all (what is left is shown as ?), with GH_TOKEN a hundred per GraphQL query. --git-dir
    reads every release from the clone (dates from git); --bundle and --offline list what the
    bundle or the cache holds.

    Examples:

    \b
      hatchet-schema releases --limit 20
      hatchet-schema releases --include-prereleases --json
      hatchet-schema releases --versions --limit 10   # date, target version, files
    """
    with _errors():
        settings = _with_source(
            _settings(api_url, token, repo, migrations_path, cache_dir, offline),
            bundle_file,
            git_dir,
        )
        if versions:
            if include_prereleases:
                _fail("--versions lists stable releases only", EXIT_BAD_INPUT)
            _release_versions(settings, limit=limit, json_out=json_out)
            return
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


def _release_index(settings: GitHubSettings) -> ReleaseIndex | None:
    """The packaged release index, except with --git-dir: a clone is read whole, from git."""
    from resolver.release_index import packaged_index

    if settings.git_dir is not None:
        return None
    return packaged_index(settings.repo, settings.migrations_path)


def _release_versions(settings: GitHubSettings, *, limit: int | None, json_out: bool) -> None:
    """``releases --versions``: every stable release's date, target version and file count."""
    with _resolver(settings) as resolver:
        history = resolver.release_history(_release_index(settings))
    records = history.records[:limit] if limit is not None else history.records
    if json_out:
        _print_json([r.to_json() for r in records])
    else:
        typer.echo(f"{'release':<11} {'date':<20}  {'version':<14}  files")
        for r in records:
            listed = r.source != "unlisted"
            version = f"{r.version:014d}" if r.version is not None else ("-" if listed else "?")
            files = str(r.files) if r.files is not None else "?"
            date = r.date or ("-" if listed else "?")
            typer.echo(f"{r.release:<11} {date:<20}  {version:<14}  {files}")
    if history.moved:
        typer.echo(
            f"note: {_some(history.moved)} moved since the release index was made: listed afresh",
            err=True,
        )
    if history.gone:
        typer.echo(
            f"note: {_some(history.gone)} in the release index no longer exist: left out",
            err=True,
        )
    unlisted = history.unlisted
    if unlisted:
        if settings.bundle is not None:
            how = "the bundle holds no listing of them"
        elif settings.offline:
            how = "not in the cache; run once without --offline"
        else:
            how = (
                "each costs about 2 API requests without a token; set GH_TOKEN to list them "
                "all (a hundred per request), or read a clone with --git-dir DIR"
            )
        typer.echo(f"note: {_some(unlisted)} not listed ({how})", err=True)
    if settings.bundle is not None and any(r.date is None for r in history.records):
        typer.echo(
            "note: a bundle holds no commit dates: only the releases the packaged release "
            "index confirms have one ('-')",
            err=True,
        )


def _some(tags: Sequence[str], shown: int = 5) -> str:
    """``3 releases (v1, v2, v3)``: a count and the first few names."""
    names = ", ".join(tags[:shown]) + (", ..." if len(tags) > shown else "")
    return f"{len(tags)} release(s) ({names})"


# ---------------------------------------------------------------------------------------------
# status


@app.command(short_help="Show the database's version, release, orphan rows and sessions.")
def status(
    database_url: DatabaseUrl = None,
    json_out: JsonOut = False,
    migrations_dir: Annotated[
        Path | None,
        typer.Option(
            "--migrations-dir",
            metavar="DIR",
            show_default=False,
            help="Judge orphan rows against the migration files in this directory on this "
            "machine, not against GitHub's newest release (unlike --migrations-path, a path "
            "inside the repository).",
        ),
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
    """Show the database's goose version, its release(s), orphan rows and other sessions.
    Read-only.

    Examples:

    \b
      hatchet-schema status
      hatchet-schema status --json
      hatchet-schema status --database-url postgresql://hatchet@db:5432/hatchet
    """
    with _errors():
        from migrator.commands import read_status

        db = read_status(_require_database_url(database_url))
        current, applied, sessions = db.current, db.applied, db.sessions
        leftovers, interrupted = db.leftovers, db.interrupted

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
                newest = resolver.newest_listing()
                known, known_from = newest.versions, newest.ref
                index = _release_index(settings)
                if index is not None and resolver.check_index(index).confirmed:
                    # The index names the releases at any version for free (<= 3 requests cold
                    # and anonymous); an orphan's release is named when one ends at it.
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
                    "interrupted_run": [
                        {
                            "version": v,
                            "describe": interrupted.describe(v),
                            "statements": [e.to_json() for e in interrupted.of(v)],
                        }
                        for v in interrupted.versions()
                    ],
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
        for v in interrupted.versions():
            typer.echo(f"interrupted run: {interrupted.describe(v)}")
            typer.echo(
                "  a NO TRANSACTION step was stopped part-way; the next downgrade goes on with "
                "the statements not yet applied (use the same options as the stopped run)"
            )
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
            if exc.category != "blocked":
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


@app.command(short_help="Revert the migrations newer than a release or version.")
def downgrade(
    to_release: Annotated[
        str | None,
        typer.Option(
            "--to-release",
            metavar="RELEASE",
            show_default=False,
            help="Target release tag, e.g. v0.71.0.",
        ),
    ] = None,
    to_version: Annotated[
        str | None,
        typer.Option(
            "--to-version",
            metavar="VERSION",
            show_default=False,
            help="Target goose version (14 digits, e.g. 20250813183355).",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Change nothing; print the plan.")
    ] = False,
    sql: Annotated[
        bool, typer.Option("--sql", help="With --dry-run: print the exact SQL, as a psql script.")
    ] = False,
    json_out: JsonOut = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    from_ref: Annotated[
        str | None,
        typer.Option(
            "--from-ref",
            metavar="REF",
            show_default=False,
            help="Git tag, branch or commit of the repository to take the down SQL from "
            "[default: the newest stable release holding every version to revert].",
        ),
    ] = None,
    from_release: Annotated[
        str | None,
        typer.Option(
            "--from-release",
            metavar="RELEASE",
            show_default=False,
            help="With --dry-run: plan from a simulated database at this release (every one "
            "of its migrations applied); no database is read, not even DATABASE_URL's.",
        ),
    ] = None,
    migrations_dir: Annotated[
        Path | None,
        typer.Option(
            "--migrations-dir",
            metavar="DIR",
            show_default=False,
            help="Take the migration files from this directory on this machine instead of "
            "GitHub (--to-version then needs no network at all). Not --migrations-path, which "
            "is where the migrations live inside the GitHub repository.",
        ),
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
        typer.Option(
            "--backup",
            metavar="FILE",
            show_default=False,
            help="Write a pg_dump --format=custom backup to FILE (a new file) before changing "
            "anything.",
        ),
    ] = None,
    compose_file: Annotated[
        Path | None,
        typer.Option(
            "--compose-file",
            metavar="FILE",
            show_default=False,
            help="After the run, pin every Hatchet image in this docker compose file to the "
            "target release (the original is kept as FILE.bak; with --dry-run: the diff).",
        ),
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
            metavar="URL",
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
    """Revert every applied migration newer than the target, newest first (goose down-to).

    Without --yes a real run asks first, on a terminal: "no" exits 2 and Ctrl-C exits 130,
    and nothing is changed either way. Exit 3: the plan is blocked (each blocked step says
    what would unblock it); exit 4: locked, or other sessions are connected.

    Examples:

    \b
      hatchet-schema downgrade --to-release v0.71.0 --dry-run        # the plan
      hatchet-schema downgrade --to-release v0.71.0 --dry-run --sql  # its SQL
      hatchet-schema downgrade --to-release v0.71.0 --backup before.dump \\
          --compose-file docker-compose.yml
      hatchet-schema downgrade --to-version 20250813183355 \\
          --migrations-dir ./migrations --yes
    """
    from migrator.planner import PlanOptions

    if (to_release is None) == (to_version is None):
        _fail("give exactly one of --to-release and --to-version", EXIT_BAD_INPUT)
    if to_version is not None:
        _parse_version(to_version)  # malformed: exit 2 before anything is read
    for option, path in (
        ("--compose-file", compose_file),
        ("--backup", backup),
        ("--migrations-dir", migrations_dir),
    ):
        _checked_path(option, path)
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
    options = PlanOptions(
        no_patches=no_patches,
        trust_go_ports=trust_go_ports,
        skip_orphans=frozenset(skip_orphan or ()),
    )
    settings = _with_source(
        _settings(api_url, token, repo, migrations_path, cache_dir, offline), bundle_file, git_dir
    )
    if from_release is not None:
        _check_from_release(dry_run=dry_run, rehearse=rehearse)
        with _errors():
            _plan_from_release(
                from_release,
                to_release=to_release,
                to_version=to_version,
                sql=sql,
                json_out=json_out,
                from_ref=from_ref,
                migrations_dir=migrations_dir,
                compose_file=compose_file,
                allow_prerelease=allow_prerelease,
                options=options,
                database_ignored=bool(database_url),
                settings=settings,
            )
        return
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
            options=options,
            database_url=database_url,
            settings=settings,
            rehearse=rehearse,
            rehearse_url=rehearse_url,
        )


@dataclass
class _ReleaseSupplier:
    """The down SQL from releases (resolver), for the command layer (migrator.commands)."""

    resolver: ReleaseSource
    from_ref: str | None
    profile: Profile

    def migrations(self, versions: Sequence[int]) -> tuple[dict[int, MigrationFile], str]:
        return _remote_migrations(self.resolver, self.from_ref, list(versions), self.profile)

    def describe_version(self, version: int) -> str:
        return self.resolver.place_version(version, budget=0).describe()


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
    """Parse, resolve, render: the workflow itself is migrator.commands."""
    from migrator.commands import (
        DirectorySupplier,
        MigrationSupplier,
        Target,
        prepare_downgrade,
        refuse_live_sessions,
    )
    from migrator.errors import MigratorError, RunStopped
    from migrator.hatchet.profile import PROFILE

    url = _require_database_url(database_url)
    if rehearse_url is not None:
        from migrator.database import parse_url

        parse_url(rehearse_url)  # malformed: exit 2 before anything is read
    profile = PROFILE
    with ExitStack() as stack:
        resolver: ReleaseSource | None = None
        if to_release is not None or migrations_dir is None:
            resolver = stack.enter_context(_resolver(settings))
        if to_release is not None and resolver is not None:
            resolution = resolver.resolve(to_release, allow_prerelease=allow_prerelease)
            target = Target(
                resolution.version, resolution.release, frozenset(resolution.listing.versions)
            )
        else:
            target = Target(_parse_version(to_version or ""))
        _refuse_below_floor(target.version, profile)
        supplier: MigrationSupplier
        if migrations_dir is not None:
            supplier = DirectorySupplier(migrations_dir)
        else:
            assert resolver is not None
            supplier = _ReleaseSupplier(resolver, from_ref, profile)
        prepared = prepare_downgrade(url, target, supplier, profile=profile, options=options)
    if prepared.plan is None or prepared.replan is None:
        _nothing_to_do(prepared.current, target.version, json_out)
        return
    plan, replan, current = prepared.plan, prepared.replan, prepared.current
    target_release = target.release
    header = prepared.header()
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
        limits = (lock_timeout, ddl_limits[0], ddl_limits[2])
        _show_plan(
            plan, header, json_out=json_out, sql=sql, target_release=target_release, limits=limits
        )
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
        refuse_live_sessions(prepared)  # before the prompt and the backup
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
        result = _run(prepared, run_options)
    except MigratorError as exc:  # refused before the first step, or stopped part-way
        if json_out:
            # Scripts still get each step's status and where the database is: from the error.
            if isinstance(exc, RunStopped):
                out = replace(plan, steps=exc.steps or plan.steps).to_json()
                out.update(final_version=exc.stop.final_version, stopped=exc.stop.to_json())
            else:  # nothing ran (the lock is held, a session connected, the plan went stale)
                untouched = [replace(s, status="not run") for s in plan.steps]
                out = replace(plan, steps=untouched).to_json()
                out.update(final_version=current, stopped=None)
            out.update(target_release=target_release, dry_run=False, error=exc.message)
            if rehearsal is not None:
                out.update(rehearsal=rehearsal.to_json())
            _print_json(out)
        raise
    if json_out:
        out = replace(plan, steps=result.steps).to_json()
        out.update(final_version=result.final_version)
        out.update(target_release=target_release, dry_run=False)
        if rehearsal is not None:
            out.update(rehearsal=rehearsal.to_json())
        _print_json(out)
    if target_release:
        from resolver.images import next_steps

        pinned = None
        if compose_file is not None:
            pinned = _pin_images(compose_file, target_release, dry_run=False)
        for line in next_steps(target_release, pinned, str(compose_file or "")):
            _progress(line)


def _check_from_release(*, dry_run: bool, rehearse: str | None) -> None:
    """--from-release plans without a database: refuse what needs one (exit 2)."""
    if not dry_run:
        _fail(
            "--from-release plans from a simulated database and changes nothing: use it with "
            "--dry-run (a real run reads the database's own version table: pass "
            "--database-url instead of --from-release)",
            EXIT_BAD_INPUT,
        )
    if rehearse is not None:
        _fail(
            "--rehearse runs the plan on a copy of a real database and --from-release plans "
            "without one: give one of them",
            EXIT_BAD_INPUT,
        )


def _plan_from_release(
    from_release: str,
    *,
    to_release: str | None,
    to_version: str | None,
    sql: bool,
    json_out: bool,
    from_ref: str | None,
    migrations_dir: Path | None,
    compose_file: Path | None,
    allow_prerelease: bool,
    options: PlanOptions,
    database_ignored: bool,
    settings: GitHubSettings,
) -> None:
    """``downgrade --from-release R --dry-run``: the plan for a database at R, from the version
    table goose's Up leaves there (migrator.simulate); no database is read, even when one is
    configured: DATABASE_URL is often set in an operator's shell, and a plan that never connects
    has nothing in it to protect. The down SQL comes from where a real database's plan takes
    it, so the steps are those of a database freshly migrated to R.
    """
    from migrator.commands import DirectorySupplier, MigrationSupplier, Target, plan_simulated
    from migrator.hatchet.profile import PROFILE
    from migrator.simulate import CATALOG_NOTE, DATA_LOSS_NOTE

    profile = PROFILE
    with _resolver(settings) as resolver:
        if to_release is not None:
            resolution = resolver.resolve(to_release, allow_prerelease=allow_prerelease)
            target = Target(
                resolution.version, resolution.release, frozenset(resolution.listing.versions)
            )
        else:
            target = Target(_parse_version(to_version or ""))
        target_release = target.release
        _refuse_below_floor(target.version, profile)
        start = resolver.resolve(from_release, allow_prerelease=allow_prerelease)
        supplier: MigrationSupplier = (
            DirectorySupplier(migrations_dir)
            if migrations_dir is not None
            else _ReleaseSupplier(resolver, from_ref, profile)
        )
        simulation = plan_simulated(
            target, supplier, frozenset(start.listing.versions), profile=profile, options=options
        )
    rows, current, plan = simulation.rows, simulation.current, simulation.plan
    simulated = (
        f"a simulated goose_db_version at {start.release}, its {len(rows) - 1} migrations "
        "applied as goose up leaves them"
        + ("; the configured database (DATABASE_URL) is not read" if database_ignored else "")
    )
    if plan is None:
        if not json_out:
            typer.echo(f"database: none read: {simulated}")
        _nothing_to_do(current, target.version, json_out)
        return
    source, place, lookups = simulation.source, simulation.current_place, simulation.catalog_lookups
    caveat = CATALOG_NOTE + (
        f" ({lookups} plan-time lookups answered with no rows)" if lookups else ""
    )
    plan.notes += [f"no database read: {simulated}", caveat, DATA_LOSS_NOTE]
    if sql:
        comment = [
            f"SIMULATED: planned without a database, for one at {start.release} ({start.version})",
            caveat,
            DATA_LOSS_NOTE,
        ]
        sys.stdout.write("".join(f"-- {line}\n" for line in comment))
        _show_plan(plan, {}, json_out=False, sql=True, target_release=target_release)
    elif json_out:
        out = plan.to_json()
        out.update(target_release=target_release, dry_run=True, from_release=start.release)
        out.update(
            simulated={
                "from_release": start.release,
                "from_commit": start.commit,
                "rows": len(rows),
                "database_read": False,
                "catalog_lookups": lookups,
            }
        )
        _print_json(out)
    else:
        header = {
            "current": f"{current} ({place})" if place else str(current),
            "target": f"{target.version}" + (f" ({target_release})" if target_release else ""),
            "source": source,
            "database": f"none read: {simulated}",
            "sessions": "not checked: no database",
            "statements": caveat,
            "data loss": DATA_LOSS_NOTE,
        }
        _show_plan(plan, header, json_out=False, sql=False, target_release=target_release)
        if compose_file is not None and target_release:
            _pin_images(compose_file, target_release, dry_run=True)
    if plan.blocked:
        _fail(_blocked_message(plan, "the plan cannot run"), EXIT_BLOCKED)


def _refuse_below_floor(target: int, profile: Profile) -> None:
    """Below the project's first release with goose downs there is nothing to migrate down to."""
    if profile.floor_version is not None and 0 < target < profile.floor_version:
        _fail(
            f"version {target} is older than {profile.floor_release} ({profile.floor_version}), "
            f"the oldest release a downgrade can reach: releases before it have no goose "
            "migrations to migrate down to, and no option changes that (restore a backup or "
            "snapshot taken at that release instead)",
            EXIT_BAD_INPUT,
        )


def _blocked_message(plan: Plan, outcome: str) -> str:
    """One line naming every blocking step, why, and the way forward where the reason does not
    say it (a blocked plan lists them all)."""
    from migrator.report import way_forward

    steps = plan.blocked_steps
    named = "; ".join(
        f"{s.file or f'version {s.version} (no file)'}: {s.reason or 'blocked'}"
        + (f" (way forward: {hint})" if (hint := way_forward(s)) else "")
        for s in steps
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
    plan: Plan,
    header: dict[str, str],
    *,
    json_out: bool,
    sql: bool,
    target_release: str | None,
    limits: tuple[float, float, float] | None = None,
) -> None:
    """``limits``: what ``--sql`` bakes in: --lock-timeout, --ddl-lock-timeout and
    --statement-timeout (default: the tool's defaults)."""
    if sql:
        from migrator.sqlscript import ScriptSettings, sql_script

        settings = ScriptSettings(*limits) if limits else ScriptSettings()
        sys.stdout.write(sql_script(plan, settings))
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
    """``database DBNAME on HOST port PORT`` of ``url``, never the password."""
    from migrator.database import parse_url

    params = parse_url(url)
    host = params.get("host") or params.get("hostaddr") or "the local socket"
    port = params.get("port") or "5432"
    dbname = params.get("dbname") or params.get("user") or "?"
    return f"database {dbname} on {host} port {port}"


def _confirm(
    yes: bool, plan: Plan, database: str, rehearsal: RehearsalResult | None = None
) -> None:
    if yes:
        return
    if not _stdin_is_terminal():
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
    try:
        agreed = _ask(question)
    except KeyboardInterrupt as exc:  # Ctrl-C (or a signal turned into an exception)
        typer.echo(err=True)
        from migrator.interrupts import signum_of

        code = 128 + signum_of(exc)
        _fail("interrupted at the confirmation prompt; nothing was changed", code)
    if not agreed:
        _fail("cancelled; nothing was changed", EXIT_BAD_INPUT)


def _stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def _read_line() -> str:
    return sys.stdin.readline()


def _ask(question: str) -> bool:
    """Ask ``question`` on stderr (stdout stays clean for --json); y or yes is yes, n, no, an
    empty answer or the end of input (Ctrl-D) is no."""
    while True:
        typer.echo(f"{question} [y/N]: ", err=True, nl=False)
        answer = _read_line()
        if not answer:
            typer.echo(err=True)
            return False
        word = answer.strip().lower()
        if word in ("y", "yes"):
            return True
        if word in ("", "n", "no"):
            return False
        typer.echo("please answer y or n", err=True)


def _progress(line: str) -> None:
    typer.echo(line, err=True)


# A plain-text lock wait repeats at most this often (seconds) while nothing changes.
_LOCK_WAIT_REPEAT = 30.0


def _stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


@contextmanager
def _step_progress(plan: Plan, label: str = "") -> Iterator[EventCallback]:
    """Per-step progress on stderr: a rich bar on a terminal, plain lines otherwise; ``label``
    starts every line (``rehearsal: `` for the steps run on the scratch copy).

    Waits for goose's lock inside the block are shown too (who holds it, how long it will be
    waited for); a finished bar says how many steps were reverted, never "reverting".
    """
    from migrator.lockholders import GooseLockWait, reporting_lock_waits

    total = len(plan.steps)
    index = {s.version: i for i, s in enumerate(plan.steps, start=1)}
    said_holders: tuple[int, ...] | None = None  # the last lock wait line shown
    said_at = 0.0

    def line(event: str, step: Step, elapsed: float) -> str | None:
        n, name = index.get(step.version, 0), step.file or str(step.version)
        if event == "done":
            return f"{label}[{n}/{total}] reverted {name} in {elapsed:.2f}s"
        if event == "failed":
            return f"{label}[{n}/{total}] FAILED {name} after {elapsed:.2f}s"
        return f"{label}[{n}/{total}] reverting {name} ..." if event == "start" else None

    def lock_line(wait: GooseLockWait) -> str | None:
        """The wait as a line when it is news: the first report, other holders, the lock taken,
        or half a minute since the last line."""
        nonlocal said_holders, said_at
        news = wait.taken or said_holders != wait.holder_pids()
        if not news and wait.waited - said_at < _LOCK_WAIT_REPEAT:
            return None
        said_holders, said_at = wait.holder_pids(), wait.waited
        return f"{label}{wait.describe()}"

    if not _stderr_is_terminal():

        def plain(event: str, step: Step, elapsed: float) -> None:
            text = line(event, step, elapsed)
            if text:
                _progress(text)

        def plain_wait(wait: GooseLockWait) -> None:
            text = lock_line(wait)
            if text:
                _progress(text)

        with reporting_lock_waits(plain_wait):
            yield plain
        return

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.text import Text

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=_console(stderr=True)) as bar:
        task = bar.add_task(f"{label}starting", total=total)
        done: list[Step] = []
        failed: list[Step] = []

        def rich_event(event: str, step: Step, elapsed: float) -> None:
            name = step.file or str(step.version)
            if event == "start":
                bar.update(task, description=f"{label}reverting {name}")
                return
            text = line(event, step, elapsed)
            if text:
                bar.console.print(Text(text, style="red" if event == "failed" else ""))
            if event == "done":
                done.append(step)
                bar.advance(task)
                if len(done) == total:
                    bar.update(task, description=f"{label}reverted {total} step(s)")
            elif event == "failed":
                failed.append(step)
                bar.update(task, description=f"{label}FAILED at {name}")

        def rich_wait(wait: GooseLockWait) -> None:
            text = lock_line(wait)
            if text:
                bar.console.print(Text(text))
            bar.update(
                task,
                description=f"{label}lock taken, starting"
                if wait.taken
                else f"{label}waiting for the goose lock (gives up in {wait.remaining:.0f} s)",
            )

        try:
            with reporting_lock_waits(rich_wait):
                yield rich_event
        finally:
            if len(done) < total and not failed:  # stopped otherwise: lock lost, a signal
                bar.update(task, description=f"{label}stopped: {len(done)} of {total} reverted")


def _run(prepared: PreparedDowngrade, run_options: dict[str, Any]) -> RunResult:
    """The real run, with per-step progress and a closing line on stderr."""
    from migrator.commands import execute_downgrade

    assert prepared.plan is not None
    plan = prepared.plan
    started = time.monotonic()
    with _step_progress(plan) as on_event:
        result = execute_downgrade(
            prepared, run_options=run_options, on_event=on_event, on_notice=_progress
        )
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


def _pin_images(compose_file: Path, release: str, *, dry_run: bool) -> PinResult:
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
    elif result.pinned_images:
        names = ", ".join(result.pinned_images)
        _progress(f"{compose_file}: {names} already pinned to {release}; nothing changed")
    else:
        _progress(f"{compose_file}: no Hatchet image was pinned")
    return result


# ---------------------------------------------------------------------------------------------
# bundle


@app.command(short_help="Write a file with everything a downgrade needs, for air gaps.")
def bundle(
    to_release: Annotated[
        str,
        typer.Option(
            "--to-release", metavar="RELEASE", help="The release the bundle downgrades to."
        ),
    ],
    output: Annotated[
        Path, typer.Option("--output", metavar="FILE", help="The bundle to write (a new file).")
    ],
    from_release: Annotated[
        str | None,
        typer.Option(
            "--from-release",
            metavar="RELEASE",
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
    migration files), for machines without GitHub: pass it as --bundle FILE.

    Examples:

    \b
      hatchet-schema bundle --to-release v0.71.0 --output hatchet-v0.71.0.bundle
      hatchet-schema downgrade --to-release v0.71.0 --bundle hatchet-v0.71.0.bundle --dry-run
      hatchet-schema bundle --to-release v0.71.0 --git-dir hatchet.git --output b.bundle
    """
    _checked_path("--output", output)
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
    """The console script. click's own usage errors (an unknown option, a value of the wrong
    type, an extra argument) quote the raw command line, where a password may sit in the wrong
    place: they are shown through the same redaction and shortening as the tool's errors."""
    from io import StringIO

    _remember_inputs(sys.argv[1:])
    try:
        code = app(standalone_mode=False)
    except typer.TyperException as exc:  # click's UsageError and the like, not yet shown
        shown = StringIO()
        show = getattr(exc, "show", None)
        if callable(show):
            show(file=shown)
        else:
            shown.write(f"Error: {exc.format_message()}\n")
        typer.echo(_shown(shown.getvalue()), err=True, nl=False)
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("Aborted!", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()

"""hatchet-schema command line: a thin typer layer wiring ``resolver`` and ``migrator``.

This is the only module that imports both packages. Heavy modules (httpx, psycopg, rich, pglast)
are imported inside the commands so that ``--help`` stays fast.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from resolver.settings import DEFAULT_API_URL, DEFAULT_MIGRATIONS_PATH, DEFAULT_REPO

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from rich.console import Console

    from migrator.commands import (
        DatabaseStatus,
        MigrationSupplier,
        PreparedDowngrade,
        RunLimits,
        Target,
    )
    from migrator.plan import Plan, Step
    from migrator.planner import PlanOptions
    from migrator.profile import Profile
    from migrator.rehearsal import RehearsalResult
    from migrator.runner import EventCallback
    from migrator.sources import MigrationFile
    from migrator.statusreport import StatusReport
    from resolver.bundle import BundleHeader, WrittenBundle
    from resolver.images import PinResult
    from resolver.models import Resolution
    from resolver.release_index import ReleaseIndex
    from resolver.service import ReleaseResolver
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


# A hyphen that textwrap does not break at (U+2011), for the length of a help rendering.
_NO_BREAK_HYPHEN = "\u2011"


_BaseHelpFormatter: Any = typer.Context.formatter_class  # click's, as typer ships it


class _HelpFormatter(_BaseHelpFormatter):  # type: ignore[misc]
    """click's help formatter, except that wrapping never splits a word at its hyphens: an
    option named in a help text (``--migrations-dir``) stays whole on one line."""

    def write_dl(self, rows: Sequence[tuple[str, str]], *args: Any, **kwargs: Any) -> None:
        kept = [(first, second.replace("-", _NO_BREAK_HYPHEN)) for first, second in rows]
        super().write_dl(kept, *args, **kwargs)

    def write_text(self, text: str) -> None:
        super().write_text(text.replace("-", _NO_BREAK_HYPHEN))

    def getvalue(self) -> str:
        return str(super().getvalue()).replace(_NO_BREAK_HYPHEN, "-")


class _Context(typer.Context):
    formatter_class = _HelpFormatter


class _Group(TyperGroup):
    """The command group, with the root's ``--version`` on every command too, and help texts
    wrapped between words only."""

    context_class = _Context

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        shared = [p for p in self.params if p.name == "version"]
        for command in self.commands.values():
            have = {p.name for p in command.params}
            command.params.extend(p for p in shared if p.name not in have)
            command.context_class = _Context


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
    from migrator.shown import shown  # no password, and long inputs cut short

    typer.echo(shown(f"error: {message}"), err=True)
    raise typer.Exit(code)


@contextmanager
def _errors() -> Iterator[None]:
    """Turn the packages' error values into one clear message and the contract's exit code.
    The passwords the command's URLs held are masked until that message is out, then forgotten
    (a second command in the same process, as in the tests, starts with none)."""
    from migrator.database import forget_secrets, scrubbed_output
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
    finally:
        forget_secrets()


def _settings(
    api_url: str,
    token: str | None,
    repo: str,
    migrations_path: str,
    cache_dir: Path | None,
    offline: bool,
    bundle_file: Path | None = None,
    git_dir: Path | None = None,
) -> GitHubSettings:
    """The GitHub options as settings; reading a bundle or a local clone instead, when asked."""
    from resolver.settings import GitHubSettings, default_cache_dir

    cache = _checked_path("--cache-dir", cache_dir) or default_cache_dir()
    if bundle_file is not None and git_dir is not None:
        _fail("give at most one of --bundle and --git-dir", EXIT_BAD_INPUT)
    return GitHubSettings(
        api_url=api_url,
        token=token or None,
        repo=repo,
        migrations_path=migrations_path.strip("/"),
        cache_dir=cache,
        offline=offline,
        bundle=_checked_path("--bundle", bundle_file),
        git_dir=_checked_path("--git-dir", git_dir),
    )


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
        settings = _settings(
            api_url, token, repo, migrations_path, cache_dir, offline, bundle_file, git_dir
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
        settings = _settings(
            api_url, token, repo, migrations_path, cache_dir, offline, bundle_file, git_dir
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
    from resolver.summaries import history_notes, history_table

    with _resolver(settings) as resolver:
        history = resolver.release_history(_release_index(settings))
    records = history.records[:limit] if limit is not None else history.records
    if json_out:
        _print_json([r.to_json() for r in records])
    else:
        for line in history_table(records):
            typer.echo(line)
    for note in history_notes(
        history, bundle=settings.bundle is not None, offline=settings.offline
    ):
        typer.echo(note, err=True)


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
        if migrations_dir is not None:
            from migrator.sources import load_directory
            from migrator.statusreport import StatusReport

            known = frozenset(load_directory(migrations_dir))
            report = StatusReport(db, known, str(migrations_dir))
        else:
            settings = _settings(
                api_url, token, repo, migrations_path, cache_dir, offline, bundle_file, git_dir
            )
            report = _status_against_releases(db, settings)
        if json_out:
            _print_json(report.to_json())
            return
        from migrator.hatchet.profile import PROFILE

        for line in report.lines(PROFILE):
            typer.echo(line)


def _status_against_releases(db: DatabaseStatus, settings: GitHubSettings) -> StatusReport:
    """``status`` judged against the newest release: where the current version sits among the
    releases, and the releases that shipped each orphan row (resolver.workflows)."""
    from migrator.statusreport import StatusReport
    from resolver.workflows import place_database

    with _resolver(settings) as resolver:
        found = place_database(resolver, _release_index(settings), db.current, db.applied)
    place = found.place
    return StatusReport(
        db,
        found.known,
        found.known_from,
        releases=place.releases,
        release_range=place.to_json(),
        place=place.describe(),
        shipped=found.shipped,
    )


# ---------------------------------------------------------------------------------------------
# downgrade


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
    from migrator.commands import RunLimits
    from migrator.planner import PlanOptions

    if (to_release is None) == (to_version is None):
        _fail("give exactly one of --to-release and --to-version", EXIT_BAD_INPUT)
    # malformed: exit 2 before anything is read
    version = _parse_version(to_version) if to_version is not None else None
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
    request = _DowngradeRequest(
        to_release=to_release,
        to_version=version,
        from_release=from_release,
        dry_run=dry_run,
        sql=sql,
        json_out=json_out,
        yes=yes,
        from_ref=from_ref,
        migrations_dir=migrations_dir,
        limits=RunLimits(
            lock_timeout=lock_timeout,
            ddl_lock_timeout=ddl_lock_timeout,
            ddl_lock_retries=ddl_lock_retries,
            statement_timeout=statement_timeout,
            ignore_active_sessions=ignore_active_sessions,
        ),
        backup=backup,
        compose_file=compose_file,
        allow_prerelease=allow_prerelease,
        options=PlanOptions(
            no_patches=no_patches,
            trust_go_ports=trust_go_ports,
            skip_orphans=frozenset(skip_orphan or ()),
        ),
        database_url=database_url,
        settings=_settings(
            api_url, token, repo, migrations_path, cache_dir, offline, bundle_file, git_dir
        ),
        rehearse=rehearse,
        rehearse_url=rehearse_url,
    )
    if from_release is not None:
        _check_from_release(dry_run=dry_run, rehearse=rehearse)
    with _errors():
        if from_release is not None:
            _plan_from_release(request)
        else:
            _downgrade(request)


@dataclass(frozen=True)
class _DowngradeRequest:
    """What ``downgrade`` was asked, checked: built once in :func:`downgrade`."""

    to_release: str | None
    to_version: int | None
    """``--to-version``, parsed; exactly one of it and ``to_release`` is set."""
    from_release: str | None
    """``--from-release``: plan for a simulated database at that release (with ``dry_run``)."""
    dry_run: bool
    sql: bool
    json_out: bool
    yes: bool
    from_ref: str | None
    migrations_dir: Path | None
    limits: RunLimits
    backup: Path | None
    compose_file: Path | None
    allow_prerelease: bool
    options: PlanOptions
    database_url: str | None
    settings: GitHubSettings
    rehearse: str | None
    rehearse_url: str | None


@dataclass(frozen=True)
class _ReleaseSupplier:
    """The down SQL from releases (resolver.workflows), for the command layer (migrator.commands):
    renamed or deleted versions come from the releases that shipped them."""

    resolver: ReleaseSource
    from_ref: str | None
    profile: Profile

    def migrations(self, versions: Sequence[int]) -> tuple[dict[int, MigrationFile], str]:
        from migrator.sources import collect
        from resolver.workflows import down_files

        def parse(
            files: Mapping[str, bytes], origin: str, shas: Mapping[str, str]
        ) -> dict[int, MigrationFile]:
            return collect(files, origin=origin, blob_shas=shas)

        renamed = {v: r.shipped_in for v, r in self.profile.renamed.items()}
        reads = self.profile.reads_for(versions)
        return down_files(
            self.resolver, self.from_ref, versions, renamed=renamed, also_read=reads, collect=parse
        )

    def describe_version(self, version: int) -> str:
        return self.resolver.place_version(version, budget=0).describe()


def _target(request: _DowngradeRequest, resolver: ReleaseSource | None) -> Target:
    """The version to go down to (``--to-release`` resolved), refused below the floor."""
    from migrator.commands import Target, refuse_below_floor
    from migrator.hatchet.profile import PROFILE

    if request.to_release is not None:
        assert resolver is not None
        resolution = resolver.resolve(request.to_release, allow_prerelease=request.allow_prerelease)
        target = Target(
            resolution.version, resolution.release, frozenset(resolution.listing.versions)
        )
    else:
        assert request.to_version is not None
        target = Target(request.to_version)
    refuse_below_floor(target.version, PROFILE)
    return target


def _supplier(request: _DowngradeRequest, resolver: ReleaseSource | None) -> MigrationSupplier:
    """Where the down SQL comes from: ``--migrations-dir``, else the releases."""
    from migrator.commands import DirectorySupplier
    from migrator.hatchet.profile import PROFILE

    if request.migrations_dir is not None:
        return DirectorySupplier(request.migrations_dir)
    assert resolver is not None
    return _ReleaseSupplier(resolver, request.from_ref, PROFILE)


def _downgrade(request: _DowngradeRequest) -> None:
    """Resolve, prepare, render; the workflow itself is migrator.commands."""
    from migrator.commands import prepare_downgrade
    from migrator.hatchet.profile import PROFILE

    url = _require_database_url(request.database_url)
    if request.rehearse_url is not None:
        from migrator.database import parse_url

        parse_url(request.rehearse_url)  # malformed: exit 2 before anything is read
    with ExitStack() as stack:
        resolver: ReleaseSource | None = None
        if request.to_release is not None or request.migrations_dir is None:
            resolver = stack.enter_context(_resolver(request.settings))
        target = _target(request, resolver)
        supplier = _supplier(request, resolver)
        prepared = prepare_downgrade(
            url, target, supplier, profile=PROFILE, options=request.options
        )
    plan = prepared.plan
    if plan is None:
        _nothing_to_do(prepared.current, target.version, request.json_out)
    elif request.dry_run and request.rehearse is not None and not plan.blocked:
        _rehearse_only(request, prepared, plan)
    elif request.dry_run:
        _dry_run(request, prepared, plan)
    else:
        _real_run(request, prepared, plan)


def _dry_run(request: _DowngradeRequest, prepared: PreparedDowngrade, plan: Plan) -> None:
    """``--dry-run``: the plan (table, JSON or script) and, with --compose-file, the image diff."""
    from migrator.report import blocked_message

    target_release = prepared.target.release
    if request.sql:
        _print_script(plan, request.limits)
    else:
        _show_plan(plan, prepared.header(), json_out=request.json_out, release=target_release)
        if not request.json_out:
            _preview_pins(request, target_release)
    if plan.blocked:
        _fail(blocked_message(plan, "the plan cannot run"), EXIT_BLOCKED)


def _rehearse_only(request: _DowngradeRequest, prepared: PreparedDowngrade, plan: Plan) -> None:
    """``--dry-run --rehearse``: the plan, then the plan run on a scratch copy only."""
    from migrator.report import dry_run_json

    target_release = prepared.target.release
    if not request.json_out:
        _show_plan(plan, prepared.header(), json_out=False, release=target_release)
        _preview_pins(request, target_release)
    rehearsed = _rehearse(request, prepared)
    _report_rehearsal(rehearsed, stderr=request.json_out)
    if request.json_out:
        _print_json(dry_run_json(plan, target_release, rehearsed))
    if not rehearsed.ok:
        _fail(rehearsed.error or "the rehearsal failed", EXIT_FAILED)


def _real_run(request: _DowngradeRequest, prepared: PreparedDowngrade, plan: Plan) -> None:
    """The plan shown, the sessions refused, the rehearsal, the prompt, the backup, the run,
    then the images pinned and what to do next."""
    from migrator.commands import refuse_live_sessions
    from migrator.report import blocked_message, describe_database

    target_release = prepared.target.release
    header = prepared.header()
    if plan.blocked:
        _show_plan(plan, header, json_out=request.json_out, release=target_release)
        _fail(blocked_message(plan, "nothing was changed"), EXIT_BLOCKED)
    if not request.json_out:
        _show_plan(plan, header, json_out=False, release=target_release)
    if not request.limits.ignore_active_sessions:
        refuse_live_sessions(prepared)  # before the prompt and the backup
    rehearsal = _rehearse_first(request, prepared, plan) if request.rehearse else None
    _confirm(request.yes, plan, describe_database(prepared.url), rehearsal)
    if request.backup is not None:
        from migrator.backup import pg_dump_backup

        _progress(f"backing up the database to {request.backup} (pg_dump --format=custom) ...")
        size = pg_dump_backup(prepared.url, request.backup)
        _progress(f"backup written: {request.backup} ({size:,} bytes)")
    _run(request, prepared, rehearsal)
    if target_release:
        from resolver.images import next_steps

        compose_file = request.compose_file
        pinned = None
        if compose_file is not None:
            pinned = _pin_images(compose_file, target_release, dry_run=False)
        for line in next_steps(target_release, pinned, str(compose_file or "")):
            _progress(line)


def _rehearse_first(
    request: _DowngradeRequest, prepared: PreparedDowngrade, plan: Plan
) -> RehearsalResult:
    """``--rehearse`` before a real run: one that fails stops the run (exit 1), nothing changed."""
    from migrator.report import rehearsal_failed_json

    rehearsal = _rehearse(request, prepared)
    if request.yes or not rehearsal.ok or not _stdin_is_terminal():  # else the prompt shows it
        _report_rehearsal(rehearsal, stderr=True)
    if not rehearsal.ok:
        if request.json_out:
            release, current = prepared.target.release, prepared.current
            out = rehearsal_failed_json(plan, rehearsal, current=current, target_release=release)
            _print_json(out)
        _fail(rehearsal.error or "the rehearsal failed", EXIT_FAILED)
    return rehearsal


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


def _plan_from_release(request: _DowngradeRequest) -> None:
    """``downgrade --from-release R --dry-run``: the plan for a database at R, from the version
    table goose's Up leaves there (migrator.simulate); no database is read, even when one is
    configured: DATABASE_URL is often set in an operator's shell, and a plan that never connects
    has nothing in it to protect. The down SQL comes from where a real database's plan takes
    it, so the steps are those of a database freshly migrated to R.
    """
    from migrator.commands import plan_simulated
    from migrator.hatchet.profile import PROFILE
    from migrator.report import SimulationReport, blocked_message

    assert request.from_release is not None
    with _resolver(request.settings) as resolver:
        target = _target(request, resolver)
        start = resolver.resolve(request.from_release, allow_prerelease=request.allow_prerelease)
        simulation = plan_simulated(
            target,
            _supplier(request, resolver),
            frozenset(start.listing.versions),
            profile=PROFILE,
            options=request.options,
        )
    report = SimulationReport(
        simulation, start.release, start.version, start.commit, bool(request.database_url)
    )
    plan = simulation.plan
    if plan is None:
        if not request.json_out:
            typer.echo(f"database: none read: {report.database}")
        _nothing_to_do(simulation.current, target.version, request.json_out)
        return
    plan.notes += report.notes()
    if request.sql:
        sys.stdout.write(report.script_comment())
        _print_script(plan, request.limits)
    elif request.json_out:
        _print_json(report.to_json(plan, target.release))
    else:
        _show_plan(plan, report.header(target), json_out=False, release=target.release)
        _preview_pins(request, target.release)
    if plan.blocked:
        _fail(blocked_message(plan, "the plan cannot run"), EXIT_BLOCKED)


def _nothing_to_do(current: int, target: int, json_out: bool) -> None:
    from migrator.report import nothing_to_do, nothing_to_do_json

    if json_out:
        _print_json(nothing_to_do_json(current, target))
    else:
        typer.echo(nothing_to_do(current, target))


def _show_plan(plan: Plan, header: dict[str, str], *, json_out: bool, release: str | None) -> None:
    """The plan as a table for a person, or (``json_out``) as a dry run's JSON object."""
    from migrator.report import dry_run_json, render_plan

    if json_out:
        _print_json(dry_run_json(plan, release))
    else:
        render_plan(plan, _console(stderr=False), header=header)


def _print_script(plan: Plan, limits: RunLimits) -> None:
    """``--sql``: the plan as a psql script, with the given limits baked in."""
    from migrator.sqlscript import sql_script

    sys.stdout.write(sql_script(plan, limits.script_settings()))


def _preview_pins(request: _DowngradeRequest, release: str | None) -> None:
    """With --compose-file, a dry run shows the diff pinning the images to the target would make."""
    if request.compose_file is not None and release:
        _pin_images(request.compose_file, release, dry_run=True)


def _console(*, stderr: bool) -> Console:
    """A rich console; off a terminal it is wide enough that plan columns are never cut."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() or os.environ.get("COLUMNS") else 200
    return Console(
        file=stream, no_color=bool(os.environ.get("NO_COLOR")), width=width, highlight=False
    )


def _confirm(
    yes: bool, plan: Plan, database: str, rehearsal: RehearsalResult | None = None
) -> None:
    from migrator.report import confirmation_question

    if yes:
        return
    if not _stdin_is_terminal():
        _fail(
            "refusing to change the database without confirmation: stdin is not a terminal; "
            "pass --yes",
            EXIT_BAD_INPUT,
        )
    for what in (what for s in plan.steps for what in s.data_loss):
        _progress(f"rows that go: {what}")
    if rehearsal is not None:
        _report_rehearsal(rehearsal, stderr=True)  # its result and the time of each step
    try:
        agreed = _ask(confirmation_question(plan, database, rehearsal))
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


def _stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


def _step_progress(plan: Plan, label: str = "") -> AbstractContextManager[EventCallback]:
    """Per-step progress on stderr (migrator.report.step_progress): a rich bar on a terminal,
    plain lines otherwise."""
    from migrator.report import step_progress

    console = _console(stderr=True) if _stderr_is_terminal() else None
    return step_progress(plan, console=console, say=_progress, label=label)


def _run_options(limits: RunLimits) -> dict[str, Any]:
    """run_plan's keyword arguments for the real run and the rehearsal alike."""
    return limits.run_options(on_wait=lambda wait: _progress(f"lock wait: {wait.describe()}"))


def _run(
    request: _DowngradeRequest, prepared: PreparedDowngrade, rehearsal: RehearsalResult | None
) -> None:
    """The real run, with per-step progress and a closing line on stderr; with --json, the
    result, or where a run that stopped left the database, on stdout."""
    from migrator.commands import execute_downgrade
    from migrator.errors import MigratorError
    from migrator.report import run_json, stopped_json

    assert prepared.plan is not None
    plan, release = prepared.plan, prepared.target.release
    started = time.monotonic()
    try:
        with _step_progress(plan) as on_event:
            result = execute_downgrade(
                prepared,
                run_options=_run_options(request.limits),
                on_event=on_event,
                on_notice=_progress,
            )
    except MigratorError as exc:  # refused before the first step, or stopped part-way
        if request.json_out:
            current = prepared.current
            out = stopped_json(
                plan, exc, current=current, target_release=release, rehearsal=rehearsal
            )
            _print_json(out)
        raise
    done = sum(1 for s in result.steps if s.status == "done")
    _progress(
        f"done: {plan.from_version} -> {result.final_version}, {done} step(s) reverted "
        f"in {time.monotonic() - started:.1f}s"
    )
    if request.json_out:
        _print_json(run_json(plan, result, target_release=release, rehearsal=rehearsal))


def _rehearse(request: _DowngradeRequest, prepared: PreparedDowngrade) -> RehearsalResult:
    """Run the prepared plan on a scratch copy (migrator.rehearsal); progress of the copy and of
    each step on stderr. The plan is not changed: the rehearsal runs a copy of it."""
    from migrator.rehearsal import MODES, rehearse

    plan, replan = prepared.plan, prepared.replan
    assert plan is not None and replan is not None
    chosen = next(m for m in MODES if m == request.rehearse)
    with ExitStack() as stack:
        bar: list[EventCallback] = []

        def on_event(event: str, step: Step, elapsed: float) -> None:
            if not bar:  # the bar starts with the first step, after the copy
                bar.append(stack.enter_context(_step_progress(plan, label="rehearsal: ")))
            bar[0](event, step, elapsed)

        return rehearse(
            prepared.url,
            plan,
            replan,
            mode=chosen,
            server_url=request.rehearse_url,
            run_options=_run_options(request.limits),
            on_event=on_event,
            on_progress=_progress,
        )


def _report_rehearsal(rehearsal: RehearsalResult, *, stderr: bool) -> None:
    for line in rehearsal.summary_lines():
        typer.echo(line, err=stderr)


def _pin_images(compose_file: Path, release: str, *, dry_run: bool) -> PinResult:
    """Pin the compose file's Hatchet images to ``release``; ``dry_run``: print the diff."""
    from resolver.images import diff, rewrite_compose_file
    from resolver.summaries import pin_outcome

    result = rewrite_compose_file(compose_file, release, dry_run=dry_run)
    for warning in result.warnings:
        _progress(f"warning: {warning}")
    if dry_run:
        sys.stdout.write(diff(result.original, result.text, str(compose_file)))
    else:
        _progress(pin_outcome(result, compose_file, release))
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
        from resolver.bundle import summary_json
        from resolver.summaries import bundle_summary, requests_spent

        settings = _settings(
            api_url, token, repo, migrations_path, cache_dir, offline, git_dir=git_dir
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
            requests = requests_spent(source)
        if json_out:
            _print_json({**summary_json(written, header), "requests": requests})
            return
        for line in bundle_summary(written, header, requests, settings.api_url):
            typer.echo(line)


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
    ``to_release`` covers, and write it (resolver.workflows.record_bundle); the plan of each
    state comes from the migrator's planner, with Hatchet's renamed versions."""
    from migrator.commands import refuse_below_floor
    from migrator.hatchet.profile import PROFILE
    from migrator.planner import versions_to_revert
    from migrator.simulate import simulated_rows
    from resolver.workflows import record_bundle

    def read_downgrade(
        recorder: ReleaseResolver, applied: Sequence[int], target: Resolution
    ) -> None:
        wanted = target.listing.versions
        rows = simulated_rows(applied)  # goose's table holding exactly ``applied``
        versions = versions_to_revert(rows, target.version, profile=PROFILE, target_versions=wanted)
        _ReleaseSupplier(recorder, None, PROFILE).migrations(versions)

    return record_bundle(
        source,
        output,
        to_release=to_release,
        from_release=from_release,
        allow_prerelease=allow_prerelease,
        every_listing=every_listing,
        renamed={r.version: r.shipped_in for r in PROFILE.renamed.values()},
        check_target=lambda version: refuse_below_floor(version, PROFILE),
        read_downgrade=read_downgrade,
        made_from=source.origin or f"GitHub API {settings.api_url}",
    )


def main() -> None:
    """The console script. click's own usage errors (an unknown option, a value of the wrong
    type, an extra argument) quote the raw command line, where a password may sit in the wrong
    place: they are shown through the same redaction and shortening as the tool's errors."""
    from io import StringIO

    from migrator.shown import remember_inputs, shown

    remember_inputs(sys.argv[1:], os.environ)
    try:
        code = app(standalone_mode=False)
    except typer.TyperException as exc:  # click's UsageError and the like, not yet shown
        usage = StringIO()
        show = getattr(exc, "show", None)
        if callable(show):
            show(file=usage)
        else:
            usage.write(f"Error: {exc.format_message()}\n")
        typer.echo(shown(usage.getvalue()), err=True, nl=False)
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("Aborted!", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()

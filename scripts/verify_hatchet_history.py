"""Verify ``hatchet-schema downgrade`` against real Hatchet history (never run in CI).

Usage::

    python scripts/verify_hatchet_history.py REPO_PATH [--targets v0.103.0,...] [--source TAG]
        [--no-patches] [--paths] [--path-targets v0.103.0,...] [--keep] [--json-out FILE]
        [--jobs N] [--no-reuse | --rebuild] [--prune-cache] [--strict-bodies] [--markdown]

REPO_PATH is a (bare, possibly partial) clone of hatchet-dev/hatchet; nothing read from it is
written to disk. pgoutbox's migrations come from a clone of hatchet-dev/pgoutbox
(``HATCHET_VERIFY_PGOUTBOX_REPO``, default ``hatchet-dev+pgoutbox/repo`` beside REPO_PATH's
``hatchet-dev+hatchet/repo``). The server is ``HATCHET_VERIFY_ADMIN_URL`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``).

Databases: with ``--reuse`` (the default) the seeded template, the fresh database per release
and the path databases are kept across runs as ``hhv_tpl_<tag>_<hash>``,
``hhv_fresh_<tag>_<hash>`` and ``hhv_path_<name>_<hash>``; the hash covers the migrations tree
id of each tag (and the pgoutbox version and tree it applies), the build code
(``hatchet_build.BUILD_CODE``: hatchet_build, hatchet_go_ups, hatchet_seed, the SQL parser) and
the protected-table DDL. They are built only when missing (``--rebuild`` forces): under this
run's name, then renamed (atomic; when two runs race, one wins and the other uses its
database). Nothing connects to a template or path database (they are only cloned, waiting
briefly while another run's clone or a closing session holds them). ``--prune-cache`` drops
cached databases of other build code. Everything else is named ``hhv_<run>_...`` and dropped at
the end unless ``--keep``; ``--no-reuse`` builds everything that way.

1. Builds the template at the source release (``--source``, default v0.104.7) as
   hatchet-migrate does (``hatchet_build``: goose table, the pgoutbox migrations of the version
   the release's go.mod names, goose's Up), creates engine partitions and seeds rows
   (``hatchet_seed``), and adds the tables hatchet-schema must never touch
   (``atlas_schema_revisions``, ``_prisma_migrations``, and a stand-in ``outbox.migrations``
   where the release predates pgoutbox).
2. Builds (or reuses) a fresh reference database per target and one at the source, in
   parallel, and snapshots their catalogs (``hatchet_catalog``).
3. Serves the clone's tags through the local GitHub emulator (``hatchet_git_emulator``).
4. For each target below the database's current version (others are reported as "above
   current: not a downgrade", not failures): clones the template (``CREATE DATABASE ...
   TEMPLATE``), runs ``hatchet-schema downgrade --to-release T --yes --json`` (plus
   ``--no-patches`` with ``--no-patches``; a patched step is then a failure) in a subprocess
   with ``DATABASE_URL``, ``GITHUB_API_URL`` and a fresh ``HATCHET_SCHEMA_CACHE_DIR``, and
   records the exit code, wall seconds and core API requests; diffs the catalog (schema outbox
   aside) and the ``goose_db_version`` rows against the fresh database at T, schema outbox
   against the source build's (a downgrade never touches it; a target before pgoutbox has
   none, which is not counted), and the protected tables' rows against their rows before the
   run; then runs the source release's hatchet-migrate again (``upgrade_to``) and diffs against
   the fresh source database (the round trip; only after a successful downgrade). Function and
   view bodies are compared without comments and layout (``--strict-bodies``: also as text).
5. With ``--paths``: builds databases along real upgrade paths (some through the releases that
   shipped later-renamed or deleted files, so they hold orphan rows or are stuck), prints what
   each hop did, and downgrades each to ``--path-targets``; a path stuck below its last release
   is also downgraded to the newest release below its current version, and its round trip
   re-runs the path's last release.

Prints a table (source, target, exit code, seconds, core requests, catalog differences,
version-row differences, protected tables, round trip; ``--markdown``: Markdown tables of
target, exit, seconds, core requests, differences, round trip per source) and, for each
failure, the tool's stderr tail and the first 10 difference lines, and timings (builds say
"reused" when cached). ``--json-out FILE`` writes every result. Exit status: 0 when every
downgrade exited 0 with no difference and a clean round trip, else 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import functools
import hashlib
import importlib
import inspect
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import psycopg
from psycopg import sql

_HERE = Path(__file__).resolve().parent
REPO_ROOT = _HERE.parent
for _entry in (str(REPO_ROOT), str(_HERE)):
    if _entry not in sys.path:
        sys.path.insert(0, _entry)

import hatchet_build  # noqa: E402
import hatchet_git_emulator  # noqa: E402
from hatchet_build import HopResult  # noqa: E402

DEFAULT_SOURCE = "v0.104.7"
DEFAULT_TARGETS = (
    "v0.103.0",
    "v0.100.0",
    "v0.95.0",
    "v0.90.0",
    "v0.80.0",
    "v0.73.108",
    "v0.71.0",
    "v0.60.0",
    "v0.55.0",
)
DEFAULT_PATH_TARGETS = ("v0.103.0", "v0.95.0", "v0.71.0")

# Real upgrade paths. HATCHET.md: v0.73.107, v0.77.0, v0.87.8, v0.98.0/v0.98.1 and v0.102.0
# shipped versions that were later renamed or deleted.
PATHS: dict[str, tuple[str, ...]] = {
    "all-renames": (
        "v0.55.0", "v0.73.107", "v0.77.0", "v0.87.8", "v0.98.0", "v0.98.1", "v0.102.0",
        "v0.104.7",
    ),
    "clean": ("v0.55.0", "v0.73.108", "v0.78.0", "v0.88.0", "v0.99.0", "v0.103.0", "v0.104.7"),
    "via-v0.73.107": ("v0.60.0", "v0.73.107", "v0.104.7"),
    "via-v0.77.0": ("v0.73.108", "v0.77.0", "v0.104.7"),
    "via-v0.87.8": ("v0.80.0", "v0.87.8", "v0.104.7"),
    "via-v0.98.1": ("v0.90.0", "v0.98.1", "v0.104.7"),
    "via-v0.102.0": ("v0.71.0", "v0.102.0", "v0.104.7"),
}  # fmt: skip

_DROPPED_ENV_PREFIXES = ("GH_", "GITHUB_", "HATCHET_SCHEMA_", "DATABASE_URL", "PG")
_PROXY_VARIABLES = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
STDERR_TAIL = 8
DIFF_LINES = 10


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the helpers other modules provide (with stand-ins when they are absent) ------------------


@dataclass
class Helpers:
    """``hatchet_seed`` and ``hatchet_catalog`` functions, or stand-ins (``notes`` says)."""

    create_engine_partitions: Callable[[psycopg.Connection[Any]], Any]
    seed_all: Callable[..., Any]
    snapshot: Callable[[psycopg.Connection[Any]], Any]
    diff: Callable[[Any, Any], list[str]]
    version_rows: Callable[[psycopg.Connection[Any]], list[tuple[int, bool]]]
    notes: list[str] = field(default_factory=list)
    strict_diff: Callable[[Any, Any], list[str]] | None = None
    """``diff`` comparing function and view bodies as text (None: ``diff`` always does)."""


def _optional_module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        return None


def _standin_partitions(conn: psycopg.Connection[Any]) -> list[str]:
    return []


def _standin_seed(conn: psycopg.Connection[Any], **_: Any) -> tuple[dict[str, int], dict[str, str]]:
    return {}, {}


_STANDIN_QUERIES = {
    "table": """SELECT n.nspname || '.' || c.relname, c.relkind::text FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S') AND NOT c.relispartition
          AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'hatchet_schema')
          AND n.nspname NOT LIKE 'pg_toast%'""",
    "column": """SELECT c.table_schema || '.' || c.table_name || '.' || c.column_name,
        c.data_type || ' ' || c.is_nullable || ' ' || coalesce(c.column_default, '')
        FROM information_schema.columns c JOIN pg_class k ON k.relname = c.table_name
        JOIN pg_namespace n ON n.oid = k.relnamespace AND n.nspname = c.table_schema
        WHERE NOT k.relispartition
          AND c.table_schema NOT IN ('pg_catalog', 'information_schema', 'hatchet_schema')""",
    "index": """SELECT i.schemaname || '.' || i.indexname, i.indexdef FROM pg_indexes i
        JOIN pg_class k ON k.relname = i.tablename
        JOIN pg_namespace n ON n.oid = k.relnamespace AND n.nspname = i.schemaname
        WHERE NOT k.relispartition
          AND i.schemaname NOT IN ('pg_catalog', 'information_schema', 'hatchet_schema')""",
    "function": """SELECT n.nspname || '.' || p.proname || '(' ||
        pg_get_function_identity_arguments(p.oid) || ')', md5(pg_get_functiondef(p.oid))
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'hatchet_schema')
          AND p.prokind IN ('f', 'p')
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')""",
    "enum": """SELECT n.nspname || '.' || t.typname,
        string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        JOIN pg_enum e ON e.enumtypid = t.oid GROUP BY 1""",
}


def _standin_snapshot(conn: psycopg.Connection[Any]) -> dict[str, dict[str, str]]:
    return {
        kind: {str(k): str(v) for k, v in conn.execute(query.encode()).fetchall()}
        for kind, query in _STANDIN_QUERIES.items()
    }


def _standin_diff(expected: Any, actual: Any) -> list[str]:
    out: list[str] = []
    for kind in _STANDIN_QUERIES:
        exp, act = expected[kind], actual[kind]
        out += [f"missing {kind} {k}" for k in sorted(set(exp) - set(act))]
        out += [f"extra {kind} {k}" for k in sorted(set(act) - set(exp))]
        out += [f"{kind} {k}: {exp[k]} != {act[k]}" for k in sorted(set(exp) & set(act))
                if exp[k] != act[k]]  # fmt: skip
    return out


def _standin_version_rows(conn: psycopg.Connection[Any]) -> list[tuple[int, bool]]:
    rows = conn.execute(
        "SELECT version_id, is_applied FROM goose_db_version ORDER BY id"
    ).fetchall()
    return [(int(v), bool(a)) for v, a in rows]


def load_helpers() -> Helpers:
    """The real ``hatchet_seed`` / ``hatchet_catalog``; stand-ins (noted) for absent ones."""
    notes: list[str] = []
    seed = _optional_module("hatchet_seed")
    catalog = _optional_module("hatchet_catalog")
    if seed is None:
        notes.append(
            "scripts/hatchet_seed.py is missing: STAND-IN used (no partitions, no rows seeded)"
        )
    if catalog is None:
        notes.append(
            "scripts/hatchet_catalog.py is missing: STAND-IN catalog used (tables, columns, "
            "indexes, functions, enums only)"
        )
    strict: Callable[[Any, Any], list[str]] | None = None
    if catalog is not None and "strict_bodies" in inspect.signature(catalog.diff).parameters:
        strict = functools.partial(catalog.diff, strict_bodies=True)
    return Helpers(
        strict_diff=strict,
        create_engine_partitions=seed.create_engine_partitions if seed else _standin_partitions,
        seed_all=seed.seed_all if seed else _standin_seed,
        snapshot=catalog.snapshot if catalog else _standin_snapshot,
        diff=catalog.diff if catalog else _standin_diff,
        version_rows=catalog.version_rows if catalog else _standin_version_rows,
        notes=notes,
    )


# -- tables hatchet-schema must never change --------------------------------------------------

PROTECTED_DDL = [
    # a stand-in for pgoutbox's goose table, only where the build ran no pgoutbox migrations
    # (a release before pgoutbox): hatchet_build applies the real ones where go.mod names it
    """DO $$ BEGIN
        IF to_regclass('outbox.migrations') IS NULL THEN
            CREATE SCHEMA IF NOT EXISTS outbox;
            CREATE TABLE outbox.migrations (
                id integer PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY,
                version_id bigint NOT NULL, is_applied boolean NOT NULL,
                tstamp timestamp NOT NULL DEFAULT now());
            INSERT INTO outbox.migrations (version_id, is_applied) VALUES (0, true);
        END IF;
    END $$""",
    "CREATE SCHEMA IF NOT EXISTS atlas_schema_revisions",
    """CREATE TABLE IF NOT EXISTS atlas_schema_revisions.atlas_schema_revisions (
        version text PRIMARY KEY, description text NOT NULL, type bigint NOT NULL DEFAULT 2,
        applied bigint NOT NULL DEFAULT 0, total bigint NOT NULL DEFAULT 0,
        executed_at timestamptz NOT NULL DEFAULT now(), execution_time bigint NOT NULL DEFAULT 0,
        error text, error_stmt text, hash text NOT NULL DEFAULT '',
        partial_hashes jsonb, operator_version text NOT NULL DEFAULT 'fixture')""",
    """INSERT INTO atlas_schema_revisions.atlas_schema_revisions (version, description)
        VALUES ('20240115180414', 'init'), ('20250212134000', 'v0.54.0') ON CONFLICT DO NOTHING""",
    """CREATE TABLE IF NOT EXISTS public._prisma_migrations (
        id varchar(36) PRIMARY KEY, checksum varchar(64) NOT NULL, finished_at timestamptz,
        migration_name varchar(255) NOT NULL, logs text, rolled_back_at timestamptz,
        started_at timestamptz NOT NULL DEFAULT now(), applied_steps_count integer NOT NULL
        DEFAULT 0)""",
    """INSERT INTO public._prisma_migrations (id, checksum, migration_name)
        VALUES ('00000000-0000-0000-0000-000000000001', 'fixture', '0_init')
        ON CONFLICT DO NOTHING""",
]

PROTECTED_TABLES_SQL = """
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND (
    (n.nspname = 'outbox' AND c.relname = 'migrations')
    OR c.relname IN ('atlas_schema_revisions', '_prisma_migrations'))
ORDER BY 1
"""


def add_protected_tables(conn: psycopg.Connection[Any]) -> None:
    """The pgoutbox / Atlas / Prisma bookkeeping tables with a few rows (idempotent)."""
    with conn.transaction():
        for statement in PROTECTED_DDL:
            conn.execute(statement.encode())


def protected_rows(conn: psycopg.Connection[Any]) -> dict[str, list[str]]:
    """Every row of each protected table, as JSON text, sorted."""
    out: dict[str, list[str]] = {}
    for (name,) in conn.execute(PROTECTED_TABLES_SQL).fetchall():
        query = sql.SQL("SELECT row_to_json(t)::text FROM {} t ORDER BY 1").format(
            sql.SQL(str(name))
        )
        out[str(name)] = [str(r[0]) for r in conn.execute(query).fetchall()]
    return out


def protected_diff(before: dict[str, list[str]], after: dict[str, list[str]]) -> list[str]:
    out: list[str] = []
    for table in sorted(set(before) | set(after)):
        if table not in after:
            out.append(f"protected table {table} is gone")
        elif table not in before:
            out.append(f"protected table {table} appeared")
        elif before[table] != after[table]:
            out.append(f"protected table {table}: rows changed ({len(before[table])} before, "
                       f"{len(after[table])} after)")  # fmt: skip
    return out


# -- pgoutbox's schema -------------------------------------------------------------------------

OUTBOX_SCHEMA = "outbox"


def split_outbox(catalog: Any) -> tuple[Any, Any]:
    """``(everything else, the objects of schema outbox)`` of a snapshot.

    pgoutbox's schema is not Hatchet's: hatchet-migrate runs pgoutbox's migrations before
    goose, and a downgrade never touches it, so a downgraded database's outbox is compared with
    the source build's and the rest with the fresh target's.
    """
    prefix = OUTBOX_SCHEMA + "."

    def keep(name: Any, outbox: bool) -> bool:
        text = str(name)
        return (text == OUTBOX_SCHEMA or text.startswith(prefix)) == outbox

    def part(outbox: bool) -> Any:
        if dataclasses.is_dataclass(catalog) and not isinstance(catalog, type):
            changes: dict[str, Any] = {}
            for f in dataclasses.fields(catalog):
                value = getattr(catalog, f.name)
                if isinstance(value, dict):
                    changes[f.name] = {k: v for k, v in value.items() if keep(k, outbox)}
                elif isinstance(value, list):
                    changes[f.name] = [v for v in value if keep(v, outbox)]
            return dataclasses.replace(catalog, **changes)
        if isinstance(catalog, dict):  # the stand-in's {kind: {name: value}}
            return {kind: {k: v for k, v in section.items() if keep(k, outbox)}
                    for kind, section in catalog.items()}  # fmt: skip
        return catalog if not outbox else type(catalog)()

    return part(False), part(True)


def outbox_tables(catalog: Any) -> int:
    """How many tables schema outbox has in a snapshot (0: no pgoutbox, or the stand-in)."""
    tables = getattr(catalog, "tables", None)
    if isinstance(tables, dict):
        return sum(1 for k in tables if str(k).startswith(OUTBOX_SCHEMA + "."))
    section = catalog.get("table", {}) if isinstance(catalog, dict) else {}
    return sum(1 for k in section if str(k).startswith(OUTBOX_SCHEMA + "."))


# -- references -------------------------------------------------------------------------------


@dataclass
class Reference:
    """What a fresh database at a release looks like (its snapshot; the database is dropped)."""

    tag: str
    version: int
    catalog: Any
    versions: list[tuple[int, bool]]
    seconds: float
    db: str = ""
    how: str = ""


def version_diff(expected: list[tuple[int, bool]], actual: list[tuple[int, bool]]) -> list[str]:
    """goose_db_version differences, by (version_id, is_applied) regardless of row order."""
    exp, act = set(expected), set(actual)
    out = [f"goose_db_version: missing row {v} (applied={a})" for v, a in sorted(exp - act)]
    out += [f"goose_db_version: extra row {v} (applied={a})" for v, a in sorted(act - exp)]
    if not out and len(expected) != len(actual):
        out.append(f"goose_db_version: {len(actual)} rows, expected {len(expected)}")
    return out


# -- one downgrade ----------------------------------------------------------------------------


@dataclass
class RunResult:
    """One ``hatchet-schema downgrade`` of a clone, and what it left."""

    source: str
    target: str
    argv: list[str]
    exit_code: int | None = None
    seconds: float = 0.0
    core_requests: int = 0
    requests: dict[str, int] = field(default_factory=dict)
    from_version: int | None = None
    final_version: int | None = None
    target_version: int | None = None
    steps: int | None = None
    patched: list[int] = field(default_factory=list)
    stdout_json: Any = None
    stderr_tail: list[str] = field(default_factory=list)
    stderr: str = ""
    traceback: bool = False
    """The tool printed a Python traceback (the contract says it never does)."""
    catalog_diff: list[str] = field(default_factory=list)
    """Differences from the fresh target outside schema outbox."""
    outbox_diff: list[str] = field(default_factory=list)
    """Differences of schema outbox from the source build's (a downgrade must not touch it)."""
    outbox_note: str = ""
    strict_catalog_diff: list[str] | None = None
    """With ``--strict-bodies``: ``catalog_diff`` with function and view bodies compared as
    text (comments and layout count)."""
    version_diff: list[str] = field(default_factory=list)
    protected_diff: list[str] = field(default_factory=list)
    protected_tables: list[str] = field(default_factory=list)
    round_trip: str = "skipped"
    round_trip_hop: dict[str, Any] | None = None
    round_trip_diff: list[str] = field(default_factory=list)
    harness_error: str | None = None
    check_seconds: float = 0.0

    @property
    def differences(self) -> int:
        return len(self.catalog_diff) + len(self.outbox_diff) + len(self.version_diff)

    @property
    def ok(self) -> bool:
        return (
            self.exit_code == 0
            and not self.differences
            and not self.protected_diff
            and self.round_trip == "ok"
            and self.harness_error is None
            and not self.traceback
        )

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["differences"] = self.differences
        doc["ok"] = self.ok
        return doc


def cli_command() -> list[str]:
    """The venv's ``hatchet-schema`` next to this interpreter, else ``python -m cli``."""
    script = Path(sys.executable).parent / "hatchet-schema"
    if script.exists():
        return [str(script)]
    found = shutil.which("hatchet-schema")
    return [found] if found else [sys.executable, "-m", "cli"]


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(_DROPPED_ENV_PREFIXES) and k.lower() not in _PROXY_VARIABLES
    }
    env.update({"NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "200"})
    env.update(extra)
    return env


@dataclass
class Context:
    """Everything a run needs."""

    repo_path: str
    source: str
    prefix: str
    api_url: str
    helpers: Helpers
    refs: dict[str, Reference]
    no_patches: bool
    keep: bool
    timeout: float
    token: str | None
    extra_args: list[str]
    reuse: bool = False
    rebuild: bool = False
    code_hash: str = ""
    strict_bodies: bool = False


def run_downgrade(
    ctx: Context, template_db: str, source_label: str, target: str, source_tag: str | None = None
) -> RunResult:
    """Clone ``template_db``, downgrade the clone to ``target`` and check what it left.

    ``source_tag`` (default ``--source``) is the release the database was last upgraded to:
    the round trip re-runs its ups."""
    argv = ["downgrade", "--to-release", target, "--yes", "--json"]
    if ctx.no_patches:
        argv.append("--no-patches")
    argv += ctx.extra_args
    result = RunResult(source=source_label, target=target, argv=argv)
    ref = ctx.refs.get(target)
    result.target_version = ref.version if ref else None
    clone = f"{ctx.prefix}_run_{_slug(source_label)}_{_slug(target)}"[:63]
    url = hatchet_build.create_from_template(template_db, clone)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            before = protected_rows(conn)
        result.protected_tables = sorted(before)
        with tempfile.TemporaryDirectory(prefix="hhv-cache-") as cache:
            env = {"DATABASE_URL": url, "GITHUB_API_URL": ctx.api_url,
                   "HATCHET_SCHEMA_CACHE_DIR": cache}  # fmt: skip
            if ctx.token:
                env["GH_TOKEN"] = ctx.token
            hatchet_git_emulator.reset_counts(ctx.api_url)
            started = time.monotonic()
            try:
                done = subprocess.run(
                    [*cli_command(), *argv],
                    cwd=REPO_ROOT,
                    env=clean_env(env),
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    text=True,
                    timeout=ctx.timeout,
                    check=False,
                )
                result.exit_code = done.returncode
                stdout, stderr = done.stdout, done.stderr
            except subprocess.TimeoutExpired as exc:
                result.harness_error = f"timed out after {ctx.timeout:.0f}s"
                stdout = _text(exc.stdout)
                stderr = _text(exc.stderr)
            result.seconds = time.monotonic() - started
            counts = hatchet_git_emulator.counts(ctx.api_url)
            result.core_requests = counts.core
            result.requests = {k: v for k, v in asdict(counts).items() if v}
        result.stderr_tail = [line for line in stderr.splitlines() if line.strip()][-STDERR_TAIL:]
        result.stderr = stderr
        result.traceback = "Traceback (most recent call last)" in stdout + stderr
        _read_json(result, stdout)
        if ctx.no_patches and result.patched:
            result.harness_error = (
                f"--no-patches was passed but {len(result.patched)} step(s) ran patched: "
                f"{', '.join(map(str, result.patched[:5]))}"
            )

        checks = time.monotonic()
        with psycopg.connect(url, autocommit=True) as conn:
            result.protected_diff = protected_diff(before, protected_rows(conn))
            if ref is not None:
                actual, actual_outbox = split_outbox(ctx.helpers.snapshot(conn))
                expected = split_outbox(ref.catalog)[0]
                result.catalog_diff = ctx.helpers.diff(expected, actual)
                if ctx.strict_bodies:
                    strict = ctx.helpers.strict_diff or ctx.helpers.diff
                    result.strict_catalog_diff = strict(expected, actual)
                result.version_diff = version_diff(ref.versions, ctx.helpers.version_rows(conn))
                source_ref = ctx.refs.get(source_tag or ctx.source)
                if source_ref is not None:
                    source_outbox = split_outbox(source_ref.catalog)[1]
                    result.outbox_diff = [
                        f"outbox (vs the source build): {line}"
                        for line in ctx.helpers.diff(source_outbox, actual_outbox)
                    ]
                    result.outbox_note = _outbox_note(ctx, target, source_ref, ref)
        if result.exit_code == 0:
            _round_trip(ctx, result, url, source_tag or ctx.source)
        result.check_seconds = time.monotonic() - checks
    except Exception as exc:
        result.harness_error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        log(traceback.format_exc())
    finally:
        if not ctx.keep:
            hatchet_build.drop_db(clone)
    return result


def kill_and_rerun(
    ctx: Context, template_db: str, target: str, seconds: float, kills: int, seed: int
) -> list[str]:
    """SIGKILL the CLI at ``kills`` random points of a downgrade to ``target`` (uniform over the
    ``seconds`` an uninterrupted run took), re-run it at once, and compare what the re-run left
    with a fresh build of ``target``: the lines say what each kill and re-run did."""
    rng = random.Random(seed)
    ref = ctx.refs.get(target)
    lines: list[str] = []
    argv = ["downgrade", "--to-release", target, "--yes", *ctx.extra_args]
    for n in range(kills):
        clone = f"{ctx.prefix}_kill_{_slug(target)}_{n}"[:63]
        url = hatchet_build.create_from_template(template_db, clone)
        try:
            with tempfile.TemporaryDirectory(prefix="hhv-cache-") as cache:
                env = clean_env({"DATABASE_URL": url, "GITHUB_API_URL": ctx.api_url,
                                 "HATCHET_SCHEMA_CACHE_DIR": cache})  # fmt: skip
                child = subprocess.Popen(
                    [*cli_command(), *argv], cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
                at = rng.uniform(0.0, seconds)
                time.sleep(at)
                child.send_signal(signal.SIGKILL)
                child.wait()
                with psycopg.connect(url, autocommit=True) as conn:
                    left = conn.execute(
                        "SELECT count(*) FROM pg_class WHERE relname = 'journal' AND "
                        "relnamespace = to_regnamespace('hatchet_schema')"
                    ).fetchone()
                    journal = conn.execute(
                        "SELECT count(*) FROM hatchet_schema.journal"
                    ).fetchone() if left and left[0] else (0,)  # fmt: skip
                started = time.monotonic()
                again = subprocess.run(
                    [*cli_command(), *argv], cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
                    capture_output=True, text=True, timeout=ctx.timeout, check=False,
                )  # fmt: skip
                took = time.monotonic() - started
            diffs: list[str] = []
            if ref is not None:
                with psycopg.connect(url, autocommit=True) as conn:
                    actual = split_outbox(ctx.helpers.snapshot(conn))[0]
                    diffs = ctx.helpers.diff(split_outbox(ref.catalog)[0], actual)
                    diffs += version_diff(ref.versions, ctx.helpers.version_rows(conn))
            tail = [ln for ln in again.stderr.splitlines() if ln.strip()][-1:]
            lines.append(
                f"kill {n + 1} at {at:.2f}s (journal rows left: {journal[0] if journal else 0}): "
                f"re-run exit {again.returncode} in {took:.1f}s, {len(diffs)} differences"
                + (f"; {tail[0][:200]}" if again.returncode else "")
            )
            lines += [f"    {d}" for d in diffs[:5]]
        finally:
            if not ctx.keep:
                hatchet_build.drop_db(clone)
    return lines


def _outbox_note(ctx: Context, target: str, source_ref: Reference, ref: Reference) -> str:
    """How the outbox of a downgrade to ``target`` was judged (for the output)."""
    source_version = _pgoutbox_version(ctx, source_ref.tag)
    target_version = _pgoutbox_version(ctx, target)
    if source_version is None:
        return ""
    if target_version is None:
        return (
            f"{target} predates pgoutbox: a fresh {target} has no pgoutbox tables; the "
            f"downgraded database keeps {source_ref.tag}'s (pgoutbox {source_version}), compared "
            "with the source build's; its presence is not counted as a difference"
        )
    if target_version != source_version or outbox_tables(ref.catalog) != outbox_tables(
        source_ref.catalog
    ):
        return (
            f"{target} runs pgoutbox {target_version}, {source_ref.tag} {source_version}: "
            "outbox compared with the source build's (a downgrade never touches it)"
        )
    return ""


def _pgoutbox_version(ctx: Context, tag: str) -> str | None:
    find = getattr(hatchet_build, "pgoutbox_version", None)
    return None if find is None else cast(str | None, find(ctx.repo_path, tag))


@dataclass
class NotADowngrade:
    """A target above the database's current version: skipped, not a failure."""

    source: str
    target: str
    current: int
    target_version: int

    def describe(self) -> str:
        return (
            f"{self.source} -> {self.target}: above current ({self.target} is "
            f"{self.target_version}, the database {self.current}): not a downgrade"
        )


def plan_targets(
    ctx: Context, label: str, current: int | None, targets: Sequence[str]
) -> tuple[list[str], list[NotADowngrade]]:
    """``targets`` split into those to run and those above ``current`` (not downgrades)."""
    run: list[str] = []
    skipped: list[NotADowngrade] = []
    for target in targets:
        ref = ctx.refs.get(target)
        if current is not None and ref is not None and ref.version > current:
            skipped.append(NotADowngrade(label, target, current, ref.version))
        else:
            run.append(target)
    return run, skipped


def _round_trip(ctx: Context, result: RunResult, url: str, source_tag: str) -> None:
    """The source release's ``goose.Up`` on the downgraded database, diffed against fresh."""
    hop = hatchet_build.upgrade_to(url, ctx.repo_path, source_tag)
    result.round_trip_hop = hop.to_json()
    source_ref = ctx.refs[source_tag]
    with psycopg.connect(url, autocommit=True) as conn:
        result.round_trip_diff = ctx.helpers.diff(
            source_ref.catalog, ctx.helpers.snapshot(conn)
        ) + version_diff(source_ref.versions, ctx.helpers.version_rows(conn))
    if hop.status not in ("ok", "nothing"):
        result.round_trip = hop.status
    else:
        result.round_trip = "ok" if not result.round_trip_diff else "diff"


def _read_json(result: RunResult, stdout: str) -> None:
    try:
        doc = json.loads(stdout) if stdout.strip() else None
    except ValueError:
        result.stderr_tail.append(f"(stdout is not JSON: {stdout.strip()[:200]!r})")
        return
    result.stdout_json = doc
    if not isinstance(doc, dict):
        return
    for key in ("from_version", "final_version"):
        if isinstance(doc.get(key), int):
            setattr(result, key, doc[key])
    steps = doc.get("steps")
    if isinstance(steps, list):
        result.steps = len(steps)
        result.patched = [
            int(s["version"]) for s in steps if isinstance(s, dict) and s.get("patched")
        ]


def _clip(line: str, limit: int = 400) -> str:
    return line if len(line) <= limit else line[:limit] + f"... ({len(line)} chars)"


def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


def _slug(tag: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in tag.lower()).strip("_")


# -- building ---------------------------------------------------------------------------------


CACHE_KINDS = ("tpl", "fresh", "path")
"""Cached databases are named ``hhv_<kind>_<what>_<hash>`` (see :func:`cached_db`)."""
CACHE_FORMAT = 1
"""Bump when what a cached database holds changes in a way the hashed inputs do not show."""


@dataclass
class Built:
    """A database made (or reused) by :func:`cached_db`."""

    name: str
    meta: dict[str, Any]
    reused: bool
    seconds: float
    """Time spent here (building, or looking the cached one up)."""

    @property
    def how(self) -> str:
        if not self.reused:
            return f"built in {self.seconds:.1f}s"
        built_in = self.meta.get("build_seconds")
        when = str(self.meta.get("built_at", "?"))[:19]
        took = f" in {float(built_in):.1f}s" if isinstance(built_in, int | float) else ""
        return f"reused (built {when}{took})"


def cache_hash(ctx: Context, kind: str, tags: Sequence[str]) -> str:
    """What decides a cached database's content: the migrations tree id (and pgoutbox
    version) of each tag, the build code's hash and the protected-table DDL."""
    snap = hatchet_git_emulator.snapshot(str(Path(ctx.repo_path).resolve()))
    doc = {
        "format": CACHE_FORMAT,
        "kind": kind,
        "tags": [[t, snap.tags[t].migrations_tree, *_outbox_key(ctx, t)] for t in tags],
        "code": ctx.code_hash,
        "protected": PROTECTED_DDL,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:10]


def _outbox_key(ctx: Context, tag: str) -> list[str]:
    """The pgoutbox version ``tag``'s builds apply and its migrations' tree (or nothing)."""
    outbox = getattr(hatchet_build, "outbox_key", None)
    return list(outbox(ctx.repo_path, tag)) if outbox is not None else []


def cached_db(
    ctx: Context, kind: str, what: str, tags: Sequence[str], build: Callable[[str], dict[str, Any]]
) -> Built:
    """A database of ``kind`` (tpl, fresh, path) for ``tags``, built by ``build(url)``.

    With ``--reuse`` (the default) it is ``hhv_<kind>_<what>_<hash>`` (:func:`cache_hash`),
    kept across runs and built only when missing (or with ``--rebuild``): under a name of this
    run, then renamed (atomic; when another run won the race, its database is used and this
    one dropped). ``build``'s metadata is kept in the database's comment. Without ``--reuse``
    it is ``<run>_<kind>_<what>``, dropped at the end of the run.
    """
    started = time.monotonic()
    if not ctx.reuse:
        name = f"{ctx.prefix}_{kind}_{what}"[:63]
        meta = build(hatchet_build.create_db(name))
        return Built(name, meta, False, time.monotonic() - started)
    final = f"hhv_{kind}_{what}"[:52] + "_" + cache_hash(ctx, kind, tags)
    if not ctx.rebuild:
        found = _cached_meta(final)
        if found is not None:
            return Built(final, found, True, time.monotonic() - started)
    temp = f"{ctx.prefix}_tmp_{kind}_{what}"[:63]
    try:
        meta = build(hatchet_build.create_db(temp))
    except BaseException:
        hatchet_build.drop_db(temp)
        raise
    meta.update(
        kind=kind,
        tags=list(tags),
        code=ctx.code_hash,
        built_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        build_seconds=round(time.monotonic() - started, 3),
    )
    hatchet_build.set_db_comment(temp, json.dumps(meta, default=str))
    if hatchet_build.publish_db(temp, final, replace=ctx.rebuild):
        return Built(final, meta, False, time.monotonic() - started)
    found = _cached_meta(final)  # another run published it first: use that one
    if found is None:
        raise RuntimeError(f"{final} vanished after another run published it")
    return Built(final, found, True, time.monotonic() - started)


def _cached_meta(name: str) -> dict[str, Any] | None:
    """The metadata of cached database ``name``; None when it is missing or not ours."""
    comment = hatchet_build.db_comment(name)
    if comment is None:
        return None
    try:
        meta = json.loads(comment)
    except ValueError:
        return None
    return meta if isinstance(meta, dict) else None


PRUNE_MIN_AGE = datetime.timedelta(hours=1)
"""``--prune-cache`` leaves younger databases alone: a run of other code may be using them."""


def prune_cache(code_hash: str) -> list[str]:
    """Drop cached databases built by other build code more than :data:`PRUNE_MIN_AGE` ago
    (those in use are left alone)."""
    dropped: list[str] = []
    now = datetime.datetime.now(datetime.UTC)
    for kind in CACHE_KINDS:
        for name in hatchet_build.list_dbs(f"hhv_{kind}_"):
            meta = _cached_meta(name)
            if meta is not None and meta.get("code") == code_hash:
                continue
            try:
                built_at = datetime.datetime.fromisoformat(str((meta or {}).get("built_at")))
            except ValueError:
                built_at = None
            if built_at is not None and now - built_at < PRUNE_MIN_AGE:
                continue
            try:
                with psycopg.connect(hatchet_build.ADMIN_URL, autocommit=True) as admin:
                    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(
                        sql.Identifier(name)))  # fmt: skip
            except psycopg.Error as exc:
                log(f"  prune: kept {name}: {str(exc).strip().splitlines()[0]}")
                continue
            dropped.append(name)
    return dropped


def build_reference(ctx: Context, tag: str) -> Reference:
    """A fresh database at ``tag`` (plus the protected tables), snapshotted.

    Not reused: dropped after the snapshot (unless ``--keep``). Reused: kept, never cloned.
    """

    def build(url: str) -> dict[str, Any]:
        hop = hatchet_build.build_at_release(url, ctx.repo_path, tag)
        with psycopg.connect(url, autocommit=True) as conn:
            add_protected_tables(conn)
        return {"version": hop.version_after}

    built = cached_db(ctx, "fresh", _slug(tag), [tag], build)
    try:
        with psycopg.connect(hatchet_build.db_url(built.name), autocommit=True) as conn:
            catalog = ctx.helpers.snapshot(conn)
            versions = ctx.helpers.version_rows(conn)
    finally:
        if not ctx.keep and not ctx.reuse:
            hatchet_build.drop_db(built.name)
    ref = Reference(tag, int(built.meta["version"]), catalog, versions, built.seconds)
    ref.db, ref.how = built.name, built.how
    return ref


_STABLE = re.compile(r"^v(\d+)\.(\d+)\.(\d+)$")
_MIGRATION_NAME = re.compile(r"^(\d{14})_[A-Za-z0-9_]+\.(sql|go)$")


def release_versions(snap: Any) -> dict[str, int]:
    """Stable tag -> the newest migration version it ships (what ``--to-release`` means)."""
    out: dict[str, int] = {}
    for name, info in snap.tags.items():
        if not _STABLE.match(name) or not info.migrations_tree:
            continue
        versions = [
            int(m.group(1))
            for mode, file, _sha in snap.trees.get(info.migrations_tree, [])
            if mode.startswith("100") and (m := _MIGRATION_NAME.match(file))
            and not file.endswith("_test.go")
        ]  # fmt: skip
        if versions:
            out[name] = max(versions)
    return out


def nearest_release_below(versions: dict[str, int], current: int) -> str | None:
    """The stable release with the newest version below ``current`` (newest tag on a tie)."""

    def key(tag: str) -> tuple[int, tuple[int, ...]]:
        m = _STABLE.match(tag)
        return versions[tag], tuple(int(g) for g in m.groups()) if m else ()

    below = [t for t, v in versions.items() if v < current]
    return max(below, key=key) if below else None


def build_template(ctx: Context) -> Built:
    """The seeded source database every target's clone starts from (``meta["seed"]``: what
    the seed did). Nothing ever connects to a reused one: it is only cloned."""

    def build(url: str) -> dict[str, Any]:
        hop = hatchet_build.build_at_release(url, ctx.repo_path, ctx.source)
        return {"version": hop.version_after, "seed": seed(ctx.helpers, url)}

    return cached_db(ctx, "tpl", _slug(ctx.source), [ctx.source], build)


@dataclass
class PathBuild:
    """A database built release by release along one of :data:`PATHS`."""

    name: str
    db: str
    hops: list[HopResult]
    seed: str
    seconds: float
    error: str | None = None
    baseline_diff: list[str] = field(default_factory=list)
    """Catalog and version-row differences from a fresh database at the path's last release,
    before any downgrade (orphan rows, stuck upgrades, renamed files that did not re-run)."""
    how: str = ""

    @property
    def current(self) -> int | None:
        """goose's current version after the last hop."""
        return self.hops[-1].version_after if self.hops else None

    def to_json(self) -> dict[str, Any]:
        return {
            "current": self.current,
            "tags": list(PATHS[self.name]),
            "db": self.db,
            "hops": [h.to_json() for h in self.hops],
            "seed": self.seed,
            "seconds": self.seconds,
            "error": self.error,
            "baseline_diff": self.baseline_diff,
        }


def path_baseline(ctx: Context, built: PathBuild) -> None:
    """Fill ``built.baseline_diff`` against the fresh reference of the path's last release.

    Read from a clone: a (reused) path database must stay free of sessions for clones.
    """
    ref = ctx.refs.get(PATHS[built.name][-1])
    if ref is None or built.error is not None:
        return
    clone = f"{ctx.prefix}_base_{_slug(built.name)}"[:63]
    url = hatchet_build.create_from_template(built.db, clone)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            built.baseline_diff = ctx.helpers.diff(
                ref.catalog, ctx.helpers.snapshot(conn)
            ) + version_diff(ref.versions, ctx.helpers.version_rows(conn))
    finally:
        hatchet_build.drop_db(clone)


def build_path(ctx: Context, name: str) -> PathBuild:
    """Build, hop by hop, then partitions and seed (where the schema allows)."""
    started = time.monotonic()
    tags = PATHS[name]

    def build(url: str) -> dict[str, Any]:
        hops = hatchet_build.build_along_path(url, ctx.repo_path, tags)
        return {"hops": [h.to_json() for h in hops], "seed": seed(ctx.helpers, url)}

    try:
        built = cached_db(ctx, "path", _slug(name), tags, build)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        return PathBuild(name, "", [], "", time.monotonic() - started, error)
    hops = [HopResult(**h) for h in built.meta["hops"]]
    return PathBuild(name, built.name, hops, str(built.meta["seed"]), built.seconds, how=built.how)


def seed(helpers: Helpers, url: str) -> str:
    """Engine partitions, rows and the protected tables; returns a one-line summary."""
    parts: list[str] = []
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            created = helpers.create_engine_partitions(conn)
            parts.append(f"{_size(created)} partitions")
        except Exception as exc:
            parts.append(f"partitions FAILED: {str(exc).splitlines()[0] if str(exc) else exc!r}")
        try:
            seeded = helpers.seed_all(conn)
            if isinstance(seeded, tuple) and len(seeded) == 2:
                ok, failed = seeded
                names = ", ".join(sorted(failed)[:5]) if isinstance(failed, dict) else ""
                unseeded = f" ({names})" if names else ""
                parts.append(f"{_size(ok)} tables seeded, {_size(failed)} not{unseeded}")
            else:
                parts.append(f"seeded {_size(seeded)}")
        except Exception as exc:
            parts.append(f"seed FAILED: {str(exc).splitlines()[0] if str(exc) else exc!r}")
        add_protected_tables(conn)
        rows = protected_rows(conn)
        parts.append(f"protected tables {', '.join(sorted(rows))}")
    return "; ".join(parts)


def _size(value: Any) -> str:
    try:
        return str(len(value))
    except TypeError:
        return str(value)


# -- output -----------------------------------------------------------------------------------


def _exit_text(r: RunResult) -> str:
    exit_code = "T/O" if r.exit_code is None else str(r.exit_code)
    return exit_code + (" TB" if r.traceback else "")


def table(results: Sequence[RunResult]) -> str:
    """The results, one line each; ``diffs`` is the semantic count (catalog + outbox; with
    ``--strict-bodies`` a ``text`` column has the textual one)."""
    strict = any(r.strict_catalog_diff is not None for r in results)
    text = f" {'text':>5}" if strict else ""
    header = (
        f"{'source':<22} {'target':<10} {'exit':>5} {'secs':>7} {'core':>5} {'diffs':>5}{text} "
        f"{'rows':>4} {'prot':>4}  {'round trip':<10} {'final version':<15} patched"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        exit_code = _exit_text(r)
        prot = "ok" if not r.protected_diff else str(len(r.protected_diff))
        final = str(r.final_version or "")
        if r.target_version and r.final_version and r.final_version != r.target_version:
            final += "!"
        lines.append(
            f"{r.source:<22} {r.target:<10} {exit_code:>5} {r.seconds:>7.2f} "
            f"{r.core_requests:>5} {len(r.catalog_diff) + len(r.outbox_diff):>5}"
            + (f" {_strict_count(r):>5}" if strict else "")
            + f" {len(r.version_diff):>4} "
            f"{prot:>4}  {r.round_trip:<10} {final:<15} {len(r.patched)}"
        )
    return "\n".join(lines)


def _strict_count(r: RunResult) -> str:
    if r.strict_catalog_diff is None:
        return ""
    return str(len(r.strict_catalog_diff) + len(r.outbox_diff))


def markdown(results: Sequence[RunResult]) -> str:
    """The results as Markdown tables, one per source: target, exit, seconds, core requests,
    differences (catalog + outbox + version rows; "N (text M)" with ``--strict-bodies``),
    round trip."""
    out: list[str] = []
    sources = list(dict.fromkeys(r.source for r in results))
    for source in sources:
        if out:
            out.append("")
        out += [
            f"**{source}**",
            "",
            "| target | exit | seconds | core requests | differences | round trip |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for r in (r for r in results if r.source == source):
            diffs = str(r.differences)
            if r.strict_catalog_diff is not None:
                text = len(r.strict_catalog_diff) + len(r.outbox_diff) + len(r.version_diff)
                diffs += f" (text {text})"
            if r.protected_diff:
                diffs += f", {len(r.protected_diff)} protected"
            out.append(
                f"| {r.target} | {_exit_text(r)} | {r.seconds:.2f} | {r.core_requests} | "
                f"{diffs} | {r.round_trip} |"
            )
    return "\n".join(out)


def failures(results: Sequence[RunResult]) -> str:
    out: list[str] = []
    for r in results:
        only_text = r.strict_catalog_diff is not None and r.strict_catalog_diff != r.catalog_diff
        if r.ok and not only_text:
            continue
        out.append(f"== {r.source} -> {r.target}: exit {r.exit_code}, round trip {r.round_trip}")
        if r.harness_error:
            out.append(f"   harness error: {r.harness_error}")
        if r.traceback:
            out.append("   the tool printed a TRACEBACK (the contract says: never)")
        if r.exit_code != 0:
            out += [f"   stderr| {_clip(line)}" for line in r.stderr_tail]
        diff = [*r.protected_diff, *r.catalog_diff, *r.outbox_diff, *r.version_diff]
        if diff:
            out.append(f"   {len(diff)} differences from a fresh {r.target}:")
            out += [f"   diff| {line}" for line in diff[:DIFF_LINES]]
        if r.strict_catalog_diff is not None:
            textual = [line for line in r.strict_catalog_diff if line not in r.catalog_diff]
            if textual:
                out.append(f"   {len(textual)} more textually (comments, layout in bodies):")
                out += [f"   text| {line}" for line in textual[:DIFF_LINES]]
        if r.round_trip not in ("ok", "skipped"):
            hop = r.round_trip_hop or {}
            if hop.get("status") in ("refused", "failed"):
                missing = list(hop.get("missing") or [])
                out.append(
                    f"   round trip: goose.Up {hop.get('status')} "
                    f"{hop.get('failed_file') or ''} {hop.get('error') or ''}"
                    f"{' missing ' + str(missing[:5]) if missing else ''}"
                )
            out += [f"   trip| {line}" for line in r.round_trip_diff[:DIFF_LINES]]
    return "\n".join(out)


def outbox_notes(results: Sequence[RunResult]) -> str:
    """One line per distinct outbox judgement (pgoutbox's schema is not Hatchet's)."""
    seen: dict[str, None] = {}
    for r in results:
        if r.outbox_note:
            seen.setdefault(r.outbox_note, None)
    return "\n".join(f"outbox: {note}" for note in seen)


# -- main -------------------------------------------------------------------------------------


@contextmanager
def timed(label: str, timings: dict[str, float]) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        timings[label] = round(time.monotonic() - started, 3)
        log(f"[{timings[label]:7.2f}s] {label}")


def _split(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Downgrade seeded Hatchet databases along real history and diff them."
    )
    parser.add_argument("repo_path", help="a git clone of hatchet-dev/hatchet (bare is fine)")
    parser.add_argument("--targets", default=",".join(DEFAULT_TARGETS))
    parser.add_argument(
        "--source",
        default=DEFAULT_SOURCE,
        help="the release the seeded template is built at (default %(default)s); the round "
        "trip re-runs its migrations",
    )
    parser.add_argument(
        "--no-patches",
        action="store_true",
        help="pass --no-patches to the CLI (a run whose JSON shows a patched step is a failure)",
    )
    parser.add_argument(
        "--strict-bodies",
        action="store_true",
        help="also count differences with function and view bodies compared as text "
        "(comments, layout); the table's diffs stay the semantic count",
    )
    parser.add_argument(
        "--markdown", action="store_true", help="print the results table as Markdown"
    )
    parser.add_argument("--paths", action="store_true", help="also downgrade path-built DBs")
    parser.add_argument("--path-names", default=",".join(PATHS), help="which --paths to build")
    parser.add_argument("--path-targets", default=",".join(DEFAULT_PATH_TARGETS))
    parser.add_argument("--keep", action="store_true", help="keep every database made here")
    parser.add_argument(
        "--reuse",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keep the template, fresh and path databases across runs as "
        "hhv_{tpl,fresh,path}_<what>_<hash> (hash: migrations tree ids, pgoutbox, build code, "
        "seed) and build them only when missing; downgrades always run on a clone "
        "(default: on; --no-reuse builds everything under this run's names and drops it)",
    )
    parser.add_argument(
        "--rebuild", action="store_true", help="with --reuse: rebuild the cached databases"
    )
    parser.add_argument(
        "--prune-cache",
        action="store_true",
        help="first drop cached databases built by other build code (unless in use)",
    )
    parser.add_argument("--json-out", type=Path, help="write every result to this file")
    parser.add_argument("--jobs", type=int, default=2, help="parallel fresh builds")
    parser.add_argument("--timeout", type=float, default=1800.0, help="per downgrade, seconds")
    parser.add_argument("--token", help="run authenticated (the emulator accepts this token)")
    parser.add_argument(
        "--kills",
        type=int,
        default=0,
        help="after each target's run: SIGKILL this many runs at random points "
        "and check that each immediate re-run ends like a fresh target build",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed of --kills")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="emulated API latency")
    parser.add_argument(
        "--cli-arg", action="append", default=[], help="extra downgrade argument (repeatable)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    total_started = time.monotonic()
    timings: dict[str, float] = {}
    targets = _split(args.targets)
    path_names = _split(args.path_names) if args.paths else []
    path_targets = _split(args.path_targets) if args.paths else []
    unknown_paths = [p for p in path_names if p not in PATHS]
    if unknown_paths:
        log(f"unknown path(s) {', '.join(unknown_paths)}; known: {', '.join(PATHS)}")
        return 2

    helpers = load_helpers()
    for note in helpers.notes:
        log(f"NOTE: {note}")
    with timed("read git history", timings):
        snap = hatchet_git_emulator.snapshot(str(Path(args.repo_path).resolve()))
    wanted = {args.source, *targets, *path_targets}
    wanted |= {tag for name in path_names for tag in PATHS[name]}
    missing = sorted(t for t in wanted if t not in snap.tags)
    if missing:
        log(f"no such tag(s) in {args.repo_path}: {', '.join(missing)}")
        return 2
    if not snap.tags[args.source].migrations_tree:
        log(f"--source {args.source} has no goose migrations directory (it first exists at "
            "v0.55.0): nothing to build a template from")  # fmt: skip
        return 2

    prefix = f"hhv_{uuid.uuid4().hex[:6]}"
    results: list[RunResult] = []
    paths_report: dict[str, Any] = {}
    kill_report: dict[str, list[str]] = {}
    exit_status = 1
    ctx = Context(
        repo_path=args.repo_path,
        source=args.source,
        prefix=prefix,
        api_url="",
        helpers=helpers,
        refs={},
        no_patches=args.no_patches,
        strict_bodies=args.strict_bodies,
        keep=args.keep,
        timeout=args.timeout,
        token=args.token,
        extra_args=list(args.cli_arg),
        reuse=args.reuse,
        rebuild=args.rebuild,
        code_hash=hatchet_build.build_code_hash(),
    )
    seed_summary = template = ""
    path_builds: list[PathBuild] = []
    not_downgrades: list[NotADowngrade] = []
    if args.prune_cache:
        with timed("prune cached databases of other build code", timings):
            for name in prune_cache(ctx.code_hash):
                log(f"  dropped {name}")
    try:
        path_ends = {PATHS[name][-1] for name in path_names}
        ref_tags = sorted({args.source, *targets, *path_targets, *path_ends}
                          & {t for t in snap.tags if snap.tags[t].migrations_tree})  # fmt: skip
        jobs = max(1, args.jobs)
        label = (
            f"builds: template, {len(ref_tags)} fresh, {len(path_names)} paths; {jobs} at a time"
        )
        with timed(label, timings), ThreadPoolExecutor(max_workers=jobs) as pool:
            template_job = pool.submit(build_template, ctx)
            path_jobs = [pool.submit(build_path, ctx, name) for name in path_names]
            ref_jobs = [pool.submit(build_reference, ctx, tag) for tag in ref_tags]
            tpl = template_job.result()
            template, seed_summary = tpl.name, str(tpl.meta.get("seed", ""))
            reused = " (reused)" if tpl.reused else ""
            timings[f"template {args.source} (build + seed){reused}"] = round(tpl.seconds, 3)
            log(f"  template {template} {tpl.how}: {seed_summary}")
            for ref_job in ref_jobs:
                ref = ref_job.result()
                ctx.refs[ref.tag] = ref
                log(f"  fresh {ref.tag}: version {ref.version}, {ref.db} {ref.how}")
            path_builds = [job.result() for job in path_jobs]
        versions = release_versions(snap)
        template_runs, not_downgrades = plan_targets(
            ctx, args.source, _int_or_none(tpl.meta.get("version")), targets
        )
        path_runs: dict[str, list[str]] = {}
        for built in path_builds:
            if built.error is not None:
                continue
            run, skipped = plan_targets(ctx, f"path:{built.name}", built.current, path_targets)
            not_downgrades += skipped
            end = ctx.refs.get(PATHS[built.name][-1])
            current = built.current
            if skipped and current is not None and end is not None and current < end.version:
                below = nearest_release_below(versions, current)
                if below is not None and below not in run:
                    log(
                        f"path {built.name} is stuck at {current}: also downgrading it to "
                        f"{below}, the newest release below that"
                    )
                    run.append(below)
            path_runs[built.name] = run
        extra = sorted({t for run in path_runs.values() for t in run} - set(ctx.refs))
        if extra:
            more = f"builds: {len(extra)} more fresh"
            with timed(more, timings), ThreadPoolExecutor(max_workers=jobs) as pool:
                for ref in pool.map(lambda tag: build_reference(ctx, tag), extra):
                    ctx.refs[ref.tag] = ref
                    log(f"  fresh {ref.tag}: version {ref.version}, {ref.db} {ref.how}")
        for built in path_builds:
            path_baseline(ctx, built)
            paths_report[built.name] = built.to_json()
            reused = " (reused)" if built.how.startswith("reused") else ""
            timings[f"path {built.name} (build + seed){reused}"] = round(built.seconds, 3)
            log(f"path {built.name}: {' -> '.join(PATHS[built.name])} ({built.how or built.error})")
            for hop in built.hops:
                log(f"    {hop.describe()}")
            log(f"    {built.error or built.seed}")
            if built.baseline_diff:
                last = PATHS[built.name][-1]
                log(f"    {len(built.baseline_diff)} differences from a fresh {last}")

        serve_options = {"latency": args.latency_ms / 1000, "token": args.token}
        with hatchet_git_emulator.serve(args.repo_path, **serve_options) as api_url:
            ctx.api_url = api_url
            for target in template_runs:
                with timed(f"downgrade {args.source} -> {target}", timings):
                    results.append(run_downgrade(ctx, template, args.source, target))
                _progress(results[-1])
                if args.kills and results[-1].exit_code == 0:
                    with timed(f"{args.kills} SIGKILL re-runs -> {target}", timings):
                        killed = kill_and_rerun(
                            ctx, template, target, results[-1].seconds, args.kills, args.seed
                        )
                    kill_report[target] = killed
                    for line in killed:
                        log(f"    {line}")
            for built in path_builds:
                if built.error is not None:
                    continue
                for target in path_runs.get(built.name, []):
                    with timed(f"downgrade path {built.name} -> {target}", timings):
                        results.append(
                            run_downgrade(
                                ctx, built.db, f"path:{built.name}", target, PATHS[built.name][-1]
                            )
                        )
                    _progress(results[-1])

        print()
        for built in path_builds:
            print(f"path {built.name}: " + " -> ".join(_hop_label(h) for h in built.hops))
            if built.error:
                print(f"   BUILD ERROR: {built.error}")
                continue
            last = PATHS[built.name][-1]
            count = len(built.baseline_diff)
            print(f"   before any downgrade: {count} differences from a fresh {last}")
            for line in built.baseline_diff[:DIFF_LINES]:
                print(f"   base| {line}")
        if path_builds:
            print()
        print(markdown(results) if args.markdown else table(results))
        report = failures(results)
        if report:
            print()
            print(report)
        notes = outbox_notes(results)
        if notes:
            print()
            print(notes)
        if not_downgrades:
            print()
            print("not a downgrade (target above the database's current version; not failures):")
            for skip in not_downgrades:
                print(f"   {skip.describe()}")
        timings["total"] = round(time.monotonic() - total_started, 3)
        print()
        print("timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))
        for note in helpers.notes:
            print(f"NOTE: {note}")
        if args.json_out:
            doc = {
                "repo_path": str(args.repo_path),
                "source": args.source,
                "no_patches": args.no_patches,
                "seed": seed_summary,
                "notes": helpers.notes,
                "references": {t: r.version for t, r in ctx.refs.items()},
                "paths": paths_report,
                "kills": kill_report,
                "not_a_downgrade": [asdict(n) for n in not_downgrades],
                "results": [r.to_json() for r in results],
                "timings": timings,
            }
            args.json_out.write_text(json.dumps(doc, indent=2, default=str) + "\n")
            print(f"wrote {args.json_out}")
        exit_status = 0 if results and all(r.ok for r in results) else 1
    finally:
        if args.keep:
            log(f"kept databases: {', '.join(hatchet_build.list_dbs(prefix))}")
        else:
            for name in hatchet_build.list_dbs(prefix):
                hatchet_build.drop_db(name)
        if args.reuse:
            cached = {template, *(r.db for r in ctx.refs.values()), *(b.db for b in path_builds)}
            cached.discard("")
            log(f"cached databases kept for the next run: {', '.join(sorted(cached))}")
    return exit_status


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) else None


def _hop_label(hop: HopResult) -> str:
    stuck = f"@{hop.failed_version}" if hop.failed_version else ""
    return f"{hop.tag}[{hop.status}{stuck}]"


def _progress(r: RunResult) -> None:
    log(
        f"    exit {r.exit_code} in {r.seconds:.1f}s, {r.core_requests} core, "
        f"{len(r.catalog_diff)} catalog + {len(r.outbox_diff)} outbox + "
        f"{len(r.version_diff)} version diffs, "
        f"round trip {r.round_trip}"
    )


if __name__ == "__main__":
    sys.exit(main())

"""Verify ``hatchet-schema downgrade`` against real Hatchet history (never run in CI).

Usage::

    python scripts/verify_hatchet_history.py REPO_PATH [--targets v0.103.0,...] [--no-patches]
        [--paths] [--path-targets v0.103.0,...] [--keep] [--json-out FILE] [--jobs N]

REPO_PATH is a (bare, possibly partial) clone of hatchet-dev/hatchet; nothing read from it is
written to disk. The server is ``HATCHET_VERIFY_ADMIN_URL`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``); every database made here is named
``hhv_<run>_...`` and dropped at the end unless ``--keep``.

1. Builds a template database at the source release (``--source``, default v0.104.7) with
   goose's Up rules (``hatchet_build``), creates engine partitions and seeds rows
   (``hatchet_seed``), and adds the tables hatchet-schema must never touch (``outbox.migrations``,
   ``atlas_schema_revisions``, ``_prisma_migrations``) when the seed did not create them.
2. Builds a fresh reference database per target (and one at the source), in parallel, and keeps
   only their catalog snapshots (``hatchet_catalog``).
3. Serves the clone's tags through the local GitHub emulator (``hatchet_git_emulator``).
4. For each target: clones the template (``CREATE DATABASE ... TEMPLATE``), runs
   ``hatchet-schema downgrade --to-release T --yes --json`` in a subprocess with
   ``DATABASE_URL``, ``GITHUB_API_URL`` and a fresh ``HATCHET_SCHEMA_CACHE_DIR``, and records the
   exit code, wall seconds and core API requests; diffs the catalog and the ``goose_db_version``
   rows against the fresh database at T and the protected tables' rows against their rows before
   the run; then runs the source release's ``goose.Up`` again (``upgrade_to``) and diffs against
   the fresh source database (the round trip; only after a successful downgrade).
5. With ``--paths``: builds databases along real upgrade paths (some through the releases that
   shipped later-renamed or deleted files, so they hold orphan rows or are stuck), prints what
   each hop's ``goose.Up`` did, and downgrades each to ``--path-targets``.

Prints a table (source, target, exit code, seconds, core requests, catalog differences,
version-row differences, protected tables, round trip) and, for each failure, the tool's stderr
tail and the first 10 difference lines. ``--json-out FILE`` writes every result. Exit status: 0
when every downgrade exited 0 with no difference and a clean round trip, else 1 (today most
targets below v0.96.0 are expected to fail).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
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
from typing import Any

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
    return Helpers(
        create_engine_partitions=seed.create_engine_partitions if seed else _standin_partitions,
        seed_all=seed.seed_all if seed else _standin_seed,
        snapshot=catalog.snapshot if catalog else _standin_snapshot,
        diff=catalog.diff if catalog else _standin_diff,
        version_rows=catalog.version_rows if catalog else _standin_version_rows,
        notes=notes,
    )


# -- tables hatchet-schema must never change --------------------------------------------------

PROTECTED_DDL = [
    "CREATE SCHEMA IF NOT EXISTS outbox",
    """CREATE TABLE IF NOT EXISTS outbox.migrations (
        id bigint PRIMARY KEY, name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now())""",
    """INSERT INTO outbox.migrations (id, name) VALUES (1, 'init'), (2, 'outbox_v2')
        ON CONFLICT DO NOTHING""",
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


# -- references -------------------------------------------------------------------------------


@dataclass
class Reference:
    """What a fresh database at a release looks like (its snapshot; the database is dropped)."""

    tag: str
    version: int
    catalog: Any
    versions: list[tuple[int, bool]]
    seconds: float


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
        return len(self.catalog_diff) + len(self.version_diff)

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


def run_downgrade(ctx: Context, template_db: str, source_label: str, target: str) -> RunResult:
    """Clone ``template_db``, downgrade the clone to ``target`` and check what it left."""
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

        checks = time.monotonic()
        with psycopg.connect(url, autocommit=True) as conn:
            result.protected_diff = protected_diff(before, protected_rows(conn))
            if ref is not None:
                result.catalog_diff = ctx.helpers.diff(ref.catalog, ctx.helpers.snapshot(conn))
                result.version_diff = version_diff(ref.versions, ctx.helpers.version_rows(conn))
        if result.exit_code == 0:
            _round_trip(ctx, result, url)
        result.check_seconds = time.monotonic() - checks
    except Exception as exc:
        result.harness_error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        log(traceback.format_exc())
    finally:
        if not ctx.keep:
            hatchet_build.drop_db(clone)
    return result


def _round_trip(ctx: Context, result: RunResult, url: str) -> None:
    """The source release's ``goose.Up`` on the downgraded database, diffed against fresh."""
    hop = hatchet_build.upgrade_to(url, ctx.repo_path, ctx.source)
    result.round_trip_hop = hop.to_json()
    source_ref = ctx.refs[ctx.source]
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


def build_reference(ctx: Context, tag: str) -> Reference:
    """A fresh database at ``tag`` (plus the protected tables), snapshotted, then dropped."""
    name = f"{ctx.prefix}_fresh_{_slug(tag)}"
    started = time.monotonic()
    url = hatchet_build.create_db(name)
    try:
        hop = hatchet_build.build_at_release(url, ctx.repo_path, tag)
        with psycopg.connect(url, autocommit=True) as conn:
            add_protected_tables(conn)
            catalog = ctx.helpers.snapshot(conn)
            versions = ctx.helpers.version_rows(conn)
    finally:
        if not ctx.keep:
            hatchet_build.drop_db(name)
    return Reference(tag, hop.version_after, catalog, versions, time.monotonic() - started)


def build_template(ctx: Context) -> tuple[str, str, float]:
    """The seeded source database every target's clone starts from: (name, seed summary, s)."""
    started = time.monotonic()
    name = f"{ctx.prefix}_tpl_{_slug(ctx.source)}"
    url = hatchet_build.create_db(name)
    hatchet_build.build_at_release(url, ctx.repo_path, ctx.source)
    summary = seed(ctx.helpers, url)
    return name, summary, time.monotonic() - started


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

    def to_json(self) -> dict[str, Any]:
        return {
            "tags": list(PATHS[self.name]),
            "db": self.db,
            "hops": [h.to_json() for h in self.hops],
            "seed": self.seed,
            "seconds": self.seconds,
            "error": self.error,
            "baseline_diff": self.baseline_diff,
        }


def path_baseline(ctx: Context, built: PathBuild) -> None:
    """Fill ``built.baseline_diff`` against the fresh reference of the path's last release."""
    ref = ctx.refs.get(PATHS[built.name][-1])
    if ref is None or built.error is not None:
        return
    with psycopg.connect(hatchet_build.db_url(built.db), autocommit=True) as conn:
        built.baseline_diff = ctx.helpers.diff(
            ref.catalog, ctx.helpers.snapshot(conn)
        ) + version_diff(ref.versions, ctx.helpers.version_rows(conn))


def build_path(ctx: Context, name: str) -> PathBuild:
    """Build, hop by hop, then partitions and seed (where the schema allows)."""
    started = time.monotonic()
    db = f"{ctx.prefix}_path_{_slug(name)}"
    url = hatchet_build.create_db(db)
    try:
        hops = hatchet_build.build_along_path(url, ctx.repo_path, PATHS[name])
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        return PathBuild(name, db, [], "", time.monotonic() - started, error)
    summary = seed(ctx.helpers, url)
    return PathBuild(name, db, hops, summary, time.monotonic() - started)


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


def table(results: Sequence[RunResult]) -> str:
    header = (
        f"{'source':<22} {'target':<10} {'exit':>5} {'secs':>7} {'core':>5} {'diffs':>5} "
        f"{'rows':>4} {'prot':>4}  {'round trip':<10} {'final version':<15} patched"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        exit_code = "T/O" if r.exit_code is None else str(r.exit_code)
        exit_code += " TB" if r.traceback else ""
        prot = "ok" if not r.protected_diff else str(len(r.protected_diff))
        final = str(r.final_version or "")
        if r.target_version and r.final_version and r.final_version != r.target_version:
            final += "!"
        lines.append(
            f"{r.source:<22} {r.target:<10} {exit_code:>5} {r.seconds:>7.2f} "
            f"{r.core_requests:>5} {len(r.catalog_diff):>5} {len(r.version_diff):>4} "
            f"{prot:>4}  {r.round_trip:<10} {final:<15} {len(r.patched)}"
        )
    return "\n".join(lines)


def failures(results: Sequence[RunResult]) -> str:
    out: list[str] = []
    for r in results:
        if r.ok:
            continue
        out.append(f"== {r.source} -> {r.target}: exit {r.exit_code}, round trip {r.round_trip}")
        if r.harness_error:
            out.append(f"   harness error: {r.harness_error}")
        if r.traceback:
            out.append("   the tool printed a TRACEBACK (the contract says: never)")
        if r.exit_code != 0:
            out += [f"   stderr| {_clip(line)}" for line in r.stderr_tail]
        diff = [*r.protected_diff, *r.catalog_diff, *r.version_diff]
        if diff:
            out.append(f"   {len(diff)} differences from a fresh {r.target}:")
            out += [f"   diff| {line}" for line in diff[:DIFF_LINES]]
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
    parser.add_argument("--source", default=DEFAULT_SOURCE, help="the seeded template's release")
    parser.add_argument("--no-patches", action="store_true", help="pass --no-patches")
    parser.add_argument("--paths", action="store_true", help="also downgrade path-built DBs")
    parser.add_argument("--path-names", default=",".join(PATHS), help="which --paths to build")
    parser.add_argument("--path-targets", default=",".join(DEFAULT_PATH_TARGETS))
    parser.add_argument("--keep", action="store_true", help="keep every database made here")
    parser.add_argument("--json-out", type=Path, help="write every result to this file")
    parser.add_argument("--jobs", type=int, default=2, help="parallel fresh builds")
    parser.add_argument("--timeout", type=float, default=1800.0, help="per downgrade, seconds")
    parser.add_argument("--token", help="run authenticated (the emulator accepts this token)")
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

    prefix = f"hhv_{uuid.uuid4().hex[:6]}"
    results: list[RunResult] = []
    paths_report: dict[str, Any] = {}
    exit_status = 1
    ctx = Context(
        repo_path=args.repo_path,
        source=args.source,
        prefix=prefix,
        api_url="",
        helpers=helpers,
        refs={},
        no_patches=args.no_patches,
        keep=args.keep,
        timeout=args.timeout,
        token=args.token,
        extra_args=list(args.cli_arg),
    )
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
            template, seed_summary, took = template_job.result()
            timings[f"template {args.source} (build + seed)"] = round(took, 3)
            log(f"  template {template} in {took:.1f}s: {seed_summary}")
            for ref_job in ref_jobs:
                ref = ref_job.result()
                ctx.refs[ref.tag] = ref
                log(f"  fresh {ref.tag}: version {ref.version} in {ref.seconds:.1f}s")
            path_builds = [job.result() for job in path_jobs]
        for built in path_builds:
            path_baseline(ctx, built)
            paths_report[built.name] = built.to_json()
            timings[f"path {built.name} (build + seed)"] = round(built.seconds, 3)
            log(f"path {built.name}: {' -> '.join(PATHS[built.name])} ({built.seconds:.1f}s)")
            for hop in built.hops:
                log(f"    {hop.describe()}")
            log(f"    {built.error or built.seed}")
            if built.baseline_diff:
                last = PATHS[built.name][-1]
                log(f"    {len(built.baseline_diff)} differences from a fresh {last}")

        serve_options = {"latency": args.latency_ms / 1000, "token": args.token}
        with hatchet_git_emulator.serve(args.repo_path, **serve_options) as api_url:
            ctx.api_url = api_url
            for target in targets:
                with timed(f"downgrade {args.source} -> {target}", timings):
                    results.append(run_downgrade(ctx, template, args.source, target))
                _progress(results[-1])
            for built in path_builds:
                if built.error is not None:
                    continue
                for target in path_targets:
                    with timed(f"downgrade path {built.name} -> {target}", timings):
                        results.append(run_downgrade(ctx, built.db, f"path:{built.name}", target))
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
        print(table(results))
        report = failures(results)
        if report:
            print()
            print(report)
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
    return exit_status


def _hop_label(hop: HopResult) -> str:
    stuck = f"@{hop.failed_version}" if hop.failed_version else ""
    return f"{hop.tag}[{hop.status}{stuck}]"


def _progress(r: RunResult) -> None:
    log(
        f"    exit {r.exit_code} in {r.seconds:.1f}s, {r.core_requests} core, "
        f"{len(r.catalog_diff)} catalog + {len(r.version_diff)} version diffs, "
        f"round trip {r.round_trip}"
    )


if __name__ == "__main__":
    sys.exit(main())

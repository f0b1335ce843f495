"""Shared test fixtures: a fresh PostgreSQL database per test (empty, or migrated up through the
fixture migrations), and a module-wide GitHub emulator.

Where the server comes from, in order: ``TEST_DATABASE_URL``; else the machine's server at
127.0.0.1:5432 (user postgres, trust auth); else a throwaway cluster started with
``initdb``/``pg_ctl`` (from PATH or ``pg_config --bindir``; as the ``postgres`` OS user when
running as root). If none of those works the tests fail with a clear message, never skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from fixtures.github_emulator import Emulator
from tests.goose_up import FIXTURE_MIGRATIONS, FIXTURE_NEWEST, apply_up, version_ids

LOCAL_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def _can_connect(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _ThrowawayCluster:
    def __init__(self) -> None:
        initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        if not initdb or not pg_ctl:
            raise RuntimeError("initdb/pg_ctl not found on PATH or in `pg_config --bindir`")
        self.pg_ctl = pg_ctl
        self.dir = Path(tempfile.mkdtemp(prefix="hatchet-schema-pg-"))
        self.port = _free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.dir, user="postgres")
        data = self.dir / "data"
        self._run([initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"])
        self._run(
            [
                pg_ctl, "-D", str(data), "-l", str(self.dir / "log"), "-w", "start",
                "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1",
            ]
        )  # fmt: skip
        self.data = data
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, argv: list[str]) -> None:
        if self.as_root:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        subprocess.run(argv, check=True, capture_output=True)

    def stop(self) -> None:
        try:
            self._run([self.pg_ctl, "-D", str(self.data), "-m", "fast", "stop"])
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A maintenance URL of a server the tests may create databases on."""
    explicit = os.environ.get("TEST_DATABASE_URL")
    if explicit:
        if not _can_connect(explicit):
            pytest.fail("TEST_DATABASE_URL is set but no connection could be made to it")
        yield explicit
        return
    if _can_connect(LOCAL_SERVER):
        yield LOCAL_SERVER
        return
    try:
        cluster = _ThrowawayCluster()
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        pytest.fail(
            "no PostgreSQL for the tests: TEST_DATABASE_URL is unset, nothing answers at "
            f"127.0.0.1:5432, and a throwaway cluster could not be started ({exc})"
        )
    try:
        yield cluster.url
    finally:
        cluster.stop()


@contextmanager
def fresh_database(server_url: str, prefix: str = "hs_test") -> Iterator[str]:
    """A new, empty database on ``server_url``; dropped on exit."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    params = conninfo_to_dict(server_url)
    params["dbname"] = name
    try:
        yield make_conninfo("", **params)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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


@pytest.fixture
def migrated(database_url: str) -> str:
    """The test database migrated up through every fixture migration."""
    return migrate_fixtures(database_url)


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

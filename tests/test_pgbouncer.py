"""Through PgBouncer in transaction pooling mode, session advisory locks and every per-session
check are silently meaningless: the downgrade must refuse (exit 2) and say to connect directly.

Each test runs through tests/pooler.py (a transaction-pooling proxy of the tests' own, so a
machine without PgBouncer runs them too) and, when PgBouncer is installed (``apt-get install
pgbouncer``; CI installs it), through a real PgBouncer in front of the test server as well;
pytest's header says whether it was found.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from cli import exit_code_of
from migrator.database import connect
from migrator.errors import MigratorError
from migrator.lock import goose_lock
from migrator.planner import build_plan
from migrator.runner import run_plan
from migrator.sources import load_directory
from migrator.versions import read_version_rows
from tests.goose_up import FIXTURE_MIGRATIONS, apply_up, schema_snapshot
from tests.pooler import pgbouncer_binary, transaction_pooler

V0, V2 = 20250311000000, 20250325120000


POOLERS = ["tests/pooler.py", *(["pgbouncer"] if pgbouncer_binary() else [])]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(params=POOLERS)
def bouncer_url(database_url: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """``database_url`` through a transaction-pooling proxy started for this test: the tests'
    own (tests/pooler.py), or PgBouncer in ``pool_mode = transaction``."""
    params = conninfo_to_dict(database_url)
    if request.param == "tests/pooler.py":
        with transaction_pooler(
            str(params.get("host") or "127.0.0.1"), int(params.get("port") or 5432)
        ) as pooler:
            params.update(host="127.0.0.1", port=str(pooler.port))
            yield make_conninfo("", **params)
        return
    binary = pgbouncer_binary()
    assert binary is not None
    user = str(params.get("user") or "postgres")
    port = _free_port()
    workdir = Path(tempfile.mkdtemp(prefix="hs-pgbouncer-"))
    (workdir / "users.txt").write_text(f'"{user}" ""\n')
    (workdir / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={params.get('host') or '127.0.0.1'} port={params.get('port') or 5432}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {workdir / 'users.txt'}\n"
        "pool_mode = transaction\ndefault_pool_size = 4\n"
        f"logfile = {workdir / 'pgbouncer.log'}\n"
    )
    as_root = os.geteuid() == 0  # pgbouncer refuses to run as root
    if as_root:
        for path in (workdir, *workdir.iterdir()):
            shutil.chown(path, user="postgres")
    proc = subprocess.Popen(
        [binary, str(workdir / "pgbouncer.ini")],
        user="postgres" if as_root else None,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    params.update(host="127.0.0.1", port=str(port))
    url = make_conninfo("", **params)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with psycopg.connect(url, connect_timeout=2) as probe:
                    probe.execute("SELECT 1")
                break
            except psycopg.OperationalError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log = workdir / "pgbouncer.log"
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    pytest.fail(
                        f"pgbouncer did not start: {err}{log.read_text() if log.exists() else ''}"
                    )
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def test_goose_lock_through_pgbouncer_transaction_mode_is_refused(bouncer_url: str) -> None:
    with pytest.raises(MigratorError) as err, goose_lock(bouncer_url, timeout=1):
        pytest.fail("the lock must not be taken through a transaction-pooling PgBouncer")
    assert exit_code_of(err.value) == 2
    assert "PgBouncer" in str(err.value)
    assert "connect to PostgreSQL directly" in str(err.value)


def test_downgrade_through_pgbouncer_transaction_mode_is_refused(
    database_url: str, bouncer_url: str
) -> None:
    migrations = load_directory(FIXTURE_MIGRATIONS)
    apply_up(database_url, FIXTURE_MIGRATIONS, to_version=V2)
    with connect(database_url, read_only=True) as conn:
        plan = build_plan(read_version_rows(conn), migrations, V0)
    before = schema_snapshot(database_url)
    with pytest.raises(MigratorError) as err:
        run_plan(bouncer_url, plan, lambda rows, _c: build_plan(rows, migrations, V0),
                 lock_timeout=1, ignore_active_sessions=True)  # fmt: skip
    message = str(err.value)
    assert exit_code_of(err.value) == 2
    assert "PgBouncer" in message and "transaction" in message
    assert "connect to PostgreSQL directly" in message
    assert "pooler" in message
    assert schema_snapshot(database_url) == before
    assert [s.status for s in plan.steps] == ["ready", "ready"]  # the caller's plan as it was

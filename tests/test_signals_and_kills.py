"""Signals and crashes mid-run: SIGINT/SIGTERM/SIGHUP report where the database is and exit
130/143/129; a NO TRANSACTION step stopped part-way is journaled, shown by ``status`` and
finished by the re-run; after SIGKILL at any point the re-run ends where an uninterrupted run
does.

The CLI runs in a forked child of the test process (a real process, so real signals and a real
SIGKILL, without a fresh interpreter's start-up per run).

The modules the CLI imports lazily are imported here, once, so each forked run starts at once.
"""

from __future__ import annotations

import importlib
import os
import random
import signal
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

import cli
from tests.goose_up import apply_up, schema_snapshot, version_ids

for _module in ("migrator.hatchet.profile", "migrator.planner", "migrator.report",
                "migrator.runner", "migrator.sources", "resolver.images", "rich.console",
                "rich.progress"):  # fmt: skip
    importlib.import_module(_module)

BASE = 20250501000000
TARGET = BASE


def _write(directory: Path, version: int, name: str, up: str, down: str, notx: bool) -> None:
    head = "-- +goose NO TRANSACTION\n" if notx else ""
    text = f"{head}-- +goose Up\n{up}\n-- +goose Down\n{down}\n"
    (directory / f"{version}_{name}.sql").write_text(text)


def long_history(tmp_path: Path, pause: float = 0.03, notx_pause: float = 0.1) -> Path:
    """Transactional and NO TRANSACTION steps, whose downs are not idempotent: each statement
    fails, or does something else, when it is sent a second time."""
    directory = tmp_path / "migrations"
    directory.mkdir()
    _write(directory, BASE, "base", "CREATE TABLE base (id int);", "DROP TABLE base;", False)
    for i in range(1, 7):
        version = BASE + i
        if i % 2:
            _write(
                directory,
                version,
                f"tx_{i}",
                f"CREATE TABLE t_{i} (id int, a int);\nCREATE INDEX t_{i}_a ON t_{i} (a);",
                f"DROP INDEX t_{i}_a;\nSELECT pg_sleep({pause});\nALTER TABLE base ADD COLUMN "
                f"from_tx_{i} int;\nDROP TABLE t_{i};",
                False,
            )
        else:
            _write(
                directory,
                version,
                f"notx_{i}",
                f"CREATE TABLE n_{i} (id int, a int);\nCREATE INDEX n_{i}_a ON n_{i} (a);",
                f"ALTER TABLE n_{i} ADD COLUMN old_b int;\n"
                f"SELECT pg_sleep({notx_pause});\n"
                f"CREATE INDEX CONCURRENTLY n_{i}_old_b ON n_{i} (old_b);\n"
                f"SELECT pg_sleep({notx_pause});\n"
                f"DROP INDEX CONCURRENTLY n_{i}_a;\n"
                f"ALTER TABLE n_{i} RENAME COLUMN a TO a_old;\n"
                f"ALTER TABLE base ADD COLUMN from_notx_{i} int;",
                True,
            )
    return directory


@dataclass
class Child:
    pid: int
    out: Path
    err: Path

    def wait(self, timeout: float = 60.0) -> tuple[int, str, str]:
        deadline = time.monotonic() + timeout
        while True:
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
                raise AssertionError("the CLI did not finish in time")
            time.sleep(0.01)
        code = os.waitstatus_to_exitcode(status)
        return code, self.out.read_text(), self.err.read_text()


def start_cli(args: list[str], env: dict[str, str], tmp: Path) -> Child:
    """The CLI's ``main()`` in a forked child, with ``env`` as its whole environment."""
    tag = uuid.uuid4().hex[:8]
    out, err = tmp / f"out-{tag}", tmp / f"err-{tag}"
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 99
        try:
            for fd, path in ((1, out), (2, err)):
                opened = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                os.dup2(opened, fd)
                os.close(opened)
            sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
            sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
            sys.stdin = open(os.devnull)  # noqa: SIM115
            os.environ.clear()
            os.environ.update(env)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGHUP, signal.SIG_DFL)
            sys.argv = ["hatchet-schema", *args]
            try:
                cli.main()
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            traceback.print_exc()
        finally:
            for stream in (sys.stdout, sys.stderr):
                with suppress(Exception):
                    stream.flush()
            os._exit(code)
    return Child(pid, out, err)


def _env(tmp: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp),
        "HATCHET_SCHEMA_CACHE_DIR": str(tmp / "cache"),
        "NO_COLOR": "1",
        "COLUMNS": "120",
    }


def downgrade_args(url: str, directory: Path) -> list[str]:
    return ["downgrade", "--to-version", str(TARGET), "--migrations-dir", str(directory),
            "--yes", "--database-url", url]  # fmt: skip


def snapshot(url: str) -> dict[str, object]:
    snap = schema_snapshot(url)
    with psycopg.connect(url) as conn:
        snap["indexes"] = conn.execute(
            "SELECT indexrelid::regclass::text, indisvalid FROM pg_index i JOIN pg_class c "
            "ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' ORDER BY 1"
        ).fetchall()
        snap["journal_schema"] = conn.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'hatchet_schema'"
        ).fetchone()
    return snap


def journal_rows(url: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        if not conn.execute("SELECT to_regclass('hatchet_schema.journal')").fetchone()[0]:  # type: ignore[index]
            return []
        return conn.execute(
            "SELECT version_id, position, state FROM hatchet_schema.journal ORDER BY 1, 2"
        ).fetchall()


def goose_locks_held(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND "
            "database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchone()
    return int(row[0]) if row else 0


@contextmanager
def copies_of(server_url: str, template_url: str) -> Iterator[Callable[[], str]]:
    """Databases made as copies of ``template_url``'s database; all dropped at the end."""
    made: list[str] = []
    template = psycopg.conninfo.conninfo_to_dict(template_url)["dbname"]

    def copy() -> str:
        name = f"hs_kill_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(str(template))
                )
            )
        made.append(name)
        return make_conninfo(server_url, dbname=name)

    try:
        yield copy
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            for name in made:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


def _until_running(url: str, needle: str, child: Child, timeout: float = 20.0) -> None:
    """Wait until the child's session runs a statement holding ``needle``. Watched from the
    server's maintenance database: a session on the database itself would make the run refuse."""
    deadline = time.monotonic() + timeout
    dbname = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    with psycopg.connect(make_conninfo(url, dbname="postgres"), autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE datname = %s AND "
                "application_name = 'hatchet-schema' AND state = 'active' AND "
                "strpos(query, %s) > 0)",
                (dbname, needle),
            ).fetchone()
            if row and row[0]:
                return
            if os.waitpid(child.pid, os.WNOHANG)[0]:
                raise AssertionError("the CLI ended before the point of the signal")
            time.sleep(0.005)
    raise AssertionError("the CLI never reached the point of the signal")


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGHUP, 129)]
)
def test_a_signal_in_a_transactional_step_rolls_it_back_and_says_where(
    migrated_history: tuple[str, Path], tmp_path: Path, signum: int, code: int
) -> None:
    url, directory = migrated_history
    before = version_ids(url)
    child = start_cli(downgrade_args(url, directory), _env(tmp_path), tmp_path)
    # The newest step (a NO TRANSACTION one) ends, then the transactional one sleeps in 30 s.
    _until_running(url, "pg_sleep(30)", child)
    os.kill(child.pid, signum)
    exit_code, _out, err = child.wait()
    assert exit_code == code, err
    assert "Traceback" not in err
    name = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "SIGINT", signal.SIGHUP: "SIGHUP"}[signum]
    assert f"stopped by {'Ctrl-C (SIGINT)' if name == 'SIGINT' else name}" in err
    assert f"during step {BASE + 5}_tx_5.sql" in err
    assert "transaction was rolled back" in err
    assert f"The database is at version {BASE + 5}" in err
    assert "1 of 6 step(s) were reverted" in err and f"{BASE + 6}_notx_6.sql" in err
    assert "lock was released" in err
    assert version_ids(url) == before[:-1]  # only the finished step's row is gone
    assert goose_locks_held(url) == 0
    assert journal_rows(url) == []  # nothing half-done to record


@pytest.fixture
def migrated_history(database_url: str, tmp_path: Path) -> tuple[str, Path]:
    directory = long_history(tmp_path)
    # The second step down (tx_5) sleeps long enough to be caught in the act.
    path = directory / f"{BASE + 5}_tx_5.sql"
    path.write_text(path.read_text().replace("pg_sleep(0.03)", "pg_sleep(30)"))
    apply_up(database_url, directory)
    return database_url, directory


def test_a_signal_in_a_no_transaction_step_lets_the_statement_finish_and_the_rerun_goes_on(
    database_url: str, tmp_path: Path, pg_server_url: str
) -> None:
    directory = long_history(tmp_path)
    path = directory / f"{BASE + 6}_notx_6.sql"
    # Statement 2 of the newest (NO TRANSACTION) step takes a while: the signal arrives in it.
    path.write_text(path.read_text().replace("SELECT pg_sleep(0.1);", "SELECT pg_sleep(1.5);", 1))
    apply_up(database_url, directory)
    with copies_of(pg_server_url, database_url) as copy:
        # The uninterrupted run, on a copy, alongside the interrupted one.
        reference = copy()
        whole = start_cli(downgrade_args(reference, directory), _env(tmp_path), tmp_path)
        child = start_cli(downgrade_args(database_url, directory), _env(tmp_path), tmp_path)
        _until_running(database_url, "pg_sleep(1.5)", child)
        started = time.monotonic()
        os.kill(child.pid, signal.SIGTERM)
        code, _out, err = whole.wait()
        assert code == 0, err
        expected = snapshot(reference)
    assert expected["journal_schema"] == (0,)  # a finished run leaves no journal behind

    code, _out, err = child.wait()
    assert code == 143, err
    assert time.monotonic() - started > 0.5  # the sleeping statement was let finish
    assert f"during step {BASE + 6}_notx_6.sql" in err
    assert "statement(s) 1-2 of 7 are applied and stay applied" in err
    assert "hatchet_schema.journal" in err
    assert journal_rows(database_url) == [(BASE + 6, 1, "applied"), (BASE + 6, 2, "applied")]
    assert goose_locks_held(database_url) == 0

    status = start_cli(
        ["status", "--database-url", database_url, "--migrations-dir", str(directory)],
        _env(tmp_path),
        tmp_path,
    ).wait()
    assert status[0] == 0, status[2]
    assert f"interrupted run: version {BASE + 6}: statement(s) 1-2 of 7 applied" in status[1]

    code, _out, err = start_cli(
        downgrade_args(database_url, directory), _env(tmp_path), tmp_path
    ).wait()
    assert code == 0, err
    assert snapshot(database_url) == expected  # statement 1 (ADD COLUMN) was not sent again


def test_twenty_sigkills_at_random_points_each_rerun_ends_like_an_uninterrupted_run(
    database_url: str, tmp_path: Path, pg_server_url: str
) -> None:
    """Twenty runs, each killed at a random point, then run again. The steps mostly sleep on the
    server, so the runs go four at a time, each on its own copy (made in the background while
    the runs before it go on); the kill points are drawn per run from the whole run's time."""
    directory = long_history(tmp_path)
    apply_up(database_url, directory)
    env = _env(tmp_path)
    rng = random.Random(20261201)
    kills, together = 20, 4
    with copies_of(pg_server_url, database_url) as copy, ThreadPoolExecutor(1) as maker:
        reference = copy()
        started = time.monotonic()
        code, _out, err = start_cli(downgrade_args(reference, directory), env, tmp_path).wait()
        whole = time.monotonic() - started
        assert code == 0, err
        expected = snapshot(reference)
        made = [maker.submit(copy) for _ in range(kills)]

        journaled = 0
        for first in range(0, kills, together):
            urls = [m.result() for m in made[first : first + together]]
            delays = [rng.uniform(0.3 * whole, whole) for _ in urls]  # mostly while steps run
            begun = time.monotonic()
            children = [start_cli(downgrade_args(url, directory), env, tmp_path) for url in urls]
            for delay, child in sorted(zip(delays, children, strict=True), key=lambda p: p[0]):
                time.sleep(max(0.0, begun + delay - time.monotonic()))
                os.kill(child.pid, signal.SIGKILL)
            for child in children:
                child.wait()
            journaled += sum(bool(journal_rows(url)) for url in urls)
            reruns = [start_cli(downgrade_args(url, directory), env, tmp_path) for url in urls]
            for url, rerun in zip(urls, reruns, strict=True):
                code, _out, err = rerun.wait()
                assert code == 0, err
                assert snapshot(url) == expected
    # The kills landed inside NO TRANSACTION steps too, where the journal matters.
    print(f"kills inside a NO TRANSACTION step: {journaled} of {kills}; whole run {whole:.2f}s")
    assert journaled >= 3, journaled

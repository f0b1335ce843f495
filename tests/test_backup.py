"""``--backup``: a pg_dump custom-format dump that pg_restore can read, and safe failures."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from cli import exit_code_of
from migrator.backup import find_pg_tool, pg_dump_backup
from migrator.errors import BadInputError, MigratorError

SECRET = "s3cr3t-Pa55word"


def _as_url(conninfo: str, password: str | None = None) -> str:
    p = conninfo_to_dict(conninfo)
    auth = f"{p['user']}:{password}" if password else f"{p['user']}"
    return f"postgresql://{auth}@{p['host']}:{p['port']}/{p['dbname']}"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _restore_list(dump: Path) -> str:
    pg_restore = find_pg_tool("pg_restore")
    assert pg_restore is not None, "pg_restore is needed for this test"
    return subprocess.run(
        [str(pg_restore), "--list", str(dump)], capture_output=True, text=True, check=True
    ).stdout


@pytest.mark.parametrize("form", ["conninfo", "url"])
def test_backup_is_readable_by_pg_restore(database_url: str, tmp_path: Path, form: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE workflow_runs (id int PRIMARY KEY, name text)")
        conn.execute("INSERT INTO workflow_runs VALUES (1, 'first run')")
    dump = tmp_path / "before-downgrade.dump"
    # The test server trusts local connections, so a password in the URL is accepted and unused.
    url = database_url if form == "conninfo" else _as_url(database_url, SECRET)
    written = pg_dump_backup(url, dump)
    assert written == dump.stat().st_size > 0
    assert dump.read_bytes().startswith(b"PGDMP")
    listing = _restore_list(dump)
    assert "TABLE public workflow_runs" in listing
    assert "TABLE DATA public workflow_runs" in listing


def test_existing_file_is_not_overwritten(database_url: str, tmp_path: Path) -> None:
    dump = tmp_path / "backup.dump"
    dump.write_bytes(b"an older backup")
    with pytest.raises(BadInputError) as err:
        pg_dump_backup(database_url, dump)
    assert exit_code_of(err.value) == 2
    assert "already exists" in str(err.value)
    assert dump.read_bytes() == b"an older backup"


def test_missing_directory_is_bad_input(database_url: str, tmp_path: Path) -> None:
    with pytest.raises(BadInputError) as err:
        pg_dump_backup(database_url, tmp_path / "no" / "such" / "dir.dump")
    assert exit_code_of(err.value) == 2


def test_failure_carries_pg_dump_message_without_password(tmp_path: Path) -> None:
    url = f"postgresql://hatchet:{SECRET}@127.0.0.1:{_closed_port()}/hatchet"
    dump = tmp_path / "backup.dump"
    with pytest.raises(MigratorError) as err:
        pg_dump_backup(url, dump)
    message = str(err.value)
    assert exit_code_of(err.value) == 1
    assert message.startswith("pg_dump failed")
    assert "127.0.0.1" in message  # pg_dump's own explanation is passed on
    assert SECRET not in message
    assert not dump.exists()


def test_malformed_url_is_bad_input_without_password(tmp_path: Path) -> None:
    with pytest.raises(BadInputError) as err:
        pg_dump_backup(f"postgresql://u:{SECRET}@[::1/db", tmp_path / "x.dump")
    assert exit_code_of(err.value) == 2
    assert SECRET not in str(err.value)


def test_missing_pg_dump_refuses(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # neither pg_dump nor pg_config can be found
    dump = tmp_path / "backup.dump"
    with pytest.raises(MigratorError) as err:
        pg_dump_backup(database_url, dump)
    assert exit_code_of(err.value) == 1
    assert "pg_dump was not found" in str(err.value)
    assert not dump.exists()


def test_password_goes_through_the_environment_not_argv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stand-in pg_dump records what it was given, then fails, echoing the password back.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    record = tmp_path / "record"
    fake = bindir / "pg_dump"
    fake.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$@" > "{record}.argv"\n'
        f'env | grep "^PG" | sort > "{record}.env"\n'
        'echo "password authentication failed ($PGPASSWORD)" >&2\n'
        "exit 1\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    for name in [k for k in os.environ if k.startswith("PG")]:
        monkeypatch.delenv(name)
    url = f"postgresql://hatchet:{SECRET}@db.internal:6543/hatchet?sslmode=require"
    with pytest.raises(MigratorError) as err:
        pg_dump_backup(url, tmp_path / "backup.dump")
    argv = Path(f"{record}.argv").read_text()
    env = Path(f"{record}.env").read_text().splitlines()
    assert SECRET not in argv and "db.internal" not in argv
    assert "--format=custom" in argv.splitlines()
    assert set(env) >= {
        f"PGPASSWORD={SECRET}",
        "PGHOST=db.internal",
        "PGPORT=6543",
        "PGUSER=hatchet",
        "PGDATABASE=hatchet",
        "PGSSLMODE=require",
    }
    assert SECRET not in str(err.value)
    assert "password authentication failed" in str(err.value)


def _stand_in_pg_dump(bindir: Path, stderr: str) -> None:
    bindir.mkdir(parents=True)
    fake = bindir / "pg_dump"
    fake.write_text(f"#!/bin/sh\necho '{stderr}' >&2\nexit 1\n")
    fake.chmod(0o755)


def test_pg_bindir_names_the_pg_dump_to_run(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real pg_dump stays on PATH: the variable's directory wins over it.
    _stand_in_pg_dump(
        tmp_path / "pg18" / "bin", "pg_dump: error: the one HATCHET_SCHEMA_PG_BINDIR names"
    )
    monkeypatch.setenv("HATCHET_SCHEMA_PG_BINDIR", str(tmp_path / "pg18" / "bin"))
    with pytest.raises(MigratorError) as err:
        pg_dump_backup(database_url, tmp_path / "backup.dump")
    assert "the one HATCHET_SCHEMA_PG_BINDIR names" in str(err.value)


def test_pg_bindir_without_pg_dump_does_not_fall_back_to_path(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert find_pg_tool("pg_dump") is not None  # PATH has one
    monkeypatch.setenv("HATCHET_SCHEMA_PG_BINDIR", str(tmp_path))
    with pytest.raises(MigratorError) as err:
        pg_dump_backup(database_url, tmp_path / "backup.dump")
    assert f"pg_dump was not found in HATCHET_SCHEMA_PG_BINDIR={tmp_path}" in str(err.value)
    assert not (tmp_path / "backup.dump").exists()


def test_too_old_pg_dump_names_the_way_out(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stand_in_pg_dump(
        tmp_path / "bin",
        "pg_dump: error: aborting because of server version mismatch\n"
        "pg_dump: detail: server version: 18.6; pg_dump version: 15.20",
    )
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    with pytest.raises(MigratorError) as err:
        pg_dump_backup(database_url, tmp_path / "backup.dump")
    message = str(err.value)
    assert "server version: 18.6; pg_dump version: 15.20" in message
    assert "set HATCHET_SCHEMA_PG_BINDIR to the bin directory of a pg_dump" in message

"""``--backup`` files are owner-only (0600): a dump holds every row of the database."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from migrator.backup import pg_dump_backup
from migrator.errors import BadInputError


@pytest.fixture
def umask() -> Iterator[None]:
    old = os.umask(0o022)
    os.umask(old)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o000, 0o002, 0o077])
def test_backup_is_created_0600_whatever_the_umask(
    database_url: str, tmp_path: Path, umask: None, mask: int
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE secrets (v text); INSERT INTO secrets VALUES ('row')")
    dump = tmp_path / "before.dump"
    os.umask(mask)
    assert pg_dump_backup(database_url, dump) > 0
    assert _mode(dump) == 0o600
    assert dump.read_bytes().startswith(b"PGDMP")


def test_an_existing_file_is_refused_and_left_as_it_was(database_url: str, tmp_path: Path) -> None:
    dump = tmp_path / "before.dump"
    dump.write_bytes(b"last week's backup")
    dump.chmod(0o644)
    with pytest.raises(BadInputError) as err:
        pg_dump_backup(database_url, dump)
    assert "already exists" in str(err.value)
    assert dump.read_bytes() == b"last week's backup" and _mode(dump) == 0o644


def test_a_symlink_at_the_name_is_refused_not_followed(database_url: str, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    link = tmp_path / "before.dump"
    link.symlink_to(target)
    with pytest.raises(BadInputError):
        pg_dump_backup(database_url, link)
    assert not target.exists()

"""goose's file discovery rules, applied to names and bytes and to local directories."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli import EXIT_BAD_INPUT, exit_code_of
from migrator.errors import BadInputError, MigrationFileError
from migrator.sources import collect, load_directory


def test_versions_kinds_and_contents() -> None:
    found = collect(
        {
            "00001_init.sql": b"-- +goose Up\n",
            "20250430000000_v1_0_7.go": b"package migrations\n",
            "0003_leading_zeros.sql": b"x",
        },
        origin="v0.71.0",
        blob_shas={"00001_init.sql": "a" * 40},
    )
    assert sorted(found) == [1, 3, 20250430000000]
    assert found[1].name == "00001_init.sql"
    assert found[1].kind == "sql"
    assert found[1].content == b"-- +goose Up\n"
    assert found[1].origin == "v0.71.0"
    assert found[1].blob_sha == "a" * 40
    # Without a listed SHA the blob id is computed from the bytes (what ports are keyed by).
    assert found[3].blob_sha == "c1b0730e0133447badcfd47fd144e254807b06e1"  # git hash-object
    assert found[20250430000000].kind == "go"


@pytest.mark.parametrize(
    "name",
    [
        "README.md",
        "1_x.SQL",  # goose's glob is case-sensitive
        "sub/2_x.sql",  # only the top level counts
        "3_x_test.go",
        "helpers.go",  # a .go without a version is skipped
        "0_x.go",
        "-4_x.go",
        "5.go",
        "6_x.sql.bak",
    ],
)
def test_names_goose_ignores(name: str) -> None:
    assert collect({name: b"", "7_ok.sql": b""}, origin="dir").keys() == {7}


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("init.sql", "no '_' after the version number"),
        ("abc_init.sql", "'abc' is not a version number"),
        ("0_init.sql", "the version must be greater than zero"),
        ("-1_init.sql", "the version must be greater than zero"),
        ("99999999999999999999_x.sql", "'99999999999999999999' is not a version number"),
        ("_x.sql", "'' is not a version number"),
        (".sql", "no '_' after the version number"),
    ],
)
def test_sql_without_valid_version_is_an_error(name: str, problem: str) -> None:
    with pytest.raises(MigrationFileError) as err:
        collect({name: b"", "7_ok.sql": b""}, origin="v1.0.0")
    assert str(err.value) == (
        f"migration files in v1.0.0 break goose's naming rules: {name}: {problem}"
    )
    assert exit_code_of(err.value) == EXIT_BAD_INPUT


def test_plus_sign_is_accepted_like_go_parseint() -> None:
    assert collect({"+8_x.sql": b""}, origin="d").keys() == {8}


def test_duplicate_versions_name_every_file() -> None:
    with pytest.raises(MigrationFileError) as err:
        collect(
            {"0010_a.sql": b"", "10_b.go": b"", "11_c.sql": b"", "bad.sql": b""},
            origin="main",
        )
    assert str(err.value) == (
        "migration files in main break goose's naming rules: bad.sql: no '_' after the version "
        "number; duplicate version 10: 0010_a.sql, 10_b.go"
    )


def test_load_directory_reads_top_level_files(tmp_path: Path) -> None:
    (tmp_path / "00002_b.sql").write_bytes(b"-- +goose Up\nSELECT 2;\n")
    (tmp_path / "00001_a.sql").write_bytes(b"\xef\xbb\xbf-- +goose Up\n")
    (tmp_path / "00003_c.go").write_text("package m\n")
    (tmp_path / "notes.txt").write_text("ignored")
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "00009_z.sql").write_text("ignored")
    found = load_directory(tmp_path)
    assert sorted(found) == [1, 2, 3]
    assert found[1].content == b"\xef\xbb\xbf-- +goose Up\n"  # bytes as on disk, BOM kept
    assert found[2].origin == str(tmp_path)
    assert found[3].kind == "go"


def test_load_directory_applies_the_rules(tmp_path: Path) -> None:
    (tmp_path / "1_a.sql").write_text("")
    (tmp_path / "001_b.sql").write_text("")
    with pytest.raises(MigrationFileError, match=r"duplicate version 1: 001_b\.sql, 1_a\.sql"):
        load_directory(str(tmp_path))


def test_load_directory_rejects_a_missing_or_non_directory(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="does not exist or is not a directory"):
        load_directory(tmp_path / "nope")
    afile = tmp_path / "f.sql"
    afile.write_text("")
    with pytest.raises(BadInputError) as err:
        load_directory(afile)
    assert exit_code_of(err.value) == EXIT_BAD_INPUT


def test_empty_directory_gives_no_migrations(tmp_path: Path) -> None:
    assert load_directory(tmp_path) == {}

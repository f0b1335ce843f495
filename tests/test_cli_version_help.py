"""Operator conveniences of the CLI: ``--version`` (and ``tool_version`` in JSON), ``-h`` on every
command, shell completion, the LICENSE. In-process with typer's CliRunner."""

from __future__ import annotations

import json
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from cli import app, tool_version
from tests.goose_up import FIXTURE_MIGRATIONS

ROOT = Path(__file__).resolve().parents[1]
PROG = "hatchet-schema"
COMMANDS = ["resolve", "releases", "status", "downgrade", "bundle"]


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), prog_name=PROG, env=env, catch_exceptions=False)


def test_the_version_is_the_distributions() -> None:
    assert tool_version() == metadata.version("hatchet-schema")


def test_a_checkout_that_is_not_installed_reads_pyproject(monkeypatch: pytest.MonkeyPatch) -> None:
    def not_installed(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", not_installed)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert tool_version() == project["version"]


@pytest.mark.parametrize("where", [[], *([c] for c in COMMANDS)])
def test_version_everywhere(where: list[str]) -> None:
    result = invoke(*where, "--version")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"hatchet-schema {tool_version()}\n"


def test_every_command_is_in_the_list() -> None:
    listed = {
        c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands
    }
    assert set(COMMANDS) <= listed


@pytest.mark.parametrize("where", [[], *([c] for c in COMMANDS)])
def test_dash_h_is_help(where: list[str]) -> None:
    short, long = invoke(*where, "-h"), invoke(*where, "--help")
    assert short.exit_code == long.exit_code == 0
    assert short.stdout == long.stdout
    assert short.stdout.startswith(f"Usage: {' '.join([PROG, *where])} ")
    assert "-h, --help" in short.stdout


def test_completion_is_offered_and_completes() -> None:
    assert "--install-completion" in invoke("--help").stdout
    script = invoke("--show-completion", "bash")
    assert script.exit_code == 0
    assert "complete -o default -F _hatchet_schema_completion hatchet-schema" in script.stdout
    env = {"_HATCHET_SCHEMA_COMPLETE": "complete_bash", "COMP_CWORD": "2"}
    words = invoke(env={**env, "COMP_WORDS": "hatchet-schema downgrade --to-r"})
    assert words.stdout.split() == ["--to-release"]
    words = invoke(env={**env, "COMP_CWORD": "1", "COMP_WORDS": "hatchet-schema re"})
    assert sorted(words.stdout.split()) == ["releases", "resolve"]


def test_json_outputs_carry_the_tool_version(migrated: str) -> None:
    result = invoke(
        "downgrade",
        "--to-version",
        "20250604130000",
        "--migrations-dir",
        str(FIXTURE_MIGRATIONS),
        "--dry-run",
        "--json",
        env={"DATABASE_URL": migrated, "HATCHET_SCHEMA_OFFLINE": "1"},
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["tool_version"] == tool_version()
    assert document["from_version"] == 20250611170000  # the rest is unchanged


def test_the_license_is_mit_as_pyproject_says() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n\nCopyright (c) 2026 the hatchet-schema authors\n")
    assert 'THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND' in text

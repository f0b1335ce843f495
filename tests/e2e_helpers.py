"""Helpers for end-to-end tests: a running GitHub emulator and the installed CLI in a subprocess.

with running_emulator() as gh:
    result = run_cli(["resolve", "v0.60.0"], gh, cache_dir=tmp_path / "cache")
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fixtures.github_emulator import Emulator

REPO_ROOT = Path(__file__).resolve().parent.parent

# Variables of the user's shell that would change what the CLI does; never inherited.
_DROPPED_PREFIXES = ("GH_", "GITHUB_", "HATCHET_SCHEMA_", "DATABASE_URL", "PG")
_PROXY_VARIABLES = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}


@dataclass(frozen=True)
class CliResult:
    """What a CLI run left behind."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return (
            f"$ {' '.join(self.argv)}\nexit {self.returncode}\n"
            f"--- stdout\n{self.stdout}--- stderr\n{self.stderr}"
        )


def cli_command() -> list[str]:
    """The installed console script next to this interpreter, else ``python -m cli``."""
    script = Path(sys.executable).parent / "hatchet-schema"
    if script.exists():
        return [str(script)]
    found = shutil.which("hatchet-schema")
    return [found] if found else [sys.executable, "-m", "cli"]


def clean_env(extra: dict[str, str] | None = None, home: Path | None = None) -> dict[str, str]:
    """The current environment without tokens, proxies and hatchet-schema settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(_DROPPED_PREFIXES) and k.lower() not in _PROXY_VARIABLES
    }
    env["NO_COLOR"] = "1"
    env["TERM"] = "dumb"
    env["COLUMNS"] = "200"
    if home is not None:
        env["HOME"] = str(home)
        env["XDG_CACHE_HOME"] = str(home / ".cache")
    env.update(extra or {})
    return env


@contextmanager
def running_emulator(**options: Any) -> Iterator[Emulator]:
    """An emulator on a free loopback port, serving the fixture history unless ``repos=`` says
    otherwise; stopped on exit."""
    emulator = Emulator(**options)
    with emulator:
        yield emulator


def run_cli(
    args: Sequence[str],
    emulator: Emulator | None,
    *,
    cache_dir: Path | None,
    api_url: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
    input: str | None = None,
) -> CliResult:
    """Run ``hatchet-schema ARGS --api-url URL --cache-dir DIR`` with a clean environment.

    The GitHub flags are appended after the command's own arguments (the contract puts them after
    the command name). ``api_url`` overrides the emulator's; ``cache_dir`` None passes none.
    """
    argv = [*cli_command(), *args]
    url = api_url or (emulator.api_url if emulator is not None else None)
    if url is not None:
        argv += ["--api-url", url]
    if cache_dir is not None:
        argv += ["--cache-dir", str(cache_dir)]
    home = cache_dir.parent / "home" if cache_dir is not None else None
    if home is not None:
        home.mkdir(parents=True, exist_ok=True)
    completed = subprocess.run(
        argv,
        cwd=REPO_ROOT,
        env=clean_env(env, home),
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
        check=False,
    )
    return CliResult(argv, completed.returncode, completed.stdout, completed.stderr)


def files_containing(directory: Path, needle: str) -> list[Path]:
    """Files under ``directory`` whose bytes contain ``needle``."""
    data = needle.encode()
    return [p for p in directory.rglob("*") if p.is_file() and data in p.read_bytes()]


def run_cli_with_database(
    args: Sequence[str], emulator: Emulator | None, tmp_path: Path, database_url: str | None
) -> CliResult:
    """Run the CLI with ``DATABASE_URL`` (when given) and stdin a pipe, never a terminal; a run
    never prints a traceback."""
    env = {"DATABASE_URL": database_url} if database_url is not None else {}
    result = run_cli(args, emulator, cache_dir=tmp_path / "cache", env=env, input="")
    assert "Traceback" not in result.stdout + result.stderr, str(result)
    return result


def ok(result: CliResult) -> CliResult:
    """Exit 0 and no traceback."""
    assert result.returncode == 0, str(result)
    assert "Traceback" not in result.stdout + result.stderr, str(result)
    return result


def refused(result: CliResult, code: int) -> str:
    """Exit ``code`` with one clear message on stderr (no traceback); returns the message."""
    assert result.returncode == code, str(result)
    assert result.stderr.strip(), str(result)
    assert "Traceback" not in result.stdout + result.stderr, str(result)
    return result.stderr

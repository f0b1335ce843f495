"""Helpers for end-to-end tests: a running GitHub emulator and the CLI, in-process or as the
installed console script in a subprocess.

with running_emulator() as gh:
    result = invoke_cli(["resolve", "v0.60.0"], gh, cache_dir=tmp_path / "cache")  # in-process
    result = run_cli(["resolve", "v0.60.0"], gh, cache_dir=tmp_path / "cache")  # a real process

Both take the same arguments and return the same :class:`CliResult`; ``invoke_cli`` runs
``cli.main()`` in this process (typer's CliRunner isolation: stdin, stdout and stderr are
separate pipes, none a terminal; the environment is the clean one ``run_cli`` would pass) and puts
the traceback of an unexpected exception on stderr, as a crashing process would. Keep ``run_cli``
for what needs a process: the console script itself, terminals, signals.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

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


def _argv(
    args: Sequence[str], emulator: Emulator | None, cache_dir: Path | None, api_url: str | None
) -> list[str]:
    """``ARGS --api-url URL --cache-dir DIR``: the GitHub flags go after the command's own
    arguments (the contract puts them after the command name)."""
    argv = list(args)
    url = api_url or (emulator.api_url if emulator is not None else None)
    if url is not None:
        argv += ["--api-url", url]
    if cache_dir is not None:
        argv += ["--cache-dir", str(cache_dir)]
    return argv


def _home(cache_dir: Path | None) -> Path | None:
    home = cache_dir.parent / "home" if cache_dir is not None else None
    if home is not None:
        home.mkdir(parents=True, exist_ok=True)
    return home


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
    """Run the installed ``hatchet-schema ARGS --api-url URL --cache-dir DIR`` in a subprocess
    with a clean environment. ``api_url`` overrides the emulator's; ``cache_dir`` None passes
    none."""
    argv = [*cli_command(), *_argv(args, emulator, cache_dir, api_url)]
    completed = subprocess.run(
        argv,
        cwd=REPO_ROOT,
        env=clean_env(env, _home(cache_dir)),
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
        check=False,
    )
    return CliResult(argv, completed.returncode, completed.stdout, completed.stderr)


def _exit_code(code: object) -> int:
    """The status a process would exit with for ``SystemExit(code)``."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    sys.stderr.write(f"{code}\n")  # what the interpreter prints for a non-integer code
    return 1


def invoke_cli(
    args: Sequence[str],
    emulator: Emulator | None,
    *,
    cache_dir: Path | None,
    api_url: str | None = None,
    env: dict[str, str] | None = None,
    input: str | None = None,
) -> CliResult:
    """``run_cli``'s in-process twin: ``cli.main()`` with ``sys.argv`` set, the same clean
    environment (every variable ``clean_env`` drops is unset for the call) and the same working
    directory; an unexpected exception leaves its traceback on stderr and exit 1."""
    import cli

    argv = ["hatchet-schema", *_argv(args, emulator, cache_dir, api_url)]
    wanted = clean_env(env, _home(cache_dir))
    overrides: dict[str, str | None] = {k: None for k in os.environ if k not in wanted}
    overrides.update({k: v for k, v in wanted.items() if os.environ.get(k) != v})
    saved_argv = sys.argv
    with (
        contextlib.chdir(REPO_ROOT),
        CliRunner().isolation(input=input, env=overrides) as (out, err, _mixed),
    ):
        sys.argv = argv
        try:
            cli.main()
            code = 0
        except SystemExit as exc:
            code = _exit_code(exc.code)
        except Exception:
            traceback.print_exc()
            code = 1
        finally:
            sys.argv = saved_argv
            sys.stdout.flush()
            sys.stderr.flush()
        stdout, stderr = out.getvalue().decode(), err.getvalue().decode()
    return CliResult(argv, code, stdout, stderr)


def no_real_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Make in-process CLI runs record the waits they would sleep (HTTP retries and rate-limit
    waits of the GitHub client, the runner's DDL lock backoff) instead of sleeping; returns the
    list they are appended to, in order."""
    import migrator.commands
    import migrator.runner
    import resolver.service

    sleeps: list[float] = []
    resolver_class = resolver.service.Resolver

    class NoSleepResolver(resolver_class):
        def __init__(self, settings: Any, **options: Any) -> None:
            options.setdefault("sleep", sleeps.append)
            super().__init__(settings, **options)

    real_run_plan: Callable[..., Any] = migrator.runner.run_plan

    def run_plan(*args: Any, **options: Any) -> Any:
        options.setdefault("sleep", sleeps.append)
        return real_run_plan(*args, **options)

    monkeypatch.setattr(resolver.service, "Resolver", NoSleepResolver)
    monkeypatch.setattr(migrator.runner, "run_plan", run_plan)
    monkeypatch.setattr(migrator.commands, "run_plan", run_plan)  # the command layer's import
    return sleeps


def run_on_a_terminal(
    argv: Sequence[str],
    env: dict[str, str],
    *,
    stdin_too: bool = False,
    answer: tuple[bytes, bytes] | None = None,
    cwd: Path | None = None,
    timeout: float = 120,
) -> tuple[int, str]:
    """Run ``argv`` with stderr on a pseudo-terminal (and stdin, with ``stdin_too``; stdout is
    a pipe); returns the exit code and everything written to the terminal. ``answer``:
    (prompt, reply): the reply is typed once the prompt has appeared."""
    import pty
    import threading

    master, slave = pty.openpty()
    chunks: list[bytes] = []

    def drain() -> None:
        answered = False
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                return
            if not data:
                return
            chunks.append(data)
            if answer is not None and not answered and answer[0] in b"".join(chunks):
                os.write(master, answer[1])
                answered = True

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        completed = subprocess.run(
            list(argv),
            cwd=cwd,
            stdin=slave if stdin_too else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=slave,
            env=env,
            timeout=timeout,
            check=False,
        )
    finally:
        os.close(slave)
        reader.join(timeout=10)
        os.close(master)
    return completed.returncode, b"".join(chunks).decode("utf-8", errors="replace")


def files_containing(directory: Path, needle: str) -> list[Path]:
    """Files under ``directory`` whose bytes contain ``needle``."""
    data = needle.encode()
    return [p for p in directory.rglob("*") if p.is_file() and data in p.read_bytes()]


def run_cli_with_database(
    args: Sequence[str], emulator: Emulator | None, tmp_path: Path, database_url: str | None
) -> CliResult:
    """Run the CLI in a subprocess with ``DATABASE_URL`` (when given) and stdin a pipe, never a
    terminal; a run never prints a traceback."""
    env = {"DATABASE_URL": database_url} if database_url is not None else {}
    result = run_cli(args, emulator, cache_dir=tmp_path / "cache", env=env, input="")
    assert "Traceback" not in result.stdout + result.stderr, str(result)
    return result


def invoke_cli_with_database(
    args: Sequence[str], emulator: Emulator | None, tmp_path: Path, database_url: str | None
) -> CliResult:
    """``run_cli_with_database`` in-process (``invoke_cli``)."""
    env = {"DATABASE_URL": database_url} if database_url is not None else {}
    result = invoke_cli(args, emulator, cache_dir=tmp_path / "cache", env=env, input="")
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

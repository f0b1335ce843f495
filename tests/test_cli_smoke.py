"""The CLI as a real process, each way the contract says it starts: the installed console script,
``python -m cli`` and ``python cli.py`` from a checkout. Everything else drives it in-process
(``tests.e2e_helpers.invoke_cli``); these make sure the entry points and their exit codes are the
ones those tests see."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.github_emulator import Emulator
from tests.e2e_helpers import REPO_ROOT, clean_env, cli_command

pytestmark = pytest.mark.e2e

ENTRY_POINTS = {
    "console script": cli_command(),
    "python -m cli": [sys.executable, "-m", "cli"],
    "python cli.py": [sys.executable, "cli.py"],
}


def run(argv: list[str], gh: Emulator, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*argv, "--api-url", gh.api_url, "--cache-dir", str(tmp_path / "cache")],
        cwd=REPO_ROOT,
        env=clean_env(home=tmp_path),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_each_entry_point_resolves_a_release(gh: Emulator, tmp_path: Path, entry: str) -> None:
    done = run([*ENTRY_POINTS[entry], "resolve", "v0.60.0"], gh, tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (0, "20250611170000\n", ""), done


def test_the_console_script_exits_with_the_contracts_code(gh: Emulator, tmp_path: Path) -> None:
    done = run([*ENTRY_POINTS["console script"], "resolve", "v0.59.5"], gh, tmp_path)
    assert done.returncode == 2, done
    assert done.stdout == "" and "v0.59.0" in done.stderr and "Traceback" not in done.stderr

"""What an operator sees from ``downgrade``: the plan at any terminal width, the confirmation
prompt, waits for goose's lock, the progress bar, what is left to do after pinning images, the
way forward out of a blocked plan, and ``--help``.

In-process (``invoke_cli``, typer's CliRunner isolation) against real PostgreSQL, offline with
``--migrations-dir`` except where a release is needed (the GitHub emulator). A terminal is
stood in for by patching the CLI's own ``_stdin_is_terminal`` / ``_stderr_is_terminal`` (and
``TTY_COMPATIBLE=1`` for rich); Ctrl-C at the prompt by ``_read_line`` raising
KeyboardInterrupt, which CliRunner cannot deliver.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import typer.core
import typer.main
from psycopg.conninfo import conninfo_to_dict, make_conninfo

import cli
from fixtures.github_emulator import Emulator
from migrator.lock import GOOSE_LOCK_IDS, goose_lock
from migrator.lockholders import GooseLockWait, reporting_lock_waits
from resolver.images import IMAGE_NAMES, image_reference
from tests.conftest import fresh_database
from tests.e2e_helpers import CliResult, invoke_cli
from tests.goose_up import FIXTURE_BROKEN, INSERT_VERSION_SQL, apply_up, version_ids

pytestmark = pytest.mark.e2e

BASE, MID, LONG, ORPHAN = 20250301000000, 20250302000000, 20250303000000, 20250304000000
MID_FILE = f"{MID}_mid.sql"
LONG_FILE = f"{LONG}_a_rather_long_migration_name_that_goes_o.sql"  # 59 characters
PASSWORD = "Pw-operator-never-shown-41c9"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


def _migration(table: str, down: str | None = None) -> str:
    return (
        f"-- +goose Up\nCREATE TABLE {table} (id INT);\n"
        f"-- +goose Down\n{down or f'DROP TABLE {table};'}\n"
    )


def three_files(tmp_path: Path, *, failing_long_down: bool = False) -> Path:
    """``BASE``, ``MID`` and the long-named ``LONG``; a downgrade to BASE reverts two steps."""
    directory = tmp_path / "migrations"
    directory.mkdir(parents=True)
    (directory / f"{BASE}_base.sql").write_text(_migration("hs_base"))
    (directory / MID_FILE).write_text(_migration("hs_mid"))
    down = "SELECT 1 / 0;" if failing_long_down else None  # fails when run, not when planned
    (directory / LONG_FILE).write_text(_migration("hs_long", down))
    assert len(LONG_FILE) == 59
    return directory


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return three_files(tmp_path_factory.mktemp("operator"))


@pytest.fixture(scope="module")
def untouched(pg_server_url: str, files: Path) -> Iterator[tuple[str, Path]]:
    """A database migrated up through ``files``, shared by the tests of this module that change
    nothing (each checks that it did not); and the directory."""
    with fresh_database(pg_server_url, prefix="hs_operator") as url:
        apply_up(url, files)
        yield url, files


@pytest.fixture(scope="module")
def with_orphan(pg_server_url: str, files: Path) -> Iterator[tuple[str, Path]]:
    """Like ``untouched``, plus an applied row, ``ORPHAN``, that no file has: plans are blocked."""
    with fresh_database(pg_server_url, prefix="hs_operator_orphan") as url:
        apply_up(url, files)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(INSERT_VERSION_SQL, (ORPHAN, True))
        yield url, files


@pytest.fixture
def applied(database_url: str, tmp_path: Path) -> tuple[str, Path]:
    """A database of this test's own, migrated up through ``three_files``, for real runs."""
    directory = three_files(tmp_path)
    apply_up(database_url, directory)
    return database_url, directory


def downgrade(
    args: list[str],
    tmp_path: Path,
    url: str | None,
    *,
    directory: Path | None = None,
    env: dict[str, str] | None = None,
    input: str = "",
    gh: Emulator | None = None,
) -> CliResult:
    argv = ["downgrade", *args]
    if directory is not None:
        argv += ["--migrations-dir", str(directory)]
    extra = {"DATABASE_URL": url} if url else {}
    result = invoke_cli(
        argv, gh, cache_dir=tmp_path / "cache", env={**extra, **(env or {})}, input=input
    )
    assert "Traceback" not in result.stdout + result.stderr, str(result)
    return result


def with_password(url: str) -> str:
    """``url`` with a password (trust auth accepts any)."""
    return make_conninfo(url, password=PASSWORD)


def on_a_terminal(monkeypatch: pytest.MonkeyPatch, *, stdin: bool = False) -> dict[str, str]:
    """Make the CLI take stderr (and ``stdin``) for a terminal; the environment rich needs to
    draw its bar into the captured stderr."""
    monkeypatch.setattr(cli, "_stderr_is_terminal", lambda: True)
    if stdin:
        monkeypatch.setattr(cli, "_stdin_is_terminal", lambda: True)
    return {"TTY_COMPATIBLE": "1", "TERM": "xterm-256color"}


BAR = re.compile(r"(?P<description>\S.*?)\s+(?P<done>\d+)/(?P<total>\d+) \d+:\d\d:\d\d")


def bar_lines(stderr: str) -> list[str]:
    """Each frame of rich's progress bar drawn into ``stderr``: its description and M/N (the
    bar itself is blank without colour), in the order drawn."""
    frames = (BAR.fullmatch(line.strip()) for line in ANSI.sub("\n", stderr).splitlines())
    return [f"{m['description']} {m['done']}/{m['total']}" for m in frames if m]


# -- the plan at any width -----------------------------------------------------------------------


def test_every_version_status_and_file_name_shows_whole_at_any_width(
    with_orphan: tuple[str, Path], tmp_path: Path
) -> None:
    url, directory = with_orphan
    args = ["--to-version", str(BASE), "--dry-run"]
    for columns in (60, 80, 100, 130, 160):
        env = {"COLUMNS": str(columns)}
        result = downgrade(args, tmp_path, url, directory=directory, env=env)
        assert result.returncode == 3, str(result)  # the orphan row blocks the plan
        out = result.stdout
        assert "…" not in out and "..." not in out, out
        lines = out.splitlines()
        for version in (ORPHAN, LONG, MID):
            assert str(version) in out, out
        for name in (LONG_FILE, MID_FILE):
            assert any(name in line for line in lines), out  # on one line, never folded
        assert out.count("ready") >= 2 and "blocked" in out
        for line in lines:  # the source is one word (a path): it stays whole, like a file name
            if line != f"source:   {directory}":
                assert len(line.rstrip()) <= columns, f"{line!r} is wider than {columns}\n{out}"
        blocks = any(line.startswith("1/3 blocked") for line in lines)
        if columns <= 100:
            assert blocks, out  # at 80 columns (and below) always one block per step
            long_head = [i for i, line in enumerate(lines) if line.startswith("2/3 ready")]
            assert len(long_head) == 1, out
            head = lines[long_head[0]]
            assert head.split()[-1] == LONG_FILE or lines[long_head[0] + 1] == LONG_FILE, out
        else:
            assert not blocks, out
            header = next(line for line in lines if line.split()[:2] == ["version", "file"])
            tight = ["stmts", "tx"] if columns == 130 else ["statements", "transaction"]
            assert all(word in header.split() for word in tight), out
            assert "way forward:" in out and "warnings and blocking reasons:" in out
    assert version_ids(url) == [0, BASE, MID, LONG, ORPHAN]


def test_long_hints_wrap_at_word_boundaries(with_orphan: tuple[str, Path], tmp_path: Path) -> None:
    url, directory = with_orphan
    columns = 50
    args = ["--to-version", str(BASE), "--dry-run"]
    with psycopg.connect(url, application_name="hatchet-engine"):  # a long "sessions" line
        result = downgrade(args, tmp_path, url, directory=directory, env={"COLUMNS": str(columns)})
        reasons = downgrade([*args, "--json"], tmp_path, url, directory=directory)
    assert result.returncode == 3, str(result)
    lines = result.stdout.splitlines()
    [orphan] = [s for s in json.loads(reasons.stdout)["steps"] if s["version"] == ORPHAN]

    def wrapped(first: str, indent: int) -> list[str]:
        """The line starting with ``first`` and the lines hanging under it (``indent`` spaces
        in, no more)."""
        start = next(i for i, line in enumerate(lines) if line.startswith(first))
        block = [lines[start]]
        for line in lines[start + 1 :]:
            if not line.startswith(" " * indent) or line[indent] == " ":
                break
            block.append(line)
        return block

    def joined(block: list[str]) -> str:
        return " ".join(line.strip() for line in block)

    note = wrapped("    - blocked: ", 6)
    assert len(note) > 2, result.stdout
    assert joined(note) == f"- blocked: {orphan['reason']}"  # no word was cut in two
    hint = wrapped("    - way forward: ", 6)
    assert len(hint) > 1 and joined(hint).startswith("- way forward: take the migrations from")
    sessions = wrapped("sessions: ", 10)
    assert len(sessions) > 1, result.stdout
    assert joined(sessions).endswith("unless they are stopped or --ignore-active-sessions is given")
    for block in (note, hint, sessions):
        assert all(len(line) <= columns for line in block), block
    # a file name longer than the line stays whole, on a line of its own
    assert LONG_FILE in lines and lines[lines.index(LONG_FILE) - 1].startswith("2/3 ready")


# -- the prompt ----------------------------------------------------------------------------------


def test_the_prompt_names_the_database_and_the_risks_and_no_exits_2(
    untouched: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, directory = untouched
    params = conninfo_to_dict(url)
    where = f"database {params['dbname']} on {params['host']} port {params.get('port', 5432)}"
    on_a_terminal(monkeypatch, stdin=True)
    args = ["--to-version", str(BASE)]
    for answer in ("n\n", "no\n", "maybe\nN\n"):
        result = downgrade(args, tmp_path, with_password(url), directory=directory, input=answer)
        assert result.returncode == 2, str(result)
        assert f"Revert 2 migration(s) on {where}, " in result.stderr
        assert f"{LONG} -> {BASE}" in result.stderr
        assert "(2 data-loss warning(s), 0 of them rows" in result.stderr
        assert "0 patched step(s))? [y/N]" in result.stderr
        assert "cancelled; nothing was changed" in result.stderr
        assert "[y/N]" not in result.stdout and "Revert" not in result.stdout
        assert PASSWORD not in result.stdout + result.stderr
    assert "please answer y or n" in result.stderr
    assert version_ids(url) == [0, BASE, MID, LONG]


def test_end_of_input_is_no_and_yes_runs(
    applied: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, directory = applied
    on_a_terminal(monkeypatch, stdin=True)
    args = ["--to-version", str(BASE), "--json"]
    for answer in ("", "\n"):  # Ctrl-D, Enter
        result = downgrade(args, tmp_path, url, directory=directory, input=answer)
        assert result.returncode == 2, str(result)
        assert "cancelled; nothing was changed" in result.stderr
        assert result.stdout == ""
    assert version_ids(url) == [0, BASE, MID, LONG]

    result = downgrade(args, tmp_path, url, directory=directory, input="yes\n")
    assert result.returncode == 0, str(result)
    assert "[y/N]" in result.stderr
    assert json.loads(result.stdout)["final_version"] == BASE  # stdout is the document alone
    assert version_ids(url)[-1] == BASE


def test_ctrl_c_at_the_prompt_exits_130_and_changes_nothing(
    untouched: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, directory = untouched
    on_a_terminal(monkeypatch, stdin=True)
    asked: list[bool] = []

    def ctrl_c() -> str:
        asked.append(True)
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_read_line", ctrl_c)
    result = downgrade(["--to-version", str(BASE)], tmp_path, url, directory=directory)
    assert asked == [True]
    assert result.returncode == 130, str(result)
    assert "interrupted at the confirmation prompt; nothing was changed" in result.stderr
    assert version_ids(url) == [0, BASE, MID, LONG]


# -- goose's lock and the progress bar -----------------------------------------------------------


def _hold_goose_lock(url: str) -> psycopg.Connection:
    holder = psycopg.connect(url, autocommit=True, application_name="hatchet-migrate")
    holder.execute("SELECT pg_advisory_lock(%s)", (GOOSE_LOCK_IDS[0],))
    return holder


def test_waiting_for_the_lock_says_who_holds_it_and_how_long_it_waits(
    untouched: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, directory = untouched
    # --lock-timeout 0.6 is shorter than the 5 s between tries: only the first try is reported
    args = ["--to-version", str(BASE), "--yes", "--ignore-active-sessions", "--lock-timeout", "0.6"]
    with _hold_goose_lock(url) as holder:
        pid = holder.info.backend_pid
        plain = downgrade(args, tmp_path, url, directory=directory)
        terminal = downgrade(
            args, tmp_path, url, directory=directory, env=on_a_terminal(monkeypatch)
        )
    for result in (plain, terminal):
        assert result.returncode == 4, str(result)
        assert version_ids(url) == [0, BASE, MID, LONG]
    params = conninfo_to_dict(url)
    user, host = str(params["user"]), str(params["host"])
    address = re.escape(host) if host == "127.0.0.1" else r"[^)]+"  # else a name, or a socket
    [wait] = [line for line in plain.stderr.splitlines() if "waiting for the goose" in line]
    assert re.fullmatch(
        rf"waiting for the goose migration lock, held by pid {pid} \(application "
        rf"hatchet-migrate, user {re.escape(user)}, from {address}\), session started "
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d( \S+)? \(\d+ s ago\), idle: waited 0 s, gives up in "
        r"1 s \(--lock-timeout 0\.6\), trying again every 5 s",
        wait,
    ), plain.stderr
    assert f"(held by pid {pid})" in plain.stderr  # the final error names it too
    drawn = ANSI.sub("\n", terminal.stderr)

    def words(text: str) -> str:  # rich wraps the line at its width; the session's age moves on
        return " ".join(re.sub(r"\(\d+ s ago\)", "", text).split())

    assert words(wait) in words(drawn)  # the same line, above the bar
    bars = bar_lines(terminal.stderr)
    assert any("waiting for the goose lock (gives up in 1 s)" in bar for bar in bars), bars
    assert "stopped: 0 of 2 reverted" in bars[-1], bars


def test_goose_lock_reports_each_wait_and_when_it_got_the_lock(
    untouched: tuple[str, Path],
) -> None:
    database_url = untouched[0]
    reports: list[GooseLockWait] = []
    with _hold_goose_lock(database_url) as holder:

        def on_wait(wait: GooseLockWait) -> None:
            reports.append(wait)
            if len(reports) == 2:
                holder.execute("SELECT pg_advisory_unlock(%s)", (GOOSE_LOCK_IDS[0],))

        with goose_lock(database_url, timeout=30, poll_interval=0.05, on_wait=on_wait) as lock:
            assert lock.check() is None
        first, second, taken = reports  # two failed tries, then the lock
        assert first.waited < 0.05  # reported at once, before any pause
        assert second.waited >= 0.05
        for wait in (first, second):
            assert not wait.taken and wait.holder_pids() == (holder.info.backend_pid,)
            assert wait.holders[0].application_name == "hatchet-migrate"
            assert wait.remaining == pytest.approx(30 - wait.waited)
            assert "gives up in 30 s (--lock-timeout 30), trying again every 0.05 s" in (
                wait.describe()
            )
        assert taken.taken and taken.holders == ()
        assert taken.describe() == "took the goose migration lock after waiting 0 s"

    # A lock free at the first try is not a wait: nothing is reported (here through the
    # callback reporting_lock_waits installs, as the CLI does).
    quiet: list[GooseLockWait] = []
    with reporting_lock_waits(quiet.append), goose_lock(database_url, timeout=1):
        pass
    assert quiet == []


def test_the_finished_bar_says_what_was_reverted(
    applied: tuple[str, Path],
    untouched: tuple[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = on_a_terminal(monkeypatch)
    args = ["--to-version", str(BASE), "--yes"]
    url, directory = applied
    result = downgrade(args, tmp_path, url, directory=directory, env=env)
    assert result.returncode == 0, str(result)
    bars = bar_lines(result.stderr)
    assert "reverted 2 step(s)" in bars[-1] and "2/2" in bars[-1], bars
    assert "reverting" not in bars[-1]

    # The first step fails (and is rolled back): the shared database stays as it was.
    url = untouched[0]
    failing = three_files(tmp_path / "failing", failing_long_down=True)
    result = downgrade(args, tmp_path, url, directory=failing, env=env)
    assert result.returncode == 1, str(result)
    bars = bar_lines(result.stderr)
    assert f"FAILED at {LONG_FILE}" in bars[-1] and "0/2" in bars[-1], bars
    assert "stopped" not in bars[-1]
    assert version_ids(url) == [0, BASE, MID, LONG]

    # Stopped before the first step: the lock is held and --lock-timeout 0 waits not at all.
    with _hold_goose_lock(url):
        stopped = [*args, "--ignore-active-sessions", "--lock-timeout", "0"]
        result = downgrade(stopped, tmp_path, url, directory=failing, env=env)
    assert result.returncode == 4, str(result)
    bars = bar_lines(result.stderr)
    assert "stopped: 0 of 2 reverted" in bars[-1] and "0/2" in bars[-1], bars
    assert version_ids(url) == [0, BASE, MID, LONG]


# -- after the run: pinning images ---------------------------------------------------------------

RELEASE, RELEASE_VERSION = "v0.59.0", 20250604130000  # one step below the fixture's newest
STACK = """\
services:
  migration:
    image: ghcr.io/hatchet-dev/hatchet/hatchet-migrate:latest
  engine:
    image: ghcr.io/hatchet-dev/hatchet/hatchet-engine:${HATCHET_VERSION:-v0.60.0}
"""
LITE = """\
services:
  hatchet-lite:
    image: ghcr.io/hatchet-dev/hatchet/hatchet-lite:v0.60.0
"""


def _after_run(
    gh: Emulator, url: str, tmp_path: Path, compose: str | None
) -> tuple[list[str], Path | None]:
    """Downgrade ``url`` to ``RELEASE`` (pinning ``compose``, when given); the stderr lines that
    follow the run's ``done:`` line, and the compose file."""
    args = ["--to-release", RELEASE, "--yes"]
    path = None
    if compose is not None:
        path = tmp_path / "docker-compose.yml"
        path.write_text(compose)
        args += ["--compose-file", str(path)]
    result = downgrade(args, tmp_path, url, gh=gh)
    assert result.returncode == 0, str(result)
    assert version_ids(url)[-1] == RELEASE_VERSION
    lines = result.stderr.splitlines()
    done = next(i for i, line in enumerate(lines) if line.startswith("done: "))
    return lines[done + 1 :], path


def test_next_steps_without_a_compose_file_lists_every_image(
    gh: Emulator, migrated: str, tmp_path: Path
) -> None:
    after, _ = _after_run(gh, migrated, tmp_path, None)
    assert after[0] == f"Pin every Hatchet image to {RELEASE} before starting anything:"
    for name in IMAGE_NAMES:
        assert f"  {image_reference(name, RELEASE)}" in after
    assert len(IMAGE_NAMES) == 7
    text = "\n".join(after)
    assert "--compose-file FILE" in text
    assert f"--set sharedConfig.image.tag={RELEASE}" in text


def test_after_pinning_only_what_is_left_is_advised(
    gh: Emulator, migrated: str, tmp_path: Path
) -> None:
    after, path = _after_run(gh, migrated, tmp_path, STACK)
    assert path is not None and f"hatchet-migrate:{RELEASE}" in path.read_text()
    pinned = next(i for i, line in enumerate(after) if line.startswith("pinned 2 Hatchet image"))
    left = after[pinned + 1 :]
    text = "\n".join(left)
    assert left[0].startswith(f"{path} now pins hatchet-migrate, hatchet-engine to {RELEASE}")
    assert "Pin every Hatchet image" not in text
    for name in IMAGE_NAMES:  # the list of images is not repeated
        assert f"  {image_reference(name, RELEASE)}" not in left
    assert f"  .env and the environment: HATCHET_VERSION={RELEASE} (or unset them)" in text
    lite = image_reference("hatchet-lite", RELEASE)
    assert f"  hatchet-lite, if it runs outside {path}: {lite}" in left
    assert "  other compose files or hosts running Hatchet images" in text
    assert f"--set sharedConfig.image.tag={RELEASE}" in text


def test_next_steps_after_pinning_hatchet_lite_does_not_mention_it(
    gh: Emulator, migrated: str, tmp_path: Path
) -> None:
    after, path = _after_run(gh, migrated, tmp_path, LITE)
    assert path is not None and f"hatchet-lite:{RELEASE}" in path.read_text()
    text = "\n".join(after)
    assert f"{path} now pins hatchet-lite to {RELEASE}" in text
    assert "if it runs outside" not in text
    assert ".env and the environment" not in text  # no tag variable in this file
    assert "  other compose files or hosts running Hatchet images" in text


# -- blocked plans -------------------------------------------------------------------------------


def test_missing_source_names_the_options_that_unblock_it(
    with_orphan: tuple[str, Path], tmp_path: Path
) -> None:
    url, directory = with_orphan
    for mode, outcome in (("--dry-run", "the plan cannot run"), ("--yes", "nothing was changed")):
        args = ["--to-version", str(BASE), mode]
        result = downgrade(args, tmp_path, url, directory=directory)
        assert result.returncode == 3, str(result)
        [message] = result.stderr.strip().splitlines()
        assert f"blocked by 1 step(s), {outcome}: version {ORPHAN} (no file)" in message
        assert "(way forward: take the migrations from a source that has version" in message
        for option in ("--from-ref REF", "--migrations-dir DIR", f"--skip-orphan {ORPHAN}"):
            assert option in message
        assert "way forward:" in result.stdout  # the plan shows it under the step too
    assert version_ids(url) == [0, BASE, MID, LONG, ORPHAN]


def test_an_unparsable_down_names_where_to_take_another_copy(
    untouched: tuple[str, Path], tmp_path: Path
) -> None:
    url, applied_from = untouched
    directory = shutil.copytree(applied_from, tmp_path / "copy")
    # the database was migrated up with a good copy; this copy's down is broken
    shutil.copyfile(
        FIXTURE_BROKEN / "20250702090000_v1_0_16_bad_annotation.sql", directory / LONG_FILE
    )
    result = downgrade(["--to-version", str(BASE), "--dry-run"], tmp_path, url, directory=directory)
    assert result.returncode == 3, str(result)
    message = result.stderr
    assert f"{LONG_FILE}: the down SQL cannot be parsed as goose parses it" in message
    assert (
        "(way forward: take the file from a ref whose copy parses (--from-ref REF) or from a "
        "corrected copy (--migrations-dir DIR))"
    ) in message
    assert "--skip-orphan" not in message and "--no-patches" not in message
    assert "way forward: take the file from a ref" in result.stdout
    assert version_ids(url) == [0, BASE, MID, LONG]


def test_below_the_floor_says_no_option_reaches_it(gh: Emulator, tmp_path: Path) -> None:
    nowhere = "postgresql://postgres@127.0.0.1:1/none"  # never read: the refusal comes first
    below = ["--to-version", "20240101000000"]
    runs = [
        downgrade([*below, "--yes"], tmp_path, nowhere, directory=tmp_path),
        downgrade([*below, "--dry-run"], tmp_path, nowhere, gh=gh),
        downgrade([*below, "--dry-run", "--from-release", "v0.60.0"], tmp_path, None, gh=gh),
    ]
    for result in runs:
        assert result.returncode == 2, str(result)
        [message] = result.stderr.strip().splitlines()
        assert (
            "version 20240101000000 is older than v0.55.0 (20250224171706), the oldest release "
            "a downgrade can reach"
        ) in message
        assert "and no option changes that (restore a backup or snapshot" in message
        assert "way forward" not in message
        assert re.search(r"--[a-z]", message) is None, message  # no option is offered


# -- --help --------------------------------------------------------------------------------------

COMMANDS = ("resolve", "releases", "status", "downgrade", "bundle")


def _help(*args: str) -> str:
    result = invoke_cli([*args, "--help"], None, cache_dir=None, env={"COLUMNS": "100"})
    assert result.returncode == 0, str(result)
    return result.stdout


def _option_help(text: str) -> dict[str, str]:
    """``--option`` -> its help text (wrapped lines joined) from click's Options section."""
    entries: dict[str, str] = {}
    current: str | None = None
    section = text.split("\nOptions:\n", 1)[1]
    for line in section.splitlines():
        start = re.match(r"  (?:-\w, )?(--[\w-]+)(?: \S+)?\s{2,}(.*)", line)
        if start:
            current = start[1]
            entries[current] = start[2]
        elif re.match(r"  (?:-\w, )?--[\w-]+$", line):
            current = line.split()[-1]
            entries[current] = ""
        elif current is not None and line.startswith("   "):
            entries[current] += " " + line.strip()
    return entries


def test_help_has_examples_and_no_type_placeholders() -> None:
    root = _help()
    listed = root.split("\nCommands:\n", 1)[1].splitlines()
    summaries = {line.split()[0]: line.split(None, 1)[1] for line in listed if line.strip()}
    assert set(summaries) == set(COMMANDS)
    for summary in summaries.values():  # one sentence each, none cut short by click
        assert summary.endswith(".") and not summary.endswith("..."), summaries

    group = typer.main.get_command(cli.app)
    assert isinstance(group, typer.core.TyperGroup)
    for name in COMMANDS:
        text = _help(name)
        assert "\n  Examples:\n" in text, name
        assert re.search(rf"\n    hatchet-schema {name} ", text), text
        assert re.search(r"<\w+>", text) is None, text
        for placeholder in ("TEXT", "INTEGER", "FLOAT", "BOOLEAN", "FILENAME", "DIRECTORY"):
            assert re.search(rf"\b{placeholder}\b", text) is None, (name, placeholder)
        command = group.commands[name]
        for param in command.params:
            if isinstance(param, typer.core.TyperOption) and not param.is_flag:
                assert param.metavar, f"{name} {param.opts[0]} has no metavar"
                assert f"{param.opts[0]} {param.metavar}" in text, (name, param.opts)


@pytest.mark.parametrize("columns", ["60", "80"])
def test_help_never_splits_a_word_at_its_hyphen(columns: str) -> None:
    """click's wrapping broke "--migrations-dir" into "--migrations-" / "dir" below 80 columns."""
    for name in (None, *COMMANDS):
        args = [name, "--help"] if name else ["--help"]
        result = invoke_cli(args, None, cache_dir=None, env={"COLUMNS": columns})
        assert result.returncode == 0, str(result)
        split = [line for line in result.stdout.splitlines() if re.search(r"\w-$", line)]
        assert split == [], (name, split)
        assert "\u2011" not in result.stdout


def test_help_tells_migrations_dir_from_migrations_path() -> None:
    for name in ("downgrade", "status"):
        options = _option_help(_help(name))
        local, remote = options["--migrations-dir"], options["--migrations-path"]
        assert "directory on this machine" in local and "--migrations-path" in local, local
        assert "inside the repository" in local or "inside the GitHub repository" in local, local
        assert "inside the GitHub repository" in remote, remote
        assert "not on this machine" in remote and "--migrations-dir" in remote, remote

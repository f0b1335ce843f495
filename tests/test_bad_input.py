"""Issue 8, bad input: whatever text reaches an argument, option or environment variable, the CLI
answers with one message and a contract exit code, never a traceback, never a secret, and never a
change to the database.

The property test introspects every command's parameters (so a new option is fuzzed too), builds
command lines from arbitrary text and from values near the edges (the fixture database, the GitHub
emulator, versions beyond bigint, malformed URLs), runs ``cli.main()`` in this process, and checks
the exit code, stderr, stdout for the mode and a snapshot of the database after every example.
``--yes`` is never given and stdin is not a terminal, so a real downgrade always stops at the
confirmation (exit 2). The other tests pin the fixes one by one: malformed ``goose_db_version``
contents, connection parameters, API URLs, click's own usage errors quoting a password.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from typer.main import get_command
from typer.testing import CliRunner

import cli
from fixtures.github_emulator import Emulator
from resolver.settings import DEFAULT_MIGRATIONS_PATH
from tests.conftest import fresh_database, migrate_fixtures
from tests.e2e_helpers import clean_env, no_real_sleeps
from tests.goose_up import FIXTURE_BROKEN, FIXTURE_MIGRATIONS

SECRET = "h5-Sekr1t-pw"
SECRET_URL = f"postgresql://hatchet:{SECRET}@127.0.0.1:9/hatchet"
TOKEN = "ghp_h5NeverShownToken0123456789"
V8 = "20250507150000"  # a fixture version below the newest: a real plan of five steps
LONG = 100  # an input longer than this is never echoed whole
EXIT_CODES = {0, 1, 2, 3, 4}
# Never generated: --yes could run a real downgrade; help and version print no command's output.
EXCLUDED = {"yes", "help", "version", "install_completion", "show_completion"}
PATH_PARAMS = {"cache_dir", "migrations_dir", "bundle_file", "git_dir", "output", "backup"}
PATH_PARAMS |= {"compose_file"}
# Given more often than the rest: what a command needs to get past its first checks.
LIKELY = {"release", "to_release", "to_version", "output", "database_url", "migrations_dir"}
LIKELY |= {"dry_run", "cache_dir"}
COMMANDS = get_command(cli.app).commands  # type: ignore[attr-defined]

# Any text an argument or an environment variable can hold: no NUL, no lone surrogate.
CHARS = st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\x00")
TEXT = st.text(CHARS, max_size=24) | st.text(CHARS, min_size=LONG + 1, max_size=400)


@dataclass
class World:
    """What the examples point at: the database, the emulator, and a scratch working tree."""

    db_url: str
    api_url: str
    work: Path
    home: Path
    cache: Path
    empty: Path
    garbage: Path
    compose: Path
    values: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)
    baseline: tuple[object, ...] = ()  # the database's snapshot before any example


def _values(w: World) -> dict[str, tuple[list[str], list[str]]]:
    """Per parameter name: values that get far (good), and values just past an edge."""
    good_releases = ["v0.60.0", "v0.56.0", "v0.55.1", "v0.58.0", "v0.60.1-rc.1"]
    releases = ["v0.54.0", "v0.58.0-alpha.1", "v9.9.9", "0.19.2", "v.jun-27-demo.3", "v0.60.0\n"]
    releases += [" v0.60.0", "refs/tags/v0.60.0", "V0.60.0", SECRET_URL, ""]
    versions = ["1", "99999999999999999999", "9223372036854775808", "9223372036854775807", "²"]
    versions += ["١٢٣", "-1", "+20250507150000", " 20250507150000", "2025_05", "0x10", SECRET_URL]
    urls = [SECRET_URL, f"{w.db_url} sslmode=bogus", f"{w.db_url} port=abc", "host=127.0.0.1 x"]
    urls += [f"{w.db_url} nosuchkeyword=1", "postgresql://postgres@127.0.0.1:5432/hs_no_such_db"]
    urls += ["postgresql://postgres@127.0.0.1:5432/postgres?sslmode=bogus", "postgresql://"]
    urls += ["postgresql://postgres@127.0.0.1:99999/x", "postgresql://[::1", ""]
    urls += [f"{w.db_url} target_session_attrs=bogus", f"{w.db_url} connect_timeout=abc"]
    urls += ["postgresql://postgres@127.0.0.1:5432/postgres?options=-c%20search_path%3Dnone"]
    urls += ["postgresql://postgres@127.0.0.1:9/x", "postgresql://nobody@127.0.0.1:5432/postgres"]
    numbers = ["-1", "nan", "inf", "1e309", "99999999999999999999", "", SECRET_URL]
    api = ["http://[::1", "https://h:99999999/api/v3", "ftp://x", f"{w.api_url}?x=1", ""]
    api += ["http://u:p@127.0.0.1/api/v3", "http://127.0.0.1:9/api/v3", "https://:80"]
    api += [w.api_url.replace("http://", "http://["), "http:///api/v3", "http://\u2488/api/v3"]
    paths = {"good": [str(FIXTURE_MIGRATIONS), str(FIXTURE_BROKEN)], "bad": [str(w.empty)]}
    return {
        "release": (good_releases, releases),
        "to_release": (good_releases, releases),
        "from_release": (good_releases, releases),
        "from_ref": (good_releases, [*releases, "main", "0" * 40]),
        "to_version": ([V8, "20250423110000", "0", "20250611170000", "20990101000000"], versions),
        "database_url": ([w.db_url], urls),
        "rehearse_url": ([], urls),
        "api_url": ([w.api_url], api),
        "token": ([""], [TOKEN, f"{TOKEN}\n", "tök€n", f"{TOKEN} x"]),
        "repo": (["hatchet-dev/hatchet"], ["nobody/nothing", "../..", "a/b/c", "", "x/"]),
        "migrations_path": ([DEFAULT_MIGRATIONS_PATH], ["nope", "", "/", "..", "%", "a\nb"]),
        "cache_dir": ([str(w.cache)], [str(w.garbage)]),
        "migrations_dir": (paths["good"], paths["bad"] + [str(w.garbage)]),
        "bundle_file": ([], [str(w.garbage), str(w.empty), str(w.compose)]),
        "git_dir": ([], [str(w.empty), str(w.garbage), str(FIXTURE_MIGRATIONS)]),
        "output": (["out.bundle"], [str(w.empty), str(w.compose)]),
        "backup": (["before.dump"], [str(w.empty)]),
        "compose_file": ([str(w.compose)], [str(w.empty)]),
        "lock_timeout": (["0", "1", "0.5"], numbers),
        "ddl_lock_timeout": (["0", "1", "0.5"], numbers),
        "statement_timeout": (["0", "30"], numbers),
        "ddl_lock_retries": (["0", "3"], numbers),
        "limit": (["1", "3"], numbers),
        "skip_orphan": (["20250611170000"], numbers),
        "rehearse": ([], ["schemas", "DATA", ""]),
        "listings": (["plan", "auto"], ["ALL", "", "none"]),
        "offline": (["0"], ["1", "true", "garbage", ""]),
    }


@pytest.fixture(scope="module")
def world(
    pg_server_url: str, gh: Emulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    base = tmp_path_factory.mktemp("bad_input")
    for name in ("work", "home", "cache", "empty"):
        (base / name).mkdir()
    garbage = base / "garbage.bin"
    garbage.write_bytes(b"\x00\xffnot a bundle\n")
    compose = base / "docker-compose.yml"
    compose.write_text(
        "services:\n  engine:\n    image: ghcr.io/hatchet-dev/hatchet/hatchet-engine:v0.60.0\n"
    )
    with fresh_database(pg_server_url, prefix="hs_bad_input") as url:
        migrate_fixtures(url)
        w = World(url, gh.api_url, base / "work", base / "home", base / "cache", base / "empty",
                  garbage, compose)  # fmt: skip
        w.values = _values(w)
        w.baseline = snapshot(url)
        yield w


@pytest.fixture(scope="module", autouse=True)
def fast() -> Iterator[None]:
    """HTTP retries and rate-limit waits of an unreachable API URL cost no time, and typer builds
    the click command once, not on every run (a tenth of a second each; ``main()`` runs as is)."""
    command = get_command(cli.app)
    with pytest.MonkeyPatch.context() as mp:
        no_real_sleeps(mp)
        mp.setattr(cli, "app", lambda *args, **kwargs: command.main(*args, **kwargs))
        yield


# -- running the CLI -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    argv: list[str]
    env: dict[str, str]
    code: int
    stdout: str
    stderr: str
    crash: str | None  # the traceback of an exception that escaped main()

    def __str__(self) -> str:
        return (
            f"argv={self.argv!r}\nenv={self.env!r}\nexit {self.code}\n"
            f"--- stdout\n{self.stdout[:2000]}\n--- stderr\n{self.stderr[:2000]}\n"
            f"--- crash\n{self.crash or ''}"
        )


def run(argv: Sequence[str], env: dict[str, str], w: World) -> Run:
    """``hatchet-schema ARGV`` through ``cli.main()`` with exactly ``env`` on top of a clean
    environment (HOME in the scratch tree), in the scratch working directory, stdin not a
    terminal."""
    wanted = clean_env(env, w.home)
    overrides: dict[str, str | None] = {k: None for k in os.environ if k not in wanted}
    overrides.update({k: v for k, v in wanted.items() if os.environ.get(k) != v})
    saved = sys.argv
    crash = None
    with contextlib.chdir(w.work), CliRunner().isolation(input="", env=overrides) as streams:
        out, err, _ = streams
        sys.argv = ["hatchet-schema", *argv]
        try:
            cli.main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            crash = traceback.format_exc()
            code = -1
        finally:
            sys.argv = saved
            sys.stdout.flush()
            sys.stderr.flush()
        stdout = out.getvalue().decode(errors="replace")
        stderr = err.getvalue().decode(errors="replace")
    return Run(list(argv), dict(env), code, stdout, stderr, crash)


# -- the database must not change -----------------------------------------------------------------

_CATALOG = """
SELECT md5(coalesce(string_agg(x, E'\\n' ORDER BY x), '')) FROM (
    SELECT format('rel %s.%s %s %s', n.nspname, c.relname, c.relkind, c.relfilenode)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.oid >= 16384 AND n.nspname !~ '^pg_(toast_)?temp_'
    UNION ALL
    SELECT format('col %s %s %s %s %s', a.attrelid::regclass, a.attname, a.atttypid,
                  a.attnotnull, a.attisdropped)
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE a.attrelid >= 16384 AND a.attnum > 0 AND n.nspname !~ '^pg_(toast_)?temp_'
    UNION ALL
    SELECT format('con %s %s %s', conrelid::regclass, conname, pg_get_constraintdef(oid))
    FROM pg_constraint WHERE oid >= 16384
    UNION ALL
    SELECT format('fn %s %s', p.oid::regprocedure, md5(p.prosrc))
    FROM pg_proc p WHERE p.oid >= 16384
    UNION ALL
    SELECT format('type %s %s', t.oid::regtype, t.typtype) FROM pg_type t WHERE t.oid >= 16384
    UNION ALL
    SELECT format('enum %s %s %s', enumtypid::regtype, enumlabel, enumsortorder) FROM pg_enum
    UNION ALL
    SELECT format('trigger %s %s', tgrelid::regclass, tgname) FROM pg_trigger WHERE oid >= 16384
    UNION ALL
    SELECT format('schema %s', nspname) FROM pg_namespace
    WHERE oid >= 16384 AND nspname !~ '^pg_(toast_)?temp_'
) s(x)
"""


def snapshot(url: str) -> tuple[object, ...]:
    """The goose_db_version rows and a digest of the catalog (relations, columns, constraints,
    functions, types, triggers, schemas; relfilenode catches a rewrite)."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT id, version_id, is_applied, tstamp FROM goose_db_version ORDER BY id"
        ).fetchall()
        digest = conn.execute(_CATALOG).fetchone()
    return (tuple(rows), digest)


# -- what a run must look like --------------------------------------------------------------------


def check(r: Run, *, mode: str, inputs: Sequence[str]) -> None:
    """The contract for any input: a contract exit code, no traceback, no secret, no long input
    echoed whole, and stdout valid for ``mode`` (json, resolve, or free text)."""
    assert r.crash is None, str(r)
    assert r.code in EXIT_CODES, str(r)
    assert "Traceback" not in r.stderr, str(r)
    for secret in (SECRET, TOKEN):
        assert secret not in r.stdout + r.stderr, f"{secret} shown\n{r}"
    for text in inputs:
        if len(text) > LONG and text.strip():
            assert text not in r.stderr, f"a {len(text)}-character input echoed whole\n{r}"
    if r.code != 0:
        assert r.stderr.strip(), f"a failure says nothing\n{r}"
    if mode == "json" and r.stdout.strip():
        try:
            json.loads(r.stdout)
        except ValueError:
            pytest.fail(f"--json printed something that is not JSON\n{r}")
    elif mode == "resolve":
        assert r.stdout == "" or re.fullmatch(r"\d{14}\n", r.stdout), str(r)


# -- generating command lines ---------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    argv: list[str]
    env: dict[str, str]
    mode: str


def _path_text(text: str) -> str:
    """Arbitrary text as a name inside the scratch working directory: nothing outside it is
    written (a cache directory or a bundle may be created)."""
    return "p" + text.replace("/", "_")


@st.composite
def examples(draw: st.DrawFn, command: str, w: World) -> Example:
    """A command line and environment for ``command``. Half of them are tame (values that get
    far, one of each exclusive pair, no noise) so the deep paths are reached as often as the
    first checks; the other half is wild."""
    params = [p for p in COMMANDS[command].params if p.name not in EXCLUDED]
    tame = draw(st.booleans())

    def value(name: str) -> str:
        good, edge = w.values.get(name, ([], []))
        if tame and good and draw(st.integers(0, 9)):
            text = draw(st.sampled_from(good))
        elif (good or edge) and draw(st.integers(0, 2)):
            text = draw(st.sampled_from(good + edge))
        else:
            text = draw(TEXT)
        if name in PATH_PARAMS and text not in good + edge:
            text = _path_text(text)
        return text

    def likely(name: str) -> bool:
        if tame and name in w.values and not w.values[name][0]:
            return False  # none of its values gets far
        return draw(st.integers(0, 3)) < (3 if name in LIKELY else 1)

    chosen = [p for p in params if p.name and likely(p.name)]
    if tame:
        named = [p for p in params if p.name in ("to_release", "to_version")]
        if named:  # exactly one of them
            keep = draw(st.sampled_from(named))
            chosen = [p for p in chosen if p not in named] + [keep]
    pieces: list[list[str]] = []
    for p in chosen:
        flag = p.opts[0]
        if not flag.startswith("-"):  # the argument
            pieces.append([value(str(p.name))])
        elif p.is_flag:
            pieces.append([flag])
        else:
            for _ in range(draw(st.integers(1, 2)) if p.multiple else 1):
                pieces.append([flag, value(str(p.name))])
    env: dict[str, str] = {"GITHUB_API_URL": w.api_url}  # never the real GitHub by default
    for p in params:
        names = [p.envvar] if isinstance(p.envvar, str) else list(p.envvar or [])
        for var in names:
            if p.name and draw(st.integers(0, 9 if tame else 3)) == 0:
                text = value(p.name)
                if var.endswith("_CACHE_DIR") and "/" in text:
                    text = _path_text(text)
                if var == "GITHUB_API_URL" and not text.strip():
                    continue  # empty means the default: the real GitHub
                env[var] = text
    # Noise: options of other commands, unknown ones, a password URL where none belongs.
    own = {o for p in COMMANDS[command].params for o in p.opts}
    others = sorted({o for c in COMMANDS.values() for p in c.params for o in p.opts} - own)
    others = [o for o in others if o.startswith("--") and o != "--yes"]
    noise = st.one_of(
        st.sampled_from(others).map(lambda o: [o, SECRET_URL]),
        st.just(["--nope", SECRET_URL]),
        st.just([SECRET_URL]),
        st.just([f"--database-url={SECRET_URL}"]),
        TEXT.filter(lambda t: not t.startswith("-")).map(lambda t: [t]),
    )
    if not tame and draw(st.booleans()):
        pieces.append(draw(noise))
    pieces = draw(st.permutations(pieces))
    argv = [command, *(token for piece in pieces for token in piece)]
    if not tame and draw(st.integers(0, 5)) == 3:  # an option missing its value, last
        argv.append(draw(st.sampled_from(["--lock-timeout", "--database-url", "--repo"])))
    given = {p.name for p in chosen}
    json_mode = "json_out" in given and not (command == "downgrade" and "sql" in given)
    mode = "json" if json_mode else ("resolve" if command == "resolve" else "text")
    return Example(argv, env, mode)


@pytest.mark.parametrize("command", sorted(COMMANDS))
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_input_gives_one_message_and_a_contract_exit_code(
    command: str, data: st.DataObject, world: World
) -> None:
    ex = data.draw(examples(command, world))
    if any(t in ("-h", "--help", "--version") for t in ex.argv):
        return  # help text, not the command's output
    try:
        r = run(ex.argv, ex.env, world)
    finally:  # what a run wrote in the working directory (a bundle, a cache) goes with it
        for path in world.work.iterdir():
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
    check(r, mode=ex.mode, inputs=[*ex.argv, *ex.env.values()])
    assert snapshot(world.db_url) == world.baseline, f"the database changed\n{r}"


# -- the fixes, one by one -----------------------------------------------------------------------


def _one_error(r: Run, code: int, *needles: str) -> None:
    """Exit ``code``, nothing on stdout, one ``error:`` message on stderr holding ``needles``
    (libpq's hint may follow on an indented line)."""
    assert r.crash is None and r.code == code, str(r)
    assert r.stdout == "", str(r)
    first, *rest = r.stderr.strip().splitlines() or [""]
    assert first.startswith("error: ") and all(line[:1].isspace() for line in rest), str(r)
    for needle in needles:
        assert needle in first, f"{needle!r} not in the message\n{r}"


def _scratch(tmp_path: Path) -> World:
    """A World for tests that need no database, no emulator (an API URL nothing answers)."""
    for name in ("work", "home", "cache", "empty"):
        (tmp_path / name).mkdir()
    paths = [tmp_path / name for name in ("work", "home", "cache", "empty", "garbage", "c")]
    return World("", "http://127.0.0.1:9/api/v3", *paths)


# goose_db_version tables goose never writes; each row list starts with goose's baseline.
MALFORMED_TABLES = {
    "version_id NULL": (
        "id serial PRIMARY KEY, version_id bigint, is_applied boolean NOT NULL, tstamp timestamp",
        "(0, true), (NULL, true)",
        "version_id NULL is not a version number",
    ),
    "is_applied NULL": (
        "id serial PRIMARY KEY, version_id bigint NOT NULL, is_applied boolean, tstamp timestamp",
        "(0, true), (20250311000000, NULL)",
        "is_applied is NULL",
    ),
    "id NULL": (
        "id integer, version_id bigint NOT NULL, is_applied boolean NOT NULL, tstamp timestamp",
        "(0, true), (20250311000000, true)",
        "a row with id NULL",
    ),
    "text versions": (
        "id serial PRIMARY KEY, version_id text, is_applied boolean NOT NULL, tstamp timestamp",
        "('0', true), ('v1_0_0', true)",
        "version_id '0' is not a version number",
    ),
    "beyond bigint": (
        "id serial PRIMARY KEY, version_id numeric, is_applied boolean NOT NULL, tstamp timestamp",
        "(0, true), (99999999999999999999, true)",
        "99999999999999999999 is beyond PostgreSQL's bigint",
    ),
    "wrong columns": (
        "id serial PRIMARY KEY, version bigint NOT NULL, applied boolean NOT NULL",
        None,
        "lacks goose's columns id, version_id, is_applied, tstamp",
    ),
}


@pytest.fixture(scope="module")
def scratch_db(pg_server_url: str) -> Iterator[str]:
    """One empty database for the tests that each create their own goose_db_version."""
    with fresh_database(pg_server_url, prefix="hs_bad_table") as url:
        yield url


@pytest.mark.parametrize("case", sorted(MALFORMED_TABLES))
def test_a_malformed_version_table_is_bad_input_and_stays_as_it_is(
    case: str, scratch_db: str, tmp_path: Path
) -> None:
    database_url = scratch_db
    columns, rows, problem = MALFORMED_TABLES[case]
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS goose_db_version")
        conn.execute(f"CREATE TABLE goose_db_version ({columns})")
        if rows is not None:
            conn.execute(f"INSERT INTO goose_db_version (version_id, is_applied) VALUES {rows}")
            if case == "id NULL":
                conn.execute("UPDATE goose_db_version SET id = 1 WHERE version_id = 0")
    w = replace(_scratch(tmp_path), db_url=database_url)
    before = _table(database_url)
    local = ["--migrations-dir", str(FIXTURE_MIGRATIONS), "--database-url", database_url]
    for argv in (
        ["status", *local],
        ["status", "--json", *local],
        ["downgrade", "--to-version", V8, "--dry-run", *local],
        ["downgrade", "--to-version", V8, "--json", *local],  # a real run: refused first
    ):
        _one_error(run(argv, {}, w), 2, "goose_db_version", problem)
    assert _table(database_url) == before


def _table(url: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT * FROM goose_db_version ORDER BY 1 NULLS FIRST").fetchall()


@pytest.mark.parametrize(
    ("version", "problem"),
    [
        ("99999999999999999999", "beyond PostgreSQL's bigint"),
        ("9223372036854775808", "beyond PostgreSQL's bigint"),
        ("²", "digits 0-9"),  # str.isdigit() is true, int() refuses it
        ("١٢٣", "digits 0-9"),  # int() reads it as 123
        (" 20250507150000", "digits 0-9"),
    ],
)
def test_a_version_goose_cannot_hold_is_refused_before_connecting(
    version: str, problem: str, tmp_path: Path
) -> None:
    # Nothing answers at this URL: reading the database first would end in exit 1.
    argv = ["downgrade", "--to-version", version, "--dry-run", "--migrations-dir"]
    argv += [str(FIXTURE_MIGRATIONS), "--database-url", "postgresql://u@127.0.0.1:9/db"]
    _one_error(run(argv, {}, _scratch(tmp_path)), 2, "--to-version", problem)


def _server(url: str, **changes: str) -> str:
    params = conninfo_to_dict(url)
    params.update(changes)
    return make_conninfo("", **params)


@pytest.mark.parametrize(
    ("changes", "code", "needle"),
    [
        ({"sslmode": "bogus"}, 2, 'invalid sslmode value: "bogus"'),
        ({"target_session_attrs": "bogus"}, 2, "invalid target_session_attrs value"),
        ({"port": "abc"}, 2, "port is not a number"),
        ({"port": "99999"}, 2, 'invalid port number: "99999"'),
        ({"connect_timeout": "abc"}, 2, "bad value for connect_timeout"),
        ({"keepalives_idle": "x"}, 2, 'invalid integer value "x"'),
        ({"nosuchkeyword": "1"}, 2, 'invalid connection option "nosuchkeyword"'),
        ({"options": "bogus"}, 2, "invalid command-line argument"),
        ({"port": "9", "host": "127.0.0.1"}, 1, "cannot connect to the database"),  # unreachable
        ({"user": "h5_no_such_role"}, 1, 'role "h5_no_such_role" does not exist'),  # the login
    ],
)
def test_connection_parameters_the_user_got_wrong_are_bad_input(
    changes: dict[str, str], code: int, needle: str, pg_server_url: str, tmp_path: Path
) -> None:
    if "nosuchkeyword" in changes or changes.get("port") == "abc":  # make_conninfo refuses them
        url = _server(pg_server_url) + " " + " ".join(f"{k}={v}" for k, v in changes.items())
    else:
        url = _server(pg_server_url, **changes)
    argv = ["status", "--database-url", url, "--migrations-dir", str(FIXTURE_MIGRATIONS)]
    _one_error(run(argv, {}, _scratch(tmp_path)), code, needle)


@pytest.mark.parametrize(
    ("option", "value", "needle"),
    [
        ("--api-url", "http://[::1", "the GitHub API URL must look like"),
        ("--api-url", "http://\u2488/api/v3", "the GitHub API URL is malformed"),
        ("--api-url", "http://x\x01y/api/v3", "the GitHub API URL is malformed"),
        ("--api-url", "https://h:99999999/api/v3", "invalid port"),
        ("--token", f"{TOKEN}\n", "holds a character no token has"),
        ("--token", "tök€n", "holds a character no token has"),
    ],
)
def test_a_malformed_api_url_or_token_is_bad_input(
    option: str, value: str, needle: str, tmp_path: Path
) -> None:
    w = _scratch(tmp_path)
    argv = ["resolve", "v0.60.0", "--api-url", "http://127.0.0.1:9/api/v3", option, value]
    _one_error(run(argv, {}, w), 2, needle)


@pytest.mark.parametrize(
    "argv",
    [
        ["downgrade", "--to-version", V8, "--lock-timeout", SECRET_URL],  # not a number
        ["releases", "--limit", SECRET_URL],
        ["status", SECRET_URL],  # "Got unexpected extra argument(s) (...)"
        [SECRET_URL],  # "No such command '...'"
        ["resolve", "v0.60.0", f"--database-url={SECRET_URL}"],  # "No such option"
        ["status", "--database-url"],  # missing its value
    ],
)
def test_clicks_usage_errors_never_show_a_password(argv: list[str], tmp_path: Path) -> None:
    r = run(argv, {"DATABASE_URL": SECRET_URL}, _scratch(tmp_path))
    assert r.crash is None and r.code == 2 and r.stdout == "", str(r)
    assert "Error: " in r.stderr, str(r)
    assert SECRET not in r.stderr, str(r)
    if SECRET_URL in argv:
        echoed = "Invalid value" not in r.stderr  # typer does not quote a bad number
        assert not echoed or "postgresql://hatchet:***@127.0.0.1:9/hatchet" in r.stderr, str(r)


def test_long_inputs_are_echoed_cut_short(tmp_path: Path) -> None:
    w = _scratch(tmp_path)
    long = "9" * 30 + "x" * 200
    r = run(["downgrade", "--to-version", long, "--database-url", "u@h"], {}, w)
    _one_error(r, 2, f"got '{long[:60]}... (230 characters)'")
    r = run(["status", "y" * 300], {}, w)  # click's own message
    assert r.code == 2 and f"({'y' * 60}... (300 characters))" in r.stderr, str(r)
    assert "y" * 61 not in r.stderr


def test_a_file_name_too_long_for_the_file_system_is_bad_input(tmp_path: Path) -> None:
    w = _scratch(tmp_path)
    name = "n" * 300
    for argv, option in (
        (["releases", "--git-dir", name], "--git-dir"),
        (["resolve", "v0.60.0", "--cache-dir", name], "--cache-dir"),
        (["bundle", "--to-release", "v0.60.0", "--output", name], "--output"),
        (["downgrade", "--to-version", V8, "--migrations-dir", name], "--migrations-dir"),
        (["downgrade", "--to-version", V8, "--backup", name], "--backup"),
    ):
        _one_error(run(argv, {}, w), 2, option, "File name too long")

"""Rehearsal: run the exact plan on a scratch copy of the database before production is touched.

:func:`rehearse` copies the database into a new scratch database (``schema``: every object and the
goose version table's rows, no other data; ``data``: everything), runs the same plan there with
the same runner, replan closure and options (:func:`migrator.runner.run_plan`), times each step,
then drops the scratch database, also after a failure, Ctrl-C, SIGTERM or SIGHUP. Production is
only read: by pg_dump, or as the template of ``CREATE DATABASE`` (which blocks new connections to
it for the seconds the copy takes).

How the copy is made, fastest correct method first:

* ``data`` on the same server, nothing else connected, and the role owns the database (or is a
  superuser): ``CREATE DATABASE scratch TEMPLATE production``, a file-level copy inside the server.
* otherwise ``pg_dump --format=custom | pg_restore`` through a pipe, no file in between; for a
  large ``data`` copy with several CPUs, ``pg_dump --format=directory --jobs N`` into a temporary
  directory and ``pg_restore --jobs N`` from it.

The scratch database is named ``hatchet_schema_rehearsal_<UTC timestamp>_<pid>_<random>`` so it
says what it is and cannot collide, and carries a comment naming its source, host and pid:
:func:`find_leftovers` lists any a killed run (SIGKILL) left behind, for ``status``.
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from migrator.backup import find_pg_tool, pg_environment
from migrator.database import connect, parse_url, scrub
from migrator.errors import BadInputError, Category, MigratorError, RunInterrupted, RunStopped
from migrator.interrupts import (
    Signalled,
    held,
    signal_name,
    signals_raise,
    signum_of,
)
from migrator.plan import Plan, Step
from migrator.profile import Catalog
from migrator.runner import EventCallback, Replan, run_plan
from migrator.versions import VERSION_TABLE, VersionRow

Mode = Literal["schema", "data"]
MODES: tuple[Mode, ...] = ("schema", "data")
ProgressCallback = Callable[[str], None]

SCRATCH_PREFIX = "hatchet_schema_rehearsal_"
_COMMENT_PREFIX = "hatchet-schema rehearsal"
_APPLICATION_NAME = "hatchet-schema rehearsal"
# A data copy at least this large is dumped and restored with several jobs (when CPUs allow).
PARALLEL_THRESHOLD_BYTES = 512 * 1024 * 1024
_MAX_JOBS = 8
_PROGRESS_INTERVAL = 2.0
_TICK_INTERVAL = 10.0
# Settings whose stored value is a list to be written unquoted (pg_dump's list of them).
_LIST_SETTINGS = frozenset(
    {
        "local_preload_libraries",
        "search_path",
        "session_preload_libraries",
        "shared_preload_libraries",
        "temp_tablespaces",
        "unix_socket_directories",
    }
)
# Where the runner's failure message stops being about the failing statement (the rest says
# where the scratch database was left, which does not matter: it is dropped).
_AFTERMATH = (
    " Its transaction was rolled back",
    " This step runs without a transaction",
    " Its row is still in ",
)


class RehearsalInterrupted(MigratorError):
    """The rehearsal was stopped by a signal (``signum``); production was not touched."""

    category: Category = "interrupted"

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum


class _CopyError(Exception):
    pass


@dataclass
class RehearsalStep:
    """One step of the rehearsal: its final status and how long it took on the copy."""

    version: int
    file: str | None
    status: str
    seconds: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "file": self.file,
            "status": self.status,
            "seconds": None if self.seconds is None else round(self.seconds, 3),
        }


@dataclass
class RehearsalResult:
    """What the rehearsal did and found; ``ok`` means every step ran on the copy."""

    ok: bool
    mode: Mode
    scratch_database: str
    server: str
    """host:port/maintenance-database the scratch database was created through."""
    method: str = ""
    """How the copy was made (``CREATE DATABASE ... TEMPLATE``, ``pg_dump | pg_restore``, ...)."""
    seconds: float = 0.0
    """Everything: copy, run and drop."""
    copy_seconds: float = 0.0
    run_seconds: float = 0.0
    drop_seconds: float = 0.0
    steps: list[RehearsalStep] = field(default_factory=list)
    error: str | None = None
    failed_step: RehearsalStep | None = None
    final_version: int | None = None
    """The version the copy reached."""
    dropped: bool = False
    drop_error: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "mode": self.mode,
            "seconds": round(self.seconds, 3),
            "steps": [s.to_json() for s in self.steps],
            "error": self.error,
            "method": self.method,
            "copy_seconds": round(self.copy_seconds, 3),
            "run_seconds": round(self.run_seconds, 3),
            "drop_seconds": round(self.drop_seconds, 3),
            "scratch_database": self.scratch_database,
            "server": self.server,
            "final_version": self.final_version,
            "dropped": self.dropped,
            "drop_error": self.drop_error,
            "notes": list(self.notes),
        }

    def summary_lines(self) -> list[str]:
        """The result for a person: outcome, times, and each step's time on the copy."""
        outcome = "PASSED" if self.ok else "FAILED"
        lines = [
            f"rehearsal {outcome} on a {self.mode} copy ({self.method or 'no copy made'}): "
            f"copy {self.copy_seconds:.2f}s, steps {self.run_seconds:.2f}s, "
            f"drop {self.drop_seconds:.2f}s, {self.seconds:.2f}s in all"
        ]
        width = max((len(s.file or str(s.version)) for s in self.steps), default=0)
        for s in self.steps:
            took = "-" if s.seconds is None else f"{s.seconds:.2f}s"
            lines.append(f"  {(s.file or str(s.version)).ljust(width)}  {s.status:<8} {took}")
        lines += [f"  note: {n}" for n in self.notes]
        if self.error:
            lines.append(f"  error: {self.error}")
        if self.dropped:
            lines.append(f"  scratch database {self.scratch_database} dropped")
        elif self.drop_error:
            lines.append(f"  WARNING: {self.drop_error}")
        return lines


@dataclass(frozen=True)
class Leftover:
    """A scratch database on the server: left behind by a killed run, or one running now."""

    name: str
    comment: str | None
    size_bytes: int | None
    sessions: int
    in_progress: bool

    def describe(self) -> str:
        size = "" if self.size_bytes is None else f", {self.size_bytes / 1e6:.1f} MB"
        state = (
            "in use: a rehearsal may be running now"
            if self.in_progress
            else f'left behind: drop it with DROP DATABASE "{self.name}" WITH (FORCE)'
        )
        what = f" ({self.comment})" if self.comment else ""
        return f"{self.name}{what}{size}; {state}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "comment": self.comment,
            "size_bytes": self.size_bytes,
            "sessions": self.sessions,
            "in_progress": self.in_progress,
        }


# -- naming and leftovers -------------------------------------------------------------------------


def scratch_name(now: datetime | None = None) -> str:
    """``hatchet_schema_rehearsal_<UTC yyyymmddhhmmss>_<pid>_<4 hex>``: says what it is, unique."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S")
    return f"{SCRATCH_PREFIX}{stamp}_{os.getpid()}_{secrets.token_hex(2)}"


_COMMENT_OWNER = re.compile(r"pid (\d+) on host (\S+?);")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def find_leftovers(conn: psycopg.Connection[Any]) -> list[Leftover]:
    """Scratch databases on ``conn``'s server, oldest first (read-only)."""
    rows = conn.execute(
        """
        SELECT d.datname, shobj_description(d.oid, 'pg_database'),
               CASE WHEN has_database_privilege(d.oid, 'CONNECT')
                    THEN pg_database_size(d.oid) END,
               (SELECT count(*) FROM pg_stat_activity a WHERE a.datid = d.oid)
          FROM pg_database d
         WHERE d.datname LIKE %s
         ORDER BY d.datname
        """,
        (SCRATCH_PREFIX.replace("_", r"\_") + "%",),
    ).fetchall()
    here = socket.gethostname()
    found = []
    for name, comment, size, sessions in rows:
        owner = _COMMENT_OWNER.search(comment or "")
        if owner and owner.group(2) == here:  # made from this host: is its process alive?
            in_progress = _pid_alive(int(owner.group(1)))
        else:
            in_progress = bool(sessions)
        found.append(
            Leftover(
                name=str(name),
                comment=comment,
                size_bytes=None if size is None else int(size),
                sessions=int(sessions),
                in_progress=in_progress,
            )
        )
    return found


# -- what the source is and what the role may do --------------------------------------------------


@dataclass
class _Source:
    dbname: str
    user: str
    superuser: bool
    may_template: bool
    """Superuser, member of the owner role, or the database is a template."""
    encoding: str
    collate: str
    ctype: str
    locale_provider: str | None
    icu_locale: str | None
    icu_rules: str | None
    size: int
    version_table: str
    """Schema-qualified, as a pg_dump --table pattern."""
    settings: list[str]
    """``name=value`` database settings for every role (pg_db_role_setting)."""
    unreadable: list[str]


_SOURCE_SQL = """
SELECT current_database(), current_user, r.rolsuper,
       r.rolsuper OR d.datistemplate OR pg_has_role(d.datdba, 'USAGE'),
       pg_encoding_to_char(d.encoding), d.datcollate, d.datctype, pg_database_size(d.oid),
       to_jsonb(d), coalesce(
           (SELECT s.setconfig FROM pg_db_role_setting s
             WHERE s.setdatabase = d.oid AND s.setrole = 0), '{}')
  FROM pg_database d, pg_roles r
 WHERE d.datname = current_database() AND r.rolname = current_user
"""

_VERSION_TABLE_SQL = """
SELECT format('%%I.%%I', n.nspname, c.relname) , quote_ident(n.nspname), quote_ident(c.relname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.oid = to_regclass(%s)
"""

_UNREADABLE_SQL = """
SELECT format('%%I.%%I', n.nspname, c.relname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = ANY(%s)
   AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
   AND NOT EXISTS (SELECT 1 FROM pg_depend dep
                    WHERE dep.classid = 'pg_class'::regclass AND dep.objid = c.oid
                      AND dep.deptype = 'e')
   AND NOT has_table_privilege(c.oid, 'SELECT')
 ORDER BY 1
"""


def _inspect_source(url: str, mode: Mode) -> _Source:
    with connect(url, read_only=True) as conn:
        row = conn.execute(_SOURCE_SQL).fetchone()
        if row is None:
            raise MigratorError("cannot read the database's own pg_database row")
        dbname, user, superuser, may_template, encoding, collate, ctype, size, raw, settings = row
        found = conn.execute(_VERSION_TABLE_SQL, (VERSION_TABLE,)).fetchone()
        if found is None:
            raise MigratorError(f"the database has no {VERSION_TABLE} table to rehearse from")
        version_table = f"{found[1]}.{found[2]}"
        unreadable: list[str] = []
        if not superuser:
            kinds = ["r", "p", "S"] if mode == "data" else ["r", "p"]
            unreadable = [str(r[0]) for r in conn.execute(_UNREADABLE_SQL, (kinds,)).fetchall()]
    info: dict[str, Any] = raw if isinstance(raw, dict) else {}
    provider = info.get("datlocprovider")
    return _Source(
        dbname=str(dbname),
        user=str(user),
        superuser=bool(superuser),
        may_template=bool(may_template),
        encoding=str(encoding),
        collate=str(collate),
        ctype=str(ctype),
        locale_provider=str(provider) if provider else None,
        icu_locale=info.get("daticulocale") or info.get("datlocale"),
        icu_rules=info.get("daticurules"),
        size=int(size),
        version_table=version_table,
        settings=[str(s) for s in settings or []],
        unreadable=unreadable,
    )


def _describe(url: str) -> str:
    params = parse_url(url)
    host = params.get("host") or params.get("hostaddr") or "local socket"
    return f"{host}:{params.get('port') or '5432'}/{params.get('dbname') or '?'}"


def _admin_connection(url: str, server_url: str | None) -> tuple[str, psycopg.Connection[Any]]:
    """A connection to the server the scratch database goes on, through a database other than
    production where possible (its maintenance database), and the URL it was made with."""
    if server_url is not None:
        return server_url, connect(server_url)
    last: MigratorError | None = None
    for dbname in ("postgres", "template1"):
        candidate = make_conninfo(url, dbname=dbname)
        try:
            return candidate, connect(candidate)
        except BadInputError:
            raise
        except MigratorError as exc:
            last = exc
    try:
        return url, connect(url)
    except MigratorError:
        if last is not None:
            raise last from None
        raise


def _refuse_without_privileges(
    admin: psycopg.Connection[Any], where: str, source: _Source, mode: Mode
) -> None:
    """Exit 2, naming the missing privilege, before anything is created."""
    row = admin.execute(
        "SELECT current_user, rolsuper, rolcreatedb FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    user, superuser, createdb = row if row else ("?", False, False)
    if not (superuser or createdb):
        raise BadInputError(
            f"--rehearse needs a scratch database, but role {user} may not create databases "
            f"on {where}: it lacks the CREATEDB privilege (grant it with ALTER ROLE {user} "
            "CREATEDB, or give --rehearse-url a server where it may); nothing was changed"
        )
    if source.unreadable:
        shown = ", ".join(source.unreadable[:5])
        more = f" and {len(source.unreadable) - 5} more" if len(source.unreadable) > 5 else ""
        raise BadInputError(
            f"--rehearse {mode} copies the database with pg_dump, but role {source.user} lacks "
            f"the SELECT privilege on {len(source.unreadable)} relation(s) ({shown}{more}); "
            "grant it (or pg_read_all_data), or run as the tables' owner; nothing was changed"
        )


# -- copying --------------------------------------------------------------------------------------


def _create_empty(admin: psycopg.Connection[Any], name: str, source: _Source) -> None:
    parts = [
        sql.SQL(
            "CREATE DATABASE {} TEMPLATE template0 ENCODING {} LC_COLLATE {} LC_CTYPE {}"
        ).format(
            sql.Identifier(name),
            sql.Literal(source.encoding),
            sql.Literal(source.collate),
            sql.Literal(source.ctype),
        )
    ]
    provider = {"i": "icu", "b": "builtin"}.get(source.locale_provider or "c")
    if provider and admin.info.server_version >= 150000:
        parts.append(sql.SQL("LOCALE_PROVIDER {}").format(sql.SQL(provider)))
        if source.icu_locale:
            key = "ICU_LOCALE" if provider == "icu" else "BUILTIN_LOCALE"
            parts.append(sql.SQL(key + " {}").format(sql.Literal(source.icu_locale)))
        if source.icu_rules and provider == "icu":
            parts.append(sql.SQL("ICU_RULES {}").format(sql.Literal(source.icu_rules)))
    admin.execute(sql.SQL(" ").join(parts))


def _label(admin: psycopg.Connection[Any], name: str, comment: str) -> None:
    """Say on the new database what it is, whose it is and that it may go (for ``status``)."""
    admin.execute(
        sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(comment))
    )


def _copy_settings(admin: psycopg.Connection[Any], name: str, source: _Source) -> list[str]:
    """The database's own settings (ALTER DATABASE ... SET, e.g. search_path), which neither
    a template copy nor pg_restore carries over; returns notes for those that failed."""
    notes = []
    for item in source.settings:
        key, _, value = item.partition("=")
        rendered: sql.Composable = (
            sql.SQL(value) if key.lower() in _LIST_SETTINGS else sql.Literal(value)
        )
        statement = sql.SQL("ALTER DATABASE {} SET {} = {}").format(
            sql.Identifier(name), sql.Identifier(key), rendered
        )
        try:
            admin.execute(statement)
        except psycopg.Error as exc:
            notes.append(f"database setting {key} not copied: {str(exc).strip().splitlines()[0]}")
    return notes


class _Tool:
    """A pg_dump or pg_restore process whose stderr is read in a thread: verbose lines become
    progress, the rest is kept for the error message."""

    def __init__(
        self,
        argv: list[str],
        env: dict[str, str],
        *,
        stdin: IO[bytes] | int = subprocess.DEVNULL,
        stdout: int = subprocess.DEVNULL,
        on_line: Callable[[str], None] | None = None,
    ) -> None:
        self.name = Path(argv[0]).name
        try:
            self.proc = subprocess.Popen(
                argv, env=env, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE
            )
        except OSError as exc:
            raise _CopyError(f"could not run {argv[0]}: {exc.strerror}") from None
        self.errors: list[str] = []
        self._on_line = on_line
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            if not line:
                continue
            verbose = line.startswith(f"{self.name}: ") and not re.match(
                rf"{self.name}: (error|warning|detail|hint|fatal)", line, re.IGNORECASE
            )
            if verbose:
                if self._on_line:
                    self._on_line(line[len(self.name) + 2 :])
            else:
                self.errors.append(line)

    def wait(self) -> int:
        code = self.proc.wait()
        self._thread.join(timeout=5)
        return code

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._thread.join(timeout=5)

    def failure(self, code: int, *urls: str, extra: Sequence[str | None]) -> str:
        detail = "\n".join(self.errors[-12:]).strip() or "no error message"
        return f"{self.name} failed (exit code {code}): {scrub(detail, *urls, extra=extra)}"


class _Copier:
    """Runs the copy's tools with the connection details in PG* variables, never in argv."""

    def __init__(
        self, url: str, scratch_url: str, on_progress: ProgressCallback | None, keep_owners: bool
    ) -> None:
        pg_dump, pg_restore = find_pg_tool("pg_dump"), find_pg_tool("pg_restore")
        if pg_dump is None or pg_restore is None:
            raise _CopyError(
                "pg_dump and pg_restore were not found on PATH or in `pg_config --bindir`: "
                "install the PostgreSQL client tools (the server's major version or newer)"
            )
        self.pg_dump, self.pg_restore = str(pg_dump), str(pg_restore)
        self.url, self.scratch_url = url, scratch_url
        src_env, src_args, src_password = pg_environment(url)
        dst_env, dst_args, dst_password = pg_environment(scratch_url)
        if not any(a.startswith("--dbname=") for a in dst_args):
            dst_args.append(f"--dbname={dst_env.pop('PGDATABASE')}")
        self.src_env = {**os.environ, **src_env, "PGAPPNAME": _APPLICATION_NAME}
        self.dst_env = {**os.environ, **dst_env, "PGAPPNAME": _APPLICATION_NAME}
        self.src_args, self.dst_args = src_args, dst_args
        self.passwords = (src_password, dst_password)
        self.restore_flags = ["--exit-on-error", "--verbose", "--no-password"]
        if not keep_owners:
            self.restore_flags += ["--no-owner", "--no-privileges"]
        self.on_progress = on_progress
        self.objects = 0
        self._last = 0.0
        self._current = ""
        self._lock = threading.Lock()

    def _line(self, text: str) -> None:
        if not re.match(r"(creating|processing|executing|restoring|dumping|finished)", text):
            return
        with self._lock:
            self.objects += 1
            self._current = text
            now = time.monotonic()
            if self.on_progress is None or now - self._last < _PROGRESS_INTERVAL:
                return
            self._last = now
        self.on_progress(f"rehearsal: copying, {self.objects} items so far ({text})")

    @contextlib.contextmanager
    def _ticking(self) -> Iterator[None]:
        """A line every few seconds even while one large table is copied (no verbose line)."""
        started, done = time.monotonic(), threading.Event()

        def tick() -> None:
            while not done.wait(_TICK_INTERVAL):
                with self._lock:
                    quiet = time.monotonic() - self._last >= _TICK_INTERVAL
                    current = self._current
                    if quiet:
                        self._last = time.monotonic()
                if quiet and self.on_progress is not None:
                    self.on_progress(
                        f"rehearsal: copying, {time.monotonic() - started:.0f}s so far, "
                        f"{self.objects} items ({current or 'starting'})"
                    )

        ticker = threading.Thread(target=tick, daemon=True)
        ticker.start()
        try:
            yield
        finally:
            done.set()
            ticker.join(timeout=5)

    def _check(self, tool: _Tool, code: int) -> None:
        if code != 0:
            raise _CopyError(tool.failure(code, self.url, self.scratch_url, extra=self.passwords))

    def pipe(self, dump_flags: list[str]) -> None:
        """pg_dump --format=custom | pg_restore, no file in between."""
        with self._ticking():
            self._pipe(dump_flags)

    def _pipe(self, dump_flags: list[str]) -> None:
        dump_argv = [self.pg_dump, "--format=custom", "--compress=0", "--no-password"]
        dump = _Tool([*dump_argv, *dump_flags, *self.src_args], self.src_env,
                     stdout=subprocess.PIPE)  # fmt: skip
        restore: _Tool | None = None
        try:
            assert dump.proc.stdout is not None
            restore = _Tool(
                [self.pg_restore, *self.restore_flags, *self.dst_args],
                self.dst_env,
                stdin=dump.proc.stdout,
                on_line=self._line,
            )
            dump.proc.stdout.close()  # pg_restore holds it now; pg_dump sees a closed pipe
            restored, dumped = restore.wait(), dump.wait()
            # Whichever failed first is the cause: pg_dump on a pipe pg_restore closed fails
            # with SIGPIPE; pg_restore on a dump cut short fails reading its input.
            if restored != 0 and (dumped in (0, -signal.SIGPIPE) or _broken_pipe(dump)):
                self._check(restore, restored)
            self._check(dump, dumped)
            self._check(restore, restored)
        finally:
            for tool in (restore, dump):
                if tool is not None:
                    tool.stop()

    def parallel(self, jobs: int, workdir: Path) -> None:
        """pg_dump --format=directory --jobs N, then pg_restore --jobs N."""
        out = workdir / "dump"
        with self._ticking():
            dump = _Tool(
                [self.pg_dump, "--format=directory", "--compress=0", "--no-password",
                 "--verbose", f"--jobs={jobs}", f"--file={out}", *self.src_args],
                self.src_env,
                on_line=self._line,
            )  # fmt: skip
            try:
                self._check(dump, dump.wait())
            finally:
                dump.stop()
            restore = _Tool(
                [self.pg_restore, *self.restore_flags, f"--jobs={jobs}", *self.dst_args, str(out)],
                self.dst_env,
                on_line=self._line,
            )
            try:
                self._check(restore, restore.wait())
            finally:
                restore.stop()


_SEQUENCES_SQL = """
SELECT s.seq FROM (
    SELECT pg_get_serial_sequence(%s, a.attname) AS seq
      FROM pg_attribute a
     WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped
) s WHERE s.seq IS NOT NULL
"""


def _copy_version_rows(url: str, scratch_url: str, table: str) -> None:
    """The version table's rows and its id sequence's position, with COPY (a second pg_dump
    would cost more than the copy itself)."""
    copy_out = sql.SQL("COPY {} TO STDOUT (FORMAT BINARY)").format(sql.SQL(table))
    copy_in = sql.SQL("COPY {} FROM STDIN (FORMAT BINARY)").format(sql.SQL(table))
    try:
        with connect(url, read_only=True) as src, connect(scratch_url) as dst:
            with (
                src.cursor() as out_cur,
                dst.cursor() as in_cur,
                out_cur.copy(copy_out) as out,
                in_cur.copy(copy_in) as into,
            ):
                for chunk in out:
                    into.write(chunk)
            for (seq,) in src.execute(_SEQUENCES_SQL, (table, table)).fetchall():
                name = sql.SQL(str(seq))  # quoted by pg_get_serial_sequence
                row = src.execute(sql.SQL("SELECT last_value, is_called FROM {}").format(name))
                last = row.fetchone()
                if last is not None:
                    dst.execute("SELECT setval(%s, %s, %s)", (seq, last[0], last[1]))
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise _CopyError(f"copying the rows of {table} failed: {first}") from None


def _broken_pipe(tool: _Tool) -> bool:
    return any("broken pipe" in line.lower() for line in tool.errors)


def _other_sessions_on(admin: psycopg.Connection[Any], dbname: str) -> int:
    row = admin.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
        (dbname,),
    ).fetchone()
    return int(row[0]) if row else 0


def _jobs() -> int:
    return max(1, min(_MAX_JOBS, os.cpu_count() or 1))


# -- the rehearsal --------------------------------------------------------------------------------


def _shape(plan: Plan) -> list[tuple[int, str | None, str, str, bool]]:
    return [(s.version, s.file, s.kind, s.action, s.transaction) for s in plan.steps]


def _schema_replan(replan: Replan, approved: Plan) -> Replan:
    """For a schema copy: replan from the copy (its catalog answers every schema question), and
    when the steps are the same ones, run the approved statements. Only data-dependent parts
    (the DELETEs of data fixes, counted from production's rows) can differ on empty tables."""
    pristine = copy.deepcopy(approved)

    def rehearsal_replan(rows: Sequence[VersionRow], catalog: Catalog) -> Plan:
        fresh = replan(rows, catalog)
        if fresh.from_version == pristine.from_version and _shape(fresh) == _shape(pristine):
            return copy.deepcopy(pristine)
        return fresh

    return rehearsal_replan


def _failure_detail(message: str) -> str:
    """The runner's message up to where it says what the failure left behind in the copy."""
    cut = min((i for i in (message.find(m) for m in _AFTERMATH) if i > 0), default=-1)
    return message[:cut].rstrip() if cut > 0 else message


def rehearse(
    url: str,
    plan: Plan,
    replan: Replan,
    *,
    mode: Mode,
    server_url: str | None = None,
    run_options: Mapping[str, Any] | None = None,
    on_event: EventCallback | None = None,
    on_progress: ProgressCallback | None = None,
    parallel_threshold: int = PARALLEL_THRESHOLD_BYTES,
) -> RehearsalResult:
    """Copy ``url``'s database into a scratch database, run ``plan`` there, drop the copy.

    ``plan`` itself is not changed (the rehearsal runs a deep copy). ``run_options`` are the
    keyword arguments the real run gives :func:`run_plan` (lock timeout, sessions, DDL lock
    retries, ...); ``server_url`` puts the scratch database on another server. Returns the
    result, ``ok`` or not; raises :class:`BadInputError` (exit 2, nothing created) when the role
    may not create the scratch database or read what it must copy, and
    :class:`RehearsalInterrupted` (exit 130/143/129) after Ctrl-C, SIGTERM or SIGHUP, with the
    scratch database dropped.
    """
    say = on_progress or (lambda _line: None)
    started = time.monotonic()
    source = _inspect_source(url, mode)
    admin_url, admin = _admin_connection(url, server_url)
    name = scratch_name()
    result = RehearsalResult(
        ok=False, mode=mode, scratch_database=name, server=_describe(admin_url)
    )
    claimed = False  # from CREATE DATABASE on, the name is ours: drop it, whatever happens
    phase = "setup"
    interrupted: int | None = None
    arrived: list[int] = []
    try:
        with signals_raise():
            _refuse_without_privileges(admin, result.server, source, mode)
            scratch_url = make_conninfo(admin_url, dbname=name)
            parse_url(scratch_url)  # its secrets are masked in every message from here on
            comment = (
                f"{_COMMENT_PREFIX}: {mode} copy of database {source.dbname}; pid {os.getpid()} "
                f"on host {socket.gethostname()}; started "
                f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}; dropped when it ends"
            )
            phase = "copy"
            copy_started = time.monotonic()
            try:
                claimed = True
                _copy(admin, url, scratch_url, name, comment, source, mode,
                      server_url is None, result, say, parallel_threshold)  # fmt: skip
                result.notes += _copy_settings(admin, name, source)
                result.copy_seconds = time.monotonic() - copy_started
                say(f"rehearsal: copied in {result.copy_seconds:.2f}s ({result.method})")
                phase = "run"
                _run(scratch_url, plan, replan, mode, run_options, on_event, result, say)
            except _CopyError as exc:
                result.copy_seconds = time.monotonic() - copy_started
                result.error = (
                    f"the rehearsal could not copy the database into {name} ({mode} copy), "
                    f"production was not touched: {exc}"
                )
            except psycopg.errors.DuplicateDatabase:
                claimed = False  # not ours after all: never dropped
                result.error = f"a database named {name} already exists; run the rehearsal again"
            except RunInterrupted as exc:
                raise Signalled(exc.signum) from None
            except MigratorError as exc:
                result.error = (
                    f"the rehearsal failed on {name} ({mode} copy), production was not "
                    f"touched: {exc.message}"
                )
            except psycopg.Error as exc:
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                result.error = (
                    f"the rehearsal failed while preparing {name} ({mode} copy), production "
                    f"was not touched: {scrub(first, url, admin_url)}"
                )
    except KeyboardInterrupt as exc:
        interrupted = signum_of(exc)
    finally:
        with contextlib.suppress(Exception):
            admin.close()
        if claimed:
            result.drop_seconds, result.dropped, result.drop_error, arrived = _cleanup(
                admin_url, name
            )
            if result.dropped:
                say(f"rehearsal: dropped scratch database {name} in {result.drop_seconds:.2f}s")
            else:
                say(f"rehearsal: WARNING: {result.drop_error}")
    result.seconds = time.monotonic() - started
    if interrupted is None and arrived:
        interrupted, phase = arrived[0], "drop"
    if interrupted is not None:
        raise _interrupted(interrupted, phase, result, claimed) from None
    return result


def _copy(
    admin: psycopg.Connection[Any],
    url: str,
    scratch_url: str,
    name: str,
    comment: str,
    source: _Source,
    mode: Mode,
    same_server: bool,
    result: RehearsalResult,
    say: ProgressCallback,
    parallel_threshold: int,
) -> None:
    megabytes = f"{source.size / 1e6:.1f} MB"
    if mode == "data" and same_server and source.may_template:
        busy = _other_sessions_on(admin, source.dbname)
        if not busy:
            say(
                f"rehearsal: copying {source.dbname} ({megabytes}) to scratch database {name} "
                "with CREATE DATABASE ... TEMPLATE (new connections to it wait until done) ..."
            )
            try:
                admin.execute(
                    sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                        sql.Identifier(name), sql.Identifier(source.dbname)
                    )
                )
                _label(admin, name, comment)
                result.method = "CREATE DATABASE ... TEMPLATE"
                return
            except psycopg.errors.ObjectInUse:
                result.notes.append(
                    "a session connected to production during the template copy: copied with "
                    "pg_dump | pg_restore instead"
                )
        else:
            result.notes.append(
                f"{busy} other session(s) on production: copied with pg_dump | pg_restore, "
                "not CREATE DATABASE ... TEMPLATE"
            )
    _create_empty(admin, name, source)
    _label(admin, name, comment)
    copier = _Copier(url, scratch_url, say, keep_owners=same_server and source.superuser)
    if not (same_server and source.superuser):
        result.notes.append("objects restored without their owners and grants (--no-owner)")
    if mode == "schema":
        say(
            f"rehearsal: copying the schema of {source.dbname} and its {VERSION_TABLE} rows "
            f"to scratch database {name} (pg_dump | pg_restore) ..."
        )
        copier.pipe(["--schema-only"])
        _copy_version_rows(url, scratch_url, source.version_table)
        result.method = f"pg_dump --schema-only | pg_restore, COPY of {VERSION_TABLE}"
        return
    jobs = _jobs()
    if source.size >= parallel_threshold and jobs > 1:
        workdir = Path(tempfile.mkdtemp(prefix="hatchet-schema-rehearsal-"))
        try:
            if shutil.disk_usage(workdir).free > source.size * 1.2:
                say(
                    f"rehearsal: copying {source.dbname} ({megabytes}) to scratch database "
                    f"{name} (pg_dump --jobs {jobs}, then pg_restore --jobs {jobs}) ..."
                )
                copier.parallel(jobs, workdir)
                result.method = f"pg_dump --jobs {jobs}, pg_restore --jobs {jobs}"
                return
            result.notes.append(
                f"not enough space in {workdir.parent} for a parallel dump: copied through a pipe"
            )
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    say(
        f"rehearsal: copying {source.dbname} ({megabytes}) to scratch database {name} "
        "(pg_dump | pg_restore) ..."
    )
    copier.pipe([])
    result.method = "pg_dump | pg_restore"


def _run(
    scratch_url: str,
    plan: Plan,
    replan: Replan,
    mode: Mode,
    run_options: Mapping[str, Any] | None,
    on_event: EventCallback | None,
    result: RehearsalResult,
    say: ProgressCallback,
) -> None:
    steps = plan.steps  # run_plan works on a copy; its steps come back with their status
    timings: dict[int, float] = {}

    def record(event: str, step: Step, elapsed: float) -> None:
        if event in ("done", "failed"):
            timings[step.version] = elapsed
        if on_event is not None:
            on_event(event, step, elapsed)

    chosen = _schema_replan(replan, plan) if mode == "schema" else replan
    say(f"rehearsal: running the plan's {len(plan.steps)} step(s) on the copy ...")
    run_started = time.monotonic()
    try:
        outcome = run_plan(scratch_url, plan, chosen, **dict(run_options or {}),
                           on_event=record)  # fmt: skip
        steps = outcome.steps
        result.final_version = outcome.final_version
        result.ok = True
    except RunInterrupted:
        raise
    except MigratorError as exc:
        if isinstance(exc, RunStopped) and exc.steps:
            steps = exc.steps
        failed = next((s for s in steps if s.status == "failed"), None)
        where = "" if failed is None else f" at step {failed.file or failed.version}"
        result.error = (
            f"the rehearsal failed{where} on scratch database {result.scratch_database} "
            f"({mode} copy), production was not touched: {_failure_detail(exc.message)}"
        )
    finally:
        result.run_seconds = time.monotonic() - run_started
        result.steps = [
            RehearsalStep(s.version, s.file, s.status, timings.get(s.version)) for s in steps
        ]
        result.failed_step = next((s for s in result.steps if s.status == "failed"), None)


def _drop(admin_url: str, name: str) -> None:
    with connect(admin_url) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def _cleanup(admin_url: str, name: str) -> tuple[float, bool, str | None, list[int]]:
    """Drop the scratch database, holding signals meanwhile; returns the time it took, whether
    it is gone, the message when it is not, and the signals that arrived meanwhile."""
    started = time.monotonic()
    error: str | None = None
    with held() as arrived:
        for attempt in range(3):
            try:
                _drop(admin_url, name)
                error = None
                break
            except (MigratorError, psycopg.Error) as exc:
                text = exc.message if isinstance(exc, MigratorError) else str(exc).strip()
                error = scrub(text.splitlines()[0] if text else type(exc).__name__, admin_url)
                time.sleep(0.5 * (attempt + 1))
    took = time.monotonic() - started
    if error is None:
        return took, True, None, arrived
    return (
        took,
        False,
        (
            f"the scratch database {name} on {_describe(admin_url)} could not be dropped "
            f'({error}); drop it by hand: DROP DATABASE "{name}" WITH (FORCE)'
        ),
        arrived,
    )


def _interrupted(
    signum: int, phase: str, result: RehearsalResult, claimed: bool
) -> RehearsalInterrupted:
    during = {
        "setup": "before the copy",
        "copy": "during the copy",
        "run": "while the plan ran on the copy",
        "drop": "while the copy was dropped",
    }
    if not claimed:
        gone = "no scratch database had been created"
    elif result.dropped:
        gone = f"the scratch database {result.scratch_database} was dropped"
    else:
        gone = result.drop_error or "the scratch database may be left behind"
    return RehearsalInterrupted(
        f"rehearsal stopped by {signal_name(signum)} "
        f"{during.get(phase, phase)}; production was not touched; {gone}",
        signum,
    )

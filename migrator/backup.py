"""A ``pg_dump --format=custom`` backup of the database before a downgrade.

The connection details are handed to pg_dump as ``PG*`` environment variables, never on its
command line, so the password is not visible in ``ps`` output nor in any message: pg_dump's
own error text is passed on with every form of anything that may be the password masked
(:func:`migrator.database.scrub`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

from psycopg.conninfo import make_conninfo

from migrator.database import parse_url, scrub
from migrator.errors import BadInputError, MigratorError

# libpq connection parameters and the environment variables libpq reads them from.
_ENV_FOR_PARAM = {
    "host": "PGHOST",
    "hostaddr": "PGHOSTADDR",
    "port": "PGPORT",
    "dbname": "PGDATABASE",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "passfile": "PGPASSFILE",
    "service": "PGSERVICE",
    "options": "PGOPTIONS",
    "application_name": "PGAPPNAME",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "sslmode": "PGSSLMODE",
    "sslnegotiation": "PGSSLNEGOTIATION",
    "requiressl": "PGREQUIRESSL",
    "sslcompression": "PGSSLCOMPRESSION",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcrl": "PGSSLCRL",
    "sslcrldir": "PGSSLCRLDIR",
    "sslsni": "PGSSLSNI",
    "ssl_min_protocol_version": "PGSSLMINPROTOCOLVERSION",
    "ssl_max_protocol_version": "PGSSLMAXPROTOCOLVERSION",
    "requirepeer": "PGREQUIREPEER",
    "require_auth": "PGREQUIREAUTH",
    "channel_binding": "PGCHANNELBINDING",
    "gssencmode": "PGGSSENCMODE",
    "gsslib": "PGGSSLIB",
    "krbsrvname": "PGKRBSRVNAME",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
    "load_balance_hosts": "PGLOADBALANCEHOSTS",
    "client_encoding": "PGCLIENTENCODING",
}
# Secrets with no environment variable: they would have to go on the command line.
_SECRET_PARAMS = frozenset({"sslpassword"})
# A directory holding the pg_dump and pg_restore to use (one directory: the two must match).
PG_BINDIR_ENV = "HATCHET_SCHEMA_PG_BINDIR"
# Owner read/write only: a dump holds every row of the database.
BACKUP_MODE = 0o600


def find_pg_tool(name: str) -> Path | None:
    """``name`` (e.g. ``pg_dump``) in ``$HATCHET_SCHEMA_PG_BINDIR`` when that is set (and only
    there), else on PATH, else in ``pg_config --bindir``; None if not found."""
    if bindir := os.environ.get(PG_BINDIR_ENV):
        named = Path(bindir) / name
        return named if os.access(named, os.X_OK) and named.is_file() else None
    found = shutil.which(name)
    if found:
        return Path(found)
    pg_config = shutil.which("pg_config")
    if not pg_config:
        return None
    try:
        bindir = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    candidate = Path(bindir) / name
    return candidate if bindir and os.access(candidate, os.X_OK) else None


def pg_environment(url: str) -> tuple[dict[str, str], list[str], str | None]:
    """The ``PG*`` variables for ``url``, extra pg_dump arguments, and the password.

    Parameters libpq cannot read from the environment go into a ``--dbname`` connection string
    (they are never secrets: a secret without a variable is refused).
    """
    params = {k: str(v) for k, v in parse_url(url).items() if v is not None}
    if secret := _SECRET_PARAMS & params.keys():
        raise BadInputError(
            f"--backup cannot pass {', '.join(sorted(secret))} to pg_dump safely; use a key "
            "without a passphrase or back up by hand"
        )
    env = {_ENV_FOR_PARAM[k]: v for k, v in params.items() if k in _ENV_FOR_PARAM}
    rest = {k: v for k, v in params.items() if k not in _ENV_FOR_PARAM}
    args: list[str] = []
    if rest:
        if "PGDATABASE" in env:
            rest["dbname"] = env.pop("PGDATABASE")
        args.append(f"--dbname={make_conninfo(**rest)}")
    return env, args, params.get("password")


def pg_dump_backup(url: str, out_file: Path) -> int:
    """Dump the database at ``url`` to ``out_file`` in pg_dump's custom format.

    Returns the size of the dump in bytes. The file is created mode 0600 (whatever the umask).
    Refuses (BadInputError, exit 2) to overwrite an existing file, which would keep its own
    mode and owner, or to write into a missing directory; a missing pg_dump or a failed dump is a
    MigratorError (exit 1) carrying pg_dump's message. A failed dump leaves no file behind.
    """
    env_params, extra_args, password = pg_environment(url)
    pg_dump = find_pg_tool("pg_dump")
    if pg_dump is None:
        where = (
            f"in {PG_BINDIR_ENV}={os.environ[PG_BINDIR_ENV]}"
            if os.environ.get(PG_BINDIR_ENV)
            else f"on PATH or in `pg_config --bindir` (or set {PG_BINDIR_ENV})"
        )
        raise MigratorError(
            f"pg_dump was not found {where}: install the PostgreSQL client tools (the server's "
            "major version or newer) or drop --backup"
        )
    if not out_file.parent.is_dir():
        raise BadInputError(f"cannot write the backup: directory {out_file.parent} does not exist")
    try:
        # Claim the name first, owner-only (the dump holds the whole database): a file that
        # appears meanwhile is not overwritten either, and pg_dump keeps this file's mode.
        fd = os.open(out_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, BACKUP_MODE)
        try:
            os.fchmod(fd, BACKUP_MODE)  # exactly 0600, whatever bits the umask took away
        finally:
            os.close(fd)
    except FileExistsError:
        raise BadInputError(f"backup file {out_file} already exists; not overwriting it") from None
    except OSError as exc:
        raise BadInputError(f"cannot write the backup to {out_file}: {exc.strerror}") from None
    env = {**os.environ, **env_params}
    argv = [str(pg_dump), "--format=custom", "--no-password", "--file", str(out_file)]
    finished = False
    try:
        try:
            proc = subprocess.run(
                [*argv, *extra_args],
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                errors="replace",
            )
        except OSError as exc:
            raise MigratorError(f"could not run {pg_dump}: {exc.strerror}") from None
        if proc.returncode != 0:
            # Every form of every candidate password (of the URL, PGPASSWORD) is masked.
            detail = scrub(proc.stderr.strip(), url, extra=[password]) or "no error message"
            if "server version mismatch" in detail:
                detail += (
                    f"; set {PG_BINDIR_ENV} to the bin directory of a pg_dump of the server's "
                    "major version or newer"
                )
            raise MigratorError(f"pg_dump failed (exit code {proc.returncode}): {detail}")
        size = out_file.stat().st_size
        if size == 0:
            raise MigratorError("pg_dump exited successfully but wrote an empty backup")
        finished = True
        return size
    finally:
        if not finished:
            with contextlib.suppress(OSError):
                out_file.unlink()

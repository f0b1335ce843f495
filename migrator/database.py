"""PostgreSQL connections the way hatchet-migrate opens them, URL redaction, and live sessions.

Every connection is autocommit with ``statement_timeout`` and
``idle_in_transaction_session_timeout`` set to 0 (as hatchet-migrate does), so long downs are not
cut off by server defaults. Error messages go through :func:`redact_url` and never carry the
password.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict

from migrator.errors import BadInputError, MigratorError

APPLICATION_NAME = "hatchet-schema"
DEFAULT_CONNECT_TIMEOUT = 10

_REDACTED = "***"
_KV_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)


def redact_url(url: str) -> str:
    """``url`` (URL or ``key=value`` form) with any password replaced by ``***``."""
    if "://" not in url:
        return _KV_PASSWORD.sub(lambda m: m.group(1) + _REDACTED, url)
    redacted = _QUERY_PASSWORD.sub(lambda m: m.group(1) + _REDACTED, url)
    try:
        parts = urlsplit(redacted)
    except ValueError:
        # Unparsable: hide everything between the scheme and the last '@'.
        return re.sub(r"://[^/]*@", f"://{_REDACTED}@", redacted)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hosts = netloc.rpartition("@")
        if ":" in userinfo:
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:{_REDACTED}@{hosts}"
    return urlunsplit(parts._replace(netloc=netloc))


def _secrets_in(url: str) -> list[str]:
    """Substrings of ``url`` that may be a password, even when the URL does not parse."""
    found = [m.group(2).strip("'") for m in _KV_PASSWORD.finditer(url)]
    found += [m.group(0).split("=", 1)[1] for m in _QUERY_PASSWORD.finditer(url)]
    if "://" in url:
        authority = url.split("://", 1)[1].split("/", 1)[0]
        if "@" in authority:
            userinfo = authority.rpartition("@")[0]
            if ":" in userinfo:
                found.append(userinfo.split(":", 1)[1])
    return [s for s in found if s]


def scrub_secrets(text: str, url: str, password: str | None = None) -> str:
    """``text`` with every possible password from ``url`` (and ``password``) masked."""
    for secret in sorted({*_secrets_in(url), *([password] if password else [])}, key=len)[::-1]:
        text = text.replace(secret, _REDACTED)
    return text


def parse_url(url: str) -> dict[str, Any]:
    """libpq connection parameters of ``url``; BadInputError (password-free) when malformed."""
    if not url or not url.strip():
        raise BadInputError("the database URL is empty")
    try:
        params = conninfo_to_dict(url)
    except psycopg.Error as exc:
        lines = scrub_secrets(str(exc).strip(), url).splitlines()
        detail = lines[0] if lines else "cannot be parsed"
        raise BadInputError(f"malformed database URL {redact_url(url)}: {detail}") from None
    port = params.get("port")
    if port is not None and not all(p.isdigit() for p in str(port).split(",") if p):
        raise BadInputError(f"malformed database URL {redact_url(url)}: port is not a number")
    return params


def connect(url: str, *, read_only: bool = False) -> psycopg.Connection[Any]:
    """An autocommit connection to ``url``; ``read_only`` makes every transaction read-only.

    Raises :class:`BadInputError` for a malformed URL and :class:`MigratorError` (exit 1) when the
    server cannot be reached or refuses the login.
    """
    params = parse_url(url)
    password = params.get("password")
    extra: dict[str, Any] = {"application_name": APPLICATION_NAME}
    if "connect_timeout" not in params:
        extra["connect_timeout"] = DEFAULT_CONNECT_TIMEOUT
    try:
        conn = psycopg.connect(url, autocommit=True, **extra)
    except psycopg.Error as exc:
        detail = scrub_secrets(str(exc).strip(), url, str(password) if password else None)
        raise MigratorError(f"cannot connect to the database {redact_url(url)}: {detail}") from None
    try:
        conn.execute("SET statement_timeout = 0")
        conn.execute("SET idle_in_transaction_session_timeout = 0")
        if read_only:
            conn.execute("SET default_transaction_read_only = on")
    except psycopg.Error as exc:
        conn.close()
        raise MigratorError(f"cannot set up the database session: {exc}") from None
    return conn


@dataclass(frozen=True)
class SessionInfo:
    """Another client session connected to the same database (a row of ``pg_stat_activity``)."""

    pid: int
    user: str | None
    application_name: str
    client_addr: str | None
    state: str | None
    backend_start: datetime | None

    def describe(self) -> str:
        """One line for a message: pid, user, application and client address."""
        app = self.application_name or "(no application_name)"
        where = self.client_addr or "local socket"
        return f"pid {self.pid} user {self.user or '?'} application {app} from {where}"


def other_sessions(
    conn: psycopg.Connection[Any], *, exclude_pids: Collection[int] = ()
) -> list[SessionInfo]:
    """Client sessions on this connection's database, except this one and ``exclude_pids``."""
    rows = conn.execute(
        """
        SELECT pid, usename, application_name, host(client_addr), state, backend_start
        FROM pg_stat_activity
        WHERE backend_type = 'client backend'
          AND datname = current_database()
          AND pid <> pg_backend_pid()
          AND NOT (pid = ANY(%s))
        ORDER BY backend_start NULLS LAST, pid
        """,
        (list(exclude_pids),),
    ).fetchall()
    return [
        SessionInfo(
            pid=int(pid),
            user=user,
            application_name=app or "",
            client_addr=addr,
            state=state,
            backend_start=started,
        )
        for pid, user, app, addr, state, started in rows
    ]

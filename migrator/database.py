"""PostgreSQL connections the way hatchet-migrate opens them, secret scrubbing, and live sessions.

Every connection is autocommit with ``statement_timeout`` and
``idle_in_transaction_session_timeout`` set to 0 (as hatchet-migrate does), and
``idle_session_timeout`` too (PostgreSQL 14+), so long downs and idle waits are not cut off by
server defaults; TCP keepalives are on.

Secrets. A database password must never reach any output, whatever form the URL takes and even
when it is malformed (libpq accepts unencoded delimiters in a password in some places). So
redaction never relies on the URL parsing: :func:`secret_candidates` collects every string that
might be the password (the text after the user name's ``:`` up to each ``@``, every
``password=`` value however quoted, libpq's own reading of it, ``PGPASSWORD``) in raw,
percent-decoded, percent-encoded and escaped forms, and :func:`scrub` masks all of them, longest
first. :func:`parse_url` remembers the candidates of every URL it sees, so the command line can
scrub everything it prints (:func:`scrubbed_output`, :func:`scrub_json`); URLs are shown only as
:func:`redact_url` rebuilds them, and not at all when they cannot be read unambiguously.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from collections.abc import Collection, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TextIO, cast
from urllib.parse import quote, quote_plus, unquote

from migrator.errors import BadInputError, MigratorError
from migrator.sessions import ACTIVITY_COLUMNS, Session

if TYPE_CHECKING:
    import psycopg

APPLICATION_NAME = "hatchet-schema"
DEFAULT_CONNECT_TIMEOUT = 10
CLIENT_CHECK_INTERVAL_MS = 1000
# libpq TCP keepalives (unless the URL sets them): a connection idle through a long run (the goose
# lock session) is probed every 10 s after 30 s, so NAT and firewalls keep it, and a dead peer is
# noticed in about a minute instead of the kernel's two hours.
DEFAULT_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10,
                      "keepalives_count": 3}  # fmt: skip

_REDACTED = "***"
# Masks to choose from: the first that shares no character with any secret, so masking never
# forms a secret anew (a password of '*' is masked with '###').
_MASKS = ("***", "###", "~~~", "^^^", "___", "...", "!!!", "???")
_SECRET_KEYS = frozenset({"password", "sslpassword"})
# libpq's two URI prefixes (case-sensitive in libpq; any case here, to find more candidates).
_URI_PREFIX = re.compile(r"postgres(?:ql)?://", re.IGNORECASE)
_URI_PREFIXES = ("postgresql://", "postgres://")
# A key=value key anywhere in a string (a secret one when it names a password).
_KV_SECRET_KEY = re.compile(r"(?<![\w.-])(?:ssl)?password\s*=\s*", re.IGNORECASE | re.ASCII)
_KV_NEXT_KEY = re.compile(r"\s+[A-Za-z_]\w*\s*=", re.ASCII)
_QUERY_KEY = re.compile(r"[?&]([^&=]*)=")
_QUERY_NEXT_KEY = re.compile(r"&[A-Za-z_%][\w%]*=")
_SPACE = re.compile(r"\s")
_MESSAGE_BREAK = re.compile(r"[\s\"']")
_BACKSLASH_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_WHITESPACE = " \t\n\v\f\r"  # isspace() in the C locale, as libpq tests it
# Quoted literals of libpq's own conninfo error messages (not fragments of the input).
_LIBPQ_LITERALS = {'":" or "/"': "\0colon-or-slash\0", '"="': "\0equals\0", '"]"': "\0bracket\0"}

# How libpq, psycopg and the server name a connection parameter they refuse (a bad sslmode, port
# or integer, an option the server rejects): the URL is bad input (exit 2), unlike a server that
# cannot be reached or refuses the login (exit 1).
_BAD_PARAMETER = re.compile(
    r'invalid "?\w+"? value: |invalid port number|invalid integer value "|weak sslmode|'
    r"could not parse network address|could not match \d+ |invalid SCRAM |"
    r'bad value for connect_timeout|invalid value for parameter "|'
    r"invalid command-line argument for server process"
)
# Candidate secrets of every URL parse_url has seen since forget_secrets(): scrub() masks them.
_seen_secrets: set[str] = set()


# -- finding secrets ------------------------------------------------------------------------------


def _kv_token(text: str, start: int) -> tuple[int, str]:
    """The end and the unescaped value of the libpq ``key=value`` value starting at ``start``."""
    i, value = start, []
    quoted = i < len(text) and text[i] == "'"
    if quoted:
        i += 1
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            value.append(text[i + 1])
            i += 2
            continue
        if (quoted and c == "'") or (not quoted and c in _WHITESPACE):
            return i + (1 if quoted else 0), "".join(value)
        if c != "\\":
            value.append(c)
        i += 1
    return i, "".join(value)


def _secret_spans(text: str, *, in_message: bool = False) -> list[tuple[int, int]]:
    """Every stretch of ``text`` that may hold a password, under every reading of it.

    Deliberately generous: a URL need not be well formed, nor start at the beginning (a URL can
    sit inside a ``key=value`` string), and a password may hold unencoded delimiters. With
    ``in_message`` ``text`` is a message quoting a URL: a URL there ends at whitespace or a
    quote, and a ``password=`` value is libpq's token alone.
    """
    spans: list[tuple[int, int]] = []

    def end_of_quote(start: int) -> int:
        found = _MESSAGE_BREAK.search(text, start) if in_message else None
        return found.start() if found else len(text)

    # URI userinfo: after the first ':' up to EACH later '@' (libpq stops at the first '@', a
    # user who did not encode an '@' in the password meant a later one).
    for prefix in _URI_PREFIX.finditer(text):
        begin = prefix.end()
        region = text[begin : end_of_quote(begin)]
        for at in (m.start() for m in re.finditer("@", region)):
            colon = region.find(":", 0, at)
            if colon >= 0 and "/" not in region[:colon]:
                spans.append((begin + colon + 1, begin + at))
    # ?password= and &password= (the key may be percent-encoded): up to the next '&' (libpq),
    # '#', whitespace, the next '&key=' and the end (an unencoded '&' in the password).
    for m in _QUERY_KEY.finditer(text):
        if unquote(m.group(1)).lower() not in _SECRET_KEYS:
            continue
        v = m.end()
        ends = {end_of_quote(v)}
        for stop in (text.find("&", v), text.find("#", v)):
            if stop >= 0:
                ends.add(stop)
        if (nxt := _QUERY_NEXT_KEY.search(text, v)) and not in_message:
            ends.add(nxt.start())
        if ws := _SPACE.search(text, v):
            ends.add(ws.start())
        spans += [(v, e) for e in ends if e <= end_of_quote(v)]
    # key=value: libpq's token (quoted, escaped), everything up to the next 'key=', the rest.
    for m in _KV_SECRET_KEY.finditer(text):
        v = m.end()
        token_end, _ = _kv_token(text, v)
        spans.append((v, token_end))
        if not in_message:
            nxt = _KV_NEXT_KEY.search(text, token_end)
            spans += [(v, nxt.start() if nxt else len(text)), (v, len(text))]
    return [(s, e) for s, e in spans if e > s]


def _forms(secret: str) -> set[str]:
    """``secret`` as it may be written: raw, decoded, percent-encoded, escaped, quoted."""
    base = {secret, unquote(secret), secret.strip()}
    if secret.startswith("'"):
        base.add(_kv_token(secret, 0)[1])
    if "\\" in secret:  # an unquoted key=value value: every backslash escapes the next character
        base.add(_BACKSLASH_ESCAPE.sub(r"\1", secret))
    forms: set[str] = set()
    for b in base:
        forms |= {
            b,
            quote(b, safe=""),
            quote(b),
            quote(b, safe="!~*'()"),
            quote_plus(b),
            json.dumps(b)[1:-1],
            json.dumps(b, ensure_ascii=False)[1:-1],
            repr(b)[1:-1],
            b.replace("\\", "\\\\").replace("'", "\\'"),
        }
    return {f for f in forms if f}


def secret_candidates(url: str, *, in_message: bool = False) -> set[str]:
    """Every string that may be (a form of) a password in ``url``; never raises.

    Includes libpq's own reading of the password when ``url`` parses, and ``PGPASSWORD``.
    ``in_message``: ``url`` is a message that may quote URLs (see :func:`_secret_spans`).
    """
    found = {url[s:e] for s, e in _secret_spans(url, in_message=in_message)}
    with contextlib.suppress(Exception):
        from psycopg.conninfo import conninfo_to_dict

        params = conninfo_to_dict(url)
        found |= {str(params[k]) for k in _SECRET_KEYS if params.get(k)}
    if env := os.environ.get("PGPASSWORD"):
        found.add(env)
    candidates: set[str] = set()
    for secret in found:
        candidates |= _forms(secret)
    return candidates


def remember_secrets(url: str) -> None:
    """Mask ``url``'s candidate secrets in whatever :func:`scrub` is given from now on."""
    _seen_secrets.update(secret_candidates(url))


def forget_secrets() -> None:
    """Forget what :func:`remember_secrets` collected (a new command starts)."""
    _seen_secrets.clear()


def _mask_all(text: str, secrets: Collection[str]) -> str:
    if not secrets or not text:
        return text
    used = set("".join(secrets))
    mask = next((m for m in _MASKS if not used & set(m)), None)
    if mask is None:
        mask = next(chr(c) for c in range(0x2580, 0x10FFFF) if chr(c) not in used) * 3
    for secret in sorted(secrets, key=lambda s: (-len(s), s)):
        if secret in text:
            text = text.replace(secret, mask)
    return text


def scrub(text: str, *urls: str, extra: Iterable[str | None] = ()) -> str:
    """``text`` with every candidate secret masked: those remembered, those of ``urls``, and
    ``extra`` (e.g. a password given apart from the URL), in all their forms."""
    secrets = set(_seen_secrets)
    for url in urls:
        secrets |= secret_candidates(url)
    for secret in extra:
        if secret:
            secrets |= _forms(secret)
    return _mask_all(text, secrets)


def scrub_message(text: str) -> str:
    """:func:`scrub`, and also mask any password in a URL or ``password=`` inside ``text`` itself
    (a database URL given where another value was expected and echoed back in an error)."""
    own = secret_candidates(text, in_message=True)
    # Not a mask already in place (a URL redact_url rebuilt, "password=***:").
    own = {c for c in own if _REDACTED not in c and c.strip("".join(_MASKS))}
    return _mask_all(text, own | _seen_secrets)


def scrub_secrets(text: str, url: str, password: str | None = None) -> str:
    """``text`` with every possible password from ``url`` (and ``password``) masked."""
    return scrub(text, url, extra=[password])


def scrub_json(obj: Any) -> Any:
    """``obj`` (JSON-ready, or converted with ``str``) with every string value scrubbed, so
    escaping in ``json.dumps`` (``\\uXXXX``, ``\\"``) cannot hide a secret from the mask."""
    if isinstance(obj, str):
        return scrub(obj)
    if obj is None or isinstance(obj, bool | int | float):
        return obj
    if isinstance(obj, dict):
        return {k: scrub_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [scrub_json(v) for v in obj]
    return scrub(str(obj))


class ScrubbingStream:
    """A text stream that scrubs whatever is written to it, then writes it to ``stream``."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        if not isinstance(text, str):  # click probes for binary streams with b""
            return self._stream.write(text)
        self._stream.write(scrub(text))
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        if name == "buffer":  # raw bytes would bypass the scrubbing
            raise AttributeError(name)
        return getattr(self._stream, name)


@contextlib.contextmanager
def scrubbed_output() -> Iterator[None]:
    """Run a command with stdout and stderr scrubbed of the secrets of every URL it parses."""
    forget_secrets()
    out, err = sys.stdout, sys.stderr
    sys.stdout = cast(TextIO, ScrubbingStream(out))
    sys.stderr = cast(TextIO, ScrubbingStream(err))
    try:
        yield
    finally:
        sys.stdout, sys.stderr = out, err


# -- showing URLs ---------------------------------------------------------------------------------


def _rebuild_uri(url: str) -> str | None:
    """``url`` split the way libpq splits it and put back with the password as ``***``; None
    when an '@' lies outside the userinfo and the query (the password holds an unencoded '@' or
    '/', so no part of the URL can be told apart from it)."""
    prefix = next(p for p in _URI_PREFIXES if url.startswith(p))
    rest = url[len(prefix) :]
    stop = next((i for i, c in enumerate(rest) if c in "@/"), len(rest))
    userinfo: str | None = None
    if stop < len(rest) and rest[stop] == "@":
        userinfo, rest = rest[:stop], rest[stop + 1 :]
    location, sep, query = rest.partition("?")  # hosts, ports and the database name
    if "@" in location:
        return None
    out = prefix
    if userinfo is not None:
        user, colon, _ = userinfo.partition(":")
        out += f"{user}:{_REDACTED}@" if colon else f"{user}@"
    out += location
    if sep:
        params = []
        for item in query.split("&") if query else []:
            key, _, value = item.partition("=")
            secret = unquote(key).lower() in _SECRET_KEYS
            params.append(f"{key}={_REDACTED if secret else value}")
        out += "?" + "&".join(params)
    return out


def _rebuild_kv(conninfo: str) -> str | None:
    """``key=value`` ``conninfo`` tokenized as libpq does, with every password as ``***``."""
    pairs, i, n = [], 0, len(conninfo)
    while True:
        while i < n and conninfo[i] in _WHITESPACE:
            i += 1
        if i >= n:
            break
        start = i
        while i < n and conninfo[i] not in _WHITESPACE and conninfo[i] != "=":
            i += 1
        key = conninfo[start:i]
        while i < n and conninfo[i] in _WHITESPACE:
            i += 1
        if i >= n or conninfo[i] != "=":
            return None
        i += 1
        while i < n and conninfo[i] in _WHITESPACE:
            i += 1
        end, _ = _kv_token(conninfo, i)
        value = conninfo[i:end]
        pairs.append(f"{key}={_REDACTED if key.lower() in _SECRET_KEYS else value}")
        i = end
    return " ".join(pairs)


def _safe_form(url: str) -> str | None:
    """``url`` rebuilt without its password; None when libpq cannot parse it or it is
    ambiguous."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        conninfo_to_dict(url)
    except psycopg.Error:
        return None
    rebuilt = _rebuild_uri(url) if url.startswith(_URI_PREFIXES) else _rebuild_kv(url)
    return None if rebuilt is None else scrub(rebuilt, url)


def redact_url(url: str) -> str:
    """``url`` (URL or ``key=value`` form) rebuilt with any password replaced by ``***``.

    A URL libpq cannot parse, or one whose password holds an unencoded '@' or '/', is not shown.
    """
    return _safe_form(url) or "(not shown: it cannot be read unambiguously)"


def _libpq_detail(message: str, url: str) -> str:
    """The first line of libpq's message about parsing ``url``, scrubbed; a quoted fragment of
    the input that overlaps anything that may be the password is masked whole."""
    lines = message.strip().splitlines()
    detail = lines[0] if lines else "cannot be parsed"
    for literal, placeholder in _LIBPQ_LITERALS.items():
        detail = detail.replace(literal, placeholder)
    first, last = detail.find('"'), detail.rfind('"')
    if first >= 0:
        fragment = detail[first + 1 : last] if last > first else detail[first + 1 :]
        tail = detail[last + 1 :] if last > first else ""
        if not _is_safe_fragment(fragment, url):
            detail = f'{detail[:first]}"{_REDACTED}"{tail}'
    for literal, placeholder in _LIBPQ_LITERALS.items():
        detail = detail.replace(placeholder, literal)
    return scrub(detail, url)


def _is_safe_fragment(fragment: str, url: str) -> bool:
    """Whether ``fragment`` is found in ``url`` and nowhere overlaps a possible password."""
    if not fragment:
        return True
    spans = _secret_spans(url)
    starts = [m.start() for m in re.finditer(f"(?={re.escape(fragment)})", url)]
    return bool(starts) and not any(
        s < start + len(fragment) and start < e for start in starts for s, e in spans
    )


# -- connecting -----------------------------------------------------------------------------------


def parse_url(url: str) -> dict[str, Any]:
    """libpq connection parameters of ``url``; BadInputError (password-free) when malformed.

    Also remembers ``url``'s candidate secrets (see :func:`scrub`), before anything can fail.
    """
    remember_secrets(url)
    if not url or not url.strip():
        raise BadInputError("the database URL is empty")
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(url)
    except psycopg.Error as exc:
        raise BadInputError(f"malformed database URL: {_libpq_detail(str(exc), url)}") from None
    if _safe_form(url) is None:
        raise BadInputError(
            "malformed database URL (not shown): it has an '@' outside the user name and "
            "password; percent-encode '@' (as %40) and '/' (as %2F) in them"
        )
    port = params.get("port")
    if port is not None and not all(p.isdigit() for p in str(port).split(",") if p):
        raise BadInputError(f"malformed database URL {redact_url(url)}: port is not a number")
    return params


def connect(url: str, *, read_only: bool = False) -> psycopg.Connection[Any]:
    """An autocommit connection to ``url``; ``read_only`` makes every transaction read-only.

    Raises :class:`BadInputError` for a malformed URL and :class:`MigratorError` (exit 1) when the
    server cannot be reached or refuses the login.
    """
    import psycopg

    params = parse_url(url)
    extra: dict[str, Any] = {"application_name": APPLICATION_NAME}
    if "connect_timeout" not in params:
        extra["connect_timeout"] = DEFAULT_CONNECT_TIMEOUT
    extra.update({k: v for k, v in DEFAULT_KEEPALIVES.items() if k not in params})
    try:
        conn = psycopg.connect(url, autocommit=True, **extra)
    except psycopg.Error as exc:
        detail = scrub(str(exc).strip(), url)
        if _BAD_PARAMETER.search(detail):
            raise BadInputError(
                f"malformed database URL {redact_url(url)}: "
                + re.sub(r"^connection (is bad|failed): ", "", detail.splitlines()[0])
            ) from None
        raise MigratorError(f"cannot connect to the database {redact_url(url)}: {detail}") from None
    settings = ["statement_timeout = 0", "idle_in_transaction_session_timeout = 0"]
    if conn.info.server_version >= 140000:  # PostgreSQL 14 added both
        settings.append("idle_session_timeout = 0")
        # A killed client's backend stops its statement (and rolls back) within a second,
        # instead of running on, holding its locks, until it next writes to the socket.
        settings.append(f"client_connection_check_interval = {CLIENT_CHECK_INTERVAL_MS}")
    if read_only:
        settings.append("default_transaction_read_only = on")
    try:
        conn.execute("; ".join(f"SET {setting}" for setting in settings))  # one round trip
    except psycopg.Error as exc:
        conn.close()
        detail = scrub(str(exc).strip(), url)
        raise MigratorError(f"cannot set up the database session: {detail}") from None
    return conn


def other_sessions(
    conn: psycopg.Connection[Any], *, exclude_pids: Collection[int] = ()
) -> list[Session]:
    """Client sessions on this connection's database, except this one and ``exclude_pids``."""
    rows = conn.execute(
        f"""
        SELECT {ACTIVITY_COLUMNS}
        FROM pg_stat_activity a
        WHERE a.backend_type = 'client backend'
          AND a.datname = current_database()
          AND a.pid <> pg_backend_pid()
          AND NOT (a.pid = ANY(%s))
        ORDER BY a.backend_start NULLS LAST, a.pid
        """,
        (list(exclude_pids),),
    ).fetchall()
    return [Session.from_row(row) for row in rows]

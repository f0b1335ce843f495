"""Goose's SQL migration parser, rule for rule (goose v3.24 to v3.27, ``internal/sqlparser``).

``parse_sql`` returns exactly the statements goose would send for one direction, including
goose's quirks, because what runs against a production database must be what hatchet-migrate
would have run:

- Lines are split on ``\\n``; one trailing ``\\r`` is dropped. A UTF-8 BOM is kept, so a file
  starting with one fails ("SQL text before -- +goose Up"), as in goose.
- A line whose trimmed text starts with ``--`` and that contains ``+goose`` anywhere is an
  annotation and must be one of: Up, Down, StatementBegin, StatementEnd, NO TRANSACTION,
  ENVSUB ON, ENVSUB OFF (case-insensitive, every ``--`` removed, no leading space or tab).
- Before a statement starts, comment lines and truly empty lines are dropped; after, they stay.
- Outside StatementBegin/End a statement ends on a line whose last word before any word
  starting with ``--`` ends with ``;``. No awareness of quotes or dollar quoting.
- An empty StatementBegin/End block swallows the next non-comment line and yields ``""``.
- Both directions are read for annotations and state errors, but only the requested direction's
  text is collected, so an unterminated statement in the other section goes unnoticed.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Literal

from migrator.envsub import EnvsubError, interpolate
from migrator.errors import SQLParseError

__all__ = ["ANNOTATIONS", "ParsedSQL", "ends_with_semicolon", "go_trim_space", "parse_sql"]

Direction = Literal["up", "down"]

# Go's unicode.IsSpace / bufio.ScanWords set (Python's str.isspace adds \x1c-\x1f).
_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"  # noqa: E501
_WORDS = re.compile(f"[^{re.escape(_GO_SPACE)}]+")

# bufio.Scanner with goose's 4 MiB buffer cannot read a line this long (in bytes, with its \r).
MAX_LINE_BYTES = 4 * 1024 * 1024

ANNOTATIONS = (
    "Up",
    "Down",
    "StatementBegin",
    "StatementEnd",
    "NO TRANSACTION",
    "ENVSUB ON",
    "ENVSUB OFF",
)
# Go's strings.EqualFold uses simple case folding: these two fold onto ASCII letters.
_FOLD = {"\u017f": "s", "\u212a": "k"}


@dataclass(frozen=True)
class ParsedSQL:
    """What goose would run for one direction of one SQL migration file."""

    statements: list[str]
    """Exactly what goose would send, in order (``""`` included, see the empty-block quirk)."""
    use_transaction: bool
    """False when ``-- +goose NO TRANSACTION`` appears anywhere in the file."""
    section_present: bool
    """False when the file has no section for this direction at all."""


class _State(IntEnum):
    START = 0
    UP = 1
    BEGIN_UP = 2
    END_UP = 3
    DOWN = 4
    BEGIN_DOWN = 5
    END_DOWN = 6


_UP_STATES = (_State.UP, _State.BEGIN_UP, _State.END_UP)
_DOWN_STATES = (_State.DOWN, _State.BEGIN_DOWN, _State.END_DOWN)


def go_trim_space(text: str) -> str:
    """``strings.TrimSpace``: strip Go's Unicode white space from both ends."""
    return text.strip(_GO_SPACE)


def ends_with_semicolon(line: str) -> bool:
    """Goose's statement-end test: the last word before a ``--`` word ends with ``;``."""
    prev = ""
    for word in _WORDS.findall(line):
        if word.startswith("--"):
            break
        prev = word
    return prev.endswith(";")


def _fold(c: str) -> str:
    return _FOLD.get(c, c.lower() if c.isascii() else c)


def _equal_fold(a: str, b: str) -> bool:
    return len(a) == len(b) and all(_fold(x) == _fold(y) for x, y in zip(a, b, strict=True))


def _annotation(line: str) -> str:
    """The canonical annotation on ``line``; raises ``ValueError`` with the problem."""
    if line.startswith((" ", "\t")):
        raise ValueError(f"annotation {_excerpt(line)} must not be indented")
    cmd = line.replace("--", "").replace("+goose", "", 1)
    if "+goose" in cmd:
        raise ValueError(f"annotation {_excerpt(line)} contains '+goose' more than once")
    cmd = go_trim_space(cmd)
    if not cmd:
        raise ValueError(f"empty annotation {_excerpt(line)}")
    for known in ANNOTATIONS:
        if _equal_fold(known, cmd):
            return known
    raise ValueError(
        f"unknown annotation {_excerpt(line)}; goose accepts only "
        + ", ".join(ANNOTATIONS)
        + " (nothing else on the line)"
    )


def _excerpt(text: str, limit: int = 60) -> str:
    first = go_trim_space(text).split("\n", 1)[0].rstrip("\r")
    if len(first) > limit:
        first = first[:limit] + "..."
    return repr(first)


def _lines(text: str, filename: str) -> Iterator[tuple[int, str]]:
    """bufio.ScanLines: split on \\n, drop one trailing \\r, no empty token after a final \\n."""
    parts = text.split("\n")
    if parts[-1] == "":
        parts.pop()
    for number, raw in enumerate(parts, start=1):
        if len(raw) * 4 >= MAX_LINE_BYTES and (
            len(raw.encode("utf-8", "surrogateescape")) >= MAX_LINE_BYTES
        ):
            raise SQLParseError(filename, number, "line is 4 MiB or longer; goose cannot read it")
        yield number, raw[:-1] if raw.endswith("\r") else raw


def _decode(content: bytes | str) -> str:
    if isinstance(content, str):
        return content
    return content.decode("utf-8", "surrogateescape")


def _has_undecodable(text: str) -> bool:
    return any("\udc80" <= c <= "\udcff" for c in text)


def parse_sql(
    content: bytes | str,
    *,
    filename: str,
    direction: Direction,
    env: Mapping[str, str] | None = None,
) -> ParsedSQL:
    """Parse a goose SQL migration for one direction, as goose's legacy path does.

    ``env`` feeds ``ENVSUB ON`` sections (default: this process's environment, like goose).
    Raises ``SQLParseError`` ("FILE:LINE: problem") where goose would refuse the file, and also
    when a statement to run is not valid UTF-8 (PostgreSQL would reject it anyway).

    A file that cannot hold an ``ENVSUB`` annotation depends on nothing but its bytes, so its
    parse is remembered (a run plans twice: before the prompt and again with the lock held).
    """
    if "envsub" in _decode(content).casefold():  # what _equal_fold matches, and more
        return _parse_sql(content, filename=filename, direction=direction, env=env)
    parsed = _parse_sql_cached(content, filename, direction)
    return ParsedSQL(list(parsed.statements), parsed.use_transaction, parsed.section_present)


@functools.lru_cache(maxsize=1024)
def _parse_sql_cached(content: bytes | str, filename: str, direction: Direction) -> ParsedSQL:
    return _parse_sql(content, filename=filename, direction=direction, env=None)


def _parse_sql(
    content: bytes | str,
    *,
    filename: str,
    direction: Direction,
    env: Mapping[str, str] | None = None,
) -> ParsedSQL:
    environ: Mapping[str, str] = os.environ if env is None else env
    state = _State.START
    use_tx = True
    envsub = False
    section_present = False
    statements: list[str] = []
    buf: list[str] = []
    stmt_line = 0  # where the statement in ``buf`` started
    stmt_raw = ""  # its first line before substitution, for messages (never a secret's value)
    begin_line = 0

    def fail(line: int, problem: str) -> SQLParseError:
        return SQLParseError(filename, line, problem)

    def emit(line: int) -> None:
        stmt = go_trim_space("".join(buf))
        if _has_undecodable(stmt):
            raise fail(stmt_line or line, "statement is not valid UTF-8")
        statements.append(stmt)
        buf.clear()

    number = 0
    for number, line in _lines(_decode(content), filename):
        trimmed = go_trim_space(line)
        if state is _State.START and trimmed == "":
            continue
        if trimmed.startswith("--") and "+goose" in line:
            try:
                cmd = _annotation(line)
            except ValueError as exc:
                raise fail(number, str(exc)) from None
            if cmd == "Up":
                if state is not _State.START:
                    raise fail(number, "duplicate '-- +goose Up' annotation")
                state = _State.UP
                section_present = section_present or direction == "up"
                continue
            if cmd == "Down":
                if state in (_State.UP, _State.END_UP):
                    if go_trim_space("".join(buf)):
                        raise fail(
                            stmt_line,
                            f"unfinished SQL statement {_excerpt(stmt_raw)} before "
                            "'-- +goose Down' (missing semicolon?)",
                        )
                    state = _State.DOWN
                    section_present = section_present or direction == "down"
                    continue
                if state is _State.START:
                    raise fail(number, "'-- +goose Down' before '-- +goose Up'")
                if state is _State.BEGIN_UP:
                    raise fail(
                        number,
                        f"'-- +goose Down' inside the StatementBegin block opened at line "
                        f"{begin_line} (missing '-- +goose StatementEnd'?)",
                    )
                raise fail(number, "duplicate '-- +goose Down' annotation")
            if cmd == "StatementBegin":
                if state in (_State.UP, _State.END_UP):
                    state = _State.BEGIN_UP
                elif state in (_State.DOWN, _State.END_DOWN):
                    state = _State.BEGIN_DOWN
                elif state is _State.START:
                    raise fail(number, "'-- +goose StatementBegin' before '-- +goose Up'")
                else:
                    raise fail(
                        number,
                        f"'-- +goose StatementBegin' inside the block opened at line "
                        f"{begin_line} (missing '-- +goose StatementEnd'?)",
                    )
                begin_line = number
                continue
            if cmd == "StatementEnd":
                if state is _State.BEGIN_UP:
                    state = _State.END_UP
                elif state is _State.BEGIN_DOWN:
                    state = _State.END_DOWN
                else:
                    raise fail(number, "'-- +goose StatementEnd' without a StatementBegin")
                # No ``continue``: goose lets this line fall through (see the empty-block quirk).
            elif cmd == "NO TRANSACTION":
                use_tx = False
                continue
            else:
                envsub = cmd == "ENVSUB ON"
                continue

        if not buf and (trimmed.startswith("--") or line == ""):
            continue  # comments and empty lines before a statement starts
        if state not in (_State.END_UP, _State.END_DOWN):
            if envsub:
                try:
                    expanded = interpolate(line, environ)
                except EnvsubError as exc:
                    raise fail(number, f"variable substitution failed: {exc}") from None
            else:
                expanded = line
            if not buf:
                stmt_line, stmt_raw = number, line
            buf.append(expanded + "\n")
            line = expanded

        if state in _UP_STATES:
            section: Direction = "up"
        elif state in _DOWN_STATES:
            section = "down"
        else:
            raise fail(number, f"SQL text before '-- +goose Up': {_excerpt(stmt_raw)}")
        if section != direction:
            buf.clear()
            continue

        if state in (_State.UP, _State.DOWN):
            if ends_with_semicolon(line):
                emit(number)
        elif state is _State.END_UP:
            emit(number)
            state = _State.UP
        elif state is _State.END_DOWN:
            emit(number)
            state = _State.DOWN

    if state is _State.START:
        raise fail(max(number, 1), "no '-- +goose Up' annotation")
    if state in (_State.BEGIN_UP, _State.BEGIN_DOWN):
        raise fail(begin_line, "'-- +goose StatementBegin' has no matching StatementEnd")
    if go_trim_space("".join(buf)):
        raise fail(
            stmt_line,
            f"unfinished SQL statement {_excerpt(stmt_raw)} at end of file (missing semicolon?)",
        )
    return ParsedSQL(statements, use_tx, section_present)

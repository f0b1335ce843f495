"""Shell-style variable substitution, as goose applies it under ``-- +goose ENVSUB ON``.

Goose (v3.24 to v3.27) expands each SQL line with the ``mfridman/interpolate`` grammar:

- ``$VAR`` and ``${VAR}``: the value, or ``""`` when unset;
- ``${VAR:-default}``: the default when VAR is unset or empty; ``${VAR-default}``: when unset;
- ``${VAR?message}``: an error naming VAR when it is unset;
- ``${VAR:offset}`` / ``${VAR:offset:length}``: a byte slice of the value;
- ``$$`` and ``\\$`` become ``$``; ``\\\\`` stays ``\\\\``; ``$(`` is left alone; a ``$`` at the
  very end of the text is literal. Any other ``$`` must start a variable name (a letter), so a
  PostgreSQL placeholder such as ``$1`` is an error.

A variable name starts with a letter and continues with letters, digits and ``_`` (Unicode
categories L and N). Bytes that are not UTF-8 (carried as surrogate escapes) come out as U+FFFD,
as they do in Go.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = ["EnvsubError", "interpolate"]

_GO_INT = re.compile(r"[+-]?[0-9]+")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class EnvsubError(ValueError):
    """The text cannot be expanded; ``str(err)`` says why."""


@dataclass(frozen=True)
class _Text:
    text: str


@dataclass(frozen=True)
class _Var:
    name: str


@dataclass(frozen=True)
class _Default:
    name: str
    content: list[_Item]
    when_empty: bool
    """``:-`` (unset or empty) rather than ``-`` (unset only)."""


@dataclass(frozen=True)
class _Substring:
    name: str
    offset: int
    length: int | None


@dataclass(frozen=True)
class _Required:
    name: str
    message: list[_Item]


_Item = _Text | _Var | _Default | _Substring | _Required


def _is_rune_error(c: str) -> bool:
    # Go decodes an invalid byte as utf8.RuneError; so does a literal U+FFFD.
    return c == "\ufffd" or "\ud800" <= c <= "\udfff"


def _is_letter(c: str) -> bool:
    return unicodedata.category(c).startswith("L")


def _is_ident_char(c: str) -> bool:
    return c == "_" or unicodedata.category(c)[0] in "LN"


def _show(c: str | None) -> str:
    return "end of line" if c is None else repr(c)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def peek(self) -> str | None:
        return self.text[self.pos] if self.pos < len(self.text) else None

    def next(self) -> str | None:
        c = self.peek()
        if c is not None:
            self.pos += 1
        return c

    def scan_until(self, stop: Callable[[str], bool]) -> str:
        start = self.pos
        while self.pos < len(self.text):
            c = self.text[self.pos]
            if _is_rune_error(c) or stop(c):
                break
            self.pos += 1
        return self.text[start : self.pos]

    def expression(self, stop: str = "") -> list[_Item]:
        items: list[_Item] = []
        while True:
            c = self.peek()
            if c is None or c in stop:
                return items
            rest = self.text.startswith
            if rest("\\\\", self.pos):
                self.pos += 2
                items.append(_Text("\\\\"))
                continue
            if rest("\\$", self.pos) or rest("$$", self.pos):
                self.pos += 2
                items.append(_Text("$"))
                continue
            if rest("$(", self.pos):
                self.pos += 2
                items.append(_Text("$("))
                continue
            if c == "$" and self.pos < len(self.text) - 1:
                items.append(self.expansion())
                continue
            first = self.next()
            assert first is not None
            if _is_rune_error(first):
                first = "\ufffd"
            text = self.scan_until(lambda r: r in "$\\" or r in stop)
            items.append(_Text(first + text))

    def identifier(self) -> str:
        c = self.peek()
        if c is None or not _is_letter(c):
            raise EnvsubError(
                f"expected a variable name (a letter) after '$' at column {self.pos + 1}, "
                f"got {_show(c)}; write $$ for a literal $"
            )
        return self.scan_until(lambda r: not _is_ident_char(r))

    def expansion(self) -> _Item:
        self.next()  # the "$"
        if self.peek() != "{":
            return _Var(self.identifier())
        self.next()
        name = self.identifier()
        if self.peek() == "}":
            self.next()
            return _Var(name)
        op = self.next()
        item: _Item
        if op == ":" and self.peek() == "-":
            self.next()
            item = _Default(name, self.expression("}"), when_empty=True)
        elif op == ":":
            item = self.substring(name)
        elif op == "-":
            item = _Default(name, self.expression("}"), when_empty=False)
        elif op == "?":
            item = _Required(name, self.expression("}"))
        else:
            raise EnvsubError(f"expected an operator after '${{{name}', got {_show(op)}")
        close = self.next()
        if close != "}":
            raise EnvsubError(f"'${{{name}' is not closed with '}}' (got {_show(close)})")
        return item

    def substring(self, name: str) -> _Substring:
        offset = _go_atoi(self.scan_until(lambda r: r in ":}"), name, "offset")
        if self.peek() == "}":
            return _Substring(name, offset, None)
        self.next()
        length = _go_atoi(self.scan_until(lambda r: r == "}"), name, "length")
        return _Substring(name, offset, length)


def _go_atoi(raw: str, name: str, what: str) -> int:
    text = raw.strip(" \t\n\v\f\r\x85\xa0")
    if _GO_INT.fullmatch(text):
        value = int(text)
        if _INT64_MIN <= value <= _INT64_MAX:
            return value
    raise EnvsubError(f"'${{{name}:...}}': {what} {raw!r} is not an integer")


def _byte_slice(value: str, offset: int, length: int | None) -> str:
    data = value.encode("utf-8", "surrogateescape")
    start = min(max(offset + len(data) if offset < 0 else offset, 0), len(data))
    if length is None:
        end = len(data)
    elif length >= 0:
        end = min(start + length, len(data))
    else:
        end = min(max(length + len(data), start), len(data))
    return data[start:end].decode("utf-8", "surrogateescape")


def _expand(items: list[_Item], env: Mapping[str, str]) -> str:
    out: list[str] = []
    for item in items:
        if isinstance(item, _Text):
            out.append(item.text)
        elif isinstance(item, _Var):
            out.append(env.get(item.name, ""))
        elif isinstance(item, _Default):
            value = env.get(item.name)
            use_default = value is None or (item.when_empty and value == "")
            out.append(_expand(item.content, env) if use_default else value or "")
        elif isinstance(item, _Substring):
            out.append(_byte_slice(env.get(item.name, ""), item.offset, item.length))
        else:
            if item.name not in env:
                message = _expand(item.message, env) or "not set"
                raise EnvsubError(f"${item.name}: {message}")
            out.append(env[item.name])
    return "".join(out)


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Expand ``text`` the way goose's ENVSUB does; raises ``EnvsubError``."""
    if "$" not in text and "\\" not in text and not any(map(_is_rune_error, text)):
        return text
    return _expand(_Parser(text).expression(), env)

"""Git object ids: how a file's bytes, and a directory listing, are checked against the SHAs that
GitHub gives.

A blob's id is ``sha1("blob <len>\\0" + bytes)``. A tree's id is the same over its entries, each
``"<mode> <name>\\0"`` followed by the entry's 20-byte binary id, in git's order (byte order of the
names, a directory's name compared as if it ended in ``/``). A tree object holds every entry of
the directory (files, symlinks, subdirectories, submodules), so a listing can only be checked
against the directory's tree id when it keeps all of them with their modes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

_SHA = re.compile(r"[0-9a-f]{40}")
_MODE = re.compile(r"[0-7]{1,6}")

DIR_MODE = "40000"
SUBMODULE_MODE = "160000"
SYMLINK_MODE = "120000"
FILE_MODE = "100644"


def git_blob_sha(data: bytes) -> str:
    """``sha1(b"blob <len>\\0" + data)``, the id git gives a file's content."""
    digest = hashlib.sha1(b"blob %d\0" % len(data), usedforsecurity=False)
    digest.update(data)
    return digest.hexdigest()


def is_sha(text: str) -> bool:
    """A full 40-hex object id (lower case, as GitHub writes them)."""
    return _SHA.fullmatch(text) is not None


def tree_mode(mode: str) -> str | None:
    """``mode`` as git writes it in a tree object (GitHub's ``"040000"`` is ``"40000"``), or
    ``None`` if it is not an octal file mode."""
    if _MODE.fullmatch(mode) is None:
        return None
    return mode.lstrip("0") or None


def object_type(mode: str) -> str:
    """The object type a tree entry of (canonical) ``mode`` points at."""
    if mode == DIR_MODE:
        return "tree"
    if mode == SUBMODULE_MODE:
        return "commit"
    return "blob"


def _valid_name(name: str) -> bool:
    return bool(name) and name not in (".", "..") and "/" not in name and "\0" not in name


def git_tree_sha(entries: Iterable[tuple[str, str, str]]) -> str:
    """The id of the tree object holding ``entries`` as ``(mode, name, sha)``: what
    ``git mktree`` prints for them. The order of ``entries`` does not matter.

    :class:`ValueError` if an entry could not be in a tree git writes (a bad mode, name or id,
    or a name given twice).
    """
    keyed: list[tuple[bytes, bytes]] = []
    seen: set[str] = set()
    for mode, name, sha in entries:
        canonical = tree_mode(mode)
        if canonical is None or not _valid_name(name) or not is_sha(sha) or name in seen:
            raise ValueError(f"not a git tree entry: {mode!r} {name!r} {sha!r}")
        seen.add(name)
        raw = name.encode("utf-8", "surrogateescape")
        key = raw + b"/" if canonical == DIR_MODE else raw
        keyed.append((key, canonical.encode() + b" " + raw + b"\0" + bytes.fromhex(sha)))
    keyed.sort(key=lambda pair: pair[0])
    body = b"".join(record for _, record in keyed)
    digest = hashlib.sha1(b"tree %d\0" % len(body), usedforsecurity=False)
    digest.update(body)
    return digest.hexdigest()

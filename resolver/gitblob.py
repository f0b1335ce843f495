"""Git blob object ids: how a file's bytes are checked against the SHA that GitHub lists."""

from __future__ import annotations

import hashlib
import re

_SHA = re.compile(r"[0-9a-f]{40}")


def git_blob_sha(data: bytes) -> str:
    """``sha1(b"blob <len>\\0" + data)``, the id git gives a file's content."""
    digest = hashlib.sha1(b"blob %d\0" % len(data), usedforsecurity=False)
    digest.update(data)
    return digest.hexdigest()


def is_sha(text: str) -> bool:
    """A full 40-hex object id (lower case, as GitHub writes them)."""
    return _SHA.fullmatch(text) is not None

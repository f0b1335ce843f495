"""The on-disk cache: blob contents by SHA, listings by commit, tag lists with their ETags.

Layout: ``<cache dir>/github-v1/<api host>/<owner>/<repo>/`` holding ``blobs/<sha>`` (raw bytes,
immutable, re-verified against the SHA on every read) and ``json/<key>.json`` (small JSON
documents in an envelope; directory listings among them are re-verified against their git tree
id by ``resolver.listing`` on every read, and dropped with :meth:`Cache.discard_json` when they
fail). Directories are 0700 and files 0600; writes go to a temporary file that
is renamed into place, so a crash never leaves half an entry. An entry that cannot be read back
(bad JSON, wrong envelope, wrong SHA) is deleted and treated as a miss. Writing is best effort: a
read-only or full disk only costs the next run some requests. No header, URL query or token is
ever written here.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from resolver.gitblob import git_blob_sha, is_sha

FORMAT = 1
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_KEY = re.compile(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*")


def _component(text: str) -> str:
    cleaned = _UNSAFE.sub("_", text).strip(".")
    return cleaned or "_"


class Cache:
    """Entries for one API host and repository under ``base``."""

    def __init__(self, base: Path, api_url: str, repo: str) -> None:
        parts = urlsplit(api_url)
        host = parts.netloc.rsplit("@", 1)[-1] + parts.path
        owner, _, name = repo.partition("/")
        self.base = base
        self.root = (
            base / "github-v1" / _component(host) / _component(owner) / _component(name or "_")
        )

    # -- JSON entries -------------------------------------------------------------------------

    def read_json(self, key: str) -> Any | None:
        """The value stored under ``key``, or ``None`` (missing or corrupt: then removed)."""
        path = self.json_path(key)
        try:
            raw = path.read_bytes()
        except OSError:
            return None
        try:
            envelope = json.loads(raw)
        except ValueError:
            envelope = None
        if not isinstance(envelope, dict) or envelope.get("format") != FORMAT:
            self._discard(path)
            return None
        if envelope.get("key") != key or "value" not in envelope:
            self._discard(path)
            return None
        return envelope["value"]

    def write_json(self, key: str, value: Any) -> None:
        data = json.dumps({"format": FORMAT, "key": key, "value": value}, sort_keys=True)
        self._write(self.json_path(key), data.encode())

    def discard_json(self, key: str) -> None:
        """Remove the entry under ``key`` (one that failed a check of its content)."""
        self._discard(self.json_path(key))

    def json_path(self, key: str) -> Path:
        """The file holding ``key`` (for messages that name it)."""
        if _KEY.fullmatch(key) is None or ".." in key:
            raise ValueError(f"bad cache key {key!r}")
        return self.root / "json" / f"{key}.json"

    # -- blobs --------------------------------------------------------------------------------

    def read_blob(self, sha: str) -> bytes | None:
        """A file's bytes by git blob SHA; ``None`` on a miss or a corrupt entry."""
        if not is_sha(sha):
            return None
        path = self._blob_path(sha)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        if git_blob_sha(data) != sha:
            self._discard(path)
            return None
        return data

    def write_blob(self, sha: str, data: bytes) -> None:
        """Store ``data``; callers pass bytes already verified against ``sha``."""
        if is_sha(sha):
            self._write(self._blob_path(sha), data)

    def _blob_path(self, sha: str) -> Path:
        return self.root / "blobs" / sha[:2] / sha

    # -- files --------------------------------------------------------------------------------

    def _ensure_dir(self, directory: Path) -> None:
        """Create ``directory`` and the cache's own parents as 0700.

        ``base`` is created 0700 when missing but never re-moded when it exists (it may be a
        directory the user chose); everything from ``github-v1`` down is ours and kept 0700.
        """
        if not self.base.exists():
            self.base.mkdir(mode=0o700, parents=True, exist_ok=True)
        ours = self.base / "github-v1"
        relative = directory.relative_to(ours)
        current = ours
        for part in ("", *relative.parts):
            current = current / part if part else current
            current.mkdir(mode=0o700, exist_ok=True)
            if current.stat().st_mode & 0o077:
                current.chmod(0o700)

    def _write(self, path: Path, data: bytes) -> None:
        try:
            self._ensure_dir(path.parent)
            fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        except OSError:
            return
        try:
            with os.fdopen(fd, "wb") as handle:
                os.fchmod(handle.fileno(), 0o600)
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(temp)

    @staticmethod
    def _discard(path: Path) -> None:
        with contextlib.suppress(OSError):
            path.unlink()

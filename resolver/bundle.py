"""Bundles: one file holding everything a downgrade to one release needs, for machines without
GitHub (``hatchet-schema bundle`` writes one, ``--bundle FILE`` reads it, never the network).

The file is a gzip-compressed POSIX tar, readable with ``tar -xzf``:

* ``manifest.json``: the tool and its version, the repository and migrations path, when and from
  what the bundle was made, the releases it covers (``to_release``, ``from_release``), the tag
  list, the commits of annotated tags, each held commit's migrations-directory tree id, every
  directory entry once (mode, name, blob SHA, size) and each tree as the numbers of its entries
  (releases share most of them), and every blob's SHA with a file name;
* ``README.txt``: this layout in words;
* ``blobs/<sha>``: the bytes of each migration file, named by its git blob SHA
  (``git hash-object blobs/<sha>`` prints ``<sha>``).

A bundle is recorded, not computed: ``bundle`` runs the same resolver calls a ``downgrade`` and a
``status`` make for every database state the bundle covers, through parts that remember what
was read (:func:`record`), and writes exactly that. :class:`BundleResolver` replays it with the
same release logic, as an online run with a cold cache would see GitHub; what the bundle does not
hold is, to a budgeted search, a listing it may not read, and to anything else an error (exit 2)
naming the ``bundle`` command that would hold it.

On load every blob is checked against its git blob SHA and every tree's entries against its
tree id; a bundle that fails any check (a changed byte, a missing or extra member, a truncated or
damaged archive, a manifest that does not add up) is refused with exit 2, naming what failed.
The tag list and the commits of annotated tags are as the source gave them: a bundle proves its
contents consistent, not who made it; compare the SHA-256 that ``bundle`` prints to be sure you
carry the file it wrote.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import re
import tarfile
import tempfile
import zlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from resolver.errors import BadInputError
from resolver.gitblob import git_blob_sha, is_sha, object_type, tree_mode
from resolver.listing import DirectoryMissing, DirEntry, TreeListing
from resolver.models import Listing, Release, RemoteFile, Resolution
from resolver.refs import TagRef
from resolver.service import FIRST_GOOSE_RELEASE, UNKNOWN, Known, ReleaseResolver, _Budget
from resolver.settings import DEFAULT_MIGRATIONS_PATH, DEFAULT_REPO, GitHubSettings
from resolver.source import BlobStore, ReleaseSource, TagStore, TreeStore
from resolver.tags import parse_tag

FORMAT = "hatchet-schema-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
README = "README.txt"
BLOB_DIR = "blobs/"
MAX_FILE = 256 * 1024 * 1024
MAX_MEMBER = 64 * 1024 * 1024
MAX_TOTAL = 1024 * 1024 * 1024
_REPO = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")

README_TEXT = """\
A hatchet-schema bundle: everything `hatchet-schema downgrade --bundle THIS-FILE` needs to plan
and run a Hatchet schema downgrade without GitHub.

manifest.json  what the bundle holds: tool version, repository, creation time, the releases it
               covers (to_release / from_release), the tag list ("tags"), the commits of
               annotated tags ("peeled"), the migrations-directory tree id of each commit
               ("commits", null: no such directory there), every directory entry once
               ("entries": mode, name, blob SHA, size), each tree as the numbers of its entries
               ("trees") and the blobs ("blobs": SHA -> file name, size).
blobs/<sha>    one migration file, named by its git blob SHA; `git hash-object blobs/<sha>`
               prints <sha>.

hatchet-schema checks every blob against its SHA and every tree against its id when it loads
the bundle, and refuses a bundle that fails any check.
"""


def tool_version() -> str:
    try:
        return metadata.version("hatchet-schema")
    except metadata.PackageNotFoundError:
        return "0.0.0"


# -- what a bundle holds ---------------------------------------------------------------------


@dataclass
class Recording:
    """Everything read through :func:`record`'s parts: what a bundle holds."""

    tags: list[TagRef] = field(default_factory=list)
    peeled: dict[str, str] = field(default_factory=dict)
    """Annotated tag object id -> the commit it points at."""
    listings: dict[str, TreeListing | None] = field(default_factory=dict)
    """Commit -> its migrations directory (``None``: the directory does not exist there)."""
    blobs: dict[str, bytes] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    """Blob SHA -> a file name it has."""


@dataclass(frozen=True)
class BundleHeader:
    """The manifest's description of a bundle."""

    repository: str
    migrations_path: str
    to_release: str
    to_version: int
    from_release: str
    from_version: int
    newest_release: str
    made_from: str
    created: str = field(
        default_factory=lambda: datetime.now(UTC).replace(microsecond=0).isoformat()
    )
    tool_version: str = field(default_factory=tool_version)


@dataclass(frozen=True)
class Bundle:
    """A loaded, verified bundle."""

    path: Path
    header: BundleHeader
    recording: Recording
    sha256: str
    size: int

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class WrittenBundle:
    """What :func:`write_bundle` reports."""

    path: Path
    size: int
    sha256: str
    releases: tuple[str, ...]
    listings: int
    trees: int
    blobs: int
    blob_bytes: int


# -- recording ---------------------------------------------------------------------------------


class _RecordingTags:
    def __init__(self, inner: TagStore, into: Recording) -> None:
        self._inner, self._into = inner, into

    def tags(self) -> list[TagRef]:
        found = self._inner.tags()
        self._into.tags = list(found)
        return found

    def peel(self, tag: TagRef) -> str:
        commit = self._inner.peel(tag)
        if tag.type != "commit":
            self._into.peeled[tag.sha] = commit
        return commit

    def cached_peel(self, tag: TagRef) -> str | None:
        commit = self._inner.cached_peel(tag)
        if commit is not None and tag.type != "commit":
            self._into.peeled[tag.sha] = commit
        return commit

    def commit_of(self, ref: str) -> str:
        return self._inner.commit_of(ref)


class _RecordingTrees:
    def __init__(self, inner: TreeStore, into: Recording) -> None:
        self._inner, self._into = inner, into

    def listing_at(self, commit: str, *, commit_known: bool) -> TreeListing:
        try:
            listing = self._inner.listing_at(commit, commit_known=commit_known)
        except DirectoryMissing:
            self._into.listings[commit] = None
            raise
        self._into.listings[commit] = listing
        return listing

    def cached_listing_at(self, commit: str) -> TreeListing | None:
        try:
            listing = self._inner.cached_listing_at(commit)
        except DirectoryMissing:
            self._into.listings[commit] = None
            raise
        if listing is not None:
            self._into.listings[commit] = listing
        return listing


class _RecordingBlobs:
    def __init__(self, inner: BlobStore, into: Recording) -> None:
        self._inner, self._into = inner, into

    def fetch(self, commit: str, files: Sequence[RemoteFile]) -> dict[str, bytes]:
        held = self._into.blobs
        if all(item.sha in held for item in files):  # read (and verified) before
            return {item.name: held[item.sha] for item in files}
        found = self._inner.fetch(commit, files)
        for item in files:
            if item.name in found:
                self._into.blobs[item.sha] = found[item.name]
                self._into.names.setdefault(item.sha, item.name)
        return found


def record(source: ReleaseSource) -> tuple[ReleaseResolver, Recording]:
    """A resolver over ``source``'s parts that records everything read, and the record."""
    if not isinstance(source, ReleaseResolver):
        raise TypeError(f"cannot record reads of {source!r}")
    into = Recording()
    refs, lister, contents = source.parts()
    recorder = source.with_parts(
        _RecordingTags(refs, into), _RecordingTrees(lister, into), _RecordingBlobs(contents, into)
    )
    return recorder, into


# -- writing -----------------------------------------------------------------------------------


def manifest_of(header: BundleHeader, recording: Recording) -> dict[str, Any]:
    """The manifest document of a bundle holding ``recording``."""
    commits: dict[str, str | None] = {}
    distinct: dict[str, TreeListing] = {}
    for commit, listing in sorted(recording.listings.items()):
        commits[commit] = listing.tree if listing is not None else None
        if listing is not None:
            distinct.setdefault(listing.tree, listing)
    # Every entry once, each tree a list of indices into them: releases share most entries.
    entries: list[list[Any]] = []
    index: dict[tuple[str, str, str, int], int] = {}
    trees: dict[str, list[int]] = {}
    for tree, listing in sorted(distinct.items(), key=lambda kv: (len(kv[1].entries), kv[0])):
        row: list[int] = []
        for e in listing.entries:
            key = (e.mode, e.name, e.sha, e.size)
            if key not in index:
                index[key] = len(entries)
                entries.append(list(key))
            row.append(index[key])
        trees[tree] = row
    releases: dict[str, str] = {}
    for tag in recording.tags:
        held = tag.sha if tag.type == "commit" else recording.peeled.get(tag.sha)
        if held is not None and held in commits:
            releases[tag.name] = held
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tool": "hatchet-schema",
        "tool_version": header.tool_version,
        "created": header.created,
        "made_from": header.made_from,
        "repository": header.repository,
        "migrations_path": header.migrations_path,
        "to_release": header.to_release,
        "to_version": header.to_version,
        "from_release": header.from_release,
        "from_version": header.from_version,
        "newest_release": header.newest_release,
        "releases": releases,
        "tags": [[t.name, t.sha, t.type] for t in recording.tags],
        "peeled": dict(sorted(recording.peeled.items())),
        "commits": commits,
        "entries": entries,
        "trees": trees,
        "blobs": {
            sha: {"name": recording.names.get(sha, ""), "size": len(data)}
            for sha, data in sorted(recording.blobs.items())
        },
    }


def _member(name: str, data: bytes, mtime: int) -> tuple[tarfile.TarInfo, io.BytesIO]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = mtime
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info, io.BytesIO(data)


def _dump_manifest(manifest: Mapping[str, Any]) -> bytes:
    """The manifest as JSON with one line per key, and per item of a list or object."""

    def one(value: Any) -> str:
        return json.dumps(value, separators=(", ", ": "))

    lines: list[str] = []
    for key, value in manifest.items():
        if isinstance(value, dict) and value:
            items = [f"  {one(k)}: {one(v)}" for k, v in value.items()]
            text = "{\n" + ",\n".join(items) + "\n }"
        elif isinstance(value, list) and value:
            text = "[\n" + ",\n".join(f"  {one(v)}" for v in value) + "\n ]"
        else:
            text = one(value)
        lines.append(f" {one(key)}: {text}")
    return ("{\n" + ",\n".join(lines) + "\n}\n").encode()


def write_bundle(path: Path, header: BundleHeader, recording: Recording) -> WrittenBundle:
    """Write the bundle to ``path`` (a new file: an existing one is refused), atomically."""
    if path.exists():
        raise BadInputError(f"--output {path}: the file exists; choose a new name")
    if not path.parent.is_dir():
        raise BadInputError(f"--output {path}: no such directory {path.parent}")
    manifest = manifest_of(header, recording)
    mtime = int(datetime.fromisoformat(header.created).timestamp())
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as raw:
            with (
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=mtime) as packed,
                tarfile.open(fileobj=packed, mode="w", format=tarfile.PAX_FORMAT) as tar,
            ):
                document = _dump_manifest(manifest)
                tar.addfile(*_member(MANIFEST, document, mtime))
                tar.addfile(*_member(README, README_TEXT.encode(), mtime))
                for sha, data in sorted(recording.blobs.items()):
                    tar.addfile(*_member(BLOB_DIR + sha, data, mtime))
            raw.flush()
            os.fsync(raw.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    data = path.read_bytes()
    return WrittenBundle(
        path=path,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        releases=tuple(manifest["releases"]),
        listings=len(manifest["commits"]),
        trees=len(manifest["trees"]),
        blobs=len(recording.blobs),
        blob_bytes=sum(len(b) for b in recording.blobs.values()),
    )


# -- loading and verifying ---------------------------------------------------------------------


class _Refused(Exception):
    """A check the bundle failed (internal; turned into a BadInputError naming the bundle)."""


def _expect(condition: bool, problem: str) -> None:
    if not condition:
        raise _Refused(problem)


def load_bundle(path: Path) -> Bundle:
    """Read and verify a bundle; :class:`BadInputError` (exit 2) naming what failed."""
    try:
        if path.stat().st_size > MAX_FILE:
            raise BadInputError(f"--bundle {path}: larger than any bundle ({MAX_FILE:,} bytes)")
        data = path.read_bytes()
    except FileNotFoundError:
        raise BadInputError(f"--bundle {path}: no such file") from None
    except OSError as exc:
        raise BadInputError(f"--bundle {path}: cannot read it ({exc.strerror})") from None
    try:
        members = _members(data)
        header, recording = _parse(members)
    except _Refused as exc:
        raise BadInputError(f"bundle {path} is refused: {exc}") from None
    return Bundle(path, header, recording, hashlib.sha256(data).hexdigest(), len(data))


def _members(data: bytes) -> dict[str, bytes]:
    """Every member of the archive by name (regular files only, each at most once)."""
    members: dict[str, bytes] = {}
    total = 0
    try:
        with (
            gzip.GzipFile(fileobj=io.BytesIO(data), mode="rb") as unpacked,
            tarfile.open(fileobj=unpacked, mode="r|") as tar,
        ):
            for info in tar:
                _expect(info.isfile(), f"member {info.name!r} is not a regular file")
                _expect(info.name not in members, f"member {info.name!r} appears twice")
                _expect(info.size <= MAX_MEMBER, f"member {info.name!r} is too large")
                total += info.size
                _expect(total <= MAX_TOTAL, "the archive unpacks to more than 1 GiB")
                stream = tar.extractfile(info)
                _expect(stream is not None, f"member {info.name!r} cannot be read")
                assert stream is not None
                content = stream.read()
                _expect(len(content) == info.size, f"member {info.name!r} is truncated")
                members[info.name] = content
            # tar stops at its end-of-archive blocks; read on to the end so that gzip checks
            # its CRC over every byte (a change in the padding is a change too).
            while unpacked.read(1 << 16):
                pass
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, OSError) as exc:
        detail = str(exc) or type(exc).__name__
        raise _Refused(
            f"it is truncated or damaged, or not a hatchet-schema bundle (a gzip-compressed "
            f"tar): {detail}"
        ) from None
    return members


def _parse(members: dict[str, bytes]) -> tuple[BundleHeader, Recording]:
    _expect(MANIFEST in members, f"it has no {MANIFEST} (truncated, or not a bundle)")
    try:
        manifest = json.loads(members[MANIFEST])
    except ValueError:
        raise _Refused(f"{MANIFEST} is not valid JSON") from None
    _expect(isinstance(manifest, dict), f"{MANIFEST} is not an object")
    _expect(manifest.get("format") == FORMAT, f"{MANIFEST} does not describe a {FORMAT}")
    version = manifest.get("format_version")
    _expect(
        version == FORMAT_VERSION,
        f"it has format version {version!r}; this hatchet-schema reads version {FORMAT_VERSION}",
    )
    header = _header(manifest)
    recording = Recording()
    recording.tags = _tags(manifest.get("tags"))
    recording.peeled = _peeled(manifest.get("peeled"))
    recording.listings = _listings(
        manifest.get("commits"), manifest.get("trees"), manifest.get("entries")
    )
    names = _blob_index(manifest.get("blobs"))
    for sha, (name, size) in names.items():
        member = BLOB_DIR + sha
        _expect(member in members, f"it lacks {member} ({name}): truncated or altered")
        content = members[member]
        actual = git_blob_sha(content)
        _expect(
            actual == sha,
            f"{member} ({name}) does not match its git blob SHA (its bytes hash to {actual}): "
            "the bundle was altered or damaged",
        )
        _expect(len(content) == size, f"{member} ({name}) is {len(content)} bytes, not {size}")
        recording.blobs[sha] = content
        recording.names[sha] = name
    expected = {MANIFEST, README} | {BLOB_DIR + sha for sha in names}
    extra = sorted(set(members) - expected)
    _expect(not extra, f"it holds members its manifest does not list: {', '.join(extra[:3])}")
    return header, recording


def _header(manifest: dict[str, Any]) -> BundleHeader:
    texts = (
        "repository",
        "migrations_path",
        "to_release",
        "from_release",
        "newest_release",
        "made_from",
        "created",
        "tool_version",
    )
    values: dict[str, Any] = {}
    for key in texts:
        value = manifest.get(key)
        _expect(isinstance(value, str), f"{MANIFEST} has no {key}")
        values[key] = value
    for key in ("to_version", "from_version"):
        value = manifest.get(key)
        _expect(isinstance(value, int) and value >= 0, f"{MANIFEST} has no {key}")
        values[key] = value
    _expect(_REPO.fullmatch(values["repository"]) is not None, "its repository is not OWNER/NAME")
    try:
        datetime.fromisoformat(values["created"])
    except ValueError:
        raise _Refused(f"{MANIFEST} has a malformed creation time") from None
    return BundleHeader(**values)


def _tags(raw: Any) -> list[TagRef]:
    _expect(isinstance(raw, list), f"{MANIFEST} has no tag list")
    tags: list[TagRef] = []
    for item in raw:
        _expect(
            isinstance(item, list)
            and len(item) == 3
            and all(isinstance(x, str) for x in item)
            and is_sha(item[1])
            and item[2] in ("commit", "tag"),
            f"{MANIFEST} has a malformed tag entry {item!r}",
        )
        tags.append(TagRef(item[0], item[1], item[2]))
    return tags


def _peeled(raw: Any) -> dict[str, str]:
    _expect(isinstance(raw, dict), f"{MANIFEST} has no peeled tags")
    for key, value in raw.items():
        _expect(
            is_sha(key) and isinstance(value, str) and is_sha(value),
            f"{MANIFEST} has a malformed peeled tag {key!r}",
        )
    return dict(raw)


def _listings(commits: Any, trees: Any, table: Any) -> dict[str, TreeListing | None]:
    _expect(isinstance(commits, dict), f"{MANIFEST} has no commits")
    _expect(isinstance(trees, dict), f"{MANIFEST} has no trees")
    _expect(isinstance(table, list), f"{MANIFEST} has no tree entries")
    rows: list[DirEntry] = []
    for item in table:
        ok = isinstance(item, list) and len(item) == 4
        if ok:
            mode, name, sha, size = item
            ok = (
                isinstance(mode, str)
                and tree_mode(mode) == mode
                and isinstance(name, str)
                and isinstance(sha, str)
                and isinstance(size, int)
                and size >= 0
            )
        _expect(ok, f"{MANIFEST} has a malformed tree entry {item!r}")
        rows.append(DirEntry(mode, name, sha, size if object_type(mode) == "blob" else 0))
    verified: dict[str, TreeListing] = {}
    for tree, raw in trees.items():
        _expect(
            isinstance(raw, list)
            and all(
                isinstance(i, int) and not isinstance(i, bool) and 0 <= i < len(rows) for i in raw
            ),
            f"tree {tree} in {MANIFEST} is not a list of entry numbers",
        )
        listing = TreeListing(str(tree), tuple(rows[i] for i in raw))
        problem = listing.problem()
        _expect(
            problem is None,
            f"the listing of tree {tree} failed verification ({problem}): the bundle was altered "
            "or damaged",
        )
        verified[str(tree)] = listing
    out: dict[str, TreeListing | None] = {}
    for commit, tree in commits.items():
        _expect(is_sha(commit), f"{MANIFEST} has a malformed commit {commit!r}")
        if tree is None:
            out[commit] = None
            continue
        _expect(
            isinstance(tree, str) and tree in verified,
            f"commit {commit} names tree {tree!r}, which the bundle does not hold",
        )
        out[commit] = verified[tree]
    return out


def _blob_index(raw: Any) -> dict[str, tuple[str, int]]:
    _expect(isinstance(raw, dict), f"{MANIFEST} has no blob index")
    index: dict[str, tuple[str, int]] = {}
    for sha, meta in raw.items():
        ok = is_sha(sha) and isinstance(meta, dict)
        name, size = (meta.get("name"), meta.get("size")) if ok else (None, None)
        _expect(
            ok and isinstance(name, str) and isinstance(size, int),
            f"{MANIFEST} has a malformed blob entry {sha!r}",
        )
        assert isinstance(name, str) and isinstance(size, int)
        index[sha] = (name, size)
    return index


# -- replaying ---------------------------------------------------------------------------------


class NotInBundle(BadInputError):
    """Something a command needs that the bundle does not hold (exit 2)."""


class _Coverage:
    """How to say what a bundle covers, and which ``bundle`` command would cover more."""

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self.header = bundle.header

    def covers(self) -> str:
        h = self.header
        return (
            f"it was made for downgrades to {h.to_release} ({h.to_version}) of databases at or "
            f"below {h.from_release} ({h.from_version})"
        )

    def missing(self, what: str) -> NotInBundle:
        return NotInBundle(f"the bundle {self.bundle.name} does not hold {what}: {self.covers()}")

    def command(self, to_release: str, from_release: str | None, *, prerelease: bool) -> str:
        parts = ["hatchet-schema bundle", f"--to-release {to_release}"]
        if from_release is not None and from_release != self.header.newest_release:
            parts.append(f"--from-release {from_release}")
        if prerelease:
            parts.append("--allow-prerelease")
        parts.append("--output FILE")
        return " ".join(parts)

    def for_release(self, tag: str) -> str:
        """The command whose bundle would also hold release ``tag``."""
        low, high = self.header.to_release, self.header.from_release
        parsed, low_p, high_p = parse_tag(tag), parse_tag(low), parse_tag(high)
        if parsed is not None and low_p is not None and parsed.version < low_p.version:
            low = tag
        elif parsed is not None and high_p is not None and parsed.version > high_p.version:
            high = tag
        else:
            low = tag
        prerelease = parsed is not None and parsed.prerelease
        return self.command(low, high, prerelease=prerelease)


class _BundleTags:
    def __init__(self, bundle: Bundle, coverage: _Coverage) -> None:
        self._rec = bundle.recording
        self._coverage = coverage
        self._seen: set[str] = set()
        self._commits = set(self._rec.listings)

    def tags(self) -> list[TagRef]:
        return self._rec.tags

    def peel(self, tag: TagRef) -> str:
        if tag.type == "commit":
            return tag.sha
        commit = self._rec.peeled.get(tag.sha)
        if commit is None:
            raise self._coverage.missing(f"the commit of tag {tag.name}")
        self._seen.add(tag.sha)
        return commit

    def cached_peel(self, tag: TagRef) -> str | None:
        if tag.type == "commit":
            return tag.sha
        return self._rec.peeled.get(tag.sha) if tag.sha in self._seen else None

    def commit_of(self, ref: str) -> str:
        text = ref.strip().lower()
        if re.fullmatch(r"[0-9a-f]{7,40}", text):
            hits = [c for c in self._commits if c.startswith(text)]
            if len(hits) == 1:
                return hits[0]
        raise NotInBundle(
            f"the bundle {self._coverage.bundle.name} holds release tags and their commits only, "
            f"not {ref}: --from-ref takes one of its releases"
        )


class _BundleTrees:
    def __init__(self, bundle: Bundle, coverage: _Coverage) -> None:
        self._listings = bundle.recording.listings
        self._coverage = coverage
        self._seen: set[str] = set()

    def listing_at(self, commit: str, *, commit_known: bool) -> TreeListing:
        if commit not in self._listings:
            raise self._coverage.missing(f"the listing at commit {commit}")
        self._seen.add(commit)
        listing = self._listings[commit]
        if listing is None:
            raise DirectoryMissing(commit)
        return listing

    def cached_listing_at(self, commit: str) -> TreeListing | None:
        if commit not in self._seen:
            return None
        return self.listing_at(commit, commit_known=True)


class _BundleBlobs:
    def __init__(self, bundle: Bundle, coverage: _Coverage) -> None:
        self._blobs = bundle.recording.blobs
        self._coverage = coverage

    def fetch(self, commit: str, files: Sequence[RemoteFile]) -> dict[str, bytes]:
        absent = [f for f in files if f.sha not in self._blobs]
        if absent:
            raise _AbsentFiles(absent)
        return {f.name: self._blobs[f.sha] for f in files}


class _AbsentFiles(NotInBundle):
    def __init__(self, files: Sequence[RemoteFile]) -> None:
        super().__init__("files absent from the bundle")
        self.files = tuple(files)


class BundleResolver(ReleaseResolver):
    """The release logic over a bundle (``--bundle FILE``): no network, ever."""

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self._coverage = _Coverage(bundle)
        super().__init__(
            repo=bundle.header.repository,
            migrations_path=bundle.header.migrations_path,
            refs=_BundleTags(bundle, self._coverage),
            lister=_BundleTrees(bundle, self._coverage),
            contents=_BundleBlobs(bundle, self._coverage),
            origin=f"bundle {bundle.name}",
        )

    @classmethod
    def open(cls, path: Path, settings: GitHubSettings) -> BundleResolver:
        """Load and verify ``path``; its repository and path must be the ones asked for."""
        bundle = load_bundle(path)
        header = bundle.header
        if settings.repo not in (DEFAULT_REPO, header.repository):
            raise BadInputError(
                f"the bundle {bundle.name} holds {header.repository}, not {settings.repo}"
            )
        wanted = settings.migrations_path.strip("/")
        if wanted not in (DEFAULT_MIGRATIONS_PATH, header.migrations_path):
            raise BadInputError(
                f"the bundle {bundle.name} holds {header.migrations_path}, not {wanted}"
            )
        return cls(bundle)

    # -- what the bundle lacks: errors that say which bundle would hold it ---------------------

    def _uncovered_release(self, tag: str, exc: NotInBundle) -> NotInBundle:
        name = tag.strip()
        parsed, floor = parse_tag(name), parse_tag(FIRST_GOOSE_RELEASE)
        if parsed is not None and floor is not None and parsed.version < floor.version:
            hint = (
                f"releases before {FIRST_GOOSE_RELEASE} have no goose migrations, so no bundle "
                "can cover a downgrade to them"
            )
        else:
            hint = (
                f"to cover {name}, run on a connected machine: {self._coverage.for_release(name)}"
            )
        return NotInBundle(
            f"the bundle {self.bundle.name} does not hold release {name}: "
            f"{self._coverage.covers()}; {hint}"
        )

    def release(self, tag: str, *, allow_prerelease: bool = False) -> Release:
        try:
            return super().release(tag, allow_prerelease=allow_prerelease)
        except _AbsentFiles:
            raise
        except NotInBundle as exc:
            raise self._uncovered_release(tag, exc) from None

    def resolve(self, tag: str, *, allow_prerelease: bool = False) -> Resolution:
        try:
            return super().resolve(tag, allow_prerelease=allow_prerelease)
        except _AbsentFiles:
            raise
        except NotInBundle as exc:
            raise self._uncovered_release(tag, exc) from None

    def listing(self, ref: str) -> Listing:
        try:
            return super().listing(ref)
        except _AbsentFiles:
            raise
        except NotInBundle as exc:
            if parse_tag(ref.strip()) is not None:
                raise self._uncovered_release(ref, exc) from None
            raise

    def fetch_files(self, listing: Listing, names: Iterable[str]) -> dict[str, bytes]:
        try:
            return super().fetch_files(listing, names)
        except _AbsentFiles as exc:
            raise self._uncovered_files(listing, exc.files) from None

    def _uncovered_files(self, listing: Listing, files: Sequence[RemoteFile]) -> NotInBundle:
        header = self.bundle.header
        versions = sorted({f.version for f in files})
        named = ", ".join(f.name for f in files[:3]) + (", ..." if len(files) > 3 else "")
        if versions[-1] > header.from_version:
            command = self._coverage.command(header.to_release, None, prerelease=False)
            hint = (
                f"a database at version {versions[-1]} is newer than {header.from_release}; run "
                f"on a connected machine: {command}"
            )
        elif versions[0] <= header.to_version:
            hint = (
                f"version {versions[0]} is at or below {header.to_release}'s; run on a connected "
                "machine: "
                + self._coverage.command("RELEASE", header.from_release, prerelease=False)
                + f", RELEASE being a release older than version {versions[0]}"
            )
        else:
            hint = (
                "a bundle holds the files of its source release only; plan without --from-ref, "
                "or run on a connected machine: "
                + self._coverage.command(header.to_release, header.from_release, prerelease=False)
            )
        return NotInBundle(
            f"the bundle {self.bundle.name} does not hold {named} of {listing.ref}: "
            f"{self._coverage.covers()}; {hint}"
        )

    def find_file(
        self, version: int, hint_tags: Sequence[str] = (), *, budget: int | None = None
    ) -> tuple[Listing, RemoteFile] | None:
        try:
            return super().find_file(version, hint_tags, budget=budget)
        except NotInBundle:
            header = self.bundle.header
            hints = [t for t in hint_tags if parse_tag(t) is not None]
            shipped = f" (shipped in {', '.join(hints)})" if hints else ""
            raise NotInBundle(
                f"the bundle {self.bundle.name} does not hold the file of orphan version "
                f"{version}{shipped}: {self._coverage.covers()}; run on a connected machine: "
                + self._coverage.command(
                    header.to_release, hints[0] if hints else None, prerelease=False
                )
            ) from None

    def _budgeted_listing(self, release: Release, budget: _Budget) -> Known:
        # To a budgeted search a listing the bundle lacks is one it may not read.
        try:
            return super()._budgeted_listing(release, budget)
        except NotInBundle:
            return UNKNOWN


def stable_between(releases: Collection[Release], low: Release, high: Release) -> list[Release]:
    """Stable releases from ``low`` to ``high`` (semver order, both included), newest first."""
    return sorted(
        (r for r in releases if not r.prerelease and low.version <= r.version <= high.version),
        key=lambda r: r.version,
        reverse=True,
    )


def summary_json(written: WrittenBundle, header: BundleHeader) -> Mapping[str, Any]:
    return {
        "output": str(written.path),
        "size": written.size,
        "sha256": written.sha256,
        "repository": header.repository,
        "to_release": header.to_release,
        "to_version": header.to_version,
        "from_release": header.from_release,
        "from_version": header.from_version,
        "releases": len(written.releases),
        "listings": written.listings,
        "trees": written.trees,
        "blobs": written.blobs,
        "blob_bytes": written.blob_bytes,
        "created": header.created,
        "tool_version": header.tool_version,
    }


__all__ = [
    "Bundle",
    "BundleHeader",
    "BundleResolver",
    "NotInBundle",
    "Recording",
    "WrittenBundle",
    "load_bundle",
    "record",
    "stable_between",
    "summary_json",
    "write_bundle",
]

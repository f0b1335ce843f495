"""A local clone of the repository as the source: tags, listings and blobs read with ``git``.

``--git-dir DIR`` (a bare repository, or a work tree with its ``.git``) replaces the GitHub API;
the release logic is :class:`resolver.service.ReleaseResolver`'s, so the answers are the online
resolver's: the same stable-release rules, pre-releases, source release and SHAs.

Why the ``git`` command rather than dulwich: git is on every machine that holds a clone, reads
every layout the clone's own git wrote (loose objects, packs, packed refs, alternates, worktree
``.git`` files, partial clones) and adds no dependency to the tool. Two git processes serve a
whole run: ``git for-each-ref`` once for the tags, and one long-lived ``git cat-file --batch``
for every object.

Nothing is taken on git's word: every object read is hashed again (``sha1("<type> <size>\\0" +
body)``) and refused if it does not match its id, and the migrations directory is reached by
walking from the commit (commit -> root tree -> ... -> directory tree), so a listing is tied to
its commit by ids and every blob to the listing by its SHA. git runs with
``protocol.allow=never`` and ``GIT_NO_LAZY_FETCH=1``: a partial clone lacking an object fails
with a message naming it instead of fetching it, and no ``GIT_*`` variable of the caller's
environment (``GIT_DIR``, ``GIT_OBJECT_DIRECTORY``, ``GIT_NAMESPACE``...) redirects the reads.

What was read in this process is "cached" (free) and nothing else, as in an online run with a
cold cache, so the request budgets of ``find_source`` and ``place_version`` give the same
answers as online.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from resolver.errors import BadInputError, ResolverError
from resolver.gitblob import DIR_MODE, is_sha, tree_mode
from resolver.listing import DirectoryMissing, DirEntry, TreeListing
from resolver.models import RemoteFile, utc_timestamp
from resolver.refs import MAX_PEEL, TagRef
from resolver.service import ReleaseResolver
from resolver.settings import GitHubSettings

_REF = re.compile(r"[^\s~^:?*\[\\]+")
_KEEP_ENV = {"GIT_EXEC_PATH"}


@dataclass(frozen=True)
class GitObject:
    """One object as stored, its id checked against its content."""

    sha: str
    type: str
    body: bytes


class GitError(ResolverError):
    """git failed or the repository lacks or garbles an object (exit 1)."""


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") or k in _KEEP_ENV}
    env.update(GIT_NO_LAZY_FETCH="1", GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    return env


class GitRepository:
    """Reads objects and tags of one local repository through the ``git`` command."""

    def __init__(self, path: Path) -> None:
        git = shutil.which("git")
        if git is None:
            raise BadInputError("--git-dir needs the git command, which is not on PATH")
        self.path = path
        if not path.is_dir():
            raise BadInputError(f"--git-dir {path}: no such directory")
        dotgit = path / ".git"
        candidate = dotgit if dotgit.exists() else path
        self._base = [git, f"--git-dir={candidate}", "-c", "protocol.allow=never"]
        try:
            out = self._run(["rev-parse", "--absolute-git-dir"])
        except GitError:
            raise BadInputError(
                f"--git-dir {path} is not a git repository (give a clone of the repository, "
                "bare or not)"
            ) from None
        self.git_dir = Path(out.decode("utf-8", "surrogateescape").strip())
        self._base[1] = f"--git-dir={self.git_dir}"
        self._batch: subprocess.Popen[bytes] | None = None
        self._check: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def _run(self, args: Sequence[str]) -> bytes:
        try:
            done = subprocess.run(
                [*self._base, *args], capture_output=True, env=_environment(), check=False
            )
        except OSError as exc:
            raise GitError(f"could not run git: {exc}") from None
        if done.returncode != 0:
            message = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise GitError(f"git {args[0]} failed in {self.path}: {message[-1] if message else ''}")
        return done.stdout

    def tags(self) -> list[TagRef]:
        """Every ``refs/tags/v*`` ref in name order, as ``matching-refs/tags/v`` gives them."""
        out = self._run(
            ["for-each-ref", "--format=%(objectname) %(objecttype) %(refname)", "refs/tags/"]
        )
        refs: list[TagRef] = []
        for line in out.decode("utf-8", "surrogateescape").splitlines():
            sha, kind, name = line.split(" ", 2)
            name = name.removeprefix("refs/tags/")
            if not name.startswith("v"):
                continue
            if not is_sha(sha):
                raise BadInputError(
                    f"--git-dir {self.path}: tag {name} has the id {sha}, not a SHA-1 object id "
                    "(SHA-256 repositories are not supported)"
                )
            refs.append(TagRef(name, sha, kind))
        return refs

    def rev_parse(self, ref: str) -> str | None:
        """The commit ``ref`` names (a branch, tag, remote branch or abbreviated id), or None."""
        if not ref or ref.startswith("-") or _REF.fullmatch(ref) is None:
            return None
        try:
            out = self._run(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"])
        except GitError:
            return None
        sha = out.decode().strip()
        return sha if is_sha(sha) else None

    def read(self, sha: str) -> GitObject | None:
        """The object ``sha`` (``None`` if the repository does not have it), its id verified."""
        if not is_sha(sha):
            return None
        with self._lock:
            batch = self._process()
            stdin, stdout = _pipes(batch)
            try:
                stdin.write(sha.encode() + b"\n")
                stdin.flush()
                header = stdout.readline().decode("utf-8", "replace").split()
                if len(header) != 3:
                    if header[-1:] == ["missing"]:
                        return None
                    raise GitError(f"git cat-file gave no answer for {sha} in {self.path}")
                got, kind, size = header[0], header[1], int(header[2])
                body = _read_exact(stdout, size)
                _read_exact(stdout, 1)
            except (OSError, ValueError):
                self._stop()
                raise GitError(f"git cat-file stopped while reading {sha} in {self.path}") from None
        actual = hashlib.sha1(f"{kind} {len(body)}\0".encode() + body, usedforsecurity=False)
        if got != sha or actual.hexdigest() != sha:
            raise GitError(
                f"object {sha} in {self.path} does not match its id (it hashes to "
                f"{actual.hexdigest()}): the repository is damaged; run git fsck"
            )
        return GitObject(sha, kind, body)

    def sizes(self, shas: Sequence[str]) -> dict[str, int]:
        """The sizes of objects by id (``git cat-file --batch-check``: the objects are not read);
        objects the repository lacks are left out."""
        wanted = [s for s in dict.fromkeys(shas) if is_sha(s)]
        if not wanted:
            return {}
        with self._lock:
            self._check = self._start(self._check, "--batch-check")
            stdin, stdout = _pipes(self._check)
            try:
                stdin.write("".join(f"{sha}\n" for sha in wanted).encode())
                stdin.flush()
                answers = [stdout.readline().decode("utf-8", "replace").split() for _ in wanted]
            except OSError:
                _stop(self._check)
                self._check = None
                raise GitError(
                    f"git cat-file stopped while sizing objects in {self.path}"
                ) from None
        found: dict[str, int] = {}
        for sha, answer in zip(wanted, answers, strict=True):
            if len(answer) == 3 and answer[0] == sha and answer[2].isdigit():
                found[sha] = int(answer[2])
        return found

    def _process(self) -> subprocess.Popen[bytes]:
        self._batch = self._start(self._batch, "--batch")
        return self._batch

    def _start(self, process: subprocess.Popen[bytes] | None, mode: str) -> subprocess.Popen[bytes]:
        if process is not None and process.poll() is None:
            return process
        try:
            return subprocess.Popen(
                [*self._base, "cat-file", mode],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=_environment(),
            )
        except OSError as exc:
            raise GitError(f"could not run git: {exc}") from None

    def _stop(self) -> None:
        _stop(self._batch)
        self._batch = None

    def close(self) -> None:
        with self._lock:
            _stop(self._batch)
            _stop(self._check)
            self._batch = self._check = None


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    """End a ``cat-file`` process (closing its input ends it)."""
    if process is None:
        return
    for pipe in (process.stdin, process.stdout):
        if pipe is not None:
            pipe.close()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _pipes(batch: subprocess.Popen[bytes]) -> tuple[IO[bytes], IO[bytes]]:
    assert batch.stdin is not None and batch.stdout is not None
    return batch.stdin, batch.stdout


def _read_exact(stream: IO[bytes], size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise OSError("short read")
    return data


def parse_tree(body: bytes) -> list[DirEntry]:
    """The entries of a tree object: ``<mode> <name>\\0<20-byte id>`` each."""
    entries: list[DirEntry] = []
    at = 0
    while at < len(body):
        space = body.index(b" ", at)
        nul = body.index(b"\0", space)
        mode = tree_mode(body[at:space].decode("ascii"))
        if mode is None or nul + 21 > len(body):
            raise ValueError("not a tree object")
        name = body[space + 1 : nul].decode("utf-8", "surrogateescape")
        entries.append(DirEntry(mode, name, body[nul + 1 : nul + 21].hex()))
        at = nul + 21
    return entries


def _header(body: bytes, field: str) -> str | None:
    """The value of header ``field`` of a commit or tag object (the headers end at a blank line)."""
    for line in body.split(b"\n\n", 1)[0].split(b"\n"):
        key, _, value = line.partition(b" ")
        if key == field.encode():
            return value.decode("utf-8", "replace")
    return None


class GitTags:
    """:class:`resolver.source.TagStore` over a local repository."""

    def __init__(self, repo: GitRepository, name: str) -> None:
        self._repo = repo
        self._name = name
        self._tags: list[TagRef] | None = None
        self._peeled: dict[str, str] = {}

    def tags(self) -> list[TagRef]:
        if self._tags is None:
            self._tags = self._repo.tags()
        return self._tags

    def peel(self, tag: TagRef) -> str:
        known = self.cached_peel(tag)
        if known is not None:
            return known
        sha, kind = tag.sha, tag.type
        for _ in range(MAX_PEEL):
            if kind != "tag":
                break
            obj = self._repo.read(sha)
            if obj is None or obj.type != "tag":
                raise GitError(f"{self._repo.path} lacks tag object {sha} of tag {tag.name}")
            target, target_kind = _header(obj.body, "object"), _header(obj.body, "type")
            if target is None or target_kind is None or not is_sha(target):
                raise GitError(f"tag object {sha} of tag {tag.name} is malformed")
            sha, kind = target, target_kind
        if kind != "commit":
            raise BadInputError(f"tag {tag.name} does not point at a commit")
        self._peeled[tag.sha] = sha
        return sha

    def cached_peel(self, tag: TagRef) -> str | None:
        if tag.type == "commit":
            return tag.sha
        return self._peeled.get(tag.sha)

    def commit_of(self, ref: str) -> str:
        sha = self._repo.rev_parse(ref)
        if sha is None:
            raise BadInputError(f"no ref {ref} in {self._name} (git-dir {self._repo.path})")
        return sha


class GitTrees:
    """:class:`resolver.source.TreeStore` over a local repository: the directory is found by
    walking the trees from the commit, every object verified by its id."""

    def __init__(self, repo: GitRepository, name: str, path: str) -> None:
        self._repo = repo
        self._name = name
        self._path = path.strip("/")
        self._seen: dict[str, TreeListing | None] = {}
        self._trees: dict[str, list[DirEntry]] = {}
        self._listings: dict[str, TreeListing] = {}

    def listing_at(self, commit: str, *, commit_known: bool) -> TreeListing:
        if commit not in self._seen:
            self._seen[commit] = self._walk(commit)
        listing = self._seen[commit]
        if listing is None:
            raise DirectoryMissing(commit)
        return listing

    def cached_listing_at(self, commit: str) -> TreeListing | None:
        if commit not in self._seen:
            return None
        return self.listing_at(commit, commit_known=True)

    def _walk(self, commit: str) -> TreeListing | None:
        obj = self._repo.read(commit)
        if obj is None or obj.type != "commit":
            raise BadInputError(f"no commit {commit} in {self._name} (git-dir {self._repo.path})")
        tree = _header(obj.body, "tree")
        if tree is None or not is_sha(tree):
            raise GitError(f"commit {commit} in {self._repo.path} is malformed")
        for part in (p for p in self._path.split("/") if p):
            entries = self._tree(tree, commit)
            found = next((e for e in entries if e.name == part), None)
            if found is None or found.mode != DIR_MODE:
                return None
            tree = found.sha
        if tree in self._listings:
            return self._listings[tree]
        entries = self._tree(tree, commit)
        sizes = self._repo.sizes([e.sha for e in entries if e.type == "blob"])
        listing = TreeListing(
            tree,
            tuple(replace(e, size=sizes.get(e.sha, 0)) if e.type == "blob" else e for e in entries),
        )
        problem = listing.problem()
        if problem is not None:  # a parse that lost something: the object itself was verified
            raise GitError(f"the listing of {self._path} at {commit} is inconsistent: {problem}")
        self._listings[tree] = listing
        return listing

    def _tree(self, sha: str, commit: str) -> list[DirEntry]:
        if sha not in self._trees:
            self._trees[sha] = self._read_tree(sha, commit)
        return self._trees[sha]

    def _read_tree(self, sha: str, commit: str) -> list[DirEntry]:
        obj = self._repo.read(sha)
        if obj is None:
            raise GitError(
                f"{self._repo.path} lacks tree {sha} (of commit {commit[:12]}): a partial or "
                "shallow clone? Fetch the missing objects or use a full clone"
            )
        if obj.type != "tree":
            raise GitError(f"object {sha} in {self._repo.path} is a {obj.type}, not a tree")
        try:
            return parse_tree(obj.body)
        except (ValueError, UnicodeDecodeError):
            raise GitError(f"tree {sha} in {self._repo.path} is malformed") from None


class GitBlobs:
    """:class:`resolver.source.BlobStore` over a local repository."""

    def __init__(self, repo: GitRepository) -> None:
        self._repo = repo

    def fetch(self, commit: str, files: Sequence[RemoteFile]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        for item in files:
            obj = self._repo.read(item.sha)
            if obj is None:
                raise GitError(
                    f"{self._repo.path} lacks blob {item.sha} ({item.name} at {commit[:12]}): a "
                    "partial clone? Fetch the missing objects or use a full clone"
                )
            if obj.type != "blob":
                raise GitError(f"object {item.sha} ({item.name}) is a {obj.type}, not a blob")
            found[item.name] = obj.body
        return found


class GitDirResolver(ReleaseResolver):
    """The release logic over a local clone (``--git-dir DIR``); a context manager."""

    def __init__(self, path: Path, settings: GitHubSettings) -> None:
        repo = GitRepository(path)
        self._git = repo
        super().__init__(
            repo=settings.repo,
            migrations_path=settings.migrations_path,
            refs=GitTags(repo, settings.repo),
            lister=GitTrees(repo, settings.repo, settings.migrations_path),
            contents=GitBlobs(repo),
            origin=f"git-dir {path}",
        )

    def _commit_date(self, commit: str) -> str | None:
        """The committer date of ``commit`` as git recorded it, in UTC."""
        obj = self._git.read(commit)
        if obj is None or obj.type != "commit":
            raise BadInputError(f"no commit {commit} in {self.repo} (git-dir {self._git.path})")
        committer = _header(obj.body, "committer")
        stamp = committer.rsplit(" ", 2)[-2] if committer and committer.count(" ") >= 2 else ""
        if not stamp.lstrip("-").isdigit():
            raise GitError(f"commit {commit} in {self._git.path} has no committer date")
        return utc_timestamp(datetime.fromtimestamp(int(stamp), UTC))

    def close(self) -> None:
        self._git.close()

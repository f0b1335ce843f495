"""Serve a real Hatchet git repository's migration history through the local GitHub emulator.

``GitSnapshot(repo_path)`` reads a (bare, possibly partial) clone of hatchet-dev/hatchet with a
handful of batched git commands (``for-each-ref``, ``cat-file --batch-check``, ``cat-file
--batch``): every tag (stable and pre-release; annotated tags keep their real tag-object id and
are peeled to the real commit), each tag commit's migrations directory (real tree id, real blob
ids and bytes) and the real commit and tagger dates. ``build_repository`` turns that into the
emulator's :class:`fixtures.github_emulator.Repository`: commits keep their real ids; their root
trees hold just ``cmd/hatchet-migrate/migrate/migrations`` (so only the directory's tree id is the
real one); tags whose commit lacks the directory point at a commit whose tree lacks it too, so
``resolve`` can say "before the directory existed". Commits with the same migrations tree share
every tree object.

``serve(repo_path)`` is a context manager yielding the emulator's API base URL (pass it as
``GITHUB_API_URL``); ``core_requests(url)``, ``counts(url)`` and ``reset_counts(url)`` read and
reset the running emulator's request log (``reset_counts`` also refills the rate-limit buckets,
so each measured run starts with a full anonymous quota). ``serving(repo_path)`` yields the
:class:`Emulator` itself.

Run by hand: ``python scripts/hatchet_git_emulator.py REPO_PATH [--port 8787]`` serves until ^C.
Nothing fetched from git is written anywhere.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from fixtures.github_emulator import Counts, Emulator, Repository  # noqa: E402
from fixtures.github_emulator.gitobjects import (  # noqa: E402
    AnnotatedTag,
    Commit,
    Tree,
    TreeEntry,
    git_object_sha,
)

MIGRATIONS_PATH = "cmd/hatchet-migrate/migrate/migrations"
OWNER, NAME = "hatchet-dev", "hatchet"
_README = b"# hatchet (migrations-only view of the real repository, for hatchet-schema checks)\n"
_SEP = "\x00"


class GitError(RuntimeError):
    """A git command failed or the repository does not look like the one expected."""


@dataclass(frozen=True)
class TagInfo:
    """One tag of the real repository."""

    name: str
    object_sha: str
    """What the ref points at: the commit, or the annotated tag object."""
    annotated: bool
    commit: str
    commit_date: datetime
    commit_subject: str
    tag_date: datetime | None
    tag_subject: str
    migrations_tree: str | None
    """The real tree id of the migrations directory at this commit; None: no directory."""


def _git(repo: Path, *args: str, stdin: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), *args], input=stdin, capture_output=True, check=False
        )
    except OSError as exc:
        raise GitError(f"cannot run git: {exc}") from None
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip()
        raise GitError(f"git {' '.join(args)} failed in {repo}: {message}")
    return done.stdout


def _date(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def cat_file_batch(repo: Path, shas: list[str]) -> dict[str, tuple[str, bytes]]:
    """``{sha: (type, body)}`` for every id in ``shas``, in one ``git cat-file --batch``."""
    unique = sorted(set(shas))
    if not unique:
        return {}
    raw = _git(repo, "cat-file", "--batch", stdin=("\n".join(unique) + "\n").encode())
    out: dict[str, tuple[str, bytes]] = {}
    pos = 0
    for wanted in unique:
        end = raw.index(b"\n", pos)
        header = raw[pos:end].decode().split()
        pos = end + 1
        if len(header) != 3:
            raise GitError(f"object {wanted} is missing from the repository ({' '.join(header)})")
        sha, kind, size = header[0], header[1], int(header[2])
        out[sha] = (kind, raw[pos : pos + size])
        pos += size + 1  # the body is followed by a newline
    return out


def parse_tree(body: bytes) -> list[tuple[str, str, str]]:
    """A raw git tree object as ``[(mode, name, sha)]``."""
    entries: list[tuple[str, str, str]] = []
    pos = 0
    while pos < len(body):
        space = body.index(b" ", pos)
        nul = body.index(b"\0", space)
        mode = body[pos:space].decode()
        name = body[space + 1 : nul].decode()
        entries.append((mode, name, body[nul + 1 : nul + 21].hex()))
        pos = nul + 21
    return entries


class GitSnapshot:
    """Tags, migrations trees and blobs of a local Hatchet clone, read in a few git calls."""

    def __init__(self, repo_path: str | Path, migrations_path: str = MIGRATIONS_PATH) -> None:
        self.path = Path(repo_path)
        self.migrations_path = migrations_path.strip("/")
        if not self.path.exists():
            raise GitError(f"no git repository at {self.path}")
        self.tags: dict[str, TagInfo] = {}
        self.trees: dict[str, list[tuple[str, str, str]]] = {}
        """Every tree below the migrations directories: ``{sha: [(mode, name, sha)]}``."""
        self.blobs: dict[str, bytes] = {}
        self.main_commit: str | None = None
        self.main_tree: str | None = None
        self._load()

    # -- loading ------------------------------------------------------------------------------

    def _load(self) -> None:
        fields = [
            "%(refname)",
            "%(objectname)",
            "%(objecttype)",
            "%(*objectname)",
            "%(*objecttype)",
            "%(committerdate:iso-strict)",
            "%(*committerdate:iso-strict)",
            "%(taggerdate:iso-strict)",
            "%(contents:subject)",
            "%(*contents:subject)",
        ]
        listing = _git(self.path, "for-each-ref", f"--format={'%00'.join(fields)}", "refs/tags")
        rows: list[list[str]] = []
        for line in listing.decode(errors="replace").splitlines():
            parts = line.split(_SEP)
            if len(parts) != len(fields):
                raise GitError(f"unexpected for-each-ref line: {line!r}")
            rows.append(parts)
        main = _git(self.path, "for-each-ref", "--format=%(objectname)", "refs/heads/main")
        self.main_commit = main.decode().strip() or None

        commits = [p[3] if p[2] == "tag" else p[1] for p in rows]
        trees = self._directory_trees([*commits, *([self.main_commit] if self.main_commit else [])])
        for parts, commit in zip(rows, commits, strict=True):
            ref, obj, kind, _peeled, peeled_kind = parts[:5]
            name = ref.removeprefix("refs/tags/")
            if kind not in ("commit", "tag") or (kind == "tag" and peeled_kind != "commit"):
                continue  # a tag of a tree or blob, or a tag of a tag: no Hatchet release
            annotated = kind == "tag"
            self.tags[name] = TagInfo(
                name=name,
                object_sha=obj,
                annotated=annotated,
                commit=commit,
                commit_date=_date(parts[6] if annotated else parts[5]),
                commit_subject=(parts[9] if annotated else parts[8]) or f"release {name}",
                tag_date=_date(parts[7]) if annotated and parts[7] else None,
                tag_subject=parts[8] if annotated else "",
                migrations_tree=trees.get(commit),
            )
        if self.main_commit:
            self.main_tree = trees.get(self.main_commit)
        self._load_trees({t for t in trees.values()})

    def _directory_trees(self, commits: list[str]) -> dict[str, str]:
        """``{commit: tree id of the migrations directory}`` for commits that have it."""
        unique = sorted(set(commits))
        query = "".join(f"{c}:{self.migrations_path}\n" for c in unique)
        answer = _git(self.path, "cat-file", "--batch-check", stdin=query.encode()).decode()
        found: dict[str, str] = {}
        for commit, line in zip(unique, answer.splitlines(), strict=True):
            parts = line.split()
            if len(parts) == 3 and parts[1] == "tree":
                found[commit] = parts[0]
        return found

    def _load_trees(self, roots: set[str]) -> None:
        pending = sorted(roots)
        while pending:
            objects = cat_file_batch(self.path, pending)
            pending = []
            blobs: list[str] = []
            for sha, (kind, body) in objects.items():
                if kind != "tree":
                    raise GitError(f"{sha} is a {kind}, not a tree")
                entries = parse_tree(body)
                self.trees[sha] = entries
                for mode, _name, child in entries:
                    if mode == "40000":
                        if child not in self.trees:
                            pending.append(child)
                    elif mode.startswith("100") and child not in self.blobs:
                        blobs.append(child)
            for sha, (kind, body) in cat_file_batch(self.path, blobs).items():
                if kind != "blob":
                    raise GitError(f"{sha} is a {kind}, not a blob")
                self.blobs[sha] = body

    # -- reading ------------------------------------------------------------------------------

    def tag(self, name: str) -> TagInfo:
        info = self.tags.get(name)
        if info is None:
            raise GitError(f"no tag {name} in {self.path}")
        return info

    def files_at(self, tag: str) -> dict[str, bytes]:
        """``{file name: bytes}`` of the top level of the migrations directory at ``tag``."""
        tree = self.tag(tag).migrations_tree
        if tree is None:
            raise GitError(f"{tag} has no {self.migrations_path}")
        return {
            name: self.blobs[sha]
            for mode, name, sha in self.trees[tree]
            if mode.startswith("100") and sha in self.blobs
        }


@cache
def snapshot(repo_path: str) -> GitSnapshot:
    """The :class:`GitSnapshot` of ``repo_path``, read once per process."""
    return GitSnapshot(repo_path)


# -- the emulator's repository ----------------------------------------------------------------


def _tree_body(entries: list[TreeEntry]) -> bytes:
    ordered = sorted(entries, key=TreeEntry.sort_key)
    return b"".join(
        f"{e.mode.lstrip('0')} {e.name}".encode() + b"\0" + bytes.fromhex(e.sha) for e in ordered
    )


def _store_tree(repo: Repository, entries: list[TreeEntry], sha: str | None = None) -> str:
    ordered = tuple(sorted(entries, key=TreeEntry.sort_key))
    tree_sha = sha or git_object_sha("tree", _tree_body(list(ordered)))
    repo.trees[tree_sha] = Tree(tree_sha, ordered)
    return tree_sha


def build_repository(snap: GitSnapshot) -> Repository:
    """The emulator's ``hatchet-dev/hatchet``: every tag of ``snap``, migrations only."""
    repo = Repository(OWNER, NAME, default_branch="main")
    readme = repo.add_blob(_README)

    # real migrations trees (ids as git has them), then one wrapper chain per distinct tree
    for sha, raw_entries in snap.trees.items():
        entries: list[TreeEntry] = []
        for mode, name, child in raw_entries:
            if mode == "40000":
                entries.append(TreeEntry(name, "tree", child))
            elif mode.startswith("100") and child in snap.blobs:
                entries.append(TreeEntry(name, "blob", child))
        _store_tree(repo, entries, sha)
    repo.blobs.update(snap.blobs)

    parts = snap.migrations_path.split("/")
    roots: dict[str | None, str] = {}

    def root_for(directory: str | None) -> str:
        if directory in roots:
            return roots[directory]
        top: list[TreeEntry] = [TreeEntry("README.md", "blob", readme)]
        if directory is not None:
            child = directory
            for name in reversed(parts[1:]):
                child = _store_tree(repo, [TreeEntry(name, "tree", child)])
            top.append(TreeEntry(parts[0], "tree", child))
        roots[directory] = _store_tree(repo, top)
        return roots[directory]

    for info in sorted(snap.tags.values(), key=lambda t: t.commit_date):
        if info.commit not in repo.commits:
            repo.commits[info.commit] = Commit(
                info.commit, root_for(info.migrations_tree), (), info.commit_subject,
                info.commit_date,
            )  # fmt: skip
        if info.annotated:
            repo.tag_objects[info.object_sha] = AnnotatedTag(
                info.object_sha,
                info.name,
                info.commit,
                info.tag_subject or f"Release {info.name}",
                info.tag_date or info.commit_date,
            )
        repo.tags[info.name] = info.object_sha

    main = snap.main_commit
    if main and main not in repo.commits:
        newest = max(snap.tags.values(), key=lambda t: t.commit_date, default=None)
        date = newest.commit_date if newest else datetime.now(UTC)
        repo.commits[main] = Commit(main, root_for(snap.main_tree), (), "main", date)
    if main:
        repo.branches["main"] = main
    elif snap.tags:
        repo.branches["main"] = max(snap.tags.values(), key=lambda t: t.commit_date).commit
    return repo


# -- serving ----------------------------------------------------------------------------------

_RUNNING: dict[str, Emulator] = {}


@contextmanager
def serving(
    repo_path: str | Path,
    *,
    latency: float = 0.0,
    token: str | None = None,
    anonymous_limit: int = 60,
    port: int = 0,
) -> Iterator[Emulator]:
    """A running emulator serving ``repo_path``'s history as ``hatchet-dev/hatchet``."""
    repository = build_repository(snapshot(str(Path(repo_path).resolve())))
    emulator = Emulator(
        [repository], token=token, latency=latency, anonymous_limit=anonymous_limit, port=port
    )
    with emulator:
        _RUNNING[emulator.api_url] = emulator
        try:
            yield emulator
        finally:
            _RUNNING.pop(emulator.api_url, None)


@contextmanager
def serve(
    repo_path: str | Path,
    *,
    latency: float = 0.0,
    token: str | None = None,
    anonymous_limit: int = 60,
) -> Iterator[str]:
    """A running emulator serving ``repo_path``; yields its API base URL (``GITHUB_API_URL``)."""
    with serving(
        repo_path, latency=latency, token=token, anonymous_limit=anonymous_limit
    ) as emulator:
        yield emulator.api_url


def emulator_at(url: str) -> Emulator:
    """The emulator started by :func:`serve` / :func:`serving` whose API URL is ``url``."""
    emulator = _RUNNING.get(url.rstrip("/"))
    if emulator is None:
        raise KeyError(f"no emulator started here serves {url}")
    return emulator


def reset_counts(url: str) -> None:
    """Forget the request log and refill the core quotas (a fresh hour for the next run)."""
    emulator = emulator_at(url)
    emulator.reset_counts()
    for authenticated in (False, True):
        bucket = emulator.rate_limit(authenticated=authenticated)
        emulator.set_rate_limit(
            authenticated=authenticated, remaining=bucket.limit, reset_in=bucket.reset_in
        )


def counts(url: str) -> Counts:
    """Requests answered since the last :func:`reset_counts`, by kind."""
    return emulator_at(url).counts


def core_requests(url: str) -> int:
    """REST core-quota requests answered since the last :func:`reset_counts`."""
    return counts(url).core


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a real Hatchet clone's migration history.")
    parser.add_argument("repo_path")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--anonymous-limit", type=int, default=60)
    args = parser.parse_args(argv)
    started = time.monotonic()
    snap = snapshot(str(Path(args.repo_path).resolve()))
    with serving(
        args.repo_path,
        latency=args.latency_ms / 1000,
        anonymous_limit=args.anonymous_limit,
        port=args.port,
    ) as emulator:
        with_dir = sum(1 for t in snap.tags.values() if t.migrations_tree)
        print(
            f"{len(snap.tags)} tags ({with_dir} with {snap.migrations_path}), "
            f"{len(snap.trees)} trees, {len(snap.blobs)} blobs, "
            f"read in {time.monotonic() - started:.2f}s",
            file=sys.stderr,
        )
        print(emulator.api_url, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()

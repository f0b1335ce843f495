"""Write Hatchet's release index (``resolver/data/hatchet_releases.json``) from a local clone.

    python scripts/hatchet_release_index.py CLONE [--output FILE] [--check]

CLONE is a clone of hatchet-dev/hatchet, bare or not (``git clone --mirror`` works). For every
stable ``vX.Y.Z`` tag the index records the tag, its commit (and the annotated tag object, if it
is one), the migrations directory's tree id at that commit, the directory's target version (the
largest version over ALL migration files, ``.sql`` and ``.go``), the number of migration files
and the commit's committer date in UTC. Only git metadata: no file of Hatchet's is copied.

Read with plain git (``cat-file --batch-check``, ``ls-tree``, ``log --no-walk``), independently
of the tool's own ``--git-dir`` reader, so that comparing the two checks both. ``--check``
writes nothing and exits 1 when the file on disk differs from what the clone gives.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from resolver.gitblob import tree_mode  # noqa: E402
from resolver.listing import DirEntry, to_files  # noqa: E402
from resolver.models import utc_timestamp  # noqa: E402
from resolver.release_index import RESOURCE, IndexEntry, ReleaseIndex  # noqa: E402
from resolver.settings import DEFAULT_MIGRATIONS_PATH, DEFAULT_REPO  # noqa: E402
from resolver.tags import parse_tag  # noqa: E402

DEFAULT_OUTPUT = _ROOT / "resolver" / RESOURCE


def git(clone: Path, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        ["git", f"--git-dir={git_dir(clone)}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"git {args[0]} failed: {done.stderr.strip()}")
    return done.stdout


def git_dir(clone: Path) -> Path:
    return clone / ".git" if (clone / ".git").exists() else clone


def batch_check(clone: Path, names: list[str]) -> list[str | None]:
    """The object id each of ``names`` (``REV``, ``REV:PATH``, ``REV^{commit}``) resolves to."""
    out = git(
        clone,
        "cat-file",
        "--batch-check=%(objectname) %(objecttype)",
        stdin="\n".join(names) + "\n",
    )
    ids: list[str | None] = []
    for line in out.splitlines():
        parts = line.split()
        ids.append(parts[0] if len(parts) == 2 and parts[1] != "missing" else None)
    if len(ids) != len(names):
        raise SystemExit("git cat-file --batch-check gave a short answer")
    return ids


def directory_summary(clone: Path, tree: str) -> tuple[int | None, int]:
    """(target version, migration files) of the migrations directory tree ``tree``."""
    entries: list[DirEntry] = []
    for record in git(clone, "ls-tree", "-z", tree).split("\0"):
        if not record:
            continue
        meta, name = record.split("\t", 1)
        mode, _kind, sha = meta.split()
        canonical = tree_mode(mode)
        if canonical is None:
            raise SystemExit(f"tree {tree}: bad mode {mode!r}")
        entries.append(DirEntry(canonical, name, sha))
    files = to_files(entries)
    newest = max(files, key=lambda f: (f.version, f.name), default=None)
    return (newest.version if newest else None), len(files)


def build_index(clone: Path, repo: str, path: str) -> ReleaseIndex:
    refs = git(
        clone,
        "for-each-ref",
        "--format=%(refname:strip=2) %(objectname) %(objecttype)",
        "refs/tags/",
    )
    tags: list[tuple[str, str, str]] = []
    for line in refs.splitlines():
        name, sha, kind = line.split(" ")
        parsed = parse_tag(name)
        if parsed is not None and not parsed.prerelease:
            tags.append((name, sha, kind))
    commits = batch_check(clone, [f"refs/tags/{name}^{{commit}}" for name, _, _ in tags])
    trees = batch_check(clone, [f"{c}:{path}" for c in commits])
    unique = sorted({c for c in commits if c is not None})
    dates: dict[str, str] = {}
    for line in git(
        clone,
        "log",
        "--no-walk=unsorted",
        "--stdin",
        "--format=%H %cI",
        stdin="\n".join(unique) + "\n",
    ).splitlines():
        sha, stamp = line.split(" ", 1)
        dates[sha] = utc_timestamp(stamp)
    summaries = {t: directory_summary(clone, t) for t in sorted({t for t in trees if t})}
    entries: list[IndexEntry] = []
    for (name, sha, kind), commit, tree in zip(tags, commits, trees, strict=True):
        if commit is None:
            raise SystemExit(f"tag {name} does not point at a commit")
        version, count = summaries[tree] if tree else (None, 0)
        entries.append(
            IndexEntry(
                release=name,
                commit=commit,
                tree=tree,
                version=version,
                files=count,
                date=dates[commit],
                tag_object=sha if kind == "tag" else None,
            )
        )
    return ReleaseIndex.of(repo, path, entries)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("clone", type=Path, help="a clone of hatchet-dev/hatchet (bare or not)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--repo", default=DEFAULT_REPO)
    parser.add_argument("--migrations-path", default=DEFAULT_MIGRATIONS_PATH)
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    args = parser.parse_args(argv)
    index = build_index(args.clone, args.repo, args.migrations_path.strip("/"))
    text = index.dumps()
    ReleaseIndex.loads(text)  # what the tool will read back
    with_dir = sum(1 for e in index.entries.values() if e.tree)
    summary = f"{len(index.entries)} stable releases, {with_dir} with the migrations directory"
    if args.check:
        same = args.output.exists() and args.output.read_text(encoding="utf-8") == text
        print(f"{args.output}: {'up to date' if same else 'DIFFERS'} ({summary})")
        return 0 if same else 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}: {summary}, {len(text.encode()):,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())

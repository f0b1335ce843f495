"""What ``releases --versions`` and ``status`` cost in GitHub requests, against the local emulator.

Two histories:

* ``--git-dir CLONE``: Hatchet's real one, served from a clone of hatchet-dev/hatchet by
  ``scripts/hatchet_git_emulator.py`` (real tag, commit and tree ids, real dates), with the
  release index the tool ships (``resolver/data/hatchet_releases.json``);
* otherwise the generated Hatchet-shaped history of ``bench/planning_cost.py`` (about 935
  stable tags), with an index made from it here.

Each is measured cold (an empty cache), warm (a second process on the same cache), anonymous and
with a token; then with a stale index (the newest releases left out, one tag moved, one tag that
no longer exists) and without any index (what any other repository or path gets).
The flows are what the CLI asks of the resolver::

    releases --versions:  release_history(index)
    status:               newest_listing() + release_history(index, dates=False)
                          + place_in_history(current)   (place_version(current) without index)

Printed figures, not a test. Run from the repository root::

    python -m bench.releases_cost [--git-dir CLONE] [--stale 5]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.planning_cost import hatchet_shaped_history
from fixtures.github_emulator import Counts, Emulator, Repository
from fixtures.github_emulator.history import DEFAULT_MIGRATIONS_PATH
from resolver.gitblob import tree_mode
from resolver.listing import DirEntry, to_files
from resolver.models import utc_timestamp
from resolver.release_index import IndexEntry, ReleaseIndex, packaged_index
from resolver.service import Resolver
from resolver.settings import GitHubSettings
from resolver.tags import parse_tag

TOKEN = "ghp_releasesCostToken00000000000000000000"
REPO = "hatchet-dev/hatchet"
CORE_BUDGET = 3
ROOT = Path(__file__).resolve().parent.parent


def index_of(repo: Repository, path: str = DEFAULT_MIGRATIONS_PATH) -> ReleaseIndex:
    """The release index of an emulator repository, as the generator script would write it."""
    entries: list[IndexEntry] = []
    for name, ref in repo.tags.items():
        parsed = parse_tag(name)
        if parsed is None or parsed.prerelease:
            continue
        commit = repo.peel(ref)
        found = repo.lookup(repo.commits[commit].tree, path)
        tree = found.sha if found is not None and found.type == "tree" else None
        raw = repo.trees[tree].entries if tree else ()
        files = to_files([DirEntry(tree_mode(e.mode) or e.mode, e.name, e.sha) for e in raw])
        newest = max(files, key=lambda f: (f.version, f.name), default=None)
        entries.append(
            IndexEntry(
                release=name,
                commit=commit,
                tree=tree,
                version=newest.version if newest else None,
                files=len(files),
                date=utc_timestamp(repo.commits[commit].date),
                tag_object=ref if ref != commit else None,
            )
        )
    return ReleaseIndex.of(REPO, path, entries)


def stale(index: ReleaseIndex, newest: int) -> ReleaseIndex:
    """``index`` without its ``newest`` releases (by date), one tag moved and one that is gone."""
    by_date = sorted(index.entries.values(), key=lambda e: e.date, reverse=True)
    kept = by_date[newest:]
    moved = dataclasses.replace(kept[0], commit="0" * 40, tag_object=None)
    gone = dataclasses.replace(kept[1], release="v9.9.9")
    return ReleaseIndex.of(index.repo, index.path, [moved, gone, *kept[1:]])


@dataclass(frozen=True)
class Row:
    scenario: str
    counts: Counts
    listed: int
    unlisted: int
    seconds: float


def releases_flow(resolver: Resolver, index: ReleaseIndex | None) -> tuple[int, int]:
    history = resolver.release_history(index)
    return len(history.records) - len(history.unlisted), len(history.unlisted)


def status_flow(resolver: Resolver, index: ReleaseIndex | None, current: int) -> tuple[int, int]:
    resolver.newest_listing()
    if index is not None and resolver.check_index(index).confirmed:
        history = resolver.release_history(index, dates=False)
        place = resolver.place_in_history(current, history)
        return len(place.releases), len(place.unchecked)
    return len(resolver.place_version(current).releases), 0


@contextmanager
def _history(git_dir: Path | None) -> Iterator[tuple[Emulator, ReleaseIndex, int, str]]:
    """The emulator, the index, a current version (v0.71.0's) and a label."""
    if git_dir is not None:
        sys.path.insert(0, str(ROOT / "scripts"))
        from hatchet_git_emulator import serving

        index = packaged_index(REPO, DEFAULT_MIGRATIONS_PATH)
        if index is None:
            raise SystemExit("the packaged release index is missing or damaged")
        with serving(git_dir, token=TOKEN, anonymous_limit=10_000) as gh:
            yield gh, index, 20250813183355, f"real history from {git_dir}"
        return
    repo = hatchet_shaped_history(REPO).build()
    index = index_of(repo)
    current = next(e.version for e in index.entries.values() if e.release == "v0.71.0")
    assert current is not None
    with Emulator([repo], token=TOKEN, anonymous_limit=10_000) as gh:
        yield gh, index, current, "generated Hatchet-shaped history"


def run(git_dir: Path | None, newest: int) -> list[Row]:
    rows: list[Row] = []
    with _history(git_dir) as (gh, index, current, label):
        print(f"{label}: {len(index.entries)} stable releases in the index\n")
        flows: dict[str, Callable[[Resolver, ReleaseIndex | None], tuple[int, int]]] = {
            "releases --versions": releases_flow,
            "status": lambda r, i: status_flow(r, i, current),
        }
        old_index = stale(index, newest)
        cases: list[tuple[str, ReleaseIndex | None, str | None]] = [
            ("anonymous", index, None),
            ("token", index, TOKEN),
            (f"stale index (-{newest}, 1 moved, 1 gone), anonymous", old_index, None),
            (f"stale index (-{newest}, 1 moved, 1 gone), token", old_index, TOKEN),
            ("no index, token", None, TOKEN),
            ("no index, anonymous", None, None),
        ]
        for flow_name, flow in flows.items():
            for case, case_index, token in cases:
                with tempfile.TemporaryDirectory() as tmp:
                    settings = GitHubSettings(
                        api_url=gh.api_url, token=token, repo=REPO, cache_dir=Path(tmp)
                    )
                    for when in ("cold", "warm"):
                        with Resolver(settings) as resolver:
                            gh.reset_counts()
                            start = time.perf_counter()
                            listed, unlisted = flow(resolver, case_index)
                            seconds = time.perf_counter() - start
                        name = f"{flow_name}: {when} {case}"
                        rows.append(Row(name, gh.counts, listed, unlisted, seconds))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--git-dir", type=Path, help="a clone of hatchet-dev/hatchet")
    parser.add_argument("--stale", type=int, default=5, help="releases left out of the index")
    args = parser.parse_args(argv)
    rows = run(args.git_dir, args.stale)
    header = f"{'flow':<68}{'core':>6}{'304':>6}{'gql':>6}{'found':>7}{'unlisted':>10}{'wall s':>8}"
    print(header)
    print("-" * len(header))
    for r in rows:
        c = r.counts
        print(
            f"{r.scenario:<68}{c.core:>6}{c.not_modified:>6}{c.graphql:>6}{r.listed:>7}"
            f"{r.unlisted:>10}{r.seconds:>8.3f}"
        )
    print("\nfound: releases listed (releases --versions) or named at the version (status)")
    verdicts = []
    for flow in ("releases --versions", "status"):
        cold = next(r for r in rows if r.scenario == f"{flow}: cold anonymous").counts.core
        verdict = "ok" if cold <= CORE_BUDGET else "MISSED"
        verdicts.append(verdict)
        print(f"[{verdict}] cold anonymous {flow} <= {CORE_BUDGET} core requests: {cold}")
    return 0 if all(v == "ok" for v in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())

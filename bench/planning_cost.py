"""What planning a downgrade costs in GitHub core-API requests, against the local emulator.

The emulator serves a generated history shaped like Hatchet's (``hatchet_shaped_history``): about
935 stable tags, the pre-goose ones without a migrations directory, pre-releases, the odd
``v0.0.x`` tags with modern content, and releases whose migration count grows from 3 files
(v0.55.0) through 121 (v0.71.0) to 233 (v0.104.7, the newest). The planning flow is what
``hatchet-schema downgrade --dry-run --to-release v0.71.0`` asks of the resolver for a database
at v0.104.7 (112 steps)::

    resolve(target) + find_source(versions) + place_version(current, budget=0) + fetch_files

It is measured cold and anonymous, warm (a second process on the same cache) and with a token.
Printed figures, not a test (tests/test_resolver_cost.py holds the assertions). Run from the
repository root::

    python -m bench.planning_cost [--latency-ms 0]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fixtures.github_emulator import Counts, Emulator, History
from fixtures.github_emulator.history import DEFAULT_MIGRATIONS_PATH, TagSpec
from resolver.service import Resolver
from resolver.settings import DEFAULT_REPO as REPO
from resolver.settings import GitHubSettings

TOKEN = "ghp_planningCostToken0000000000000000000"
SOURCE = "v0.104.7"
TARGET = "v0.71.0"
GO_EVERY = 25  # every 25th migration is a .go file (Hatchet: 9 of 233)
CORE_BUDGET = 3


def _migrations(count: int) -> dict[str, bytes]:
    start = datetime(2025, 3, 11, tzinfo=UTC)
    files: dict[str, bytes] = {}
    for i in range(count):
        stamp = (start + timedelta(days=2 * i, hours=i % 24)).strftime("%Y%m%d%H%M%S")
        ext = "go" if i % GO_EVERY == GO_EVERY - 1 else "sql"
        body = (
            f"-- +goose Up\nCREATE TABLE planning_{i} (id BIGINT PRIMARY KEY);\n"
            f"-- +goose Down\nDROP TABLE planning_{i};\n"
        )
        files[f"{stamp}_v1_0_{i}.{ext}"] = body.encode()
    return files


def _count_at(position: int, anchors: list[tuple[int, int]]) -> int:
    """Files at release ``position``, interpolated linearly between (position, files) anchors."""
    for (p0, f0), (p1, f1) in itertools.pairwise(anchors):
        if p0 <= position <= p1:
            return f0 + round((f1 - f0) * (position - p0) / max(1, p1 - p0))
    return anchors[-1][1]


def hatchet_shaped_history(repo: str = REPO) -> History:
    """About 935 stable tags (v0.1.0 .. v0.104.7) plus pre-releases, shaped like Hatchet's."""
    all_files = _migrations(233)
    names = list(all_files)
    stable: list[str] = [f"v0.{minor}.{patch}" for minor in range(1, 55) for patch in range(6)]
    goose: list[str] = [
        f"v0.{minor}.{patch}"
        for minor in range(55, 104)
        for patch in range(13 if minor < 68 else 12)  # 935 stable tags in all
    ]
    goose += [f"v0.104.{patch}" for patch in range(8)]
    anchors = [(0, 3), (goose.index(TARGET), 121), (len(goose) - 1, 233)]
    date = datetime(2023, 1, 2, tzinfo=UTC)
    tags: list[TagSpec] = []
    for name in stable:
        tags.append(TagSpec(name, date, None))
        date += timedelta(hours=20)
    for position, name in enumerate(goose):
        count = _count_at(position, anchors)
        migrations = {n: all_files[n] for n in names[:count]}
        if position % 10 == 0 and position + 1 < len(goose):
            # a pre-release ahead of it, holding the next release's first new file
            ahead = {n: all_files[n] for n in names[: _count_at(position + 1, anchors)]}
            tags.append(TagSpec(f"{name}-alpha.1", date, ahead))
            date += timedelta(hours=2)
        tags.append(TagSpec(name, date, migrations))
        date += timedelta(hours=20)
    # 2025 tags with modern content that sort oldest in semver order
    for name in ("v0.0.0", "v0.0.1"):
        tags.append(TagSpec(name, date, {n: all_files[n] for n in names[:150]}))
        date += timedelta(hours=1)
    return History(
        repo=repo,
        migrations_path=DEFAULT_MIGRATIONS_PATH,
        default_branch="main",
        main_tag=SOURCE,
        tags=tuple(tags),
    )


def planning_flow(
    resolver: Resolver, target: str, current: int, versions: list[int], *, budget: int | None = 0
) -> int:
    """What the CLI's downgrade planning asks of the resolver; returns the files fetched.

    ``budget=None`` is the flow as it was before ``place_version`` took a budget.
    """
    resolver.resolve(target)
    listing = resolver.find_source(versions)
    wanted = [f.name for f in listing.files if f.version in set(versions)]
    resolver.place_version(current, budget=budget).describe()
    return len(resolver.fetch_files(listing, wanted))


@dataclass(frozen=True)
class Row:
    scenario: str
    counts: Counts
    seconds: float


def run(latency: float) -> tuple[list[Row], int]:
    history = hatchet_shaped_history()
    by_name = {t.name: t for t in history.tags}
    source = sorted(by_name[SOURCE].migrations or {})
    target_files = sorted(by_name[TARGET].migrations or {})
    target_version = int(target_files[-1].split("_", 1)[0])
    versions = [int(n.split("_", 1)[0]) for n in source]
    versions = [v for v in versions if v > target_version]
    current = versions[-1]
    rows: list[Row] = []
    repo = history.build()
    stable = sum(1 for t in history.tags if "-" not in t.name)
    with Emulator([repo], token=TOKEN, latency=latency, anonymous_limit=10_000) as gh:
        scenarios: list[tuple[str, str | None, int | None]] = [
            ("anonymous", None, 0),
            ("token", TOKEN, 0),
            ("anonymous, unbudgeted place_version (before)", None, None),
        ]
        for label, token, budget in scenarios:
            with tempfile.TemporaryDirectory() as tmp:
                settings = GitHubSettings(
                    api_url=gh.api_url, token=token, repo=REPO, cache_dir=Path(tmp) / "cache"
                )
                for when in ("cold", "warm"):
                    with Resolver(settings) as resolver:
                        gh.reset_counts()
                        start = time.perf_counter()
                        fetched = planning_flow(resolver, TARGET, current, versions, budget=budget)
                        seconds = time.perf_counter() - start
                        assert fetched == len(versions), "not every file was fetched"
                        rows.append(Row(f"{when} {label}", gh.counts, seconds))
    print(
        f"history: {stable} stable tags, {len(history.tags)} in all; {SOURCE} -> {TARGET}: "
        f"{len(versions)} steps, latency {latency * 1000:.0f} ms\n"
    )
    return rows, len(versions)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    rows, _steps = run(args.latency_ms / 1000)
    header = f"{'planning flow':<52}{'core':>6}{'304':>6}{'raw':>6}{'gql':>6}{'wall s':>9}"
    print(header)
    print("-" * len(header))
    for r in rows:
        c = r.counts
        print(
            f"{r.scenario:<52}{c.core:>6}{c.not_modified:>6}{c.raw:>6}{c.graphql:>6}"
            f"{r.seconds:>9.3f}"
        )
    cold = next(r for r in rows if r.scenario == "cold anonymous").counts.core
    verdict = "ok" if cold <= CORE_BUDGET else "MISSED"
    print(f"\n[{verdict}] cold anonymous planning <= {CORE_BUDGET} core requests: {cold}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

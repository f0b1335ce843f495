"""Benchmark the resolver against the local GitHub emulator at injected latency.

Measures request counts and wall time for a cold and a warm ``resolve`` and for fetching the
contents of a 112-file release, anonymous and with a token, and checks them against the targets
of issue 3. Run from the repository root::

    python -m bench.resolver_bench [--latency-ms 50] [--files 112]

Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from fixtures.github_emulator import Counts, Emulator, generated_history
from resolver.service import Resolver
from resolver.settings import GitHubSettings

TOKEN = "ghp_benchToken000000000000000000000000000"
REPO = "bench-org/hatchet"
TAG = "v1.0.0"
T = TypeVar("T")


@dataclass(frozen=True)
class Row:
    scenario: str
    identity: str
    counts: Counts
    seconds: float


def _measure(emulator: Emulator, action: Callable[[], T]) -> tuple[T, Counts, float]:
    emulator.reset_counts()
    start = time.perf_counter()
    result = action()
    elapsed = time.perf_counter() - start
    return result, emulator.counts, elapsed


def run(latency: float, files: int) -> list[Row]:
    rows: list[Row] = []
    repo = generated_history(REPO, TAG, files=files).build()
    for identity, token in (("anonymous", None), ("token", TOKEN)):
        with (
            Emulator([repo], token=TOKEN, latency=latency) as gh,
            tempfile.TemporaryDirectory() as tmp,
        ):
            settings = GitHubSettings(
                api_url=gh.api_url, token=token, repo=REPO, cache_dir=Path(tmp) / "cache"
            )
            with Resolver(settings) as cold:
                resolution, counts, seconds = _measure(gh, lambda: cold.resolve(TAG))
                rows.append(Row("resolve cold", identity, counts, seconds))
            with Resolver(settings) as resolver:
                _, counts, seconds = _measure(gh, lambda: resolver.resolve(TAG))
                rows.append(Row("resolve warm", identity, counts, seconds))
                listing = resolution.listing
                names = [f.name for f in listing.files]

                def fetch(r: Resolver = resolver) -> dict[str, bytes]:
                    return r.fetch_files(listing, names)  # noqa: B023 (called right here)

                fetched, counts, seconds = _measure(gh, fetch)
                assert len(fetched) == files, "not every file was fetched"
                rows.append(Row(f"fetch {files} files cold", identity, counts, seconds))
                _, counts, seconds = _measure(gh, fetch)
                rows.append(Row(f"fetch {files} files warm", identity, counts, seconds))
    return rows


def targets(rows: list[Row], latency: float, files: int) -> list[tuple[str, bool]]:
    def row(scenario: str, identity: str) -> Row:
        return next(r for r in rows if r.scenario == scenario and r.identity == identity)

    out: list[tuple[str, bool]] = []
    for identity in ("anonymous", "token"):
        cold = row("resolve cold", identity)
        api = cold.counts.core + cold.counts.not_modified + cold.counts.graphql
        out.append((f"resolve cold <= 2 API requests ({identity}): {api}", api <= 2))
        warm = row("resolve warm", identity).counts.core
        out.append((f"resolve warm 0 core requests ({identity}): {warm}", warm == 0))
    fetch = row(f"fetch {files} files cold", "anonymous")
    budget = 5 * latency + 0.5
    out.append(
        (f"{files} files anonymous <= 3 core requests: {fetch.counts.core}", fetch.counts.core <= 3)
    )
    out.append(
        (
            f"{files} files anonymous wall <= 5 round trips + 0.5 s = {budget:.2f} s: "
            f"{fetch.seconds:.2f} s",
            fetch.seconds <= budget,
        )
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--files", type=int, default=112)
    args = parser.parse_args(argv)
    latency = args.latency_ms / 1000
    rows = run(latency, args.files)
    print(f"latency {args.latency_ms:.0f} ms per request, repository {REPO} {TAG}\n")
    header = (
        f"{'scenario':<24}{'identity':<11}{'core':>5}{'304':>5}{'raw':>5}{'gql':>5}{'wall s':>9}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        c = r.counts
        print(
            f"{r.scenario:<24}{r.identity:<11}{c.core:>5}{c.not_modified:>5}{c.raw:>5}"
            f"{c.graphql:>5}{r.seconds:>9.3f}"
        )
    print("\ntargets:")
    checks = targets(rows, latency, args.files)
    for text, passed in checks:
        print(f"  [{'ok' if passed else 'MISSED'}] {text}")
    return 0 if all(passed for _, passed in checks) else 1


if __name__ == "__main__":
    sys.exit(main())

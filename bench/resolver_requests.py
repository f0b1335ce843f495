"""Benchmark: request counts and wall time of ``resolve`` and of fetching 112 files.

Runs the local GitHub emulator with injected latency (default 50 ms per request) and prints, for
anonymous and token runs: a cold ``resolve`` (empty cache), a warm one (same cache, new process
state), and fetching the contents of 112 migration files (listing already cached). Targets from
issue 3: cold resolve <= 2 requests, warm 0 core requests, 112 files anonymous <= 3 core requests
and wall time <= 5 round trips + 0.5 s.

    PYTHONPATH=. python bench/resolver_requests.py [--latency-ms 50]   # from the repo root
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from fixtures.github_emulator import Emulator, generated_history, load_history
from resolver.service import Resolver
from resolver.settings import GitHubSettings

TOKEN = "bench-token"
BENCH_REPO = "bench-org/hatchet"


def measure(gh: Emulator, label: str, work: Callable[[], object]) -> None:
    gh.reset_counts()
    started = time.perf_counter()
    work()
    wall = time.perf_counter() - started
    c = gh.counts
    print(
        f"{label:<34} core={c.core:<3} 304={c.not_modified:<3} raw={c.raw:<4} "
        f"graphql={c.graphql:<2} wall={wall * 1000:7.1f} ms"
    )


def run(gh: Emulator, token: str | None, latency: float) -> None:
    who = "token" if token else "anonymous"
    main_tag = load_history().main_tag
    cache = Path(tempfile.mkdtemp(prefix="hs-bench-"))
    settings = GitHubSettings(api_url=gh.api_url, token=token, cache_dir=cache)

    def resolve() -> None:
        with Resolver(settings) as resolver:
            resolver.resolve(main_tag)

    measure(gh, f"{who}: resolve {main_tag} cold", resolve)
    measure(gh, f"{who}: resolve {main_tag} warm", resolve)

    bench = GitHubSettings(
        api_url=gh.api_url, token=token, repo=BENCH_REPO, cache_dir=cache / "files"
    )
    with Resolver(bench) as resolver:
        listing = resolver.listing("v1.0.0")
        names = [f.name for f in listing.files]
        measure(
            gh,
            f"{who}: fetch {len(names)} files cold",
            lambda: resolver.fetch_files(listing, names),
        )
        measure(
            gh,
            f"{who}: fetch {len(names)} files warm",
            lambda: resolver.fetch_files(listing, names),
        )
    print(f"{'':<34} budget for the cold fetch: {5 * latency + 0.5:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args()
    latency = args.latency_ms / 1000
    repos = [load_history().build(), generated_history(files=112).build()]
    with Emulator(repos, token=TOKEN, latency=latency) as gh:
        print(f"latency {args.latency_ms:.0f} ms per request")
        run(gh, None, latency)
        run(gh, TOKEN, latency)


if __name__ == "__main__":
    main()

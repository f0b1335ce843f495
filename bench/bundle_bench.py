"""Benchmark ``hatchet-schema bundle``: GitHub requests spent, wall time and bundle size.

Runs ``bundle`` in-process from a cold cache against the local GitHub emulator, anonymous
(``--listings auto``, i.e. ``plan``; and ``--listings all``) and with a token (``auto``, i.e.
``all``), then checks the bundle by replaying ``resolve`` from it with nothing listening at the API
URL. Without arguments the emulator serves the fixture history; ``--real REPO_PATH`` serves a
clone of hatchet-dev/hatchet through ``scripts/hatchet_git_emulator.py`` instead and also makes
the bundle from the clone itself (``--git-dir``, no request at all). Run from the repository
root::

    python -m bench.bundle_bench [--latency-ms 50] [--real /path/to/hatchet.git]

Exit status 1 when a target is missed. Measured on the snapshot of hatchet-dev/hatchet in this
workspace (935 stable releases, 711 of them with the migrations directory, 139 distinct directory
trees; v0.104.7 the newest), bundle for ``--to-release v0.55.0`` (from v0.104.7), latency 0::

    source / identity   listings  core  raw  graphql  wall s    bytes  releases held
    API, anonymous      plan         9  155        0    2.2  134,330     8
    API, token          all          1    0       15    4.9  182,595   720
    API, anonymous      all        678  155        0   38.0  182,595   720  (11 h of 60/h quota)
    --git-dir (local)   all          0    0        0    3.0  182,574   720

(``plan``: the listings a downgrade reads; ``all``: every release's from --to-release to
--from-release, so that ``status`` names releases as online.) For ``--to-release v0.71.0``: the
token run spends 1 core + 15 GraphQL requests, 159 KB. Files come from the raw host (no core
quota) or GraphQL, 100 per request; listings from GraphQL, 250 tree ids per request then 40
trees per request; annotated tags' commits from GraphQL, 100 per request. The fixture history:
anonymous plan 3 core + 11 raw, token 1 core + 6 GraphQL, about 13 KB.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from cli import app
from fixtures.github_emulator import Counts, Emulator

TOKEN = "ghp_benchToken000000000000000000000000000"
UNREACHABLE = "http://127.0.0.1:9/api/v3"


@dataclass(frozen=True)
class Row:
    scenario: str
    listings: str
    counts: Counts
    seconds: float
    size: int
    releases: int


@contextmanager
def _emulator(latency: float, real: Path | None) -> Iterator[Emulator]:
    if real is None:
        with Emulator(token=TOKEN, latency=latency, anonymous_limit=100_000) as gh:
            yield gh
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
    import hatchet_git_emulator

    with hatchet_git_emulator.serving(
        real, latency=latency, token=TOKEN, anonymous_limit=100_000
    ) as gh:
        yield gh


def _bundle(args: list[str], env: dict[str, str | None], output: Path) -> tuple[float, int, int]:
    started = time.perf_counter()
    result = CliRunner().invoke(app, ["bundle", *args, "--json", "--output", str(output)], env=env)
    seconds = time.perf_counter() - started
    if result.exit_code != 0:
        raise SystemExit(f"bundle {' '.join(args)} failed: {result.stderr or result.stdout}")
    import json

    document = json.loads(result.stdout)
    check = CliRunner().invoke(
        app, ["resolve", "v0.55.0", "--bundle", str(output)], env={"GITHUB_API_URL": UNREACHABLE}
    )
    if check.exit_code != 0:
        raise SystemExit(f"the bundle does not replay: {check.stderr}")
    return seconds, int(document["size"]), int(document["releases"])


def run(latency: float, real: Path | None, to_release: str) -> list[Row]:
    rows: list[Row] = []
    with _emulator(latency, real) as gh:
        for scenario, token, listings in (
            ("API, anonymous", None, "auto"),
            ("API, token", TOKEN, "auto"),
            ("API, anonymous", None, "all"),
        ):
            with tempfile.TemporaryDirectory() as tmp:
                env: dict[str, str | None] = {
                    "GITHUB_API_URL": gh.api_url,
                    "HATCHET_SCHEMA_CACHE_DIR": f"{tmp}/cache",
                    "GH_TOKEN": token,
                    "GITHUB_TOKEN": None,
                }
                gh.reset_counts()
                args = ["--to-release", to_release, "--listings", listings]
                seconds, size, releases = _bundle(args, env, Path(tmp) / "b.bundle")
                shown = listings if listings != "auto" else ("all" if token else "plan")
                rows.append(Row(scenario, shown, gh.counts, seconds, size, releases))
    if real is not None:
        with tempfile.TemporaryDirectory() as tmp:
            args = ["--to-release", to_release, "--git-dir", str(real)]
            seconds, size, releases = _bundle(args, {}, Path(tmp) / "b.bundle")
            rows.append(Row("--git-dir (local)", "all", Counts(), seconds, size, releases))
    return rows


def targets(rows: list[Row], real: bool) -> list[tuple[str, bool]]:
    def row(scenario: str, listings: str) -> Row:
        return next(r for r in rows if r.scenario == scenario and r.listings == listings)

    plan, token = row("API, anonymous", "plan"), row("API, token", "all")
    gql = 20 if real else 7
    graphql = token.counts.graphql
    out = [
        (f"anonymous bundle <= 10 core requests: {plan.counts.core}", plan.counts.core <= 10),
        (f"token bundle 1 core request: {token.counts.core}", token.counts.core == 1),
        (f"token bundle <= {gql} GraphQL requests: {graphql}", graphql <= gql),
    ]
    if real:
        out.append((f"full bundle <= 250 KB: {token.size:,} bytes", token.size <= 250_000))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--real", type=Path, default=None, help="a clone of hatchet-dev/hatchet")
    parser.add_argument("--to-release", default="v0.55.0")
    args = parser.parse_args(argv)
    rows = run(args.latency_ms / 1000, args.real, args.to_release)
    history = f"the clone {args.real}" if args.real else "the fixture history"
    print(
        f"bundle --to-release {args.to_release} from {history}, latency {args.latency_ms:.0f} ms\n"
    )
    header = (
        f"{'source / identity':<20}{'listings':<10}{'core':>6}{'304':>5}{'raw':>6}{'gql':>5}"
        f"{'wall s':>8}{'bytes':>10}{'held':>6}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        c = r.counts
        print(
            f"{r.scenario:<20}{r.listings:<10}{c.core:>6}{c.not_modified:>5}{c.raw:>6}"
            f"{c.graphql:>5}{r.seconds:>8.2f}{r.size:>10,}{r.releases:>6}"
        )
    print("\ntargets:")
    checks = targets(rows, args.real is not None)
    for text, passed in checks:
        print(f"  [{'ok' if passed else 'MISSED'}] {text}")
    return 0 if all(passed for _, passed in checks) else 1


if __name__ == "__main__":
    sys.exit(main())

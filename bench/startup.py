"""Startup cost of the CLI: ``hatchet-schema --help`` wall time and what ``import cli`` loads.

Run from anywhere: ``python bench/startup.py [--runs N]``. It prints the median, minimum and
maximum wall time of ``hatchet-schema --help`` over N subprocess runs, then which heavy modules
(httpx, psycopg, rich, pglast, resolver.*, migrator.*) a bare ``import cli`` pulls in, with their
cumulative import times from ``python -X importtime``. The CLI should import them lazily.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY_PREFIXES = ("httpx", "psycopg", "rich", "pglast", "resolver", "migrator")
_IMPORTTIME = re.compile(r"import time:\s+(?P<self>\d+) \|\s+(?P<cum>\d+) \|(?P<name>.*)$")


def cli_command() -> list[str]:
    """The installed console script next to this interpreter, else on PATH, else ``-m cli``."""
    beside = Path(sys.executable).parent / "hatchet-schema"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("hatchet-schema")
    return [found] if found else [sys.executable, "-m", "cli"]


def time_help(runs: int) -> list[float]:
    """Wall times in seconds of ``hatchet-schema --help``, one per run."""
    argv = [*cli_command(), "--help"]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, cwd=ROOT, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return times


def is_heavy(module: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in HEAVY_PREFIXES)


def import_profile() -> tuple[int, dict[str, int]]:
    """Cumulative import time of ``cli`` and of each heavy module it loads, in microseconds."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import cli"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    total, heavy = 0, {}
    for line in proc.stderr.splitlines():
        m = _IMPORTTIME.match(line)
        if not m:
            continue
        name = m["name"].strip()
        if name == "cli":
            total = int(m["cum"])
        elif is_heavy(name):
            heavy[name] = int(m["cum"])
    return total, heavy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=10, help="runs of --help (default 10)")
    args = parser.parse_args()
    times = time_help(max(1, args.runs))
    print(f"command: {' '.join([*cli_command(), '--help'])}")
    print(
        f"--help wall time over {len(times)} runs: median {statistics.median(times) * 1000:.0f} ms"
        f" (min {min(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms)"
    )
    total, heavy = import_profile()
    print(f"`import cli` cumulative import time: {total / 1000:.1f} ms")
    tops = sorted({name.split(".")[0] for name in heavy})
    print(f"heavy packages imported by `import cli`: {', '.join(tops) if tops else 'none'}")
    for name, cum in sorted(heavy.items(), key=lambda kv: -kv[1]):
        if "." not in name or name.split(".")[0] in ("resolver", "migrator"):
            print(f"  {name:<40} {cum / 1000:8.1f} ms cumulative")


if __name__ == "__main__":
    main()

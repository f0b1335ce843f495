"""Self-check for ``hatchet_seed`` and ``hatchet_catalog`` against a real v0.104.7 database.

Usage: ``python scripts/hatchet_seed_selfcheck.py REPO_PATH [--ref v0.104.7] [--keep]``

REPO_PATH is a (bare) git clone of hatchet-dev/hatchet. The script creates the database
``hatchet_seedcheck`` on 127.0.0.1:5432 (user postgres, trust auth), builds it at the ref with
``hatchet_build.build_at_release`` (pgoutbox's migrations first where the ref's go.mod names
pgoutbox, then goose's Up; Go migrations through ``scripts/hatchet_go_ups.py``), creates engine
partitions, seeds every
table, prints the counts and any table it could not seed, checks that a snapshot diffs empty
against itself and against a second fresh build (``hatchet_seedcheck_fresh``), then drops both
databases. Never run in CI.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import hatchet_build
import hatchet_catalog
import hatchet_seed

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DB_NAME = "hatchet_seedcheck"
FRESH_NAME = "hatchet_seedcheck_fresh"


def _drop(name: str) -> None:
    hatchet_build.drop_db(name, ADMIN_URL)


def _url(name: str) -> str:
    return hatchet_build.db_url(name, ADMIN_URL)


def build(name: str, repo: str, ref: str, outbox_repo: str | None) -> float:
    """Create database ``name`` migrated up to ``ref``; returns seconds taken.

    ``hatchet_build.build_at_release``, as hatchet-migrate does: the pgoutbox migrations first
    when ``ref``'s go.mod requires pgoutbox (from ``outbox_repo``, a clone of
    hatchet-dev/pgoutbox; skipped with a warning when there is none), then goose's Up.
    """
    start = time.monotonic()
    if outbox_repo:
        os.environ["HATCHET_VERIFY_PGOUTBOX_REPO"] = outbox_repo
    url = hatchet_build.create_db(name, ADMIN_URL)
    hop = hatchet_build.build_at_release(url, repo, ref)
    if hop.outbox:
        print(f"  {hop.outbox}")
    return time.monotonic() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo")
    parser.add_argument("--ref", default="v0.104.7")
    parser.add_argument("--keep", action="store_true", help="do not drop the databases")
    parser.add_argument("--rows", type=int, default=3)
    parser.add_argument("--verbose", action="store_true", help="print row counts per table")
    parser.add_argument(
        "--pgoutbox",
        help="clone of hatchet-dev/pgoutbox (default: hatchet-dev+pgoutbox/repo beside REPO_PATH)",
    )
    args = parser.parse_args(argv)
    outbox_repo: str | None = args.pgoutbox
    if outbox_repo is None:
        guess = Path(args.repo).resolve().parents[1] / "hatchet-dev+pgoutbox" / "repo"
        outbox_repo = str(guess) if guess.exists() else None
    ok = True
    try:
        took = build(DB_NAME, args.repo, args.ref, outbox_repo)
        print(f"migrated {DB_NAME} up to {args.ref} in {took:.1f}s")
        with psycopg.connect(_url(DB_NAME), autocommit=True) as conn:
            start = time.monotonic()
            created = hatchet_seed.create_engine_partitions(conn)
            print(f"created {len(created)} partitions in {time.monotonic() - start:.1f}s")
            start = time.monotonic()
            gaps: list[str] = []
            seeded, failed = hatchet_seed.seed_all(conn, rows_per_table=args.rows, report=gaps)
            took_seed = time.monotonic() - start
            total = len(seeded) + len(failed)
            print(f"seeded {len(seeded)}/{total} tables in {took_seed:.1f}s")
            if args.verbose:
                for table, count in sorted(seeded.items()):
                    print(f"  {table}: {count}")
            for line in gaps:
                print(f"  gap: {line}")
            for table, error in sorted(failed.items()):
                print(f"  UNSEEDED {table}: {error}")
                ok = False
            start = time.monotonic()
            snap = hatchet_catalog.snapshot(conn)
            snap_again = hatchet_catalog.snapshot(conn)
            print(f"snapshot in {(time.monotonic() - start) / 2:.2f}s: {snap.summary()}")
            print(f"goose_db_version rows: {len(hatchet_catalog.version_rows(conn))}")
        self_diff = hatchet_catalog.diff(snap, snap_again)
        print(f"self diff: {len(self_diff)} lines")
        for line in self_diff:
            print(f"  {line}")
        ok = ok and not self_diff
        took = build(FRESH_NAME, args.repo, args.ref, outbox_repo)
        print(f"migrated {FRESH_NAME} in {took:.1f}s")
        with psycopg.connect(_url(FRESH_NAME), autocommit=True) as conn:
            fresh = hatchet_catalog.snapshot(conn)
        fresh_diff = hatchet_catalog.diff(fresh, snap)
        print(f"fresh vs seeded diff: {len(fresh_diff)} lines")
        for line in fresh_diff:
            print(f"  {line}")
        ok = ok and not fresh_diff
    finally:
        if not args.keep:
            _drop(DB_NAME)
            _drop(FRESH_NAME)
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Ports, patches, data fixes, enum rebuilds and renamed versions, on real PostgreSQL.

Each case of ``fixtures/cases/`` reproduces one failure mode of Hatchet's real history; a test
profile written here registers the patch or the rename for the fixture's own blob SHAs, the way
``migrator/hatchet/`` does for upstream's. Every case runs the plan with the real runner.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import psycopg
import pytest

from migrator.catalog import ConnectionCatalog
from migrator.database import connect
from migrator.errors import StepFailedError
from migrator.hatchet.go_ports import V1_0_66
from migrator.hatchet.profile import PROFILE as HATCHET
from migrator.plan import Plan
from migrator.planner import PlanOptions, build_plan
from migrator.profile import Catalog, Patch, Profile, Renamed, amend
from migrator.runner import run_plan
from migrator.sources import MigrationFile, load_directory
from migrator.versions import VersionRow, read_version_rows
from tests.goose_up import INSERT_VERSION_SQL, apply_up, ensure_version_table

CASES = Path(__file__).resolve().parents[1] / "fixtures" / "cases"


def plan_and_run(
    url: str,
    migrations: Mapping[int, MigrationFile],
    target: int,
    profile: Profile,
    options: PlanOptions | None = None,
    *,
    run: bool = True,
    target_versions: frozenset[int] | None = None,
) -> Plan:
    def replan(rows: Sequence[VersionRow], catalog: Catalog) -> Plan:
        return build_plan(
            rows,
            migrations,
            target,
            profile=profile,
            catalog=catalog,
            options=options,
            target_versions=target_versions,
        )

    with connect(url, read_only=True) as conn:
        plan = replan(read_version_rows(conn), ConnectionCatalog(conn))
    if run:
        run_plan(url, plan, replan, lock_timeout=2)
    return plan


def scalar(url: str, query: str) -> object:
    with psycopg.connect(url) as conn:
        row = conn.execute(query).fetchone()
    return row[0] if row else None


def versions(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT version_id FROM goose_db_version ORDER BY id").fetchall()
    return [int(v) for (v,) in rows]


def patched_profile(migrations: Mapping[int, MigrationFile], version: int, patch: Patch) -> Profile:
    sha = migrations[version].blob_sha
    assert sha is not None
    keyed = Patch(version, frozenset({sha}), patch.reason, patch.build, patch.transaction)
    return Profile(name="test", patches={version: [keyed]})


# -- patches -----------------------------------------------------------------------------------


def test_type_dropped_before_its_column_fails_upstream_and_succeeds_patched(
    database_url: str,
) -> None:
    directory = CASES / "type_before_column"
    migrations = load_directory(directory)
    apply_up(database_url, directory)
    fix = Patch(
        0,
        frozenset(),
        "drops the column before its type",
        amend(substitute=[("DROP TYPE idempotency_method;\n", "")], after=["DROP TYPE x"]),
    )
    fix = Patch(
        0,
        frozenset(),
        fix.reason,
        amend(
            substitute=[("DROP TYPE idempotency_method;\n", "")],
            after=["DROP TYPE idempotency_method"],
        ),
    )
    profile = patched_profile(migrations, 20250402000000, fix)

    with pytest.raises(StepFailedError, match="other objects depend on it"):
        plan_and_run(
            database_url, migrations, 20250401000000, profile, PlanOptions(no_patches=True)
        )
    assert versions(database_url)[-1] == 20250402000000

    plan = plan_and_run(database_url, migrations, 20250401000000, profile)
    [step] = plan.steps
    assert step.patched and step.patch_reason == "drops the column before its type"
    assert step.warnings[0] == "patched: drops the column before its type"
    assert step.to_json()["patched"] is True
    assert step.statements[-1] == "DROP TYPE idempotency_method"
    assert scalar(database_url, "SELECT to_regtype('idempotency_method')") is None
    assert versions(database_url)[-1] == 20250401000000


def test_a_patch_applies_only_to_the_blob_sha_it_was_written_for(database_url: str) -> None:
    directory = CASES / "type_before_column"
    migrations = load_directory(directory)
    apply_up(database_url, directory)
    stale = Patch(
        20250402000000, frozenset({"0" * 40}), "written for other bytes", amend(after=["SELECT 1"])
    )
    plan = plan_and_run(
        database_url,
        migrations,
        20250401000000,
        Profile(name="test", patches={20250402000000: [stale]}),
        run=False,
    )
    assert not plan.steps[0].patched
    assert plan.steps[0].statements[0].startswith("DROP TYPE idempotency_method;")


def test_table_already_dropped_by_a_later_up(database_url: str) -> None:
    directory = CASES / "table_already_dropped"
    migrations = load_directory(directory)
    apply_up(database_url, directory)
    profile = patched_profile(
        migrations,
        20250401000000,
        Patch(
            0,
            frozenset(),
            "v1_trace_lookup is already dropped by v1_0_1's up",
            amend(
                substitute=[
                    ("DROP TABLE v1_trace_lookup;", "DROP TABLE IF EXISTS v1_trace_lookup;")
                ]
            ),
        ),
    )
    with pytest.raises(StepFailedError, match="does not exist"):
        plan_and_run(database_url, migrations, 0, profile, PlanOptions(no_patches=True))
    # The failed step rolled back; the step before it (v1_0_1) is committed.
    assert versions(database_url) == [0, 20250401000000]
    plan_and_run(database_url, migrations, 0, profile)
    assert versions(database_url) == [0]
    assert scalar(database_url, "SELECT to_regclass('v1_trace')") is None


def test_leftover_function_overload_blocks_drop_type_unless_patched(database_url: str) -> None:
    directory = CASES / "leftover_overload"
    migrations = load_directory(directory)
    apply_up(database_url, directory)
    profile = patched_profile(
        migrations,
        20250403000000,
        Patch(
            0,
            frozenset(),
            "drops the new signature the up created before recreating the old one",
            amend(before=["DROP FUNCTION IF EXISTS list_payloads(v1_payload_kind, integer)"]),
        ),
    )
    with pytest.raises(StepFailedError, match="depend"):
        plan_and_run(database_url, migrations, 0, profile, PlanOptions(no_patches=True))
    assert versions(database_url) == [0, 20250401000000]
    # Upstream's run left the overload behind; start again from a fresh up.
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DROP FUNCTION IF EXISTS list_payloads(v1_payload_kind, integer)")
        conn.execute("DROP FUNCTION IF EXISTS list_payloads(v1_payload_kind)")
        conn.execute("DROP TABLE v1_payload")
        conn.execute("DROP TYPE v1_payload_kind")
        conn.execute("DELETE FROM goose_db_version WHERE version_id > 0")
    apply_up(database_url, directory)
    plan_and_run(database_url, migrations, 0, profile)
    assert versions(database_url) == [0]
    assert scalar(database_url, "SELECT count(*) FROM pg_proc WHERE proname = 'list_payloads'") == 0


# -- data the older schema cannot hold ----------------------------------------------------------


def test_enum_label_in_use_and_nulls_are_announced_then_removed(database_url: str) -> None:
    directory = CASES / "enum_in_use"
    migrations = load_directory(directory)
    apply_up(database_url, directory)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            """INSERT INTO "TenantMember" VALUES
            (1, 'OWNER', 'a'), (2, 'VIEWER', 'b'), (3, 'VIEWER', 'c'), (4, 'MEMBER', NULL)"""
        )
    plan = plan_and_run(database_url, migrations, 20250401000000, Profile(name="test"), run=False)
    not_null, viewer = plan.steps
    assert not_null.data_loss and "1 row(s)" in not_null.data_loss[0]
    assert any(w.startswith("data loss:") for w in not_null.warnings)
    assert viewer.data_loss and "2 row(s)" in viewer.data_loss[0]
    assert "VIEWER" in viewer.data_loss[0]
    assert any(w.startswith("enum: type") for w in viewer.warnings)

    # --no-patches is upstream: NOT NULL fails on the NULL row.
    with pytest.raises(StepFailedError, match="null"):
        plan_and_run(
            database_url,
            migrations,
            20250401000000,
            Profile(name="t"),
            PlanOptions(no_patches=True),
        )
    plan_and_run(database_url, migrations, 20250401000000, Profile(name="test"))
    with psycopg.connect(database_url) as conn:
        ids = [r[0] for r in conn.execute('SELECT id FROM "TenantMember" ORDER BY id').fetchall()]
        labels = conn.execute(
            "SELECT array_agg(enumlabel ORDER BY enumsortorder)::text FROM pg_enum "
            "WHERE enumtypid = '\"TenantMemberRole\"'::regtype"
        ).fetchone()
    # The NULL note had no default: its row goes; the VIEWER rows go with the label.
    assert ids == [1]
    assert labels == ("{OWNER,ADMIN,MEMBER}",)
    # The round trip: the newer ups apply again.
    apply_up(database_url, directory)
    assert versions(database_url)[-1] == 20250403000000


# -- renamed versions and stuck upgrades --------------------------------------------------------

OLD, NEW = 20250405000000, 20250415000000
RENAMED_PROFILE = Profile(
    name="test",
    renamed={OLD: Renamed(OLD, "20250405000000_v1_0_1.sql", ("v0.2.0",), NEW)},
)


def _insert_rows(url: str, *rows: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for version in rows:
            conn.execute(INSERT_VERSION_SQL, (version, True))


def test_stuck_upgrade_reverts_the_orphan_with_its_own_older_file(database_url: str) -> None:
    directory = CASES / "renamed"
    older = load_directory(directory / "older")
    migrations = {**load_directory(directory), **older}
    # The older release ran v1_0_1 as OLD; the upgrade applied v1_0_2 and then failed on NEW
    # (the column exists): stuck, with the orphan row OLD below 20250410000000.
    apply_up(database_url, directory, to_version=20250401000000)
    apply_up(database_url, directory / "older")
    apply_up(database_url, directory, to_version=20250410000000)
    assert versions(database_url) == [0, 20250401000000, OLD, 20250410000000]

    plan = plan_and_run(database_url, migrations, 20250401000000, RENAMED_PROFILE)
    assert [s.version for s in plan.steps] == [20250410000000, OLD]
    assert plan.steps[1].file == "20250405000000_v1_0_1.sql"
    assert plan.steps[1].warnings[0].startswith("orphan:")
    assert versions(database_url) == [0, 20250401000000]
    assert scalar(database_url, "SELECT count(*) FROM information_schema.columns "
                  "WHERE table_name = 'v1_task' AND column_name = 'is_durable'") == 0  # fmt: skip


def test_renamed_pair_is_reverted_once(database_url: str) -> None:
    directory = CASES / "renamed"
    migrations = load_directory(directory)
    apply_up(database_url, directory, to_version=20250401000000)
    # A release ran the file as OLD, a later one as NEW (an idempotent up): both rows, one column.
    apply_up(database_url, directory / "older")
    _insert_rows(database_url, 20250410000000)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE v1_filter (id BIGINT PRIMARY KEY)")
    _insert_rows(database_url, NEW)

    plan = plan_and_run(database_url, migrations, 20250401000000, RENAMED_PROFILE)
    by_version = {s.version: s for s in plan.steps}
    assert [s.version for s in plan.steps] == [NEW, 20250410000000, OLD]
    assert by_version[NEW].action == "upstream"
    assert by_version[OLD].action == "row only" and by_version[OLD].statements == []
    assert versions(database_url) == [0, 20250401000000]


def test_renamed_row_without_its_file_uses_the_twins_down(database_url: str) -> None:
    directory = CASES / "renamed"
    migrations = load_directory(directory)  # no older file: only NEW's
    apply_up(database_url, directory, to_version=20250401000000)
    apply_up(database_url, directory / "older")
    plan = plan_and_run(database_url, migrations, 20250401000000, RENAMED_PROFILE)
    [step] = plan.steps
    assert (step.version, step.file) == (OLD, "20250415000000_v1_0_1.sql")
    assert step.warnings[0].startswith("renamed:")
    assert versions(database_url) == [0, 20250401000000]


def test_renamed_row_below_the_target_is_reverted_when_the_target_lacks_it(
    database_url: str,
) -> None:
    directory = CASES / "renamed"
    older = load_directory(directory / "older")
    migrations = {**load_directory(directory), **older}
    apply_up(database_url, directory, to_version=20250401000000)
    apply_up(database_url, directory / "older")
    apply_up(database_url, directory, to_version=20250410000000)
    # Target 20250410000000 (a release with v1_0_2 but without OLD): goose stops at once, yet
    # OLD's column is not part of that release's schema.
    plan = plan_and_run(
        database_url,
        migrations,
        20250410000000,
        RENAMED_PROFILE,
        target_versions=frozenset({20250401000000, 20250410000000}),
    )
    [step] = plan.steps
    assert step.version == OLD and step.below_target
    assert versions(database_url) == [0, 20250401000000, 20250410000000]


def test_unknown_orphan_blocks_until_skipped(database_url: str) -> None:
    directory = CASES / "renamed"
    migrations = load_directory(directory)
    apply_up(database_url, directory, to_version=20250401000000)
    _insert_rows(database_url, 20250407000000)
    plan = plan_and_run(database_url, migrations, 20250401000000, RENAMED_PROFILE, run=False)
    [step] = plan.blocked_steps
    assert step.reason is not None and "--skip-orphan 20250407000000" in step.reason
    plan = plan_and_run(
        database_url,
        migrations,
        20250401000000,
        RENAMED_PROFILE,
        PlanOptions(skip_orphans=frozenset({20250407000000})),
    )
    assert plan.steps[0].action == "row only"
    assert versions(database_url) == [0, 20250401000000]


# -- Go migrations ------------------------------------------------------------------------------


def test_go_file_with_another_sha_blocks_naming_both_shas(partitioned: str) -> None:
    migrations = load_directory(CASES / "go_partitioned")
    plan = plan_and_run(partitioned, migrations, 20250401000000, HATCHET, run=False)
    [step] = plan.blocked_steps
    ours = migrations[V1_0_66].blob_sha
    assert step.reason is not None and ours is not None
    assert ours in step.reason and "f39ddf4f83e38412e03297c28a4073d03c67973d" in step.reason
    assert "--trust-go-ports" in step.reason


def test_trusted_port_runs_patched_on_a_partitioned_table(partitioned: str) -> None:
    migrations = load_directory(CASES / "go_partitioned")
    trust = PlanOptions(trust_go_ports=True)
    with pytest.raises(StepFailedError, match=r"requires it|depend"):
        plan_and_run(
            partitioned,
            migrations,
            20250401000000,
            HATCHET,
            PlanOptions(trust_go_ports=True, no_patches=True),
        )
    plan = plan_and_run(partitioned, migrations, 20250401000000, HATCHET, trust)
    [step] = plan.steps
    assert step.kind == "go" and step.patched and step.transaction is False
    assert any(w.startswith("trusted port:") for w in step.warnings)
    assert scalar(partitioned, "SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'ix_%'") == 0
    assert versions(partitioned) == [0, 20250401000000]


def test_go_file_without_a_port_blocks(database_url: str, tmp_path: Path) -> None:
    (tmp_path / "20250401000000_v1_0_0.sql").write_text("-- +goose Up\nSELECT 1;\n")
    (tmp_path / "20250402000000_v1_0_1.go").write_text("package migrations\n")
    with psycopg.connect(database_url, autocommit=True) as conn:
        ensure_version_table(conn)
    _insert_rows(database_url, 20250401000000, 20250402000000)
    plan = plan_and_run(database_url, load_directory(tmp_path), 20250401000000, HATCHET, run=False)
    [step] = plan.blocked_steps
    assert step.reason is not None and "has no Python port" in step.reason


def test_old_row_below_the_target_whose_twin_stays_is_deleted_alone(database_url: str) -> None:
    directory = CASES / "renamed"
    older = load_directory(directory / "older")
    migrations = {**load_directory(directory), **older}
    apply_up(database_url, directory, to_version=20250401000000)
    apply_up(database_url, directory / "older")
    _insert_rows(database_url, 20250410000000, NEW)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE v1_filter (id BIGINT PRIMARY KEY)")
    # The target ships NEW (the renamed file): its column stays; OLD's row alone goes.
    plan = plan_and_run(
        database_url,
        migrations,
        NEW,
        RENAMED_PROFILE,
        target_versions=frozenset({20250401000000, 20250410000000, NEW}),
    )
    [step] = plan.steps
    assert (step.version, step.action, step.below_target) == (OLD, "row only", True)
    assert versions(database_url) == [0, 20250401000000, 20250410000000, NEW]
    assert scalar(database_url, "SELECT count(*) FROM information_schema.columns "
                  "WHERE table_name = 'v1_task' AND column_name = 'is_durable'") == 1  # fmt: skip


def test_rows_of_a_table_the_down_drops_are_not_deleted_after_the_drop(
    database_url: str, tmp_path: Path
) -> None:
    (tmp_path / "20250401000000_v1_0_0.sql").write_text(
        "-- +goose Up\nCREATE TYPE kind AS ENUM ('A');\n-- +goose Down\nDROP TYPE kind;\n"
    )
    (tmp_path / "20250402000000_v1_0_1.sql").write_text(
        "-- +goose NO TRANSACTION\n-- +goose Up\nALTER TYPE kind ADD VALUE 'B';\n"
        "CREATE TABLE v1_match (id BIGINT PRIMARY KEY, k kind NOT NULL);\n"
        "-- +goose Down\nDROP TABLE v1_match;\n"
    )
    apply_up(database_url, tmp_path)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO v1_match VALUES (1, 'B')")
    plan = plan_and_run(database_url, load_directory(tmp_path), 20250401000000, Profile(name="t"))
    [step] = plan.steps
    assert not step.data_loss  # the rows go with the table, announced by DROP TABLE's warning
    assert any(w.startswith("data loss: DROP TABLE v1_match") for w in step.warnings)
    assert scalar(database_url, "SELECT count(*) FROM pg_enum") == 1

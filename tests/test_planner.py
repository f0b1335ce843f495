"""build_plan: goose's down-to simulated in memory over the shared fixture set."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from migrator.database import connect
from migrator.errors import BadInputError
from migrator.planner import build_plan
from migrator.sources import MigrationFile, load_directory
from migrator.versions import VersionRow, read_version_rows
from tests.goose_up import FIXTURE_MIGRATIONS, apply_up, migrations_with, schema_snapshot

V0, V1, V2, V3, V4, V5, V6, GO7, V8, V9, V10, V11, V12, V13 = (
    20250311000000, 20250318101500, 20250325120000, 20250402090000, 20250409140000,
    20250416080000, 20250423110000, 20250430000000, 20250507150000, 20250514120000,
    20250521090000, 20250528100000, 20250604130000, 20250611170000,
)  # fmt: skip
ALL = [V0, V1, V2, V3, V4, V5, V6, GO7, V8, V9, V10, V11, V12, V13]


@pytest.fixture(scope="module")
def fixture_set() -> dict[int, MigrationFile]:
    return load_directory(FIXTURE_MIGRATIONS)


def table(*spec: int | tuple[int, bool]) -> list[VersionRow]:
    """Version rows in application order, baseline first; ints are applied rows."""
    out = [VersionRow(id=1, version_id=0, is_applied=True, tstamp=None)]
    for i, item in enumerate(spec, start=2):
        version, applied = item if isinstance(item, tuple) else (item, True)
        out.append(VersionRow(id=i, version_id=version, is_applied=applied, tstamp=None))
    return out


def test_down_to_a_middle_version_reverts_newest_first(
    fixture_set: dict[int, MigrationFile],
) -> None:
    plan = build_plan(table(*ALL), fixture_set, GO7, source="fixtures")
    assert (plan.from_version, plan.to_version, plan.source) == (V13, GO7, "fixtures")
    assert [s.version for s in plan.steps] == [V13, V12, V11, V10, V9, V8]
    assert not plan.blocked
    assert all(s.status == "ready" for s in plan.steps)
    by_version = {s.version: s for s in plan.steps}
    assert by_version[V13].statements == ["DROP TABLE v1_match;", "DROP TYPE v1_match_kind;"]
    assert by_version[V11].statements == ["DROP VIEW v1_task_view; -- the view only"]
    assert by_version[V10].statements == []  # no Down section: nothing to run, still reverted
    assert by_version[V9].transaction is False  # lower-case "no transaction"
    assert by_version[V8].transaction is True
    assert by_version[V13].file == "20250611170000_v1_0_13.sql"


def test_down_sections_are_split_as_goose_splits_them(
    fixture_set: dict[int, MigrationFile],
) -> None:
    plan = build_plan(table(V0, V1, V2, V3, V4, V5, V6), fixture_set, V0)
    steps = {s.version: s for s in plan.steps}
    assert [s.version for s in plan.steps] == [V6, V5, V4, V3, V2, V1]
    # Two commands on one line are one goose statement (sent as one simple-protocol query).
    assert steps[V6].statements[-1] == "DELETE FROM v1_queue_item; DROP TABLE v1_queue_item;"
    assert len(steps[V6].statements) == 3
    # A StatementBegin/End block with several commands is one statement.
    assert len(steps[V2].statements) == 1
    assert "DROP TRIGGER" in steps[V2].statements[0]
    assert "DROP FUNCTION" in steps[V2].statements[0]
    # The Down is empty; the enum label its up added goes by recreating the type.
    [rebuild] = steps[V3].statements
    assert rebuild.startswith("DO ") and "v1_task_status" in rebuild
    assert steps[V4].transaction is False


def test_warnings_come_from_the_down_and_the_up(fixture_set: dict[int, MigrationFile]) -> None:
    plan = build_plan(table(V0, V1, V2, V3), fixture_set, V0)
    steps = {s.version: s for s in plan.steps}
    assert any("v1_log_line" in w for w in steps[V1].warnings)  # DROP TABLE: data loss
    assert any("CANCELLED" in w for w in steps[V3].warnings)  # enum value added by the up
    assert any(w.startswith("empty down") for w in steps[V3].warnings)


def test_go_step_is_blocked_and_listed_with_the_rest(
    fixture_set: dict[int, MigrationFile],
) -> None:
    plan = build_plan(table(*ALL), fixture_set, V5)
    assert [s.version for s in plan.steps] == [V13, V12, V11, V10, V9, V8, GO7, V6]
    assert plan.blocked
    [go] = plan.blocked_steps
    assert (go.version, go.kind, go.transaction) == (GO7, "go", False)
    assert go.reason is not None and "has no Python port" in go.reason
    assert plan.steps[-1].status == "ready"  # the simulation went on past the Go step


def test_orphan_row_is_a_blocked_missing_step_and_the_rest_is_still_planned(
    fixture_set: dict[int, MigrationFile],
) -> None:
    orphan = 20250420000000  # e.g. a version that a later release renamed
    plan = build_plan(table(V0, V1, V5, orphan, V6), fixture_set, V0)
    assert [s.version for s in plan.steps] == [V6, orphan, V5, V1]
    missing = plan.steps[1]
    assert (missing.kind, missing.status, missing.file) == ("missing", "blocked", None)
    assert missing.reason is not None and "orphan" in missing.reason
    assert [s.version for s in plan.blocked_steps] == [orphan]


def test_application_order_not_version_order_decides(
    fixture_set: dict[int, MigrationFile],
) -> None:
    # V11 was applied last (out of order), so goose reverts it first.
    plan = build_plan(table(V0, V1, V12, V13, V11), fixture_set, V1)
    assert plan.from_version == V11
    assert [s.version for s in plan.steps] == [V11, V13, V12]


def test_unapplied_newest_row_is_not_reverted(fixture_set: dict[int, MigrationFile]) -> None:
    plan = build_plan(table(V0, V1, V12, V13, (V13, False)), fixture_set, 0)
    assert plan.from_version == V12
    assert [s.version for s in plan.steps] == [V12, V1, V0]


def test_a_reapplied_version_is_reverted_once(fixture_set: dict[int, MigrationFile]) -> None:
    plan = build_plan(table(V0, V1, (V1, False), V12, V1), fixture_set, 0)
    assert [s.version for s in plan.steps] == [V1, V12, V0]


@pytest.mark.parametrize("target", [V13, V13 + 1, 99999999999999])
def test_target_at_or_above_current_has_no_steps(
    fixture_set: dict[int, MigrationFile], target: int
) -> None:
    plan = build_plan(table(*ALL), fixture_set, target)
    assert plan.steps == []
    assert plan.nothing_to_do
    assert not plan.blocked


def test_target_between_versions_stops_at_the_first_version_not_above_it(
    fixture_set: dict[int, MigrationFile],
) -> None:
    plan = build_plan(table(*ALL), fixture_set, V12 - 1)
    assert [s.version for s in plan.steps] == [V13, V12]


def test_negative_target_is_bad_input(fixture_set: dict[int, MigrationFile]) -> None:
    with pytest.raises(BadInputError):
        build_plan(table(*ALL), fixture_set, -1)


def test_unparsable_down_blocks_with_the_parse_error_but_a_broken_up_does_not(
    tmp_path: Path,
) -> None:
    broken_up = "-- +goose Up\nSELECT 1\n-- +goose Down\nSELECT 2;\n"
    directory = migrations_with(
        tmp_path,
        "20250702090000_v1_0_16_bad_annotation.sql",
        extra={"20250709090000_v1_0_17_broken_up.sql": broken_up},
    )
    migrations = load_directory(directory)
    plan = build_plan(table(*ALL, 20250702090000, 20250709090000), migrations, V13)
    broken_up_step, bad_down_step = plan.steps
    assert broken_up_step.status == "ready"
    assert broken_up_step.statements == ["SELECT 2;"]
    assert bad_down_step.status == "blocked"
    assert bad_down_step.reason is not None
    assert "20250702090000_v1_0_16_bad_annotation.sql:4" in bad_down_step.reason


def test_planning_over_a_read_only_connection_changes_nothing(database_url: str) -> None:
    apply_up(database_url, FIXTURE_MIGRATIONS)
    before = schema_snapshot(database_url)
    with connect(database_url, read_only=True) as conn:
        plan = build_plan(read_version_rows(conn), load_directory(FIXTURE_MIGRATIONS), V0)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("DELETE FROM goose_db_version")
    assert len(plan.steps) == 13
    assert schema_snapshot(database_url) == before

"""Builds a :class:`~migrator.plan.Plan` by simulating goose's down-to in memory.

goose's loop is: take the current version, stop at 0 or at the target, find the file with that
version, run its down (which deletes that version's rows), repeat. The simulation does the same on
a copy of the version rows, so orphan rows and re-applied versions are reverted in the order goose
would revert them. Unlike goose it does not stop at the first problem: every blocking step is
listed, so an operator sees the whole picture in one dry run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from migrator.analysis import step_warnings
from migrator.errors import BadInputError, SQLParseError
from migrator.plan import Plan, Step
from migrator.sources import MigrationFile
from migrator.sqlparser import ParsedSQL, parse_sql
from migrator.versions import VersionRow, current_version

GO_BLOCKED_REASON = "Go migration: no port available yet"


def _orphan_reason(version: int) -> str:
    return (
        f"version {version} is applied in goose_db_version but no migration file has it "
        "(an orphan row, e.g. a renamed or deleted migration): goose stops here"
    )


def _parse_up(migration: MigrationFile, env: Mapping[str, str] | None) -> ParsedSQL | None:
    """The up section, for warnings only: goose's down path never parses it, so errors are moot."""
    try:
        return parse_sql(migration.content or b"", filename=migration.name, direction="up", env=env)
    except SQLParseError:
        return None


def _go_runs_in_transaction(migration: MigrationFile) -> bool:
    # Hatchet registers its Go migrations with the NoTx variants; only an explicit transactional
    # registration says otherwise.
    source = (migration.content or b"").decode("utf-8", errors="replace")
    return "NoTx" not in source and ("AddMigrationContext(" in source or "AddMigration(" in source)


def build_step(migration: MigrationFile, *, env: Mapping[str, str] | None = None) -> Step:
    """The step that reverts ``migration``: its down statements, warnings and whether it can run."""
    if migration.kind == "go":
        return Step(
            version=migration.version,
            file=migration.name,
            kind="go",
            transaction=_go_runs_in_transaction(migration),
            warnings=step_warnings(kind="go", down=None, up=None),
            status="blocked",
            reason=GO_BLOCKED_REASON,
            source=migration.origin,
            blob_sha=migration.blob_sha,
        )
    up = _parse_up(migration, env)
    try:
        down = parse_sql(
            migration.content or b"", filename=migration.name, direction="down", env=env
        )
    except SQLParseError as exc:
        return Step(
            version=migration.version,
            file=migration.name,
            kind="sql",
            transaction=True,
            warnings=[],
            status="blocked",
            reason=f"the down SQL cannot be parsed as goose parses it: {exc.message}",
            source=migration.origin,
            blob_sha=migration.blob_sha,
        )
    return Step(
        version=migration.version,
        file=migration.name,
        kind="sql",
        transaction=down.use_transaction,
        statements=list(down.statements),
        warnings=step_warnings(kind="sql", down=down, up=up),
        source=migration.origin,
        blob_sha=migration.blob_sha,
    )


def build_plan(
    rows: Sequence[VersionRow],
    migrations: Mapping[int, MigrationFile],
    target: int,
    *,
    env: Mapping[str, str] | None = None,
    source: str | None = None,
) -> Plan:
    """What ``goose down-to target`` would do on a database holding ``rows``.

    ``target >= current`` gives a plan with no steps. A version without a file becomes a blocked
    ``missing`` step, a ``.go`` file a blocked ``go`` step, an unparsable down a blocked ``sql``
    step; the simulation carries on past them so that every problem is listed.
    """
    if target < 0:
        raise BadInputError(f"target version {target} is negative")
    remaining = list(rows)
    start = current_version(remaining)
    plan = Plan(from_version=start, to_version=target, source=source)
    current = start
    while current != 0 and current > target:
        migration = migrations.get(current)
        if migration is None:
            step = Step(
                version=current,
                file=None,
                kind="missing",
                transaction=False,
                status="blocked",
                reason=_orphan_reason(current),
            )
        else:
            step = build_step(migration, env=env)
        plan.steps.append(step)
        # goose's down ends with DELETE ... WHERE version_id = current: every row of it goes.
        reverted = current
        remaining = [r for r in remaining if r.version_id != reverted]
        current = current_version(remaining)
    return plan

"""Builds a :class:`~migrator.plan.Plan` by simulating goose's down-to in memory.

goose's loop is: take the current version, stop at 0 or at the target, find the file with that
version, run its down (which deletes that version's rows), repeat. :func:`versions_to_revert`
does the same on a copy of the version rows, so orphan rows and re-applied versions are reverted
in the order goose would revert them. Unlike goose it does not stop at the first problem: every
blocking step is listed, so an operator sees the whole picture in one dry run.

For each step the planner asks the project's :class:`~migrator.profile.Profile` what to send:
upstream's down, a port of a Go migration, a patched down, or only the row DELETE (when the same
migration, renamed, was already reverted). Rows the older schema cannot hold and enum labels the
reverted ups added are found with read-only queries through a :class:`~migrator.profile.Catalog`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from migrator.analysis import data_loss_warnings, dropped_tables, step_warnings
from migrator.datacheck import count as count_rows
from migrator.datacheck import data_conflicts
from migrator.enum_rebuild import added_enum_labels, label_usage_fixes, rebuild_statement
from migrator.errors import BadInputError, SQLParseError
from migrator.leftovers import left_behind_warning
from migrator.plan import Plan, Step
from migrator.profile import (
    GENERIC,
    Catalog,
    DataFix,
    EmptyCatalog,
    Patch,
    PatchContext,
    Profile,
)
from migrator.sources import MigrationFile
from migrator.sqlparser import ParsedSQL, parse_sql
from migrator.versions import (
    VERSION_TABLE,
    VersionRow,
    applied_versions,
    current_version,
    current_version_newest_first,
)

NO_TX_WARNING = (
    "no transaction: runs statement by statement; a failure leaves earlier statements applied"
)


@dataclass(frozen=True)
class PlanOptions:
    """The operator's choices that change what a step sends."""

    no_patches: bool = False
    """Upstream's downs exactly: no patches, no data fixes, no enum rebuilds (Go ports run)."""
    trust_go_ports: bool = False
    """Run a Go port even when the source file's SHA is not one it was written for."""
    skip_orphans: frozenset[int] = frozenset()
    """Orphan versions whose row is deleted without running any down."""
    env: Mapping[str, str] | None = None


@dataclass
class _Context:
    profile: Profile
    catalog: Catalog
    options: PlanOptions
    reverted: dict[int, int] = field(default_factory=dict)
    """Version whose down ran -> the step version it ran in."""
    kept: frozenset[int] = frozenset()
    """Versions that stay applied after the plan."""


def _orphan_reason(version: int) -> str:
    return (
        f"version {version} is applied in {VERSION_TABLE} but no migration file has it "
        "(an orphan row, e.g. a renamed or deleted migration): goose stops here; "
        f"--skip-orphan {version} deletes just that row (whatever it created stays)"
    )


def _walk(rows: Sequence[VersionRow], target: int) -> list[int]:
    """goose's down-to loop on a copy of the rows: the versions it reverts, in order."""
    newest_first = sorted(rows, key=lambda r: r.id, reverse=True)
    remaining = [(r.version_id, r.is_applied) for r in newest_first]
    current = current_version_newest_first(remaining)
    order: list[int] = []
    while current != 0 and current > target:
        order.append(current)
        # goose's down ends with DELETE ... WHERE version_id = current: every row of it goes.
        remaining = [r for r in remaining if r[0] != current]
        current = current_version_newest_first(remaining)
    return order


def _stale_orphans(
    rows: Sequence[VersionRow],
    reverted: Collection[int],
    profile: Profile,
    target_versions: Collection[int] | None,
) -> list[int]:
    """Renamed versions at or below the target that the target release does not ship.

    goose's down-to stops at the target, but such a row's objects are not part of the target's
    schema (the release that shipped it is newer than the target), so it is reverted too.
    """
    if target_versions is None:
        return []
    known = set(profile.renamed) | set(profile.rewritten_ids)
    left = [v for v in applied_versions(rows) if v not in reverted]
    return [v for v in reversed(left) if v in known and v not in target_versions]


def versions_to_revert(
    rows: Sequence[VersionRow],
    target: int,
    *,
    profile: Profile = GENERIC,
    target_versions: Collection[int] | None = None,
) -> list[int]:
    """The versions a downgrade to ``target`` reverts, in order (goose's down-to, then stale
    renamed rows the target release does not have)."""
    order = _walk(rows, target)
    return order + _stale_orphans(rows, order, profile, target_versions)


def _parse_up(migration: MigrationFile, env: Mapping[str, str] | None) -> ParsedSQL | None:
    """The up section, for warnings only: goose's down path never parses it, so errors are moot."""
    if migration.kind != "sql":
        return None
    try:
        return parse_sql(migration.content or b"", filename=migration.name, direction="up", env=env)
    except SQLParseError:
        return None


def _base_step(version: int, migration: MigrationFile) -> Step:
    return Step(
        version=version,
        file=migration.name,
        kind=migration.kind,
        transaction=True,
        source=migration.origin,
        blob_sha=migration.blob_sha,
    )


def _block(step: Step, reason: str) -> Step:
    step.status, step.action, step.reason = "blocked", "blocked", reason
    return step


def _go_step(
    step: Step, migration: MigrationFile, ctx: _Context, migrations: Mapping[int, MigrationFile]
) -> Step:
    ports = ctx.profile.port_for(migration.version)
    step.transaction = False
    if not ports:
        step.warnings.append("go: Go migration compiled into hatchet-migrate; no port exists")
        return _block(
            step,
            f"Go migration {migration.name} (version {migration.version}) has no Python port: "
            "its down cannot be run; no option unblocks it (revert it with the hatchet-migrate "
            "binary of the source release, or restore a backup)",
        )
    sha = migration.blob_sha
    port = next((p for p in ports if sha is not None and sha in p.blob_shas), None)
    if port is None:
        known = ", ".join(sorted(s for p in ports for s in p.blob_shas))
        if not ctx.options.trust_go_ports:
            return _block(
                step,
                f"the Go port of version {migration.version} was written for blob SHA(s) "
                f"{known}, but the source file {migration.name} has {sha or 'an unknown SHA'}: "
                "pass --trust-go-ports to run the port anyway",
            )
        port = ports[-1]
        step.warnings.append(
            f"trusted port: written for {known}, the source file has {sha} (--trust-go-ports)"
        )
    patch = None
    if not ctx.options.no_patches:
        candidates = (ctx.profile.patch_for(migration.version, s) for s in (sha, *port.blob_shas))
        patch = next((p for p in candidates if p is not None), None)
    step.warnings.append(f"go: runs the Python port of {migration.name}: {port.summary}")
    step.statements, step.transaction = port.build(ctx.catalog), port.transaction
    step.action = "port"
    step.warnings += data_loss_warnings(step.statements)
    if patch is not None:
        _apply_patch(step, patch, ctx, migrations)
    return step


def _apply_patch(
    step: Step, patch: Patch, ctx: _Context, migrations: Mapping[int, MigrationFile]
) -> None:
    files = {v: m.content for v in patch.reads if (m := migrations.get(v)) and m.content}
    try:
        step.statements = patch.build(PatchContext(ctx.catalog, list(step.statements), files))
    except LookupError as exc:
        _block(step, f"the patch for this step cannot be built: {exc}")
        return
    if patch.transaction is not None:
        step.transaction = patch.transaction
    step.action, step.patch_reason = "patch", patch.reason
    # The patch supplies the down: upstream's own data-loss and left-behind notes no longer hold.
    stale = ("data loss:", "missing down:", "empty down:")
    step.warnings = [w for w in step.warnings if not w.startswith(stale)]
    step.warnings += data_loss_warnings(step.statements)


def _sql_step(
    step: Step, migration: MigrationFile, ctx: _Context, migrations: Mapping[int, MigrationFile]
) -> Step:
    env = ctx.options.env
    try:
        down = parse_sql(
            migration.content or b"", filename=migration.name, direction="down", env=env
        )
    except SQLParseError as exc:
        return _block(step, f"the down SQL cannot be parsed as goose parses it: {exc.message}")
    up = _parse_up(migration, env)
    step.transaction = down.use_transaction
    step.statements = list(down.statements)
    step.warnings = step_warnings(kind="sql", down=down, up=up)
    if up is not None and not any(s.strip() for s in down.statements):
        kind: Literal["missing", "empty"] = "empty" if down.section_present else "missing"
        prefix = f"{kind} down:"
        step.warnings = [
            left_behind_warning(kind, list(up.statements)) if w.startswith(prefix) else w
            for w in step.warnings
        ]
    patch = (
        None if ctx.options.no_patches else ctx.profile.patch_for(migration.version, step.blob_sha)
    )
    if patch is not None:
        _apply_patch(step, patch, ctx, migrations)
    return step


def _apply_data_fixes(step: Step, fixes: Sequence[DataFix], ctx: _Context, *, after: bool) -> None:
    """Count each fix's rows now; those with rows become announced data loss in the step."""
    added: list[str] = []
    for fix in fixes:
        rows = count_rows(ctx.catalog, fix)
        if rows <= 0:
            continue
        what = fix.describe(rows)
        if not fix.statement:
            _block(
                step,
                f"the down would fail on existing rows and no recipe exists: {what}; "
                "remove or fix those rows first",
            )
            continue
        step.data_loss.append(what)
        step.warnings.append(f"data loss: {fix.statement.split(' WHERE ')[0]}: {what}")
        added.append(fix.statement)
    if after:
        step.statements += added
    else:
        step.statements[:0] = added


def _enum_rebuilds(step: Step, migration: MigrationFile, ctx: _Context) -> None:
    up = _parse_up(migration, ctx.options.env)
    if up is None:
        return
    # Rows of tables the step drops go with the table; a DELETE after the drop would fail.
    dropped = dropped_tables(step.statements)
    for type_name, labels in added_enum_labels(list(up.statements)).items():
        fixes = [
            fix
            for fix in label_usage_fixes(ctx.catalog, type_name, labels)
            if fix.table.rsplit(".", 1)[-1].strip('"') not in dropped
        ]
        _apply_data_fixes(step, fixes, ctx, after=True)
        step.statements.append(rebuild_statement(type_name, labels))
        listed = ", ".join(repr(label) for label in labels)
        step.warnings = [w for w in step.warnings if not (w.startswith("irreversible: enum value"))]
        step.warnings.append(
            f"enum: type {type_name} is recreated without {listed} (added by the up), so the "
            "newer release's ups can add them again"
        )


def _row_only(version: int, migration: MigrationFile | None, why: str) -> Step:
    return Step(
        version=version,
        file=migration.name if migration else None,
        kind=migration.kind if migration else "missing",
        transaction=True,
        action="row only",
        warnings=[why],
        source=migration.origin if migration else None,
        blob_sha=migration.blob_sha if migration else None,
    )


def _file_for(
    version: int, migrations: Mapping[int, MigrationFile], profile: Profile
) -> tuple[MigrationFile | None, int | None]:
    """The file whose down reverts ``version``: its own, else a renamed twin's (and which)."""
    own = migrations.get(version)
    if own is not None:
        return own, None
    for twin in sorted(profile.twins(version) - {version}, reverse=True):
        if twin in migrations:
            return migrations[twin], twin
    return None, None


def _plan_step(version: int, migrations: Mapping[int, MigrationFile], ctx: _Context) -> Step:
    if version in ctx.options.skip_orphans:
        return _row_only(
            version,
            None,
            "skipped orphan: only its row is deleted (--skip-orphan); what it created stays",
        )
    twins = ctx.profile.twins(version) - {version}
    done_twin = next((t for t in sorted(twins) if t in ctx.reverted), None)
    kept_twin = next((t for t in sorted(twins) if t in ctx.kept), None)
    migration, twin = _file_for(version, migrations, ctx.profile)
    if done_twin is not None:
        return _row_only(
            version,
            migration,
            f"renamed: the same migration was reverted as version {done_twin}; only this "
            "row is deleted",
        )
    if kept_twin is not None:
        return _row_only(
            version,
            migration,
            f"renamed: the same migration stays applied as version {kept_twin}, which owns its "
            "objects; only this old row is deleted",
        )
    if migration is None:
        return Step(
            version=version,
            file=None,
            kind="missing",
            transaction=False,
            status="blocked",
            action="blocked",
            reason=_orphan_reason(version),
        )
    step = _base_step(version, migration)
    if migration.kind == "go":
        _go_step(step, migration, ctx, migrations)
    else:
        _sql_step(step, migration, ctx, migrations)
    if twin is not None:
        step.warnings.insert(
            0,
            f"renamed: version {version} is an old id of {twin}; reverted with {migration.name}",
        )
    elif migration.version in ctx.profile.renamed:
        renamed = ctx.profile.renamed[version]
        now = f"became {renamed.became}" if renamed.became else "was deleted upstream"
        step.warnings.insert(
            0, f"orphan: {migration.name} shipped in {', '.join(renamed.shipped_in)} and {now}"
        )
    if step.blocked:
        return step
    if not ctx.options.no_patches:
        finder = ctx.profile.data_fixes.get(migration.version)
        fixes = (finder(ctx.catalog) if finder else []) + data_conflicts(
            step.statements, ctx.catalog
        )
        _apply_data_fixes(step, fixes, ctx, after=False)
        if not step.blocked:
            _enum_rebuilds(step, migration, ctx)
    if step.patched:
        step.warnings.insert(0, f"patched: {step.patch_reason}")
    if not step.transaction and step.statements and NO_TX_WARNING not in step.warnings:
        step.warnings.append(NO_TX_WARNING)
    ctx.reverted[version] = version
    return step


def build_plan(
    rows: Sequence[VersionRow],
    migrations: Mapping[int, MigrationFile],
    target: int,
    *,
    env: Mapping[str, str] | None = None,
    source: str | None = None,
    profile: Profile = GENERIC,
    catalog: Catalog | None = None,
    options: PlanOptions | None = None,
    target_versions: Collection[int] | None = None,
) -> Plan:
    """What ``goose down-to target`` would do on a database holding ``rows``.

    ``target >= current`` gives a plan with no steps. A version without a file becomes a blocked
    ``missing`` step, a ``.go`` file without a port a blocked ``go`` step, an unparsable down a
    blocked ``sql`` step; the simulation carries on past them so that every problem is listed.
    ``target_versions`` (the target release's versions) lets renamed rows the target does not
    ship be reverted too.
    """
    if target < 0:
        raise BadInputError(f"target version {target} is negative")
    opts = options or PlanOptions(env=env)
    if env is not None and opts.env is None:
        opts = PlanOptions(opts.no_patches, opts.trust_go_ports, opts.skip_orphans, env)
    ctx = _Context(profile=profile, catalog=catalog or EmptyCatalog(), options=opts)
    plan = Plan(from_version=current_version(rows), to_version=target, source=source)
    order = versions_to_revert(rows, target, profile=profile, target_versions=target_versions)
    ctx.kept = frozenset(applied_versions(rows)) - set(order)
    main = len(_walk(rows, target))
    for index, version in enumerate(order):
        step = _plan_step(version, migrations, ctx)
        if index >= main:
            step.below_target = True
            step.warnings.insert(
                0,
                f"below the target: version {version} is not in the target release; "
                "reverted so the schema matches a fresh install of it",
            )
        plan.steps.append(step)
    return plan

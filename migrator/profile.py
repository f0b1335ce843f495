"""What a goose project knows about its own history, as data the generic planner consults.

The planner and runner know goose; a :class:`Profile` knows one project: which ``.go`` migrations
have Python ports (and for which upstream blob SHAs), which downs are broken upstream and what to
run instead, which rows a down cannot carry back, which versions were renamed, and the oldest
release a downgrade can reach. Everything is looked up by (version, upstream blob SHA), so when
upstream edits a file the port or patch written for the old bytes stops applying.

Nothing here names a project; ``migrator/hatchet/`` holds Hatchet's profile.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


class Catalog(Protocol):
    """Read-only queries against the database being planned for (or a simulated empty one)."""

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of one read-only query (extended protocol, ``%s`` placeholders)."""
        ...


class EmptyCatalog:
    """A catalog for plans made without a database: every query returns no rows."""

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return []


StatementBuilder = Callable[[Catalog], list[str]]
"""Returns the exact statements to send, in order, given the database as it is at plan time."""


def static(*statements: str) -> StatementBuilder:
    """A builder that always returns ``statements`` (for downs that need no catalog lookup)."""
    fixed = list(statements)

    def build(_catalog: Catalog) -> list[str]:
        return list(fixed)

    return build


@dataclass(frozen=True)
class Port:
    """A Python port of a Go migration's down function."""

    version: int
    file: str
    blob_shas: frozenset[str]
    """The upstream ``.go`` blob SHAs this port was written for (read from each release)."""
    build: StatementBuilder
    summary: str
    """One line: what the down does."""
    transaction: bool = False
    """Hatchet registers every Go migration with goose's NoTx variant: statement by statement."""


@dataclass(frozen=True)
class PatchContext:
    """What a patch builder reads: the catalog, upstream's statements and older files."""

    catalog: Catalog
    upstream: list[str]
    """The file's Down statements as goose splits them, or the faithful port's statements."""
    files: Mapping[int, bytes] = field(default_factory=dict)
    """Raw bytes of the migrations named in the patch's ``reads``, by version."""

    def up_statement(self, version: int, marker: str) -> str:
        """The statement of migration ``version``'s Up section that contains ``marker`` (e.g. an
        older ``CREATE OR REPLACE FUNCTION f(`` to restore); the last one when several do."""
        from migrator.sqlparser import parse_sql

        data = self.files.get(version)
        if data is None:
            raise LookupError(f"the patch needs migration {version}, which was not loaded")
        parsed = parse_sql(data, filename=str(version), direction="up")
        hits = [s for s in parsed.statements if marker in s]
        if not hits:
            raise LookupError(f"no statement of {version}'s up contains {marker!r}")
        return hits[-1]


PatchBuilder = Callable[[PatchContext], list[str]]
"""Returns the corrected statements. Patches amend upstream's SQL (and re-use older migrations'
statements through :meth:`PatchContext.up_statement`) rather than carry a copy of it."""


def amend(
    *,
    before: Sequence[str] = (),
    after: Sequence[str] = (),
    substitute: Sequence[tuple[str, str]] = (),
) -> PatchBuilder:
    """A patch builder: ``before`` + upstream's statements with each ``(old, new)`` text
    substitution applied (``old`` must occur, or the patch was written for other bytes) +
    ``after``."""

    def build(ctx: PatchContext) -> list[str]:
        statements: list[str | None] = list(ctx.upstream)
        for old, new in substitute:
            hits = [i for i, text in enumerate(statements) if text is not None and old in text]
            if not hits:
                raise ValueError(f"patch text {old!r} is not in upstream's down")
            for i in hits:
                changed = (statements[i] or "").replace(old, new)
                # A statement the substitution emptied is not sent at all.
                statements[i] = changed if changed.strip() else None
        return [*before, *(s for s in statements if s is not None), *after]

    return build


@dataclass(frozen=True)
class Patch:
    """Corrected down statements for a down that fails (or leaves the wrong schema) upstream.

    For a ``.go`` version the patch replaces the faithful port; for ``.sql`` it replaces the
    file's Down section. ``blob_shas`` are the upstream SHAs it corrects: a file with any other
    SHA (upstream fixed it) runs as it is.
    """

    version: int
    blob_shas: frozenset[str]
    reason: str
    """One line shown as ``patched: <reason>``."""
    build: PatchBuilder
    transaction: bool | None = None
    """None: the same transaction mode as upstream's down."""
    reads: tuple[int, ...] = ()
    """Older migrations whose files the builder reads (fetched with the plan's files)."""


@dataclass(frozen=True)
class DataFix:
    """Rows a down cannot carry back, removed (or changed) as announced data loss in its step.

    ``count_sql`` counts the rows now (read-only, at plan time); ``statement`` is what the step
    runs before its down statements, inside its transaction when it has one.
    """

    table: str
    condition: str
    reason: str
    statement: str
    count_sql: str

    def describe(self, count: int) -> str:
        return f"{count} row(s) of {self.table} where {self.condition}: {self.reason}"


DataFixFinder = Callable[[Catalog], list[DataFix]]


@dataclass(frozen=True)
class Renamed:
    """A version some releases shipped and later ones renamed or deleted (an orphan row)."""

    version: int
    file: str
    shipped_in: tuple[str, ...]
    """Releases (tags) whose migrations directory holds ``file``: where its down comes from."""
    became: int | None
    """The version the same migration has now, or None when it was deleted."""


@dataclass(frozen=True)
class Profile:
    """One project's knowledge, consulted by the planner per step."""

    name: str
    ports: Mapping[int, Sequence[Port]] = field(default_factory=dict)
    patches: Mapping[int, Sequence[Patch]] = field(default_factory=dict)
    data_fixes: Mapping[int, DataFixFinder] = field(default_factory=dict)
    renamed: Mapping[int, Renamed] = field(default_factory=dict)
    rewritten_ids: Mapping[int, int] = field(default_factory=dict)
    """Bad version ids newer upstream migrators rewrite before running: old id -> real id."""
    floor_release: str | None = None
    """The oldest release a downgrade can reach (older ones have no goose downs)."""
    floor_version: int | None = None
    """That release's target version: targets below it are refused."""

    def port_for(self, version: int) -> Sequence[Port]:
        return self.ports.get(version, ())

    def patch_for(self, version: int, blob_sha: str | None) -> Patch | None:
        for patch in self.patches.get(version, ()):
            if blob_sha is not None and blob_sha in patch.blob_shas:
                return patch
        return None

    def reads_for(self, versions: Sequence[int]) -> set[int]:
        """Versions whose files the patches of ``versions`` read."""
        return {r for v in versions for p in self.patches.get(v, ()) for r in p.reads}

    def twins(self, version: int) -> frozenset[int]:
        """Every version that holds the same migration as ``version`` (itself included)."""
        group = {version}
        for old, renamed in self.renamed.items():
            if renamed.became is not None and version in (old, renamed.became):
                group |= {old, renamed.became}
        for old, new in self.rewritten_ids.items():
            if version in (old, new):
                group |= {old, new}
        return frozenset(group)


GENERIC = Profile(name="goose")
"""No project knowledge: goose's behaviour exactly (``.go`` steps block)."""

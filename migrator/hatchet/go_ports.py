"""Python ports of the down functions of Hatchet's Go migrations, and corrected downs.

``PORTS`` maps a version to one :class:`Port` per distinct down behaviour, each listing the
upstream blob SHAs it was read from. A port's ``build`` returns exactly the statements the Go down
sends, in order; partition lists come from the catalog at plan time, the way the Go code reads
them (``relid::regclass::text`` from ``pg_partition_tree``, sorted), except that a missing parent
table yields no partitions instead of the cast error the Go code would raise.

``PATCHED_PORTS`` holds corrected downs for the ports that fail on PostgreSQL 15 or leave a schema
other than a fresh install of the previous release:

- ``v1_0_66`` (and its orphan twin ``v1_0_63``): the down drops each leaf's
  ``ix_<leaf>_tenant_id`` before the parent index, but those leaf indexes are attached to the
  parent's and PostgreSQL refuses to drop them alone, so it fails as soon as a partition exists.
- ``v1_0_99``: its ups before v0.83.57 drop ``ix_v1_runs_olap_tenant_id`` (``v1_0_66``'s index)
  and no down recreates it. Every SHA is patched, since a database may have run an early file
  and kept its row through later releases; the rebuild is ``IF NOT EXISTS`` throughout. When
  the table is day-only at plan time (``v1_0_100`` applied; ``olap_reshape`` reverses it first)
  only the parent's index is built, non-concurrently.
"""

from __future__ import annotations

from collections.abc import Iterable

from migrator.profile import Catalog, Patch, PatchContext, Port, StatementBuilder, static

__all__ = [
    "PATCHED_PORTS",
    "PORTS",
    "RUNS_TENANT_INDEX_COLUMNS",
    "partitions",
    "quote_ident",
    "runs_tenant_index_statement",
]

RUNS_OLAP = "v1_runs_olap"
TASKS_OLAP = "v1_tasks_olap"
DAGS_OLAP = "v1_dags_olap"

V1_0_63 = 20251218153622
V1_0_66 = 20251226153622
V1_0_79_C = 20260216000003
V1_0_92 = 20260324135804
V1_0_99 = 20260424190713
V1_0_107 = 20260511164037
V1_0_116 = 20260608141858
V1_0_130 = 20260715190323
V1_0_137 = 20260806002346
V1_0_142 = 20260814121501

SHA_V1_0_63 = "a1d4ae1e14f46215c9c34e0bb45bfac27fc623ce"
SHA_V1_0_66 = "f39ddf4f83e38412e03297c28a4073d03c67973d"
SHA_V1_0_79_C = "efec15789c48e9e7b8a35744d2448cb4bb360086"
SHA_V1_0_92 = "cb33652f450995fc0644ffc8754d227daf7b4e9e"
SHAS_V1_0_99_MIRROR_ONLY = frozenset(
    {
        "abe2e60a10fc00550f343da02be1d29e2e1676c7",  # v0.83.46
        "305036769962c3aa5dc5964968f2958909ae0165",  # v0.83.47
        "b7980b9a4da82af3d0cdfb6f70162a59cb5378e3",  # v0.83.49
        "7511097902c3e24c300109109cc80fe4ce8e7171",  # v0.83.51
    }
)
"""``v1_0_99`` files whose down drops only the mirror triggers, functions and tables."""
SHAS_V1_0_99_WITH_PROGRESS = frozenset(
    {
        "21851a601c5fc35b6191b78390007b34c44a43f5",  # v0.83.53
        "427510a124aedfa3c91ea2e13bdebcf3ff855ceb",  # v0.83.54
        "dba368a02eabda09596f176e1d6e44eba908fb2e",  # v0.83.57
        "3c785bde6293ebafa2ac592df2193d8de0dd19b2",  # v0.86.28
        "56566018df59337f7358c48e4cf6d60e07a2379a",  # v0.96.0
    }
)
"""``v1_0_99`` files whose down first drops ``v1_olap_backfill_progress``."""
SHA_V1_0_107 = "5a9f0ffc8fae3e3673d58d4f55f4af7046309708"
SHA_V1_0_116 = "a43fd7fc30cb6f14ee60ab72fe1e7dced9e6421a"
SHAS_V1_0_130 = frozenset(
    {"3e1b3d0ed6c90a0bfebc47634c63fd713c381f8d", "a1705ea8a056a3e7058293079a7b94e04b9f91d6"}
)
SHA_V1_0_137 = "a8ab3ab18649a564da1e2766d8aa562610617895"
SHA_V1_0_142 = "451b6e2b1655d2c5535ab4954b454bab919e0538"

_PARTITIONS_AT_LEVEL = (
    "SELECT relid::regclass::text FROM pg_partition_tree(to_regclass(%s::text)) "
    "WHERE level = %s::int ORDER BY 1"
)
_PARTITION_TREE = (
    "SELECT relid::regclass::text, isleaf, level FROM pg_partition_tree(to_regclass(%s::text)) "
    "WHERE level > 0 ORDER BY level DESC, 1"
)


def quote_ident(ident: str) -> str:
    """``ident`` in double quotes with ``"`` doubled, as Hatchet's Go ``quoteIdent`` does."""
    return '"' + ident.replace('"', '""') + '"'


def partitions(catalog: Catalog, table: str, level: int) -> list[str]:
    """Hatchet's ``listLeafPartitions``: ``table``'s partitions at ``level``, sorted by name."""
    return [str(row[0]) for row in catalog.query(_PARTITIONS_AT_LEVEL, (table, level))]


def _partition_tree(catalog: Catalog, table: str) -> list[tuple[str, bool, int]]:
    """Every partition below ``table`` as (name, is leaf, level), deepest level first."""
    return [
        (str(row[0]), bool(row[1]), int(row[2])) for row in catalog.query(_PARTITION_TREE, (table,))
    ]


RUNS_TENANT_INDEX_COLUMNS = "(tenant_id, inserted_at, id, readable_status, kind)"
"""The columns of ``v1_0_66``'s ``ix_v1_runs_olap_tenant_id`` (and of its partition indexes)."""


def _runs_tenant_index(table: str) -> str:
    return f"ix_{table}_tenant_id"


def runs_tenant_index_statement() -> str:
    """``ix_v1_runs_olap_tenant_id`` on the parent alone, built non-concurrently with every
    partition's index, where missing."""
    return (
        f"CREATE INDEX IF NOT EXISTS {quote_ident(_runs_tenant_index(RUNS_OLAP))} "
        f"ON {quote_ident(RUNS_OLAP)} {RUNS_TENANT_INDEX_COLUMNS}"
    )


def _down_v1_0_66(catalog: Catalog) -> list[str]:
    statements = [
        f"DROP INDEX CONCURRENTLY IF EXISTS {quote_ident(_runs_tenant_index(leaf))}"
        for leaf in partitions(catalog, RUNS_OLAP, 2)
    ]
    statements.append(f"DROP INDEX IF EXISTS {quote_ident(_runs_tenant_index(RUNS_OLAP))}")
    return statements


def _patch_v1_0_66(ctx: PatchContext) -> list[str]:
    """The parent index first (it takes every attached partition index with it), then the level-1
    indexes and upstream's leaf drops, which only find indexes a failed up left unattached."""
    catalog, upstream = ctx.catalog, ctx.upstream
    parent = f"DROP INDEX IF EXISTS {quote_ident(_runs_tenant_index(RUNS_OLAP))}"
    if parent not in upstream:
        raise ValueError(f"patch statement {parent!r} is not in upstream's down")
    level_1 = [
        f"DROP INDEX {'CONCURRENTLY ' if is_leaf else ''}IF EXISTS "
        f"{quote_ident(_runs_tenant_index(name))}"
        for name, is_leaf, level in _partition_tree(catalog, RUNS_OLAP)
        if level == 1
    ]
    return [parent, *level_1, *(s for s in upstream if s != parent)]


def _restore_runs_tenant_index(catalog: Catalog) -> list[str]:
    """``ix_v1_runs_olap_tenant_id`` rebuilt as ``v1_0_66``'s up builds it, where missing
    (nothing when the catalog says ``v1_runs_olap`` does not exist)."""
    exists = catalog.query("SELECT to_regclass(%s::text) IS NOT NULL", (RUNS_OLAP,))
    if exists and not exists[0][0]:
        return []
    columns = RUNS_TENANT_INDEX_COLUMNS
    tree = _partition_tree(catalog, RUNS_OLAP)
    if any(is_leaf and level == 1 for _name, is_leaf, level in tree):
        # Day-only at plan time: v1_0_100's up ran, and its reverse (olap_reshape) runs before
        # this step and rebuilds v1_runs_olap by day and status, so the partitions listed now
        # are not the ones this step meets (CONCURRENTLY fails on a partitioned one). The
        # parent's index alone, non-concurrently, fits whichever shape the step finds.
        return [runs_tenant_index_statement()]
    valid = catalog.query(
        "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s::text)",
        (_runs_tenant_index(RUNS_OLAP),),
    )
    if valid and valid[0][0]:
        # Present and valid, so every partition has its index attached (whatever its name):
        # building ix_<leaf>_tenant_id by name would only add duplicates.
        return []
    statements = [
        f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {quote_ident(_runs_tenant_index(name))} "
        f"ON {quote_ident(name)} {columns}"
        for name, is_leaf, _level in tree
        if is_leaf
    ]
    statements += [
        f"CREATE INDEX IF NOT EXISTS {quote_ident(_runs_tenant_index(name))} "
        f"ON {quote_ident(name)} {columns}"
        for name, is_leaf, _level in tree
        if not is_leaf
    ]
    statements.append(runs_tenant_index_statement())
    return statements


def _drop_mirrors() -> list[str]:
    statements: list[str] = []
    for table in (RUNS_OLAP, TASKS_OLAP, DAGS_OLAP):
        statements += [
            f"DROP TRIGGER IF EXISTS {table}_mirror ON {table}",
            f"DROP FUNCTION IF EXISTS {table}_mirror_fn()",
            f"DROP TABLE IF EXISTS {table}_new CASCADE",
        ]
    return statements


_DROP_PROGRESS = "DROP TABLE IF EXISTS v1_olap_backfill_progress"


def _down_v1_0_99_mirror_only(_catalog: Catalog) -> list[str]:
    return _drop_mirrors()


def _down_v1_0_99_with_progress(_catalog: Catalog) -> list[str]:
    return [_DROP_PROGRESS, *_drop_mirrors()]


def _patch_v1_0_99(ctx: PatchContext) -> list[str]:
    return [*ctx.upstream, *_restore_runs_tenant_index(ctx.catalog)]


def _down_v1_0_116(catalog: Catalog) -> list[str]:
    statements = [
        f"CREATE INDEX CONCURRENTLY IF NOT EXISTS "
        f"{quote_ident(f'ix_{name}_tenant_status_ins_at')} ON {quote_ident(name)} "
        "(tenant_id, readable_status, inserted_at DESC);"
        for name in partitions(catalog, RUNS_OLAP, 1)
    ]
    statements += [
        f"CREATE INDEX IF NOT EXISTS {quote_ident('ix_v1_runs_olap_tenant_status_ins_at')} "
        "ON v1_runs_olap (tenant_id, readable_status, inserted_at DESC);",
        f"DROP INDEX IF EXISTS {quote_ident('ix_v1_runs_olap_tenant_ins_at_status')};",
    ]
    return statements


def _port(
    version: int, file: str, shas: Iterable[str], build: StatementBuilder, summary: str
) -> Port:
    return Port(version=version, file=file, blob_shas=frozenset(shas), build=build, summary=summary)


_RUNS_TENANT_SUMMARY = (
    "drops ix_<leaf>_tenant_id CONCURRENTLY on each level-2 partition of v1_runs_olap, "
    "then ix_v1_runs_olap_tenant_id"
)
_MIRROR_SUMMARY = (
    "drops trigger <t>_mirror, function <t>_mirror_fn() and table <t>_new CASCADE "
    "for v1_runs_olap, v1_tasks_olap, v1_dags_olap"
)

PORTS: dict[int, list[Port]] = {
    V1_0_63: [
        _port(
            V1_0_63,
            "20251218153622_v1_0_63.go",
            {SHA_V1_0_63},
            _down_v1_0_66,
            _RUNS_TENANT_SUMMARY,
        )
    ],
    V1_0_66: [
        _port(
            V1_0_66,
            "20251226153622_v1_0_66.go",
            {SHA_V1_0_66},
            _down_v1_0_66,
            _RUNS_TENANT_SUMMARY,
        )
    ],
    V1_0_79_C: [
        _port(
            V1_0_79_C,
            "20260216000003_v1_0_79_c_backfill_slots.go",
            {SHA_V1_0_79_C},
            static(),
            "nothing (the slot backfill is kept)",
        )
    ],
    V1_0_92: [
        _port(
            V1_0_92,
            "20260324135804_v1_0_92.go",
            {SHA_V1_0_92},
            static(f"DROP INDEX IF EXISTS {quote_ident('v1_log_line_tenant_id_level_idx')}"),
            "drops v1_log_line_tenant_id_level_idx (with its partition indexes)",
        )
    ],
    V1_0_99: [
        _port(
            V1_0_99,
            "20260424190713_v1_0_99.go",
            SHAS_V1_0_99_MIRROR_ONLY,
            _down_v1_0_99_mirror_only,
            _MIRROR_SUMMARY,
        ),
        _port(
            V1_0_99,
            "20260424190713_v1_0_99.go",
            SHAS_V1_0_99_WITH_PROGRESS,
            _down_v1_0_99_with_progress,
            "drops v1_olap_backfill_progress, then " + _MIRROR_SUMMARY,
        ),
    ],
    V1_0_107: [
        _port(
            V1_0_107,
            "20260511164037_v1_0_107.go",
            {SHA_V1_0_107},
            static(
                "DROP INDEX IF EXISTS v1_payload_external_id_idx",
                "DROP INDEX IF EXISTS v1_payloads_olap_external_id_idx",
            ),
            "drops v1_payload_external_id_idx and v1_payloads_olap_external_id_idx",
        )
    ],
    V1_0_116: [
        _port(
            V1_0_116,
            "20260608141858_v1_0_116.go",
            {SHA_V1_0_116},
            _down_v1_0_116,
            "recreates ix_<partition>_tenant_status_ins_at CONCURRENTLY on each partition of "
            "v1_runs_olap and ix_v1_runs_olap_tenant_status_ins_at, drops "
            "ix_v1_runs_olap_tenant_ins_at_status",
        )
    ],
    V1_0_130: [
        _port(
            V1_0_130,
            "20260715190323_v1_0_130.go",
            SHAS_V1_0_130,
            static(
                f"DROP INDEX IF EXISTS {quote_ident('ix_v1_tasks_olap_idempotency_key')}",
                f"DROP INDEX IF EXISTS {quote_ident('ix_v1_runs_olap_idempotency_key')}",
            ),
            "drops ix_v1_tasks_olap_idempotency_key and ix_v1_runs_olap_idempotency_key",
        )
    ],
    V1_0_137: [
        _port(
            V1_0_137,
            "20260806002346_v1_0_137.go",
            {SHA_V1_0_137},
            static(f"DROP INDEX IF EXISTS {quote_ident('v1_event_external_id_seen_at')}"),
            "drops v1_event_external_id_seen_at (the rows its up deduplicated stay deleted)",
        )
    ],
    V1_0_142: [
        _port(
            V1_0_142,
            "20260814121501_v1_0_142.go",
            {SHA_V1_0_142},
            static(),
            "nothing (the triggered_at backfill is kept)",
        )
    ],
}

_RUNS_TENANT_REASON = (
    "leaf indexes attached to ix_v1_runs_olap_tenant_id cannot be dropped on their own: drop the "
    "parent index first, then any partition index left unattached"
)
_RESTORE_REASON = (
    "v1_0_99's ups before v0.83.57 drop ix_v1_runs_olap_tenant_id and no down recreates it: "
    "rebuild it where missing, as v1_0_66's up does"
)

PATCHED_PORTS: dict[int, list[Patch]] = {
    V1_0_63: [
        Patch(
            version=V1_0_63,
            blob_shas=frozenset({SHA_V1_0_63}),
            reason=_RUNS_TENANT_REASON,
            build=_patch_v1_0_66,
            transaction=False,
        )
    ],
    V1_0_66: [
        Patch(
            version=V1_0_66,
            blob_shas=frozenset({SHA_V1_0_66}),
            reason=_RUNS_TENANT_REASON,
            build=_patch_v1_0_66,
            transaction=False,
        )
    ],
    V1_0_99: [
        Patch(
            version=V1_0_99,
            blob_shas=SHAS_V1_0_99_MIRROR_ONLY | SHAS_V1_0_99_WITH_PROGRESS,
            reason=_RESTORE_REASON,
            build=_patch_v1_0_99,
            transaction=False,
        )
    ],
}

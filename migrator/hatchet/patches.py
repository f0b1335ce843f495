"""Corrected downs for Hatchet's SQL migrations whose upstream Down fails or leaves a schema
different from a fresh install of the previous release.

Each patch amends upstream's statements (it never carries a copy of them) and is keyed by the
upstream blob SHA it was written for: when upstream fixes its file, the SHA changes and
upstream's down runs as it is. ``--no-patches`` turns all of them off.
"""

from __future__ import annotations

from migrator.profile import Patch, amend


def _drop_every_overload(function: str) -> str:
    """One statement dropping every overload of ``function`` in the current schema."""
    return (
        "DO $hatchet_schema$\n"
        "DECLARE f regprocedure;\n"
        "BEGIN\n"
        "    FOR f IN SELECT p.oid::regprocedure FROM pg_proc p\n"
        "        WHERE p.proname = '" + function + "'\n"
        "          AND p.pronamespace = current_schema()::regnamespace\n"
        "    LOOP\n"
        "        EXECUTE 'DROP FUNCTION ' || f;\n"
        "    END LOOP;\n"
        "END\n"
        "$hatchet_schema$"
    )


_PATCHES = (
    Patch(
        version=20260719000944,  # _v1_0_132.sql
        blob_shas=frozenset({"9c37a529555c238f9ca71e6061f4b974a919c268"}),
        reason="drops column WorkflowVersion.idempotencyMethod before its type "
        "idempotency_method (upstream drops the type first, which fails)",
        build=amend(
            substitute=[("DROP TYPE idempotency_method;\n", "")],
            after=["DROP TYPE idempotency_method"],
        ),
    ),
    Patch(
        version=20260316185928,  # _v1_0_90.sql
        blob_shas=frozenset({"dfa207220d5383d6076a94d7eb0a4b198960b01a"}),
        reason="v1_otel_trace_lookup_table is already dropped by v1_0_91's up and not "
        "recreated by its down: drop it only if it exists",
        build=amend(
            substitute=[
                (
                    "DROP TABLE v1_otel_trace_lookup_table;",
                    "DROP TABLE IF EXISTS v1_otel_trace_lookup_table;",
                )
            ]
        ),
    ),
    Patch(
        version=20251015164344,  # _v1_0_51.sql
        blob_shas=frozenset({"6b654bf6715cd18fa8c23879bb7b16f5cce0532c"}),
        reason="drops every leftover overload of list_paginated_olap_payloads_for_offload "
        "(a later down recreates the old signature without dropping the new one) before "
        "DROP TYPE v1_payload_location_olap",
        build=amend(before=[_drop_every_overload("list_paginated_olap_payloads_for_offload")]),
    ),
    Patch(
        version=20250912162812,  # _v1_0_42.sql
        blob_shas=frozenset({"ffb311598b0919b2a190b60ca755ee91a4a16252"}),
        reason="drops every leftover overload of list_paginated_payloads_for_offload "
        "(a later down recreates the old signature without dropping the new one) before "
        "DROP TYPE v1_payload_type",
        build=amend(before=[_drop_every_overload("list_paginated_payloads_for_offload")]),
    ),
)

PATCHES: dict[int, list[Patch]] = {}
for _patch in _PATCHES:
    PATCHES.setdefault(_patch.version, []).append(_patch)

"""Corrected downs for Hatchet's SQL migrations whose upstream Down fails or leaves a schema
different from a fresh install of the previous release.

Each patch amends upstream's statements (it never carries a copy of them) and is keyed by the
upstream blob SHA it was written for: when upstream fixes its file, the SHA changes and
upstream's down runs as it is. ``--no-patches`` turns all of them off.
"""

from __future__ import annotations

from collections.abc import Sequence

from pglast import split

from migrator.datacheck import quote_literal
from migrator.enum_rebuild import label_usage_fixes, rebuild_statement
from migrator.profile import Patch, PatchBuilder, PatchContext, amend


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


def _restore_from_up(version: int, *markers: str) -> PatchBuilder:
    """A builder appending, after upstream's statements, the statements of ``version``'s up
    that contain each marker (in the order given): objects a later up dropped and its down
    forgot to recreate."""

    def build(ctx: PatchContext) -> list[str]:
        return [*ctx.upstream, *(ctx.up_statement(version, m) for m in markers)]

    return build


def _commands(sql: str, marker: str) -> list[str]:
    """The SQL commands of one goose statement that contain ``marker`` (pglast's split)."""
    try:
        return [str(c) for c in split(sql, with_parser=True) if marker in c]
    except Exception as exc:  # pglast's ParseError: the patch cannot be built, never a traceback
        raise LookupError(f"cannot split a statement into commands: {exc}") from None


def _up_command(ctx: PatchContext, version: int, marker: str) -> str:
    """The one SQL command of ``version``'s up that contains ``marker``, cut out of its statement
    (a StatementBegin block often holds many commands)."""
    hits = _commands(ctx.up_statement(version, marker), marker)
    if not hits:
        raise LookupError(f"no command of {version}'s up contains {marker!r}")
    return hits[-1]


def _restore_definitions(*sources: tuple[int, str]) -> PatchBuilder:
    """A builder putting back older definitions: for each ``(version, marker)``, the command of
    ``version``'s up containing ``marker`` replaces the command of upstream's down containing
    it (or is appended when the down has none), e.g. a function body the down recreates
    differently from the release it returns to."""

    def build(ctx: PatchContext) -> list[str]:
        statements = list(ctx.upstream)
        for version, marker in sources:
            older = _up_command(ctx, version, marker)
            for i, statement in enumerate(statements):
                hits = _commands(statement, marker) if marker in statement else []
                if hits:
                    statements[i] = statement.replace(hits[-1], older, 1)
                    break
            else:
                statements.append(older)
        return statements

    return build


_LIMIT_RESOURCE_DOWN_ORDER = (
    "'WORKFLOW_RUN',\n    'TASK_RUN',\n    'EVENT',\n    'WORKER',\n    'WORKER_SLOT',\n"
    "    'CRON',\n    'SCHEDULE',\n"
)
_LIMIT_RESOURCE_RELEASE_ORDER = (
    # v0_31_0 created the first five, v1_0_8 added TASK_RUN and WORKER_SLOT.
    "'WORKFLOW_RUN',\n    'EVENT',\n    'WORKER',\n    'CRON',\n    'SCHEDULE',\n"
    "    'TASK_RUN',\n    'WORKER_SLOT',\n"
)
_DROP_LIMIT_RESOURCE = 'DROP TYPE "LimitResource" CASCADE;'
_ALERT_RESOURCE_TO_OLD = (
    'ALTER TABLE "TenantResourceLimitAlert"\n'
    '    ALTER COLUMN resource TYPE "LimitResource_old"\n'
    '    USING resource::text::"LimitResource_old";\n\n'
)
_ALERT_RESOURCE_SQL = """SELECT 1 FROM pg_attribute
 WHERE attrelid = to_regclass('"TenantResourceLimitAlert"') AND attname = 'resource'
   AND NOT attisdropped"""


def _v1_0_69_down(ctx: PatchContext) -> list[str]:
    """v1_0_69's down with the labels in the order the releases created them and, when the
    column exists, "TenantResourceLimitAlert".resource converted instead of dropped by
    ``DROP TYPE ... CASCADE``."""
    substitute = [(_LIMIT_RESOURCE_DOWN_ORDER, _LIMIT_RESOURCE_RELEASE_ORDER)]
    if ctx.catalog.query(_ALERT_RESOURCE_SQL):
        substitute.append((_DROP_LIMIT_RESOURCE, _ALERT_RESOURCE_TO_OLD + _DROP_LIMIT_RESOURCE))
    return amend(substitute=substitute)(ctx)


_RELIST_DETACH = """DO $hatchet_relist$
DECLARE
    v_type oid := to_regtype(@TYPE@);
    c_remove CONSTANT text[] := @REMOVE@;
    v_found boolean;
    v_defs text[];
    r record;
    l record;
BEGIN
    CREATE TEMP TABLE hatchet_schema_relist (
        ord int GENERATED ALWAYS AS IDENTITY, parent text NOT NULL, rel text NOT NULL,
        bound text NOT NULL, partkey text NOT NULL, owner text NOT NULL, defs text[] NOT NULL,
        leaves jsonb NOT NULL);
    IF v_type IS NULL THEN
        RETURN;
    END IF;
    FOR r IN
        SELECT c.oid, format('%I.%I', n.nspname, c.relname) AS rel,
               h.inhparent::regclass::text AS parent, pg_get_expr(c.relpartbound, c.oid) AS bound,
               pg_get_partkeydef(c.oid) AS partkey, pg_get_userbyid(c.relowner) AS owner,
               (SELECT p.relispartition FROM pg_class p WHERE p.oid = h.inhparent) AS nested
          FROM pg_partitioned_table pt
          JOIN pg_class c ON c.oid = pt.partrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
          JOIN pg_inherits h ON h.inhrelid = c.oid
         WHERE EXISTS (SELECT FROM pg_attribute a
                        WHERE a.attrelid = c.oid AND a.attnum = ANY (pt.partattrs::int2[])
                          AND a.atttypid = v_type)
         ORDER BY c.oid
    LOOP
        IF r.nested OR EXISTS (SELECT FROM pg_partitioned_table pt
                                 JOIN pg_attribute a ON a.attrelid = pt.partrelid
                                WHERE pt.partrelid = r.parent::regclass
                                  AND a.attnum = ANY (pt.partattrs::int2[])
                                  AND a.atttypid = v_type) THEN
            RAISE EXCEPTION 'partition % of % is partitioned by type % at a depth this '
                'downgrade does not handle', r.rel, r.parent, @TYPE@;
        END IF;
        INSERT INTO pg_temp.hatchet_schema_relist (parent, rel, bound, partkey, owner, defs, leaves)
        SELECT r.parent, r.rel, r.bound, r.partkey, r.owner, '{}',
               coalesce(jsonb_agg(jsonb_build_object(
                   'rel', format('%I.%I', ln.nspname, lc.relname),
                   'bound', pg_get_expr(lc.relpartbound, lc.oid)) ORDER BY lc.oid), '[]')
          FROM pg_inherits lh
          JOIN pg_class lc ON lc.oid = lh.inhrelid
          JOIN pg_namespace ln ON ln.oid = lc.relnamespace
         WHERE lh.inhparent = r.oid
           AND NOT EXISTS (SELECT FROM unnest(c_remove) x
                            WHERE pg_get_expr(lc.relpartbound, lc.oid)
                                  = format('FOR VALUES IN (%L)', x));
        FOR l IN
            SELECT format('%I.%I', ln.nspname, lc.relname) AS rel,
                   pg_get_expr(lc.relpartbound, lc.oid) AS bound
              FROM pg_inherits lh
              JOIN pg_class lc ON lc.oid = lh.inhrelid
              JOIN pg_namespace ln ON ln.oid = lc.relnamespace
             WHERE lh.inhparent = r.oid
             ORDER BY lc.oid
        LOOP
            EXECUTE format('ALTER TABLE %s DETACH PARTITION %s', r.rel, l.rel);
            IF EXISTS (SELECT FROM unnest(c_remove) x
                        WHERE l.bound = format('FOR VALUES IN (%L)', x)) THEN
                EXECUTE format('SELECT EXISTS (SELECT FROM %s)', l.rel) INTO v_found;
                IF v_found THEN
                    RAISE EXCEPTION 'partition % still holds rows with a label to remove', l.rel;
                END IF;
                EXECUTE format('DROP TABLE %s', l.rel);
            ELSIF EXISTS (SELECT FROM unnest(c_remove) x
                           WHERE strpos(l.bound, quote_literal(x)) > 0) THEN
                RAISE EXCEPTION 'partition % (%) lists a label to remove with others', l.rel,
                    l.bound;
            END IF;
        END LOOP;
        EXECUTE format('ALTER TABLE %s DETACH PARTITION %s', r.parent, r.rel);
        -- Detached, its own constraints and indexes are all that is left: kept by name.
        v_defs := ARRAY(
            SELECT format('ALTER TABLE %s ADD CONSTRAINT %I %s', r.rel, con.conname,
                          pg_get_constraintdef(con.oid))
              FROM pg_constraint con
             WHERE con.conrelid = r.oid AND con.contype IN ('p', 'u', 'x')
             ORDER BY con.contype <> 'p', con.oid)
          || ARRAY(
            SELECT regexp_replace(pg_get_indexdef(i.indexrelid), ' ON ONLY ', ' ON ')
              FROM pg_index i
             WHERE i.indrelid = r.oid
               AND NOT EXISTS (SELECT FROM pg_constraint con WHERE con.conindid = i.indexrelid
                                  AND con.conrelid = r.oid)
             ORDER BY i.indexrelid);
        UPDATE pg_temp.hatchet_schema_relist SET defs = v_defs WHERE rel = r.rel;
        EXECUTE format('DROP TABLE %s', r.rel);
    END LOOP;
END
$hatchet_relist$"""

_RELIST_ATTACH = """DO $hatchet_relist$
DECLARE
    v_step text;
    r record;
    l record;
BEGIN
    FOR r IN SELECT * FROM pg_temp.hatchet_schema_relist ORDER BY ord LOOP
        EXECUTE format('CREATE TABLE %s (LIKE %s) PARTITION BY %s', r.rel, r.parent, r.partkey);
        EXECUTE format('ALTER TABLE %s OWNER TO %I', r.rel, r.owner);
        FOREACH v_step IN ARRAY r.defs LOOP
            EXECUTE v_step;
        END LOOP;
        FOR l IN SELECT * FROM jsonb_to_recordset(r.leaves) AS x(rel text, bound text) LOOP
            EXECUTE format('ALTER TABLE %s ATTACH PARTITION %s %s', r.rel, l.rel, l.bound);
        END LOOP;
        EXECUTE format('ALTER TABLE %s ATTACH PARTITION %s %s', r.parent, r.rel, r.bound);
    END LOOP;
    DROP TABLE pg_temp.hatchet_schema_relist;
END
$hatchet_relist$"""


def _enum_rebuild_through_partitions(type_name: str, labels: Sequence[str]) -> PatchBuilder:
    """A builder removing ``labels`` from enum ``type_name`` when a column of it is the
    partition key of partitions of a table (PostgreSQL cannot change a partition key's type,
    so the generic rebuild refuses): the rows holding the labels are deleted (the same
    :func:`label_usage_fixes` the planner announces), each such partition is detached from its
    parent and its own partitions from it (those listing only removed labels, empty by then,
    are dropped), and dropped; the type is rebuilt; each partition is created again with its
    constraints and indexes under their names, its partitions attached back, and it is
    attached back to its parent. The planner's own rebuild, after this, has nothing to do."""

    remove = "ARRAY[" + ", ".join(quote_literal(x) for x in labels) + "]::text[]"

    def fill(template: str) -> str:
        return template.replace("@TYPE@", quote_literal(type_name)).replace("@REMOVE@", remove)

    def build(ctx: PatchContext) -> list[str]:
        deletes = [f.statement for f in label_usage_fixes(ctx.catalog, type_name, list(labels))]
        return [
            *ctx.upstream,
            *deletes,
            fill(_RELIST_DETACH),
            rebuild_statement(type_name, list(labels)),
            fill(_RELIST_ATTACH),
        ]

    return build


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
        version=20260323184100,  # _v1_0_91.sql
        blob_shas=frozenset({"f29b4de1d3e52bbb4ebb8e0d16eccacf46b39ec1"}),
        reason="recreates v1_otel_trace and v1_otel_trace_lookup_table (with v1_0_90's "
        "indexes and partitions), which v1_0_91's up drops and its down forgets",
        reads=(20260316185928,),
        build=_restore_from_up(
            20260316185928,  # _v1_0_90.sql
            "CREATE TABLE v1_otel_trace (",
            "CREATE INDEX idx_v1_otel_trace_task_lookup",
            "CREATE INDEX idx_v1_otel_trace_workflow_lookup",
            "create_v1_range_partition('v1_otel_trace'::TEXT, NOW()::DATE)",
            "create_v1_range_partition('v1_otel_trace'::TEXT, (NOW()",
            "CREATE TABLE v1_otel_trace_lookup_table (",
            "create_v1_range_partition('v1_otel_trace_lookup_table'::TEXT, NOW()::DATE)",
            "create_v1_range_partition('v1_otel_trace_lookup_table'::TEXT, (NOW()",
        ),
    ),
    Patch(
        version=20260417212701,  # _v1_0_97.sql
        blob_shas=frozenset({"64a287aba3367912abba7fb4e241da53abe807af"}),
        reason="does not add v1_durable_event_log_entry.readable_summary, which no up ever "
        "created (the up only drops it IF EXISTS)",
        build=amend(substitute=[(",\n    ADD COLUMN readable_summary TEXT", "")]),
    ),
    Patch(
        version=20260313020633,  # _v1_0_87_readable_status_enum.sql
        blob_shas=frozenset({"eb36ec204860a50b6a6cf19362cedbecf010e4c8"}),
        reason="removes label EVICTED from v1_readable_status_olap (upstream's down is empty): "
        "the OLAP day partitions, partitioned by readable_status, are detached and recreated "
        "around the rebuild, their EVICTED partitions dropped",
        build=_enum_rebuild_through_partitions("v1_readable_status_olap", ["EVICTED"]),
    ),
    Patch(
        version=20260313020635,  # _v1_0_89_olap_evicted_status.sql
        blob_shas=frozenset({"f191e56d3a69d551f6b56b7a746a56184dda7818"}),
        reason="restores create_v1_olap_partition_with_date_and_status exactly as v1_0_0 "
        "created it (upstream's copy differs)",
        reads=(20250224171706,),
        build=_restore_definitions(
            (
                20250224171706,
                "CREATE OR REPLACE FUNCTION create_v1_olap_partition_with_date_and_status(",
            )
        ),
    ),
    Patch(
        version=20260302193424,  # _v1_0_83.sql
        blob_shas=frozenset({"e1aba014646f36e40116f848439f9488b2f90f99"}),
        reason="restores v1_retry_queue_item_delete_function exactly as v1_0_0 created it "
        "(upstream's copy differs)",
        reads=(20250224171706,),
        build=_restore_definitions(
            (20250224171706, "CREATE OR REPLACE FUNCTION v1_retry_queue_item_delete_function(")
        ),
    ),
    Patch(
        version=20260128120000,  # _v1_0_71.sql
        blob_shas=frozenset({"f05d705943e966c566e60d81e160eed649eb9f46"}),
        reason="restores cleanup_workflow_concurrency_slots as v1_0_49 created it (upstream's "
        "down recreates a different body)",
        reads=(20251008083410,),
        build=_restore_definitions(
            (20251008083410, "CREATE OR REPLACE FUNCTION cleanup_workflow_concurrency_slots(")
        ),
    ),
    Patch(
        version=20260119123835,  # _v1_0_69.sql
        blob_shas=frozenset(
            {
                "2f5dddb4d66199dab3e8932a8ba54ca35074ca61",
                "92a5ee97edf68d2b0d66146e589bba6fc573035e",
                "fe7e8c96fd5f1158d3bffa802dd7c7263cf87a90",
            }
        ),
        reason='converts "TenantResourceLimitAlert".resource too (upstream\'s DROP TYPE '
        "CASCADE drops the column) and recreates LimitResource with the releases' label order",
        build=_v1_0_69_down,
    ),
    Patch(
        version=20251113195351,  # _v1_0_53.sql
        blob_shas=frozenset({"73db168ecab570d2b69fdc8c1e6b657ba3203aeb"}),
        reason="restores v1_tasks_olap_insert_function exactly as v1_0_0 created it "
        "(upstream's down adds an ON CONFLICT the older release does not have)",
        reads=(20250224171706,),
        build=_restore_definitions(
            (20250224171706, "CREATE OR REPLACE FUNCTION v1_tasks_olap_insert_function(")
        ),
    ),
    Patch(
        version=20250507193114,  # _v1_0_17.sql
        blob_shas=frozenset({"68c4fc995f2261c100eab5a226a5515b76a089f8"}),
        reason="restores v1_task_update_function exactly as v1_0_5 created it (upstream's "
        "copy differs)",
        reads=(20250319192344,),  # _v1_0_5.sql
        build=_restore_definitions(
            (20250319192344, "CREATE OR REPLACE FUNCTION v1_task_update_function(")
        ),
    ),
    Patch(
        version=20250414130637,  # _v1_0_12.sql
        blob_shas=frozenset({"93531a812fdf5fde476c66d4b3343a1d4a6f4e9a"}),
        reason="adds WorkflowRunTriggeredBy_cronParentId_cronSchedule_cronName_fkey back NOT "
        "VALID, as v0_52_0 created it (upstream validates it, which rows may fail)",
        build=amend(substitute=[("ON UPDATE CASCADE;", "ON UPDATE CASCADE NOT VALID;")]),
    ),
    Patch(
        version=20250320210345,  # _v1_0_6.sql
        blob_shas=frozenset({"10a3acd4ce4eb51162331064769afae482a74d3e"}),
        reason="restores get_refill_value exactly as v0_19_0 created it (upstream's copy differs)",
        reads=(20240402034010,),  # _v0_19_0.sql
        build=_restore_definitions(
            (20240402034010, 'CREATE OR REPLACE FUNCTION get_refill_value(rate_limit "RateLimit")')
        ),
    ),
    Patch(
        version=20250313202558,  # _v1_0_2.sql
        blob_shas=frozenset({"3bf05a148d9060cc6ae1a07f4518df369413a509"}),
        reason="provides the missing down: restores after_v1_concurrency_slot_insert_function "
        "and after_v1_concurrency_slot_delete_function as v1_0_0 created them",
        reads=(20250224171706,),
        build=_restore_definitions(
            (
                20250224171706,
                "CREATE OR REPLACE FUNCTION after_v1_concurrency_slot_insert_function(",
            ),
            (
                20250224171706,
                "CREATE OR REPLACE FUNCTION after_v1_concurrency_slot_delete_function(",
            ),
        ),
    ),
    Patch(
        version=20250312151904,  # _v1_0_1.sql
        blob_shas=frozenset({"728d3df8f07c6a27ba322e65d2621198ea1fb344"}),
        reason="provides the missing down: recreates after_v1_task_runtime_delete_function and "
        "its trigger after_v1_task_runtime_delete from v1_0_0, which the up drops",
        reads=(20250224171706,),
        build=_restore_definitions(
            (20250224171706, "CREATE OR REPLACE FUNCTION after_v1_task_runtime_delete_function("),
            (20250224171706, "CREATE TRIGGER after_v1_task_runtime_delete\n"),
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
        "DROP TYPE v1_payload_type, and find_matching_tenants_in_payload_wal_partition, "
        "which the up creates and upstream's down forgets",
        build=amend(
            before=[
                _drop_every_overload("list_paginated_payloads_for_offload"),
                _drop_every_overload("find_matching_tenants_in_payload_wal_partition"),
            ]
        ),
    ),
    Patch(
        version=20260722000000,  # batching_consolidated_v1_0_133.sql (v0.98.2 .. v0.104.7)
        blob_shas=frozenset(
            {
                "78612e541e98997e401c675eb6f8be2030db4f82",
                "a9777932fa1ec90be694b30265a94523593986fb",
                "76f60e7810bf6cd182c689b30c5104ff16837975",
                "c5dbc08a9571ce5778ce10240569dd2db079fab6",
            }
        ),
        reason="restores v1_task_update_function() as v1_0_106's up defined it (upstream's "
        "down restores a body that still inserts batch_key, the column it drops)",
        reads=(20260509015727,),  # _v1_0_106.sql
        build=_restore_definitions(
            (20260509015727, "CREATE OR REPLACE FUNCTION v1_task_update_function(")
        ),
    ),
    Patch(
        version=20260718000000,  # batching_consolidated_v1_0_132.sql (v0.98.0, v0.98.1)
        blob_shas=frozenset({"78612e541e98997e401c675eb6f8be2030db4f82"}),
        reason="restores v1_task_update_function() as v1_0_106's up defined it (upstream's "
        "down restores a body that still inserts batch_key, the column it drops)",
        reads=(20260509015727,),  # _v1_0_106.sql
        build=_restore_definitions(
            (20260509015727, "CREATE OR REPLACE FUNCTION v1_task_update_function(")
        ),
    ),
    Patch(
        version=20260702145450,  # _v1_0_123.sql
        blob_shas=frozenset({"f16ec97e0eeaf0c71935c5b0301840e7a4e69744"}),
        reason="restores after_v1_concurrency_slot_insert_function() exactly as v1_0_11's up "
        "defined it (upstream's down recreates it without one of its comments)",
        reads=(20250407012633,),  # _v1_0_11.sql
        build=_restore_definitions(
            (
                20250407012633,
                "CREATE OR REPLACE FUNCTION after_v1_concurrency_slot_insert_function(",
            )
        ),
    ),
    Patch(
        version=20260509015727,  # _v1_0_106.sql
        blob_shas=frozenset({"1c8f644dc50b24cb5dbff62591f71b99b5912711"}),
        reason="restores v1_task_insert_function() exactly as v1_0_83's up defined it "
        "(upstream's down differs in comments/whitespace)",
        reads=(20260302193424,),  # _v1_0_83.sql
        build=_restore_definitions(
            (20260302193424, "CREATE OR REPLACE FUNCTION v1_task_insert_function(")
        ),
    ),
    Patch(
        version=20260511174313,  # _v1_0_108.sql
        blob_shas=frozenset(
            {
                "b3fdec23b22cd12f68f0e8a5aaaa9a491f03bcc9",
                "66736b1c8f4da8ceb67e940cc1c9638c623951e2",
                "6aa634d2b56776b4a85983708f5a60ebba9fdfbc",
            }
        ),
        reason="restores create_payload_offload_range_chunks, list_paginated_payloads_for_offload "
        "and list_paginated_olap_payloads_for_offload exactly as v1_0_59's and v1_0_60's ups "
        "defined them (upstream's down differs in comments/whitespace)",
        reads=(20251212170748, 20251216163945),  # _v1_0_59.sql, _v1_0_60.sql
        # The down says CREATE FUNCTION, the ups CREATE OR REPLACE FUNCTION. The DROP FUNCTION
        # before each CREATE (in the down, and in v1_0_60's up) also holds the marker: the last
        # command holding it, the CREATE, is the one taken.
        build=_restore_definitions(
            (20251212170748, "FUNCTION create_payload_offload_range_chunks("),
            (20251216163945, "FUNCTION list_paginated_payloads_for_offload("),
            (20251216163945, "FUNCTION list_paginated_olap_payloads_for_offload("),
        ),
    ),
)

PATCHES: dict[int, list[Patch]] = {}
for _patch in _PATCHES:
    PATCHES.setdefault(_patch.version, []).append(_patch)

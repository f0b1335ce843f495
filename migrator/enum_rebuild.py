"""Take enum labels back out of an enum type when a downgrade reverts the ups that added them.

PostgreSQL has no ``ALTER TYPE ... DROP VALUE``: a label added by an up
(``ALTER TYPE t ADD VALUE 'X'``) survives its down, and re-upgrading later fails on every up that
adds it again without ``IF NOT EXISTS``. The only way back is to recreate the type without those
labels. This module does that generically:

* :func:`added_enum_labels` reads an up's statements with pglast (PostgreSQL's own parser) and
  returns the labels it adds, per type name.
* :func:`rebuild_statement` returns one ``DO`` block that recreates the type without the labels.
  It finds the objects depending on the type when it runs (inside the step's transaction, after
  earlier steps may have dropped columns or functions), refuses with a clear error while any row
  still holds a label to remove, and otherwise rebuilds the type and its dependents so the
  catalog matches a database where the type was created with the remaining labels only.
* :func:`label_usage_fixes` plans (read-only) the :class:`~migrator.profile.DataFix` rows that
  must go first, and :func:`count` counts them.

Type names are dotted and unquoted, as PostgreSQL resolves them: ``TenantMemberRole`` for
``"TenantMemberRole"``, ``public.status`` for ``public.Status``. A name without a schema is
resolved through the ``search_path`` when the statement runs. Names holding a ``.`` are not
supported.
"""

from __future__ import annotations

from typing import Any

from pglast import ast

from migrator.profile import Catalog, DataFix
from migrator.sqlast import parse_statements

__all__ = ["added_enum_labels", "label_usage_fixes", "rebuild_statement"]


def _dotted(names: Any) -> str:
    return ".".join(str(getattr(n, "sval", n)) for n in names or ())


def added_enum_labels(up_statements: list[str]) -> dict[str, list[str]]:
    """The enum labels the up adds, per type name (dotted and unquoted, as written), in order.

    Only top-level ``ALTER TYPE ... ADD VALUE`` statements count (with or without
    ``IF NOT EXISTS``, ``BEFORE`` or ``AFTER``): statements inside ``DO`` blocks and function
    bodies are strings to the parser and are not read. Labels added to a type the same up creates
    (``CREATE TYPE ... AS ENUM``) are not additions, since the down drops that type. Statements
    pglast cannot parse are skipped (:func:`migrator.analysis.step_warnings` reports them).
    """
    added: dict[str, list[str]] = {}
    created: set[str] = set()
    for sql in up_statements:
        # None: unparsable SQL is reported by the analysis, never fatal here
        for stmt in parse_statements(sql) or ():
            if isinstance(stmt, ast.CreateEnumStmt):
                name = _dotted(stmt.typeName)
                created.add(name)
                added.pop(name, None)
            elif (
                isinstance(stmt, ast.AlterEnumStmt)
                and stmt.newVal is not None
                and stmt.oldVal is None
            ):
                name = _dotted(stmt.typeName)
                if name in created:
                    continue
                labels = added.setdefault(name, [])
                if stmt.newVal not in labels:
                    labels.append(str(stmt.newVal))
    return added


def _literal(value: str) -> str:
    """A SQL string literal for ``value`` that holds no ``%`` (so no driver takes it for a
    placeholder); needs ``standard_conforming_strings`` on, PostgreSQL's default."""
    if "%" not in value:
        return "'" + value.replace("'", "''") + "'"
    escaped = value.replace("\\", "\\\\").replace("'", "''").replace("%", "\\0025")
    return "U&'" + escaped + "'"


def _regtype_name(type_name: str) -> str:
    """``type_name`` as ``to_regtype`` input: every dotted part double-quoted."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in type_name.split("."))


def _unique(labels: list[str]) -> list[str]:
    return list(dict.fromkeys(labels))


# Given a node of the dependency walk (w.kind, w.obj, w.sub), the pg_depend rows of the objects
# that must be rebuilt with it. Everything is looked up by identity so pg_depend's index is used.
_CHILDREN = """
SELECT d.classid, d.objid, d.objsubid
  FROM (SELECT 'pg_type'::regclass::oid, v_type, NULL::int WHERE w.kind = 'type'
        UNION ALL SELECT 'pg_type'::regclass::oid, v_array, NULL::int WHERE w.kind = 'type'
        UNION ALL SELECT 'pg_class'::regclass::oid, w.obj, w.sub WHERE w.kind = 'column'
        UNION ALL SELECT 'pg_class'::regclass::oid, w.obj, NULL::int
                   WHERE w.kind IN ('view', 'index')
        UNION ALL SELECT 'pg_type'::regclass::oid, c.reltype, NULL::int
                    FROM pg_class c WHERE w.kind = 'view' AND c.oid = w.obj
        UNION ALL SELECT 'pg_proc'::regclass::oid, w.obj, NULL::int WHERE w.kind = 'function'
        UNION ALL SELECT 'pg_constraint'::regclass::oid, w.obj, NULL::int
                   WHERE w.kind = 'constraint'
        UNION ALL SELECT 'pg_class'::regclass::oid, con.conindid, NULL::int
                    FROM pg_constraint con
                   WHERE w.kind = 'constraint' AND con.oid = w.obj
                     AND con.contype IN ('p', 'u', 'x')
       ) ref(classid, objid, objsubid)
  JOIN pg_depend d
    ON d.refclassid = ref.classid AND d.refobjid = ref.objid
   AND (ref.objsubid IS NULL OR d.refobjsubid = ref.objsubid) AND d.deptype = 'n'
UNION ALL
SELECT 'pg_attrdef'::regclass::oid, ad.oid, 0
  FROM pg_attrdef ad WHERE w.kind = 'column' AND ad.adrelid = w.obj AND ad.adnum = w.sub
UNION ALL
SELECT 'pg_constraint'::regclass::oid, con.oid, 0
  FROM pg_constraint con
 WHERE w.kind = 'column' AND con.contype = 'f'
   AND ((con.conrelid = w.obj AND w.sub = ANY (con.conkey))
        OR (con.confrelid = w.obj AND w.sub = ANY (con.confkey)))
UNION ALL
SELECT 'pg_class'::regclass::oid, i.indexrelid, 0
  FROM pg_index i WHERE w.kind = 'view' AND i.indrelid = w.obj
UNION ALL
SELECT 'pg_trigger'::regclass::oid, tg.oid, 0
  FROM pg_trigger tg WHERE w.kind = 'view' AND tg.tgrelid = w.obj AND NOT tg.tgisinternal
UNION ALL
SELECT 'pg_rewrite'::regclass::oid, rw.oid, 0
  FROM pg_rewrite rw WHERE w.kind = 'view' AND rw.ev_class = w.obj AND rw.rulename <> '_RETURN'
"""

# One pg_depend row (raw.classid, raw.objid, raw.objsubid) as the object that is rebuilt:
# (kind, oid, sub). 'skip' is rebuilt through its parent (partition indexes, inherited and
# cloned constraints, cloned and internal triggers); 'unsupported' stops the rebuild.
_NORMALIZE = """
SELECT CASE WHEN c.relkind IN ('r', 'p') AND raw.objsubid > 0 THEN 'column'
            WHEN c.relkind IN ('v', 'm') THEN 'view'
            WHEN c.relkind IN ('i', 'I') AND con.oid IS NOT NULL THEN 'constraint'
            WHEN c.relkind IN ('i', 'I') AND c.relispartition THEN 'skip'
            WHEN c.relkind IN ('i', 'I') THEN 'index'
            ELSE 'unsupported' END,
       coalesce(con.oid, c.oid),
       CASE WHEN c.relkind IN ('r', 'p') THEN raw.objsubid ELSE 0 END
  FROM pg_class c
  LEFT JOIN pg_index i ON i.indexrelid = c.oid
  LEFT JOIN pg_constraint con
    ON con.conindid = c.oid AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x')
 WHERE raw.classid = 'pg_class'::regclass AND c.oid = raw.objid
UNION ALL
SELECT CASE WHEN rw.rulename = '_RETURN' AND c.relkind IN ('v', 'm') THEN 'view'
            ELSE 'unsupported' END,
       CASE WHEN rw.rulename = '_RETURN' AND c.relkind IN ('v', 'm') THEN rw.ev_class
            ELSE rw.oid END,
       0
  FROM pg_rewrite rw JOIN pg_class c ON c.oid = rw.ev_class
 WHERE raw.classid = 'pg_rewrite'::regclass AND rw.oid = raw.objid
UNION ALL
SELECT CASE WHEN p.prokind = 'a' THEN 'unsupported' ELSE 'function' END, p.oid, 0
  FROM pg_proc p WHERE raw.classid = 'pg_proc'::regclass AND p.oid = raw.objid
UNION ALL
SELECT CASE WHEN con.conrelid = 0 THEN 'unsupported'
            WHEN con.conparentid <> 0 OR con.contype = 't' THEN 'skip'
            WHEN con.coninhcount > 0 AND NOT con.conislocal THEN 'skip'
            ELSE 'constraint' END,
       con.oid, 0
  FROM pg_constraint con WHERE raw.classid = 'pg_constraint'::regclass AND con.oid = raw.objid
UNION ALL
SELECT CASE WHEN tg.tgisinternal OR tg.tgparentid <> 0 THEN 'skip' ELSE 'trigger' END, tg.oid, 0
  FROM pg_trigger tg WHERE raw.classid = 'pg_trigger'::regclass AND tg.oid = raw.objid
UNION ALL
SELECT CASE WHEN a.attgenerated <> '' OR c.relkind NOT IN ('r', 'p') THEN 'unsupported'
            ELSE 'default' END,
       ad.oid, 0
  FROM pg_attrdef ad
  JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
  JOIN pg_class c ON c.oid = ad.adrelid
 WHERE raw.classid = 'pg_attrdef'::regclass AND ad.oid = raw.objid
UNION ALL
SELECT 'unsupported', raw.objid, raw.objsubid
 WHERE raw.classid NOT IN ('pg_class'::regclass, 'pg_rewrite'::regclass, 'pg_proc'::regclass,
                           'pg_constraint'::regclass, 'pg_trigger'::regclass,
                           'pg_attrdef'::regclass)
"""


def _acl(word: str, name: str, acl: str) -> str:
    """plpgsql appending to v_creates the grants that give ``name`` the ACL ``acl`` again."""
    return f"""
            IF {acl} IS NOT NULL THEN
                v_creates := array_append(v_creates,
                    format('REVOKE ALL ON {word} %s FROM PUBLIC', {name}));
                v_creates := v_creates || ARRAY(
                    SELECT format('GRANT %s ON {word} %s TO %s%s', x.privilege_type, {name},
                                  CASE WHEN x.grantee = 0 THEN 'PUBLIC'
                                       ELSE quote_ident(pg_get_userbyid(x.grantee)) END,
                                  CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION'
                                       ELSE '' END)
                      FROM aclexplode({acl}) x);
            END IF;"""


_TEMPLATE = """DO @TAG@
DECLARE
    c_type CONSTANT text := @TYPE@;
    c_remove CONSTANT text[] := @REMOVE@;
    v_type oid;
    v_array oid;
    v_typtype "char";
    v_namespace oid;
    v_schema text;
    v_name text;
    v_owner text;
    v_acl aclitem[];
    v_comment text;
    v_qualified text;
    v_tmp text;
    v_present text[];
    v_keep text[];
    v_found boolean;
    v_word text;
    v_problems text[] := '{}';
    v_drops text[] := '{}';
    v_creates text[] := '{}';
    v_bodies text[] := '{}';
    v_alters text[] := '{}';
    v_functions oid[] := '{}';
    v_renames jsonb;
    v_moved oid[] := '{}';
    v_names text[] := '{}';
    v_index oid;
    v_rel oid;
    v_i int;
    v_step text := '';
    v_message text;
    v_detail text;
    v_state text;
    r record;
    s record;
BEGIN
    v_type := to_regtype(c_type);
    IF v_type IS NULL THEN
        RETURN;
    END IF;
    SELECT ty.typtype, ty.typarray, ty.typnamespace, n.nspname, ty.typname,
           pg_get_userbyid(ty.typowner), ty.typacl, obj_description(ty.oid, 'pg_type')
      INTO v_typtype, v_array, v_namespace, v_schema, v_name, v_owner, v_acl, v_comment
      FROM pg_type ty JOIN pg_namespace n ON n.oid = ty.typnamespace
     WHERE ty.oid = v_type;
    IF v_typtype <> 'e' THEN
        RAISE EXCEPTION 'enum rebuild: % is not an enum type', c_type;
    END IF;
    v_qualified := format('%I.%I', v_schema, v_name);
    SELECT array_agg(e.enumlabel ORDER BY e.enumsortorder)
               FILTER (WHERE e.enumlabel = ANY (c_remove)),
           coalesce(array_agg(e.enumlabel ORDER BY e.enumsortorder)
                        FILTER (WHERE e.enumlabel <> ALL (c_remove)), '{}')
      INTO v_present, v_keep
      FROM pg_enum e WHERE e.enumtypid = v_type;
    IF v_present IS NULL THEN
        RETURN;
    END IF;

    -- 1. No row may hold a label to remove (tables and partitioned parents; a parent's scan
    --    covers its partitions and inheritance children).
    FOR r IN
        SELECT a.attrelid::regclass::text AS rel, a.attname, a.atttypid = v_array AS is_array
          FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
         WHERE a.atttypid IN (v_type, v_array) AND a.attnum > 0 AND NOT a.attisdropped
           AND a.attinhcount = 0 AND c.relkind IN ('r', 'p')
         ORDER BY 1, 2
    LOOP
        EXECUTE format(CASE WHEN r.is_array
                            THEN 'SELECT EXISTS (SELECT FROM %s WHERE %I && %L::%s[])'
                            ELSE 'SELECT EXISTS (SELECT FROM %s WHERE %I = ANY (%L::%s[]))' END,
                       r.rel, r.attname, v_present, v_qualified)
           INTO v_found;
        IF v_found THEN
            v_problems := array_append(v_problems, format('%s.%I', r.rel, r.attname));
        END IF;
    END LOOP;
    IF cardinality(v_problems) > 0 THEN
        RAISE EXCEPTION 'enum rebuild of %: rows still use label(s) % in column(s) %',
            v_qualified,
            array_to_string(ARRAY(SELECT quote_literal(x) FROM unnest(v_present) x), ', '),
            array_to_string(v_problems, ', ')
            USING HINT = 'Delete or change those rows first; nothing was changed.';
    END IF;

    -- 2. Everything that must be dropped and recreated around the type, deepest dependents
    --    first; definitions are read now, while they still name the type as it is.
    FOR r IN
        WITH RECURSIVE walk(kind, obj, sub, classid, objid, objsubid, depth, path) AS (
            SELECT 'type'::text, v_type, 0, 'pg_type'::regclass::oid, v_type, 0, 0,
                   ARRAY['type:' || v_type]
          UNION ALL
            SELECT nz.kind, nz.obj, nz.sub, raw.classid, raw.objid, raw.objsubid, w.depth + 1,
                   w.path || (nz.kind || ':' || nz.obj || ':' || nz.sub)
              FROM walk w
             CROSS JOIN LATERAL (@CHILDREN@) raw(classid, objid, objsubid)
             CROSS JOIN LATERAL (@NORMALIZE@) nz(kind, obj, sub)
             WHERE w.kind IN ('type', 'column', 'view', 'function', 'index', 'constraint')
               AND w.depth < 64
               AND NOT (nz.kind || ':' || nz.obj || ':' || nz.sub) = ANY (w.path)
        )
        SELECT kind, obj, sub, max(depth) AS depth,
               string_agg(DISTINCT pg_describe_object(classid, objid, objsubid), ', ') AS what
          FROM walk
         WHERE kind <> 'type'
         GROUP BY kind, obj, sub
         ORDER BY max(depth), kind, obj, sub
    LOOP
        CASE r.kind
        WHEN 'skip' THEN
            NULL;
        WHEN 'unsupported' THEN
            v_problems := array_append(v_problems, r.what);
        WHEN 'column' THEN
            IF NOT EXISTS (SELECT FROM pg_attribute a
                            WHERE a.attrelid = r.obj AND a.attnum = r.sub
                              AND a.atttypid IN (v_type, v_array)) THEN
                v_problems := array_append(v_problems, r.what);
            ELSIF EXISTS (SELECT FROM pg_depend d
                           WHERE d.classid = 'pg_class'::regclass AND d.objid = r.obj
                             AND d.objsubid = r.sub AND d.refclassid = 'pg_class'::regclass
                             AND d.refobjid = r.obj AND d.refobjsubid = 0
                             AND d.deptype = 'i') THEN
                -- PostgreSQL cannot change the type of a partition key column.
                v_problems := array_append(v_problems, r.what || ' (a partition key)');
            END IF;
        WHEN 'view' THEN
            SELECT c.relkind, c.oid::regclass::text AS qname,
                   regexp_replace(pg_get_viewdef(c.oid), ';\\s*$', '') AS def,
                   c.reloptions, c.relispopulated, pg_get_userbyid(c.relowner) AS owner,
                   c.relacl AS acl, obj_description(c.oid, 'pg_class') AS cmt
              INTO s FROM pg_class c WHERE c.oid = r.obj;
            v_word := CASE s.relkind WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'VIEW' END;
            v_drops := array_prepend(format('DROP %s %s', v_word, s.qname), v_drops);
            v_creates := array_append(v_creates, format('CREATE %s %s%s AS %s%s',
                v_word, s.qname,
                CASE WHEN s.reloptions IS NULL THEN ''
                     ELSE format(' WITH (%s)', array_to_string(s.reloptions, ', ')) END,
                s.def,
                CASE WHEN s.relkind <> 'm' THEN ''
                     WHEN s.relispopulated THEN ' WITH DATA' ELSE ' WITH NO DATA' END));
            v_creates := array_append(v_creates,
                format('ALTER %s %s OWNER TO %I', v_word, s.qname, s.owner));
            IF s.cmt IS NOT NULL THEN
                v_creates := array_append(v_creates,
                    format('COMMENT ON %s %s IS %L', v_word, s.qname, s.cmt));
            END IF;
            v_creates := v_creates || ARRAY(
                SELECT format('COMMENT ON COLUMN %s.%I IS %L', s.qname, a.attname,
                              col_description(a.attrelid, a.attnum))
                  FROM pg_attribute a
                 WHERE a.attrelid = r.obj AND a.attnum > 0
                   AND col_description(a.attrelid, a.attnum) IS NOT NULL
                 ORDER BY a.attnum);@VIEW_ACL@
        WHEN 'function' THEN
            SELECT p.oid::regprocedure::text AS sig,
                   CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END AS word,
                   pg_get_functiondef(p.oid) AS def, pg_get_userbyid(p.proowner) AS owner,
                   p.proacl AS acl, obj_description(p.oid, 'pg_proc') AS cmt
              INTO s FROM pg_proc p WHERE p.oid = r.obj;
            v_functions := array_append(v_functions, r.obj);
            v_drops := array_prepend(format('DROP %s %s', s.word, s.sig), v_drops);
            v_creates := array_append(v_creates, s.def);
            v_creates := array_append(v_creates,
                format('ALTER %s %s OWNER TO %I', s.word, s.sig, s.owner));
            IF s.cmt IS NOT NULL THEN
                v_creates := array_append(v_creates,
                    format('COMMENT ON %s %s IS %L', s.word, s.sig, s.cmt));
            END IF;@FUNCTION_ACL@
        WHEN 'index' THEN
            SELECT c.oid::regclass::text AS qname, c.relname, c.relkind,
                   i.indrelid::regclass::text AS rel, i.indisclustered,
                   obj_description(c.oid, 'pg_class') AS cmt
              INTO s FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid
             WHERE c.oid = r.obj;
            v_drops := array_prepend(format('DROP INDEX %s', s.qname), v_drops);
            IF s.relkind = 'I' THEN
                -- The partitions' indexes first, deepest first, under their own names: creating
                -- the parent's index attaches them instead of building new ones.
                v_creates := v_creates || ARRAY(
                    WITH RECURSIVE tree(oid, level) AS (
                        SELECT h.inhrelid, 1 FROM pg_inherits h WHERE h.inhparent = r.obj
                      UNION ALL
                        SELECT h.inhrelid, tree.level + 1
                          FROM pg_inherits h JOIN tree ON h.inhparent = tree.oid)
                    SELECT regexp_replace(pg_get_indexdef(tree.oid), ' ON ONLY ', ' ON ')
                      FROM tree ORDER BY tree.level DESC, tree.oid);
            END IF;
            v_creates := array_append(v_creates,
                regexp_replace(pg_get_indexdef(r.obj), ' ON ONLY ', ' ON '));
            IF s.indisclustered THEN
                v_creates := array_append(v_creates,
                    format('ALTER TABLE %s CLUSTER ON %I', s.rel, s.relname));
            END IF;
            IF s.cmt IS NOT NULL THEN
                v_creates := array_append(v_creates,
                    format('COMMENT ON INDEX %s IS %L', s.qname, s.cmt));
            END IF;
        WHEN 'constraint' THEN
            SELECT con.conname, con.conrelid::regclass::text AS rel,
                   pg_get_constraintdef(con.oid) AS def,
                   obj_description(con.oid, 'pg_constraint') AS cmt
              INTO s FROM pg_constraint con WHERE con.oid = r.obj;
            v_drops := array_prepend(
                format('ALTER TABLE %s DROP CONSTRAINT %I', s.rel, s.conname), v_drops);
            v_creates := array_append(v_creates,
                format('ALTER TABLE %s ADD CONSTRAINT %I %s', s.rel, s.conname, s.def));
            IF s.cmt IS NOT NULL THEN
                v_creates := array_append(v_creates,
                    format('COMMENT ON CONSTRAINT %I ON %s IS %L', s.conname, s.rel, s.cmt));
            END IF;
        WHEN 'trigger' THEN
            SELECT tg.tgname, tg.tgrelid::regclass::text AS rel,
                   pg_get_triggerdef(tg.oid) AS def, tg.tgenabled,
                   obj_description(tg.oid, 'pg_trigger') AS cmt
              INTO s FROM pg_trigger tg WHERE tg.oid = r.obj;
            v_drops := array_prepend(format('DROP TRIGGER %I ON %s', s.tgname, s.rel), v_drops);
            v_creates := array_append(v_creates, s.def);
            IF s.tgenabled <> 'O' THEN
                v_creates := array_append(v_creates, format('ALTER TABLE %s %s TRIGGER %I',
                    s.rel,
                    CASE s.tgenabled WHEN 'D' THEN 'DISABLE' WHEN 'R' THEN 'ENABLE REPLICA'
                                     ELSE 'ENABLE ALWAYS' END,
                    s.tgname));
            END IF;
            IF s.cmt IS NOT NULL THEN
                v_creates := array_append(v_creates,
                    format('COMMENT ON TRIGGER %I ON %s IS %L', s.tgname, s.rel, s.cmt));
            END IF;
        WHEN 'default' THEN
            SELECT ad.adrelid::regclass::text AS rel, a.attname,
                   pg_get_expr(ad.adbin, ad.adrelid) AS expr
              INTO s
              FROM pg_attrdef ad
              JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
             WHERE ad.oid = r.obj;
            v_drops := array_prepend(
                format('ALTER TABLE ONLY %s ALTER COLUMN %I DROP DEFAULT', s.rel, s.attname),
                v_drops);
            v_creates := array_append(v_creates,
                format('ALTER TABLE ONLY %s ALTER COLUMN %I SET DEFAULT %s',
                       s.rel, s.attname, s.expr));
        END CASE;
    END LOOP;
    IF cardinality(v_problems) > 0 THEN
        RAISE EXCEPTION 'enum rebuild of %: cannot rebuild dependent object(s): %',
            v_qualified, array_to_string(v_problems, '; ')
            USING HINT = 'Partition keys, domains, composite and range types, rules, '
                         'policies, aggregates, operators, casts and generated columns using '
                         'the type are not handled; nothing was changed.';
    END IF;

    -- The columns to convert: tables and partitioned parents (ALTER TABLE recurses into
    -- partitions and inheritance children).
    v_alters := ARRAY(
        SELECT format('ALTER TABLE %s %s', a.attrelid::regclass,
                      string_agg(format('ALTER COLUMN %I TYPE %s USING %I::%s::%s',
                                        a.attname, a.target, a.attname, a.via, a.target),
                                 ', ' ORDER BY a.attnum))
          FROM (SELECT a.attrelid, a.attnum, a.attname,
                       CASE WHEN a.atttypid = v_array THEN 'text[]' ELSE 'text' END AS via,
                       v_qualified || CASE WHEN a.atttypid = v_array
                                           THEN repeat('[]', greatest(a.attndims, 1))
                                           ELSE '' END AS target
                  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                 WHERE a.atttypid IN (v_type, v_array) AND a.attnum > 0
                   AND NOT a.attisdropped AND a.attinhcount = 0
                   AND c.relkind IN ('r', 'p')) a
         GROUP BY a.attrelid
         ORDER BY a.attrelid);

    -- Functions naming the type only in a string body hold no catalog reference to it and
    -- survive; CREATE OR REPLACE (same oid, so triggers and grants stay) makes sessions that
    -- compiled them (plpgsql caches the type's oid) compile them again.
    v_bodies := ARRAY(
        SELECT pg_get_functiondef(p.oid)
          FROM pg_proc p
          JOIN pg_language l ON l.oid = p.prolang
          JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE p.prokind IN ('f', 'p', 'w') AND l.lanname NOT IN ('internal', 'c')
           AND n.nspname NOT IN ('pg_catalog', 'information_schema')
           AND p.oid <> ALL (v_functions)
           AND p.prosrc ~* ('(^|[^[:alnum:]_$])'
                            || regexp_replace(v_name, '([^[:alnum:]_])', '\\\\\\1', 'g')
                            || '($|[^[:alnum:]_$])')
           AND NOT EXISTS (SELECT FROM pg_depend e
                            WHERE e.classid = 'pg_proc'::regclass AND e.objid = p.oid
                              AND e.deptype = 'e')
         ORDER BY p.oid);

    v_tmp := 'hatchet_old_' || v_type;
    WHILE EXISTS (SELECT FROM pg_type ty
                   WHERE ty.typnamespace = v_namespace
                     AND ty.typname IN (v_tmp, '_' || v_tmp)) LOOP
        v_tmp := v_tmp || '_';
    END LOOP;

    -- 3. The rebuild. A failure names the statement; the DO block is one statement, so
    --    nothing it did stays.
    BEGIN
        FOREACH v_step IN ARRAY v_drops LOOP
            EXECUTE v_step;
        END LOOP;
        v_step := format('ALTER TYPE %s RENAME TO %I', v_qualified, v_tmp);
        EXECUTE v_step;
        v_step := format('CREATE TYPE %s AS ENUM (%s)', v_qualified,
            coalesce((SELECT string_agg(quote_literal(u.label), ', ' ORDER BY u.ord)
                        FROM unnest(v_keep) WITH ORDINALITY u(label, ord)), ''));
        EXECUTE v_step;
        v_step := format('ALTER TYPE %s OWNER TO %I', v_qualified, v_owner);
        EXECUTE v_step;
        IF v_comment IS NOT NULL THEN
            v_step := format('COMMENT ON TYPE %s IS %L', v_qualified, v_comment);
            EXECUTE v_step;
        END IF;
        IF v_acl IS NOT NULL THEN
            v_step := format('REVOKE ALL ON TYPE %s FROM PUBLIC', v_qualified);
            EXECUTE v_step;
            FOR v_step IN
                SELECT format('GRANT %s ON TYPE %s TO %s%s', x.privilege_type, v_qualified,
                              CASE WHEN x.grantee = 0 THEN 'PUBLIC'
                                   ELSE quote_ident(pg_get_userbyid(x.grantee)) END,
                              CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
                  FROM aclexplode(v_acl) x
            LOOP
                EXECUTE v_step;
            END LOOP;
        END IF;
        -- ALTER COLUMN TYPE on a partitioned table gives the partitions' indexes it rebuilds
        -- fresh generated names: note each one's name by its parent index and tables first.
        v_step := 'reading the names of partition indexes';
        SELECT jsonb_agg(jsonb_build_object('root', x.root, 'tables', x.tables, 'name', x.name))
          INTO v_renames
          FROM (WITH RECURSIVE tree(root, idx, tables) AS (
                    SELECT ic.oid::regclass::text, ic.oid, '{}'::oid[]
                      FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
                     WHERE ic.relkind = 'I' AND NOT ic.relispartition
                       AND i.indrelid IN (
                           SELECT pt.relid
                             FROM pg_attribute a
                             JOIN pg_class c ON c.oid = a.attrelid
                            CROSS JOIN LATERAL pg_partition_tree(c.oid) pt
                            WHERE a.atttypid IN (v_type, v_array) AND a.attnum > 0
                              AND NOT a.attisdropped AND a.attinhcount = 0
                              AND c.relkind = 'p')
                  UNION ALL
                    SELECT tree.root, h.inhrelid, tree.tables || i.indrelid
                      FROM tree
                      JOIN pg_inherits h ON h.inhparent = tree.idx
                      JOIN pg_index i ON i.indexrelid = h.inhrelid)
                SELECT tree.root, tree.tables, c.relname AS name
                  FROM tree JOIN pg_class c ON c.oid = tree.idx
                 WHERE cardinality(tree.tables) > 0) x;
        FOREACH v_step IN ARRAY v_alters LOOP
            EXECUTE v_step;
        END LOOP;
        v_step := 'restoring the names of partition indexes';
        FOR r IN SELECT e.root, e.tables, e.name
                   FROM jsonb_to_recordset(coalesce(v_renames, '[]'))
                        AS e(root text, tables oid[], name text) LOOP
            v_index := to_regclass(r.root);
            FOREACH v_rel IN ARRAY r.tables LOOP
                SELECT h.inhrelid INTO v_index
                  FROM pg_inherits h JOIN pg_index i ON i.indexrelid = h.inhrelid
                 WHERE h.inhparent = v_index AND i.indrelid = v_rel;
            END LOOP;
            IF v_index IS NOT NULL
               AND (SELECT c.relname FROM pg_class c WHERE c.oid = v_index) <> r.name THEN
                v_moved := array_append(v_moved, v_index);
                v_names := array_append(v_names, r.name);
            END IF;
        END LOOP;
        FOR v_i IN 1 .. cardinality(v_moved) LOOP
            v_step := format('ALTER INDEX %s RENAME TO %I',
                             v_moved[v_i]::regclass, 'hatchet_tmp_' || v_moved[v_i]);
            EXECUTE v_step;
        END LOOP;
        FOR v_i IN 1 .. cardinality(v_moved) LOOP
            v_step := format('ALTER INDEX %s RENAME TO %I', v_moved[v_i]::regclass, v_names[v_i]);
            EXECUTE v_step;
        END LOOP;
        FOREACH v_step IN ARRAY v_creates LOOP
            EXECUTE v_step;
        END LOOP;
        FOREACH v_step IN ARRAY v_bodies LOOP
            EXECUTE v_step;
        END LOOP;
        v_step := format('DROP TYPE %I.%I', v_schema, v_tmp);
        EXECUTE v_step;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS v_message = MESSAGE_TEXT, v_detail = PG_EXCEPTION_DETAIL,
                                v_state = RETURNED_SQLSTATE;
        RAISE EXCEPTION USING
            MESSAGE = format('enum rebuild of %s failed: %s', v_qualified, v_message),
            DETAIL = concat_ws(E'\\n', nullif(v_detail, ''), 'statement: ' || v_step),
            ERRCODE = v_state;
    END;
END
@TAG@"""


def rebuild_statement(type_name: str, remove: list[str]) -> str:
    """One ``DO`` block recreating enum ``type_name`` without the labels ``remove``.

    Run inside the step's transaction, after the down statements that drop what the reverted
    ups created. It does nothing when the type does not exist or has none of the labels; it
    raises (changing nothing) when the type is not an enum, when any row of a table column of
    the type or an array of it holds a label to remove, or when an object it cannot rebuild
    depends on the type: partition keys (PostgreSQL cannot change a partition key column's
    type), domains, composite and range types, rules, row-level security policies,
    aggregates, operators, casts, generated columns and defaults on views.

    Otherwise it renames the type away, creates it again with the remaining labels in their
    order, and converts every column of ordinary and partitioned tables (``ALTER TABLE`` on the
    parent, which recurses into partitions; ``USING col::text::t``, arrays ``col::text[]::t[]``).
    Around that it drops and recreates, from definitions read before anything changes:
    column defaults (``ALTER TABLE ONLY`` per table, so partitions keep their own), views and
    materialized views over the columns or the type (with options, owner, comments and grants),
    functions and procedures with the type in their signature or a ``BEGIN ATOMIC`` body (with
    owner, comment and grants), indexes whose expression or predicate names the type (on
    partitioned tables with their partitions' indexes under their own names), check constraints
    naming the type or a converted column, foreign keys on converted columns, triggers whose
    ``WHEN`` or ``UPDATE OF`` uses a converted column or the type, and everything depending on
    those in turn (views over views, triggers on dropped functions, indexes on dropped
    materialized views), deepest first. Functions naming the type only inside a string body
    (plpgsql, SQL) are refreshed with ``CREATE OR REPLACE``. Then the old type is dropped.

    ALTER COLUMN TYPE gives rebuilt partition indexes generated names; their old names are put
    back. Not carried over: column-level grants and column defaults on recreated views,
    security labels, and column statistics (the converted tables are rewritten; ``ANALYZE``
    them).
    """
    labels = _unique(remove)
    remove_sql = "ARRAY[" + ", ".join(_literal(label) for label in labels) + "]::text[]"
    body = (
        _TEMPLATE.replace("@CHILDREN@", _CHILDREN)
        .replace("@NORMALIZE@", _NORMALIZE)
        .replace("@VIEW_ACL@", _acl("TABLE", "s.qname", "s.acl"))
        .replace("@FUNCTION_ACL@", _acl("' || s.word || '", "s.sig", "s.acl"))
        .replace("@TYPE@", _literal(_regtype_name(type_name)))
        .replace("@REMOVE@", remove_sql)
    )
    tag = "$hatchet_enum_rebuild$"
    while tag in body:
        tag = tag[:-1] + "_$"
    return body.replace("@TAG@", tag)


def label_usage_fixes(catalog: Catalog, type_name: str, remove: list[str]) -> list[DataFix]:
    """The rows that must go before :func:`rebuild_statement` can remove ``remove``.

    Read-only, at plan time: one :class:`DataFix` per column of an ordinary or partitioned table
    (parents only: their rows include their partitions') of type ``type_name`` or an array of
    it, deleting the rows whose value is, or whose array holds, a label to remove. No fixes when
    the type is missing, not an enum, or has none of the labels.
    """
    regtype = _regtype_name(type_name)
    existing = [str(row[0]) for row in catalog.query(_LABELS_SQL, (regtype,))]
    labels = [label for label in existing if label in set(remove)]
    if not labels:
        return []
    shown = ", ".join("'" + label.replace("'", "''") + "'" for label in labels)
    listed = ", ".join(_literal(label) for label in labels)
    noun = "label" if len(labels) == 1 else "labels"
    verb = "does" if len(labels) == 1 else "do"
    reason = f"enum {noun} {shown} of type {type_name} {verb} not exist in the older release"
    fixes: list[DataFix] = []
    for table, column, is_array in catalog.query(_COLUMNS_SQL, (regtype,)):
        if is_array:
            condition = f"{column} && ARRAY[{shown}]"
            where = f"{column}::text[] && ARRAY[{listed}]::text[]"
        else:
            condition = f"{column} IN ({shown})"
            where = f"{column}::text IN ({listed})"
        fixes.append(
            DataFix(
                table=str(table),
                condition=condition,
                reason=reason,
                statement=f"DELETE FROM {table} WHERE {where}",
                count_sql=f"SELECT count(*) FROM {table} WHERE {where}",
            )
        )
    return fixes


_LABELS_SQL = """
SELECT e.enumlabel
  FROM pg_enum e JOIN pg_type ty ON ty.oid = e.enumtypid
 WHERE ty.oid = to_regtype(%s) AND ty.typtype = 'e'
 ORDER BY e.enumsortorder
"""

_COLUMNS_SQL = """
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), quote_ident(a.attname),
       a.atttypid = ty.typarray
  FROM pg_type ty
  JOIN pg_attribute a ON a.atttypid IN (ty.oid, ty.typarray)
  JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE ty.oid = to_regtype(%s) AND ty.typtype = 'e'
   AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped AND a.attinhcount = 0
 ORDER BY 1, 2
"""

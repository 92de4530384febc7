/**
 * Schema changes in commit order: event triggers on the source emit a transactional logical
 * message (`pg_logical_emit_message(true, 'tidemark.ddl', json)`) describing each table a DDL
 * command touched, as the command left it, inside the command's own transaction. pgoutput
 * delivers the message at exactly its place among the transaction's row changes, so the tracker
 * (pg-schemas.ts) knows each table's shape at every position — what Relation messages alone
 * cannot say: renames (by column number), the value existing rows got for an added column, table
 * rewrites with volatile values, new enum labels, tables created and dropped.
 *
 *   ddl_command_end  → {v, tag, query, tables: [description…], enums: [{oid, schema, name, labels}]}
 *   sql_drop         → {v, tag, query, dropped: [{oid, schema, name}]}
 *   table_rewrite    → {v, rewrite: oid, reason}   (fires before the ddl_command_end of its command)
 *   an error inside  → {v, kind: failed, tag, error, oids}  (caught: the user's command never fails)
 *
 * The functions live in schema `_tidemark` (not `tidemark`: a role named tidemark has "$user"
 * first on its search_path, and would start creating its own tables there).
 *
 * Event triggers need a superuser to create. Without one, the tracker degrades to what Relation
 * messages allow (status says so): renames look like a drop and an add, and added columns get
 * the value the catalog holds for existing rows now.
 *
 * The trigger also protects the source: a published table set to REPLICA IDENTITY NOTHING (or
 * losing its key under DEFAULT), or a partition without one under a published root, would make
 * every UPDATE and DELETE on it fail, so the table is taken out of Tidemark's publications in the
 * same transaction (`refused` in its description); the changefeed then stops with a clear error.
 * Unlogged tables are never added. Nothing the trigger does may fail the user's command: errors
 * are caught and reported as a `failed` message.
 */

import { ENUM_OID_SQL, portableTypeSql, typeJoinsSql } from './portable-type.ts';

/** Bumped when the message format or the installed functions change (reinstalled then). */
export const DDL_CAPTURE_VERSION = 4;
export const DDL_MESSAGE_PREFIX = 'tidemark.ddl';
/** An empty message after each capture message (see `_tidemark.emit`); never read. */
export const DDL_PAD_PREFIX = 'tidemark.pad';
/** The message format's version (`v`): messages of another version are not read. */
export const DDL_MESSAGE_VERSION = 2;
/** How much of the command's text a message carries (read only to tell `TYPE … USING`; never logged). */
const QUERY_BYTES = 16384;

/** A table as the trigger describes it (`_tidemark.ddl_table`). */
export interface DdlTable {
  readonly oid: number;
  readonly schema: string;
  readonly name: string;
  /** r: table, p: partitioned table. */
  readonly relkind: string;
  readonly persistence: string;
  readonly replident: string;
  /** The partitioned root when this is a partition, else null. */
  readonly root: number | null;
  readonly columns: readonly DdlColumn[];
  /** Attnums of the primary key, or of the replica identity index (replident `i`). */
  readonly key: readonly number[];
  /** The enum types its columns use, with their labels. */
  readonly enums: readonly DdlEnum[];
  /** A published partitioned root: partitions attached since last seen with rows in them, and detached ones. */
  readonly partitions: {
    readonly attachedWithRows: readonly number[];
    readonly detached: readonly number[];
  } | null;
  /** Set when the trigger took the table out of the publications (why): the changefeed stops. */
  readonly refused?: string;
}

export interface DdlColumn {
  readonly attnum: number;
  readonly name: string;
  readonly typoid: number;
  readonly typmod: number;
  /** The portable type name (as catalog.ts `portableTypeName` computes it). */
  readonly type: string;
  readonly notnull: boolean;
  /** '' for a plain column, 's' for a stored generated one. */
  readonly generated: string;
  /** The generation expression (generated columns only). */
  readonly expression: string | null;
  /** The value existing rows read for a column added with a constant default, as text. */
  readonly missing: string | null;
  readonly hasMissing: boolean;
  /** The column has a default (with no missing value: existing rows were rewritten, or are none). */
  readonly hasDefault: boolean;
  /** The enum type of the column (or of its elements), by oid. */
  readonly enumOid: number | null;
}

export interface DdlEnum {
  readonly oid: number;
  readonly schema: string;
  readonly name: string;
  readonly labels: readonly string[];
}

export type DdlMessage =
  | {
      readonly v: number;
      readonly kind: 'ddl';
      readonly tag: string;
      readonly query: string;
      readonly tables: readonly DdlTable[];
      readonly enums: readonly DdlEnum[];
    }
  | {
      readonly v: number;
      readonly kind: 'drop';
      readonly tag: string;
      readonly query: string;
      readonly dropped: readonly { oid: number; schema: string; name: string; partitionOf?: number | null }[];
    }
  | { readonly v: number; readonly kind: 'rewrite'; readonly oid: number; readonly reason: number }
  /** The trigger failed (caught, so the user's command went on): the tables it touched need a new copy. */
  | {
      readonly v: number;
      readonly kind: 'failed';
      readonly tag: string;
      readonly error: string;
      readonly oids: readonly number[];
    };

/** Reads a message's JSON; null when it is not one this version understands. */
export function parseDdlMessage(content: Buffer): DdlMessage | null {
  try {
    const m = JSON.parse(content.toString('utf8')) as DdlMessage;
    return m.v === DDL_MESSAGE_VERSION ? m : null;
  } catch {
    return null;
  }
}

/** The SQL that installs (or upgrades) the capture on the source database; idempotent. */
export function installSql(): string {
  return `
CREATE SCHEMA IF NOT EXISTS _tidemark;

-- The selections of the changefeeds that capture through a publication, as LIKE patterns: a table
-- created later that one matches joins the publication in its own creating transaction.
CREATE TABLE IF NOT EXISTS _tidemark.capture_patterns (
  pubname text NOT NULL, schema_like text NOT NULL, name_like text NOT NULL,
  PRIMARY KEY (pubname, schema_like, name_like));

CREATE OR REPLACE FUNCTION _tidemark.ddl_enum(typ oid) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog AS $fn$
  SELECT jsonb_build_object('oid', t.oid::bigint, 'schema', n.nspname, 'name', t.typname,
    'labels', (SELECT jsonb_agg(e.enumlabel::text ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid))
  FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.oid = typ AND t.typtype = 'e'
$fn$;

CREATE OR REPLACE FUNCTION _tidemark.ddl_table(rel oid) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog AS $fn$
  SELECT jsonb_build_object(
    'oid', c.oid::bigint, 'schema', n.nspname, 'name', c.relname, 'relkind', c.relkind::text,
    'persistence', c.relpersistence::text, 'replident', c.relreplident::text,
    'root', CASE WHEN c.relispartition THEN pg_partition_root(c.oid)::bigint END,
    'columns', coalesce((
      SELECT jsonb_agg(jsonb_build_object(
        'attnum', a.attnum::int, 'name', a.attname, 'typoid', a.atttypid::bigint, 'typmod', a.atttypmod,
        'type', ${portableTypeSql('a.atttypmod')},
        'notnull', a.attnotnull, 'generated', a.attgenerated::text,
        'expression', CASE WHEN a.attgenerated <> '' THEN pg_get_expr(d.adbin, d.adrelid) END,
        'hasDefault', a.atthasdef,
        -- A partitioned root stores no missing value: its leaves do (the same constant in each).
        'hasMissing', CASE WHEN c.relkind = 'p' THEN lm.missing IS NOT NULL ELSE a.atthasmissing END,
        'missing', CASE WHEN c.relkind = 'p' THEN lm.missing
                        WHEN a.atthasmissing THEN (a.attmissingval::text::text[])[1] END,
        'enumOid', (${ENUM_OID_SQL})::bigint)
        ORDER BY a.attnum)
      FROM pg_attribute a
      ${typeJoinsSql('a.atttypid')}
      LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      LEFT JOIN LATERAL (
        SELECT (la.attmissingval::text::text[])[1] AS missing
          FROM pg_partition_tree(c.oid) pt JOIN pg_attribute la ON la.attrelid = pt.relid AND la.attname = a.attname
         WHERE c.relkind = 'p' AND pt.isleaf AND la.atthasmissing LIMIT 1) lm ON true
      WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '[]'::jsonb),
    'key', coalesce(
      CASE WHEN c.relreplident = 'i' THEN
        (SELECT to_jsonb(string_to_array(i.indkey::text, ' ')::int[]) FROM pg_index i
          WHERE i.indrelid = c.oid AND i.indisreplident) END,
      (SELECT to_jsonb(conkey::int[]) FROM pg_constraint WHERE contype = 'p' AND conrelid = c.oid),
      '[]'::jsonb),
    'enums', coalesce((
      SELECT jsonb_agg(_tidemark.ddl_enum(e.oid)) FROM (
        SELECT DISTINCT ${ENUM_OID_SQL} AS oid FROM pg_attribute a
        ${typeJoinsSql('a.atttypid')}
        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) e WHERE e.oid IS NOT NULL), '[]'::jsonb),
    'partitions', NULL)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = rel
$fn$;

CREATE OR REPLACE FUNCTION _tidemark.has_rows(rel oid) RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog AS $fn$
DECLARE found boolean;
BEGIN
  EXECUTE format('SELECT EXISTS (SELECT 1 FROM ONLY %s)', rel::regclass) INTO found;
  RETURN found;
END
$fn$;

-- The leaf partitions of each published partitioned root as last seen (leaf 0: the root is known).
CREATE TABLE IF NOT EXISTS _tidemark.partitions (root oid NOT NULL, leaf oid NOT NULL, PRIMARY KEY (root, leaf));

-- Records the root's leaves now; returns those attached since with rows in them, and those gone.
-- A root seen for the first time reports nothing (capture records every published root first).
CREATE OR REPLACE FUNCTION _tidemark.note_partitions(root_oid oid) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog AS $fn$
DECLARE
  known boolean := EXISTS (SELECT 1 FROM _tidemark.partitions WHERE root = root_oid AND leaf = 0);
  attached jsonb := '[]';
  detached jsonb := '[]';
BEGIN
  IF known THEN
    SELECT coalesce(jsonb_agg(pt.relid::bigint), '[]') INTO attached
      FROM pg_partition_tree(root_oid) pt JOIN pg_class c ON c.oid = pt.relid
     WHERE pt.isleaf AND NOT EXISTS (SELECT 1 FROM _tidemark.partitions p WHERE p.root = root_oid AND p.leaf = pt.relid)
       AND (c.relkind <> 'r' OR _tidemark.has_rows(pt.relid));
    SELECT coalesce(jsonb_agg(p.leaf::bigint), '[]') INTO detached
      FROM _tidemark.partitions p
     WHERE p.root = root_oid AND p.leaf <> 0
       AND NOT EXISTS (SELECT 1 FROM pg_partition_tree(root_oid) pt WHERE pt.isleaf AND pt.relid = p.leaf);
  END IF;
  DELETE FROM _tidemark.partitions WHERE root = root_oid;
  INSERT INTO _tidemark.partitions SELECT root_oid, 0
    UNION ALL SELECT root_oid, pt.relid FROM pg_partition_tree(root_oid) pt WHERE pt.isleaf AND pt.relid <> root_oid;
  RETURN jsonb_build_object('attachedWithRows', attached, 'detached', detached);
END
$fn$;

-- True when a Tidemark publication holds the table.
CREATE OR REPLACE FUNCTION _tidemark.published(rel oid) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog AS $fn$
  SELECT EXISTS (SELECT 1 FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid
                  WHERE r.prrelid = rel AND p.pubname LIKE 'tidemark\\_%')
$fn$;

-- Takes a table out of every Tidemark publication (the source's writes must never fail for us).
CREATE OR REPLACE FUNCTION _tidemark.unpublish(rel oid) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog AS $fn$
DECLARE pub record;
BEGIN
  FOR pub IN SELECT p.pubname FROM pg_publication p JOIN pg_publication_rel r ON r.prpubid = p.oid
              WHERE r.prrelid = rel AND p.pubname LIKE 'tidemark\\_%' LOOP
    EXECUTE format('ALTER PUBLICATION %I DROP TABLE %s', pub.pubname, rel::regclass);
  END LOOP;
END
$fn$;

CREATE OR REPLACE FUNCTION _tidemark.emit(payload text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog AS $fn$
BEGIN
  -- PostgreSQL (15.18 at least) queues a transactional message at its END position, which is
  -- where the next WAL record starts. The triggers emit inside a subtransaction (their
  -- EXCEPTION blocks), so the command's next row change, in the parent transaction, ties with
  -- the message and was often decoded before it: read by its Relation message alone, then
  -- re-diffed by the DDL (an added column dropped and added again, the row's value lost). The
  -- empty message takes that place: only it can tie with a row change, and it is never read.
  PERFORM pg_logical_emit_message(true, '${DDL_MESSAGE_PREFIX}', payload);
  PERFORM pg_logical_emit_message(true, '${DDL_PAD_PREFIX}', '');
END
$fn$;

CREATE OR REPLACE FUNCTION _tidemark.on_ddl() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $fn$
DECLARE
  cmd record;
  tabs jsonb := '[]';
  enums jsonb := '[]';
  d jsonb;
  r jsonb;
  pub record;
  seen oid[] := '{}';
  err_state text;
  err_text text;
BEGIN
  -- Nothing in here may fail the user's command: an error is caught below and reported to the
  -- changefeeds (the tables it touched need a new copy), never raised.
  BEGIN
    FOR cmd IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP
      IF cmd.schema_name IN ('_tidemark', 'tidemark', 'pg_catalog', 'information_schema') OR cmd.schema_name LIKE 'pg\\_temp%' THEN
        CONTINUE;
      END IF;
      IF cmd.object_type IN ('table', 'table column') AND NOT cmd.objid = ANY (seen) THEN
        seen := seen || cmd.objid;
        d := _tidemark.ddl_table(cmd.objid);
        IF d IS NULL OR d->>'persistence' = 't' THEN CONTINUE; END IF;
        IF d->>'relkind' = 'p' AND _tidemark.published(cmd.objid) THEN
          -- Partitions attached with rows, or detached: rows the log never carried came or went.
          d := d || jsonb_build_object('partitions', _tidemark.note_partitions(cmd.objid));
        END IF;
        -- A table created that a changefeed's selection matches is published from its first row,
        -- when that cannot harm the source (a logged table with a key, or REPLICA IDENTITY FULL).
        IF tg_tag IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO') AND d->>'root' IS NULL
           AND d->>'persistence' = 'p'
           AND (d->'key' <> '[]'::jsonb OR d->>'replident' = 'f') AND d->>'replident' <> 'n' THEN
          FOR pub IN SELECT DISTINCT p.pubname FROM _tidemark.capture_patterns p
                      JOIN pg_publication pp ON pp.pubname = p.pubname
                     WHERE (d->>'schema') LIKE p.schema_like AND (d->>'name') LIKE p.name_like
                       AND NOT EXISTS (SELECT 1 FROM pg_publication_rel r WHERE r.prpubid = pp.oid AND r.prrelid = cmd.objid) LOOP
            EXECUTE format('ALTER PUBLICATION %I ADD TABLE %s', pub.pubname, cmd.objid::regclass);
          END LOOP;
        END IF;
        -- Never let a published table break the source's own writes: one without a replica
        -- identity leaves the publications (a partition: its published root does).
        IF d->>'root' IS NULL THEN
          IF (d->>'replident' = 'n' OR (d->>'replident' = 'd' AND d->'key' = '[]'::jsonb))
             AND _tidemark.published(cmd.objid) THEN
            PERFORM _tidemark.unpublish(cmd.objid);
            d := d || jsonb_build_object('refused', format(
              'table %s has no replica identity now (%s): it was taken out of the publication so that UPDATE and DELETE on it keep working',
              cmd.objid::regclass, tg_tag));
          END IF;
        ELSIF _tidemark.published((d->>'root')::bigint::oid) THEN
          -- A partition of a published root, created or altered: the root's partitions as now.
          r := _tidemark.ddl_table((d->>'root')::bigint::oid)
               || jsonb_build_object('partitions', _tidemark.note_partitions((d->>'root')::bigint::oid));
          IF d->>'replident' = 'n' OR (d->>'replident' = 'd' AND d->'key' = '[]'::jsonb) THEN
            PERFORM _tidemark.unpublish((d->>'root')::bigint::oid);
            r := r || jsonb_build_object('refused', format(
              'partition %s of %s has no replica identity (%s): the table was taken out of the publication so that UPDATE and DELETE on it keep working',
              cmd.objid::regclass, (d->>'root')::bigint::oid::regclass, tg_tag));
          END IF;
          tabs := tabs || jsonb_build_array(r);
        END IF;
        tabs := tabs || jsonb_build_array(d);
      ELSIF cmd.object_type = 'type' THEN
        d := _tidemark.ddl_enum(cmd.objid);
        IF d IS NOT NULL THEN enums := enums || jsonb_build_array(d); END IF;
      END IF;
    END LOOP;
    IF tabs <> '[]' OR enums <> '[]' THEN
      PERFORM _tidemark.emit(jsonb_build_object(
        'v', ${DDL_MESSAGE_VERSION}, 'kind', 'ddl', 'tag', tg_tag, 'query', left(current_query(), ${QUERY_BYTES}),
        'tables', tabs, 'enums', enums)::text);
    END IF;
  EXCEPTION WHEN others THEN
    GET STACKED DIAGNOSTICS err_state = RETURNED_SQLSTATE, err_text = MESSAGE_TEXT;
    RAISE WARNING 'tidemark: schema-change capture failed (%: %); changefeeds replicating the tables of this command stop and need a new copy', err_state, err_text;
    BEGIN
      PERFORM _tidemark.emit(jsonb_build_object(
        'v', ${DDL_MESSAGE_VERSION}, 'kind', 'failed', 'tag', tg_tag, 'error', err_state || ': ' || err_text,
        'oids', (SELECT coalesce(jsonb_agg(DISTINCT coalesce(pg_partition_root(objid), objid)::bigint), '[]'::jsonb)
                   FROM pg_event_trigger_ddl_commands() WHERE object_type IN ('table', 'table column')))::text);
    EXCEPTION WHEN others THEN
      RAISE WARNING 'tidemark: could not report the failed capture either';
    END;
  END;
END
$fn$;

CREATE OR REPLACE FUNCTION _tidemark.on_drop() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $fn$
DECLARE dropped jsonb;
BEGIN
  -- Every command that drops tables: DROP TABLE, DROP SCHEMA … CASCADE, DROP OWNED, DROP EXTENSION.
  -- A dropped partition of a published root names its root (its rows left the root).
  SELECT jsonb_agg(jsonb_build_object('oid', o.objid::bigint, 'schema', o.schema_name, 'name', o.object_name,
           'partitionOf', (SELECT p.root::bigint FROM _tidemark.partitions p WHERE p.leaf = o.objid LIMIT 1)))
    INTO dropped FROM pg_event_trigger_dropped_objects() o
   WHERE o.object_type = 'table' AND o.schema_name NOT IN ('_tidemark', 'tidemark', 'pg_catalog') AND NOT o.is_temporary;
  DELETE FROM _tidemark.partitions p USING pg_event_trigger_dropped_objects() o
   WHERE o.object_type = 'table' AND (p.leaf = o.objid OR p.root = o.objid);
  IF dropped IS NOT NULL THEN
    PERFORM _tidemark.emit(jsonb_build_object(
      'v', ${DDL_MESSAGE_VERSION}, 'kind', 'drop', 'tag', tg_tag, 'query', left(current_query(), ${QUERY_BYTES}),
      'dropped', dropped)::text);
  END IF;
EXCEPTION WHEN others THEN
  RAISE WARNING 'tidemark: capture of a dropped table failed (%)', SQLERRM;
END
$fn$;

CREATE OR REPLACE FUNCTION _tidemark.on_rewrite() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $fn$
DECLARE rel oid := pg_event_trigger_table_rewrite_oid();
BEGIN
  -- A partition's rewrite counts for its root (the replicated table).
  PERFORM _tidemark.emit(jsonb_build_object(
    'v', ${DDL_MESSAGE_VERSION}, 'kind', 'rewrite', 'oid', coalesce(pg_partition_root(rel), rel)::bigint,
    'reason', pg_event_trigger_table_rewrite_reason())::text);
EXCEPTION WHEN others THEN
  RAISE WARNING 'tidemark: capture of a table rewrite failed (%)', SQLERRM;
END
$fn$;

COMMENT ON SCHEMA _tidemark IS 'Tidemark: schema-change capture (version ${DDL_CAPTURE_VERSION})';

DO $do$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = 'tidemark_ddl') THEN
    CREATE EVENT TRIGGER tidemark_ddl ON ddl_command_end
      WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'ALTER TYPE')
      EXECUTE FUNCTION _tidemark.on_ddl();
  END IF;
  -- Recreated: version 2 filtered tags, and missed DROP SCHEMA … CASCADE, DROP OWNED.
  DROP EVENT TRIGGER IF EXISTS tidemark_drop;
  CREATE EVENT TRIGGER tidemark_drop ON sql_drop EXECUTE FUNCTION _tidemark.on_drop();
  IF NOT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = 'tidemark_rewrite') THEN
    CREATE EVENT TRIGGER tidemark_rewrite ON table_rewrite EXECUTE FUNCTION _tidemark.on_rewrite();
  END IF;
END
$do$;
`;
}

/** The SQL that removes the capture (when the last changefeed of the source is removed). */
export function uninstallSql(): string {
  return `
DROP EVENT TRIGGER IF EXISTS tidemark_ddl;
DROP EVENT TRIGGER IF EXISTS tidemark_drop;
DROP EVENT TRIGGER IF EXISTS tidemark_rewrite;
DROP FUNCTION IF EXISTS _tidemark.on_ddl(), _tidemark.on_drop(), _tidemark.on_rewrite(), _tidemark.emit(text),
  _tidemark.ddl_table(oid), _tidemark.ddl_enum(oid), _tidemark.has_rows(oid),
  _tidemark.published(oid), _tidemark.unpublish(oid), _tidemark.note_partitions(oid);
DROP TABLE IF EXISTS _tidemark.partitions;
DROP TABLE IF EXISTS _tidemark.capture_patterns;
DROP SCHEMA IF EXISTS _tidemark;
`;
}

/** A selection entry (`core/selection.ts` grammar) as the LIKE patterns the trigger matches created tables with. */
export function likePatterns(
  entry: { schema: string; name: string },
  glob: boolean,
): { schema: string; name: string } {
  const like = (text: string) => {
    const escaped = text.replace(/[\\%_]/g, (c) => `\\${c}`);
    return glob ? escaped.replace(/\*/g, '%').replace(/\?/g, '_') : escaped;
  };
  return { schema: like(entry.schema), name: like(entry.name) };
}

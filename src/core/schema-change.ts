/**
 * A schema change of a replicated table, as a connector reports it at its commit position: the
 * **barrier** of ARCHITECTURE.md. It travels through the change hub as a record inside the source
 * transaction that made it, exactly between the changes before it (old shape) and after it (new
 * shape). The pipeline cuts the epoch's downstream work there: changes before it are applied,
 * then the sink applies the equivalent DDL, then the changes after it — all in the epoch's one
 * downstream transaction where the store allows (see `sink/sink.ts`).
 *
 * Tables are identified by their stable id (`TableSchema.relationId`), never by name: a rename
 * keeps the id, a table dropped and created again under the same name gets a new one.
 */
import type { TableSchema } from './table-schema.ts';

/** How existing rows get a value for an added column. */
export type ColumnFill =
  /** NULL for every existing row (no default, or a default that is NULL). */
  | { readonly kind: 'null' }
  /**
   * The same constant for every existing row, in the source's text form (PostgreSQL: a
   * non-volatile default, stored as the column's missing value without a rewrite).
   */
  | { readonly kind: 'value'; readonly text: string }
  /**
   * Each existing row got its own value (a volatile default, `DEFAULT random()`): neither in the
   * log nor reproducible by replaying the DDL. The table needs a re-copy (`recopy`).
   */
  | { readonly kind: 'per-row' };

export type ColumnChange =
  | { readonly op: 'added'; readonly column: string; readonly fill: ColumnFill }
  | { readonly op: 'dropped'; readonly column: string }
  | { readonly op: 'renamed'; readonly from: string; readonly to: string }
  /**
   * The column's type changed. `reproducible`: replaying the same type change downstream gives
   * every existing row the value the source gave it (a widening, an implicit cast); otherwise the
   * source computed new values the log does not carry (`USING f(x)`) and the table needs a re-copy.
   */
  | {
      readonly op: 'retyped';
      readonly column: string;
      readonly fromType: string;
      readonly toType: string;
      readonly reproducible: boolean;
    };

export type SchemaChange =
  /**
   * A table was created (empty at that position, unless `recopy` says otherwise). The pipeline
   * decides whether its selection takes it. `unreplicable` is non-null (the reason) when it cannot
   * be replicated safely (no key and no full row image; a replica identity that would make the
   * source's writes fail).
   */
  | {
      readonly kind: 'table-created';
      readonly table: TableSchema;
      readonly unreplicable: string | null;
      readonly ddl: string | null;
    }
  /** A replicated table was dropped. */
  | {
      readonly kind: 'table-dropped';
      readonly tableId: number;
      readonly table: TableSchema;
      readonly ddl: string | null;
    }
  /**
   * A replicated table changed shape or name (`before.relationId === after.relationId`). `columns`
   * lists the column changes in the order they were made; a rename of the table shows as
   * `before.name !== after.name` (or schema), new enum labels as a difference of `enums`.
   * `recopy` is non-null (the reason) when existing rows cannot be derived downstream from
   * replaying the change: the table must be copied again at this position.
   */
  | {
      readonly kind: 'table-altered';
      readonly before: TableSchema;
      readonly after: TableSchema;
      readonly columns: readonly ColumnChange[];
      readonly recopy: string | null;
      readonly ddl: string | null;
      /**
       * Set (the reason) when the table can no longer be replicated safely from this position
       * (its replica identity would make the source's writes fail): the changefeed stops.
       */
      readonly unreplicable?: string;
    };

/** The table a schema change concerns, by stable id. */
export function schemaChangeTableId(c: SchemaChange): number {
  switch (c.kind) {
    case 'table-created':
      return c.table.relationId;
    case 'table-dropped':
      return c.tableId;
    case 'table-altered':
      return c.after.relationId;
  }
}

/**
 * The tables a connector follows, by stable id: their shape as of the point the stream has
 * reached, their current name, and the databases (schemas) whose new tables are followed too.
 * One instance per connector; the replication session moves shapes forward through DDL and
 * table maps, `describe` hands out the same ids for the same tables.
 */
import type { TableSchema } from '../../core/table-schema.ts';
import type { MysqlType } from './column-types.ts';
import { relationIdFor, type Shape } from './table-shapes.ts';

export class TableRegistry {
  private readonly shapes = new Map<number, Shape>();
  private readonly ids = new Map<string, number>();
  /** Every id ever handed out, so a dropped table's id is never reused for another. */
  private readonly used = new Set<number>();
  readonly schemas = new Set<string>();
  private readonly approximate = new Set<number>();

  /** The id of `schema.name`: the one it has, or a new one. */
  idFor(schema: string, name: string): number {
    const k = key(schema, name);
    const had = this.ids.get(k);
    if (had !== undefined) return had;
    const id = relationIdFor(schema, name, this.used);
    this.used.add(id);
    this.ids.set(k, id);
    return id;
  }

  /** Binds `schema.name` to an id the log knows it by (a table renamed while we were stopped). */
  remember(schema: string, name: string, id: number): void {
    if (this.shapes.has(id)) return;
    this.ids.set(key(schema, name), id);
    this.used.add(id);
  }

  track(shape: Shape): void {
    const t = shape.table;
    const old = this.shapes.get(t.relationId);
    if (old) this.ids.delete(key(old.table.schema, old.table.name));
    this.shapes.set(t.relationId, shape);
    this.approximate.delete(t.relationId);
    this.ids.set(key(t.schema, t.name), t.relationId);
    this.used.add(t.relationId);
    this.schemas.add(t.schema);
  }

  /**
   * Seeds from shapes the log recorded or the hub announced. `exact: false`: the MySQL types are
   * approximated from the pivot (YEAR as SMALLINT, GEOMETRY as a BLOB, …) — good enough to judge
   * DDL, not to decode a snapshot — until `track` replaces them with the catalog's.
   */
  seed(
    tables: readonly TableSchema[],
    types: (t: TableSchema) => { readonly types: readonly MysqlType[]; readonly exact: boolean },
  ): void {
    for (const t of tables) {
      const { types: ts, exact } = types(t);
      this.track({ table: t, types: ts });
      if (!exact) this.approximate.add(t.relationId);
    }
  }

  /** Whether the shape's MySQL types are approximations (see `seed`). */
  isApproximate(id: number): boolean {
    return this.approximate.has(id);
  }

  drop(id: number): void {
    const s = this.shapes.get(id);
    if (!s) return;
    this.shapes.delete(id);
    this.approximate.delete(id);
    this.ids.delete(key(s.table.schema, s.table.name));
  }

  get(id: number): Shape | undefined {
    return this.shapes.get(id);
  }

  byName(schema: string, name: string): Shape | undefined {
    const id = this.ids.get(key(schema, name));
    return id === undefined ? undefined : this.shapes.get(id);
  }

  watches(schema: string): boolean {
    return this.schemas.has(schema);
  }

  all(): Shape[] {
    return [...this.shapes.values()];
  }
}

function key(schema: string, name: string): string {
  return `${schema}\0${name}`;
}

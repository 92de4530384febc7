/** Shapes and generators the benchmarks share. */
import type { TableSchema } from '../src/core/table-schema.ts';

/** A column as the source describes it; a key column is NOT NULL. */
export const column = (name: string, typeOid: number, typeName: string, isKey: boolean) => ({
  name,
  typeOid,
  typeMod: -1,
  typeName,
  isKey,
  nullable: !isKey,
});

/** `public.items (id bigint PRIMARY KEY, grp int, payload text)`. */
export const ITEMS: TableSchema = {
  schema: 'public',
  name: 'items',
  relationId: 16_384,
  columns: [
    column('id', 20, 'bigint', true),
    column('grp', 23, 'integer', false),
    column('payload', 25, 'text', false),
  ],
  keyColumns: [0],
  keyless: false,
  enums: [],
};

/**
 * Row ids for the peer-shaped mix (half inserts, 35% updates, 15% deletes of live rows), never
 * reused; deterministic (xorshift32 from a fixed seed), no dependency.
 */
export class Ids {
  private next: number;
  private readonly live: number[] = [];
  private seed = 42;
  /** Ids start at `start` (a later run on the same table continues after an earlier one's). */
  constructor(start: number) {
    this.next = start;
  }
  private rand(): number {
    let x = this.seed;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.seed = x >>> 0;
    return this.seed / 4_294_967_296;
  }
  /** A new id, live from here. */
  insert(): number {
    const id = this.next++;
    this.live.push(id);
    return id;
  }
  op(): { kind: 'insert' | 'update' | 'delete'; id: number } {
    const r = this.rand();
    if (r < 0.5 || this.live.length < 100) return { kind: 'insert', id: this.insert() };
    const i = Math.floor(this.rand() * this.live.length);
    const id = this.live[i]!;
    if (r < 0.85) return { kind: 'update', id };
    this.live[i] = this.live[this.live.length - 1]!;
    this.live.pop();
    return { kind: 'delete', id };
  }
}

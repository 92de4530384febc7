import type { TableSchema } from '../../core/table-schema.ts';
import { PackedCells } from '../../core/packed-cells.ts';
import { stageColumns, stagedCells, type StageGroup } from './apply-plan.ts';
import { quoteLiteral } from './sql-text.ts';
import { nameKey } from './target-tables.ts';

/**
 * Where an epoch's staged rows (apply-plan.ts) live while the apply statements read them:
 *
 * - small epochs: inline, one `text[]` literal per staging column read by `unnest(…) AS s(…)`, so
 *   BEGIN, the changes, the checkpoint and COMMIT travel as one simple query, one round trip. Not
 *   a `VALUES` list: PostgreSQL parses and plans one of those per cell (a 1,000-row upsert of
 *   three columns: ~20 ms of the backend's CPU against ~5 ms for the arrays, whose elements
 *   `array_in` reads in one pass);
 * - large epochs: one temp table per target table and shape, all text, `ON COMMIT DELETE ROWS`,
 *   created once per connection and filled by COPY. Not shared between tables of the same width,
 *   so two tables of one epoch never see each other's rows.
 */
export class StageTables {
  private readonly created = new Map<string, string>();
  private readonly pending = new Map<string, string>();
  private counter = 0;

  /**
   * The temp table for `table`'s shape and, when it does not exist on this connection yet, the
   * statement creating it (to run inside the epoch's transaction).
   */
  tableFor(table: TableSchema): { name: string; create: string | null } {
    const shape = `${nameKey(table)}/${table.columns.length}/${table.keyColumns.length}`;
    const known = this.created.get(shape) ?? this.pending.get(shape);
    if (known !== undefined) return { name: known, create: null };
    const name = `tidemark_stage_${++this.counter}`;
    this.pending.set(shape, name);
    const cols = stageColumns(table).map((c) => `${c} text`);
    return {
      name,
      create: `CREATE TEMP TABLE IF NOT EXISTS ${name} (${cols.join(', ')}) ON COMMIT DELETE ROWS`,
    };
  }

  /** The epoch committed: tables created in it exist from now on. */
  committed(): void {
    for (const [k, v] of this.pending) this.created.set(k, v);
    this.pending.clear();
  }

  /** The epoch rolled back (its CREATEs with it), or the connection was replaced. */
  forget(options: { all: boolean }): void {
    this.pending.clear();
    if (options.all) this.created.clear();
  }
}

/** Reads the group's rows of the temp table `name` as `s`. */
export function stageFrom(name: string, group: StageGroup): string {
  return `(SELECT * FROM pg_temp.${name} WHERE op = '${group.op}' AND mask IS NOT DISTINCT FROM ${quoteLiteral(group.mask || null)}) AS s`;
}

/**
 * The group's rows inline as `s`: column j of every row in one array literal, the arrays zipped
 * by `unnest`. Every element is quoted (a backslash before each double quote and backslash), so
 * only an unquoted NULL is NULL; the literal's own quotes are doubled by `quoteLiteral`.
 */
export function arraysFrom(table: TableSchema, group: StageGroup): string {
  const names = stageColumns(table);
  const columns: string[][] = names.map(() => []);
  for (const row of group.rows) {
    const cells = stagedCells(table, group, row);
    for (let j = 0; j < names.length; j++) columns[j]!.push(arrayElement(cells[j] ?? null));
  }
  const arrays = columns.map((c) => `${quoteLiteral(`{${c.join(',')}}`)}::text[]`);
  return `unnest(${arrays.join(', ')}) AS s(${names.join(', ')})`;
}

function arrayElement(cell: string | null): string {
  return cell === null ? 'NULL' : `"${cell.replace(/["\\]/g, '\\$&')}"`;
}

/** Characters of SQL the inline arrays for these rows take, near enough to pick a path. */
export function stagedChars(groups: readonly StageGroup[]): number {
  let n = 0;
  for (const g of groups) {
    for (const r of g.rows) {
      if (r instanceof PackedCells) n += r.end - r.start + 4 * (r.count + 3);
      else for (const c of r) n += (c?.length ?? 4) + 4;
    }
  }
  return n;
}

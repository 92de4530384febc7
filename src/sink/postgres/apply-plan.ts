import { UNCHANGED, type Cell } from '../../core/row.ts';
import { qualifiedName, quoteIdent, quoteTable, type TableSchema } from '../../core/table-schema.ts';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import type { TableChanges } from '../../core/epoch.ts';

/**
 * Turns one table's changes of an epoch into a few set-based statements, never one per row.
 *
 *   TableChanges ──planTableChanges──► groups of staged rows ──tableStatements──► SQL
 *                                       (COPY into a temp table, or an inline VALUES list)
 *
 * Every staged row has the same all-text shape, so any group can be read as relation `s`:
 *
 *   op    d delete · u upsert · p partial update · m partial update moving its key ·
 *         i insert n copies · r remove n copies (keyless tables)
 *   mask  p/m only: one character per column, '1' where the cell is UNCHANGED
 *   n     i/r only: how many copies
 *   c0…   the row's cells in column order (UNCHANGED is staged as NULL)
 *   k0…   m only: the old key, one cell per key column
 *
 * Cells become typed values through `s.cI::<typeName>`, i.e. the type's own input function, so
 * every value lands exactly as the source printed it.
 */

export type StageOp = 'd' | 'u' | 'p' | 'm' | 'i' | 'r';

export interface StageGroup {
  readonly op: StageOp;
  /** p/m: which cells are UNCHANGED ('1'); '' for the other ops. */
  readonly mask: string;
  /** Staged rows in the column order of `stageColumns`. */
  readonly rows: (string | null)[][];
}

export interface TablePlan {
  readonly table: TableSchema;
  readonly truncate: boolean;
  readonly groups: readonly StageGroup[];
}

/** Column names of the staging relation for `table`: op, mask, n, c0…, k0…. */
export function stageColumns(table: TableSchema): string[] {
  return [
    'op',
    'mask',
    'n',
    ...table.columns.map((_, i) => `c${i}`),
    ...table.keyColumns.map((_, j) => `k${j}`),
  ];
}

/** Groups the changes into staged rows; throws INTERNAL if they break the Sink contract. */
export function planTableChanges(changes: TableChanges): TablePlan {
  const { table } = changes;
  const width = table.columns.length;
  const noKey: null[] = table.keyColumns.map(() => null);
  const groups = new Map<string, { op: StageOp; mask: string; rows: (string | null)[][] }>();
  const add = (op: StageOp, mask: string, row: (string | null)[]) => {
    const id = `${op}${mask}`;
    let g = groups.get(id);
    if (!g) groups.set(id, (g = { op, mask, rows: [] }));
    g.rows.push(row);
  };
  const check = (row: readonly Cell[], what: string) => {
    if (row.length !== width) {
      throw contractError(table, `${what} has ${row.length} cells, the table has ${width} columns`);
    }
  };
  const keyed = !table.keyless && table.keyColumns.length > 0;
  if (!keyed && (changes.deletes.length || changes.upserts.length || changes.partialUpdates.length)) {
    throw contractError(table, 'keyed changes (deletes, upserts, partial updates) for a table without a key');
  }
  if (keyed && changes.rowDeltas.length) throw contractError(table, 'row deltas for a keyed table');

  for (const row of changes.deletes) {
    check(row, 'a delete');
    add('d', '', ['d', null, null, ...row, ...noKey]);
  }
  for (const row of changes.upserts) {
    check(row, 'an upsert');
    add('u', '', ['u', null, null, ...row, ...noKey]);
  }
  for (const { row, fromKey } of changes.partialUpdates) {
    check(row, 'a partial update');
    const mask = row.map((c) => (c === UNCHANGED ? '1' : '0')).join('');
    const cells = row.map((c) => (c === UNCHANGED ? null : c));
    if (fromKey === null) {
      add('p', mask, ['p', mask, null, ...cells, ...noKey]);
    } else {
      check(fromKey, 'an old key');
      add('m', mask, ['m', mask, null, ...cells, ...table.keyColumns.map((k) => fromKey[k] ?? null)]);
    }
  }
  for (const { row, count } of changes.rowDeltas) {
    check(row, 'a row delta');
    if (count !== 0)
      add(count > 0 ? 'i' : 'r', '', [count > 0 ? 'i' : 'r', null, String(count), ...row, ...noKey]);
  }
  // Moves read the old rows as they were when the epoch began, so they go before the deletes.
  const order: StageOp[] = ['m', 'd', 'u', 'p', 'r', 'i'];
  const sorted = [...groups.values()].sort((a, b) => order.indexOf(a.op) - order.indexOf(b.op));
  return { table, truncate: changes.truncate, groups: sorted };
}

/**
 * The statements applying `plan`, in the contract's order (truncate, key-moving partial updates,
 * deletes, upserts, partial updates, row deltas). `from(group)` gives the FROM item that reads the group's rows as `s`.
 */
export function tableStatements(plan: TablePlan, from: (group: StageGroup) => string): string[] {
  const t = plan.table;
  const out: string[] = [];
  if (plan.truncate) out.push(`TRUNCATE ${quoteTable(t)}`);
  for (const g of plan.groups) out.push(...groupStatements(t, g, from(g)));
  return out;
}

function groupStatements(t: TableSchema, g: StageGroup, src: string): string[] {
  const target = quoteTable(t);
  const cols = t.columns.map((c) => quoteIdent(c.name));
  const cast = (i: number, field = `c${i}`) => `s.${field}::${t.columns[i]?.typeName}`;
  const keyIdx = t.keyColumns;
  const keyMatch = (alias: string, field: (j: number) => string) =>
    keyIdx.map((k, j) => `${alias}.${cols[k]} = ${cast(k, field(j))}`).join(' AND ');
  const allCasts = t.columns.map((_, i) => cast(i)).join(', ');
  const onConflict = upsertClause(t, cols);
  switch (g.op) {
    case 'd':
      return [`DELETE FROM ${target} AS t USING ${src} WHERE ${keyMatch('t', (j) => `c${keyIdx[j]}`)}`];
    case 'u':
      return [`INSERT INTO ${target} AS t (${cols.join(', ')}) SELECT ${allCasts} FROM ${src} ${onConflict}`];
    case 'p': {
      const set = t.columns
        .map((c, i) => ({ c, i }))
        .filter(({ i }) => g.mask[i] !== '1' && !keyIdx.includes(i))
        .map(({ i }) => `${cols[i]} = ${cast(i)}`);
      if (set.length === 0) return [];
      return [
        `UPDATE ${target} AS t SET ${set.join(', ')} FROM ${src} WHERE ${keyMatch('t', (j) => `c${keyIdx[j]}`)}`,
      ];
    }
    case 'm': {
      // The new row takes its UNCHANGED cells from the old one; the old row's removal is a
      // separate delete in the same epoch (sink.ts), applied after all moves.
      const values = t.columns.map((_, i) => (g.mask[i] === '1' ? `o.${cols[i]}` : cast(i))).join(', ');
      return [
        `INSERT INTO ${target} AS t (${cols.join(', ')}) SELECT ${values} FROM ${src}, ${target} AS o ` +
          `WHERE ${keyMatch('o', (j) => `k${j}`)} ${onConflict}`,
      ];
    }
    case 'i':
      return [
        `INSERT INTO ${target} (${cols.join(', ')}) SELECT ${allCasts} FROM ${src}, generate_series(1, s.n::int)`,
      ];
    case 'r': {
      // Rows match on their whole text form; the record's text output tells NULL from '' and is
      // hashable, and works for types without `=` (json, point). Deletes exactly -n copies.
      const rowText = `ROW(${cols.map((c) => `x.${c}::text`).join(', ')})::text`;
      const stagedText = `ROW(${t.columns.map((_, i) => `${cast(i)}::text`).join(', ')})::text`;
      const identity = t.columns.map((_, i) => `s.c${i}`).join(', ');
      return [
        `DELETE FROM ${target} AS t WHERE t.ctid IN (SELECT d.ctid FROM (` +
          `SELECT x.ctid, s.n::int AS n, row_number() OVER (PARTITION BY ${identity} ORDER BY x.ctid) AS rn ` +
          `FROM ${target} AS x, ${src} WHERE ${rowText} = ${stagedText}) AS d WHERE d.rn <= -d.n)`,
      ];
    }
  }
}

function upsertClause(t: TableSchema, cols: readonly string[]): string {
  const keys = t.keyColumns.map((k) => cols[k]).join(', ');
  const rest = cols.filter((_, i) => !t.keyColumns.includes(i));
  if (rest.length === 0) return `ON CONFLICT (${keys}) DO NOTHING`;
  return `ON CONFLICT (${keys}) DO UPDATE SET ${rest.map((c) => `${c} = EXCLUDED.${c}`).join(', ')}`;
}

function contractError(table: TableSchema, detail: string): TidemarkError {
  return new TidemarkError('INTERNAL', { detail: `epoch for ${qualifiedName(table)}: ${detail}` });
}

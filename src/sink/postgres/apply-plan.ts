import { PackedCells, packedCellsAt, unpackCells } from '../../core/packed-cells.ts';
import { UNCHANGED, type Cell, type Row } from '../../core/row.ts';
import { qualifiedName, quoteIdent, quoteTable, type TableSchema } from '../../core/table-schema.ts';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import type { TableChanges } from '../../core/epoch.ts';

/**
 * Turns one table's changes of an epoch into a few set-based statements, never one per row.
 *
 *   TableChanges ──planTableChanges──► groups of staged rows ──tableStatements──► SQL
 *                                       (COPY into a temp table, or inline text[] arrays)
 *
 * Every staged row has the same all-text shape, so any group can be read as relation `s`:
 *
 *   op    d delete · u upsert · p partial update · m partial update moving its key ·
 *         i insert n copies · r remove n copies (keyless tables)
 *   mask  p/m: one character per column, '1' where the cell is UNCHANGED; d/u: 'n' for rows
 *         whose key holds a NULL (matched with IS NOT DISTINCT FROM, which no index serves, so
 *         kept apart from the rest, matched with `=`)
 *   n     i/r only: how many copies
 *   c0…   the row's cells in column order (UNCHANGED is staged as NULL)
 *   k0…   m only: the old key, one cell per key column
 *
 * A u or d row the epoch kept packed (`TableChanges.upsertsPacked`) is staged as its packed cells:
 * op and mask are its group's, n and every k NULL (`stagedCells` spells it out); COPY writes its
 * bytes as they are (copy-writer.ts).
 *
 * Cells become typed values through `s.cI::<typeName>`, i.e. the type's own input function, so
 * every value lands exactly as the source printed it.
 */

export type StageOp = 'd' | 'u' | 'p' | 'm' | 'i' | 'r';

/** A staged row: its cells in the column order of `stageColumns`, or a u/d row still packed. */
export type StagedRow = (string | null)[] | PackedCells;

export interface StageGroup {
  readonly op: StageOp;
  /** p/m: which cells are UNCHANGED ('1'); '' for the other ops. */
  readonly mask: string;
  readonly rows: StagedRow[];
}

/** The staged row's cells in the column order of `stageColumns`. */
export function stagedCells(table: TableSchema, group: StageGroup, row: StagedRow): (string | null)[] {
  if (!(row instanceof PackedCells)) return row;
  const keys = table.keyColumns.map(() => null);
  return [group.op, group.mask || null, null, ...(unpackCells(row) as Row), ...keys];
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
  const groups = new Map<string, { op: StageOp; mask: string; rows: StagedRow[] }>();
  const add = (op: StageOp, mask: string, row: StagedRow) => {
    const id = `${op}${mask}`;
    let g = groups.get(id);
    if (!g) groups.set(id, (g = { op, mask, rows: [] }));
    g.rows.push(row);
  };
  const check = (row: readonly Cell[] | PackedCells, what: string) => {
    const cells = row instanceof PackedCells ? row.count : row.length;
    if (cells !== width) {
      throw contractError(table, `${what} has ${cells} cells, the table has ${width} columns`);
    }
  };
  // Packed where the epoch kept them so: staged as they are, no string per cell.
  const deletes = changes.deletesPacked ?? changes.deletes;
  const upserts = changes.upsertsPacked ?? changes.upserts;
  const keyed = !table.keyless && table.keyColumns.length > 0;
  if (!keyed && (deletes.length || upserts.length || changes.partialUpdates.length)) {
    throw contractError(table, 'keyed changes (deletes, upserts, partial updates) for a table without a key');
  }
  if (keyed && changes.rowDeltas.length) throw contractError(table, 'row deltas for a keyed table');

  const nullable = hasNullableKey(table);
  const sortedKeys = [...table.keyColumns].sort((a, b) => a - b);
  const nullKey = (row: Row | PackedCells) => {
    if (!nullable) return '';
    const keys =
      row instanceof PackedCells ? packedCellsAt(row, sortedKeys) : table.keyColumns.map((k) => row[k]);
    return keys.some((c) => c === null) ? 'n' : '';
  };
  for (const row of deletes) {
    check(row, 'a delete');
    const mask = nullKey(row);
    add('d', mask, row instanceof PackedCells ? row : ['d', mask || null, null, ...row, ...noKey]);
  }
  for (const row of upserts) {
    check(row, 'an upsert');
    add('u', '', row instanceof PackedCells ? row : ['u', null, null, ...row, ...noKey]);
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
 * The statements applying `plan`, in the contract's order (truncate — as a DELETE —, key-moving
 * partial updates, deletes, upserts, partial updates, row deltas). `from(group)` gives the FROM
 * item that reads the group's rows as `s`.
 */
export function tableStatements(plan: TablePlan, from: (group: StageGroup) => string): string[] {
  const t = plan.table;
  const out: string[] = [];
  // DELETE, not TRUNCATE: TRUNCATE is not MVCC-safe (a reader whose snapshot predates the commit
  // would see the table empty), and it would block every reader of the table until the commit.
  if (plan.truncate) out.push(`DELETE FROM ${quoteTable(t)}`);
  // Every key move in one statement, whatever its mask: a statement reads the table as it was
  // before it, so each move copies its old row as the epoch (or chunk) found it, even when
  // another move writes that key (`3 from 2, 2 from 1`; cycles).
  const moves = plan.groups.filter((g) => g.op === 'm');
  if (moves.length > 0) {
    const cols = t.columns.map((c) => quoteIdent(c.name));
    const selects = moves.map((g) => moveSelect(t, g, from(g)));
    out.push(
      `INSERT INTO ${quoteTable(t)} AS t (${cols.join(', ')}) ${selects.join(' UNION ALL ')} ${upsertClause(t, cols)}`,
    );
  }
  for (const g of plan.groups) if (g.op !== 'm') out.push(...groupStatements(t, g, from(g)));
  return out;
}

/** The new rows of one group of key moves: changed cells from `s`, UNCHANGED ones from the old row `o`. */
function moveSelect(t: TableSchema, g: StageGroup, src: string): string {
  const cols = t.columns.map((c) => quoteIdent(c.name));
  const cast = (i: number, field = `c${i}`) => `s.${field}::${t.columns[i]?.typeName}`;
  const values = t.columns.map((_, i) => (g.mask[i] === '1' ? `o.${cols[i]}` : cast(i))).join(', ');
  const op = hasNullableKey(t) ? 'IS NOT DISTINCT FROM' : '=';
  const match = t.keyColumns.map((k, j) => `o.${cols[k]} ${op} ${cast(k, `k${j}`)}`).join(' AND ');
  return `SELECT ${values} FROM ${src}, ${quoteTable(t)} AS o WHERE ${match}`;
}

function groupStatements(t: TableSchema, g: StageGroup, src: string): string[] {
  const target = quoteTable(t);
  const cols = t.columns.map((c) => quoteIdent(c.name));
  const cast = (i: number, field = `c${i}`) => `s.${field}::${t.columns[i]?.typeName}`;
  const keyIdx = t.keyColumns;
  // Null-safe where a key may hold NULL: always for p/m (rare on such tables), for d only in the
  // group of rows that do hold one.
  const nullSafe = hasNullableKey(t) && (g.op === 'p' || g.op === 'm' || g.mask === 'n');
  const keyMatch = (alias: string, field: (j: number) => string) =>
    keyIdx
      .map((k, j) => `${alias}.${cols[k]} ${nullSafe ? 'IS NOT DISTINCT FROM' : '='} ${cast(k, field(j))}`)
      .join(' AND ');
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
    case 'm':
      // All moves go together (tableStatements): one statement, one view of the old rows.
      return [];
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

/** True when a key column may hold NULL (a view's key: a nullable GROUP BY column, an outer join). */
export function hasNullableKey(table: TableSchema): boolean {
  return !table.keyless && table.keyColumns.some((k) => table.columns[k]?.nullable === true);
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

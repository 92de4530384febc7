/**
 * The records a file sink writes for one table, as lines of `jsonl` or `csv`.
 *
 * jsonl — one JSON object a line:
 *   {"op":"insert"|"update"|"delete"|"truncate","key":{…}|null,"row":{…}|null,"position":"0/16B3748"}
 *   `update` carries a full row to insert or overwrite by key; a partial update (TOAST columns the
 *   source did not log) adds `"unchanged":["col",…]` (those columns keep their value) and, when
 *   the key changed, `"from_key":{…}` (the row to copy those from; its removal is a separate
 *   `delete`). Records follow TableChanges' apply order; an epoch written in chunks has one such
 *   run per chunk, one after the other, each against the rows the runs before it left (a reader
 *   replays line by line either way), and `"position":null` (the manifest has it). Keyless tables
 *   use `insert`/`delete` with the full row, once per copy. Values: typed JSON (`../shared/json-values.ts`).
 *
 * csv — RFC 4180, header `op,position,unchanged,from_key,<columns…>`; cells are PostgreSQL text
 *   forms, NULL is an empty unquoted field, the empty string is `""`; `unchanged` and
 *   `from_key` hold the same JSON as above (or are empty); `position` is empty (NULL) in an
 *   epoch written in chunks.
 */
import type { Cell, Row } from '../../core/row.ts';
import type { TableSchema } from '../../core/table-schema.ts';
import type { TableChanges } from '../../core/epoch.ts';
import { jsonEncoders, rowToJson, unchangedColumns, type JsonEncoder } from '../shared/json-values.ts';

export type FileFormat = 'jsonl' | 'csv';

type Op = 'insert' | 'update' | 'delete' | 'truncate';

/** Turns changes of one table into lines of one format. */
export class RecordEncoder {
  readonly #table: TableSchema;
  readonly #format: FileFormat;
  readonly #json: JsonEncoder[];
  readonly #keyIdx: readonly number[];

  constructor(table: TableSchema, format: FileFormat) {
    this.#table = table;
    this.#format = format;
    this.#json = jsonEncoders(table);
    this.#keyIdx = table.keyColumns;
  }

  /** The first line of a file (CSV header), or null. */
  header(): string | null {
    if (this.#format !== 'csv') return null;
    return `${['op', 'position', 'unchanged', 'from_key', ...this.#table.columns.map((c) => c.name)].map(csvField).join(',')}\n`;
  }

  snapshotRow(row: Row, position: string): string {
    return this.#line('insert', row, position, {});
  }

  /**
   * Lines of one epoch's (or one chunk's) changes for this table, in apply order. `position` is
   * null for an epoch written in chunks: its end is not known while they are written.
   */
  *changes(tc: TableChanges, position: string | null): Iterable<string> {
    if (tc.truncate) yield this.#line('truncate', null, position, {});
    // Records in TableChanges' apply order, so a reader replays them line by line.
    for (const pu of tc.partialUpdates)
      if (pu.fromKey) yield this.#line('update', pu.row, position, { fromKey: pu.fromKey });
    for (const k of tc.deletes) yield this.#line('delete', k, position, { keyOnly: true });
    for (const r of tc.upserts) yield this.#line('update', r, position, {});
    for (const pu of tc.partialUpdates) if (!pu.fromKey) yield this.#line('update', pu.row, position, {});
    for (const d of tc.rowDeltas) {
      const op = d.count > 0 ? 'insert' : 'delete';
      for (let n = Math.abs(d.count); n > 0; n--) yield this.#line(op, d.row, position, {});
    }
  }

  #line(
    op: Op,
    row: readonly Cell[] | null,
    position: string | null,
    o: { keyOnly?: boolean; fromKey?: Row | null },
  ): string {
    const t = this.#table;
    const unchanged = row ? unchangedColumns(t, row) : [];
    const fromKey = o.fromKey ? rowToJson(t, this.#json, o.fromKey, this.#keyIdx) : null;
    if (this.#format === 'csv') {
      const cells = t.columns.map((_, i) =>
        (row && !o.keyOnly) || (row && this.#keyIdx.includes(i)) ? row[i] : null,
      );
      return `${[
        csvField(op),
        position === null ? '' : csvField(position),
        unchanged.length > 0 ? csvField(JSON.stringify(unchanged)) : '',
        fromKey === null ? '' : csvField(fromKey),
        ...cells.map((c) => (c === null || typeof c !== 'string' ? '' : csvField(c))),
      ].join(',')}\n`;
    }
    const keyed = this.#keyIdx.length > 0;
    const key = row && keyed ? rowToJson(t, this.#json, row, this.#keyIdx) : 'null';
    const body = row && !o.keyOnly ? rowToJson(t, this.#json, row) : 'null';
    const extra =
      (unchanged.length > 0 ? `,"unchanged":${JSON.stringify(unchanged)}` : '') +
      (fromKey === null ? '' : `,"from_key":${fromKey}`);
    return `{"op":"${op}","key":${key},"row":${body}${extra},"position":${JSON.stringify(position)}}\n`;
  }
}

/** Quotes always (so the empty string differs from NULL, an empty unquoted field). */
export function csvField(text: string): string {
  return `"${text.replaceAll('"', '""')}"`;
}

/**
 * Message bodies of the NATS sink, one message per row change. `kind` is the collapsed change:
 * `snapshot` (a row of the initial snapshot), `upsert` (a full row to insert or overwrite by
 * key), `partial` (changed cells only; see `unchanged` / `from_key`), `delete`, `insert` / a
 * keyless `delete` (one message per copy), `truncate`.
 *
 * - `tidemark-json`: {"op","table":{"schema","name"},"key","row","unchanged"?,"from_key"?,
 *   "position","epoch","commit_ts_ms"}, ops and typed values as in the file sink's jsonl.
 * - `debezium-json`: {"before","after","source":{…,"lsn"},"op":"r"|"c"|"u"|"d"|"t","ts_ms"};
 *   upserts are `u` with `before: null` (the sink has collapsed the epoch); unchanged TOAST
 *   cells carry Debezium's placeholder `__debezium_unavailable_value`.
 * - `canal-json`: {"database","table","pkNames","isDdl":false,"type":"INSERT"|"UPDATE"|"DELETE"|
 *   "TRUNCATE","es","ts","sqlType","pgType","data":[{…}],"old":null,"position"}; values are
 *   PostgreSQL text forms (canal carries strings); unchanged cells are left out of `data`.
 *
 * In an epoch written in chunks the end position, epoch number and commit time are not known
 * while its messages go out: those fields are null, and every message carries instead the
 * attempt that wrote it and its chunk number (tidemark-json and canal-json: `"attempt"`,
 * `"chunk"`; debezium-json: the same two fields in `source`), which the epoch marker names.
 */
import { UNCHANGED, type Cell, type Row } from '../../core/row.ts';
import type { TableSchema } from '../../core/table-schema.ts';
import { jsonEncoders, rowToJson, unchangedColumns, type JsonEncoder } from '../shared/json-values.ts';

export type NatsFormat = 'tidemark-json' | 'debezium-json' | 'canal-json';
export type ChangeKind = 'snapshot' | 'upsert' | 'partial' | 'delete' | 'insert' | 'truncate';

export interface ChangeContext {
  readonly changefeedId: string;
  /** The epoch's end position, number and last commit time; null in an epoch in chunks. */
  readonly position: string | null;
  readonly epoch: number | null;
  readonly commitTimeMs: number | null;
  /** An epoch in chunks: the attempt writing it (named by its marker) and the chunk, from 1. */
  readonly chunk: { readonly attempt: string; readonly n: number } | null;
}

const DEBEZIUM_UNAVAILABLE = '"__debezium_unavailable_value"';

export class MessageEncoder {
  readonly #table: TableSchema;
  readonly #format: NatsFormat;
  readonly #json: JsonEncoder[];

  constructor(table: TableSchema, format: NatsFormat) {
    this.#table = table;
    this.#format = format;
    this.#json = jsonEncoders(table);
  }

  /** The message body; `row` is the full row, the key (keyed delete) or the partial row. */
  encode(kind: ChangeKind, row: readonly Cell[] | null, fromKey: Row | null, ctx: ChangeContext): string {
    switch (this.#format) {
      case 'tidemark-json':
        return this.#tidemark(kind, row, fromKey, ctx);
      case 'debezium-json':
        return this.#debezium(kind, row, ctx);
      case 'canal-json':
        return this.#canal(kind, row, ctx);
    }
  }

  #tidemark(kind: ChangeKind, row: readonly Cell[] | null, fromKey: Row | null, ctx: ChangeContext): string {
    const t = this.#table;
    const keyed = t.keyColumns.length > 0;
    const op =
      kind === 'snapshot' || kind === 'insert'
        ? 'insert'
        : kind === 'upsert' || kind === 'partial'
          ? 'update'
          : kind;
    const key = row && keyed ? rowToJson(t, this.#json, row, t.keyColumns) : 'null';
    const body = row && !(kind === 'delete' && keyed) ? rowToJson(t, this.#json, row) : 'null';
    const unchanged = row ? unchangedColumns(t, row) : [];
    const extra =
      (unchanged.length > 0 ? `,"unchanged":${JSON.stringify(unchanged)}` : '') +
      (fromKey ? `,"from_key":${rowToJson(t, this.#json, fromKey, t.keyColumns)}` : '');
    return `{"op":"${op}","table":${JSON.stringify({ schema: t.schema, name: t.name })},"key":${key},"row":${body}${extra},"position":${JSON.stringify(ctx.position)},"epoch":${ctx.epoch},"commit_ts_ms":${ctx.commitTimeMs}${chunkFields(ctx)}}`;
  }

  #debezium(kind: ChangeKind, row: readonly Cell[] | null, ctx: ChangeContext): string {
    const t = this.#table;
    const op = { snapshot: 'r', insert: 'c', upsert: 'u', partial: 'u', delete: 'd', truncate: 't' }[kind];
    const deleted = kind === 'delete';
    const keyedDelete = deleted && t.keyColumns.length > 0;
    const image = (r: readonly Cell[]) => {
      const parts = t.columns.map((c, i) => {
        const cell = r[i];
        const v =
          cell === UNCHANGED
            ? DEBEZIUM_UNAVAILABLE
            : cell === null || cell === undefined
              ? 'null'
              : this.#json[i]!(cell);
        return `${JSON.stringify(c.name)}:${v}`;
      });
      return `{${parts.join(',')}}`;
    };
    const rowImage = row ? (keyedDelete ? rowToJson(t, this.#json, row, t.keyColumns) : image(row)) : 'null';
    const source = JSON.stringify({
      version: 'tidemark',
      connector: 'postgresql',
      name: ctx.changefeedId,
      ts_ms: ctx.commitTimeMs,
      snapshot: kind === 'snapshot' ? 'true' : 'false',
      schema: t.schema,
      table: t.name,
      lsn: ctx.position,
      ...(ctx.chunk ? { attempt: ctx.chunk.attempt, chunk: ctx.chunk.n } : {}),
    });
    const before = deleted ? rowImage : 'null';
    const after = deleted || kind === 'truncate' ? 'null' : rowImage;
    return `{"before":${before},"after":${after},"source":${source},"op":"${op}","ts_ms":${Date.now()}}`;
  }

  #canal(kind: ChangeKind, row: readonly Cell[] | null, ctx: ChangeContext): string {
    const t = this.#table;
    const type = {
      snapshot: 'INSERT',
      insert: 'INSERT',
      upsert: 'UPDATE',
      partial: 'UPDATE',
      delete: 'DELETE',
      truncate: 'TRUNCATE',
    }[kind];
    const data: Record<string, string | null> = {};
    if (row) {
      t.columns.forEach((c, i) => {
        const cell = row[i];
        if (cell !== UNCHANGED && cell !== undefined) data[c.name] = cell;
      });
    }
    return JSON.stringify({
      id: 0,
      database: t.schema,
      table: t.name,
      pkNames: t.keyColumns.map((i) => t.columns[i]!.name),
      isDdl: false,
      type,
      es: ctx.commitTimeMs,
      ts: Date.now(),
      sql: '',
      sqlType: Object.fromEntries(t.columns.map((c) => [c.name, c.typeOid])),
      pgType: Object.fromEntries(t.columns.map((c) => [c.name, c.typeName])),
      data: row ? [data] : null,
      old: null,
      position: ctx.position,
      ...(ctx.chunk ? { attempt: ctx.chunk.attempt, chunk: ctx.chunk.n } : {}),
    });
  }
}

/** `,"attempt":…,"chunk":n` for a message of an epoch in chunks, else nothing. */
function chunkFields(ctx: ChangeContext): string {
  return ctx.chunk ? `,"attempt":${JSON.stringify(ctx.chunk.attempt)},"chunk":${ctx.chunk.n}` : '';
}

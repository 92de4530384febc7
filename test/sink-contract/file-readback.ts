/**
 * A reader of the file sink's output, written from its documented format only: follows the
 * manifests in order and replays the records into each table's rows (PostgreSQL text forms).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Row } from '../../src/core/row.ts';
import type { TableSchema } from '../../src/core/table-schema.ts';
import type { FileManifest } from '../../src/sink/file/file-sink.ts';
import { jsonToPgText, parseJsonExact } from './json-readback.ts';

export interface Rec {
  op: string;
  key: Row | null;
  row: (string | null | undefined)[] | null;
  unchanged: string[];
  fromKey: Row | null;
}

export function readFileSinkTable(dir: string, t: TableSchema): Row[] {
  const manifests = readdirSync(dir)
    .filter((n) => /^manifest-\d{20}\.json$/.test(n))
    .sort();
  const records: Rec[] = [];
  for (const m of manifests) {
    const manifest = JSON.parse(readFileSync(join(dir, m), 'utf8')) as FileManifest;
    // Usually one file per table; a second one when its columns changed within the epoch.
    for (const file of manifest.files.filter((f) => f.schema === t.schema && f.table === t.name)) {
      const text = readFileSync(join(dir, file.path), 'utf8');
      if (manifest.format === 'csv') records.push(...csvRecords(text, t));
      else
        records.push(
          ...text
            .split('\n')
            .filter(Boolean)
            .map((l) => jsonRecord(parseJsonExact(l), t)),
        );
    }
  }
  return replayRecords(t, records);
}

/** Applies records in order to an empty table; returns its rows. */
export function replayRecords(t: TableSchema, records: Rec[]): Row[] {
  const keyed = t.keyColumns.length > 0;
  const keyOf = (r: readonly (string | null | undefined)[]) => JSON.stringify(t.keyColumns.map((i) => r[i]));
  const rows = new Map<string, Row>();
  let bag: Row[] = [];
  for (const r of records) {
    if (r.op === 'truncate') {
      rows.clear();
      bag = [];
    } else if (!keyed) {
      if (r.op === 'insert') bag.push(r.row as Row);
      else {
        const i = bag.findIndex((b) => JSON.stringify(b) === JSON.stringify(r.row));
        if (i >= 0) bag.splice(i, 1);
      }
    } else if (r.op === 'delete') {
      rows.delete(keyOf(r.key ?? []));
    } else if (r.unchanged.length > 0 || r.fromKey) {
      const from = keyOf(r.fromKey ?? r.key ?? []);
      const old = rows.get(from);
      if (!old) continue;
      rows.delete(from);
      const merged = t.columns.map((c, i) =>
        r.unchanged.includes(c.name) ? (old[i] ?? null) : (r.row?.[i] ?? null),
      );
      rows.set(keyOf(merged), merged);
    } else {
      rows.set(keyOf(r.row ?? []), r.row as Row);
    }
  }
  return keyed ? [...rows.values()] : bag;
}

/** A tidemark-json / jsonl record (already parsed) as a Rec. */
export function jsonRecord(parsed: unknown, t: TableSchema): Rec {
  const o = parsed as {
    op: string;
    key: Record<string, unknown> | null;
    row: Record<string, unknown> | null;
    unchanged?: string[];
    from_key?: Record<string, unknown>;
  };
  const toRow = (obj: Record<string, unknown> | null | undefined) =>
    obj ? t.columns.map((c) => (c.name in obj ? jsonToPgText(obj[c.name], c, t) : null)) : null;
  return {
    op: o.op,
    key: toRow(o.key),
    row: toRow(o.row),
    unchanged: o.unchanged ?? [],
    fromKey: toRow(o.from_key),
  };
}

/** Cells are matched to `t`'s columns by the header's names (a file may predate added columns). */
function csvRecords(text: string, t: TableSchema): Rec[] {
  const [header = [], ...lines] = parseCsv(text);
  const at = t.columns.map((c) => header.indexOf(c.name, 4));
  return lines.map((f) => {
    const cells = at.map((i) => (i < 0 ? null : (f[i] ?? null)));
    const fromKey = f[3] ? (parseJsonExact(f[3]) as Record<string, unknown>) : null;
    return {
      op: f[0] as string,
      key: cells,
      row: cells,
      unchanged: f[2] ? (JSON.parse(f[2]) as string[]) : [],
      fromKey: fromKey
        ? t.columns.map((c) => (c.name in fromKey ? jsonToPgText(fromKey[c.name], c, t) : null))
        : null,
    };
  });
}

/** RFC 4180 with one addition: an empty unquoted field is NULL. */
export function parseCsv(text: string): (string | null)[][] {
  const out: (string | null)[][] = [];
  let row: (string | null)[] = [];
  let i = 0;
  while (i < text.length) {
    if (text[i] === '"') {
      let v = '';
      i++;
      for (;;) {
        const c = text[i++];
        if (c === '"' && text[i] === '"') {
          v += '"';
          i++;
        } else if (c === '"' || c === undefined) break;
        else v += c;
      }
      row.push(v);
    } else {
      let v = '';
      while (i < text.length && text[i] !== ',' && text[i] !== '\n') v += text[i++];
      row.push(v === '' ? null : v);
    }
    const sep = text[i++];
    if (sep === '\n' || sep === undefined) {
      out.push(row);
      row = [];
    }
  }
  return out;
}

/**
 * Schema changes (barriers) in the stores without DDL: the file sink writes a schema-change
 * record file listed in the manifest between the table's files of the old and of the new shape;
 * the NATS sink publishes a schema message between the epoch's messages of the two shapes, named
 * by the epoch's marker like its chunks (docs/sinks.md, "Schema changes"). Neither becomes part
 * of the output unless the epoch commits.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { Row } from '../../src/core/row.ts';
import type { Epoch, TableChanges } from '../../src/core/epoch.ts';
import type { SchemaChange } from '../../src/core/schema-change.ts';
import type { TableSchema } from '../../src/core/table-schema.ts';
import { createFileSink, fileEpochName, type FileManifest } from '../../src/sink/file/file-sink.ts';
import { createNatsSink } from '../../src/sink/nats/nats-sink.ts';
import { startNats, type NatsServer } from '../support/nats.ts';
import { freePort } from '../support/pg-cluster.ts';
import { col, items, table } from './fixtures.ts';
import { committedChanges, streamMessages } from './readers.ts';

const PORT = await freePort(Number(process.env.TIDEMARK_TEST_NATS_SCHEMA_PORT ?? 4332));
let nats: NatsServer;

beforeAll(async () => {
  nats = await startNats({ port: PORT });
});
afterAll(async () => {
  await nats?.stop();
});

/** items with `note` renamed to `remark` and `stock int` added (existing rows: 0). */
const after: TableSchema = table('public', 'items', [
  col('id', 23, 'integer', { key: true }),
  col('name', 25, 'text'),
  col('price', 1700, 'numeric(12,2)'),
  col('remark', 25, 'text'),
  col('stock', 23, 'integer'),
]);
const change: SchemaChange = {
  kind: 'table-altered',
  before: items,
  after,
  columns: [
    { op: 'renamed', from: 'note', to: 'remark' },
    { op: 'added', column: 'stock', fill: { kind: 'value', text: '0' } },
  ],
  recopy: null,
  ddl: 'ALTER TABLE items RENAME note TO remark; ALTER TABLE items ADD stock int DEFAULT 0',
};

function upsert(t: TableSchema, rows: Row[]): TableChanges {
  return { table: t, truncate: false, deletes: [], upserts: rows, partialUpdates: [], rowDeltas: [] };
}

const SNAPSHOT = { position: '0/1000000', epoch: 0 };
const epoch1: Epoch = {
  checkpoint: { position: '0/1000100', epoch: 1 },
  commitTimeMs: 1_700_000_000_000,
  sourceChanges: 2,
  tables: [upsert(after, [['8', 'fig', '2.00', 'new', '3']])],
};

async function* snapshotOf(): AsyncIterable<{ table: TableSchema; rows: Row[] }> {
  yield { table: items, rows: [['1', 'apple', '1.50', 'red']] };
}

describe('file sink: a schema-change record in the epoch', () => {
  for (const format of ['jsonl', 'csv'] as const) {
    it(`${format}: listed between the old shape's file and the new shape's, committed by the manifest`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'tidemark-file-schema-'));
      onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
      const sink = createFileSink({ uri: `file://${dir}?format=${format}`, changefeedId: 'feed-1' });
      await sink.open();
      await sink.writeSnapshot([items], snapshotOf(), SNAPSHOT);

      // An attempt that aborts: nothing of it stays named (or on disk once reopened).
      const aborted = await sink.beginEpoch();
      await aborted.applyChunk([upsert(items, [['7', 'kiwi', '1.00', 'x']])]);
      await aborted.applySchema(change);
      await aborted.abort();

      const w = await sink.beginEpoch();
      await w.applyChunk([upsert(items, [['7', 'kiwi', '1.00', 'x']])]);
      await w.applySchema(change);
      await w.commit(epoch1);
      await sink.close();

      const manifest = JSON.parse(
        readFileSync(join(dir, `manifest-${fileEpochName(1)}.json`), 'utf8'),
      ) as FileManifest;
      expect(manifest.files.map((f) => [f.table, f.schemaChange ?? 'rows', f.rows])).toEqual([
        ['items', 'rows', 1],
        ['items', 'table-altered', 0],
        ['items', 'rows', 1],
      ]);
      const [old, record, now] = manifest.files.map((f) => readFileSync(join(dir, f.path), 'utf8'));
      expect(JSON.parse(record!)).toEqual({ op: 'schema', change: JSON.parse(JSON.stringify(change)) });
      if (format === 'csv') {
        expect(old!.split('\n')[0]).toContain('"note"');
        expect(now!.split('\n')[0]).toContain('"remark","stock"');
      } else {
        expect(JSON.parse(old!.trim()).row).toMatchObject({ note: 'x' });
        expect(JSON.parse(now!.trim()).row).toMatchObject({ remark: 'new', stock: 3 });
      }
      // Reopened: the aborted attempt's files are gone; only named files remain.
      const again = createFileSink({ uri: `file://${dir}?format=${format}`, changefeedId: 'feed-1' });
      await again.open();
      const named = new Set(
        readdirSync(dir)
          .filter((n) => n.startsWith('manifest-'))
          .flatMap((m) => (JSON.parse(readFileSync(join(dir, m), 'utf8')) as FileManifest).files)
          .map((f) => f.path),
      );
      const data = readdirSync(dir).filter((n) => /^\d{20}-/.test(n));
      expect(data.filter((n) => !named.has(n))).toEqual([]);
      await again.close();
    });
  }
});

describe('NATS sink: a schema message in the epoch', () => {
  it('published between the two shapes under the epoch’s attempt, committed by its marker', async () => {
    const stream = `t_${randomBytes(5).toString('hex')}`;
    const sink = createNatsSink({ uri: nats.url(stream), changefeedId: 'feed-1' });
    try {
      await sink.open();
      await sink.writeSnapshot([items], snapshotOf(), SNAPSHOT);
      const aborted = await sink.beginEpoch();
      await aborted.applySchema(change);
      await aborted.abort();
      const w = await sink.beginEpoch();
      await w.applyChunk([upsert(items, [['7', 'kiwi', '1.00', 'x']])]);
      await w.applySchema(change);
      await w.commit(epoch1);
    } finally {
      await sink.close();
    }
    const messages = await streamMessages({
      port: nats.port,
      user: nats.user,
      password: nats.password,
      stream,
    });
    const { epochs } = committedChanges(messages);
    expect(epochs).toHaveLength(2);
    const e1 = epochs[1]!;
    expect(e1.changes.map((c) => [c.data.op, c.data.chunk])).toEqual([
      ['update', 1],
      ['schema', 2],
      ['update', 3],
    ]);
    expect(e1.changes[1]!.data).toMatchObject({
      op: 'schema',
      table: { schema: 'public', name: 'items' },
      change: JSON.parse(JSON.stringify(change)),
    });
    // The aborted attempt's schema message is in the stream, but no marker names it.
    expect(messages.filter((m) => m.data.includes('"op":"schema"'))).toHaveLength(2);
  });
});

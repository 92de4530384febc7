/**
 * The contract every sink must pass (src/sink/sink.ts), run per sink:
 *
 *   describeSinkContract('sqlite', async () => ({ create, read, … }));
 *
 * `create()` returns a new sink instance on the same store (to test restarts), `read()` returns
 * a table's rows in PostgreSQL text form as the store holds them. Epochs written in chunks:
 * `chunked-cases.ts`.
 */
import { describe, expect, it } from 'vitest';
import type { Row } from '../../src/core/row.ts';
import type { ColumnSchema, TableSchema } from '../../src/core/table-schema.ts';
import type { Sink } from '../../src/sink/sink.ts';
import type { SnapshotRows } from '../../src/core/epoch.ts';
import { TidemarkError } from '../../src/errors/tidemark-error.ts';
import {
  chunksOf,
  col,
  contractEpochs,
  contractTables,
  expectedContent,
  snapshotRows,
  sortRows,
  table,
} from './fixtures.ts';
import { loadAllTypes, normalizeRows, project } from './types-fixture.ts';
import { runChunkedThroughput, runThroughput } from './throughput.ts';
import { chunkedEpochCases } from './chunked-cases.ts';

export interface SinkUnderTest {
  /** A new sink instance writing to the same store as every other instance of this test. */
  create(): Sink;
  /** The table's rows as stored, converted back to PostgreSQL text forms. */
  read(table: TableSchema): Promise<Row[]>;
  /** True when a snapshot that fails midway leaves nothing visible. */
  readonly atomicSnapshot: boolean;
  /** True when an existing target table with other columns is detected. */
  readonly detectsSchemaMismatch: boolean;
  /** True when the store reads back the source's text forms byte for byte. */
  readonly exactText: boolean;
  /** The store's documented changes to a value (applied to the expected text before comparing). */
  readonly documentedLoss?: (column: ColumnSchema, text: string) => string;
  /**
   * Columns of the all-types table (`test/support/all-types.ts`) the store cannot hold exactly:
   * each must be refused with SINK_UNSUPPORTED_TYPE or SINK_VALUE_OUT_OF_RANGE naming the column.
   */
  readonly rejectsTypes?: readonly string[];
  /** A column type the sink cannot map, if any. */
  readonly unmappable?: ColumnSchema;
  /** A sink with a wrong password in its URI, and the password, if the store authenticates. */
  readonly wrongPassword?: { create(): Sink; password: string };
}

export type SinkFactory = () => Promise<SinkUnderTest>;

/**
 * Which store-specific cases apply to a sink, declared at registration so that a case that cannot
 * apply (a password for a file, an unmappable type for a store that keeps any value as text) is
 * not registered at all rather than skipped.
 */
export interface ContractApplies {
  /** The store refuses some PostgreSQL type (`SinkUnderTest.unmappable`). */
  readonly unmappableType: boolean;
  /** The store can see that an existing table has other columns. */
  readonly schemaMismatch: boolean;
  /** The store authenticates (`SinkUnderTest.wrongPassword`). */
  readonly wrongPassword: boolean;
}

/** `it` when the case applies; otherwise registers nothing (not even a skipped test). */
function when(applies: boolean): (name: string, fn: () => Promise<void>) => void {
  return applies ? (name, fn) => it(name, fn) : () => undefined;
}

export function describeSinkContract(name: string, factory: SinkFactory, applies: ContractApplies): void {
  describe(`sink contract: ${name}`, () => {
    it('applies snapshot and epochs; a new instance resumes from the exact checkpoint', async () => {
      const sut = await factory();
      const sink = sut.create();
      try {
        expect(await sink.open()).toBeNull();
        await sink.writeSnapshot(contractTables, chunksOf(snapshotRows()), {
          position: '0/1000000',
          epoch: 0,
        });
        const epochs = contractEpochs();
        await sink.commitEpoch(epochs[0]!);
        const afterOne = expectedContent(snapshotRows(), epochs.slice(0, 1));
        for (const t of contractTables) expect(sortRows(await sut.read(t))).toEqual(afterOne.get(key(t)));
        await sink.commitEpoch(epochs[1]!);
      } finally {
        await sink.close();
        await sink.close();
      }
      const expected = expectedContent(snapshotRows(), contractEpochs());
      for (const t of contractTables)
        expect(sortRows(await sut.read(t)), key(t)).toEqual(expected.get(key(t)));
      const again = sut.create();
      try {
        expect(await again.open()).toEqual({ position: '0/1000200', epoch: 2 });
      } finally {
        await again.close();
      }
    });

    it('declares its guarantee', async () => {
      const sink = (await factory()).create();
      expect(['exactly-once', 'effectively-once']).toContain(sink.guarantee);
      await sink.close();
    });

    it('round-trips every type of ALL_TYPES, or refuses it with a clear error', async () => {
      const sut = await factory();
      const all = await loadAllTypes();
      const rejected = sut.rejectsTypes ?? [];
      for (const column of rejected) {
        const one = project(all, `all_types_${column}`, [column]);
        const sink = sut.create();
        try {
          expect(await sink.open()).toBeNull();
          const err = await sink
            .writeSnapshot([one.table], chunksOf([{ table: one.table, rows: one.rows }]), cp(0))
            .catch((e: unknown) => e);
          expect(err, column).toBeInstanceOf(TidemarkError);
          expect(['SINK_UNSUPPORTED_TYPE', 'SINK_VALUE_OUT_OF_RANGE'], column).toContain(
            (err as TidemarkError).code,
          );
          expect((err as TidemarkError).message).toContain(column);
        } finally {
          await sink.close();
        }
      }
      const kept = all.table.columns.map((c) => c.name).filter((n) => n !== 'id' && !rejected.includes(n));
      const { table: t, rows } = project(all, 'all_types', kept);
      const sink = sut.create();
      try {
        expect(await sink.open()).toBeNull();
        await sink.writeSnapshot([t], chunksOf([{ table: t, rows }]), cp(0));
      } finally {
        await sink.close();
      }
      const got = normalizeRows(t, await sut.read(t), { exact: sut.exactText });
      const loss = sut.documentedLoss;
      const expected = loss
        ? rows.map((r) => r.map((c, i) => (c === null ? c : loss(t.columns[i]!, c))))
        : rows;
      const want = normalizeRows(t, expected, { exact: sut.exactText });
      expect(got.length).toBe(want.length);
      for (const [r, row] of want.entries())
        for (const [i, cell] of row.entries())
          expect(got[r]?.[i], `row ${r} ${t.columns[i]!.name}`).toEqual(cell);
    });

    it('a failed snapshot leaves no checkpoint (and no rows where the store is atomic)', async () => {
      const sut = await factory();
      const sink = sut.create();
      async function* failing(): AsyncIterable<SnapshotRows> {
        yield { table: contractTables[0]!, rows: [['1', 'a', '1.00', null]] };
        throw new Error('snapshot reader failed');
      }
      try {
        await sink.open();
        await expect(sink.writeSnapshot(contractTables, failing(), cp(0))).rejects.toThrow(
          'snapshot reader failed',
        );
      } finally {
        await sink.close();
      }
      const again = sut.create();
      try {
        expect(await again.open()).toBeNull();
      } finally {
        await again.close();
      }
      if (sut.atomicSnapshot) expect(await sut.read(contractTables[0]!).catch(() => [])).toEqual([]);
    });

    when(applies.unmappableType)('reports a clear error for an unmappable column type', async () => {
      const sut = await factory();
      if (!sut.unmappable) throw new Error('applies.unmappableType needs SinkUnderTest.unmappable');
      const bad = table('public', 'bad_types', [col('id', 23, 'integer', { key: true }), sut.unmappable]);
      const sink = sut.create();
      try {
        await sink.open();
        const err = await sink.writeSnapshot([bad], chunksOf([]), cp(0)).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(TidemarkError);
        expect((err as TidemarkError).code).toBe('SINK_UNSUPPORTED_TYPE');
        expect((err as TidemarkError).message).toContain('bad_types');
        expect((err as TidemarkError).message).toContain(sut.unmappable.name);
        expect((err as TidemarkError).message).toContain(sut.unmappable.typeName);
      } finally {
        await sink.close();
      }
    });

    when(applies.schemaMismatch)('refuses a snapshot into an existing table with other columns', async () => {
      const sut = await factory();
      const first = sut.create();
      const t = contractTables[0]!;
      const changed = { ...t, columns: [...t.columns, col('extra', 25, 'text')] };
      try {
        await first.open();
        await first.writeSnapshot([changed], chunksOf([]), cp(0));
      } finally {
        await first.close();
      }
      const second = sut.create();
      try {
        await second.open();
        await expect(second.writeSnapshot([t], chunksOf([]), cp(0))).rejects.toMatchObject({
          code: 'SINK_SCHEMA_MISMATCH',
        });
      } finally {
        await second.close();
      }
    });

    when(applies.wrongPassword)(
      'answers a wrong password with AUTH_FAILED, without the password',
      async () => {
        const sut = await factory();
        if (!sut.wrongPassword) throw new Error('applies.wrongPassword needs SinkUnderTest.wrongPassword');
        const sink = sut.wrongPassword.create();
        const err = await sink.open().catch((e: unknown) => e);
        await sink.close();
        expect(err).toBeInstanceOf(TidemarkError);
        expect((err as TidemarkError).code).toBe('AUTH_FAILED');
        expect(JSON.stringify((err as TidemarkError).toJSON())).not.toContain(sut.wrongPassword.password);
        expect((err as TidemarkError).message).not.toContain(sut.wrongPassword.password);
      },
    );

    chunkedEpochCases(factory);

    it('prints rows/s for 100k upserts', async () => {
      const sut = await factory();
      await runThroughput(name, sut.create(), 100_000);
    });

    it('prints rows/s for 100k upserts as 10 chunks of one epoch', async () => {
      const sut = await factory();
      await runChunkedThroughput(name, sut.create(), 100_000, 10);
    });
  });
}

function key(t: TableSchema): string {
  return `${t.schema}.${t.name}`;
}

function cp(epoch: number): { position: string; epoch: number } {
  return { position: `0/${(0x1000000 + epoch * 0x100).toString(16).toUpperCase()}`, epoch };
}

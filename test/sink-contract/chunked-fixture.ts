/**
 * One epoch after the contract snapshot (fixtures.ts), built by the real EpochBuilder twice from
 * the same source changes: once taken in chunks (`takeChunk` inside a large transaction), once
 * collapsed whole. Applying the chunks in order and then `last` must leave the store exactly as
 * applying `whole` does.
 *
 *   txn 1 (small, committed)  items 1: partial update (TOAST note unchanged); events +buy
 *   txn 2 (large) ── chunk 1  items 3 → 30 (key move, note unchanged); items +7; lines (100,2)
 *                             updated; events −click
 *                 ── chunk 2  items 30 → 31 (a move reading the row chunk 1 wrote); items 7
 *                             overwritten; items −2; audit appears (a new table); events +buy
 *                 ── chunk 3  TRUNCATE lines, then lines +(5,1); audit 1 deleted
 *                 ── last     items 31 partial update; events −buy; audit 2 overwritten
 */
import { UNCHANGED, type Row } from '../../src/core/row.ts';
import { EpochBuilder } from '../../src/coordinator/epoch-builder.ts';
import type { Epoch, TableChanges } from '../../src/core/epoch.ts';
import { Lsn } from '../../src/source/postgres/lsn.ts';
import { col, events, items, lines, table } from './fixtures.ts';

/** A table the snapshot does not have: it first appears in chunk 2. */
export const audit = table(
  'public',
  'audit',
  [col('id', 23, 'integer', { key: true }), col('what', 25, 'text')],
  16400,
);

export interface ChunkedEpoch {
  /** For `EpochWriter.applyChunk`, in order. */
  readonly chunks: readonly (readonly TableChanges[])[];
  /** For `EpochWriter.commit`: the changes after the last chunk, and the checkpoint. */
  readonly last: Epoch;
  /** The same source changes as one collapsed epoch, for `commitEpoch`. */
  readonly whole: Epoch;
}

const none = null;

export function chunkedEpoch(): ChunkedEpoch {
  const chunked = new EpochBuilder();
  const whole = new EpochBuilder();
  const chunks: TableChanges[][] = [];
  const both = (fn: (b: EpochBuilder) => void) => {
    fn(chunked);
    fn(whole);
  };
  const chunk = () => chunks.push(chunked.takeChunk());
  const key = (id: string): Row => [id, none, none, none];

  both((b) => {
    b.beginTransaction();
    b.update(items, ['1', 'apple', '1.80', UNCHANGED], null, false);
    b.insert(events, ['buy', '2']);
    b.commitTransaction(Lsn.parse('0/1000080'), 1_700_000_000_500);
    b.beginTransaction();
    b.update(items, ['30', 'fig', '9.99', UNCHANGED], key('3'), false);
    b.insert(items, ['7', 'lime', '0.50', 'sour']);
    b.update(lines, ['100', '2', '8'], null, false);
    b.delete(events, ['click', '1']);
  });
  chunk();
  both((b) => {
    b.update(items, ['31', 'fig2', '9.99', UNCHANGED], key('30'), false);
    b.update(items, ['7', 'lime', '0.55', 'sour'], null, false);
    b.delete(items, key('2'));
    b.insert(audit, ['1', 'created']);
    b.insert(audit, ['2', 'x']);
    b.insert(events, ['buy', '2']);
  });
  chunk();
  both((b) => {
    b.truncate([lines]);
    b.insert(lines, ['5', '1', '1']);
    b.delete(audit, ['1', none]);
  });
  chunk();
  both((b) => {
    b.update(items, ['31', 'fig3', UNCHANGED, UNCHANGED], null, false);
    b.delete(events, ['buy', '2']);
    b.update(audit, ['2', 'y'], null, false);
    b.commitTransaction(Lsn.parse('0/1000100'), 1_700_000_001_000);
  });
  return { chunks, last: chunked.cut(1)!, whole: whole.cut(1)! };
}

/**
 * A chunk whose input fails part way (as a caller's iterator or a bad row would): a new table's
 * rows, then items' deletes, then its upserts, whose third row throws when the sink reads it.
 */
export function failingChunk(): TableChanges[] {
  const upserts: Row[] = [
    ['8', 'plum', '1.00', null],
    ['9', 'date', '2.00', null],
    ['10', 'never', '3.00', null],
  ];
  const failing = new Proxy(upserts, {
    get(target, prop, receiver) {
      if (prop === '2') throw new Error('chunk input failed');
      return Reflect.get(target, prop, receiver) as unknown;
    },
  });
  const changes = (t: typeof items, c: Partial<TableChanges>): TableChanges => ({
    table: t,
    truncate: false,
    deletes: [],
    upserts: [],
    partialUpdates: [],
    rowDeltas: [],
    ...c,
  });
  return [
    changes(audit, { upserts: [['5', 'half']] }),
    changes(items, { deletes: [['1', null, null, null]], upserts: failing }),
  ];
}

/** `items` after the source added a column (`stock`) in the middle of the epoch. */
export const widerItems = { ...items, columns: [...items.columns, col('stock', 23, 'integer')] };

/**
 * Chunks of one epoch across that schema change: chunk 1 writes items with its old columns,
 * chunk 2 with the new one (an upsert, a partial update of a snapshot row, and a key move of the
 * row chunk 1 wrote). `expected` is items afterwards, read with the new columns.
 */
export function widenedChunks(): { chunks: TableChanges[][]; expected: Row[] } {
  const changes = (t: typeof items, c: Partial<TableChanges>): TableChanges => ({
    table: t,
    truncate: false,
    deletes: [],
    upserts: [],
    partialUpdates: [],
    rowDeltas: [],
    ...c,
  });
  return {
    chunks: [
      [changes(items, { upserts: [['7', 'lime', '0.50', 'sour']] })],
      [
        changes(widerItems, {
          deletes: [['7', null, null, null, null]],
          upserts: [['8', 'plum', '1.00', null, '3']],
          partialUpdates: [
            { row: ['1', 'apple', '1.60', UNCHANGED, '5'], fromKey: null },
            { row: ['70', 'lime', '0.50', UNCHANGED, '1'], fromKey: ['7', null, null, null, null] },
          ],
        }),
      ],
    ],
    expected: [
      ['1', 'apple', '1.60', 'red', '5'],
      ['2', 'pear', '2.25', null, null],
      ['3', 'fig', '9.99', 'x'.repeat(3000), null],
      ['4', 'kiwi', '0.10', 'green', null],
      ['70', 'lime', '0.50', 'sour', '1'],
      ['8', 'plum', '1.00', null, '3'],
    ],
  };
}

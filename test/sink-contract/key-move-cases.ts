/**
 * Key moves with unchanged TOAST cells (sink.ts `TableChanges`), registered for every sink by
 * `describeSinkContract`: a property test. Random statements — key moves, updates that leave the
 * 10 kB `doc` column unchanged (the source does not log it), updates of it, inserts, deletes — run
 * through the real EpochBuilder, whole or in chunks, into the sink; the oracle applies the same
 * statements in order to a map. Seeded (mulberry32), so a failure names its seed and statements.
 *
 * Many independent tables share one snapshot and one run of epochs (each table is one case),
 * so a sink pays for a few transactions, not for one per case. Table 0 and 1 are the issue's
 * cases, fixed: a chain (`id=3 WHERE id=2; id=2 WHERE id=1`) and a swap through a free key.
 */
import { expect, it } from 'vitest';
import { UNCHANGED, type Cell, type Row } from '../../src/core/row.ts';
import type { TableSchema } from '../../src/core/table-schema.ts';
import { EpochBuilder } from '../../src/coordinator/epoch-builder.ts';
import { mulberry32 } from '../../src/cli/demo/workload.ts';
import { Lsn } from '../../src/source/postgres/lsn.ts';
import type { SnapshotRows } from '../../src/core/epoch.ts';
import type { SinkFactory } from './contract.ts';
import { chunksOf, col, sortRows, table } from './fixtures.ts';

const SEED = 20261205;
const CASES = 24;
const EPOCHS = 3;
const KEYS = 8;

/** `doc` and `note` stand for TOASTed columns: an update leaves them out unless it sets them. */
type Stmt =
  | { readonly kind: 'move'; readonly from: number; readonly to: number; readonly v?: string }
  | { readonly kind: 'set-v'; readonly id: number; readonly v: string }
  | { readonly kind: 'set-doc'; readonly id: number; readonly doc: string }
  | { readonly kind: 'set-note'; readonly id: number; readonly note: string }
  | { readonly kind: 'insert'; readonly id: number; readonly v: string; readonly doc: string }
  | { readonly kind: 'delete'; readonly id: number };

interface Values {
  v: string;
  doc: string;
  note: string;
}

interface Case {
  readonly table: TableSchema;
  /** Per epoch, per transaction, its statements. */
  readonly epochs: Stmt[][][];
  readonly initial: Map<number, Values>;
}

/** A 10 kB value, different per tag: stands for a TOASTed column. */
function doc(tag: string): string {
  return `${tag}:`.padEnd(10_000, tag.slice(-1));
}

function docsTable(i: number): TableSchema {
  return table(
    'public',
    `moves_${i}`,
    [
      col('id', 23, 'integer', { key: true }),
      col('v', 25, 'text'),
      col('doc', 25, 'text'),
      col('note', 25, 'text'),
    ],
    20_000 + i,
  );
}

function initialRows(): Map<number, Values> {
  return new Map([1, 2, 3, 4].map((id) => [id, { v: `v${id}`, doc: doc(`d${id}`), note: doc(`n${id}`) }]));
}

function fixedCases(): Case[] {
  return [
    // The chain: the row moved to 3 is the old 2, and 1 arrives at 2.
    {
      table: docsTable(0),
      initial: initialRows(),
      epochs: [
        [
          [
            { kind: 'move', from: 2, to: 3 },
            { kind: 'move', from: 1, to: 2 },
          ],
        ],
      ],
    },
    // A swap of 1 and 2 through the free key 9, in one epoch: a cycle of moves.
    {
      table: docsTable(1),
      initial: initialRows(),
      epochs: [
        [
          [
            { kind: 'move', from: 1, to: 9 },
            { kind: 'move', from: 2, to: 1 },
            { kind: 'move', from: 9, to: 2, v: 'swapped' },
          ],
        ],
      ],
    },
  ];
}

function randomCase(i: number, random: () => number): Case {
  const initial = initialRows();
  const keys = new Set(initial.keys());
  const pick = (from: number[]) => from[Math.floor(random() * from.length)]!;
  const free = () => Array.from({ length: KEYS }, (_, k) => k + 1).filter((k) => !keys.has(k));
  let n = 0;
  const epochs: Stmt[][][] = [];
  for (let e = 0; e < EPOCHS; e++) {
    const txns: Stmt[][] = [];
    for (let t = 0, txnCount = 1 + Math.floor(random() * 3); t < txnCount; t++) {
      const stmts: Stmt[] = [];
      for (let s = 0, count = 1 + Math.floor(random() * 4); s < count; s++) {
        const existing = [...keys];
        const r = random();
        const tag = `c${i}e${e}s${n++}`;
        if (existing.length > 0 && free().length > 0 && r < 0.45) {
          const from = pick(existing);
          const to = pick(free());
          keys.delete(from);
          keys.add(to);
          stmts.push(random() < 0.5 ? { kind: 'move', from, to } : { kind: 'move', from, to, v: tag });
        } else if (existing.length > 0 && r < 0.6) {
          stmts.push({ kind: 'set-v', id: pick(existing), v: tag });
        } else if (existing.length > 0 && r < 0.65) {
          stmts.push({ kind: 'set-doc', id: pick(existing), doc: doc(tag) });
        } else if (existing.length > 0 && r < 0.72) {
          stmts.push({ kind: 'set-note', id: pick(existing), note: doc(`${tag}n`) });
        } else if (free().length > 0 && r < 0.85) {
          const id = pick(free());
          keys.add(id);
          stmts.push({ kind: 'insert', id, v: tag, doc: doc(tag) });
        } else if (existing.length > 0) {
          const id = pick(existing);
          keys.delete(id);
          stmts.push({ kind: 'delete', id });
        }
      }
      txns.push(stmts);
    }
    epochs.push(txns);
  }
  return { table: docsTable(i), initial, epochs };
}

/** The oracle: the statements applied in order. */
function applyInOrder(c: Case, epochs: number): Row[] {
  const rows = new Map([...c.initial].map(([k, r]) => [k, { ...r }]));
  for (const txns of c.epochs.slice(0, epochs))
    for (const stmts of txns)
      for (const s of stmts) {
        if (s.kind === 'move') {
          const r = rows.get(s.from)!;
          rows.delete(s.from);
          rows.set(s.to, { ...r, v: s.v ?? r.v });
        } else if (s.kind === 'set-v') rows.get(s.id)!.v = s.v;
        else if (s.kind === 'set-doc') rows.get(s.id)!.doc = s.doc;
        else if (s.kind === 'set-note') rows.get(s.id)!.note = s.note;
        else if (s.kind === 'insert') rows.set(s.id, { v: s.v, doc: s.doc, note: s.v });
        else rows.delete(s.id);
      }
  return sortRows([...rows].map(([id, r]) => [String(id), r.v, r.doc, r.note]));
}

/** A statement as pgoutput reports it (REPLICA IDENTITY DEFAULT: the old key only; doc not logged unless set). */
function feed(b: EpochBuilder, t: TableSchema, s: Stmt, current: Map<number, { v: string }>): void {
  const key = (id: number): Row => [String(id), null, null, null];
  switch (s.kind) {
    case 'move': {
      const v = s.v ?? current.get(s.from)!.v;
      current.set(s.to, { v });
      current.delete(s.from);
      b.update(t, [String(s.to), v, UNCHANGED, UNCHANGED], key(s.from), false);
      return;
    }
    case 'set-v':
      current.set(s.id, { v: s.v });
      b.update(t, [String(s.id), s.v, UNCHANGED, UNCHANGED] as Cell[], null, false);
      return;
    case 'set-doc':
      b.update(t, [String(s.id), current.get(s.id)!.v, s.doc, UNCHANGED], null, false);
      return;
    case 'set-note':
      b.update(t, [String(s.id), current.get(s.id)!.v, UNCHANGED, s.note], null, false);
      return;
    case 'insert':
      current.set(s.id, { v: s.v });
      // A short note: inline, not TOASTed, so it is logged like v even when unchanged.
      b.insert(t, [String(s.id), s.v, s.doc, s.v]);
      return;
    case 'delete':
      current.delete(s.id);
      b.delete(t, key(s.id));
  }
}

export function keyMoveCases(factory: SinkFactory): void {
  for (const mode of ['whole', 'in chunks'] as const) {
    it(`random key moves and updates leaving a 10 kB cell unchanged equal the statements applied in order (${mode})`, async () => {
      const random = mulberry32(SEED + (mode === 'whole' ? 0 : 1));
      const cases = [...fixedCases(), ...Array.from({ length: CASES }, (_, i) => randomCase(i + 2, random))];
      const sut = await factory();
      const sink = sut.create();
      const chunkAt = mulberry32(SEED + 7);
      // What the source has (v only; doc is never needed to write a change), per table.
      const current = cases.map((c) => new Map([...c.initial].map(([k, r]) => [k, { v: r.v }])));
      try {
        expect(await sink.open()).toBeNull();
        const snapshot: SnapshotRows[] = cases.map((c) => ({
          table: c.table,
          rows: [...c.initial].map(([id, r]) => [String(id), r.v, r.doc, r.note]),
        }));
        await sink.writeSnapshot(
          cases.map((c) => c.table),
          chunksOf(snapshot),
          { position: '0/3000000', epoch: 0 },
        );
        for (let e = 0; e < EPOCHS; e++) {
          const b = new EpochBuilder();
          const writer = mode === 'in chunks' ? await sink.beginEpoch() : null;
          const txnCount = Math.max(...cases.map((c) => c.epochs[e]?.length ?? 0));
          for (let t = 0; t < txnCount; t++) {
            b.beginTransaction();
            for (const [ci, c] of cases.entries()) {
              for (const s of c.epochs[e]?.[t] ?? []) {
                feed(b, c.table, s, current[ci]!);
                // A chunk boundary anywhere, even inside a transaction (sink.ts EpochWriter).
                if (writer && chunkAt() < 0.05) await writer.applyChunk(b.takeChunk());
              }
            }
            b.commitTransaction(
              Lsn.parse(`0/${(0x3000000 + (e + 1) * 0x100 + t).toString(16)}`),
              1_700_000_000_000,
            );
          }
          const epoch = b.cut(e + 1)!;
          if (writer) await writer.commit(epoch);
          else await sink.commitEpoch(epoch);
        }
      } finally {
        await sink.close();
      }
      for (const c of cases) {
        const got = sortRows(await sut.read(c.table));
        const want = applyInOrder(c, EPOCHS);
        const short = (rows: Row[]) =>
          rows.map(
            (r) => `${r[0]}:${r[1]}:${(r[2] ?? 'NULL').slice(0, 12)}:${(r[3] ?? 'NULL').slice(0, 12)}`,
          );
        expect(
          short(got),
          `${c.table.name} (seed ${SEED}, ${mode}): ${JSON.stringify(c.epochs.map((e) => e.flat().map(describe)))}`,
        ).toEqual(short(want));
        expect(got, c.table.name).toEqual(want);
      }
    });
  }
}

function describe(s: Stmt): string {
  switch (s.kind) {
    case 'move':
      return `SET id=${s.to}${s.v ? ', v' : ''} WHERE id=${s.from}`;
    case 'set-v':
      return `SET v WHERE id=${s.id}`;
    case 'set-doc':
      return `SET doc WHERE id=${s.id}`;
    case 'set-note':
      return `SET note WHERE id=${s.id}`;
    case 'insert':
      return `INSERT ${s.id}`;
    case 'delete':
      return `DELETE ${s.id}`;
  }
}

/**
 * The verify cases run against every SQL sink: equal on the hostile shapes, then each kind of
 * tampering found (a changed value per type family, NULL vs '', a missing and an extra row).
 */
import { expect } from 'vitest';
import type { TestDatabase } from '../support/db.ts';
import { testConfig, waitForCatchUp } from '../support/changefeed.ts';
import { startChangefeed } from '../support/engine.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import { verifyChangefeed } from '../../src/verify/verify-changefeed.ts';
import { countDifferences, type VerifyResult } from '../../src/verify/verify-tables.ts';
import { createSink } from '../../src/sink/create-sink.ts';
import { HOSTILE_SETUP_SQL, HOSTILE_TABLES, TAMPERED, tamperStatements } from './hostile-fixture.ts';

export const VERIFY_OPTS = { chunkRows: 7, rounds: 10, waitMs: 30_000 };

export interface VerifyTarget {
  readonly uri: string;
  exec(sql: string): Promise<void>;
  readonly dialect: Parameters<typeof tamperStatements>[0];
}

export function verdict(r: VerifyResult, name: string) {
  const v = r.tables.find((t) => t.table.name === name);
  if (!v) throw new Error(`no verdict for ${name}`);
  return v;
}

export async function verifyHostileAndTampered(src: TestDatabase, target: VerifyTarget): Promise<void> {
  await src.query(HOSTILE_SETUP_SQL);
  const cfg = testConfig({ source: src.url, sink: target.uri, tables: HOSTILE_TABLES });
  const feed = startChangefeed(cfg, { logger: silentLogger });
  try {
    await waitForSinkCheckpoint(cfg.id, target.uri, src, () => feed.status().error);
    const equal = await verifyChangefeed(cfg, VERIFY_OPTS);
    const differing = equal.tables.filter((v) => countDifferences(v) > 0);
    expect(differing.map((v) => [v.table.name, v.differences])).toEqual([]);
    expect(equal.equal).toBe(true);

    for (const sql of tamperStatements(target.dialect)) await target.exec(sql);
    const r = await verifyChangefeed(cfg, VERIFY_OPTS);
    expect(r.equal).toBe(false);
    const fam = verdict(r, 'fam');
    expect(fam.differences.changed.map((c) => c.source[0]).sort()).toEqual([...TAMPERED.changedFam].sort());
    expect(fam.differences.missing.map((row) => row[0])).toEqual([TAMPERED.missingFam]);
    expect(fam.differences.extra.map((row) => row[0])).toEqual([TAMPERED.extraFam]);
    expect(verdict(r, 'User').differences.changed.map((c) => [c.source[0], c.target[1]])).toEqual([
      [TAMPERED.changedUser, null],
    ]);
    const others = r.tables.filter((v) => !['fam', 'User'].includes(v.table.name));
    expect(others.map(countDifferences)).toEqual(others.map(() => 0));
  } finally {
    await feed.stop();
  }
}

/** Waits until the sink (any SQL sink, through its read session) passes the source's position now. */
export async function waitForSinkCheckpoint(
  id: string,
  uri: string,
  src: TestDatabase,
  feedError: () => unknown = () => null,
): Promise<void> {
  if (uri.startsWith('postgres')) return waitForCatchUp({ sourceUrl: src.url, sinkUrl: uri, id });
  const { Lsn } = await import('../../src/source/postgres/lsn.ts');
  const { rows } = await src.query<{ l: string }>('SELECT pg_current_wal_insert_lsn()::text AS l');
  const target = Lsn.parse(rows[0]!.l);
  const sink = await createSink(uri, { changefeedId: id });
  const deadline = Date.now() + 60_000;
  try {
    for (;;) {
      const s = await sink.openRead!().catch(() => null);
      const cp = s?.checkpoint ?? null;
      await s?.close();
      if (cp && Lsn.parse(cp.position).compare(target) >= 0) return;
      if (Date.now() > deadline)
        throw new Error(
          `sink did not catch up to ${target.toString()}; changefeed error: ${JSON.stringify(feedError())}`,
        );
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await sink.close();
  }
}

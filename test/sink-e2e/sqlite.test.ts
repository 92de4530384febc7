import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, onTestFinished } from 'vitest';
import { readSqlite, sqliteCheckpoint } from '../sink-contract/readers.ts';
import { crashRecovery, FEED_ID, snapshotAndStream, twoProcesses, type E2eTarget } from './workload.ts';
import { viewWithNullGroupAndLostState } from './views.ts';

function target(): E2eTarget & Required<Pick<E2eTarget, 'holdFirstCommit'>> {
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-e2e-sqlite-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'replica.db');
  return {
    uri: `sqlite://${path}`,
    checkpoint: async () => sqliteCheckpoint(path, FEED_ID),
    read: async (t) => readSqlite(path, t),
    // The write lock: every commit waits for it (up to the sink's 10 s busy timeout).
    holdFirstCommit: async () => {
      const db = new Database(path);
      db.exec('BEGIN IMMEDIATE');
      return async () => {
        if (!db.open) return;
        db.exec('ROLLBACK');
        db.close();
      };
    },
  };
}

describe('end to end into sqlite', () => {
  it('SIGKILL 10 times under load: no loss, no duplicates', { timeout: 300_000 }, async () => {
    await crashRecovery(target(), { kills: 10, seed: 20261121 });
  });

  it(
    'snapshot with a concurrent writer, then streaming: equal to the source',
    { timeout: 180_000 },
    async () => {
      await snapshotAndStream(target(), { seed: 7 });
    },
  );

  it(
    'a view with a NULL group; its state lost and restarted: a replacing snapshot, equal to the source',
    { timeout: 240_000 },
    async () => {
      await viewWithNullGroupAndLostState(target(), { seed: 53 });
    },
  );

  it(
    'two processes on one changefeed under load: one stops with SINK_FENCED, the sink equals the source',
    { timeout: 240_000 },
    async () => {
      await twoProcesses(target(), { seed: 54 });
    },
  );
});

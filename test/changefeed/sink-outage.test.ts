/**
 * Recovery without re-reading the source: the downstream server goes away for a while under
 * load, the changefeed retries with backoff, and when the downstream is back it resumes from the
 * local change log. The source slot is streamed once, continuously (one START_REPLICATION), and
 * the downstream equals the source with no loss and no duplicate.
 */
import { describe, expect, it } from 'vitest';
import type pg from 'pg';
import { freshDatabase } from '../support/db.ts';
import { freePort, startCluster } from '../support/pg-cluster.ts';
import {
  expectSameTables,
  sinkCheckpoint,
  testConfig,
  waitForCatchUp,
  withClient,
} from '../support/changefeed.ts';
import { hubStatsOf, startChangefeed } from '../support/engine.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import { sourceObjectName } from '../../src/source/postgres/source-names.ts';
import { Lsn } from '../../src/source/postgres/lsn.ts';
import type { TidemarkError } from '../../src/errors/tidemark-error.ts';

describe('sink outage', () => {
  it('downstream down under load, then back: no loss, no duplicate, the source slot not re-read', async () => {
    const src = await freshDatabase('src');
    const sinkCluster = await startCluster({ port: await freePort(55610) });
    try {
      await withClient(sinkCluster.url('postgres'), (c) => c.query('CREATE DATABASE sink'));
      const sinkUrl = sinkCluster.url('sink');
      await src.query(`
        CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL);
        CREATE TABLE ledger (account int NOT NULL, amount bigint NOT NULL, note text);
        ALTER TABLE ledger REPLICA IDENTITY FULL;
        INSERT INTO accounts SELECT g, 1000 FROM generate_series(1, 500) g;
      `);
      const errors: TidemarkError[] = [];
      const cfg = testConfig({ source: src.url, sink: sinkUrl, tables: ['accounts', 'ledger'] });
      const feed = startChangefeed(cfg, {
        logger: silentLogger,
        onError: (e, { retrying }) => {
          if (retrying) errors.push(e);
        },
      });

      const writer = await src.connect();
      let stop = false;
      let n = 0;
      const writing = (async () => {
        while (!stop) {
          n++;
          const a = (n % 500) + 1;
          await writer.query('BEGIN');
          await writer.query('UPDATE accounts SET balance = balance - 1 WHERE id = $1', [a]);
          await writer.query(`INSERT INTO ledger VALUES ($1, -1, 'w')`, [a]);
          await writer.query('COMMIT');
          if (n % 10 === 0) await new Promise((r) => setTimeout(r, 2));
        }
      })();
      await new Promise((r) => setTimeout(r, 1000));
      await waitForCatchUp({ sourceUrl: src.url, sinkUrl, id: cfg.id });
      const before = await hubStatsOf(cfg);
      expect(before?.replicationStarts).toBe(1);

      // Downstream gone for a while; the source keeps writing.
      await sinkCluster.halt();
      const checkpointAtHalt = await feed.status().checkpoint;
      await new Promise((r) => setTimeout(r, 6000));
      expect(errors.length).toBeGreaterThan(0);
      expect(errors.every((e) => e.retriable)).toBe(true);
      expect(feed.status().phase).not.toBe('failed');
      // Nothing was acknowledged past what the downstream holds.
      const slot = await src.query(
        `SELECT confirmed_flush_lsn::text AS c FROM pg_replication_slots WHERE slot_name = $1`,
        [sourceObjectName(src.url)],
      );
      expect(Lsn.parse(slot.rows[0]!.c as string).compare(Lsn.parse(checkpointAtHalt!))).toBeLessThanOrEqual(
        0,
      );
      // …while the puller kept logging the source: the log is ahead of the changefeed.
      const during = await hubStatsOf(cfg);
      expect(Lsn.parse(during!.logCommitted!).compare(Lsn.parse(checkpointAtHalt!))).toBeGreaterThan(0);

      await sinkCluster.restart();
      await new Promise((r) => setTimeout(r, 500));
      stop = true;
      await writing;
      await waitForCatchUp({ sourceUrl: src.url, sinkUrl, id: cfg.id, timeoutMs: 90_000 });
      const after = await hubStatsOf(cfg);
      await feed.stop();
      await feed.done;

      // One continuous replication stream: the outage was served from the local log.
      expect(after?.replicationStarts).toBe(1);
      expect(after?.lastReplicationStart).toBe(before?.lastReplicationStart);
      await expectSameTables(src.url, sinkUrl, ['accounts', 'ledger']);
      const ledger = await withClient(sinkUrl, (c: pg.Client) =>
        c.query('SELECT count(*)::int AS n FROM ledger'),
      );
      expect(ledger.rows[0].n).toBe(n);
      expect((await sinkCheckpoint(sinkUrl, cfg.id))!.epoch).toBeGreaterThan(0);
    } finally {
      await sinkCluster.stop();
    }
  });
});

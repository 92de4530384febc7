/**
 * No gap and no overlap at the switch: many snapshots (temporary slots) are taken while writers
 * commit as fast as they can, and the source's shared slot streams after each snapshot's
 * position; every row must come from the snapshot or from the stream, exactly once. (PostgreSQL
 * streams commits whose record starts at or after the consistent point P; the snapshot holds
 * those before it, so its checkpoint is P − 1.)
 */
import { describe, expect, it } from 'vitest';
import { freshDatabase } from '../support/db.ts';
import { PostgresConnector } from '../../src/source/postgres/pg-connector.ts';

describe('snapshot → stream boundary', () => {
  it(
    'loses and repeats nothing when commits land on the consistent point',
    { timeout: 240_000 },
    async () => {
      const db = await freshDatabase('boundary');
      await db.query(`CREATE TABLE t (id bigserial PRIMARY KEY, w int NOT NULL)`);
      const writers = await Promise.all(Array.from({ length: 6 }, () => db.connect()));
      const ROUNDS = 20;
      let onBoundary = 0;
      const deltas: bigint[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        // Writers commit as fast as they can while the slot is created and the snapshot exported.
        let stop = false;
        const writing = writers.map(async (w, i) => {
          // Multi-statement transactions from several sessions: the consistent point is then often
          // the commit of the last transaction running when the slot was created.
          while (!stop)
            await w.query(`BEGIN; INSERT INTO t (w) VALUES (${i}); INSERT INTO t (w) VALUES (${i}); COMMIT`);
        });
        const connector = new PostgresConnector({ url: db.url, heartbeatIntervalMs: 60_000 });
        let session: Awaited<ReturnType<PostgresConnector['replicate']>> | null = null;
        try {
          const { tables } = await connector.describe(['t']);
          await connector.capture(tables);
          if (round === 0) {
            // The shared slot, made once and never acknowledged: it holds every round's stream.
            await (
              await connector.replicate({ after: null, knownTables: [], acceptStartAfter: () => true })
            ).close();
          }
          const snap = await connector.snapshot(tables, { parallelism: 1, chunkRows: 1_000_000 });
          stop = true;
          await Promise.all(writing);
          const seen = new Map<string, number>();
          for await (const chunk of snap.rows)
            for (const r of chunk.rows) seen.set(r[0]!, (seen.get(r[0]!) ?? 0) + 1);
          await snap.release();
          const committed = new Set(
            (await db.query<{ id: string }>('SELECT id::text FROM t')).rows.map((r) => r.id),
          );
          const consistentPoint = snap.position.value + 1n;
          let first = true;
          const deadline = Date.now() + 15_000;
          const done = () => [...committed].every((id) => seen.has(id)) || Date.now() > deadline;
          if (!done()) {
            session = await connector.replicate({
              after: snap.position,
              knownTables: tables,
              acceptStartAfter: () => false,
            });
            stream: for await (const batch of session.events) {
              for (const m of batch) {
                if (m.tag === 'commit' && first) {
                  first = false;
                  const delta = m.position.value - consistentPoint;
                  deltas.push(delta);
                  if (delta === 0n) onBoundary++;
                }
                if (m.tag === 'insert') seen.set(m.row[0]!, (seen.get(m.row[0]!) ?? 0) + 1);
              }
              if (done()) break stream;
            }
          }
          const missing = [...committed].filter((id) => !seen.has(id));
          const twice = [...seen].filter(([, n]) => n > 1).map(([id]) => id);
          expect({ round, missing, twice }).toEqual({ round, missing: [], twice: [] });
        } finally {
          stop = true;
          await Promise.all(writing);
          await session?.close();
          await connector.close();
        }
      }
      console.log(
        `[boundary] ${onBoundary} of ${ROUNDS} slots streamed a commit starting exactly at the consistent point; first commits at P + ${deltas.join(', ')}`,
      );
    },
  );
});

import type pg from 'pg';
import type { Checkpoint } from '../../core/epoch.ts';
import { quoteLiteral } from './sql-text.ts';

/**
 * `tidemark.checkpoints`: one row per changefeed, written in the same transaction as the data it
 * vouches for. `position` is the source's canonical text (for PostgreSQL an LSN, so
 * `position::pg_lsn` works).
 */
export const CHECKPOINT_DDL = [
  'CREATE SCHEMA IF NOT EXISTS tidemark',
  'CREATE TABLE IF NOT EXISTS tidemark.checkpoints (changefeed text primary key, position text not null, ' +
    'epoch bigint not null, committed_at timestamptz not null default now())',
];

/** Reads this changefeed's checkpoint, or null if it never committed here. */
export async function readCheckpoint(client: pg.Client, changefeedId: string): Promise<Checkpoint | null> {
  const { rows } = await client.query<{ position: string; epoch: string }>(
    'SELECT position, epoch FROM tidemark.checkpoints WHERE changefeed = $1',
    [changefeedId],
  );
  const row = rows[0];
  return row ? { position: row.position, epoch: Number(row.epoch) } : null;
}

/** The upsert recording `at`, as literal SQL so it can ride in the epoch's one simple query. */
export function checkpointUpsert(changefeedId: string, at: Checkpoint): string {
  if (!Number.isSafeInteger(at.epoch) || at.epoch < 0) throw new RangeError(`bad epoch number ${at.epoch}`);
  return (
    'INSERT INTO tidemark.checkpoints (changefeed, position, epoch, committed_at) ' +
    `VALUES (${quoteLiteral(changefeedId)}, ${quoteLiteral(at.position)}, ${at.epoch}, now()) ` +
    'ON CONFLICT (changefeed) DO UPDATE SET position = EXCLUDED.position, epoch = EXCLUDED.epoch, ' +
    'committed_at = EXCLUDED.committed_at'
  );
}

import type pg from 'pg';
import type { Checkpoint } from '../../core/epoch.ts';
import type { StoredCheckpoint } from '../shared/checkpoint-fence.ts';
import { quoteLiteral } from './sql-text.ts';

/**
 * `tidemark.checkpoints`: one row per changefeed, written in the same transaction as the data it
 * vouches for. `position` is the source's canonical text (for PostgreSQL an LSN, so
 * `position::pg_lsn` works); `writer` names the process that committed it (host, pid, sink
 * instance), for the SINK_FENCED message of the writer it fences.
 */
export const CHECKPOINT_DDL = [
  'CREATE SCHEMA IF NOT EXISTS tidemark',
  'CREATE TABLE IF NOT EXISTS tidemark.checkpoints (changefeed text primary key, position text not null, ' +
    'epoch bigint not null, committed_at timestamptz not null default now(), writer text)',
  // Tables made before writers were recorded get the column. Only then: ALTER TABLE takes an
  // exclusive lock even when the column exists, and would queue behind any open reader.
  `DO $tidemark_ddl$ BEGIN
     IF NOT EXISTS (SELECT FROM pg_catalog.pg_attribute WHERE attrelid = 'tidemark.checkpoints'::regclass AND attname = 'writer' AND NOT attisdropped)
     THEN ALTER TABLE tidemark.checkpoints ADD COLUMN writer text; END IF; END $tidemark_ddl$`,
];

/** SQLSTATE the fence check raises (a class of our own: no server error uses it). */
export const FENCE_SQLSTATE = 'TMF01';

/** Reads this changefeed's checkpoint, or null if it never committed here. */
export async function readCheckpoint(
  client: pg.Client,
  changefeedId: string,
): Promise<StoredCheckpoint | null> {
  const { rows } = await client.query<{ position: string; epoch: string; writer: string | null }>(
    'SELECT position, epoch, writer FROM tidemark.checkpoints WHERE changefeed = $1',
    [changefeedId],
  );
  const row = rows[0];
  return row ? { position: row.position, epoch: Number(row.epoch), writer: row.writer } : null;
}

/**
 * The fence, first statement of every transaction that commits (after BEGIN). With a checkpoint
 * expected: locks the row and fails with FENCE_SQLSTATE unless it is still that one, so a second
 * writer's transaction waits here until the first ends, then fails. With none expected: inserts
 * the row (a placeholder, rewritten by `checkpointWrite` before COMMIT), so a second writer's
 * insert waits on this one's row and fails on the key when it commits — before either has made
 * any table (two CREATE TABLEs at once would collide in the catalog instead).
 */
export function fenceCheck(changefeedId: string, expected: Checkpoint | null, writer: string): string {
  const cf = quoteLiteral(changefeedId);
  if (expected === null) {
    return `INSERT INTO tidemark.checkpoints (changefeed, position, epoch, writer) VALUES (${cf}, '', -1, ${quoteLiteral(writer)})`;
  }
  const holds = `FOUND AND e = ${epochLiteral(expected.epoch)} AND p = ${quoteLiteral(expected.position)}`;
  return (
    'DO $tidemark_fence$ DECLARE e bigint; p text; BEGIN ' +
    `SELECT epoch, position INTO e, p FROM tidemark.checkpoints WHERE changefeed = ${cf} FOR UPDATE; ` +
    `IF NOT (${holds}) THEN RAISE EXCEPTION 'checkpoint of changefeed % changed', ${cf} USING ERRCODE = '${FENCE_SQLSTATE}'; END IF; ` +
    'END $tidemark_fence$'
  );
}

/**
 * Records `at` written by `writer`, as literal SQL so it can ride in the epoch's one simple
 * query: an UPDATE of the row `fenceCheck` locked or inserted in the same transaction.
 */
export function checkpointWrite(changefeedId: string, at: Checkpoint, writer: string): string {
  const values = `${quoteLiteral(at.position)}, ${epochLiteral(at.epoch)}, now(), ${quoteLiteral(writer)}`;
  return `UPDATE tidemark.checkpoints SET (position, epoch, committed_at, writer) = (${values}) WHERE changefeed = ${quoteLiteral(changefeedId)}`;
}

/** True for the error a concurrent first checkpoint gets from `fenceCheck`'s INSERT. */
export function isCheckpointConflict(err: unknown): boolean {
  const e = err as { code?: string; schema?: string; table?: string } | null;
  return e?.code === '23505' && e.schema === 'tidemark' && e.table === 'checkpoints';
}

function epochLiteral(epoch: number): string {
  if (!Number.isSafeInteger(epoch) || epoch < 0) throw new RangeError(`bad epoch number ${epoch}`);
  return String(epoch);
}

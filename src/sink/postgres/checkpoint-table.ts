import type pg from 'pg';
import type { Checkpoint } from '../../core/epoch.ts';
import type { StoredCheckpoint } from '../shared/checkpoint-fence.ts';
import { quoteLiteral } from './sql-text.ts';

/** SQLSTATE the fence check raises (a class of our own: no server error uses it). */
export const FENCE_SQLSTATE = 'TMF01';

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
  // The fence and the checkpoint write of every epoch, one statement (`fenceCheck`). A function,
  // not a DO block per epoch: PL/pgSQL compiles it and plans its UPDATE once per session (a 1-row
  // epoch's fence and write took ~100 µs less of the sink backend's CPU, 170 -> 70). Created
  // only when missing, as the table is: CREATE OR REPLACE would rewrite the catalog every start.
  // Its version is in its name: a body that changes gets a new name, never an old body kept. Any
  // role may call it (it runs with the caller's rights, who still needs UPDATE on the table):
  // changefeeds under other roles share the sink database, whatever their default privileges.
  `DO $tidemark_ddl$ BEGIN
     IF to_regprocedure('tidemark.advance_v1(text, bigint, text, bigint, text, text)') IS NULL THEN
       CREATE FUNCTION tidemark.advance_v1(cf text, from_epoch bigint, from_position text,
                                        to_epoch bigint, to_position text, by_writer text)
       RETURNS void LANGUAGE plpgsql AS $tidemark_advance$ BEGIN
         UPDATE tidemark.checkpoints c SET (position, epoch, committed_at, writer) = (to_position, to_epoch, pg_catalog.now(), by_writer)
          WHERE c.changefeed = cf AND c.epoch = from_epoch AND c.position = from_position;
         IF NOT FOUND THEN
           RAISE EXCEPTION 'checkpoint of changefeed % changed', cf USING ERRCODE = '${FENCE_SQLSTATE}';
         END IF;
       END $tidemark_advance$;
       GRANT EXECUTE ON FUNCTION tidemark.advance_v1(text, bigint, text, bigint, text, text) TO PUBLIC;
     END IF; END $tidemark_ddl$`,
];

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
 * The fence, first statement of every transaction that commits (after BEGIN), and with `next` the
 * checkpoint write too. With a checkpoint expected: `tidemark.advance_v1` moves the row from it to
 * `next` (to itself without: a fence only, `checkpointWrite` follows before COMMIT) and fails
 * with FENCE_SQLSTATE unless it still held it; its UPDATE locks the row, so a second writer's
 * transaction waits here until the first ends, then finds the row moved and fails. With none
 * expected: inserts the row (`next`, or a placeholder that `checkpointWrite` rewrites), so a
 * second writer's insert waits on this one's row and fails on the key when it commits — before
 * either has made any table (two CREATE TABLEs at once would collide in the catalog instead).
 */
export function fenceCheck(
  changefeedId: string,
  expected: Checkpoint | null,
  writer: string,
  next?: Checkpoint,
): string {
  const cf = quoteLiteral(changefeedId);
  const w = quoteLiteral(writer);
  if (expected === null) {
    const [position, epoch] = next ? [quoteLiteral(next.position), epochLiteral(next.epoch)] : ["''", '-1'];
    return `INSERT INTO tidemark.checkpoints (changefeed, position, epoch, writer) VALUES (${cf}, ${position}, ${epoch}, ${w})`;
  }
  const to = next ?? expected;
  return (
    `SELECT tidemark.advance_v1(${cf}, ${epochLiteral(expected.epoch)}, ${quoteLiteral(expected.position)}, ` +
    `${epochLiteral(to.epoch)}, ${quoteLiteral(to.position)}, ${w})`
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

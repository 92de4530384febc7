/**
 * A new snapshot owed to a changefeed's sink. A changefeed that finds nothing local about itself
 * while its sink holds a checkpoint (changefeed.ts: no hub record — the data directory lost,
 * replaced, or the record released) copies every table again. Its hub record is written before
 * that snapshot commits, so a restart in between would find a record and take the half-copied
 * tables as replicated; this marker, made durable before anything else happens, says the
 * snapshot is still owed while the sink's checkpoint epoch is at most the one it names.
 *
 * File: `<dataDir>/copies/<changefeed id>.snapshot-owed`, holding that epoch.
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { writeFileDurably } from '../log/durable-file.ts';

function pathFor(dataDir: string, changefeedId: string): string {
  return join(dataDir, 'copies', `${encodeURIComponent(changefeedId)}.snapshot-owed`);
}

/**
 * True while a snapshot owed since the sink's checkpoint epoch was `sinkEpoch` or later has not
 * committed; once a later epoch committed, the marker is removed and this is false.
 */
export function snapshotOwed(dataDir: string, changefeedId: string, sinkEpoch: number): boolean {
  const path = pathFor(dataDir, changefeedId);
  let owedAt: number;
  try {
    owedAt = Number(readFileSync(path, 'utf8'));
  } catch {
    return false;
  }
  if (Number.isInteger(owedAt) && sinkEpoch <= owedAt) return true;
  rmSync(path, { force: true });
  return false;
}

/** Records, durably, that a new snapshot is owed while the sink's checkpoint epoch is `sinkEpoch`. */
export function oweSnapshot(dataDir: string, changefeedId: string, sinkEpoch: number): void {
  const path = pathFor(dataDir, changefeedId);
  mkdirSync(dirname(path), { recursive: true });
  writeFileDurably(path, String(sinkEpoch));
}

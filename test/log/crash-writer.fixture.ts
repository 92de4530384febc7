/**
 * Run as a child process by change-log tests: builds a small log, then SIGKILLs itself in the
 * middle of a write.
 *
 *   Usage: crash-writer.fixture.ts <log dir> [lmdb|spill|clean|reset]
 *
 *   lmdb   (default) the log starts after 0/10; transaction 1 commits at 0/100 (3 rows); the
 *          open transaction 2's records go to LMDB every 4 KiB (spilling off) when it is killed
 *   spill  also commits a spilled transaction 2 at 0/180 (2,000 rows, kept), then the open
 *          transaction 3 spills to its segment file before the kill
 *   clean  transactions 1 (0/100), 2 (0/180, spilled), 3 (0/200); then `clean(2)`, killed
 *          right after its first batch of deletions
 *   reset  the same three, then `reset(0/500)`, killed right after its first range of deletions
 */
import { ChangeLog } from '../../src/log/change-log.ts';
import { Lsn, LSN_CODEC } from '../../src/source/postgres/lsn.ts';
import { table } from './log-table.ts';

const dir = process.argv[2]!;
const mode = process.argv[3] ?? 'lmdb';
const t = table('items', 1000);
const log = ChangeLog.open({
  path: dir,
  codec: LSN_CODEC,
  writeBatchBytes: 4096,
  spillBytes: mode === 'lmdb' ? Infinity : 4096,
});

function txn(position: string, rows: number, value: (i: number) => string): void {
  log.begin(1);
  for (let i = 0; i < rows; i++) log.append({ tag: 'insert', table: t, row: [String(i), value(i)] });
  log.commit(Lsn.parse(position), 1);
}

/**
 * SIGKILL once the log has deleted its next range of keys: the moment a clean or a reset has
 * deleted some of what it drops and not the rest. (Reaches into the log's private `removeRange`:
 * the one place every deletion goes through.)
 */
function killAfterFirstDeletion(): void {
  const proto = ChangeLog.prototype as unknown as { removeRange(from: Buffer, to: Buffer): void };
  const removeRange = proto.removeRange;
  proto.removeRange = function (this: unknown, from: Buffer, to: Buffer) {
    removeRange.call(this, from, to);
    process.kill(process.pid, 'SIGKILL');
  };
}

log.startAt(Lsn.parse('0/10'));
txn('0/100', 3, () => 'committed');
if (mode !== 'lmdb') txn('0/180', 2000, (i) => `kept ${i}`);
if (mode === 'clean' || mode === 'reset') {
  txn('0/200', 3, () => 'last');
  killAfterFirstDeletion();
  if (mode === 'clean') log.clean(2n);
  else log.reset(Lsn.parse('0/500'));
  process.stdout.write('not killed\n');
  process.exit(0);
}
log.begin(3);
for (let i = 0; i < 5000; i++) log.append({ tag: 'insert', table: t, row: [String(i), 'x'.repeat(50)] });
process.stdout.write(`spilled ${log.transactionsSpilled}\n`);
process.kill(process.pid, 'SIGKILL');

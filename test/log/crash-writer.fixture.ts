/**
 * Run as a child process by change-log tests: commits one transaction, writes most of a second
 * one to disk, then SIGKILLs itself mid-transaction.
 *
 *   Usage: crash-writer.fixture.ts <log dir> [lmdb|spill]
 *
 *   lmdb   (default) the log starts after 0/10; transaction 1 commits at 0/100 (3 rows); the
 *          open transaction 2's records go to LMDB every 4 KiB (spilling off)
 *   spill  also commits a spilled transaction 2 at 0/180 (2,000 rows, kept), then the open
 *          transaction 3 spills to its segment file before the kill
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
  spillBytes: mode === 'spill' ? 4096 : Infinity,
});
log.startAt(Lsn.parse('0/10'));
log.begin(1);
for (let i = 0; i < 3; i++) log.append({ tag: 'insert', table: t, row: [String(i), 'committed'] });
log.commit(Lsn.parse('0/100'), 1);
if (mode === 'spill') {
  log.begin(2);
  for (let i = 0; i < 2000; i++) log.append({ tag: 'insert', table: t, row: [String(i), `kept ${i}`] });
  log.commit(Lsn.parse('0/180'), 2);
}
log.begin(3);
for (let i = 0; i < 5000; i++) log.append({ tag: 'insert', table: t, row: [String(i), 'x'.repeat(50)] });
process.stdout.write(`spilled ${log.transactionsSpilled}\n`);
process.kill(process.pid, 'SIGKILL');

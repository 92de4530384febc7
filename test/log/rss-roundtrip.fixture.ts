/**
 * Run as a child process by change-log-spill.test.ts (a fresh process, so its resident memory
 * is this round trip's alone): writes one transaction of `rows` ~100-byte inserts through a
 * change log, reads it back through a reader with a 4 MiB quota, and prints one JSON line with
 * VmRSS (from /proc/self/status) before and at its peak, and the throughput of each half.
 *
 *   Usage: rss-roundtrip.fixture.ts <log dir> <rows> [spill|lmdb]
 *
 *   spill  (default) the transaction passes spillBytes (4 MiB) and goes to its segment
 *   lmdb   spilling off: the transaction is read from LMDB through mmap (for comparison)
 */
import { readFileSync } from 'node:fs';
import { ChangeLog } from '../../src/log/change-log.ts';
import { ChangeLogReader } from '../../src/log/change-log-reader.ts';
import { Lsn, LSN_CODEC } from '../../src/source/postgres/lsn.ts';
import { table } from './log-table.ts';

const dir = process.argv[2]!;
const rows = Number(process.argv[3]);
const mode = process.argv[4] ?? 'spill';
const QUOTA_BYTES = 4 * 1024 * 1024;

const t = table('big', 1000);

function vmRssBytes(): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return Number(m?.[1] ?? 0) * 1024;
}

const filler = 'abcdefghij'.repeat(9);
const log = ChangeLog.open({
  path: dir,
  codec: LSN_CODEC,
  ...(mode === 'lmdb' ? { spillBytes: Infinity } : {}),
});
log.startAt(Lsn.parse('0/10'));

// Warm up every code path on a small transaction first, so the baseline includes the code.
async function roundTrip(
  position: string,
  n: number,
  sample: () => void,
): Promise<{ bytes: number; writeMs: number; readMs: number }> {
  const t0 = performance.now();
  log.begin(1);
  for (let i = 0; i < n; i++) {
    log.append({ tag: 'insert', table: t, row: [String(i), `${i} ${filler}`] });
    if (i % 20_000 === 0) sample();
  }
  log.commit(Lsn.parse(position), 1);
  const t1 = performance.now();
  const bytes = log.diskBytes();
  const reader = new ChangeLogReader(log, { memoryQuotaBytes: QUOTA_BYTES });
  let seen = 0;
  let done = false;
  for await (const batch of reader.read(prev)) {
    for (const m of batch) {
      if (m.tag === 'insert') seen++;
      else if (m.tag === 'commit' && m.position.toString() === position) done = true;
    }
    sample();
    if (done) break;
  }
  if (seen !== n) throw new Error(`read ${seen} rows of ${n}`);
  prev = Lsn.parse(position);
  return { bytes, writeMs: t1 - t0, readMs: performance.now() - t1 };
}

let prev = Lsn.parse('0/10');
await roundTrip('0/100', 50_000, () => {});
const baseline = vmRssBytes();
let peak = baseline;
const before = log.diskBytes();
const r = await roundTrip('0/200', rows, () => (peak = Math.max(peak, vmRssBytes())));
const diskMb = (r.bytes - before) / 1e6;
process.stdout.write(
  `${JSON.stringify({
    mode,
    rows,
    diskMb: Math.round(diskMb),
    baselineMb: Math.round(baseline / 1e6),
    growthMb: Math.round((peak - baseline) / 1e6),
    writeMbPerS: Math.round(diskMb / (r.writeMs / 1000)),
    readMbPerS: Math.round(diskMb / (r.readMs / 1000)),
    writeRowsPerS: Math.round(rows / (r.writeMs / 1000)),
    readRowsPerS: Math.round(rows / (r.readMs / 1000)),
    spilled: log.transactionsSpilled,
  })}\n`,
);
await log.close();

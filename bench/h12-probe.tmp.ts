import { readFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startCluster } from '../test/support/pg-cluster.ts';
import { Puller } from '../src/source/postgres/puller.ts';

const st = () => {
  const s = readFileSync('/proc/self/status', 'utf8');
  const g = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? 0) >> 10;
  return `rss=${g('VmRSS')} anon=${g('RssAnon')} file=${g('RssFile')} shm=${g('RssShmem')} heap=${(process.memoryUsage().heapUsed >> 20)}`;
};
const cluster = await startCluster({ port: 54344 });
try {
  const url = cluster.url('postgres');
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query(`CREATE TABLE big (id int PRIMARY KEY, v text)`);
  const puller = await Puller.start({ url, logDir: join(mkdtempSync(join(tmpdir(), 'h12-')), 'log'), heartbeatIntervalMs: 60000 });
  const start = puller.log.coveredFrom!;
  const reader = await puller.addReader({ id: 'big', tables: [{ schema: 'public', name: 'big' }], checkpoint: start });
  console.log('base', st());
  const t0 = Date.now();
  const timer = setInterval(() => console.log(((Date.now() - t0) / 1000).toFixed(1), st(), 'msgs', puller.stats().messagesFromSource), 2000);
  const ins = c.query(`INSERT INTO big SELECT g, repeat('x', 40) || g FROM generate_series(1, ${process.argv[2] ?? 1000000}) g`).then(() => console.log('insert done', (Date.now() - t0) / 1000));
  let rows = 0;
  for await (const m of reader.stream(start)) {
    if (m.tag === 'insert') rows++;
    if (m.tag === 'commit' && rows > 0) break;
  }
  await ins;
  console.log('read', rows, (Date.now() - t0) / 1000, st(), 'disk', puller.stats().logDiskBytes >> 20);
  clearInterval(timer);
  await puller.stop();
  await c.end();
} finally {
  await cluster.stop();
}

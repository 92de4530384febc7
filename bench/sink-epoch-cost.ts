/**
 * `node --import tsx bench/sink-epoch-cost.ts [--sizes 1,4,16,…] [--paths inline,copy] [--seconds S]`:
 * not a benchmark, a measurement of the PostgreSQL sink's commit path alone (issue 14, peer shape).
 * Epochs of `size` changes on a table shaped like the peer workload's (bigint key, text, ~1 KB
 * jsonb, timestamptz; half inserts, 35% updates, 15% deletes of live ids) are committed one after
 * another through `PostgresSink.commitEpoch`, each path forced by `inlineMaxRows`, for `--seconds`
 * (default 4) per size and path after a warm-up. Prints per epoch: wall time, node CPU
 * (`process.cpuUsage`), the sink backend's CPU (/proc, 10 ms ticks: read it over many epochs),
 * client round trips (`client.query` calls; a COPY counts one) and SQL statements sent; and the
 * same per change. The load average is printed before and after: compare within one run.
 */
import { loadavg } from 'node:os';
import pg from 'pg';
import { PostgresSink } from '../src/sink/postgres/postgres-sink.ts';
import type { Epoch } from '../src/core/epoch.ts';
import type { Row } from '../src/core/row.ts';
import type { TableSchema } from '../src/core/table-schema.ts';
import { createDatabase, startBenchCluster, withClient } from './bench-cluster.ts';
import { cpuMs } from './peak-rss.ts';
import { column, Ids, ITEMS } from './fixtures.ts';

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i < 0 ? undefined : process.argv[i + 1];
};
const sizes = (arg('--sizes') ?? '1,4,16,64,256,1024').split(',').map(Number);
const paths = (arg('--paths') ?? 'inline,copy').split(',') as ('inline' | 'copy')[];
const seconds = Number(arg('--seconds') ?? 4);
/** peer: the peer workload's rows (~1 KB); items: the latency phase's inserts (bigint, int, md5). */
const shape = (arg('--shape') ?? 'peer') as 'peer' | 'items';

const PEER: TableSchema = {
  ...ITEMS,
  name: 'peer_events',
  columns: [
    column('id', 20, 'bigint', true),
    column('kind', 25, 'text', false),
    column('payload', 3802, 'jsonb', false),
    column('updated_at', 1184, 'timestamp with time zone', false),
  ],
};
const COLUMNS_DDL =
  shape === 'peer'
    ? '(id bigint PRIMARY KEY, kind text NOT NULL, payload jsonb NOT NULL, updated_at timestamptz NOT NULL)'
    : '(id bigint PRIMARY KEY, grp int NOT NULL, payload text NOT NULL)';

/** Counts what the sink sends: one `client.query` is one round trip (a COPY at least one). */
const sent = { queries: 0, statements: 0 };
const query = pg.Client.prototype.query;
pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
  sent.queries++;
  const text = typeof args[0] === 'string' ? args[0] : null;
  // The sink joins the statements of one simple query with ';\n'.
  sent.statements += text === null ? 1 : text.split(';\n').length;
  return (query as (...a: unknown[]) => unknown).apply(this, args);
} as typeof pg.Client.prototype.query;

/** Peer-shaped changes, one epoch at a time, collapsed per key as the epoch builder would. */
class Changes {
  private readonly ids = new Ids(1);
  private row(id: number, kind: string): Row {
    if (shape === 'items') return [String(id), '1', id.toString(16).padStart(32, '0')];
    const pad = id.toString(16).padStart(8, '0').repeat(124);
    return [String(id), kind, `{"n": ${id}, "pad": "${pad}"}`, '2026-12-05 11:00:00.123456+00'];
  }
  epoch(size: number): { upserts: Row[]; deletes: Row[] } {
    const upserts = new Map<number, Row>();
    const deletes = new Map<number, Row>();
    for (let i = 0; i < size; i++) {
      const op = shape === 'items' ? { kind: 'insert' as const, id: this.ids.insert() } : this.ids.op();
      if (op.kind === 'delete') {
        upserts.delete(op.id);
        deletes.set(op.id, [String(op.id), ...(shape === 'peer' ? [null, null, null] : [null, null])]);
      } else upserts.set(op.id, this.row(op.id, op.kind === 'insert' ? 'created' : 'updated'));
    }
    return { upserts: [...upserts.values()], deletes: [...deletes.values()] };
  }
}

/** Each run on a table of its own, empty, so every run writes the same mix of inserts and updates. */
async function measure(url: string, size: number, path: 'inline' | 'copy', id: string) {
  const table: TableSchema = { ...(shape === 'peer' ? PEER : ITEMS), name: `t_${id}` };
  await withClient(url, (c) => c.query(`CREATE TABLE public.t_${id} ${COLUMNS_DDL}`));
  const sink = new PostgresSink({
    uri: url,
    changefeedId: id,
    inlineMaxRows: path === 'inline' ? 1_000_000 : 0,
    inlineMaxChars: path === 'inline' ? 1e12 : 0,
  });
  await sink.open();
  const backend = await withClient(url, async (c) => {
    const { rows } = await c.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()`,
    );
    if (rows.length !== 1) throw new Error(`expected the sink's one backend, found ${rows.length}`);
    return rows[0]!.pid;
  });
  const changes = new Changes();
  let epochNo = 0;
  const commit = async () => {
    epochNo++;
    const { upserts, deletes } = changes.epoch(size);
    const epoch: Epoch = {
      checkpoint: { position: `0/${epochNo.toString(16).toUpperCase()}`, epoch: epochNo },
      commitTimeMs: Date.now(),
      sourceChanges: size,
      tables: [{ table, truncate: false, deletes, upserts, partialUpdates: [], rowDeltas: [] }],
    };
    await sink.commitEpoch(epoch);
  };
  const warm = performance.now() + 1000;
  while (performance.now() < warm) await commit();
  const sent0 = { ...sent };
  const node0 = process.cpuUsage();
  const pg0 = cpuMs(backend)!;
  const t0 = performance.now();
  let epochs = 0;
  while (performance.now() - t0 < seconds * 1000) {
    await commit();
    epochs++;
  }
  const wallMs = performance.now() - t0;
  const node = process.cpuUsage(node0);
  const pgMs = cpuMs(backend)! - pg0;
  await sink.close();
  const per = (x: number) => x / epochs;
  return {
    epochs,
    wallUs: per(wallMs * 1000),
    nodeUs: per(node.user + node.system),
    nodeSysUs: per(node.system),
    pgUs: per(pgMs * 1000),
    queries: per(sent.queries - sent0.queries),
    statements: per(sent.statements - sent0.statements),
  };
}

const f = (x: number) => x.toFixed(x < 10 ? 1 : 0);
const cluster = await startBenchCluster();
try {
  const url = await createDatabase(cluster, 'sink_epoch_cost');
  console.log(
    `load average before: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  console.log(`shape ${shape}`);
  console.log(
    'size path    epochs  wall µs/epoch  node µs/epoch (sys)  backend µs/epoch  round trips  statements  node µs/change  backend µs/change',
  );
  let n = 0;
  for (const size of sizes) {
    for (const path of paths) {
      const r = await measure(url, size, path, `${++n}`);
      console.log(
        `${String(size).padStart(4)} ${path.padEnd(7)} ${String(r.epochs).padStart(6)}  ${f(r.wallUs).padStart(13)}  ${f(r.nodeUs).padStart(13)} (${f(r.nodeSysUs).padStart(4)})  ${f(r.pgUs).padStart(16)}  ${r.queries.toFixed(2).padStart(11)}  ${r.statements.toFixed(2).padStart(10)}  ${f(r.nodeUs / size).padStart(13)}  ${f(r.pgUs / size).padStart(17)}`,
      );
    }
  }
  console.log(
    `load average after: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
} finally {
  await cluster.stop();
}

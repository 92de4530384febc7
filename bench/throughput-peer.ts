/**
 * The peer-shaped workload of the `throughput` benchmark (the shape Sequin publishes): one table
 * with a jsonb payload of ~1 KB, single-row transactions, 50% inserts / 35% updates / 15% deletes,
 * at rising rates until the consumer's lag grows.
 *
 *   4 writers ─► peer_events (one statement = one transaction)      ┐ same publication,
 *   probe     ─► lag_probe.seq = s every 50 ms, COMMIT time noted    ┘ so in commit order
 *   poller    ─► downstream lag_probe.seq every 10 ms: lag of s = first poll that sees ≥ s − its COMMIT
 *
 * A step is sustained when the p99 lag stays under 1 s and the downstream caught up within 60 s
 * of its end; its figure is the rate the writers achieved (on a loaded machine they may fall short
 * of the target). The run stops after the first step that is not sustained, or once the writers
 * no longer go faster (achieved < 1.1 × the step before): the source, not the consumer, is then
 * the limit.
 */
import pg from 'pg';
import { quantile, sleep } from './bench-cluster.ts';
import { Ids } from './fixtures.ts';
import { cpuMs, peakRssBytes, samplePeakRss } from './peak-rss.ts';
import type { SinkMeter } from './sink-meter.ts';

export const PEER_DDL =
  'CREATE TABLE public.peer_events (id bigint PRIMARY KEY, kind text NOT NULL, payload jsonb NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())';
export const PROBE_DDL = 'CREATE TABLE public.lag_probe (id int PRIMARY KEY, seq bigint NOT NULL)';
const PROBE_SEED = 'INSERT INTO public.lag_probe VALUES (1, 0)';

const WRITERS = 8;
const PROBE_MS = 50;
const POLL_MS = 10;
const MAX_P99_MS = 1000;

export interface PeerStep {
  readonly target: number;
  readonly achieved: number;
  readonly p50: number;
  readonly p99: number;
  readonly sustained: boolean;
  /** The consumer process's CPU per op over the step and its catch-up (µs), when its pid is known. */
  readonly cpuUsPerOp: number | null;
  /** With a sink meter: its backend's CPU per op (µs), ops per epoch, consumer CPU per epoch (µs). */
  readonly sink?: {
    readonly cpuUsPerOp: number | null;
    readonly opsPerEpoch: number;
    readonly consumerUsPerEpoch: number | null;
  };
}

export interface PeerRun {
  readonly steps: readonly PeerStep[];
  readonly peakRssBytes: number | null;
  /** The last probe sequence written (the next run starts after it). */
  readonly lastSeq: number;
}

const SQL = {
  insert: `INSERT INTO public.peer_events (id, kind, payload) VALUES ($1, 'created',
             jsonb_build_object('n', $1::bigint, 'pad', repeat(md5($1::text), 31)))`,
  update: `UPDATE public.peer_events SET kind = 'updated', updated_at = now(),
             payload = jsonb_set(payload, '{n}', to_jsonb(-$1::bigint)) WHERE id = $1`,
  delete: 'DELETE FROM public.peer_events WHERE id = $1',
};

let runNo = 0;

export async function peerShaped(opts: {
  srcUrl: string;
  probeUrl: string;
  rates: readonly number[];
  stepSeconds: number;
  log: (line: string) => void;
  /** The consumer's process to sample for peak RSS, or null for this process. */
  rssPid: (() => Promise<number | null>) | null;
  /** Tidemark into PostgreSQL: its sink's backend CPU and epochs, per step. */
  sinkMeter?: SinkMeter;
}): Promise<PeerRun> {
  const connect = async (url: string) => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    return c;
  };
  const writers = await Promise.all(Array.from({ length: WRITERS }, () => connect(opts.srcUrl)));
  const prober = await connect(opts.srcUrl);
  const poller = await connect(opts.probeUrl);
  let pid: number | null = null;
  const rss = opts.rssPid ? samplePeakRss({ pid: () => pid, intervalMs: 100 }) : null;
  try {
    for (const w of [...writers, prober]) await w.query('SET synchronous_commit = on');
    const seqNow = async (c: pg.Client) =>
      Number(
        (await c.query<{ s: string }>('SELECT coalesce(max(seq), 0)::text AS s FROM public.lag_probe'))
          .rows[0]?.s ?? 0,
      );
    if ((await prober.query('SELECT 1 FROM public.lag_probe')).rowCount === 0) await prober.query(PROBE_SEED);
    let seq = await seqNow(prober);
    const maxId = await prober.query<{ m: string }>(
      'SELECT coalesce(max(id), 0)::text AS m FROM public.peer_events',
    );
    const ids = new Ids(Number(maxId.rows[0]!.m) + 1 + ++runNo * 100_000_000);
    if (opts.rssPid) pid = await opts.rssPid();
    const steps: PeerStep[] = [];
    for (const rate of opts.rates) {
      const pending: { seq: number; at: number }[] = [];
      const lags: number[] = [];
      let running = true;
      const cpu0 = pid === null ? null : cpuMs(pid);
      const sink0 = await opts.sinkMeter?.read();
      const t0 = performance.now();
      const end = t0 + opts.stepSeconds * 1000;
      let ops = 0;
      const perWriterMs = (1000 * WRITERS) / rate;
      const writeLoop = async (c: pg.Client) => {
        for (let i = 0; ; i++) {
          const due = t0 + i * perWriterMs;
          if (due >= end) break;
          const wait = due - performance.now();
          if (wait > 1) await sleep(wait);
          const op = ids.op();
          await c.query(SQL[op.kind], [op.id]);
          ops++;
        }
      };
      const probeLoop = async () => {
        while (running) {
          await prober.query('UPDATE public.lag_probe SET seq = $1 WHERE id = 1', [++seq]);
          pending.push({ seq, at: performance.now() });
          await sleep(PROBE_MS);
        }
      };
      const pollLoop = async () => {
        const deadline = () => (running ? Infinity : performance.now() + 60_000);
        const giveUp = { at: Infinity };
        while (running || pending.length > 0) {
          if (!running && giveUp.at === Infinity) giveUp.at = deadline();
          if (performance.now() > giveUp.at) return false;
          const seen = await seqNow(poller);
          const now = performance.now();
          while (pending.length > 0 && pending[0]!.seq <= seen) lags.push(now - pending.shift()!.at);
          await sleep(POLL_MS);
        }
        return true;
      };
      const probing = probeLoop();
      const polling = pollLoop();
      await Promise.all(writers.map(writeLoop));
      const elapsed = performance.now() - t0;
      running = false;
      await probing;
      const caughtUp = await polling;
      const cpu1 = pid === null ? null : cpuMs(pid);
      const sink1 = await opts.sinkMeter?.read();
      const cpuUsPerOp = cpu0 === null || cpu1 === null || ops === 0 ? null : ((cpu1 - cpu0) * 1000) / ops;
      const epochs = sink0 && sink1 ? sink1.epoch - sink0.epoch : 0;
      const sink =
        sink0 && sink1 && epochs > 0 && ops > 0
          ? {
              cpuUsPerOp:
                sink0.cpuMs === null || sink1.cpuMs === null
                  ? null
                  : ((sink1.cpuMs - sink0.cpuMs) * 1000) / ops,
              opsPerEpoch: ops / epochs,
              consumerUsPerEpoch: cpuUsPerOp === null ? null : (cpuUsPerOp * ops) / epochs,
            }
          : undefined;
      const achieved = (ops * 1000) / elapsed;
      const p50 = Math.round(quantile(lags, 0.5));
      const p99 = Math.round(quantile(lags, 0.99));
      const sustained = caughtUp && p99 <= MAX_P99_MS;
      const before = steps.at(-1);
      steps.push({ target: rate, achieved, p50, p99, sustained, cpuUsPerOp, ...(sink ? { sink } : {}) });
      opts.log(
        `  ${rate} ops/s: achieved ${Math.round(achieved)}, lag p50 ${p50} ms p99 ${p99} ms${cpuUsPerOp === null ? '' : `, consumer CPU ${Math.round(cpuUsPerOp)} µs/op`}${sink ? `, ${describeSink(sink)}` : ''}${caughtUp ? '' : ' (not caught up 60 s after)'}`,
      );
      if (!sustained || (before !== undefined && achieved < 1.1 * before.achieved)) break;
    }
    return { steps, peakRssBytes: rss ? rss.stop() : peakRssBytes(), lastSeq: seq };
  } finally {
    rss?.stop();
    for (const c of [...writers, prober, poller]) await c.end().catch(() => {});
  }
}

/** A step's sink figures: backend CPU per op, ops and consumer CPU per epoch. */
export function describeSink(s: NonNullable<PeerStep['sink']>): string {
  const backend = s.cpuUsPerOp === null ? 'n/a' : String(Math.round(s.cpuUsPerOp));
  const perEpoch = s.consumerUsPerEpoch === null ? 'n/a' : String(Math.round(s.consumerUsPerEpoch));
  return `sink backend ${backend} µs/op, ${s.opsPerEpoch.toFixed(1)} ops/epoch, consumer ${perEpoch} µs/epoch`;
}

/**
 * `npm run bench [-- <name>…] [--rows N] [--huge-rows N] [--phases a,b]`: runs the named benchmarks
 * (all by default), each against its own private servers, and prints every figure beside its
 * same-run baseline. `--huge-rows` sizes the `changelog` benchmark's one huge source transaction;
 * `--phases` runs only those phases of `throughput` (catch-up, hot-keys, shared-log, latency, peer).
 *
 *   header (machine facts) ─► benchmark 1 … n (progress, table, notes) ─► summary table
 */
import { closeBenchEngines } from './bench-engine.ts';
import { existsSync } from 'node:fs';
import type { BenchOptions, BenchResult } from './report.ts';
import { figureTable } from './report.ts';
import { machineFacts } from './machine.ts';

type Runner = (options: BenchOptions) => Promise<BenchResult | null>;

/** A benchmark another engineer may add as `bench/<file>`: run if present, else `missing` is printed. */
function optional(file: string, missing: string): Runner {
  return async (options) => {
    const url = new URL(`./${file}`, import.meta.url);
    if (!existsSync(url)) {
      options.log(missing);
      return null;
    }
    const mod: unknown = await import(url.href);
    const runFn = (mod as { run?: unknown }).run;
    if (typeof runFn !== 'function') {
      options.log(`${file} has no run() export`);
      return null;
    }
    const out: unknown = await (runFn as (o: BenchOptions) => Promise<unknown>)(options);
    return isBenchResult(out) ? out : null;
  };
}

function isBenchResult(x: unknown): x is BenchResult {
  return typeof x === 'object' && x !== null && 'figures' in x && Array.isArray((x as BenchResult).figures);
}

const BENCHMARKS: Readonly<Record<string, Runner>> = {
  throughput: async (o) => (await import('./throughput.ts')).run(o),
  replication: async (o) => (await import('./replication.ts')).run(o),
  sinks: async (o) => (await import('./sinks.ts')).run(o),
  views: optional('views.ts', 'views benchmark not available'),
  changelog: optional('changelog.ts', 'changelog benchmark: not implemented yet'),
  'mysql-source': async (o) => (await import('./mysql-source.ts')).run(o),
  snapshot: async (o) => (await import('./snapshot.ts')).run(o),
};

function parseArgs(argv: readonly string[]): {
  names: string[];
  rows: number | null;
  hugeRows: number | null;
  phases: string[] | null;
} {
  const names: string[] = [];
  let rows: number | null = null;
  let hugeRows: number | null = null;
  let phases: string[] | null = null;
  const positive = (flag: string, i: number): [number, number] => {
    const a = argv[i]!;
    const v = a === flag ? argv[++i] : a.slice(flag.length + 1);
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`${flag} needs a positive integer, got ${v}`);
    return [n, i];
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--rows' || a.startsWith('--rows=')) {
      [rows, i] = positive('--rows', i);
    } else if (a === '--huge-rows' || a.startsWith('--huge-rows=')) {
      [hugeRows, i] = positive('--huge-rows', i);
    } else if (a === '--phases' || a.startsWith('--phases=')) {
      const v = a === '--phases' ? argv[++i] : a.slice('--phases='.length);
      if (!v) throw new Error('--phases needs a comma-separated list');
      phases = v.split(',');
    } else if (a === '--help' || a === '-h') {
      console.log(
        `usage: npm run bench [-- <${Object.keys(BENCHMARKS).join('|')}>…] [--rows N] [--huge-rows N (changelog)] [--phases a,b (throughput)]`,
      );
      process.exit(0);
    } else if (Object.hasOwn(BENCHMARKS, a)) {
      names.push(a);
    } else {
      throw new Error(`unknown benchmark "${a}"; known: ${Object.keys(BENCHMARKS).join(', ')}`);
    }
  }
  return { names: names.length > 0 ? names : Object.keys(BENCHMARKS), rows, hugeRows, phases };
}

async function main(): Promise<void> {
  // Each benchmark's engines are closed after it (their data directories' locks released).
  const { names, rows, hugeRows, phases } = parseArgs(process.argv.slice(2));
  console.log('# Tidemark benchmarks');
  for (const f of machineFacts()) console.log(`  ${f}`);
  console.log(
    `  benchmarks: ${names.join(', ')}${rows === null ? '' : `; --rows ${rows}`}${hugeRows === null ? '' : `; --huge-rows ${hugeRows}`}${phases === null ? '' : `; --phases ${phases.join(',')}`}`,
  );
  const results: BenchResult[] = [];
  const failed: string[] = [];
  for (const name of names) {
    console.log(`\n## ${name}`);
    const t0 = Date.now();
    const log = (line: string) =>
      console.log(`  [${name} +${((Date.now() - t0) / 1000).toFixed(1)}s] ${line}`);
    try {
      // `hugeRows` rides along for changelog.ts, `phases` for throughput.ts; the others ignore them.
      const options: BenchOptions & { hugeRows: number | null; phases: string[] | null } = {
        rows,
        log,
        hugeRows,
        phases,
      };
      const r = await BENCHMARKS[name]!(options);
      if (r) {
        results.push(r);
        console.log(figureTable([r]));
        for (const n of r.notes) console.log(`  - ${n}`);
      }
    } catch (err) {
      failed.push(name);
      console.log(`  FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    }
    await closeBenchEngines().catch(() => {});
    console.log(`  (${name} took ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  }
  console.log('\n## summary');
  console.log(results.length > 0 ? figureTable(results) : '  no figures');
  if (failed.length > 0) {
    console.log(`\nfailed: ${failed.join(', ')}`);
    process.exitCode = 1;
  }
}

try {
  await main();
} catch (err) {
  console.error(err instanceof Error ? err.message : String(err));
  process.exitCode = 2;
}

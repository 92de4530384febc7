/**
 * What a benchmark hands back to the runner: one line per figure, each beside a baseline measured
 * in the same run, so the ratio (not the absolute number) is what carries across machines.
 */
export interface BenchFigure {
  /** What was measured, e.g. `inserts rows/s` or `latency p99 ms`. */
  readonly metric: string;
  readonly tidemark: number;
  readonly baseline: number;
  /** The name of the baseline, e.g. `pg_recvlogical`. */
  readonly baselineName: string;
  readonly unit: string;
  /** True when a larger value is better (throughput); false for latency and memory. */
  readonly higherIsBetter: boolean;
}

export interface BenchResult {
  readonly name: string;
  readonly figures: readonly BenchFigure[];
  /** Free-text lines printed under the table (methodology, scale-down, skipped targets). */
  readonly notes: readonly string[];
}

/** Options every benchmark receives from `bench/run.ts`. */
export interface BenchOptions {
  /** `--rows N`: overrides the benchmark's default row count (to scale down on a small machine). */
  readonly rows: number | null;
  /** Prints one progress line; goes to stdout so a run can be followed. */
  readonly log: (line: string) => void;
}

/** tidemark / baseline; whether above 1 is good depends on `higherIsBetter`. */
export function ratio(f: BenchFigure): number {
  return f.baseline === 0 ? Number.NaN : f.tidemark / f.baseline;
}

export function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return 'n/a';
  if (Math.abs(n) >= 1000) return Math.round(n).toLocaleString('en-US');
  if (Math.abs(n) >= 10) return n.toFixed(1);
  return n.toFixed(2);
}

/** A fixed-width text table; the first row is the header. */
export function formatTable(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  const line = (r: readonly string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  const sep = widths.map((w) => '-'.repeat(w)).join('  ');
  const [head, ...body] = rows;
  return [line(head ?? []), sep, ...body.map(line)].join('\n');
}

export function figureTable(results: readonly BenchResult[]): string {
  const rows: string[][] = [
    ['benchmark', 'metric', 'tidemark', 'baseline', 'baseline value', 'tidemark/baseline'],
  ];
  for (const r of results) {
    for (const f of r.figures) {
      const x = ratio(f);
      rows.push([
        r.name,
        `${f.metric} (${f.unit}, ${f.higherIsBetter ? 'higher' : 'lower'} is better)`,
        formatNumber(f.tidemark),
        f.baselineName,
        formatNumber(f.baseline),
        Number.isFinite(x) ? `${x.toFixed(2)}x` : 'n/a',
      ]);
    }
  }
  return formatTable(rows);
}

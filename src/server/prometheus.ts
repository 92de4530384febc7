/**
 * A small, dependency-free Prometheus registry: counters, gauges and histograms with labels,
 * rendered in the text exposition format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/).
 */
export type Labels = Readonly<Record<string, string>>;

interface Metric {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  render(): string[];
}

export class Registry {
  private readonly metrics: Metric[] = [];
  private readonly collectors: (() => void)[] = [];

  counter(name: string, help: string): Counter {
    return this.add(new Counter(name, help));
  }
  gauge(name: string, help: string): Gauge {
    return this.add(new Gauge(name, help));
  }
  histogram(name: string, help: string, bucketsUpperBounds: readonly number[]): Histogram {
    return this.add(new Histogram(name, help, bucketsUpperBounds));
  }

  /** Runs before every render: refreshes gauges that are read, not pushed. */
  onCollect(fn: () => void): void {
    this.collectors.push(fn);
  }

  /** The whole exposition, `# HELP` and `# TYPE` before each family. */
  render(): string {
    for (const c of this.collectors) c();
    const out: string[] = [];
    for (const m of this.metrics) {
      out.push(`# HELP ${m.name} ${m.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`);
      out.push(`# TYPE ${m.name} ${m.type}`);
      out.push(...m.render());
    }
    return out.join('\n') + '\n';
  }

  private add<M extends Metric>(m: M): M {
    this.metrics.push(m);
    return m;
  }
}

abstract class Family {
  protected readonly series = new Map<string, { labels: Labels; value: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  protected cell(labels: Labels): { labels: Labels; value: number } {
    const key = labelText(labels);
    let c = this.series.get(key);
    if (!c) {
      c = { labels, value: 0 };
      this.series.set(key, c);
    }
    return c;
  }

  /** Forgets every series whose labels include `match` (a removed changefeed). */
  remove(match: Labels): void {
    for (const [k, c] of this.series) {
      if (Object.entries(match).every(([lk, lv]) => c.labels[lk] === lv)) this.series.delete(k);
    }
  }

  render(): string[] {
    return [...this.series.values()].map((c) => `${this.name}${labelText(c.labels)} ${formatValue(c.value)}`);
  }
}

export class Counter extends Family implements Metric {
  readonly type = 'counter' as const;
  inc(labels: Labels, by = 1): void {
    if (by > 0) this.cell(labels).value += by;
  }
}

export class Gauge extends Family implements Metric {
  readonly type = 'gauge' as const;
  set(labels: Labels, value: number): void {
    this.cell(labels).value = value;
  }
  /** Drops every series, for gauges recomputed from scratch at each collection. */
  reset(): void {
    this.series.clear();
  }
}

export class Histogram implements Metric {
  readonly type = 'histogram' as const;
  private readonly series = new Map<
    string,
    { labels: Labels; counts: number[]; sum: number; count: number }
  >();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly bounds: readonly number[],
  ) {}

  observe(labels: Labels, value: number): void {
    const key = labelText(labels);
    let s = this.series.get(key);
    if (!s) {
      s = { labels, counts: this.bounds.map(() => 0), sum: 0, count: 0 };
      this.series.set(key, s);
    }
    this.bounds.forEach((b, i) => {
      if (value <= b) s.counts[i] = (s.counts[i] ?? 0) + 1;
    });
    s.sum += value;
    s.count++;
  }

  remove(match: Labels): void {
    for (const [k, s] of this.series) {
      if (Object.entries(match).every(([lk, lv]) => s.labels[lk] === lv)) this.series.delete(k);
    }
  }

  render(): string[] {
    const out: string[] = [];
    for (const s of this.series.values()) {
      this.bounds.forEach((b, i) => {
        out.push(`${this.name}_bucket${labelText({ ...s.labels, le: formatValue(b) })} ${s.counts[i] ?? 0}`);
      });
      out.push(`${this.name}_bucket${labelText({ ...s.labels, le: '+Inf' })} ${s.count}`);
      out.push(`${this.name}_sum${labelText(s.labels)} ${formatValue(s.sum)}`);
      out.push(`${this.name}_count${labelText(s.labels)} ${s.count}`);
    }
    return out;
  }
}

export function labelText(labels: Labels): string {
  const parts = Object.entries(labels).map(
    ([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')}"`,
  );
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

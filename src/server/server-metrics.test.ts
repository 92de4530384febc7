import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ServerMetrics } from './server-metrics.ts';

describe('ServerMetrics', () => {
  it('exposes Tidemark series beside prom-client process and Node.js series; the Grafana dashboard uses only these', async () => {
    const m = new ServerMetrics(() => [
      {
        id: 'a',
        state: 'running',
        epoch: 3,
        rowsPerSec: 10,
        snapshotRows: 0,
        checkpointLagMs: 40,
        checkpointLagBytes: 100,
        resolvedLagMs: 0,
        resolvedLagBytes: 0,
        retainedWalBytes: 4096,
        withinLagBudget: true,
      },
    ]);
    m.error('a', 'SINK_WRITE_FAILED');
    const { text, contentType } = await m.render();
    expect(contentType).toMatch(/^text\/plain/);
    expect(text).toContain('tidemark_changefeed_state{changefeed="a",state="running"} 1');
    expect(text).toContain('tidemark_changefeed_within_lag_budget{changefeed="a"} 1');
    expect(text).toContain('tidemark_changefeeds{state="running"} 1');
    const names = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((x) => x[1]));
    for (const n of [
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_p99_seconds',
      'nodejs_gc_duration_seconds',
    ])
      expect(names, n).toContain(n);

    const dashboard = readFileSync(new URL('../../docs/grafana-dashboard.json', import.meta.url), 'utf8');
    const used = new Set(
      [...dashboard.matchAll(/\b((?:tidemark|process|nodejs)_[a-z0-9_]+)/g)].map((x) =>
        (x[1] ?? '').replace(/_(bucket|sum|count)$/, ''),
      ),
    );
    expect(used.size).toBeGreaterThan(10);
    for (const n of used) expect(names, `${n} in docs/grafana-dashboard.json`).toContain(n);

    m.forget('a');
    expect((await m.render()).text).not.toContain('tidemark_changefeed_errors_total{changefeed="a"');
  });
});

import { describe, expect, it } from 'vitest';
import { Registry } from './prometheus.ts';

describe('Prometheus registry', () => {
  it('renders counters, gauges and cumulative histogram buckets', () => {
    const r = new Registry();
    const c = r.counter('t_rows_total', 'Rows.');
    const g = r.gauge('t_lag_seconds', 'Lag.');
    const h = r.histogram('t_commit_seconds', 'Commit.', [0.1, 1]);
    c.inc({ changefeed: 'a' }, 3);
    c.inc({ changefeed: 'a' });
    g.set({ changefeed: 'a"b' }, 0.5);
    h.observe({ changefeed: 'a' }, 0.05);
    h.observe({ changefeed: 'a' }, 0.5);
    h.observe({ changefeed: 'a' }, 5);
    expect(r.render()).toBe(
      [
        '# HELP t_rows_total Rows.',
        '# TYPE t_rows_total counter',
        't_rows_total{changefeed="a"} 4',
        '# HELP t_lag_seconds Lag.',
        '# TYPE t_lag_seconds gauge',
        't_lag_seconds{changefeed="a\\"b"} 0.5',
        '# HELP t_commit_seconds Commit.',
        '# TYPE t_commit_seconds histogram',
        't_commit_seconds_bucket{changefeed="a",le="0.1"} 1',
        't_commit_seconds_bucket{changefeed="a",le="1"} 2',
        't_commit_seconds_bucket{changefeed="a",le="+Inf"} 3',
        't_commit_seconds_sum{changefeed="a"} 5.55',
        't_commit_seconds_count{changefeed="a"} 3',
        '',
      ].join('\n'),
    );
  });

  it('forgets the series of a removed label value', () => {
    const r = new Registry();
    const c = r.counter('t_total', 'T.');
    c.inc({ changefeed: 'a' });
    c.inc({ changefeed: 'b' });
    c.remove({ changefeed: 'a' });
    expect(r.render()).not.toContain('changefeed="a"');
    expect(r.render()).toContain('t_total{changefeed="b"} 1');
  });
});

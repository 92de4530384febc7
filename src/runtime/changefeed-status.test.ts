import { describe, expect, it } from 'vitest';
import { formatBytes, formatDurationMs } from '../core/units.ts';
import { LiveStatus, initialStatus, renderStatusLine, type ChangefeedStatus } from './changefeed-status.ts';

const streaming: ChangefeedStatus = {
  ...initialStatus('orders'),
  phase: 'streaming',
  rowsPerSec: 1204.4,
  epoch: 512,
  resolved: '0/1A2B3C4',
  checkpoint: '0/1A2B3A0',
  lagMs: 85,
  lagBytes: 4200,
};

function capture(isTTY: boolean) {
  const chunks: string[] = [];
  return { chunks, out: { isTTY, write: (t: string) => chunks.push(t) } };
}

describe('renderStatusLine', () => {
  it('shows id, phase, rate, positions and lag', () => {
    expect(renderStatusLine(streaming)).toBe(
      'orders  streaming  1,204 rows/s  epoch 512  resolved 0/1A2B3C4  checkpoint 0/1A2B3A0  lag 85 ms · 4.1 KiB',
    );
  });

  it('shows snapshot progress, unknowns and errors', () => {
    const line = renderStatusLine(
      { ...initialStatus('a'), phase: 'snapshot', snapshotRows: 1_234_567 },
      { idWidth: 3 },
    );
    expect(line).toBe(
      'a    snapshot   1,234,567 rows copied  0 rows/s  epoch 0  resolved –  checkpoint –  lag – · –',
    );
    const failed = renderStatusLine({
      ...streaming,
      phase: 'failed',
      error: {
        code: 'SOURCE_SLOT_LOST',
        message: 'SOURCE_SLOT_LOST: The replication slot is gone',
        hint: 'h',
      },
    });
    expect(failed.startsWith('orders  failed ')).toBe(true);
    expect(failed.endsWith('  error SOURCE_SLOT_LOST: The replication slot is gone')).toBe(true);
  });

  it('formats bytes and durations', () => {
    expect([0, 512, 1024, 4200, 64 * 1024 ** 2, 3 * 1024 ** 3].map(formatBytes)).toEqual([
      '0 B',
      '512 B',
      '1.0 KiB',
      '4.1 KiB',
      '64.0 MiB',
      '3.0 GiB',
    ]);
    expect([0, 850, 9999, 42_300, 725_000].map(formatDurationMs)).toEqual([
      '0 ms',
      '850 ms',
      '9999 ms',
      '42.3 s',
      '12m05s',
    ]);
  });
});

describe('LiveStatus', () => {
  it('redraws the block in place on a terminal', () => {
    const { chunks, out } = capture(true);
    const live = new LiveStatus({ out });
    live.update(streaming);
    live.update({ ...initialStatus('b'), phase: 'starting' });
    live.draw();
    live.draw();
    const [first = '', second = ''] = (chunks[0] ?? '').split('\n');
    expect(first.startsWith('\x1b[2Korders  streaming')).toBe(true);
    expect(second.startsWith('\x1b[2Kb       starting')).toBe(true);
    expect(chunks[1]?.startsWith('\x1b[2A\x1b[2Korders')).toBe(true);
  });

  it('cuts lines to the terminal width', () => {
    const { chunks, out } = capture(true);
    const live = new LiveStatus({ out: { ...out, columns: 20 } });
    live.update(streaming);
    live.draw();
    expect(chunks[0]).toBe('\x1b[2Korders  streaming …\n');
  });

  it('clears the block before interleaved output and keeps it below', () => {
    const { chunks, out } = capture(true);
    const live = new LiveStatus({ out });
    live.update(streaming);
    live.draw();
    const logs: string[] = [];
    live.interleave({ write: (t: string) => logs.push(t) }).write('a log line\n');
    expect(chunks[1]).toBe('\x1b[1A\x1b[J');
    expect(logs).toEqual(['a log line\n']);
  });

  it('prints plain lines every 5 s when not a terminal', () => {
    const { chunks, out } = capture(false);
    let now = 0;
    const live = new LiveStatus({ out, nowMs: () => now, poll: () => [streaming] });
    live.draw();
    now = 4999;
    live.draw();
    now = 5000;
    live.draw();
    expect(chunks).toHaveLength(2);
    expect(chunks[0]).not.toContain('\x1b');
    live.stop();
    expect(chunks).toHaveLength(3);
  });
});

import { describe, expect, it } from 'vitest';
import { SampleRing } from './sample-ring.ts';

const at = (tMs: number) => ({ tMs, lagMs: 0, lagBytes: 0, rowsPerSec: 0, bytesPerSec: 0 });

describe('SampleRing', () => {
  it('keeps the newest samples, oldest first', () => {
    const r = new SampleRing(3);
    for (let t = 1; t <= 5; t++) r.push(at(t));
    expect(r.toArray().map((s) => s.tMs)).toEqual([3, 4, 5]);
    expect(r.toArray(4).map((s) => s.tMs)).toEqual([4, 5]);
  });

  it('reads a partly filled ring in order', () => {
    const r = new SampleRing(4);
    r.push(at(1));
    r.push(at(2));
    expect(r.toArray().map((s) => s.tMs)).toEqual([1, 2]);
  });
});

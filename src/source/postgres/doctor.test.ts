import { describe, expect, it } from 'vitest';
import { versionVerdict } from './doctor.ts';

describe('versionVerdict', () => {
  it('refuses the minors that lose changes when tables join a live publication, and before 15', () => {
    const ok = (v: number) => versionVerdict(v).ok;
    expect([150012, 160008, 170004, 140020, 130000].map(ok)).toEqual([false, false, false, false, false]);
    expect([150013, 150018, 160009, 170005, 180000].map(ok)).toEqual([true, true, true, true, true]);
    expect(versionVerdict(160008).text).toContain('fixed in 16.9');
  });
});

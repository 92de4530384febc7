import { describe, expect, it } from 'vitest';
import { versionProblem } from './pg-connector.ts';

describe('PostgreSQL versions', () => {
  it('refuses minors that lose changes when tables join a live publication, and majors before 14', () => {
    expect(versionProblem(150012)).toMatch(/15\.12 can lose changes.*fixed in 15\.13/);
    expect(versionProblem(150013)).toBeNull();
    expect(versionProblem(150018)).toBeNull();
    expect(versionProblem(160008)).toMatch(/fixed in 16\.9/);
    expect(versionProblem(160009)).toBeNull();
    expect(versionProblem(170004)).toMatch(/fixed in 17\.5/);
    expect(versionProblem(170005)).toBeNull();
    expect(versionProblem(140017)).toMatch(/fixed in 14\.18/);
    expect(versionProblem(130021)).toMatch(/not supported.*14 or later/);
    expect(versionProblem(180000)).toBeNull();
    expect(versionProblem(120015)).toMatch(/not supported/);
  });
});

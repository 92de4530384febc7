/**
 * Prints rough throughput figures for aggregate and join over 100k changes (no timed assertion:
 * the numbers are for the log, the correctness checks are the oracle tests).
 */
import { describe, expect, it } from 'vitest';
import type { Change } from './change.ts';
import { count, max, sum } from './default-aggregates.ts';
import { GraphBuilder } from './graph.ts';
import { MemoryStateStore } from './memory-state-store.ts';

const CHANGES = 100_000;
const EPOCH = 10_000;

function rows(seed: number): Change[] {
  let x = seed;
  const out: Change[] = [];
  for (let i = 0; i < CHANGES; i++) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    out.push({ row: [i, x % 1000, `s${x % 97}`], weight: 1 });
  }
  return out;
}

async function run(name: string, build: GraphBuilder, inputs: Record<string, Change[]>): Promise<number> {
  const g = build.build(new MemoryStateStore());
  const total = Object.values(inputs).reduce((n, v) => n + v.length, 0);
  const length = Math.max(...Object.values(inputs).map((v) => v.length));
  const start = performance.now();
  let outputs = 0;
  for (let i = 0; i < length; i += EPOCH) {
    const batch = new Map(Object.entries(inputs).map(([k, v]) => [k, v.slice(i, i + EPOCH)]));
    outputs += g.step(batch).get('out')?.length ?? 0;
    await g.commit();
  }
  const ms = performance.now() - start;
  console.log(
    `${name}: ${total} changes in ${ms.toFixed(0)} ms (${Math.round(total / (ms / 1000))} changes/s, memory store, epochs of ${EPOCH} per input)`,
  );
  return outputs;
}

describe('throughput (printed, not asserted)', () => {
  it('aggregate and join over 100k changes', { timeout: 300_000 }, async () => {
    const a = new GraphBuilder();
    a.output(
      'out',
      a.aggregate(a.input('t'), {
        groupKey: (r) => [r[1] ?? null],
        aggregates: [
          { fn: count },
          { fn: sum, arg: (r) => r[0] ?? null },
          { fn: max, arg: (r) => r[2] ?? null },
        ],
      }),
    );
    expect(await run('aggregate (1000 groups, count/sum/max)', a, { t: rows(7) })).toBeGreaterThan(0);

    const j = new GraphBuilder();
    j.output(
      'out',
      j.join(j.input('l'), j.input('r'), {
        kind: 'inner',
        leftKey: (r) => [r[0] ?? null],
        rightKey: (r) => [r[0] ?? null],
        leftWidth: 3,
        rightWidth: 3,
      }),
    );
    const half = (seed: number): Change[] => rows(seed).slice(0, CHANGES / 2);
    expect(await run('inner join (1:1 keys)', j, { l: half(7), r: half(11) })).toBe(CHANGES / 2);
  });
});

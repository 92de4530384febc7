import { describe, expect, it } from 'vitest';
import { AckWindow } from './ack-window.ts';

function deferred(): { promise: Promise<void>; resolve(): void; reject(e: Error): void } {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

describe('AckWindow', () => {
  it('lets maxInFlight acks be outstanding and pauses on the next until one settles', async () => {
    const w = new AckWindow({ maxInFlight: 2 });
    const a = deferred();
    const b = deferred();
    await w.add(a.promise);
    let third = false;
    const adding = w.add(b.promise).then(() => (third = true));
    await Promise.resolve();
    expect(third).toBe(false);
    a.resolve();
    await adding;
    expect(third).toBe(true);
    b.resolve();
    await w.drain();
  });

  it('fails drain and later adds with the first failed ack', async () => {
    const w = new AckWindow({ maxInFlight: 10 });
    const a = deferred();
    const b = deferred();
    await w.add(a.promise);
    await w.add(b.promise);
    a.reject(new Error('first'));
    b.reject(new Error('second'));
    await expect(w.drain()).rejects.toThrow('first');
    await expect(w.add(Promise.resolve())).rejects.toThrow('first');
    w.reset();
    await w.add(Promise.resolve());
    await w.drain();
  });
});

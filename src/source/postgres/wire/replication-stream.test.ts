import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Lsn } from '../lsn.ts';
import type { BackendFrame } from './backend-frame-decoder.ts';
import { ByteBuilder } from './byte-builder.ts';
import { ReplicationStream } from './replication-stream.ts';

const frame = (type: string, body: Buffer): BackendFrame => ({ type: type.charCodeAt(0), payload: body });
const copyBoth = frame('W', new ByteBuilder().u8(0).i16(0).build());
/** One CopyData frame of `bytes` bytes: XLogData around a Message whose content pads it out. */
const xlog = (bytes: number): BackendFrame => {
  const head = new ByteBuilder().char('w').u64(1n).u64(2n).u64(0n).char('M').u8(0).u64(1n).cstring('p');
  const headBytes = head.build().length + 4;
  return frame(
    'd',
    head
      .u32(bytes - headBytes)
      .bytes(Buffer.alloc(bytes - headBytes))
      .build(),
  );
};
const keepalive = (reply: boolean) =>
  frame(
    'd',
    new ByteBuilder()
      .char('k')
      .u64(0x500n)
      .u64(0n)
      .u8(reply ? 1 : 0)
      .build(),
  );

function harness(opts: { maxBufferedBytes?: number; statusIntervalMs?: number } = {}) {
  const writes: Buffer[] = [];
  const calls: string[] = [];
  const stream = new ReplicationStream({
    write: (b) => writes.push(b),
    pause: () => calls.push('pause'),
    resume: () => calls.push('resume'),
    onFinished: () => calls.push('finished'),
    statusIntervalMs: opts.statusIntervalMs ?? 10_000,
    maxBufferedBytes: opts.maxBufferedBytes ?? 16 * 1024 * 1024,
    url: 'postgres://u:secret@127.0.0.1:1/db',
  });
  /** The flush positions of the status updates sent so far. */
  const flushes = () => writes.map((w) => w.readBigUInt64BE(14));
  return { stream, writes, calls, flushes, it: stream[Symbol.asyncIterator]() };
}

describe('ReplicationStream', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('answers a keepalive that asks for a reply at once, without the consumer pulling', async () => {
    const h = harness();
    h.stream.onFrame(copyBoth);
    h.stream.onFrame(keepalive(false));
    expect(h.writes).toHaveLength(0);
    h.stream.onFrame(keepalive(true));
    expect(h.flushes()).toEqual([0n]); // nothing flushed yet: 0, which the server ignores
    const batch = await h.it.next();
    expect(batch.value).toEqual([
      { tag: 'keepalive', walEnd: Lsn.parse('0/500'), sendTimeMs: 946_684_800_000, replyRequested: false },
      { tag: 'keepalive', walEnd: Lsn.parse('0/500'), sendTimeMs: 946_684_800_000, replyRequested: true },
    ]);
  });

  it('reports only positions given to setFlushed, rate-limited, never moving back', async () => {
    const h = harness({ statusIntervalMs: 1_000 });
    h.stream.onFrame(copyBoth);
    h.stream.setFlushed(Lsn.parse('0/100'));
    h.stream.setFlushed(Lsn.parse('0/200'));
    h.stream.setFlushed(Lsn.parse('0/150'));
    await vi.advanceTimersByTimeAsync(0);
    expect(h.flushes()).toEqual([0x200n]);
    h.stream.setFlushed(Lsn.parse('0/300'));
    await vi.advanceTimersByTimeAsync(50);
    expect(h.flushes()).toEqual([0x200n]); // within the rate limit
    await vi.advanceTimersByTimeAsync(50);
    expect(h.flushes()).toEqual([0x200n, 0x300n]);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(h.flushes()).toEqual([0x200n, 0x300n, 0x300n]); // the periodic update
    const w = h.writes[0]!;
    expect(w.readBigUInt64BE(6)).toBe(0x200n); // write
    expect(w.readBigUInt64BE(22)).toBe(0x200n); // apply
  });

  it('pauses the socket when the consumer lags and resumes when it has caught up', async () => {
    const h = harness({ maxBufferedBytes: 1_000 });
    h.stream.onFrame(copyBoth);
    for (let i = 0; i < 9; i++) h.stream.onFrame(xlog(100));
    expect(h.calls).toEqual([]);
    h.stream.onFrame(xlog(100));
    expect(h.calls).toEqual(['pause']);
    for (let i = 0; i < 5; i++) h.stream.onFrame(xlog(100)); // rest of the socket chunk
    const first = await h.it.next();
    expect(first.value).toHaveLength(15);
    expect(h.calls).toEqual(['pause']); // the consumer still holds that batch
    const second = h.it.next();
    expect(h.calls).toEqual(['pause', 'resume']);
    h.stream.onFrame(xlog(100));
    expect((await second).value).toHaveLength(1);
  });

  it('maps a server error before streaming (slot in use), with the URI masked', async () => {
    const h = harness();
    const error = new ByteBuilder()
      .char('V')
      .cstring('ERROR')
      .char('C')
      .cstring('55006')
      .char('M')
      .cstring('replication slot "s" is active for PID 7')
      .u8(0)
      .build();
    h.stream.onFrame(frame('E', error));
    const err = await h.it.next().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'SOURCE_SLOT_IN_USE' });
    expect(String(err)).not.toContain('secret');
    expect(h.calls).toEqual(['finished']);
    expect((await h.it.next()).done).toBe(true);
  });

  it('delivers what arrived before the server ended the stream, then SOURCE_STREAM_ENDED', async () => {
    const h = harness();
    h.stream.onFrame(copyBoth);
    h.stream.onFrame(xlog(100));
    h.stream.onFrame(frame('c', Buffer.alloc(0)));
    expect((await h.it.next()).value).toHaveLength(1);
    await expect(h.it.next()).rejects.toMatchObject({ code: 'SOURCE_STREAM_ENDED' });
  });

  it('ends cleanly on end(null) and on the consumer breaking out', async () => {
    const h = harness();
    h.stream.onFrame(copyBoth);
    const pending = h.it.next();
    h.stream.end(null);
    expect((await pending).done).toBe(true);
    const g = harness();
    await g.it.return?.();
    expect(g.calls).toEqual(['finished']);
  });

  it('turns undecodable data into SOURCE_PROTOCOL and finishes', async () => {
    const h = harness();
    h.stream.onFrame(copyBoth);
    h.stream.onFrame(frame('d', new ByteBuilder().char('w').u64(1n).u64(2n).u64(0n).char('?').build()));
    await expect(h.it.next()).rejects.toMatchObject({ code: 'SOURCE_PROTOCOL' });
    expect(h.calls).toEqual(['finished']);
  });
});

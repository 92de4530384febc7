/**
 * MySQL protocol packets read from a socket, pull-based: the socket is paused while more than
 * `highWaterBytes` wait unread, so the server's binlog dump waits for us rather than our memory
 * growing (the server blocks in its send, as it does for a slow replica).
 *
 *   socket ─data─► PacketFramer (3-byte length, 1-byte sequence; 0xffffff continues) ─► queue ─► next()
 */
import type { Socket } from 'node:net';
import { TidemarkError } from '../../errors/tidemark-error.ts';

const MAX_PAYLOAD = 0xffffff;

/**
 * Splits a byte stream into packet payloads: 3-byte length, 1-byte sequence, payload; a payload
 * of exactly 0xffffff bytes continues in the next packet and is joined with it. No I/O.
 */
export class PacketFramer {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private partial: Buffer[] = [];

  get bufferedBytes(): number {
    return this.buffered;
  }

  /** Adds bytes; returns the payloads completed by them, in order. */
  push(data: Buffer): Buffer[] {
    this.chunks.push(data);
    this.buffered += data.length;
    const out: Buffer[] = [];
    while (this.buffered >= 4) {
      const length = this.peek(4).readUIntLE(0, 3);
      if (this.buffered < 4 + length) break;
      const packet = this.take(4 + length).subarray(4);
      if (length === MAX_PAYLOAD) {
        this.partial.push(packet);
        continue;
      }
      if (this.partial.length > 0) {
        this.partial.push(packet);
        out.push(Buffer.concat(this.partial));
        this.partial = [];
      } else {
        out.push(packet);
      }
    }
    return out;
  }

  /** The first chunk, joined with as many following ones as it takes to hold `n` bytes. */
  private peek(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= n) return first;
    let count = 1;
    let length = first.length;
    while (length < n) length += this.chunks[count++]!.length;
    const joined = Buffer.concat(this.chunks.slice(0, count), length);
    this.chunks.splice(0, count, joined);
    return joined;
  }

  private take(n: number): Buffer {
    const first = this.peek(n);
    const out = first.subarray(0, n);
    if (first.length === n) this.chunks.shift();
    else this.chunks[0] = first.subarray(n);
    this.buffered -= n;
    return out;
  }
}

export class PacketStream {
  private readonly framer = new PacketFramer();
  private readonly ready: Buffer[] = [];
  private readyBytes = 0;
  private waiter: (() => void) | null = null;
  private failure: Error | null = null;
  private ended = false;
  private paused = false;

  constructor(
    private readonly socket: Socket,
    private readonly highWaterBytes = 8 * 1024 * 1024,
  ) {
    socket.on('data', (data: Buffer) => this.onData(data));
    socket.on('error', (err) => this.fail(streamEnded(`the connection failed: ${err.message}`, err)));
    socket.on('close', () => this.fail(streamEnded('the server closed the connection')));
  }

  /** Writes one command packet (sequence id 0: a new command). */
  writeCommand(payload: Buffer): void {
    const header = Buffer.alloc(4);
    header.writeUIntLE(payload.length, 0, 3);
    header[3] = 0;
    this.socket.write(Buffer.concat([header, payload]));
  }

  /**
   * The packets that have arrived (at least one), oldest first; waits when none has. Throws the
   * connection's failure once the packets before it are consumed.
   */
  async next(): Promise<Buffer[]> {
    while (this.ready.length === 0) {
      if (this.failure) throw this.failure;
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
    const out = this.ready.splice(0);
    this.readyBytes = 0;
    if (this.paused) {
      this.paused = false;
      this.socket.resume();
    }
    return out;
  }

  close(): void {
    this.ended = true;
    this.socket.destroy();
    this.wake();
  }

  private onData(data: Buffer): void {
    for (const p of this.framer.push(data)) {
      this.ready.push(p);
      this.readyBytes += p.length;
    }
    if (this.readyBytes + this.framer.bufferedBytes > this.highWaterBytes && !this.paused) {
      this.paused = true;
      this.socket.pause();
    }
    this.wake();
  }

  private fail(err: Error): void {
    if (this.failure === null) this.failure = this.ended ? streamEnded('closed') : err;
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }
}

function streamEnded(detail: string, cause?: unknown): TidemarkError {
  return new TidemarkError('SOURCE_STREAM_ENDED', { detail, ...(cause === undefined ? {} : { cause }) });
}

import { TidemarkError } from '../../../errors/tidemark-error.ts';
import { wrapPgError } from '../pg-errors.ts';
import type { Lsn } from '../lsn.ts';
import { decodeCopyData, decodePgoutput } from '../pgoutput-decoder.ts';
import type { ReplicationEvent } from '../pgoutput-messages.ts';
import { Backend, PgServerErrorResponse, parseErrorFields } from './backend-messages.ts';
import type { BackendFrame } from './backend-frame-decoder.ts';
import { encodeStandbyStatus } from './frontend-messages.ts';

export interface ReplicationStreamOptions {
  /** Sends bytes to the server (standby status updates). */
  write(bytes: Buffer): void;
  /** Stops / restarts reading the socket (back-pressure). */
  pause(): void;
  resume(): void;
  /** Called once when the stream is over for any reason; the connection then closes. */
  onFinished(): void;
  statusIntervalMs: number;
  maxBufferedBytes: number;
  /** For error messages (masked before shown). */
  url: string;
}

export interface ReplicationStreamStats {
  /** Raw bytes queued plus those of the batch the consumer holds. */
  readonly bufferedBytes: number;
  /** How many times the socket was paused because the consumer lagged. */
  readonly pauses: number;
  readonly paused: boolean;
  /** The last position given to setFlushed (raw LSN value, 0 if none). */
  readonly flushedLsn: bigint;
}

/** The least time between two status updates sent because `setFlushed` advanced. */
const FLUSH_REPLY_MIN_INTERVAL_MS = 100;

/**
 * The CopyBoth phase of START_REPLICATION: receives CopyData frames from the socket, answers
 * keepalives, reports the flushed position, and hands events to one pull-based consumer.
 *
 *   socket ─ frames ─► queue (raw CopyData bodies, counted in bytes) ─ next() ─► decoded batch
 *             │  keepalive with reply requested: answered at once, even while the consumer lags
 *             └─ outstanding bytes ≥ maxBufferedBytes: socket paused until the consumer catches up
 *
 * Maintains the invariant that the bytes queued plus the bytes of the batch the consumer holds
 * stay under `maxBufferedBytes` (plus one socket chunk and one partial frame): memory does not grow
 * with the WAL. Decoding happens on the consumer's pull, so a lagging consumer costs no CPU here.
 * The position reported as write/flush/apply is only ever a value given to `setFlushed` (0 until
 * then, which the server ignores), so the slot never advances past what is durable downstream.
 */
export class ReplicationStream implements AsyncIterable<ReplicationEvent[]> {
  private queue: Buffer[] = [];
  private queuedBytes = 0;
  private heldBytes = 0;
  private paused = false;
  private pauses = 0;
  private started = false;
  private finished = false;
  private failure: TidemarkError | null = null;
  private wake: (() => void) | null = null;
  private flushed = 0n;
  private lastStatusAtMs = 0;
  private statusTimer: NodeJS.Timeout | null = null;
  private flushReplyTimer: NodeJS.Timeout | null = null;
  private iterated = false;

  constructor(private readonly opts: ReplicationStreamOptions) {}

  /** For lag and memory metrics: bytes received and not yet released by the consumer. */
  stats(): ReplicationStreamStats {
    return {
      bufferedBytes: this.queuedBytes + this.heldBytes,
      pauses: this.pauses,
      paused: this.paused,
      flushedLsn: this.flushed,
    };
  }

  /** Feeds one backend frame received after START_REPLICATION was sent. */
  onFrame(frame: BackendFrame): void {
    if (this.finished) return;
    switch (frame.type) {
      case Backend.copyData:
        return this.onCopyData(frame.payload);
      case Backend.copyBothResponse:
        this.started = true;
        this.statusTimer = setInterval(() => this.sendStatus(false), this.opts.statusIntervalMs);
        this.statusTimer.unref();
        return;
      case Backend.errorResponse:
        return this.end(this.serverError(frame.payload));
      case Backend.copyDone:
        return this.end(
          new TidemarkError('SOURCE_STREAM_ENDED', { detail: 'the server ended the copy (CopyDone)' }),
        );
      case Backend.noticeResponse:
      case Backend.parameterStatus:
        return;
      default:
        return this.end(
          new TidemarkError('SOURCE_PROTOCOL', {
            detail: `unexpected message 0x${frame.type.toString(16)} during replication`,
          }),
        );
    }
  }

  /**
   * Ends the stream. `null` is a requested stop (close()): the consumer sees the end at once.
   * An error is delivered after the events already received.
   */
  end(error: TidemarkError | null): void {
    if (this.finished) return;
    this.finished = true;
    if (error === null) {
      this.queue = [];
      this.queuedBytes = 0;
    } else {
      this.failure = error;
    }
    if (this.statusTimer) clearInterval(this.statusTimer);
    if (this.flushReplyTimer) clearTimeout(this.flushReplyTimer);
    this.statusTimer = this.flushReplyTimer = null;
    this.wakeConsumer();
    this.opts.onFinished();
  }

  /** Records the position durable downstream and reports it soon (rate-limited). Never moves back. */
  setFlushed(lsn: Lsn): void {
    if (lsn.value <= this.flushed) return;
    this.flushed = lsn.value;
    if (!this.started || this.finished || this.flushReplyTimer) return;
    const waitMs = Math.max(0, this.lastStatusAtMs + FLUSH_REPLY_MIN_INTERVAL_MS - Date.now());
    this.flushReplyTimer = setTimeout(() => {
      this.flushReplyTimer = null;
      this.sendStatus(false);
    }, waitMs);
  }

  [Symbol.asyncIterator](): AsyncIterator<ReplicationEvent[]> {
    if (this.iterated)
      throw new TidemarkError('INTERNAL', { detail: 'a replication stream has one consumer' });
    this.iterated = true;
    return {
      next: () => this.next(),
      return: () => {
        this.end(null);
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  private async next(): Promise<IteratorResult<ReplicationEvent[]>> {
    // The consumer asks again, so it is done with the previous batch.
    this.heldBytes = 0;
    this.maybeResume();
    for (;;) {
      if (this.queue.length > 0) return { value: this.takeBatch(), done: false };
      if (this.failure) {
        const err = this.failure;
        this.failure = null;
        throw err;
      }
      if (this.finished) return { value: undefined, done: true };
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  private takeBatch(): ReplicationEvent[] {
    const raw = this.queue;
    this.queue = [];
    this.heldBytes = this.queuedBytes;
    this.queuedBytes = 0;
    const events: ReplicationEvent[] = new Array<ReplicationEvent>(raw.length);
    try {
      for (let i = 0; i < raw.length; i++) {
        const body = raw[i]!;
        // XLogData: skip the envelope (walStart, walEnd, sendTime: 24 bytes) without decoding it.
        if (body[0] === 0x77 && body.length > 25) {
          events[i] = decodePgoutput(body.subarray(25), true);
        } else {
          const env = decodeCopyData(body);
          events[i] = env.tag === 'xlog' ? decodePgoutput(env.payload, true) : env;
        }
      }
    } catch (err) {
      this.end(null);
      throw err;
    }
    return events;
  }

  private serverError(body: Buffer): TidemarkError {
    const action = this.started ? 'streaming' : 'starting replication';
    const err = wrapPgError(new PgServerErrorResponse(parseErrorFields(body)), {
      role: 'source',
      uri: this.opts.url,
      action,
    });
    // A server shutting down or terminating the walsender ends a running stream; it was not a connect failure.
    if (this.started && err.code === 'CONNECT_REFUSED') {
      return new TidemarkError('SOURCE_STREAM_ENDED', { detail: err.detail ?? '', cause: err.cause });
    }
    return err;
  }

  private onCopyData(body: Buffer): void {
    // Keepalive: 'k', walEnd(8), sendTime(8), replyRequested(1).
    if (body[0] === 0x6b && body[17] === 1) this.sendStatus(false);
    this.queue.push(body);
    this.queuedBytes += body.length;
    if (!this.paused && this.queuedBytes + this.heldBytes >= this.opts.maxBufferedBytes) {
      this.paused = true;
      this.pauses++;
      this.opts.pause();
    }
    this.wakeConsumer();
  }

  private maybeResume(): void {
    if (this.paused && !this.finished && this.queuedBytes + this.heldBytes < this.opts.maxBufferedBytes / 2) {
      this.paused = false;
      this.opts.resume();
    }
  }

  private wakeConsumer(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  private sendStatus(replyRequested: boolean): void {
    if (this.finished) return;
    this.lastStatusAtMs = Date.now();
    const lsn = this.flushed;
    this.opts.write(
      encodeStandbyStatus({
        writeLsn: lsn,
        flushLsn: lsn,
        applyLsn: lsn,
        nowMs: this.lastStatusAtMs,
        replyRequested,
      }),
    );
  }
}

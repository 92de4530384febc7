import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import { copyLine } from './copy-text.ts';

/** Text is handed to the COPY stream in pieces of about this size: few messages, bounded memory. */
const FLUSH_CHARS = 64 * 1024;

/**
 * Feeds rows into one `COPY … FROM STDIN` stream (pg-copy-streams), in COPY text format, waiting
 * for the socket to drain whenever the stream asks for it. At most about one piece plus the
 * stream's high-water mark is held in memory, however many rows pass through.
 */
export class CopyWriter {
  private pending = '';
  private failure: unknown = null;

  constructor(private readonly stream: Writable) {
    // Kept so an error while nobody awaits surfaces at the next write or end, never unhandled.
    stream.on('error', (err) => {
      this.failure ??= err;
    });
  }

  /**
   * Queues many rows, waiting only when a piece is sent (an `await` per row costs a promise and
   * a microtask turn each: measurable at a million rows). Call only before `end()`.
   */
  async writeRows(rows: readonly (readonly (string | null)[])[]): Promise<void> {
    for (const cells of rows) {
      this.pending += copyLine(cells);
      if (this.pending.length >= FLUSH_CHARS) await this.flush();
    }
  }

  /**
   * Sends rows already in COPY text format (whole rows, each ended by a newline), as they are:
   * no decoding or encoding of cells. Call only before `end()`.
   */
  async writeCopyText(bytes: Buffer): Promise<void> {
    await this.flush();
    if (!this.stream.write(bytes)) await once(this.stream, 'drain');
    if (this.failure !== null) throw this.failure;
  }

  /** Sends what is queued and completes the COPY; resolves when the server has applied it. */
  async end(): Promise<void> {
    await this.flush();
    this.stream.end();
    await finished(this.stream);
    if (this.failure !== null) throw this.failure;
  }

  /** Cancels the COPY (CopyFail): the server rejects it, the transaction must be rolled back. */
  abort(reason: Error): void {
    // After a server error pg-copy-streams has let go of the connection: nothing left to cancel.
    if (this.failure !== null || this.stream.destroyed || this.stream.writableFinished) return;
    this.stream.on('error', () => {});
    this.stream.destroy(reason);
  }

  private async flush(): Promise<void> {
    if (this.failure !== null) throw this.failure;
    if (this.pending.length === 0) return;
    const piece = this.pending;
    this.pending = '';
    if (!this.stream.write(piece)) {
      await once(this.stream, 'drain');
    }
    if (this.failure !== null) throw this.failure;
  }
}

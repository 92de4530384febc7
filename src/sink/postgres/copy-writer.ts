import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import { PackedCells } from '../../core/packed-cells.ts';
import type { TableSchema } from '../../core/table-schema.ts';
import type { StageGroup } from './apply-plan.ts';
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
  /** Packed rows' COPY text, written straight from their bytes: `bytes[0, used)`. */
  private bytes: Buffer | null = null;
  private used = 0;
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
   * Queues a group of staged rows (apply-plan.ts). A packed row's cells go from their bytes into
   * the COPY text, escaped byte by byte (the four bytes COPY escapes never occur inside a UTF-8
   * sequence), with its group's op and mask before them and a NULL per key column after.
   */
  async writeStaged(table: TableSchema, group: StageGroup): Promise<void> {
    const head = Buffer.from(`${group.op}\t${group.mask || '\\N'}\t\\N\t`, 'latin1');
    const tail = Buffer.from(`${'\t\\N'.repeat(table.keyColumns.length)}\n`, 'latin1');
    for (const row of group.rows) {
      if (row instanceof PackedCells) this.packedLine(head, row, tail);
      else {
        const line = copyLine(row);
        const out = this.room(3 * line.length);
        this.used += out.write(line, this.used, 'utf8');
      }
      if (this.used >= FLUSH_CHARS) await this.flush();
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
    if (this.used > 0) {
      const piece = this.bytes!.subarray(0, this.used);
      // The stream keeps the piece until it is sent: the next rows go into a new buffer.
      this.bytes = null;
      this.used = 0;
      if (!this.stream.write(piece)) await once(this.stream, 'drain');
      if (this.failure !== null) throw this.failure;
    }
    if (this.pending.length === 0) return;
    const piece = this.pending;
    this.pending = '';
    if (!this.stream.write(piece)) {
      await once(this.stream, 'drain');
    }
    if (this.failure !== null) throw this.failure;
  }

  /** The byte buffer, with room for `bytes` more after what it holds. */
  private room(bytes: number): Buffer {
    const out = this.bytes;
    if (out !== null && this.used + bytes <= out.length) return out;
    const next = Buffer.allocUnsafe(Math.max(2 * FLUSH_CHARS, this.used + bytes));
    if (out !== null) out.copy(next, 0, 0, this.used);
    this.bytes = next;
    return next;
  }

  /** Appends `head`, the row's cells as COPY fields separated by tabs, and `tail`. */
  private packedLine(head: Buffer, row: PackedCells, tail: Buffer): void {
    const src = row.bytes;
    // Escaping at most doubles a cell; `\N` and a tab are 3 bytes, as is a cell's 1-byte header.
    const out = this.room(head.length + 2 * (row.end - row.start) + 3 * row.count + tail.length);
    // Byte loops, not Buffer#copy: a native call per few bytes costs more than it copies.
    let o = this.used;
    for (let k = 0; k < head.length; k++) out[o++] = head[k]!;
    let pos = row.start;
    let n = 0;
    for (let shift = 0; ; shift += 7) {
      const b = src[pos++]!;
      n += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) break;
    }
    for (let i = 0; i < n; i++) {
      if (i > 0) out[o++] = 0x09;
      let h = 0;
      for (let shift = 0; ; shift += 7) {
        const b = src[pos++]!;
        h += (b & 0x7f) * 2 ** shift;
        if (b < 0x80) break;
      }
      if (h < 2) {
        // NULL, or UNCHANGED (staged as NULL).
        out[o++] = 0x5c;
        out[o++] = 0x4e;
        continue;
      }
      const end = pos + h - 2;
      for (; pos < end; pos++) {
        const b = src[pos]!;
        if (b === 0x5c || b === 0x09 || b === 0x0a || b === 0x0d) {
          out[o++] = 0x5c;
          out[o++] = b === 0x5c ? 0x5c : b === 0x09 ? 0x74 : b === 0x0a ? 0x6e : 0x72;
        } else out[o++] = b;
      }
    }
    for (let k = 0; k < tail.length; k++) out[o++] = tail[k]!;
    this.used = o;
  }
}

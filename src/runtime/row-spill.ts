/**
 * Rows kept in a local file instead of memory: a table without a key is copied online in one read
 * (its rows cannot be reconciled with the stream chunk by chunk), and such a table may be larger
 * than memory. Written as the read hands rows over, read back once, then deleted.
 *
 * The file holds one JSON array of cells per line (JSON escapes newlines and lone surrogates, so
 * every text round-trips). It lives under the data directory; a crash leaves it behind, and the
 * next copy of the table writes over it.
 */
import { closeSync, mkdirSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Row } from '../core/row.ts';

const WRITE_BYTES = 1 << 20;
const READ_BYTES = 1 << 20;

export class RowSpill {
  private fd: number | null;
  private pending: string[] = [];
  private pendingChars = 0;
  /** Rows appended. */
  count = 0;

  /** Creates (or empties) the file at `path`. */
  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true });
    this.fd = openSync(path, 'w+');
  }

  /** Appends `rows`. Only before `rows()`. */
  append(rows: readonly Row[]): void {
    if (this.fd === null) throw new Error('row spill: appended after it was read or closed');
    for (const r of rows) {
      const line = JSON.stringify(r);
      this.pending.push(line);
      this.pendingChars += line.length + 1;
      if (this.pendingChars >= WRITE_BYTES) this.flush();
    }
    this.count += rows.length;
  }

  /**
   * The rows appended, in order, read back from the file a block at a time. Once: the file is
   * deleted when the iteration ends (also when it is left early).
   */
  *rows(): Generator<Row> {
    this.flush();
    const fd = this.fd;
    if (fd === null) throw new Error('row spill: read twice or after it was closed');
    this.fd = null;
    try {
      const buf = Buffer.allocUnsafe(READ_BYTES);
      let at = 0;
      let carry: Buffer = Buffer.alloc(0);
      for (;;) {
        const n = readSync(fd, buf, 0, READ_BYTES, at);
        if (n === 0) break;
        at += n;
        const block = carry.length > 0 ? Buffer.concat([carry, buf.subarray(0, n)]) : buf.subarray(0, n);
        let start = 0;
        for (let nl = block.indexOf(10, start); nl !== -1; nl = block.indexOf(10, start)) {
          yield JSON.parse(block.toString('utf8', start, nl)) as Row;
          start = nl + 1;
        }
        // A copy: `buf` is refilled by the next read.
        carry = Buffer.from(block.subarray(start));
      }
    } finally {
      closeSync(fd);
      rmSync(this.path, { force: true });
    }
  }

  /** Deletes the file (rows not read are dropped). Idempotent. */
  close(): void {
    if (this.fd !== null) {
      closeSync(this.fd);
      this.fd = null;
      rmSync(this.path, { force: true });
    }
    this.pending = [];
    this.pendingChars = 0;
  }

  private flush(): void {
    if (this.pending.length === 0 || this.fd === null) return;
    writeSync(this.fd, this.pending.join('\n') + '\n');
    this.pending = [];
    this.pendingChars = 0;
  }
}

/**
 * Items kept in a local file instead of memory: a table without a key is copied online in one read
 * (its rows cannot be reconciled with the stream chunk by chunk), and such a table may be larger
 * than memory; so may the changes the stream brings meanwhile (held-changes.ts). Written as they
 * come, read back once, then deleted.
 *
 * The file holds one JSON value per line (JSON escapes newlines and lone surrogates, so every text
 * round-trips); a codec says what an item is as JSON. It lives under the data directory; a crash
 * leaves it behind, and the runtime deletes such files when a changefeed starts (`removeSpills`).
 * Every failure of the file is COPY_SPILL_FAILED (retriable), and a read-back that does not give
 * every item appended fails the same way rather than apply a table with rows missing.
 */
import { closeSync, mkdirSync, openSync, readdirSync, readSync, rmSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Row } from '../core/row.ts';
import { TidemarkError } from '../errors/tidemark-error.ts';

const WRITE_BYTES = 1 << 20;
const READ_BYTES = 1 << 20;
/** Spill files end so (copy-progress.ts names them, in a directory per changefeed). */
const SUFFIX = '.rows';

/** What an item is as a JSON value, and back. */
export interface SpillCodec<T> {
  encode(item: T): unknown;
  decode(json: unknown): T;
}

const ROWS: SpillCodec<Row> = { encode: (r) => r, decode: (j) => j as Row };

export class LineSpill<T> {
  private fd: number | null;
  private pending: string[] = [];
  private pendingChars = 0;
  /** Items appended. */
  count = 0;

  /** Creates (or empties) the file at `path`. */
  constructor(
    readonly path: string,
    private readonly codec: SpillCodec<T>,
  ) {
    this.fd = this.io('creating', () => {
      mkdirSync(dirname(path), { recursive: true });
      return openSync(path, 'w+');
    });
  }

  /** Appends `items`. Only before `rows()`. */
  append(items: readonly T[]): void {
    if (this.fd === null) throw new Error('spill: appended after it was read or closed');
    for (const r of items) {
      const line = JSON.stringify(this.codec.encode(r));
      this.pending.push(line);
      this.pendingChars += line.length + 1;
      if (this.pendingChars >= WRITE_BYTES) this.flush();
    }
    this.count += items.length;
  }

  /**
   * The items appended, in order, read back from the file a block at a time. Once: the file is
   * deleted when the iteration ends (also when it is left early).
   */
  *rows(): Generator<T> {
    this.flush();
    const fd = this.fd;
    if (fd === null) throw new Error('spill: read twice or after it was closed');
    this.fd = null;
    try {
      const buf = Buffer.allocUnsafe(READ_BYTES);
      let at = 0;
      let carry: Buffer = Buffer.alloc(0);
      let read = 0;
      for (;;) {
        const n = this.io('reading', () => readSync(fd, buf, 0, READ_BYTES, at));
        if (n === 0) break;
        at += n;
        const block = carry.length > 0 ? Buffer.concat([carry, buf.subarray(0, n)]) : buf.subarray(0, n);
        let start = 0;
        for (let nl = block.indexOf(10, start); nl !== -1; nl = block.indexOf(10, start)) {
          const line = block.toString('utf8', start, nl);
          yield this.io('reading', () => this.codec.decode(JSON.parse(line)));
          read++;
          start = nl + 1;
        }
        // A copy: `buf` is refilled by the next read.
        carry = Buffer.from(block.subarray(start));
      }
      if (carry.length > 0 || read !== this.count) {
        throw new TidemarkError('COPY_SPILL_FAILED', {
          detail: `${this.path}: ${read} of ${this.count} lines read back${carry.length > 0 ? ', the last one cut short' : ''}`,
        });
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
    const fd = this.fd;
    const bytes = Buffer.from(this.pending.join('\n') + '\n');
    this.pending = [];
    this.pendingChars = 0;
    // writeSync may write less than asked (a disk nearly full): the rest is written again.
    this.io('writing', () => {
      for (let off = 0; off < bytes.length;) off += writeSync(fd, bytes, off);
    });
  }

  private io<T>(action: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw new TidemarkError('COPY_SPILL_FAILED', {
        detail: `${action} ${this.path}: ${(err as Error).message}`,
        cause: err,
      });
    }
  }
}

/** A table's rows, as the source read them. */
export class RowSpill extends LineSpill<Row> {
  constructor(path: string) {
    super(path, ROWS);
  }
}

/** Deletes every spill file in `dir` (left by a crash: a spill is never resumed). */
export function removeSpills(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names) if (n.endsWith(SUFFIX)) rmSync(join(dir, n), { force: true });
}

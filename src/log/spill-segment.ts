/**
 * Spill segments: the records of one large transaction in a plain file, `<log>/spill/<the log's
 * sequence number of the transaction, 16 hex digits>.seg`, framed as record-codec.ts draws (`len varint | record`, no header).
 * Written and read with positional `fs` calls, never mapped: the pages a reader or the writer
 * touch stay in the kernel's page cache and never count in the process's resident memory, which
 * is the reason the files exist (LMDB reads through mmap; see README.md).
 *
 * A segment is referenced from LMDB by a `segment` record written in the same LMDB transaction
 * as its commit record: a file without such a reference is an incomplete tail or an orphan, and
 * the log deletes it at open (change-log.ts).
 */
import {
  closeSync,
  fstatSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { TidemarkError } from '../errors/tidemark-error.ts';
import { frameHeaderBytes, writeFrameHeader } from './record-codec.ts';

const NAME = /^([0-9a-f]{16})\.seg$/;

/** The file name of the segment of the transaction with sequence number `seq`. */
export function segmentName(seq: bigint): string {
  return `${seq.toString(16).padStart(16, '0')}.seg`;
}

/** The sequence number a segment file name stands for, or null for any other name. */
export function seqOfSegment(name: string): bigint | null {
  const m = NAME.exec(name);
  return m ? BigInt(`0x${m[1]!}`) : null;
}

/** The files of a spill directory with their sizes (none when it does not exist yet). */
export function listSpillDir(dir: string): { name: string; bytes: number }[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return [];
    throw wrapSpillError(err, dir, 'listing');
  }
  return names.map((name) => {
    try {
      return { name, bytes: statSync(join(dir, name)).size };
    } catch {
      return { name, bytes: 0 };
    }
  });
}

/** Deletes a spill file; a file already gone is fine (a crash may have come between). */
export function removeSpillFile(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as { code?: string }).code !== 'ENOENT') throw wrapSpillError(err, path, 'deleting');
  }
}

/**
 * An fs error on a spill file, wrapped once: a full disk or quota is CHANGELOG_DISK_FULL (like
 * LMDB's, retriable), anything else INTERNAL. Missing or short files are answered by the reader
 * (CHANGELOG_CORRUPT), which knows what the file should hold.
 */
export function wrapSpillError(err: unknown, path: string, action: string): TidemarkError {
  if (err instanceof TidemarkError) return err;
  const e = (err ?? {}) as { message?: string; code?: string };
  const detail = `${action} spill segment ${path}: ${e.message ?? String(err)}`;
  if (e.code === 'ENOSPC' || e.code === 'EDQUOT') {
    return new TidemarkError('CHANGELOG_DISK_FULL', { detail, cause: err });
  }
  return new TidemarkError('INTERNAL', { detail, cause: err });
}

export interface SegmentWriterOptions {
  /** The log's `spill/` directory (created when missing). */
  readonly dir: string;
  /** The log's sequence number of the transaction (names the file). */
  readonly seq: bigint;
  /** Bytes buffered before a write; the writer's memory. */
  readonly bufferBytes: number;
  /**
   * Called before every write of `bytes` to the file: throws (CHANGELOG_DISK_FULL) when the log
   * may not grow by them.
   */
  readonly beforeWrite: (bytes: number) => void;
}

/**
 * Appends framed records to a new segment file. `finish` makes the file complete (flushed, and
 * fsynced when asked) and closes it; `discard` closes and deletes it. Either may be called once;
 * `discard` after `finish` still deletes the file (a commit whose LMDB write failed).
 */
export class SegmentWriter {
  readonly name: string;
  readonly path: string;
  /** Records appended so far. */
  records = 0;
  /** Bytes of the file once everything buffered is written. */
  bytes = 0;
  private fd: number | null;
  private readonly buffer: Buffer;
  private used = 0;
  private written = 0;

  constructor(private readonly options: SegmentWriterOptions) {
    this.name = segmentName(options.seq);
    this.path = join(options.dir, this.name);
    this.buffer = Buffer.allocUnsafe(Math.max(4096, options.bufferBytes));
    try {
      mkdirSync(options.dir, { recursive: true });
      // 'w': a stale file of the same transaction (an abort that could not delete it) is replaced.
      this.fd = openSync(this.path, 'w');
    } catch (err) {
      throw wrapSpillError(err, this.path, 'creating');
    }
  }

  /** Appends one record (framed); the bytes are copied, the caller may reuse them. */
  appendRecord(record: Uint8Array): void {
    const header = frameHeaderBytes(record.length);
    const frameBytes = header + record.length;
    if (this.used + frameBytes > this.buffer.length) this.flush();
    if (frameBytes > this.buffer.length) {
      // A record larger than the buffer is written straight from the caller's bytes.
      const head = Buffer.allocUnsafe(header);
      writeFrameHeader(head, 0, record.length);
      this.writeOut(head);
      this.writeOut(record);
    } else {
      const at = writeFrameHeader(this.buffer, this.used, record.length);
      this.buffer.set(record, at);
      this.used = at + record.length;
    }
    this.records++;
    this.bytes += frameBytes;
  }

  /** Appends bytes that are already frames (a pack written before the transaction spilled). */
  appendFrames(frames: Buffer, records: number): void {
    if (this.used + frames.length > this.buffer.length) this.flush();
    if (frames.length > this.buffer.length) this.writeOut(frames);
    else {
      frames.copy(this.buffer, this.used);
      this.used += frames.length;
    }
    this.records += records;
    this.bytes += frames.length;
  }

  /** Writes what is buffered to the file (not yet durable: see `finish`). */
  flush(): void {
    if (this.used === 0) return;
    this.writeOut(this.buffer.subarray(0, this.used));
    this.used = 0;
  }

  /** Completes the file: written, fsynced (file and directory) when `fsync`, closed. */
  finish(fsync: boolean): void {
    this.flush();
    const fd = this.fd;
    if (fd === null) return;
    try {
      if (fsync) {
        fsyncSync(fd);
        syncDir(this.options.dir);
      }
      this.fd = null;
      closeSync(fd);
    } catch (err) {
      throw wrapSpillError(err, this.path, 'finishing');
    }
  }

  /** Closes and deletes the file (the transaction was aborted, or the log closed inside it). */
  discard(): void {
    if (this.fd !== null) {
      try {
        closeSync(this.fd);
      } catch {
        // Closing only releases the descriptor; the file is deleted just below either way.
      }
      this.fd = null;
    }
    removeSpillFile(this.path);
  }

  private writeOut(bytes: Uint8Array): void {
    if (this.fd === null) throw new TidemarkError('INTERNAL', { detail: `${this.path} is closed` });
    this.options.beforeWrite(bytes.length);
    try {
      let done = 0;
      while (done < bytes.length) {
        done += writeSync(this.fd, bytes, done, bytes.length - done, this.written + done);
      }
    } catch (err) {
      throw wrapSpillError(err, this.path, 'writing');
    }
    this.written += bytes.length;
  }
}

function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * A committed segment opened for reading: positional reads into the caller's buffer. The
 * descriptor stays open until `close`, so the file may be deleted (clean) while it is read.
 */
export class SegmentFile {
  private fd: number | null;

  private constructor(
    readonly path: string,
    fd: number,
  ) {
    this.fd = fd;
  }

  /**
   * Opens the segment `name` of `dir` that its reference says holds `bytes` bytes. A missing or
   * shorter file is CHANGELOG_CORRUPT: the log promised it (`what` names the transaction).
   */
  static open(dir: string, name: string, bytes: number, what: string): SegmentFile {
    const path = join(dir, name);
    if (seqOfSegment(name) === null) {
      throw new TidemarkError('CHANGELOG_CORRUPT', { detail: `${what} names a bad spill file "${name}"` });
    }
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') {
        throw new TidemarkError('CHANGELOG_CORRUPT', {
          detail: `spill segment ${path} of ${what} is missing`,
          cause: err,
        });
      }
      throw wrapSpillError(err, path, 'opening');
    }
    const size = fstatSync(fd).size;
    if (size < bytes) {
      closeSync(fd);
      throw new TidemarkError('CHANGELOG_CORRUPT', {
        detail: `spill segment ${path} of ${what} is truncated: ${size} of ${bytes} bytes`,
      });
    }
    return new SegmentFile(path, fd);
  }

  /**
   * Reads exactly `length` bytes at file offset `at` into `into[offset…]`. The file ending
   * first (it was truncated while open) is CHANGELOG_CORRUPT.
   */
  read(into: Buffer, offset: number, length: number, at: number): void {
    if (this.fd === null) throw new TidemarkError('INTERNAL', { detail: `${this.path} is closed` });
    let done = 0;
    try {
      while (done < length) {
        const n = readSync(this.fd, into, offset + done, length - done, at + done);
        if (n === 0) break;
        done += n;
      }
    } catch (err) {
      throw wrapSpillError(err, this.path, 'reading');
    }
    if (done < length) {
      throw new TidemarkError('CHANGELOG_CORRUPT', {
        detail: `spill segment ${this.path} is truncated: it ends at ${at + done}, ${length - done} bytes short`,
      });
    }
  }

  close(): void {
    if (this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    closeSync(fd);
  }
}

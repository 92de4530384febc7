/**
 * A reader's place in the log, at the byte level: copies the next committed records into the
 * reader's buffer, in commit order, from LMDB packs and spill segments alike.
 *
 *   LMDB  d|S|0 pack ─ copy whole ─┐
 *         d|S|1 segment ref ─► spill/S.seg ─ readSync(≤ room left) ─┤─► into[0 … quota) ─► RecordBatch
 *         d|S|2 pack (commit) ─ copy whole ─┘      (a frame cut at the end is read again next fill)
 *
 * Memory: the buffer is the reader's; only a single record (or pack) larger than it comes in a
 * buffer of its own. A segment's descriptor stays open while it is being read (so `clean` may
 * delete the file meanwhile) and is closed at its end or by `close`.
 */
import { TidemarkError } from '../errors/tidemark-error.ts';
import type { ChangeLog } from './change-log.ts';
import { dataKeyAfter } from './log-keys.ts';
import { readFrame, RecordFormatError, segmentOfPack } from './record-codec.ts';
import { SegmentFile } from './spill-segment.ts';

/** Records copied for a reader: record i is `bytes[starts[i], ends[i])`, of transaction `seqs[i]`. */
export interface RecordBatch {
  /** The reader's buffer, or a buffer of one record (or pack) larger than it. */
  readonly bytes: Buffer;
  readonly starts: readonly number[];
  readonly ends: readonly number[];
  readonly seqs: readonly bigint[];
  /** Bytes of `bytes` in use (frames included). */
  readonly usedBytes: number;
}

interface OpenSegment {
  readonly file: SegmentFile;
  readonly seq: bigint;
  /** Bytes of the file the reference promises. */
  readonly bytes: number;
  /** Next unread byte. */
  offset: number;
  /** Records the reference promises that were not read yet. */
  recordsLeft: number;
}

class BatchBuilder {
  bytes: Buffer;
  used = 0;
  readonly starts: number[] = [];
  readonly ends: number[] = [];
  readonly seqs: bigint[] = [];

  constructor(into: Buffer) {
    this.bytes = into;
  }

  get full(): boolean {
    return this.used >= this.bytes.length;
  }

  add(start: number, end: number, seq: bigint): void {
    this.starts.push(start);
    this.ends.push(end);
    this.seqs.push(seq);
  }
}

export class LogCursor {
  /** The next LMDB key to read (exclusive: the last one read). */
  private from: Buffer;
  private exclusive = false;
  private segment: OpenSegment | null = null;

  constructor(
    private readonly log: ChangeLog,
    afterSeq: bigint,
  ) {
    this.from = dataKeyAfter(afterSeq);
  }

  /**
   * Copies into `into` as many whole records as fit, of transactions committed at or before
   * `committed`, continuing where the last fill stopped. No records: everything up to
   * `committed` was read.
   */
  fill(into: Buffer, committed: bigint): RecordBatch {
    const batch = new BatchBuilder(into);
    const to = dataKeyAfter(committed);
    while (!batch.full) {
      if (this.segment) {
        if (!this.readSegment(this.segment, batch)) break;
      } else if (!this.readPacks(batch, to)) break;
    }
    return {
      bytes: batch.bytes,
      starts: batch.starts,
      ends: batch.ends,
      seqs: batch.seqs,
      usedBytes: batch.used,
    };
  }

  /** Releases the open segment, if any. */
  close(): void {
    this.segment?.file.close();
    this.segment = null;
  }

  /**
   * Copies whole packs until the buffer is full, the range ends, or a segment reference is met
   * (then the segment is opened and true returned: the fill goes on from it).
   */
  private readPacks(batch: BatchBuilder, to: Buffer): boolean {
    for (const { key, value } of this.log.values(this.from, this.exclusive, to)) {
      const seq = key.readBigUInt64BE(1);
      const ref = this.guard(seq, () => segmentOfPack(value));
      if (ref) {
        this.segment = {
          file: SegmentFile.open(this.log.spillDir, ref.file, ref.bytes, this.txnName(seq)),
          seq,
          bytes: ref.bytes,
          offset: 0,
          recordsLeft: ref.records,
        };
        this.consumed(key);
        return true;
      }
      if (batch.used + value.length > batch.bytes.length) {
        if (batch.used > 0) return false;
        // A pack larger than the whole buffer comes alone, in its own bytes.
        batch.bytes = value;
        this.framesOfPack(batch, 0, value.length, seq);
        batch.used = value.length;
        this.consumed(key);
        return false;
      }
      value.copy(batch.bytes, batch.used);
      this.framesOfPack(batch, batch.used, batch.used + value.length, seq);
      batch.used += value.length;
      this.consumed(key);
    }
    return false;
  }

  private framesOfPack(batch: BatchBuilder, from: number, end: number, seq: bigint): void {
    // One guard around the loop, not a closure per frame: this runs once per record read.
    this.guard(seq, () => {
      let pos = from;
      while (pos < end) {
        const frame = readFrame(batch.bytes, pos, end);
        if (!frame) this.corrupt(seq, `a pack's last frame runs past its end`);
        batch.add(frame.start, frame.end, seq);
        pos = frame.end;
      }
    });
  }

  /**
   * Reads the segment's next bytes into the room left and takes the whole frames among them (a
   * frame cut at the end stays unread, for the next fill). Returns true when the fill may go on
   * (the segment ended), false when the buffer is done.
   */
  private readSegment(seg: OpenSegment, batch: BatchBuilder): boolean {
    const left = seg.bytes - seg.offset;
    if (left === 0) {
      if (seg.recordsLeft !== 0) {
        this.corrupt(seg.seq, `spill segment ${seg.file.path} ends ${seg.recordsLeft} records early`);
      }
      this.close();
      return true;
    }
    const length = Math.min(batch.bytes.length - batch.used, left);
    seg.file.read(batch.bytes, batch.used, length, seg.offset);
    const end = batch.used + length;
    const pos = this.guard(seg.seq, () => {
      let at = batch.used;
      for (;;) {
        const frame = readFrame(batch.bytes, at, end);
        if (!frame) return at;
        batch.add(frame.start, frame.end, seg.seq);
        seg.recordsLeft--;
        at = frame.end;
      }
    });
    if (pos > batch.used) {
      seg.offset += pos - batch.used;
      batch.used = pos;
      return pos === end; // all read: go on (the next round finds the segment's end)
    }
    if (batch.used > 0) return false; // the next frame does not fit the room left
    if (length === left) this.corrupt(seg.seq, `spill segment ${seg.file.path} ends inside a record`);
    this.readLargeRecord(seg, batch);
    return false;
  }

  /** The segment's next record is larger than the whole buffer: it comes alone, in its own buffer. */
  private readLargeRecord(seg: OpenSegment, batch: BatchBuilder): void {
    const head = Buffer.allocUnsafe(Math.min(5, seg.bytes - seg.offset));
    seg.file.read(head, 0, head.length, seg.offset);
    let len = 0;
    let header = 0;
    let ended = false;
    for (let shift = 0; !ended && header < head.length; shift += 7) {
      const b = head[header++]!;
      len += (b & 0x7f) * 2 ** shift;
      ended = b < 0x80;
    }
    if (!ended || len === 0 || seg.offset + header + len > seg.bytes) {
      this.corrupt(seg.seq, `spill segment ${seg.file.path} has a bad frame at byte ${seg.offset}`);
    }
    const own = Buffer.allocUnsafe(len);
    seg.file.read(own, 0, len, seg.offset + header);
    batch.bytes = own;
    batch.add(0, len, seg.seq);
    batch.used = len;
    seg.offset += header + len;
    seg.recordsLeft--;
  }

  private consumed(key: Buffer): void {
    this.from = key;
    this.exclusive = true;
  }

  private guard<T>(seq: bigint, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (err instanceof RecordFormatError) this.corrupt(seq, err.message, err);
      throw err;
    }
  }

  private txnName(seq: bigint): string {
    return `transaction ${seq} in ${this.log.path}`;
  }

  private corrupt(seq: bigint, what: string, cause?: unknown): never {
    throw new TidemarkError('CHANGELOG_CORRUPT', {
      detail: `${this.txnName(seq)}: ${what}`,
      ...(cause === undefined ? {} : { cause }),
    });
  }
}

/**
 * The writer's buffer of one transaction's records, framed into packs (record-codec.ts): the
 * pack being filled, and the closed packs not yet written to LMDB.
 */
import { frameHeaderBytes, writeFrameHeader } from './record-codec.ts';

/**
 * Most bytes of one pack. LMDB stores a value above ~2 KiB on overflow pages of its own (whole
 * 4 KiB pages plus a 16-byte header), so a pack closes before it would start a fifth page: the
 * waste is under one record. A record larger than this is a pack alone.
 */
export const PACK_BYTES = 4 * 4096 - 16 - 32;

/** A closed pack: framed records. */
export interface Pack {
  readonly bytes: Buffer;
  readonly records: number;
}

export class PackBuffer {
  private closed: Pack[] = [];
  private closedBytes = 0;
  private readonly pack = Buffer.allocUnsafe(PACK_BYTES);
  private used = 0;
  private records = 0;

  /** Bytes buffered: closed packs and the open one. */
  get bytes(): number {
    return this.closedBytes + this.used;
  }

  /** Bytes a record of `length` bytes takes once framed. */
  framedBytes(length: number): number {
    return frameHeaderBytes(length) + length;
  }

  /**
   * Frames `record[0, length)` into the open pack, closing it first when it would outgrow
   * PACK_BYTES.
   */
  add(record: Buffer, length = record.length): void {
    const frameBytes = this.framedBytes(length);
    if (this.used > 0 && this.used + frameBytes > PACK_BYTES) this.close();
    if (frameBytes > PACK_BYTES) {
      const alone = Buffer.allocUnsafe(frameBytes);
      record.copy(alone, writeFrameHeader(alone, 0, length), 0, length);
      this.closed.push({ bytes: alone, records: 1 });
      this.closedBytes += frameBytes;
      return;
    }
    let at = writeFrameHeader(this.pack, this.used, length);
    // A byte loop for a short record: Buffer#copy's native call costs more than it copies.
    if (length > 64) at += record.copy(this.pack, at, 0, length);
    else for (let k = 0; k < length; k++) this.pack[at++] = record[k]!;
    this.used = at;
    this.records++;
  }

  /** Closes the open pack (no-op when empty): the next record starts a new one. */
  close(): void {
    if (this.used === 0) return;
    this.closed.push({ bytes: Buffer.from(this.pack.subarray(0, this.used)), records: this.records });
    this.closedBytes += this.used;
    this.used = 0;
    this.records = 0;
  }

  /** Closes the open pack and hands over every closed one; the buffer is empty after. */
  take(): Pack[] {
    this.close();
    const out = this.closed;
    this.clear();
    return out;
  }

  /** Forgets everything buffered. */
  clear(): void {
    this.closed = [];
    this.closedBytes = 0;
    this.used = 0;
    this.records = 0;
  }
}

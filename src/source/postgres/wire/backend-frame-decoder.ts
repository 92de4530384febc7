import { TidemarkError } from '../../../errors/tidemark-error.ts';

/** One backend protocol message: its type byte and the bytes after the length word. */
export interface BackendFrame {
  /** The message type byte, e.g. 0x64 ('d') for CopyData. */
  readonly type: number;
  /**
   * The message body. A subarray of the socket chunk whenever the frame arrived inside one chunk
   * (no copy), so it stays valid only as long as nobody writes into that chunk (Node never does).
   */
  readonly payload: Buffer;
}

/** PostgreSQL caps a message at 1 GiB (MaxAllocSize); anything larger is a corrupt stream. */
const MAX_FRAME_BYTES = 0x4000_0000;
const HEADER_BYTES = 5;

/**
 * Cuts the backend byte stream (type byte + Int32 length + body) into whole messages, whatever
 * the chunk boundaries. Frames that lie inside a chunk are returned as subarrays of it; only a
 * frame split across chunks is copied, once, into a buffer of its exact size (never re-concatenated
 * per chunk, so a 100 MB row arriving in 64 KiB chunks costs one copy).
 */
export class BackendFrameDecoder {
  private readonly head = Buffer.alloc(HEADER_BYTES);
  private headFill = 0;
  private partialType = 0;
  private partial: Buffer | null = null;
  private partialFill = 0;

  /** Bytes held for an incomplete frame (counts toward the connection's buffered bytes). */
  get pendingBytes(): number {
    return this.headFill + this.partialFill;
  }

  /** Appends every frame completed by `chunk` to `out`, in stream order. */
  push(chunk: Buffer, out: BackendFrame[]): void {
    let pos = 0;
    if (this.headFill > 0 || this.partial !== null) {
      pos = this.continuePartial(chunk, out);
      if (pos < 0) return;
    }
    const end = chunk.length;
    while (end - pos >= HEADER_BYTES) {
      const length = chunk.readInt32BE(pos + 1);
      checkLength(length);
      const frameEnd = pos + 1 + length;
      if (frameEnd > end) break;
      out.push({ type: chunk[pos]!, payload: chunk.subarray(pos + HEADER_BYTES, frameEnd) });
      pos = frameEnd;
    }
    if (pos < end) this.startPartial(chunk, pos);
  }

  private startPartial(chunk: Buffer, pos: number): void {
    const rest = chunk.length - pos;
    if (rest < HEADER_BYTES) {
      chunk.copy(this.head, 0, pos);
      this.headFill = rest;
      return;
    }
    const length = chunk.readInt32BE(pos + 1);
    this.partialType = chunk[pos]!;
    this.partial = Buffer.allocUnsafe(length - 4);
    this.partialFill = chunk.copy(this.partial, 0, pos + HEADER_BYTES);
  }

  /** Feeds the start of `chunk` to the incomplete frame; returns where whole frames resume, or -1. */
  private continuePartial(chunk: Buffer, out: BackendFrame[]): number {
    let pos = 0;
    if (this.partial === null) {
      const take = Math.min(HEADER_BYTES - this.headFill, chunk.length);
      chunk.copy(this.head, this.headFill, 0, take);
      this.headFill += take;
      pos = take;
      if (this.headFill < HEADER_BYTES) return -1;
      const length = this.head.readInt32BE(1);
      checkLength(length);
      this.partialType = this.head[0]!;
      this.partial = Buffer.allocUnsafe(length - 4);
      this.partialFill = 0;
      this.headFill = 0;
    }
    const need = this.partial.length - this.partialFill;
    const copied = chunk.copy(this.partial, this.partialFill, pos, pos + need);
    this.partialFill += copied;
    if (copied < need) return -1;
    out.push({ type: this.partialType, payload: this.partial });
    this.partial = null;
    this.partialFill = 0;
    return pos + copied;
  }
}

function checkLength(length: number): void {
  if (length < 4 || length > MAX_FRAME_BYTES) {
    throw new TidemarkError('SOURCE_PROTOCOL', {
      detail: `backend message length ${length} is out of range`,
    });
  }
}

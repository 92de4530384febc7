import type { Position, PositionCodec } from '../../core/position.ts';
import { TidemarkError } from '../../errors/tidemark-error.ts';

/**
 * A PostgreSQL log sequence number: a 64-bit WAL byte offset, written `XXXXXXXX/XXXXXXXX` in hex.
 * Held as a bigint so arithmetic (lag in bytes) is exact.
 */
export class Lsn implements Position {
  static readonly ZERO = new Lsn(0n);

  private constructor(readonly value: bigint) {}

  static fromBigInt(value: bigint): Lsn {
    if (value < 0n || value > 0xffff_ffff_ffff_ffffn) {
      throw new RangeError(`LSN out of range: ${value}`);
    }
    return value === 0n ? Lsn.ZERO : new Lsn(value);
  }

  /** Parses PostgreSQL's text form, e.g. `16/B374D848`. */
  static parse(text: string): Lsn {
    const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text.trim());
    if (!m) {
      throw new TidemarkError('POSITION_INVALID', {
        detail: `"${text}" is not a PostgreSQL LSN`,
        hint: 'An LSN is two hex numbers separated by a slash, e.g. 16/B374D848.',
      });
    }
    return Lsn.fromBigInt((BigInt('0x' + m[1]) << 32n) | BigInt('0x' + m[2]));
  }

  compare(other: Position): number {
    const o = (other as Lsn).value;
    return this.value < o ? -1 : this.value > o ? 1 : 0;
  }

  equals(other: Position): boolean {
    return this.compare(other) === 0;
  }

  /** Bytes from `other` to this position (negative when `other` is ahead). */
  minus(other: Lsn): bigint {
    return this.value - other.value;
  }

  toString(): string {
    const hi = (this.value >> 32n).toString(16).toUpperCase();
    const lo = (this.value & 0xffff_ffffn).toString(16).toUpperCase();
    return `${hi}/${lo}`;
  }

  sortKey(): string {
    return this.value.toString(16).padStart(16, '0');
  }
}

/** The PostgreSQL connector's positions: LSNs, 8 bytes big-endian in the log. */
export const LSN_CODEC: PositionCodec<Lsn> = {
  kind: 'postgres',
  parse: (text) => Lsn.parse(text),
  encode(position) {
    const b = Buffer.allocUnsafe(8);
    b.writeBigUInt64BE(position.value);
    return b;
  },
  decode(bytes) {
    if (bytes.length !== 8) {
      throw new TidemarkError('POSITION_INVALID', {
        detail: `${bytes.length} bytes are not a PostgreSQL LSN (8 bytes)`,
      });
    }
    return Lsn.fromBigInt(bytes.readBigUInt64BE(0));
  },
  distanceBytes: (from, to) => Number(to.minus(from)),
};

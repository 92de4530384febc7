/**
 * A MariaDB source position: the GTID list after a commit (`0-1-42,1-1-7`).
 *
 * **Order.** Positions of one replication history are ordered by their **weight**, the sum of the
 * sequence numbers of their domains: every transaction raises its domain's sequence (MariaDB
 * assigns `seq_no` as the domain's maximum + 1; `gtid_strict_mode` refuses anything else), so the
 * weight grows strictly along a binlog and along any replica's history. Ties (only between lists
 * of different histories, which one binlog never produces) are broken by the domains' sequences
 * in domain order, then by server ids, so the order is total and agrees with `sortKey`.
 *
 * **Restart.** An XA transaction is logged when it is prepared and applied when it commits, maybe
 * many transactions later. A position inside that window carries `restart`, the GTID list to
 * reconnect from (just before the oldest open XA PREPARE), so a changefeed resumed there reads the
 * prepared rows again; transactions already delivered are skipped by `gtids`.
 *
 * **Binlog coordinate.** `file`/`offset` (the end of the commit in the server's binlog) measure
 * lag in bytes; they are not part of the position's identity or order.
 *
 * Text: `<gtids>` or `<gtids>;restart=<gtids>`; the empty list prints as `0-0-0`.
 */
import type { Position, PositionCodec } from '../../core/position.ts';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import { GtidList } from './gtid.ts';

export interface BinlogCoordinate {
  readonly file: string;
  readonly offset: number;
}

export class BinlogPosition implements Position {
  private key: string | undefined;

  constructor(
    readonly gtids: GtidList,
    readonly restart: GtidList | null = null,
    readonly coordinate: BinlogCoordinate | null = null,
  ) {}

  /** The GTID list to connect the binlog dump with, to deliver what follows this position. */
  connectState(): GtidList {
    return this.restart ?? this.gtids;
  }

  compare(other: Position): number {
    const a = this.sortKey();
    const b = (other as BinlogPosition).sortKey();
    return a < b ? -1 : a > b ? 1 : 0;
  }

  equals(other: Position): boolean {
    return other instanceof BinlogPosition && this.toString() === other.toString();
  }

  toString(): string {
    const g = this.gtids.isEmpty() ? '0-0-0' : this.gtids.toString();
    return this.restart === null
      ? g
      : `${g};restart=${this.restart.isEmpty() ? '0-0-0' : this.restart.toString()}`;
  }

  /**
   * `weight(20 digits)` then per domain `domain(10)seq(20)` and the server ids: fixed width for
   * one domain (the common case), and plain string order equals `compare` in every case.
   */
  sortKey(): string {
    if (this.key === undefined) {
      const parts = [this.gtids.weight().toString().padStart(20, '0')];
      for (const e of this.gtids.entries)
        parts.push(`${pad(e.domain, 10)}${e.seq.toString().padStart(20, '0')}`);
      parts.push('~');
      for (const e of this.gtids.entries) parts.push(pad(e.server, 10));
      this.key = parts.join('');
    }
    return this.key;
  }

  withCoordinate(coordinate: BinlogCoordinate | null): BinlogPosition {
    return new BinlogPosition(this.gtids, this.restart, coordinate);
  }
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/**
 * Parses and encodes positions; knows the source's binlog file sizes (fed by the connector from
 * `SHOW BINARY LOGS`) to tell lag in bytes across files.
 */
export class BinlogPositionCodec implements PositionCodec<BinlogPosition> {
  readonly kind = 'mysql';
  private sizes = new Map<string, number>();

  parse(text: string): BinlogPosition {
    const m = /^([^;]*)(?:;restart=(.*))?$/.exec(text.trim());
    if (!m) throw new TidemarkError('POSITION_INVALID', { detail: `"${text}" is not a GTID list` });
    const list = (s: string) => (s.trim() === '0-0-0' ? GtidList.EMPTY : GtidList.parse(s));
    return new BinlogPosition(list(m[1]!), m[2] === undefined ? null : list(m[2]));
  }

  encode(p: BinlogPosition): Buffer {
    const file = Buffer.from(p.coordinate?.file ?? '', 'utf8');
    const lists = [p.gtids, ...(p.restart === null ? [] : [p.restart])];
    const size = 1 + lists.reduce((n, l) => n + 2 + l.entries.length * 16, 0) + 2 + file.length + 8;
    const b = Buffer.alloc(size);
    let o = b.writeUInt8(p.restart === null ? 1 : 2, 0);
    for (const l of lists) {
      o = b.writeUInt16BE(l.entries.length, o);
      for (const e of l.entries) {
        o = b.writeUInt32BE(e.domain, o);
        o = b.writeUInt32BE(e.server, o);
        o = b.writeBigUInt64BE(e.seq, o);
      }
    }
    o = b.writeUInt16BE(file.length, o);
    o += file.copy(b, o);
    b.writeBigUInt64BE(BigInt(p.coordinate?.offset ?? 0), o);
    return b;
  }

  decode(bytes: Buffer): BinlogPosition {
    try {
      let o = 0;
      const lists = bytes.readUInt8(o++);
      if (lists !== 1 && lists !== 2) throw new RangeError(`list count ${lists}`);
      const read: GtidList[] = [];
      for (let l = 0; l < lists; l++) {
        const n = bytes.readUInt16BE(o);
        o += 2;
        const gtids = [];
        for (let i = 0; i < n; i++) {
          gtids.push({
            domain: bytes.readUInt32BE(o),
            server: bytes.readUInt32BE(o + 4),
            seq: bytes.readBigUInt64BE(o + 8),
          });
          o += 16;
        }
        read.push(GtidList.of(gtids));
      }
      const fileLen = bytes.readUInt16BE(o);
      o += 2;
      if (o + fileLen + 8 !== bytes.length) throw new RangeError('length');
      const file = bytes.toString('utf8', o, o + fileLen);
      const offset = Number(bytes.readBigUInt64BE(o + fileLen));
      return new BinlogPosition(read[0]!, read[1] ?? null, file === '' ? null : { file, offset });
    } catch (err) {
      throw new TidemarkError('POSITION_INVALID', { detail: `bytes ${bytes.toString('hex')}`, cause: err });
    }
  }

  /**
   * Binlog bytes from `from` to `to`; null when a coordinate is unknown (a position read back from
   * its text, e.g. a sink's checkpoint after a restart) — unless `from` is not before `to`: then
   * nothing is left to read, 0.
   */
  distanceBytes(from: BinlogPosition, to: BinlogPosition): number | null {
    const a = from.coordinate;
    const b = to.coordinate;
    if (a === null || b === null) return from.compare(to) >= 0 ? 0 : null;
    if (a.file === b.file) return Math.max(0, b.offset - a.offset);
    if (compareFiles(a.file, b.file) > 0) return 0;
    const sizeA = this.sizes.get(a.file);
    if (sizeA === undefined) return null;
    let total = Math.max(0, sizeA - a.offset) + b.offset;
    for (const [file, size] of this.sizes) {
      if (compareFiles(file, a.file) > 0 && compareFiles(file, b.file) < 0) total += size;
    }
    return total;
  }

  /** Records the source's binlog files and sizes (`SHOW BINARY LOGS`). */
  noteBinlogs(files: readonly { file: string; size: number }[]): void {
    this.sizes = new Map(files.map((f) => [f.file, f.size]));
  }
}

/** Orders binlog file names by their numeric suffix (`mariadb-bin.000010` after `.000009`). */
export function compareFiles(a: string, b: string): number {
  const na = Number(/\.(\d+)$/.exec(a)?.[1] ?? NaN);
  const nb = Number(/\.(\d+)$/.exec(b)?.[1] ?? NaN);
  if (Number.isFinite(na) && Number.isFinite(nb) && na !== nb) return na - nb;
  return a < b ? -1 : a > b ? 1 : 0;
}

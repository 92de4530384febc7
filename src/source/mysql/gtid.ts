/**
 * GTIDs, the binlog's transaction identities.
 *
 * - MariaDB: `domain-server-sequence` per transaction; a replication state is a **GTID list**, one
 *   GTID per domain (`0-1-42,1-7-9`), the last transaction applied in each domain.
 * - MySQL: `uuid:gno` per transaction; a state is a **GTID set** of intervals per server UUID
 *   (`3e11fa47-…:1-5:7-9`). Implemented and unit-tested; no MySQL server is available here.
 */
import { TidemarkError } from '../../errors/tidemark-error.ts';

export interface MariaGtid {
  readonly domain: number;
  readonly server: number;
  readonly seq: bigint;
}

/** An immutable MariaDB GTID list, one entry per domain, sorted by domain. */
export class GtidList {
  static readonly EMPTY = new GtidList([]);
  readonly entries: readonly MariaGtid[];

  private constructor(entries: readonly MariaGtid[]) {
    this.entries = entries;
  }

  static of(gtids: Iterable<MariaGtid>): GtidList {
    const byDomain = new Map<number, MariaGtid>();
    for (const g of gtids) {
      if (g.seq === 0n) continue;
      const had = byDomain.get(g.domain);
      if (had === undefined || had.seq < g.seq) byDomain.set(g.domain, g);
    }
    return new GtidList([...byDomain.values()].sort((a, b) => a.domain - b.domain));
  }

  /** `0-1-42,1-1-7` (MariaDB's own format; whitespace tolerated). '' is the empty list. */
  static parse(text: string): GtidList {
    const t = text.trim();
    if (t === '') return GtidList.EMPTY;
    const gtids: MariaGtid[] = [];
    for (const part of t.split(',')) {
      const m = /^\s*(\d+)-(\d+)-(\d+)\s*$/.exec(part);
      if (!m) throw invalid(text, `"${part}" is not domain-server-sequence`);
      const domain = Number(m[1]);
      const server = Number(m[2]);
      if (domain > 0xffffffff || server > 0xffffffff) throw invalid(text, `"${part}" is out of range`);
      const seq = BigInt(m[3]!);
      if (seq > 0xffffffffffffffffn) throw invalid(text, `"${part}" is out of range`);
      if (gtids.some((g) => g.domain === domain)) throw invalid(text, `domain ${domain} appears twice`);
      gtids.push({ domain, server, seq });
    }
    return GtidList.of(gtids);
  }

  /** This list with `g` as its domain's last transaction. */
  with(g: MariaGtid): GtidList {
    const out = this.entries.filter((e) => e.domain !== g.domain);
    out.push(g);
    return new GtidList(out.sort((a, b) => a.domain - b.domain));
  }

  seqOf(domain: number): bigint {
    for (const e of this.entries) if (e.domain === domain) return e.seq;
    return 0n;
  }

  /** Whether transaction `g` is at or before this state (already applied). */
  includes(g: MariaGtid): boolean {
    return g.seq <= this.seqOf(g.domain);
  }

  /** Every domain at or behind `other`. */
  atOrBefore(other: GtidList): boolean {
    return this.entries.every((e) => e.seq <= other.seqOf(e.domain));
  }

  /** Sum of the sequence numbers: grows by at least one with every transaction of one history. */
  weight(): bigint {
    let s = 0n;
    for (const e of this.entries) s += e.seq;
    return s;
  }

  isEmpty(): boolean {
    return this.entries.length === 0;
  }

  toString(): string {
    return this.entries.map((e) => `${e.domain}-${e.server}-${e.seq}`).join(',');
  }
}

/** A MySQL GTID set: per server UUID, sorted disjoint closed intervals of transaction numbers. */
export class GtidSet {
  readonly intervals: ReadonlyMap<string, readonly (readonly [bigint, bigint])[]>;

  private constructor(intervals: Map<string, [bigint, bigint][]>) {
    this.intervals = intervals;
  }

  static readonly EMPTY = new GtidSet(new Map());

  /** `uuid:1-5:7,uuid2:1-3` (MySQL's `@@gtid_executed`; newlines tolerated). */
  static parse(text: string): GtidSet {
    const map = new Map<string, [bigint, bigint][]>();
    const t = text.replace(/\s+/g, '');
    if (t === '') return GtidSet.EMPTY;
    for (const part of t.split(',')) {
      const [uuid, ...ranges] = part.split(':');
      if (
        uuid === undefined ||
        !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(uuid) ||
        ranges.length === 0
      ) {
        throw invalid(text, `"${part}" is not uuid:interval[:interval…]`);
      }
      const list = map.get(uuid.toLowerCase()) ?? [];
      for (const r of ranges) {
        const m = /^(\d+)(?:-(\d+))?$/.exec(r);
        if (!m) throw invalid(text, `"${r}" is not an interval`);
        const lo = BigInt(m[1]!);
        const hi = BigInt(m[2] ?? m[1]!);
        if (lo < 1n || hi < lo) throw invalid(text, `interval "${r}" is empty or starts below 1`);
        list.push([lo, hi]);
      }
      map.set(uuid.toLowerCase(), list);
    }
    for (const [k, v] of map) map.set(k, normalise(v));
    return new GtidSet(map);
  }

  /** This set with transaction `uuid:gno` added. */
  add(uuid: string, gno: bigint): GtidSet {
    const map = new Map<string, [bigint, bigint][]>();
    for (const [k, v] of this.intervals)
      map.set(
        k,
        v.map(([a, b]) => [a, b]),
      );
    const key = uuid.toLowerCase();
    map.set(key, normalise([...(map.get(key) ?? []), [gno, gno]]));
    return new GtidSet(map);
  }

  contains(uuid: string, gno: bigint): boolean {
    return (this.intervals.get(uuid.toLowerCase()) ?? []).some(([a, b]) => a <= gno && gno <= b);
  }

  /** Number of transactions in the set: grows by one with every transaction of one history. */
  count(): bigint {
    let n = 0n;
    for (const list of this.intervals.values()) for (const [a, b] of list) n += b - a + 1n;
    return n;
  }

  toString(): string {
    return [...this.intervals.keys()]
      .sort()
      .map(
        (k) =>
          `${k}:${this.intervals
            .get(k)!
            .map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`))
            .join(':')}`,
      )
      .join(',');
  }
}

function normalise(list: [bigint, bigint][]): [bigint, bigint][] {
  const sorted = [...list].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  const out: [bigint, bigint][] = [];
  for (const [a, b] of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && a <= last[1] + 1n) last[1] = last[1] > b ? last[1] : b;
    else out.push([a, b]);
  }
  return out;
}

function invalid(text: string, why: string): TidemarkError {
  return new TidemarkError('POSITION_INVALID', { detail: `"${text}": ${why}` });
}

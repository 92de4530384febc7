/**
 * The LMDB store's level 0: committed epochs kept in memory and in a sequential log instead of
 * being written into the B-tree one random page per key at every commit (the views' largest cost,
 * docs/performance.md). Two layers over the B-tree, newest first:
 *
 *   last    the last committed epoch's writes (dropping them undoes that epoch)
 *   older   the epochs before it that are not merged yet, folded into one map (a key written in
 *           several epochs is held, and later merged, once)
 *
 * Each epoch's writes are also one record (chunked past RECORD_CHARS) of the log, so a reopened
 * store replays them. Values are undefined for deletes (tombstones shadowing the B-tree).
 *
 * Record text: a JSON array of lengths [ns, key, value (−1: delete), …] (numbers only), a newline,
 * then the strings concatenated: no quoting of the values themselves.
 */
import { NsTable } from './ns-table.ts';

/** A committed write: namespace, key in it, value (undefined: delete). */
export type LayerWrite = readonly [ns: string, key: string, value: string | undefined];

/** Characters of one log record at most (chunks of an epoch), far under V8's string limit. */
const RECORD_CHARS = 4 * 1024 * 1024;

/** Bytes an entry costs beyond its strings (map entry, the table's node). */
const ENTRY_OVERHEAD_BYTES = 96;

/** What `Layer.lookup` returns for a key the layer does not hold. */
export const NOT_HELD: unique symbol = Symbol('not held');

export class Layer {
  /** Approximate bytes held (strings as UTF-16, plus per-entry overhead). */
  bytes = 0;
  /** Entries held. */
  size = 0;

  private constructor(private readonly tables: Map<string, NsTable<string | undefined>>) {}

  static empty(): Layer {
    return new Layer(new Map());
  }

  /**
   * A layer of the tables given, kept as they are (no copy): an epoch's overlay at its commit.
   * `check` sees every key once.
   */
  static adopt(
    tables: ReadonlyMap<string, NsTable<string | undefined>>,
    check: (ns: string, key: string) => void,
  ): Layer {
    const layer = new Layer(new Map(tables));
    let bytes = 0;
    for (const [ns, table] of tables) {
      layer.size += table.size;
      table.forEach((key, value) => {
        check(ns, key);
        bytes += 2 * (ns.length + key.length + (value?.length ?? 0)) + ENTRY_OVERHEAD_BYTES;
      });
    }
    layer.bytes = bytes;
    return layer;
  }

  set(ns: string, key: string, value: string | undefined): void {
    let table = this.tables.get(ns);
    if (table === undefined) this.tables.set(ns, (table = new NsTable()));
    const e = table.entry(key);
    if (e === undefined) {
      table.add(key, value);
      this.size++;
      this.bytes += 2 * (ns.length + key.length + (value?.length ?? 0)) + ENTRY_OVERHEAD_BYTES;
    } else {
      this.bytes += 2 * ((value?.length ?? 0) - (e.value?.length ?? 0));
      e.value = value;
    }
  }

  /** The value held (undefined: deleted here), or NOT_HELD. */
  lookup(ns: string, key: string): string | undefined | typeof NOT_HELD {
    const e = this.tables.get(ns)?.entry(key);
    return e === undefined ? NOT_HELD : e.value;
  }

  /** The entries of `ns` from `from` (see SortedMap.entries), or null when it holds none. */
  entries(ns: string, from: string, reverse: boolean): Iterator<[string, string | undefined]> | null {
    const table = this.tables.get(ns);
    if (table === undefined || table.size === 0) return null;
    return table.entries(from, { reverse })[Symbol.iterator]();
  }

  /** Takes in a newer layer's writes (they win), and its entries: `newer` is not used afterwards. */
  absorb(newer: Layer): void {
    for (const [ns, from] of newer.tables) {
      let table = this.tables.get(ns);
      if (table === undefined) this.tables.set(ns, (table = new NsTable()));
      const into = table;
      let size = 0;
      let bytes = 0;
      from.forEachEntry((key, e) => {
        const value = e.value;
        const held = into.entry(key);
        if (held === undefined) {
          into.addEntry(key, e);
          size++;
          bytes += 2 * (ns.length + key.length + (value?.length ?? 0)) + ENTRY_OVERHEAD_BYTES;
        } else {
          bytes += 2 * ((value?.length ?? 0) - (held.value?.length ?? 0));
          held.value = value;
        }
      });
      this.size += size;
      this.bytes += bytes;
    }
  }

  /** Every write as a full key `ns|key`, sorted (the order of the B-tree's keys). */
  sortedWrites(): [fullKey: string, value: string | undefined][] {
    const out: [string, string | undefined][] = [];
    for (const [ns, table] of this.tables)
      for (const [key, value] of table.all()) out.push([`${ns}|${key}`, value]);
    return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }

  /** Calls `visit` with every write, in no particular order (the same order on every call). */
  forEachWrite(visit: WriteVisitor): void {
    for (const [ns, table] of this.tables) table.forEach((key, value) => visit(ns, key, value));
  }

  /** Every write, in no particular order. */
  *writes(): Generator<LayerWrite> {
    for (const [ns, table] of this.tables) for (const [key, value] of table.all()) yield [ns, key, value];
  }
}

/** Visits every write of an epoch (see `Layer.forEachWrite`). */
export type WriteVisitor = (ns: string, key: string, value: string | undefined) => void;

/**
 * An epoch's writes as log records (one, or several for a large epoch), each the UTF-8 of its
 * record text built in one buffer: no rope of the parts to flatten, and no second copy when LMDB
 * turns a string into bytes (together 8% of a GROUP BY's upkeep, docs/performance.md). The bytes
 * are those of `Buffer.from(text)`, so records read back as the same text.
 */
export function encodeRecords(forEachWrite: (visit: WriteVisitor) => void): Buffer[] {
  // Pass 1: the lengths, cut into chunks of RECORD_CHARS characters.
  const chunks: { lengths: number[]; chars: number }[] = [];
  let chunk = { lengths: [] as number[], chars: 0 };
  forEachWrite((ns, key, value) => {
    if (chunk.chars >= RECORD_CHARS) {
      chunks.push(chunk);
      chunk = { lengths: [], chars: 0 };
    }
    chunk.lengths.push(ns.length, key.length, value === undefined ? -1 : value.length);
    chunk.chars += ns.length + key.length + (value?.length ?? 0);
  });
  chunks.push(chunk);
  // Pass 2: the same writes in the same order, into each chunk's buffer (3 bytes per UTF-16 unit
  // at most).
  const records: Buffer[] = [];
  let c = 0;
  let buf = Buffer.alloc(0);
  let at = 0;
  let left = 0;
  const start = () => {
    const { lengths, chars } = chunks[c] as { lengths: number[]; chars: number };
    const head = `${JSON.stringify(lengths)}\n`;
    buf = Buffer.allocUnsafe(head.length + 3 * chars);
    at = buf.write(head, 0, 'latin1');
    left = lengths.length / 3;
  };
  start();
  forEachWrite((ns, key, value) => {
    if (left === 0) {
      records.push(buf.subarray(0, at));
      c++;
      start();
    }
    at = writeUtf8(buf, at, ns);
    at = writeUtf8(buf, at, key);
    if (value !== undefined) at = writeUtf8(buf, at, value);
    left--;
  });
  records.push(buf.subarray(0, at));
  return records;
}

/** Writes `s` as UTF-8 at `at` (a lone surrogate as U+FFFD, as Buffer.from does); the end. */
export function writeUtf8(buf: Buffer, at: number, s: string): number {
  const n = s.length;
  // Past a few hundred characters the native encoder is faster than the call costs.
  if (n > 256) return at + buf.write(s, at, 'utf8');
  for (let i = 0; i < n; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      buf[at++] = c;
      continue;
    }
    if (c < 0x800) {
      buf[at++] = 0xc0 | (c >> 6);
      buf[at++] = 0x80 | (c & 0x3f);
      continue;
    }
    if (c >= 0xd800 && c <= 0xdfff) {
      const d = i + 1 < n ? s.charCodeAt(i + 1) : 0;
      if (c < 0xdc00 && d >= 0xdc00 && d <= 0xdfff) {
        const cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        buf[at++] = 0xf0 | (cp >> 18);
        buf[at++] = 0x80 | ((cp >> 12) & 0x3f);
        buf[at++] = 0x80 | ((cp >> 6) & 0x3f);
        buf[at++] = 0x80 | (cp & 0x3f);
        i++;
        continue;
      }
      c = 0xfffd;
    }
    buf[at++] = 0xe0 | (c >> 12);
    buf[at++] = 0x80 | ((c >> 6) & 0x3f);
    buf[at++] = 0x80 | (c & 0x3f);
  }
  return at;
}

/** The writes of one log record text. */
export function* decodeRecord(text: string): Generator<LayerWrite> {
  const newline = text.indexOf('\n');
  const lengths = JSON.parse(text.slice(0, newline)) as number[];
  let at = newline + 1;
  const take = (n: number) => text.slice(at, (at += n));
  for (let i = 0; i < lengths.length; i += 3) {
    const ns = take(lengths[i]!);
    const key = take(lengths[i + 1]!);
    const v = lengths[i + 2]!;
    yield [ns, key, v < 0 ? undefined : take(v)];
  }
}

/**
 * The entries of one namespace from `from` onwards (ascending, or descending from the last key
 * ≤ `from`), layers newest first over the B-tree's: a layer's entry wins over older ones with the
 * same key, and deletes hide them.
 */
export function* mergeLayers(
  layers: readonly (Iterator<[string, string | undefined]> | null)[],
  base: Iterator<[string, string]>,
  reverse: boolean,
): Generator<[string, string]> {
  const sources: Iterator<[string, string | undefined]>[] = [];
  for (const it of [...layers, base]) if (it !== null) sources.push(it);
  try {
    yield* mergeSources(sources, reverse);
  } finally {
    // Close the B-tree's cursor when the scan stopped early.
    for (const it of sources) it.return?.();
  }
}

function* mergeSources(
  sources: Iterator<[string, string | undefined]>[],
  reverse: boolean,
): Generator<[string, string]> {
  const heads = sources.map((it) => {
    const r = it.next();
    return r.done === true ? null : r.value;
  });
  for (;;) {
    // The smallest key (largest, reversed) among the heads; the newest source holding it wins.
    let best = -1;
    for (let i = 0; i < heads.length; i++) {
      const h = heads[i];
      if (h === null || h === undefined) continue;
      if (best < 0) best = i;
      else {
        const b = (heads[best] as [string, string | undefined])[0];
        if (reverse ? h[0] > b : h[0] < b) best = i;
      }
    }
    if (best < 0) return;
    const [key, value] = heads[best] as [string, string | undefined];
    for (let i = best; i < heads.length; i++) {
      const h = heads[i];
      if (h !== null && h !== undefined && h[0] === key) {
        const r = (sources[i] as Iterator<[string, string | undefined]>).next();
        heads[i] = r.done === true ? null : r.value;
      }
    }
    if (value !== undefined) yield [key, value];
  }
}

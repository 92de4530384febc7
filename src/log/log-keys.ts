/**
 * Key bytes of the change log (layout drawn in change-log.ts). LMDB compares keys as bytes, so
 * big-endian integers make key order equal the log's own sequence order (= commit order).
 */

export const DATA_PREFIX = 0x64; // 'd'
export const COMMIT_PREFIX = 0x63; // 'c'
export const SCHEMA_PREFIX = 0x73; // 's'
export const META_PREFIX = 0x6d; // 'm'
export const TABLE_PREFIX = 0x74; // 't'

/** `d | seq u64 BE | pack u32 BE`: pack `pack` of the transaction with sequence number `seq`. */
export function dataKey(seq: bigint, pack: number): Buffer {
  const k = Buffer.allocUnsafe(13);
  k[0] = DATA_PREFIX;
  k.writeBigUInt64BE(seq, 1);
  k.writeUInt32BE(pack, 9);
  return k;
}

/** The first data key after every pack of transactions up to `seq`. */
export function dataKeyAfter(seq: bigint): Buffer {
  return dataKey(seq + 1n, 0);
}

export function seqOfDataKey(key: Buffer): bigint {
  return key.readBigUInt64BE(1);
}

/** One past the last possible data key. */
export const DATA_END = Buffer.from([DATA_PREFIX + 1]);
export const DATA_START = Buffer.from([DATA_PREFIX]);

/** `c | seq u64 BE` → the transaction's source position (codec bytes): the commit index. */
export function commitKey(seq: bigint): Buffer {
  const k = Buffer.allocUnsafe(9);
  k[0] = COMMIT_PREFIX;
  k.writeBigUInt64BE(seq, 1);
  return k;
}

export const COMMIT_START = Buffer.from([COMMIT_PREFIX]);

export function schemaKey(id: number): Buffer {
  const k = Buffer.allocUnsafe(5);
  k[0] = SCHEMA_PREFIX;
  k.writeUInt32BE(id, 1);
  return k;
}

export const SCHEMA_START = Buffer.from([SCHEMA_PREFIX]);
export const SCHEMA_END = Buffer.from([SCHEMA_PREFIX + 1]);

/** `t | table id u32 BE` → the schema id of the table's latest shape (u32 BE). */
export function tableKey(tableId: number): Buffer {
  const k = Buffer.allocUnsafe(5);
  k[0] = TABLE_PREFIX;
  k.writeUInt32BE(tableId >>> 0, 1);
  return k;
}

export const TABLE_START = Buffer.from([TABLE_PREFIX]);
export const TABLE_END = Buffer.from([TABLE_PREFIX + 1]);

export type MetaName = 'format' | 'committed' | 'coveredFrom';

export function metaKey(name: MetaName): Buffer {
  return Buffer.concat([Buffer.from([META_PREFIX]), Buffer.from(name, 'utf8')]);
}

/** A meta value naming a transaction: `seq u64 BE | position bytes`. */
export function encodeMark(seq: bigint, position: Buffer): Buffer {
  const b = Buffer.allocUnsafe(8 + position.length);
  b.writeBigUInt64BE(seq, 0);
  position.copy(b, 8);
  return b;
}

export function decodeMark(b: Buffer): { seq: bigint; position: Buffer } | null {
  if (b.length < 8) return null;
  return { seq: b.readBigUInt64BE(0), position: Buffer.from(b.subarray(8)) };
}

/**
 * Key bytes of the change log (layout drawn in change-log.ts). LMDB compares keys as bytes, so
 * big-endian integers make key order equal commit order.
 */
import { Lsn } from '../source/postgres/lsn.ts';

export const DATA_PREFIX = 0x64; // 'd'
export const SCHEMA_PREFIX = 0x73; // 's'
export const META_PREFIX = 0x6d; // 'm'
export const READER_PREFIX = 0x72; // 'r'

/** `d | position u64 BE | seq u32 BE`: record `seq` of the transaction committing at `position`. */
export function dataKey(position: bigint, seq: number): Buffer {
  const k = Buffer.allocUnsafe(13);
  k[0] = DATA_PREFIX;
  k.writeBigUInt64BE(position, 1);
  k.writeUInt32BE(seq, 9);
  return k;
}

/** The first key after every record of transactions at or before `position`. */
export function dataKeyAfter(position: Lsn): Buffer {
  return dataKey(position.value + 1n, 0);
}

export function positionOfKey(key: Buffer): Lsn {
  return Lsn.fromBigInt(key.readBigUInt64BE(1));
}

export function seqOfKey(key: Buffer): number {
  return key.readUInt32BE(9);
}

export function isDataKey(key: Buffer): boolean {
  return key.length === 13 && key[0] === DATA_PREFIX;
}

/** One past the last possible data key. */
export const DATA_END = Buffer.from([DATA_PREFIX + 1]);
export const DATA_START = Buffer.from([DATA_PREFIX]);

export function schemaKey(id: number): Buffer {
  const k = Buffer.allocUnsafe(5);
  k[0] = SCHEMA_PREFIX;
  k.writeUInt32BE(id, 1);
  return k;
}

export const SCHEMA_START = Buffer.from([SCHEMA_PREFIX]);
export const SCHEMA_END = Buffer.from([SCHEMA_PREFIX + 1]);

export function metaKey(name: 'format' | 'committed' | 'coveredFrom'): Buffer {
  return Buffer.concat([Buffer.from([META_PREFIX]), Buffer.from(name, 'utf8')]);
}

export function readerKey(id: string): Buffer {
  return Buffer.concat([Buffer.from([READER_PREFIX]), Buffer.from(id, 'utf8')]);
}

export const READER_START = Buffer.from([READER_PREFIX]);
export const READER_END = Buffer.from([READER_PREFIX + 1]);

export function encodeLsn(lsn: Lsn): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeBigUInt64BE(lsn.value);
  return b;
}

export function decodeLsn(b: Buffer): Lsn {
  return Lsn.fromBigInt(b.readBigUInt64BE(0));
}

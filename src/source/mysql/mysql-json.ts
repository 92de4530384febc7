/**
 * MySQL 8's binary JSON (`sql-common/json_binary.cc`) → the text MySQL itself prints for the
 * document (`{"a": 1, "b": [true, null]}`: `", "` and `": "` separators, keys in stored order).
 * MariaDB stores JSON as LONGTEXT and never sends this format.
 *
 * UNTESTED AGAINST A SERVER: MySQL 8 cannot be installed here (Debian ships MariaDB). The unit
 * tests use documents encoded by hand from the format's specification. Opaque values (DECIMAL,
 * DATE, TIME, DATETIME inside a document) are refused rather than guessed.
 */
import { formatFloat8 } from '../../decode/pg-values.ts';
import { TidemarkError } from '../../errors/tidemark-error.ts';

const SMALL_OBJECT = 0x00;
const LARGE_OBJECT = 0x01;
const SMALL_ARRAY = 0x02;
const LARGE_ARRAY = 0x03;
const LITERAL = 0x04;
const INT16 = 0x05;
const UINT16 = 0x06;
const INT32 = 0x07;
const UINT32 = 0x08;
const INT64 = 0x09;
const UINT64 = 0x0a;
const DOUBLE = 0x0b;
const STRING = 0x0c;

export function decodeMysqlJson(doc: Buffer, where: string): string {
  if (doc.length === 0) return 'null';
  const fail = (what: string) =>
    new TidemarkError('SOURCE_PROTOCOL', { detail: `${where}: binary JSON ${what}` });
  const need = (pos: number, n: number) => {
    if (pos < 0 || pos + n > doc.length) throw fail(`reads past its end at ${pos}`);
  };
  const value = (type: number, pos: number): string => {
    switch (type) {
      case SMALL_OBJECT:
      case LARGE_OBJECT:
        return container(pos, type === LARGE_OBJECT, true);
      case SMALL_ARRAY:
      case LARGE_ARRAY:
        return container(pos, type === LARGE_ARRAY, false);
      case LITERAL:
        need(pos, 1);
        return literal(doc[pos]!);
      case INT16:
        need(pos, 2);
        return String(doc.readInt16LE(pos));
      case UINT16:
        need(pos, 2);
        return String(doc.readUInt16LE(pos));
      case INT32:
        need(pos, 4);
        return String(doc.readInt32LE(pos));
      case UINT32:
        need(pos, 4);
        return String(doc.readUInt32LE(pos));
      case INT64:
        need(pos, 8);
        return doc.readBigInt64LE(pos).toString();
      case UINT64:
        need(pos, 8);
        return doc.readBigUInt64LE(pos).toString();
      case DOUBLE: {
        need(pos, 8);
        const s = formatFloat8(doc.readDoubleLE(pos));
        return /[.e]/.test(s) ? s : `${s}.0`;
      }
      case STRING: {
        const [len, at] = varLength(pos);
        need(at, len);
        return JSON.stringify(doc.toString('utf8', at, at + len));
      }
      default:
        throw new TidemarkError('SOURCE_UNSUPPORTED_TYPE', {
          detail: `${where}: binary JSON value type 0x${type.toString(16)} (an opaque DECIMAL/temporal value)`,
        });
    }
  };
  const literal = (b: number): string => {
    if (b === 0) return 'null';
    if (b === 1) return 'true';
    if (b === 2) return 'false';
    throw fail(`has literal ${b}`);
  };
  const varLength = (pos: number): [number, number] => {
    let len = 0;
    for (let i = 0; i < 5; i++) {
      need(pos + i, 1);
      const b = doc[pos + i]!;
      len |= (b & 0x7f) << (7 * i);
      if ((b & 0x80) === 0) return [len >>> 0, pos + i + 1];
    }
    throw fail(`has a length that does not end at ${pos}`);
  };
  const container = (base: number, large: boolean, isObject: boolean): string => {
    const w = large ? 4 : 2;
    const rd = (p: number) => (need(p, w), large ? doc.readUInt32LE(p) : doc.readUInt16LE(p));
    const count = rd(base);
    const keyEntry = w + 2;
    const valueEntry = 1 + w;
    const valuesAt = base + 2 * w + (isObject ? count * keyEntry : 0);
    const parts: string[] = [];
    for (let i = 0; i < count; i++) {
      const e = valuesAt + i * valueEntry;
      need(e, valueEntry);
      const type = doc[e]!;
      const inlined =
        type === LITERAL ||
        type === INT16 ||
        type === UINT16 ||
        (large && (type === INT32 || type === UINT32));
      const v = inlined ? value(type, e + 1) : value(type, base + rd(e + 1));
      if (isObject) {
        const k = base + 2 * w + i * keyEntry;
        const keyOffset = rd(k);
        need(k + w, 2);
        const keyLength = doc.readUInt16LE(k + w);
        need(base + keyOffset, keyLength);
        const key = doc.toString('utf8', base + keyOffset, base + keyOffset + keyLength);
        parts.push(`${JSON.stringify(key)}: ${v}`);
      } else {
        parts.push(v);
      }
    }
    return isObject ? `{${parts.join(', ')}}` : `[${parts.join(', ')}]`;
  };
  return value(doc[0]!, 1);
}

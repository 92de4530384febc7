/**
 * Character sets: collation id → how to turn a column's bytes into text. The server's own table
 * (`information_schema.COLLATIONS`) is read once per connection, so every collation it knows is
 * resolved by the server's numbering; the decoder for each charset is Node's (WHATWG encodings,
 * full ICU). A charset without a faithful decoder is refused where a column uses it.
 */
import { TidemarkError } from '../../errors/tidemark-error.ts';

export interface Charset {
  readonly name: string;
  /** Bytes per character at most (VARCHAR(n) holds n × this many bytes). */
  readonly maxBytes: number;
  /** null: binary, the column is bytes. */
  readonly decode: ((bytes: Buffer, start: number, end: number) => string) | null;
}

/** MySQL charset name → WHATWG label; names absent here have no faithful decoder. */
const WHATWG: Readonly<Record<string, string>> = {
  latin2: 'iso-8859-2',
  latin5: 'iso-8859-9',
  latin7: 'iso-8859-13',
  greek: 'iso-8859-7',
  hebrew: 'iso-8859-8',
  cp1250: 'windows-1250',
  cp1251: 'windows-1251',
  cp1256: 'windows-1256',
  cp1257: 'windows-1257',
  koi8r: 'koi8-r',
  koi8u: 'koi8-u',
  gbk: 'gbk',
  gb2312: 'gbk',
  gb18030: 'gb18030',
  big5: 'big5',
  sjis: 'shift_jis',
  cp932: 'shift_jis',
  ujis: 'euc-jp',
  eucjpms: 'euc-jp',
  euckr: 'euc-kr',
  ucs2: 'utf-16be',
  utf16: 'utf-16be',
  utf16le: 'utf-16le',
};

const utf8 = (b: Buffer, s: number, e: number): string => b.toString('utf8', s, e);
const ascii = (b: Buffer, s: number, e: number): string => b.toString('latin1', s, e);

/**
 * MySQL's latin1 is cp1252, with 0x81, 0x8D, 0x8F, 0x90, 0x9D mapped to the C1 controls. Decoded
 * by hand: Node 20's TextDecoder('windows-1252') decodes as ISO-8859-1 (0x80 → U+0080, not €).
 */
const CP1252_HIGH = [
  0x20ac, 0x81, 0x201a, 0x192, 0x201e, 0x2026, 0x2020, 0x2021, 0x2c6, 0x2030, 0x160, 0x2039, 0x152, 0x8d,
  0x17d, 0x8f, 0x90, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x2dc, 0x2122, 0x161, 0x203a,
  0x153, 0x9d, 0x17e, 0x178,
];

function latin1(b: Buffer, s: number, e: number): string {
  let out = '';
  for (let i = s; i < e; i++) {
    const c = b[i]!;
    out += String.fromCharCode(c >= 0x80 && c < 0xa0 ? CP1252_HIGH[c - 0x80]! : c);
  }
  return out;
}

function utf32(b: Buffer, s: number, e: number): string {
  let out = '';
  for (let i = s; i + 4 <= e; i += 4) out += String.fromCodePoint(b.readUInt32BE(i));
  return out;
}

export function charsetByName(name: string, maxBytes: number): Charset {
  const n = name.toLowerCase();
  if (n === 'binary') return { name: n, maxBytes: 1, decode: null };
  if (n === 'utf8mb4' || n === 'utf8mb3' || n === 'utf8') return { name: n, maxBytes, decode: utf8 };
  if (n === 'ascii') return { name: n, maxBytes, decode: ascii };
  if (n === 'utf32') return { name: n, maxBytes, decode: utf32 };
  if (n === 'latin1') return { name: n, maxBytes, decode: latin1 };
  const label = WHATWG[n];
  if (label === undefined) return { name: n, maxBytes, decode: unsupportedCharset(n) };
  const decoder = new TextDecoder(label, { fatal: false });
  return { name: n, maxBytes, decode: (b, s, e) => decoder.decode(b.subarray(s, e)) };
}

function unsupportedCharset(name: string): (b: Buffer, s: number, e: number) => string {
  return () => {
    throw new TidemarkError('SOURCE_UNSUPPORTED_TYPE', {
      detail: `character set ${name} has no faithful decoder in Tidemark`,
      hint: 'Convert the column to utf8mb4 (ALTER TABLE … CONVERT TO CHARACTER SET utf8mb4) or exclude the table.',
    });
  };
}

/** Collation id → charset, as the server numbers them. */
export class CollationTable {
  private readonly byId = new Map<number, Charset>();
  private readonly byName = new Map<string, Charset>();

  constructor(rows: readonly { id: number; charset: string; maxBytes: number }[]) {
    for (const r of rows) {
      const cs = this.byName.get(r.charset) ?? charsetByName(r.charset, Number(r.maxBytes));
      this.byName.set(r.charset, cs);
      this.byId.set(Number(r.id), cs);
    }
    if (!this.byId.has(63)) this.byId.set(63, charsetByName('binary', 1));
  }

  get(id: number): Charset {
    const cs = this.byId.get(id);
    if (cs === undefined) {
      throw new TidemarkError('SOURCE_UNSUPPORTED_TYPE', {
        detail: `collation id ${id} is unknown to the server`,
      });
    }
    return cs;
  }

  named(name: string): Charset {
    return this.byName.get(name.toLowerCase()) ?? charsetByName(name, 4);
  }

  /** The SQL that lists the server's collations in the shape of the constructor's rows. */
  static readonly QUERY =
    'SELECT c.ID AS id, c.CHARACTER_SET_NAME AS charset, s.MAXLEN AS maxBytes ' +
    'FROM information_schema.COLLATIONS c JOIN information_schema.CHARACTER_SETS s ' +
    'ON s.CHARACTER_SET_NAME = c.CHARACTER_SET_NAME WHERE c.ID IS NOT NULL';
}

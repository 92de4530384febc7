/**
 * PostgreSQL array text form (`{1,2,NULL}`, `{{a,"b c"},{d,NULL}}`, `[0:1]={x,y}`) → JSON text,
 * for stores that hold arrays as JSON (MySQL JSON columns, JSON messages and files). Nested
 * arrays become nested JSON arrays; lower bounds are dropped (JSON arrays start at 0).
 * Element encoding: integers and floats as JSON numbers (digits copied exactly, so int8 keeps all
 * 64 bits), booleans as true/false, json elements embedded, everything else (numeric included,
 * to stay exact) as JSON strings.
 */
import { TidemarkError } from '../../errors/tidemark-error.ts';

export type ArrayElementKind = 'int' | 'float' | 'bool' | 'json' | 'text';

export function pgArrayToJson(text: string, element: ArrayElementKind): string {
  const start = text.startsWith('[') ? text.indexOf('=') + 1 : 0;
  const p = { s: text, i: start };
  const out = parseArray(p, element);
  if (p.i !== text.length) throw malformed(text);
  return out;
}

interface Cursor {
  readonly s: string;
  i: number;
}

function parseArray(p: Cursor, element: ArrayElementKind): string {
  if (p.s[p.i] !== '{') throw malformed(p.s);
  p.i++;
  const parts: string[] = [];
  skipSpace(p);
  if (p.s[p.i] === '}') {
    p.i++;
    return '[]';
  }
  for (;;) {
    skipSpace(p);
    if (p.s[p.i] === '{') parts.push(parseArray(p, element));
    else if (p.s[p.i] === '"') parts.push(encode(parseQuoted(p), element));
    else {
      const raw = parseUnquoted(p);
      parts.push(raw.toUpperCase() === 'NULL' ? 'null' : encode(raw, element));
    }
    skipSpace(p);
    const c = p.s[p.i++];
    if (c === '}') return `[${parts.join(',')}]`;
    if (c !== ',') throw malformed(p.s);
  }
}

function parseQuoted(p: Cursor): string {
  let out = '';
  p.i++;
  for (;;) {
    const c = p.s[p.i++];
    if (c === undefined) throw malformed(p.s);
    if (c === '"') return out;
    if (c === '\\') out += p.s[p.i++] ?? '';
    else out += c;
  }
}

function parseUnquoted(p: Cursor): string {
  let out = '';
  for (;;) {
    const c = p.s[p.i];
    if (c === undefined) throw malformed(p.s);
    if (c === ',' || c === '}') return out.trimEnd();
    p.i++;
    if (c === '\\') out += p.s[p.i++] ?? '';
    else out += c;
  }
}

function skipSpace(p: Cursor): void {
  while (p.s[p.i] === ' ') p.i++;
}

function encode(value: string, element: ArrayElementKind): string {
  switch (element) {
    case 'int':
      return value;
    case 'float':
      return /^-?\d/.test(value) ? value : JSON.stringify(value); // NaN, Infinity stay strings
    case 'bool':
      return value === 't' ? 'true' : 'false';
    case 'json':
      return value;
    case 'text':
      return JSON.stringify(value);
  }
}

function malformed(text: string): TidemarkError {
  return new TidemarkError('SOURCE_PROTOCOL', { detail: `malformed array text form: ${text.slice(0, 200)}` });
}

/**
 * PostgreSQL array literals (`array_in` / `array_out`): `{1,2}`, `{{1,2},{3,4}}`, quoted elements
 * with backslash escapes, unquoted `NULL`, `{}`, and dimension decorations `[0:1]={7,8}` for lower
 * bounds other than 1. Elements stay text here; `pg-values.ts` decodes them by element type.
 */
import { TidemarkError } from '../errors/tidemark-error.ts';

/** An element's text form, SQL NULL, or a nested dimension. */
export type ArrayItem = string | null | readonly ArrayItem[];

export interface ParsedArray {
  readonly items: readonly ArrayItem[];
  /** Lower bound of each dimension, when the literal had a `[lb:ub]` decoration. */
  readonly lowerBounds: readonly number[] | undefined;
}

export interface ArrayLiteralOptions {
  /** Element delimiter: `,` for every built-in type except `box` (`;`). */
  delimiter?: string;
}

function isSpace(c: string | undefined): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\v' || c === '\f';
}

function invalid(text: string, why: string): TidemarkError {
  return new TidemarkError('VALUE_INVALID_TEXT', { detail: `"${text}" is not an array literal: ${why}` });
}

/** Parses an array literal; throws VALUE_INVALID_TEXT on malformed input. */
export function parseArrayLiteral(text: string, options: ArrayLiteralOptions = {}): ParsedArray {
  const delim = options.delimiter ?? ',';
  let i = 0;
  const skip = () => {
    while (isSpace(text[i])) i++;
  };
  let lowerBounds: number[] | undefined;
  skip();
  if (text[i] === '[') {
    lowerBounds = [];
    while (text[i] === '[') {
      const end = text.indexOf(']', i);
      const m = end < 0 ? null : /^(-?\d+):(-?\d+)$/.exec(text.slice(i + 1, end));
      if (!m) throw invalid(text, 'bad dimension decoration');
      lowerBounds.push(Number(m[1]));
      i = end + 1;
    }
    skip();
    if (text[i] !== '=') throw invalid(text, 'missing "=" after dimensions');
    i++;
    skip();
  }

  const parseLevel = (): ArrayItem[] => {
    if (text[i] !== '{') throw invalid(text, `expected "{" at offset ${i}`);
    i++;
    const items: ArrayItem[] = [];
    skip();
    if (text[i] === '}') {
      i++;
      return items;
    }
    for (;;) {
      skip();
      const c = text[i];
      if (c === '{') items.push(parseLevel());
      else if (c === '"') items.push(parseQuoted());
      else items.push(parseUnquoted());
      skip();
      if (text[i] === delim) i++;
      else if (text[i] === '}') {
        i++;
        return items;
      } else throw invalid(text, `expected "${delim}" or "}" at offset ${i}`);
    }
  };

  const parseQuoted = (): string => {
    i++;
    let out = '';
    for (;;) {
      const c = text[i];
      if (c === undefined) throw invalid(text, 'unterminated quoted element');
      i++;
      if (c === '"') return out;
      if (c === '\\') {
        const e = text[i];
        if (e === undefined) throw invalid(text, 'unterminated escape');
        out += e;
        i++;
      } else out += c;
    }
  };

  const parseUnquoted = (): string | null => {
    let out = '';
    let keep = 0; // length of `out` that trailing-space trimming may not cut (escaped chars)
    let escaped = false;
    for (;;) {
      const c = text[i];
      if (c === undefined) throw invalid(text, 'unterminated array');
      if (c === delim || c === '}') break;
      if (c === '{' || c === '"') throw invalid(text, `unexpected "${c}" at offset ${i}`);
      i++;
      if (c === '\\') {
        const e = text[i];
        if (e === undefined) throw invalid(text, 'unterminated escape');
        out += e;
        i++;
        keep = out.length;
        escaped = true;
      } else out += c;
    }
    let end = out.length;
    while (end > keep && isSpace(out[end - 1])) end--;
    out = out.slice(0, end);
    if (out === '') throw invalid(text, `empty element at offset ${i}`);
    if (!escaped && out.length === 4 && out.toUpperCase() === 'NULL') return null;
    return out;
  };

  const items = parseLevel();
  skip();
  if (i !== text.length) throw invalid(text, `junk after the array at offset ${i}`);
  return { items, lowerBounds };
}

function needsQuotes(s: string, delim: string): boolean {
  if (s === '' || (s.length === 4 && s.toUpperCase() === 'NULL')) return true;
  for (let k = 0; k < s.length; k++) {
    const c = s[k];
    if (c === '"' || c === '\\' || c === '{' || c === '}' || c === delim || isSpace(c)) return true;
  }
  return false;
}

/** Prints items as `array_out` does, with a `[lb:ub]` decoration when a lower bound is not 1. */
export function formatArrayLiteral(
  items: readonly ArrayItem[],
  options: ArrayLiteralOptions & { lowerBounds?: readonly number[] | undefined } = {},
): string {
  const delim = options.delimiter ?? ',';
  const format = (level: readonly ArrayItem[]): string => {
    const parts = level.map((it) => {
      if (it === null) return 'NULL';
      if (typeof it !== 'string') return format(it);
      return needsQuotes(it, delim) ? `"${it.replace(/["\\]/g, '\\$&')}"` : it;
    });
    return `{${parts.join(delim)}}`;
  };
  let prefix = '';
  const lbs = options.lowerBounds;
  if (lbs && lbs.some((lb) => lb !== 1) && items.length > 0) {
    let level: readonly ArrayItem[] = items;
    for (const lb of lbs) {
      prefix += `[${lb}:${lb + level.length - 1}]`;
      const first: ArrayItem | undefined = level[0];
      level = first !== undefined && first !== null && typeof first !== 'string' ? first : [];
    }
    prefix += '=';
  }
  return prefix + format(items);
}

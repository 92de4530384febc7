/**
 * Canonical identity keys for rows: two rows get the same key exactly when they are the same row
 * for GROUP BY, DISTINCT and join purposes. Keys are prefix-free (a row's key is never a prefix of
 * another row's key), so they can be concatenated into state-store keys and scanned by prefix.
 *
 *   rowKey([1, 'ab', null]) = "3|d1;s2:abN"
 *           ^count of values, then one self-delimiting token per value
 *
 * Class values (Numeric, dates, …) contribute `canonical()` when they have it, else `toString()`;
 * their owners make that form equal for equal values (e.g. numeric 1.0 and 1.00).
 */
import type { Value } from '../decode/value.ts';
import { TidemarkError } from '../errors/tidemark-error.ts';

export function rowKey(row: readonly Value[]): string {
  let out = `${row.length}|`;
  for (const v of row) out += valueToken(v);
  return out;
}

/** The self-delimiting token of one value (see the header). */
export function valueToken(v: Value): string {
  if (v === null) return 'N';
  switch (typeof v) {
    case 'boolean':
      return v ? 'T' : 'F';
    case 'number':
      // PostgreSQL float equality: -0 = 0 and NaN = NaN.
      return `d${Object.is(v, -0) ? 0 : v};`;
    case 'bigint':
      return `i${v};`;
    case 'string':
      return `s${v.length}:${v}`;
  }
  if (v instanceof Uint8Array)
    return `x${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex')};`;
  const elements = (v as { elements?: unknown }).elements;
  if (Array.isArray(elements)) {
    const bounds = (v as { lowerBounds?: readonly number[] }).lowerBounds?.join(',') ?? '';
    return `a${bounds}/${(elements as Value[]).length}[${(elements as Value[]).map(valueToken).join('')}`;
  }
  const obj = v as { canonical?: () => string; toString: () => string };
  const text = typeof obj.canonical === 'function' ? obj.canonical() : obj.toString();
  if (text === '[object Object]') {
    throw new TidemarkError('DATAFLOW_UNSUPPORTED_VALUE', {
      detail: `value of class ${v.constructor.name} has neither canonical() nor toString()`,
    });
  }
  return `o${v.constructor.name}:${text.length}:${text}`;
}

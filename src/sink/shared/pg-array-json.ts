/**
 * PostgreSQL array text form (`{1,2,NULL}`, `{{a,"b c"},{d,NULL}}`, `[0:1]={x,y}`) → JSON text,
 * for stores that hold arrays as JSON (MySQL JSON columns, JSON messages and files). Parsing is
 * `decode/pg-array.ts`'s; nested arrays become nested JSON arrays; lower bounds are dropped (JSON
 * arrays start at 0). Element encoding: integers and floats as JSON numbers (digits copied
 * exactly, so int8 keeps all 64 bits), booleans as true/false, everything else (numeric and json
 * included, to stay exact) as JSON strings.
 */
import { parseArrayLiteral, type ArrayItem } from '../../decode/pg-array.ts';

export type ArrayElementKind = 'int' | 'float' | 'bool' | 'text';

/** Throws VALUE_INVALID_TEXT on a malformed literal. */
export function pgArrayToJson(text: string, element: ArrayElementKind): string {
  const item = (i: ArrayItem): string =>
    i === null ? 'null' : typeof i === 'string' ? encode(i, element) : `[${i.map(item).join(',')}]`;
  return `[${parseArrayLiteral(text).items.map(item).join(',')}]`;
}

function encode(value: string, element: ArrayElementKind): string {
  switch (element) {
    case 'int':
      return value;
    case 'float':
      return /^-?\d/.test(value) ? value : JSON.stringify(value); // NaN, Infinity stay strings
    case 'bool':
      return value === 't' ? 'true' : 'false';
    case 'text':
      return JSON.stringify(value);
  }
}

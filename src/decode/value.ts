/**
 * Typed values: what a text-form cell (decode/row.ts) becomes when a stage needs to compute with
 * it (views) or re-encode it for another store (MySQL, SQLite, JSON messages). The mapping from
 * PostgreSQL types is in `decode/pg-values.ts`; it is lossless and reversible (`encodeText`).
 *
 * | PostgreSQL type                         | Value                               |
 * |-----------------------------------------|-------------------------------------|
 * | bool                                    | boolean                             |
 * | int2, int4, oid                         | number (a safe integer)             |
 * | int8                                    | bigint                              |
 * | float4, float8                          | number (NaN and ±Infinity allowed)  |
 * | numeric                                 | Numeric (exact, decode/numeric.ts)  |
 * | text, varchar, bpchar, name, uuid, enum | string                              |
 * | bytea                                   | Uint8Array                          |
 * | json, jsonb                             | JsonText (the text, as printed)     |
 * | date                                    | PgDate                              |
 * | timestamp, timestamptz                  | PgTimestamp                         |
 * | interval                                | PgInterval                          |
 * | arrays of any of these                  | PgArray                             |
 * | anything else (time, inet, point, …)    | OpaqueText (the text form)          |
 *
 * Enum columns have per-database OIDs: callers pass the `typeName` hint `enum:<name>` (see
 * `typeHintFor` in pg-values.ts) to get strings; arrays of enums carry element OID 0.
 */
import type { Numeric } from './numeric.ts';
import type { PgDate, PgTimestamp, PgInterval } from './temporal.ts';

/** json/jsonb, kept as the source printed it so it round-trips byte for byte. */
export class JsonText {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

/** A value of a type Tidemark does not compute with; carried as its text form. */
export class OpaqueText {
  constructor(
    readonly text: string,
    /** The source type name, e.g. `inet`, `time without time zone`. */
    readonly typeName: string,
  ) {}
  toString(): string {
    return this.text;
  }
}

/** A (possibly multi-dimensional) array; elements are Values or nested PgArrays. */
export class PgArray {
  constructor(
    readonly elements: readonly Value[],
    /** pg_type OID of the element type. */
    readonly elementOid: number,
    /** Lower bound of each dimension when not 1 (e.g. `'[0:1]={1,2}'`), else undefined. */
    readonly lowerBounds?: readonly number[],
  ) {}
}

export type Value =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | Numeric
  | JsonText
  | PgDate
  | PgTimestamp
  | PgInterval
  | PgArray
  | OpaqueText;

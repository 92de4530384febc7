/** Column type codes of the binlog and the wire protocol (`enum_field_types`). */
export const T = {
  DECIMAL: 0,
  TINY: 1,
  SHORT: 2,
  LONG: 3,
  FLOAT: 4,
  DOUBLE: 5,
  NULL: 6,
  TIMESTAMP: 7,
  LONGLONG: 8,
  INT24: 9,
  DATE: 10,
  TIME: 11,
  DATETIME: 12,
  YEAR: 13,
  NEWDATE: 14,
  VARCHAR: 15,
  BIT: 16,
  TIMESTAMP2: 17,
  DATETIME2: 18,
  TIME2: 19,
  BLOB_COMPRESSED: 140,
  VARCHAR_COMPRESSED: 141,
  JSON: 245,
  NEWDECIMAL: 246,
  ENUM: 247,
  SET: 248,
  TINY_BLOB: 249,
  MEDIUM_BLOB: 250,
  LONG_BLOB: 251,
  BLOB: 252,
  VAR_STRING: 253,
  STRING: 254,
  GEOMETRY: 255,
} as const;

/** Columns the SIGNEDNESS optional metadata has a bit for. */
export function isNumericType(t: number): boolean {
  return (
    t === T.TINY ||
    t === T.SHORT ||
    t === T.INT24 ||
    t === T.LONG ||
    t === T.LONGLONG ||
    t === T.FLOAT ||
    t === T.DOUBLE ||
    t === T.NEWDECIMAL ||
    t === T.DECIMAL
  );
}

/** Columns the (DEFAULT_|COLUMN_)CHARSET optional metadata covers (by real type). */
export function isCharacterType(realType: number): boolean {
  return (
    realType === T.STRING ||
    realType === T.VAR_STRING ||
    realType === T.VARCHAR ||
    realType === T.BLOB ||
    realType === T.TINY_BLOB ||
    realType === T.MEDIUM_BLOB ||
    realType === T.LONG_BLOB
  );
}

export function isEnumOrSet(realType: number): boolean {
  return realType === T.ENUM || realType === T.SET;
}

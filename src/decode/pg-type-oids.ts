/**
 * pg_type OIDs of the built-in types Tidemark decodes (fixed since PostgreSQL 8; see
 * `src/include/catalog/pg_type.dat`). User types (enums, domains, composites) have OIDs assigned
 * per database and arrive with their own numbers.
 */
export const PgTypeOid = {
  bool: 16,
  bytea: 17,
  char: 18,
  name: 19,
  int8: 20,
  int2: 21,
  int4: 23,
  text: 25,
  oid: 26,
  json: 114,
  xml: 142,
  point: 600,
  box: 603,
  cidr: 650,
  float4: 700,
  float8: 701,
  money: 790,
  macaddr: 829,
  inet: 869,
  bpchar: 1042,
  varchar: 1043,
  date: 1082,
  time: 1083,
  timestamp: 1114,
  timestamptz: 1184,
  interval: 1186,
  timetz: 1266,
  bit: 1560,
  varbit: 1562,
  numeric: 1700,
  uuid: 2950,
  tsvector: 3614,
  jsonb: 3802,
} as const;

/** Array type OID → element type OID. */
const ELEMENT_OF: ReadonlyMap<number, number> = new Map([
  [1000, PgTypeOid.bool],
  [1001, PgTypeOid.bytea],
  [1002, PgTypeOid.char],
  [1003, PgTypeOid.name],
  [1005, PgTypeOid.int2],
  [1007, PgTypeOid.int4],
  [1009, PgTypeOid.text],
  [1014, PgTypeOid.bpchar],
  [1015, PgTypeOid.varchar],
  [1016, PgTypeOid.int8],
  [1021, PgTypeOid.float4],
  [1022, PgTypeOid.float8],
  [1028, PgTypeOid.oid],
  [1115, PgTypeOid.timestamp],
  [1182, PgTypeOid.date],
  [1183, PgTypeOid.time],
  [1185, PgTypeOid.timestamptz],
  [1187, PgTypeOid.interval],
  [1231, PgTypeOid.numeric],
  [1270, PgTypeOid.timetz],
  [2951, PgTypeOid.uuid],
  [199, PgTypeOid.json],
  [3807, PgTypeOid.jsonb],
  [143, PgTypeOid.xml],
  [1017, PgTypeOid.point],
  [1020, PgTypeOid.box],
  [651, PgTypeOid.cidr],
  [1041, PgTypeOid.inet],
  [1040, PgTypeOid.macaddr],
  [791, PgTypeOid.money],
  [1561, PgTypeOid.bit],
  [1563, PgTypeOid.varbit],
  [3643, PgTypeOid.tsvector],
]);

const ARRAY_OF: ReadonlyMap<number, number> = new Map([...ELEMENT_OF].map(([a, e]) => [e, a]));

const NAME_OF: ReadonlyMap<number, string> = new Map(Object.entries(PgTypeOid).map(([n, o]) => [o, n]));

/** The element type of a built-in array type, or undefined when `arrayOid` is not one. */
export function elementOidOf(arrayOid: number): number | undefined {
  return ELEMENT_OF.get(arrayOid);
}

/** The array type of a built-in element type, or undefined. */
export function arrayOidOf(elementOid: number): number | undefined {
  return ARRAY_OF.get(elementOid);
}

/** The short name of a built-in type (`int4`, `timestamptz`, `_int4` for arrays), or undefined. */
export function builtinTypeName(oid: number): string | undefined {
  const element = ELEMENT_OF.get(oid);
  if (element !== undefined) return `_${NAME_OF.get(element)}`;
  return NAME_OF.get(oid);
}

/**
 * TPC-H for tests and benchmarks: the schema (clause 1.4), a deterministic data generator that
 * follows dbgen's rules closely enough for every query's predicates to select what they select
 * at scale (clause 4.2.3: names, types, containers, brands, phone country codes, date ranges,
 * comment words, sparse order keys, customers without orders, order status from line status),
 * and the refresh functions RF1 (new orders with their lines) and RF2 (old orders deleted),
 * plus updates of every table for correctness tests.
 *
 * Rows are produced as PostgreSQL prints them (text, `character(n)` padded, numerics at scale 2)
 * so they can be loaded with COPY and handed to the view maintainer as they are.
 */
import type { ColumnSchema, TableSchema } from '../../src/core/table-schema.ts';
import { typeFromName, typeOid } from '../../src/sql/sql-type.ts';
import { mulberry32 } from '../../src/cli/demo/workload.ts';

export type TextRow = (string | null)[];

type ColumnDef = [name: string, type: string, key?: boolean];

const TABLES: Record<string, ColumnDef[]> = {
  region: [
    ['r_regionkey', 'integer', true],
    ['r_name', 'character(25)'],
    ['r_comment', 'character varying(152)'],
  ],
  nation: [
    ['n_nationkey', 'integer', true],
    ['n_name', 'character(25)'],
    ['n_regionkey', 'integer'],
    ['n_comment', 'character varying(152)'],
  ],
  part: [
    ['p_partkey', 'integer', true],
    ['p_name', 'character varying(55)'],
    ['p_mfgr', 'character(25)'],
    ['p_brand', 'character(10)'],
    ['p_type', 'character varying(25)'],
    ['p_size', 'integer'],
    ['p_container', 'character(10)'],
    ['p_retailprice', 'numeric(15,2)'],
    ['p_comment', 'character varying(23)'],
  ],
  supplier: [
    ['s_suppkey', 'integer', true],
    ['s_name', 'character(25)'],
    ['s_address', 'character varying(40)'],
    ['s_nationkey', 'integer'],
    ['s_phone', 'character(15)'],
    ['s_acctbal', 'numeric(15,2)'],
    ['s_comment', 'character varying(101)'],
  ],
  partsupp: [
    ['ps_partkey', 'integer', true],
    ['ps_suppkey', 'integer', true],
    ['ps_availqty', 'integer'],
    ['ps_supplycost', 'numeric(15,2)'],
    ['ps_comment', 'character varying(199)'],
  ],
  customer: [
    ['c_custkey', 'integer', true],
    ['c_name', 'character varying(25)'],
    ['c_address', 'character varying(40)'],
    ['c_nationkey', 'integer'],
    ['c_phone', 'character(15)'],
    ['c_acctbal', 'numeric(15,2)'],
    ['c_mktsegment', 'character(10)'],
    ['c_comment', 'character varying(117)'],
  ],
  orders: [
    ['o_orderkey', 'integer', true],
    ['o_custkey', 'integer'],
    ['o_orderstatus', 'character(1)'],
    ['o_totalprice', 'numeric(15,2)'],
    ['o_orderdate', 'date'],
    ['o_orderpriority', 'character(15)'],
    ['o_clerk', 'character(15)'],
    ['o_shippriority', 'integer'],
    ['o_comment', 'character varying(79)'],
  ],
  lineitem: [
    ['l_orderkey', 'integer', true],
    ['l_partkey', 'integer'],
    ['l_suppkey', 'integer'],
    ['l_linenumber', 'integer', true],
    ['l_quantity', 'numeric(15,2)'],
    ['l_extendedprice', 'numeric(15,2)'],
    ['l_discount', 'numeric(15,2)'],
    ['l_tax', 'numeric(15,2)'],
    ['l_returnflag', 'character(1)'],
    ['l_linestatus', 'character(1)'],
    ['l_shipdate', 'date'],
    ['l_commitdate', 'date'],
    ['l_receiptdate', 'date'],
    ['l_shipinstruct', 'character(25)'],
    ['l_shipmode', 'character(10)'],
    ['l_comment', 'character varying(44)'],
  ],
};

export const TPCH_TABLES = Object.keys(TABLES);

export function tpchSchemaSql(): string {
  return Object.entries(TABLES)
    .map(([t, cols]) => {
      const keys = cols.filter((c) => c[2]).map((c) => c[0]);
      const defs = cols.map(([n, type]) => `${n} ${type} NOT NULL`);
      return `CREATE TABLE ${t} (${defs.join(', ')}, PRIMARY KEY (${keys.join(', ')}));`;
    })
    .join('\n');
}

/** TableSchemas as the source would describe the tables (relation ids from `base`). */
export function tpchTableSchemas(base = 5000): TableSchema[] {
  return Object.entries(TABLES).map(([name, cols], i) => {
    const columns: ColumnSchema[] = cols.map(([n, type, key]) => ({
      name: n,
      typeName: type,
      typeOid: typeOid(typeFromName(type)),
      typeMod: -1,
      isKey: key === true,
      nullable: false,
    }));
    return {
      schema: 'public',
      name,
      relationId: base + i,
      columns,
      keyColumns: columns.flatMap((c, j) => (c.isKey ? [j] : [])),
      keyless: false,
      enums: [],
    };
  });
}

export function tpchColumns(table: string): string[] {
  return (TABLES[table] ?? []).map((c) => c[0]);
}

const NATIONS: [string, number][] = [
  ['ALGERIA', 0],
  ['ARGENTINA', 1],
  ['BRAZIL', 1],
  ['CANADA', 1],
  ['EGYPT', 4],
  ['ETHIOPIA', 0],
  ['FRANCE', 3],
  ['GERMANY', 3],
  ['INDIA', 2],
  ['INDONESIA', 2],
  ['IRAN', 4],
  ['IRAQ', 4],
  ['JAPAN', 2],
  ['JORDAN', 4],
  ['KENYA', 0],
  ['MOROCCO', 0],
  ['MOZAMBIQUE', 0],
  ['PERU', 1],
  ['CHINA', 2],
  ['ROMANIA', 3],
  ['SAUDI ARABIA', 4],
  ['VIETNAM', 2],
  ['RUSSIA', 3],
  ['UNITED KINGDOM', 3],
  ['UNITED STATES', 1],
];
const REGIONS = ['AFRICA', 'AMERICA', 'ASIA', 'EUROPE', 'MIDDLE EAST'];
const COLORS = (
  'almond antique aquamarine azure beige bisque black blanched blue blush brown burlywood burnished ' +
  'chartreuse chiffon chocolate coral cornflower cornsilk cream cyan dark deep dim dodger drab firebrick ' +
  'floral forest frosted gainsboro ghost goldenrod green grey honeydew hot indian ivory khaki lace lavender ' +
  'lawn lemon light lime linen magenta maroon medium metallic midnight mint misty moccasin navajo navy olive ' +
  'orange orchid pale papaya peach peru pink plum powder puff purple red rose rosy royal saddle salmon sandy ' +
  'seashell sienna sky slate smoke snow spring steel tan thistle tomato turquoise violet wheat white yellow'
).split(' ');
const TYPE1 = ['STANDARD', 'SMALL', 'MEDIUM', 'LARGE', 'ECONOMY', 'PROMO'];
const TYPE2 = ['ANODIZED', 'BURNISHED', 'PLATED', 'POLISHED', 'BRUSHED'];
const TYPE3 = ['TIN', 'NICKEL', 'BRASS', 'STEEL', 'COPPER'];
const CONTAINER1 = ['SM', 'LG', 'MED', 'JUMBO', 'WRAP'];
const CONTAINER2 = ['CASE', 'BOX', 'BAG', 'JAR', 'PKG', 'PACK', 'CAN', 'DRUM'];
const SEGMENTS = ['AUTOMOBILE', 'BUILDING', 'FURNITURE', 'MACHINERY', 'HOUSEHOLD'];
const PRIORITIES = ['1-URGENT', '2-HIGH', '3-MEDIUM', '4-NOT SPECIFIED', '5-LOW'];
const INSTRUCTIONS = ['DELIVER IN PERSON', 'COLLECT COD', 'NONE', 'TAKE BACK RETURN'];
const MODES = ['REG AIR', 'AIR', 'RAIL', 'SHIP', 'TRUCK', 'MAIL', 'FOB'];
const WORDS = (
  'furiously quickly carefully blithely slyly fluffily ironic final regular special pending express ' +
  'bold even silent unusual requests deposits packages accounts instructions theodolites foxes pinto ' +
  'beans dependencies platelets ideas asymptotes excuses courts dolphins sleep wake are haggle nag use ' +
  'boost cajole detect integrate among across above about after'
).split(' ');

const START = Date.UTC(1992, 0, 1);
const DAY_MS = 86_400_000;
const CURRENT = Date.UTC(1995, 5, 17);
const END = Date.UTC(1998, 11, 31);

const pad = (s: string, n: number) => (s.length >= n ? s : s + ' '.repeat(n - s.length));
const num = (x: number) => x.toFixed(2);
const date = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const id9 = (n: number) => String(n).padStart(9, '0');

export interface TpchState {
  readonly sf: number;
  readonly rows: Record<string, Map<string, TextRow>>;
  /** Order keys in use, oldest first (RF2 deletes from the front). */
  readonly orderKeys: number[];
  nextOrderKey: number;
  readonly r: () => number;
  readonly suppliers: number;
  readonly parts: number;
  readonly customers: number;
}

const keyOf = (table: string, row: TextRow): string =>
  JSON.stringify((TABLES[table] ?? []).flatMap((c, i) => (c[2] ? [row[i]] : [])));

/** Generates every table at scale factor `sf` (SF 1 = 6M line items). */
export function generateTpch(sf: number, seed = 1): TpchState {
  const r = mulberry32(seed);
  const rows: Record<string, Map<string, TextRow>> = {};
  for (const t of TPCH_TABLES) rows[t] = new Map();
  const put = (t: string, row: TextRow) => rows[t]!.set(keyOf(t, row), row);
  const suppliers = Math.max(10, Math.round(sf * 10_000));
  const parts = Math.max(40, Math.round(sf * 200_000));
  const customers = Math.max(30, Math.round(sf * 150_000));
  const state: TpchState = { sf, rows, orderKeys: [], nextOrderKey: 1, r, suppliers, parts, customers };
  REGIONS.forEach((n, i) => put('region', [String(i), pad(n, 25), text(r, 31, 115)]));
  NATIONS.forEach(([n, reg], i) => put('nation', [String(i), pad(n, 25), String(reg), text(r, 31, 114)]));
  for (let s = 1; s <= suppliers; s++) put('supplier', supplierRow(r, s));
  for (let p = 1; p <= parts; p++) {
    put('part', partRow(r, p));
    for (let i = 0; i < 4; i++) put('partsupp', partsuppRow(r, p, supplierOf(p, i, suppliers)));
  }
  for (let c = 1; c <= customers; c++) put('customer', customerRow(r, c));
  const orders = Math.max(150, Math.round(sf * 1_500_000));
  for (let o = 0; o < orders; o++) addOrder(state, put);
  return state;
}

/** dbgen's supplier of part p's i-th partsupp row. */
function supplierOf(p: number, i: number, s: number): number {
  return ((p + i * (Math.floor(s / 4) + Math.floor((p - 1) / s))) % s) + 1;
}

function text(r: () => number, min: number, max: number, inject?: string): string {
  const len = min + Math.floor(r() * (max - min + 1));
  const words: string[] = [];
  let n = 0;
  while (n < len) {
    const w = WORDS[Math.floor(r() * WORDS.length)]!;
    words.push(w);
    n += w.length + 1;
  }
  let s = words.join(' ');
  if (inject) {
    const at = Math.floor(r() * Math.max(1, s.length - inject.length));
    s = s.slice(0, at) + inject + s.slice(at + inject.length);
  }
  return s.slice(0, max).trimEnd();
}

function money(r: () => number, lo: number, hi: number): string {
  return num((Math.round(lo * 100) + Math.floor(r() * (Math.round((hi - lo) * 100) + 1))) / 100);
}

function phone(r: () => number, nation: number): string {
  const d = (n: number) => String(Math.floor(r() * (n === 3 ? 900 : 9000)) + (n === 3 ? 100 : 1000));
  return `${nation + 10}-${d(3)}-${d(3)}-${d(4)}`;
}

function supplierRow(r: () => number, s: number): TextRow {
  const nation = Math.floor(r() * 25);
  const roll = r();
  // dbgen: 5 in 10,000 suppliers complain, 5 recommend (more here, so small scales have some).
  const inject =
    roll < 0.01 ? 'Customer stuff Complaints' : roll < 0.02 ? 'Customer more Recommends' : undefined;
  return [
    String(s),
    pad(`Supplier#${id9(s)}`, 25),
    text(r, 10, 40),
    String(nation),
    phone(r, nation),
    money(r, -999.99, 9999.99),
    text(r, 25, 100, inject),
  ];
}

function partRow(r: () => number, p: number): TextRow {
  const names = new Set<string>();
  while (names.size < 5) names.add(COLORS[Math.floor(r() * COLORS.length)]!);
  const m = 1 + Math.floor(r() * 5);
  const n = 1 + Math.floor(r() * 5);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)]!;
  const price = (90000 + (Math.floor(p / 10) % 20001) + 100 * (p % 1000)) / 100;
  return [
    String(p),
    [...names].join(' '),
    pad(`Manufacturer#${m}`, 25),
    pad(`Brand#${m}${n}`, 10),
    `${pick(TYPE1)} ${pick(TYPE2)} ${pick(TYPE3)}`,
    String(1 + Math.floor(r() * 50)),
    pad(`${pick(CONTAINER1)} ${pick(CONTAINER2)}`, 10),
    num(price),
    text(r, 5, 22),
  ];
}

function partsuppRow(r: () => number, p: number, s: number): TextRow {
  return [String(p), String(s), String(1 + Math.floor(r() * 9999)), money(r, 1, 1000), text(r, 49, 198)];
}

function customerRow(r: () => number, c: number): TextRow {
  const nation = Math.floor(r() * 25);
  return [
    String(c),
    `Customer#${id9(c)}`,
    text(r, 10, 40),
    String(nation),
    phone(r, nation),
    money(r, -999.99, 9999.99),
    pad(SEGMENTS[Math.floor(r() * SEGMENTS.length)]!, 10),
    text(r, 29, 116),
  ];
}

/** dbgen's sparse order keys: 8 used of every 32. */
function orderKeyAt(i: number): number {
  return Math.floor(i / 8) * 32 + (i % 8) + 1;
}

/** One order with 1–7 line items, as RF1 inserts them. */
function addOrder(state: TpchState, put: (t: string, row: TextRow) => void): void {
  const r = state.r;
  const key = orderKeyAt(state.nextOrderKey++ - 1);
  state.orderKeys.push(key);
  let cust = 1 + Math.floor(r() * state.customers);
  // A third of the customers never order (clause 4.2.3: o_custkey not divisible by 3).
  while (cust % 3 === 0) cust = 1 + Math.floor(r() * state.customers);
  const orderDay = Math.floor(r() * ((END - 151 * DAY_MS - START) / DAY_MS + 1));
  const orderMs = START + orderDay * DAY_MS;
  const lines = 1 + Math.floor(r() * 7);
  let total = 0;
  let fCount = 0;
  for (let l = 1; l <= lines; l++) {
    const part = 1 + Math.floor(r() * state.parts);
    const supp = supplierOf(part, Math.floor(r() * 4), state.suppliers);
    const qty = 1 + Math.floor(r() * 50);
    const price = (90000 + (Math.floor(part / 10) % 20001) + 100 * (part % 1000)) / 100;
    const ext = Math.round(qty * price * 100) / 100;
    const disc = Math.floor(r() * 11) / 100;
    const tax = Math.floor(r() * 9) / 100;
    const ship = orderMs + (1 + Math.floor(r() * 121)) * DAY_MS;
    const commit = orderMs + (30 + Math.floor(r() * 61)) * DAY_MS;
    const receipt = ship + (1 + Math.floor(r() * 30)) * DAY_MS;
    const returnflag = receipt <= CURRENT ? (r() < 0.5 ? 'R' : 'A') : 'N';
    const linestatus = ship > CURRENT ? 'O' : 'F';
    if (linestatus === 'F') fCount++;
    total += ext * (1 + tax) * (1 - disc);
    put('lineitem', [
      String(key),
      String(part),
      String(supp),
      String(l),
      num(qty),
      num(ext),
      num(disc),
      num(tax),
      returnflag,
      linestatus,
      date(ship),
      date(commit),
      date(receipt),
      pad(INSTRUCTIONS[Math.floor(r() * INSTRUCTIONS.length)]!, 25),
      pad(MODES[Math.floor(r() * MODES.length)]!, 10),
      text(r, 10, 43),
    ]);
  }
  const status = fCount === lines ? 'F' : fCount === 0 ? 'O' : 'P';
  const special = r() < 0.05 ? 'special pending requests' : undefined;
  put('orders', [
    String(key),
    String(cust),
    status,
    num(Math.round(total * 100) / 100),
    date(orderMs),
    pad(PRIORITIES[Math.floor(r() * PRIORITIES.length)]!, 15),
    pad(`Clerk#${id9(1 + Math.floor(r() * Math.max(1, state.sf * 1000)))}`, 15),
    '0',
    text(r, 19, 78, special),
  ]);
}

/** Changes to one table in one batch, as whole rows (upserts) and deleted rows. */
export interface TableDelta {
  readonly upserts: TextRow[];
  readonly deletes: TextRow[];
}

export type Batch = Record<string, TableDelta>;

/**
 * One refresh batch: RF1 (new orders, `sf × 1500` of them, with their lines), RF2 (as many of the
 * oldest orders deleted with their lines) and, with `updates`, that many updated rows of every
 * table (prices, balances, quantities, dates, comments, …, keys kept).
 */
export function refreshBatch(state: TpchState, options: { orders?: number; updates?: number } = {}): Batch {
  const n = options.orders ?? Math.max(1, Math.round(state.sf * 1500));
  const batch: Batch = {};
  const delta = (t: string) => (batch[t] ??= { upserts: [], deletes: [] });
  const put = (t: string, row: TextRow) => {
    state.rows[t]!.set(keyOf(t, row), row);
    delta(t).upserts.push(row);
  };
  for (let i = 0; i < n; i++) addOrder(state, put);
  for (let i = 0; i < n && state.orderKeys.length > 0; i++) {
    const key = String(state.orderKeys.shift());
    const order = state.rows.orders!.get(JSON.stringify([key]));
    if (order) {
      state.rows.orders!.delete(JSON.stringify([key]));
      delta('orders').deletes.push(order);
    }
    for (let l = 1; l <= 7; l++) {
      const k = JSON.stringify([key, String(l)]);
      const line = state.rows.lineitem!.get(k);
      if (!line) break;
      state.rows.lineitem!.delete(k);
      delta('lineitem').deletes.push(line);
    }
  }
  const u = options.updates ?? 0;
  const r = state.r;
  for (let i = 0; i < u; i++) {
    for (const t of TPCH_TABLES) {
      const rows = [...state.rows[t]!.values()];
      const row = rows[Math.floor(r() * rows.length)];
      if (!row) continue;
      const changed = mutate(t, row, r);
      state.rows[t]!.set(keyOf(t, changed), changed);
      // A row inserted or updated earlier in the batch is updated again: one upsert, the last.
      const d = delta(t);
      const k = keyOf(t, changed);
      const at = d.upserts.findIndex((x) => keyOf(t, x) === k);
      if (at >= 0) d.upserts.splice(at, 1);
      d.upserts.push(changed);
    }
  }
  return batch;
}

/** A copy of `row` with non-key columns changed the way an application would change them. */
function mutate(table: string, row: TextRow, r: () => number): TextRow {
  const out = [...row];
  const set = (col: string, v: string) => {
    const i = tpchColumns(table).indexOf(col);
    out[i] = v;
  };
  switch (table) {
    case 'region':
    case 'nation':
      set(table === 'region' ? 'r_comment' : 'n_comment', text(r, 31, 114));
      if (table === 'nation' && r() < 0.3) set('n_regionkey', String(Math.floor(r() * 5)));
      break;
    case 'part':
      set('p_retailprice', money(r, 900, 2000));
      if (r() < 0.3) set('p_size', String(1 + Math.floor(r() * 50)));
      if (r() < 0.2)
        set('p_container', pad(`${CONTAINER1[Math.floor(r() * 5)]} ${CONTAINER2[Math.floor(r() * 8)]}`, 10));
      break;
    case 'supplier':
      set('s_acctbal', money(r, -999.99, 9999.99));
      if (r() < 0.3) set('s_nationkey', String(Math.floor(r() * 25)));
      if (r() < 0.2) set('s_comment', text(r, 25, 100, r() < 0.5 ? 'Customer stuff Complaints' : undefined));
      break;
    case 'partsupp':
      set('ps_availqty', String(1 + Math.floor(r() * 9999)));
      set('ps_supplycost', money(r, 1, 1000));
      break;
    case 'customer':
      set('c_acctbal', money(r, -999.99, 9999.99));
      if (r() < 0.3) set('c_mktsegment', pad(SEGMENTS[Math.floor(r() * 5)]!, 10));
      if (r() < 0.2) set('c_nationkey', String(Math.floor(r() * 25)));
      break;
    case 'orders':
      set('o_orderpriority', pad(PRIORITIES[Math.floor(r() * 5)]!, 15));
      if (r() < 0.3) set('o_orderstatus', ['F', 'O', 'P'][Math.floor(r() * 3)]!);
      if (r() < 0.3) set('o_comment', text(r, 19, 78, r() < 0.5 ? 'special pending requests' : undefined));
      break;
    case 'lineitem':
      set('l_quantity', num(1 + Math.floor(r() * 50)));
      set('l_discount', num(Math.floor(r() * 11) / 100));
      if (r() < 0.3) set('l_shipmode', pad(MODES[Math.floor(r() * MODES.length)]!, 10));
      if (r() < 0.3) set('l_receiptdate', date(START + Math.floor(r() * 2500) * DAY_MS));
      break;
  }
  return out;
}

const lit = (v: string | null) => (v === null ? 'NULL' : `'${v.replaceAll("'", "''")}'`);

/** SQL that applies a batch to PostgreSQL: per table, its deletes, then its upserts. */
export function batchStatements(batch: Batch): string[] {
  const stmts: string[] = [];
  for (const t of TPCH_TABLES) {
    const d = batch[t];
    if (!d) continue;
    const defs = TABLES[t]!;
    const cols = defs.map((c) => c[0]);
    const keyIdx = defs.flatMap((c, i) => (c[2] ? [i] : []));
    const keyCols = keyIdx.map((i) => cols[i]!);
    if (d.deletes.length > 0)
      stmts.push(
        `DELETE FROM ${t} WHERE (${keyCols.join(', ')}) IN (${d.deletes.map((r) => `(${keyIdx.map((i) => lit(r[i] ?? null)).join(', ')})`).join(', ')})`,
      );
    if (d.upserts.length > 0)
      stmts.push(
        `INSERT INTO ${t} VALUES ${d.upserts.map((r) => `(${r.map(lit).join(', ')})`).join(', ')} ` +
          `ON CONFLICT (${keyCols.join(', ')}) DO UPDATE SET ${cols.map((c) => `${c} = EXCLUDED.${c}`).join(', ')}`,
      );
  }
  return stmts;
}

/** A batch as the runtime hands it to the views: collapsed TableChanges per table. */
export function batchChanges(
  batch: Batch,
  catalog: readonly TableSchema[],
): {
  table: TableSchema;
  truncate: false;
  deletes: TextRow[];
  upserts: TextRow[];
  partialUpdates: [];
  rowDeltas: [];
}[] {
  return TPCH_TABLES.filter((t) => batch[t]).map((t) => {
    const schema = catalog.find((s) => s.name === t)!;
    const d = batch[t]!;
    return {
      table: schema,
      truncate: false,
      deletes: d.deletes.map((r) => r.map((c, i) => (schema.keyColumns.includes(i) ? c : null))),
      upserts: d.upserts,
      partialUpdates: [],
      rowDeltas: [],
    };
  });
}

/** The rows of a table as COPY's text format lines. */
export function* copyLines(rows: Iterable<TextRow>): Generator<string> {
  for (const r of rows) yield r.map((v) => (v === null ? '\\N' : v)).join('\t') + '\n';
}

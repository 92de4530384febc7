/**
 * Typed values against a real PostgreSQL: every text form of the all-types fixture decodes and
 * re-encodes to the same bytes; compareValues orders like ORDER BY; Numeric arithmetic, avg,
 * extract and date_trunc print what PostgreSQL prints. Random operands come from fast-check with
 * committed seeds.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type pg from 'pg';
import { freshDatabase, type TestDatabase } from '../support/db.ts';
import { ALL_TYPES, ALL_TYPES_ROW_COUNT, allTypesInsertSql, allTypesSetupSql } from '../support/all-types.ts';
import { compareValues, decodeCell, encodeText } from '../../src/decode/pg-values.ts';
import { Numeric } from '../../src/decode/numeric.ts';
import { OpaqueText } from '../../src/decode/value.ts';
import { PgInterval, PgTimestamp } from '../../src/decode/temporal.ts';
import { TEMPORAL_FIELDS, dateTrunc, extract } from '../../src/decode/temporal-fields.ts';

const SESSION =
  "SET DateStyle = ISO; SET TimeZone = 'UTC'; SET IntervalStyle = postgres; SET extra_float_digits = 1";

/** Columns of types Tidemark carries as text (value.ts); every other column must decode typed. */
const OPAQUE_COLUMNS = new Set([
  'c_time',
  'c_timetz',
  'c_inet',
  'c_cidr',
  'c_macaddr',
  'c_point',
  'c_money',
  'c_varbit',
  'c_tsvector',
  'c_xml',
]);

/** Every column comes back as PostgreSQL's text form, untouched by node-postgres. */
const TEXT_TYPES = { getTypeParser: () => (v: string) => v } as unknown as pg.CustomTypesConfig;

async function open(label: string): Promise<TestDatabase> {
  const db = await freshDatabase(label);
  await db.query(SESSION);
  return db;
}

async function textRows(
  db: TestDatabase,
  sql: string,
  params?: unknown[],
): Promise<pg.QueryResult<(string | null)[]>> {
  // node-postgres' QueryConfig accepts `types`; TestDatabase.query takes text only, so use a client.
  const c = await db.connect();
  await c.query(SESSION);
  return c.query<(string | null)[]>({ text: sql, values: params ?? [], rowMode: 'array', types: TEXT_TYPES });
}

describe('typed values against PostgreSQL 15', () => {
  it('round-trips the text form of every all-types value exactly', async () => {
    const db = await open('types');
    for (const sql of allTypesSetupSql()) await db.query(sql);
    for (const sql of allTypesInsertSql()) await db.query(sql);
    const hints = new Map<number, string>();
    const enums = await db.query<{ oid: number; array: number; name: string }>(
      `SELECT oid, typarray AS array, typname AS name FROM pg_type WHERE typtype = 'e'`,
    );
    for (const e of enums.rows) {
      hints.set(e.oid, `enum:${e.name}`);
      hints.set(e.array, `enum:${e.name}[]`);
    }
    const res = await textRows(db, `SELECT * FROM all_types ORDER BY id`);
    expect(res.rows).toHaveLength(ALL_TYPES_ROW_COUNT);
    const failures: string[] = [];
    let checked = 0;
    for (const row of res.rows) {
      res.fields.forEach((f, i) => {
        const text = row[i] ?? null;
        const value = decodeCell(text, f.dataTypeID, hints.get(f.dataTypeID));
        const back = encodeText(value, f.dataTypeID);
        checked++;
        if (back !== text) failures.push(`${f.name}: ${JSON.stringify(text)} → ${JSON.stringify(back)}`);
        if (value instanceof OpaqueText && !OPAQUE_COLUMNS.has(f.name))
          failures.push(`${f.name}: decoded as OpaqueText`);
      });
    }
    expect(failures).toEqual([]);
    expect(checked).toBe(ALL_TYPES_ROW_COUNT * (ALL_TYPES.length + 1));
  });

  it('orders numerics, timestamps and C-collated text as ORDER BY does', async () => {
    const db = await open('order');
    const numerics = fc.sample(numericText(), { seed: 101, numRuns: 300 });
    const stamps = fc.sample(timestampText(), { seed: 102, numRuns: 300 });
    const texts = fc.sample(
      fc.string({ unit: 'binary', maxLength: 6 }).map((s) => s.replaceAll('\0', '')),
      { seed: 103, numRuns: 300 },
    );
    const intervals = fc.sample(
      fc
        .tuple(
          fc.integer({ min: -5000, max: 5000 }),
          fc.integer({ min: -400, max: 400 }),
          fc.bigInt({ min: -(10n ** 12n), max: 10n ** 12n }),
        )
        .map(([m, d, us]) => new PgInterval(m, d, us).toString()),
      { seed: 104, numRuns: 200 },
    );
    const floats = fc.sample(
      fc.double().map((x) => encodeText(x) ?? ''),
      { seed: 105, numRuns: 200 },
    );
    const cases: [string, string, readonly string[], number][] = [
      ['numeric', 'v', [...numerics, 'NaN', 'Infinity', '-Infinity', '1.0', '1.00', '-0.0'], 1700],
      ['timestamptz', 'v', [...stamps, 'infinity', '-infinity'], 1184],
      ['text', 'v COLLATE "C"', [...texts, '', '\uffff', '😀', 'a', 'B'], 25],
      ['interval', 'v', [...intervals, '1 mon', '30 days', '720:00:00', '-00:00:00.000001'], 1186],
      ['float8', 'v', [...floats, 'NaN', 'Infinity', '-Infinity', '-0', '0', '5e-324'], 701],
    ];
    for (const [type, orderBy, values, oid] of cases) {
      const res = await textRows(
        db,
        `SELECT v::text, dense_rank() OVER (ORDER BY ${orderBy}) FROM unnest($1::${type}[]) u(v) ORDER BY 2`,
        [values],
      );
      const rows = res.rows.map((r) => ({ v: decodeCell(r[0] ?? null, oid), rank: Number(r[1]) }));
      const notRoundTripped = res.rows.filter((r) => encodeText(decodeCell(r[0] ?? null, oid), oid) !== r[0]);
      expect(notRoundTripped, `${type} texts that do not round-trip`).toEqual([]);
      for (let i = 0; i + 1 < rows.length; i++) {
        const a = rows[i]!;
        const b = rows[i + 1]!;
        const ours = Math.sign(compareValues(a.v, b.v));
        if (ours !== Math.sign(a.rank - b.rank)) {
          expect.fail(`${type}: ${String(encodeText(a.v))} vs ${String(encodeText(b.v))}: ours ${ours}`);
        }
      }
    }
  });

  it('computes numeric + - * / and avg digit for digit like PostgreSQL', async () => {
    const db = await open('arith');
    const pairs = fc.sample(fc.tuple(numericText(), numericText()), { seed: 201, numRuns: 400 });
    const res = await textRows(
      db,
      `SELECT (a + b)::text, (a - b)::text, (a * b)::text, CASE WHEN b <> 0 THEN (a / b)::text END
       FROM unnest($1::numeric[], $2::numeric[]) WITH ORDINALITY u(a, b, n) ORDER BY n`,
      [pairs.map((p) => p[0]), pairs.map((p) => p[1])],
    );
    const failures: string[] = [];
    pairs.forEach(([as, bs], i) => {
      const a = Numeric.parse(as);
      const b = Numeric.parse(bs);
      const row = res.rows[i]!;
      const ours = [a.add(b), a.sub(b), a.mul(b), b.isZero() ? null : a.div(b)].map(
        (x) => x?.toString() ?? null,
      );
      ['+', '-', '*', '/'].forEach((op, k) => {
        if (ours[k] !== row[k]) failures.push(`${as} ${op} ${bs}: pg ${row[k]}, ours ${ours[k]}`);
      });
    });
    expect(failures).toEqual([]);

    const groups = pairs.map((p, i) => ({ g: i % 37, v: p[0] }));
    const avg = await textRows(
      db,
      `SELECT g, avg(v)::text FROM unnest($1::int[], $2::numeric[]) u(g, v) GROUP BY g ORDER BY g`,
      [groups.map((x) => x.g), groups.map((x) => x.v)],
    );
    for (const [g, pgAvg] of avg.rows) {
      const members = groups.filter((x) => x.g === Number(g)).map((x) => Numeric.parse(x.v));
      const sum = members.reduce((s, x) => s.add(x), Numeric.ZERO);
      expect(sum.div(Numeric.fromBigInt(BigInt(members.length))).toString(), `avg of group ${g}`).toBe(pgAvg);
    }
  });

  it('extracts fields and truncates timestamps like PostgreSQL', async () => {
    const db = await open('fields');
    const stamps = [
      ...fc.sample(timestampText({ minMicros: -200_000_000_000_000_000n }), { seed: 301, numRuns: 120 }),
      'infinity',
      '-infinity',
    ];
    const truncFields = [
      'microseconds',
      'milliseconds',
      'second',
      'minute',
      'hour',
      'day',
      'week',
      'month',
      'quarter',
      'year',
      'decade',
      'century',
    ] as const;
    const cols = [
      ...TEMPORAL_FIELDS.map((f) => `extract(${f} from v)::text`),
      ...truncFields.map((f) => `date_trunc('${f}', v)::text`),
    ];
    const res = await textRows(
      db,
      `SELECT ${cols.join(', ')} FROM unnest($1::timestamp[]) WITH ORDINALITY u(v, n) ORDER BY n`,
      [stamps],
    );
    const failures: string[] = [];
    stamps.forEach((s, i) => {
      const ts = PgTimestamp.parse(s, { withTimeZone: false });
      const row = res.rows[i]!;
      const ours: (string | null)[] = [
        ...TEMPORAL_FIELDS.map((f) => extract(f, ts)?.toString() ?? null),
        ...truncFields.map((f) => dateTrunc(f, ts).toString()),
      ];
      ours.forEach((o, k) => {
        if (o !== row[k]) failures.push(`${cols[k]} of ${s}: pg ${row[k]}, ours ${o}`);
      });
    });
    expect(failures).toEqual([]);
  });
});

/** Decimal texts with up to 40 digits and scales 0–25, signs, zeros and trailing zeros. */
function numericText(): fc.Arbitrary<string> {
  return fc
    .tuple(
      fc.boolean(),
      fc.bigInt({ min: 0n, max: 10n ** 40n }),
      fc.integer({ min: 0, max: 25 }),
      fc.integer({ min: 0, max: 9 }),
    )
    .map(([neg, digits, scale, small]) => {
      const coef = small === 0 ? BigInt(small) : small < 3 ? digits % 1000n : digits;
      return Numeric.of(neg ? -coef : coef, scale).toString();
    });
}

/**
 * Timestamps across PostgreSQL's whole range (4714-11-24 BC on), BC included, with random
 * microseconds. `minMicros` keeps clear of the lower bound where date_trunc would leave the range.
 */
function timestampText(options: { minMicros?: bigint } = {}): fc.Arbitrary<string> {
  const min = options.minMicros ?? -211_813_488_000_000_000n;
  const max = 9_223_371_331_199_999_999n; // 294276-12-31 23:59:59.999999
  return fc
    .oneof(fc.bigInt({ min, max }), fc.bigInt({ min: -(10n ** 16n), max: 10n ** 16n }))
    .map((micros) => PgTimestamp.fromMicros(micros, { withTimeZone: false }).toString());
}

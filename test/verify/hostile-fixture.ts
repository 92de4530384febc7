/**
 * The source shapes verify is tested on (one fresh database each): odd names, a composite key, a
 * keyless REPLICA IDENTITY FULL table with duplicates, a TOASTed column, a partitioned table, and
 * one row per type family in `fam` — the table the tamper tests change, one family per row.
 */
export const HOSTILE_TABLES = [
  'public."User"',
  'public."order"',
  'public."a.b"',
  'public."tëst_ü"',
  `public."${'l'.repeat(63)}"`,
  'public.composite',
  'public.keyless',
  'public.docs',
  'public.parted',
  'public.fam',
];

export const HOSTILE_SETUP_SQL = `
CREATE TABLE "User" (id int PRIMARY KEY, "Name" text);
INSERT INTO "User" SELECT g, 'user ' || g FROM generate_series(1, 50) g;
CREATE TABLE "order" (id bigint PRIMARY KEY, "select" text);
INSERT INTO "order" SELECT g, CASE WHEN g % 3 = 0 THEN '' WHEN g % 3 = 1 THEN NULL ELSE 'x' END FROM generate_series(1, 50) g;
CREATE TABLE "a.b" (k text PRIMARY KEY, v int);
INSERT INTO "a.b" SELECT 'key ' || g, g FROM generate_series(1, 30) g;
INSERT INTO "a.b" VALUES ('Zebra', 1), ('apple', 2), ('Äpfel', 3), ('a ', 4), ('a', 5);
CREATE TABLE "tëst_ü" ("ключ" int PRIMARY KEY, "värde" text);
INSERT INTO "tëst_ü" SELECT g, 'ü' || g FROM generate_series(1, 20) g;
CREATE TABLE "${'l'.repeat(63)}" (id int PRIMARY KEY, v text);
INSERT INTO "${'l'.repeat(63)}" SELECT g, 'long' FROM generate_series(1, 10) g;
CREATE TABLE composite (a int, b text, c numeric(10,2), PRIMARY KEY (a, b));
INSERT INTO composite SELECT g % 7, 'b' || g, g * 1.5 FROM generate_series(1, 300) g;
CREATE TABLE keyless (x int, y text);
ALTER TABLE keyless REPLICA IDENTITY FULL;
INSERT INTO keyless VALUES (1, 'dup'), (1, 'dup'), (2, NULL), (3, '');
CREATE TABLE docs (id int PRIMARY KEY, body text);
ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTERNAL;
INSERT INTO docs SELECT g, repeat(md5(g::text), 4000) FROM generate_series(1, 5) g;
CREATE TABLE parted (id int, region text, v int, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE parted_eu PARTITION OF parted FOR VALUES IN ('eu');
CREATE TABLE parted_us PARTITION OF parted FOR VALUES IN ('us');
INSERT INTO parted SELECT g, CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END, g FROM generate_series(1, 40) g;
CREATE TABLE fam (id int PRIMARY KEY, n numeric(12,4), f float8, r real, ts timestamptz, t timestamp,
  d date, b boolean, bin bytea, j jsonb, js json, s text, u uuid, arr int[]);
INSERT INTO fam SELECT g, g * 1.25, g / 3.0, g / 7.0, '2024-03-01 10:00:00.123456+02'::timestamptz + g * interval '1 hour',
  '2024-03-01 10:00:00.5'::timestamp + g * interval '1 day', date '2024-01-01' + g, g % 2 = 0,
  decode(md5(g::text), 'hex'), jsonb_build_object('k', g, 'a', jsonb_build_array(1, 'two', null)),
  '{"b": 1, "a": [1, 2]}', CASE WHEN g % 2 = 0 THEN NULL ELSE 's' || g END,
  md5(g::text)::uuid, ARRAY[g, NULL, g + 1]
  FROM generate_series(1, 12) g;
`;

/** What the tamper statements below must be found as, in `fam` (by id) and `User`. */
export const TAMPERED = {
  /** ids of `fam` whose one column was changed downstream (one type family each). */
  changedFam: ['1', '2', '3', '4', '5', '6', '7', '8', '9'],
  /** `fam` id deleted downstream. */
  missingFam: '10',
  /** `fam` id inserted downstream only. */
  extraFam: '100',
  /** `User` id whose "Name" went from a value to NULL downstream. */
  changedUser: '7',
};

/** Tamper statements in a dialect: `q` quotes an identifier, values already in the store's form. */
export function tamperStatements(d: {
  q: (name: string) => string;
  fam: string;
  user: string;
  /** Literals in the store's form. */
  bytes: string;
  trueValue: string;
  json: string;
}): string[] {
  const { q, fam } = d;
  return [
    `UPDATE ${fam} SET ${q('n')} = 1.26 WHERE id = 1`,
    `UPDATE ${fam} SET ${q('f')} = 0.6 WHERE id = 2`,
    `UPDATE ${fam} SET ${q('ts')} = '2024-03-01 10:00:00' WHERE id = 3`,
    `UPDATE ${fam} SET ${q('t')} = '2024-03-05 10:00:00' WHERE id = 4`,
    `UPDATE ${fam} SET ${q('b')} = ${d.trueValue} WHERE id = 5`,
    `UPDATE ${fam} SET ${q('bin')} = ${d.bytes} WHERE id = 6`,
    `UPDATE ${fam} SET ${q('j')} = ${d.json} WHERE id = 7`,
    // NULL vs '': id 8 holds NULL in s (even ids do).
    `UPDATE ${fam} SET ${q('s')} = '' WHERE id = 8`,
    `UPDATE ${fam} SET ${q('d')} = '2024-01-01' WHERE id = 9`,
    `DELETE FROM ${fam} WHERE id = 10`,
    `INSERT INTO ${fam} (id) VALUES (100)`,
    `UPDATE ${d.user} SET ${q('Name')} = NULL WHERE id = 7`,
  ];
}

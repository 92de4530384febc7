/**
 * Type round trip: every MariaDB column type, at its edges, inserted before the snapshot (read by
 * `snapshot`) and again after it (read from the binlog by `replicate`), gives identical cells —
 * and the cells are the PostgreSQL text forms the pivot types promise.
 */
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { Row } from '../../../src/core/row.ts';
import { MysqlConnector } from '../../../src/source/mysql/mysql-connector.ts';
import { freePort } from '../../support/pg-cluster.ts';
import { startMariaDbSource, type MariaDbSource } from '../../support/mariadb-source.ts';
import {
  MARIADB_TYPE_COLUMNS,
  MARIADB_TYPE_ROWS,
  mariaDbTypesInsertSql,
  mariaDbTypesTableSql,
} from '../../support/mariadb-all-types.ts';
import { collect, iterate, sawRow } from './helpers.ts';

let src: MariaDbSource;
beforeAll(async () => {
  src = await startMariaDbSource({ port: await freePort(55753) });
});
afterAll(async () => {
  await src?.stop();
});

const COLUMNS = MARIADB_TYPE_COLUMNS;
const ROWS = MARIADB_TYPE_ROWS;

async function insertAll(db: string, base: number): Promise<void> {
  await src.sql(db, mariaDbTypesInsertSql('t', base));
}

describe('MariaDB connector: types', () => {
  it('gives identical cells from the snapshot and from the binlog, for every type', async () => {
    const db = await src.freshDatabase('types');
    await src.sql(db.name, mariaDbTypesTableSql('t'));
    await insertAll(db.name, 0);
    const c = new MysqlConnector({ uri: db.url });
    onTestFinished(() => c.close());
    const [table] = (await c.describe(['t'])).tables;
    expect(table!.columns.slice(1).map((x) => [x.name, x.typeName])).toEqual(
      COLUMNS.map(([n, , p]) => [n, p]),
    );
    await c.capture([table!]);
    const snap = await c.snapshot([table!], { parallelism: 2, chunkRows: 2 });
    const fromSnapshot: Row[] = [];
    for await (const chunk of snap.rows) fromSnapshot.push(...chunk.rows);
    await snap.release();
    const session = await c.replicate({
      after: snap.position,
      knownTables: [table!],
      acceptStartAfter: () => false,
    });
    onTestFinished(() => session.close());
    await insertAll(db.name, 100);
    await src.sql(db.name, `INSERT INTO t (id, vc) VALUES (999, 'end')`);
    const events = await collect(iterate(session), sawRow('t', 'end'));
    const fromBinlog = events.flatMap((e) => (e.tag === 'insert' && e.row[0] !== '999' ? [e.row] : []));
    const byId = (rows: Row[], base: number) =>
      rows
        .filter((r) => Number(r[0]) >= base && Number(r[0]) < base + ROWS)
        .sort((a, b) => Number(a[0]) - Number(b[0]))
        .map((r) => r.slice(1));
    expect(byId(fromSnapshot, 0)).toHaveLength(ROWS);
    COLUMNS.forEach(([name], col) => {
      for (let r = 0; r < ROWS; r++) {
        expect(byId(fromBinlog, 100)[r]![col], `${name} row ${r}`).toEqual(byId(fromSnapshot, 0)[r]![col]);
      }
    });
    const cell = (name: string, r: number) =>
      byId(fromBinlog, 100)[r]![COLUMNS.findIndex((c) => c[0] === name)];
    expect(cell('biu', 1)).toBe('18446744073709551615');
    expect(cell('d52', 3)).toBe('-0.01');
    expect(cell('f', 3)).toBe('1.1');
    expect(cell('db', 3)).toBe('0.30000000000000004');
    expect(cell('dt', 3)).toBeNull();
    expect(cell('dtm', 1)).toBe('9999-12-31 23:59:59.999999');
    expect(cell('ts', 3)).toBe('2024-06-30 12:34:56.5+00');
    expect(cell('tm', 3)).toBe('-00:00:00.000001');
    expect(cell('c', 1)).toBe('trail');
    expect(cell('vcl', 1)).toBe('café €');
    expect(cell('bin', 3)).toBe('\\x01000000');
    expect(cell('b10', 3)).toBe('1000000001');
    expect(cell('st', 1)).toBe('x,y,z');
    expect(cell('g', 0)).toBe('\\x0101000000000000000000f03f0000000000000040');
  });

  it('a table the hub announced to a running session (types approximated) is snapshotted with the catalog types', async () => {
    const db = await src.freshDatabase('learned');
    await src.sql(db.name, mariaDbTypesTableSql('t'));
    await insertAll(db.name, 0);
    const c = new MysqlConnector({ uri: db.url });
    onTestFinished(() => c.close());
    const [table] = (await c.describe(['t'])).tables;
    // As the change hub does for a new subscriber: the session learns the table first.
    const session = await c.replicate({ after: null, knownTables: [], acceptStartAfter: () => false });
    onTestFinished(() => session.close());
    session.learn([table!]);
    await c.capture([table!]);
    const snap = await c.snapshot([table!], { parallelism: 1, chunkRows: 100 });
    const rows: Row[] = [];
    for await (const chunk of snap.rows) rows.push(...chunk.rows);
    await snap.release();
    const cell = (name: string, id: number) =>
      rows.find((r) => r[0] === String(id))![1 + COLUMNS.findIndex((col) => col[0] === name)];
    expect(cell('y', 3)).toBe('0');
    expect(cell('g', 0)).toBe('\\x0101000000000000000000f03f0000000000000040');
  });
});

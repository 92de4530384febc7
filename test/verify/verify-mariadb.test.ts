import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { startMariaDb, type MariaDb } from '../support/mariadb.ts';
import { freePort } from '../support/pg-cluster.ts';
import { freshDatabase } from '../support/db.ts';
import { verifyHostileAndTampered } from './verify-cases.ts';

// Its own instance, on a port no other test file uses.
const PORT = await freePort(Number(process.env.TIDEMARK_TEST_VERIFY_MARIADB_PORT ?? 33316));
let maria: MariaDb;

beforeAll(async () => {
  maria = await startMariaDb({ port: PORT });
}, 120_000);
afterAll(async () => {
  await maria?.stop();
});

describe('verify into MariaDB', () => {
  it('equal on hostile shapes; tampered rows found, each kind', { timeout: 180_000 }, async () => {
    const db = await maria.freshDatabase('verify');
    await verifyHostileAndTampered(await freshDatabase('vmaria'), {
      uri: db.url,
      exec: async (sql) => {
        const c = await mysql.createConnection({ uri: db.url });
        try {
          await c.query(`SET time_zone = '+00:00'`);
          await c.query(sql);
        } finally {
          await c.end();
        }
      },
      dialect: {
        q: (n) => `\`${n}\``,
        fam: 'fam',
        user: '`User`',
        bytes: `X'DEADBEEF'`,
        trueValue: 'NOT b',
        json: `'{"k": 7, "a": [1, "two", null], "x": 1}'`,
      },
    });
  });
});

import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, onTestFinished } from 'vitest';
import { freshDatabase } from '../support/db.ts';
import { verifyHostileAndTampered } from './verify-cases.ts';

describe('verify into SQLite', () => {
  it('equal on hostile shapes; tampered rows found, each kind', { timeout: 120_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tidemark-verify-sqlite-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'replica.db');
    await verifyHostileAndTampered(await freshDatabase('vsqlite'), {
      uri: `sqlite://${path}`,
      exec: async (sql) => {
        const db = new Database(path);
        db.pragma('busy_timeout = 10000');
        try {
          db.exec(sql);
        } finally {
          db.close();
        }
      },
      dialect: {
        q: (n) => `"${n}"`,
        fam: 'fam',
        user: '"User"',
        bytes: `X'DEADBEEF'`,
        trueValue: '1 - b',
        json: `'{"k": 7, "a": [1, "two", null], "x": 1}'`,
      },
    });
  });
});

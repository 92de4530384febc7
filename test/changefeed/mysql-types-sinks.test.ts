/**
 * Every MariaDB column type (test/support/mariadb-all-types.ts), read by the snapshot and again
 * from the binlog (inserted, then updated), lands in each sink — PostgreSQL, MySQL (MariaDB),
 * SQLite, NATS JetStream, files (JSON lines and CSV) — and reads back as exactly the cells the
 * source gives (the pivot's PostgreSQL text), zero dates as NULL.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Checkpoint } from '../../src/core/epoch.ts';
import type { Row } from '../../src/core/row.ts';
import type { TableSchema } from '../../src/core/table-schema.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import type { FileManifest } from '../../src/sink/file/file-sink.ts';
import { readFileSinkTable } from '../sink-contract/file-readback.ts';
import {
  mysqlCheckpoint,
  natsCheckpoint,
  readMysql,
  readNatsTable,
  readPostgres,
  readSqlite,
  sqliteCheckpoint,
} from '../sink-contract/readers.ts';
import { sinkCheckpoint, testConfig } from '../support/changefeed.ts';
import { freshDatabase } from '../support/db.ts';
import { startChangefeed } from '../support/engine.ts';
import {
  mariaDbTypesInsertSql,
  mariaDbTypesTableSql,
  MARIADB_TYPE_COLUMNS,
} from '../support/mariadb-all-types.ts';
import {
  readMariaDbSource,
  rowText,
  startMariaDbSource,
  waitMariaDbCaughtUp,
  type MariaDbSource,
} from '../support/mariadb-source.ts';
import { startNats, type NatsServer } from '../support/nats.ts';
import { freePort } from '../support/pg-cluster.ts';

let src: MariaDbSource;
let nats: NatsServer;

beforeAll(async () => {
  [src, nats] = await Promise.all([
    startMariaDbSource({ port: await freePort(55791) }),
    startNats({ port: await freePort(4341) }),
  ]);
}, 180_000);

afterAll(async () => {
  await Promise.all([src?.stop(), nats?.stop()]);
});

interface Target {
  readonly name: string;
  readonly uri: string;
  checkpoint(): Promise<Checkpoint | null> | Checkpoint | null;
  read(t: TableSchema): Promise<Row[]> | Row[];
}

function fileTarget(format: 'jsonl' | 'csv'): Target {
  const out = join(mkdtempSync(join(tmpdir(), 'tm-my-types-')), 'out');
  return {
    name: `file (${format})`,
    uri: `file://${out}?format=${format}`,
    checkpoint: () => {
      if (!existsSync(out)) return null;
      const newest = readdirSync(out)
        .filter((n) => /^manifest-\d{20}\.json$/.test(n))
        .sort()
        .at(-1);
      if (!newest) return null;
      const m = JSON.parse(readFileSync(join(out, newest), 'utf8')) as FileManifest;
      return { position: m.position, epoch: m.epoch };
    },
    read: (t) => readFileSinkTable(out, t),
  };
}

describe('MariaDB types into every sink', () => {
  it(
    'every type, from the snapshot and from the binlog, reads back from PostgreSQL, MySQL, SQLite, NATS and files as the source cells',
    { timeout: 240_000 },
    async () => {
      const db = await src.freshDatabase('types');
      const pg = await freshDatabase('my_types');
      const my = await src.server.freshDatabase('types_sink');
      const sqlite = join(mkdtempSync(join(tmpdir(), 'tm-my-types-')), 'replica.db');
      const stream = `types_${randomBytes(4).toString('hex')}`;
      const natsRef = { port: nats.port, user: nats.user, password: nats.password, stream };
      const targets: Target[] = [
        {
          name: 'postgres',
          uri: pg.url,
          checkpoint: () => sinkCheckpoint(pg.url, 'ty_postgres'),
          read: (t) => readPostgres(pg.url, t),
        },
        {
          name: 'mysql',
          uri: my.url,
          checkpoint: () => mysqlCheckpoint(my.url, 'ty_mysql'),
          read: (t) => readMysql(my.url, t),
        },
        {
          name: 'sqlite',
          uri: `sqlite://${sqlite}`,
          checkpoint: () => sqliteCheckpoint(sqlite, 'ty_sqlite'),
          read: (t) => readSqlite(sqlite, t),
        },
        {
          name: 'nats',
          uri: nats.url(stream),
          checkpoint: () => natsCheckpoint(natsRef, 'ty_nats'),
          read: (t) => readNatsTable(natsRef, t),
        },
        fileTarget('jsonl'),
        fileTarget('csv'),
      ];
      const idOf = (t: Target) => `ty_${t.name.replace(/\W+/g, '_').replace(/_$/, '')}`;
      await src.sql(db.name, mariaDbTypesTableSql('all types'));
      await src.sql(db.name, mariaDbTypesInsertSql('all types', 0));
      const feeds = targets.map((t) =>
        startChangefeed(testConfig({ id: idOf(t), source: db.url, sink: t.uri, tables: [`${db.name}.*`] }), {
          logger: silentLogger,
        }),
      );
      try {
        for (const t of targets)
          await waitMariaDbCaughtUp(src, () => t.checkpoint()).catch((err: unknown) => {
            throw new Error(`${t.name}: ${String(err)}`);
          });
        // The same values through the binlog: inserted under new ids, then one row updated to
        // another's values (before and after images of every type), one deleted.
        const cols = MARIADB_TYPE_COLUMNS.map((c) => `\`${c[0]}\``);
        await src.sql(db.name, mariaDbTypesInsertSql('all types', 100));
        await src.sql(
          db.name,
          `SET SESSION sql_mode = ''; SET SESSION time_zone = '+00:00';
           UPDATE \`all types\` a JOIN \`all types\` b ON b.id = 2 SET ${cols.map((c) => `a.${c} = b.${c}`).join(', ')} WHERE a.id = 101;
           UPDATE \`all types\` a JOIN \`all types\` b ON b.id = 1 SET ${cols.map((c) => `a.${c} = b.${c}`).join(', ')} WHERE a.id = 3;
           DELETE FROM \`all types\` WHERE id = 102`,
        );
        for (const t of targets) await waitMariaDbCaughtUp(src, () => t.checkpoint());
        for (const f of feeds) expect(f.status().phase).toBe('streaming');
        const want = await readMariaDbSource(db.url, [`${db.name}.*`]);
        const { t: table, rows } = want.get('all types')!;
        expect(rows).toHaveLength(7);
        const failures: string[] = [];
        for (const target of targets) {
          let got: string[];
          try {
            got = (await target.read(table)).map(rowText).sort();
          } catch (err) {
            failures.push(`${target.name}: reading back failed: ${String(err)}`);
            continue;
          }
          if (JSON.stringify(got) === JSON.stringify(rows)) continue;
          // Name the columns that differ, per row, so a failure says which type went wrong.
          for (let r = 0; r < Math.max(got.length, rows.length); r++) {
            const a = JSON.parse(rows[r] ?? '[]') as (string | null)[];
            const b = JSON.parse(got[r] ?? '[]') as (string | null)[];
            table.columns.forEach((c, i) => {
              if (a[i] !== b[i])
                failures.push(
                  `${target.name} row ${a[0]} ${c.name} (${c.typeName}): ${JSON.stringify(b[i])?.slice(0, 80)} ≠ source ${JSON.stringify(a[i])?.slice(0, 80)}`,
                );
            });
          }
        }
        expect(failures).toEqual([]);
      } finally {
        await Promise.all(feeds.map((f) => f.stop()));
      }
    },
  );
});

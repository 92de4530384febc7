/**
 * Preflight of a sink, chosen by URI scheme like `createSink`, read-only: reachable (with TLS as
 * asked) and allowed to write. PostgreSQL is checked in depth (postgres/doctor.ts); the others
 * for reachability and a writable place.
 */
import { accessSync, constants, existsSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import mysql from 'mysql2/promise';
import type { DoctorCheck } from '../core/doctor-check.ts';
import { maskUri } from '../errors/mask.ts';
import { TidemarkError } from '../errors/tidemark-error.ts';
import { parseFileUri } from './file/file-sink.ts';
import { parseMysqlUri } from './mysql/mysql-sink.ts';
import { checkPostgresSink } from './postgres/doctor.ts';
import { sqlitePathFromUri } from './sqlite/sqlite-sink.ts';

export async function checkSink(uri: string): Promise<DoctorCheck[]> {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(uri)?.[1]?.toLowerCase() ?? '';
  try {
    switch (scheme) {
      case 'postgres':
      case 'postgresql':
        return await checkPostgresSink(uri);
      case 'mysql':
        return [await checkMysql(uri)];
      case 'sqlite':
        return [writableFile('sink.writable', sqlitePathFromUri(uri))];
      case 'file':
        return [writableDir('sink.writable', parseFileUri(uri).dir)];
      case 'nats':
        return [await reachable(uri, 4222)];
      default:
        return [
          {
            id: 'sink.scheme',
            status: 'fail',
            detail: `no sink for "${scheme || '(none)'}" in ${maskUri(uri)}`,
            fix: 'Use postgres://, mysql://, sqlite://, file:// or nats:// (see docs/sinks.md).',
          },
        ];
    }
  } catch (err) {
    const e = err instanceof TidemarkError ? err : new TidemarkError('INTERNAL', { detail: String(err) });
    return [{ id: 'sink.reachable', status: 'fail', detail: e.message, fix: e.hint }];
  }
}

async function checkMysql(uri: string): Promise<DoctorCheck> {
  const { config } = parseMysqlUri(uri);
  let conn;
  try {
    conn = await mysql.createConnection(config);
  } catch (err) {
    return {
      id: 'sink.reachable',
      status: 'fail',
      detail: `${maskUri(uri)}: ${(err as Error).message}`,
      fix: 'Check host, port, user and password; for TLS see ssl-mode in docs/sinks.md.',
    };
  }
  try {
    const [rows] = await conn.query(`SHOW SESSION STATUS LIKE 'Ssl_cipher'`);
    const cipher = (rows as { Value?: string }[])[0]?.Value ?? '';
    return {
      id: 'sink.reachable',
      status: 'ok',
      detail: `connected to ${maskUri(uri)}, ${cipher ? `TLS (${cipher})` : 'no TLS'}`,
    };
  } finally {
    await conn.end().catch(() => {});
  }
}

function writableFile(id: string, path: string): DoctorCheck {
  return existsSync(path) ? writable(id, path) : writableDir(id, dirname(path));
}

function writableDir(id: string, dir: string): DoctorCheck {
  let d = dir;
  while (!existsSync(d) && dirname(d) !== d) d = dirname(d);
  return writable(id, d);
}

function writable(id: string, path: string): DoctorCheck {
  try {
    accessSync(path, constants.W_OK);
    return { id, status: 'ok', detail: `${path} is writable` };
  } catch {
    return {
      id,
      status: 'fail',
      detail: `${path} is not writable`,
      fix: `Give the user running Tidemark write access to ${path}.`,
    };
  }
}

function reachable(uri: string, defaultPort: number): Promise<DoctorCheck> {
  const u = new URL(uri);
  const port = Number(u.port || defaultPort);
  return new Promise((resolve) => {
    const s = connect({ host: u.hostname, port, timeout: 5000 });
    const done = (c: DoctorCheck) => {
      s.destroy();
      resolve(c);
    };
    s.once('connect', () =>
      done({ id: 'sink.reachable', status: 'ok', detail: `${u.hostname}:${port} accepts connections` }),
    );
    const fail = (why: string) =>
      done({
        id: 'sink.reachable',
        status: 'fail',
        detail: `${u.hostname}:${port}: ${why}`,
        fix: 'Check the host and port, and that the server runs.',
      });
    s.once('error', (e) => fail((e as NodeJS.ErrnoException).code ?? e.message));
    s.once('timeout', () => fail('no answer within 5 s'));
  });
}

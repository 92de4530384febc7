/**
 * TLS with libpq's sslmode semantics (issue 10, item 20), against private PostgreSQL 15 clusters:
 * one with `ssl = on` and only `hostssl` lines in pg_hba.conf, a certificate for `localhost` made
 * here by a CA made here; one without TLS that asks for the password in the clear. Each check
 * runs through both PostgreSQL clients: our replication connection and node-postgres.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TidemarkError } from '../../src/errors/tidemark-error.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import { startChangefeed } from '../support/engine.ts';
import { connectPgClient } from '../../src/source/postgres/pg-tls.ts';
import { ReplicationConnection } from '../../src/source/postgres/replication-connection.ts';
import { freePort, startCluster, type PgCluster } from '../support/pg-cluster.ts';
import { expectSameTables, testConfig, waitForCatchUp, withClient } from '../support/changefeed.ts';

let dir: string;
let tlsCluster: PgCluster;
let plainCluster: PgCluster;
let ca: string;
let otherCa: string;

function openssl(args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

/** A CA, a second unrelated CA, and a server certificate for DNS:localhost signed by the first. */
function makeCertificates(): void {
  for (const name of ['ca', 'other-ca']) {
    openssl([
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '2',
      '-subj',
      `/CN=tidemark test ${name}`,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.crt`,
    ]);
  }
  openssl([
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-subj',
    '/CN=localhost',
    '-keyout',
    'server.key',
    '-out',
    'server.csr',
  ]);
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName=DNS:localhost\n');
  openssl([
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    'san.ext',
    '-out',
    'server.crt',
  ]);
  chmodSync(join(dir, 'server.key'), 0o600);
  if (process.getuid?.() === 0) execFileSync('chown', ['-R', 'postgres:postgres', dir]);
  chmodSync(dir, 0o755);
  ca = join(dir, 'ca.crt');
  otherCa = join(dir, 'other-ca.crt');
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tidemark-tls-'));
  makeCertificates();
  const base = Number(process.env.TIDEMARK_TEST_PG_PORT ?? 54329) + 40;
  tlsCluster = await startCluster({
    port: await freePort(base),
    settings: {
      ssl: 'on',
      ssl_cert_file: `'${join(dir, 'server.crt')}'`,
      ssl_key_file: `'${join(dir, 'server.key')}'`,
    },
    hba: [
      'local all all trust',
      'hostssl all all 127.0.0.1/32 scram-sha-256',
      'hostssl replication all 127.0.0.1/32 scram-sha-256',
      '',
    ].join('\n'),
  });
  plainCluster = await startCluster({
    port: await freePort(base + 10),
    hba: [
      'local all all trust',
      'host all all 127.0.0.1/32 password',
      'host replication all 127.0.0.1/32 password',
      '',
    ].join('\n'),
  });
}, 120_000);

afterAll(async () => {
  await tlsCluster?.stop();
  await plainCluster?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** A URI of the cluster with another host and the given query parameters. */
function uri(cluster: PgCluster, host: string, params: Record<string, string>): string {
  const u = new URL(cluster.url('postgres'));
  u.hostname = host;
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  return u.toString();
}

/** Connects with both clients; returns whether each connection is encrypted, or the error code. */
async function bothClients(url: string): Promise<{ replication: string; pg: string }> {
  const replication = await ReplicationConnection.connect({ url, applicationName: 'tidemark-tls-test' }).then(
    async (c) => {
      try {
        const r = await c.query('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
        return r.rows[0]?.[0] === 't' ? 'tls' : 'plain';
      } finally {
        await c.close();
      }
    },
    (e: unknown) => codeOf(e),
  );
  const pgResult = await connectPgClient(
    url,
    { application_name: 'tidemark-tls-test' },
    { role: 'source' },
  ).then(
    async (c) => {
      try {
        const r = await c.query<{ ssl: boolean }>('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
        return r.rows[0]?.ssl ? 'tls' : 'plain';
      } finally {
        await c.end();
      }
    },
    (e: unknown) => codeOf(e),
  );
  return { replication, pg: pgResult };
}

function codeOf(e: unknown): string {
  if (e instanceof TidemarkError) {
    // Every failure must say what to do.
    expect(e.hint.length).toBeGreaterThan(10);
    return e.code;
  }
  return `untyped: ${String(e)}`;
}

const both = (v: string) => ({ replication: v, pg: v });

describe('TLS (sslmode as libpq)', () => {
  it('verify-full succeeds with the right CA and host name', async () => {
    expect(
      await bothClients(uri(tlsCluster, 'localhost', { sslmode: 'verify-full', sslrootcert: ca })),
    ).toEqual(both('tls'));
  });

  it('verify-full fails clearly with a wrong CA or a host name not in the certificate', async () => {
    expect(
      await bothClients(uri(tlsCluster, 'localhost', { sslmode: 'verify-full', sslrootcert: otherCa })),
    ).toEqual(both('TLS_CERTIFICATE_REJECTED'));
    // 127.0.0.1 is not a name in the certificate (only DNS:localhost) …
    expect(
      await bothClients(uri(tlsCluster, '127.0.0.1', { sslmode: 'verify-full', sslrootcert: ca })),
    ).toEqual(both('TLS_CERTIFICATE_REJECTED'));
    // … which verify-ca does not check, while it still checks the CA.
    expect(
      await bothClients(uri(tlsCluster, '127.0.0.1', { sslmode: 'verify-ca', sslrootcert: ca })),
    ).toEqual(both('tls'));
    expect(
      await bothClients(uri(tlsCluster, '127.0.0.1', { sslmode: 'verify-ca', sslrootcert: otherCa })),
    ).toEqual(both('TLS_CERTIFICATE_REJECTED'));
  });

  it('require encrypts without verifying, unless a root certificate is given (then it is verify-ca)', async () => {
    expect(await bothClients(uri(tlsCluster, '127.0.0.1', { sslmode: 'require' }))).toEqual(both('tls'));
    expect(
      await bothClients(uri(tlsCluster, '127.0.0.1', { sslmode: 'require', sslrootcert: otherCa })),
    ).toEqual(both('TLS_CERTIFICATE_REJECTED'));
  });

  it('disable against a hostssl-only server fails clearly; prefer and allow get TLS', async () => {
    expect(await bothClients(uri(tlsCluster, '127.0.0.1', { sslmode: 'disable' }))).toEqual(
      both('TLS_REQUIRED_BY_SERVER'),
    );
    expect(await bothClients(uri(tlsCluster, '127.0.0.1', { sslmode: 'prefer' }))).toEqual(both('tls'));
    expect(await bothClients(uri(tlsCluster, '127.0.0.1', { sslmode: 'allow' }))).toEqual(both('tls'));
    // No sslmode: libpq's default, prefer.
    expect(await bothClients(uri(tlsCluster, '127.0.0.1', {}))).toEqual(both('tls'));
  });

  it('never sends a password in the clear when sslmode demands TLS and the server offers none', async () => {
    // This server has no TLS and asks for the password in the clear (pg_hba `password`).
    for (const sslmode of ['require', 'verify-ca', 'verify-full']) {
      expect(
        await bothClients(uri(plainCluster, 'localhost', { sslmode, sslrootcert: ca })),
        sslmode,
      ).toEqual(both('TLS_NOT_OFFERED'));
    }
    // prefer and disable send it, as libpq does.
    expect(await bothClients(uri(plainCluster, '127.0.0.1', { sslmode: 'prefer' }))).toEqual(both('plain'));
    expect(await bothClients(uri(plainCluster, '127.0.0.1', { sslmode: 'disable' }))).toEqual(both('plain'));
  });

  it('refuses an unknown sslmode or an unreadable root certificate, naming the parameter', async () => {
    expect(await bothClients(uri(tlsCluster, 'localhost', { sslmode: 'verify_full' }))).toEqual(
      both('CONFIG_INVALID'),
    );
    expect(
      await bothClients(
        uri(tlsCluster, 'localhost', { sslmode: 'verify-full', sslrootcert: join(dir, 'nope.crt') }),
      ),
    ).toEqual(both('CONFIG_INVALID'));
  });

  it('runs a changefeed whose source and sink both demand verify-full', async () => {
    const secure = (db: string) =>
      uri(tlsCluster, 'localhost', { sslmode: 'verify-full', sslrootcert: ca }).replace(
        '/postgres?',
        `/${db}?`,
      );
    await withClient(secure('postgres'), async (c) => {
      await c.query('CREATE DATABASE tls_src');
      await c.query('CREATE DATABASE tls_dst');
    });
    const src = secure('tls_src');
    const dst = secure('tls_dst');
    await withClient(src, (c) =>
      c.query(
        `CREATE TABLE items (id int PRIMARY KEY, label text); INSERT INTO items SELECT g, 'x' || g FROM generate_series(1, 500) g`,
      ),
    );
    const cfg = testConfig({ id: 'tls', source: src, sink: dst, tables: ['public.items'] });
    const feed = startChangefeed(cfg, { logger: silentLogger });
    try {
      await withClient(src, (c) => c.query(`UPDATE items SET label = label || '!' WHERE id <= 50`));
      await waitForCatchUp({ sourceUrl: src, sinkUrl: dst, id: cfg.id });
      await expectSameTables(src, dst, ['items']);
    } finally {
      await feed.stop();
    }
    // Every connection Tidemark held to the server was encrypted.
    const plain = await withClient(secure('postgres'), (c) =>
      c.query(`SELECT count(*)::int AS n FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
               WHERE a.client_addr IS NOT NULL AND NOT s.ssl`),
    );
    expect(plain.rows[0]?.n).toBe(0);
  });
});

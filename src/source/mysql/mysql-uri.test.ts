import { describe, expect, it } from 'vitest';
import { parseMysqlUri } from '../../sink/mysql/mysql-sink.ts';
import { wrapMysqlError } from './mysql-errors.ts';
import { mysqlUriParts } from './mysql-uri.ts';
import { parseSourceUri } from './source-uri.ts';

describe('MySQL URIs and errors, one place for the source and the sink', () => {
  it('a source URI takes the same TLS parameters as the sink', () => {
    const uri = 'mysql://u:secret-pw@db.example:3307/shop?ssl-mode=REQUIRED';
    expect(parseSourceUri(uri).config.ssl).toEqual({ rejectUnauthorized: false });
    expect(parseMysqlUri(uri).config.ssl).toEqual({ rejectUnauthorized: false });
    expect(parseSourceUri('mariadb://u:p@h/shop').config.ssl).toBeUndefined();
  });

  it('names the role in CONFIG_INVALID, masks the password, and takes mariadb:// only as a source', () => {
    expect(mysqlUriParts('mariadb://u:p@h:3306/shop', 'source')).toMatchObject({
      port: 3306,
      database: 'shop',
    });
    for (const [uri, role] of [
      ['mariadb://u:secret-pw@h/shop', 'sink'],
      ['mysql://u:secret-pw@h/shop?ssl-mode=on', 'source'],
      ['postgres://u:secret-pw@h/shop', 'source'],
    ] as const) {
      let message = '';
      try {
        mysqlUriParts(uri, role);
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message, uri).toMatch(new RegExp(`CONFIG_INVALID.*${role} URI`));
      expect(message).not.toContain('secret-pw');
    }
  });

  it('maps connection errors alike and statement errors by role', () => {
    const uri = 'mysql://u:secret-pw@h/shop';
    const as = (role: 'source' | 'sink', e: object) =>
      wrapMysqlError(Object.assign(new Error('x'), e), { role, uri, action: 'testing' });
    for (const role of ['source', 'sink'] as const) {
      expect(as(role, { code: 'ECONNREFUSED' }).code).toBe('CONNECT_REFUSED');
      expect(as(role, { code: 'ER_ACCESS_DENIED_ERROR', errno: 1045 }).code).toBe('AUTH_FAILED');
      expect(as(role, { code: 'ER_DBACCESS_DENIED_ERROR', errno: 1044 }).code).toBe('PERMISSION_DENIED');
      expect(as(role, { code: 'ER_BAD_DB_ERROR', errno: 1049 }).code).toBe('DATABASE_NOT_FOUND');
      expect(as(role, { code: 'ECONNREFUSED' }).message).toContain(
        `${role} mysql://u:***@h/shop while testing`,
      );
    }
    expect(as('source', { code: 'PROTOCOL_CONNECTION_LOST' }).code).toBe('SOURCE_STREAM_ENDED');
    expect(as('sink', { code: 'PROTOCOL_CONNECTION_LOST' })).toMatchObject({
      code: 'SINK_WRITE_FAILED',
      retriable: true,
    });
    expect(as('source', { code: 'ER_NO_SUCH_TABLE', errno: 1146 }).code).toBe('SOURCE_TABLE_NOT_FOUND');
    expect(as('source', { code: 'ER_QUERY_INTERRUPTED', errno: 1317 })).toMatchObject({
      code: 'SOURCE_QUERY_CANCELED',
      retriable: true,
    });
    expect(as('source', { code: 'ER_CONNECTION_KILLED', errno: 1927 })).toMatchObject({
      code: 'SOURCE_STREAM_ENDED',
      retriable: true,
    });
    expect(as('sink', { code: 'ER_DUP_ENTRY', errno: 1062 }).code).toBe('SINK_CONSTRAINT_VIOLATION');
    expect(as('sink', { code: 'ER_LOCK_DEADLOCK', errno: 1213 })).toMatchObject({
      code: 'SINK_WRITE_FAILED',
      retriable: true,
    });
    expect(as('sink', { code: 'ER_LOCK_WAIT_TIMEOUT', errno: 1205 })).toMatchObject({
      code: 'SINK_LOCK_TIMEOUT',
      retriable: true,
    });
  });
});

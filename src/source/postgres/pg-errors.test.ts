import { describe, expect, it } from 'vitest';
import { wrapPgError } from './pg-errors.ts';

/** A server ErrorResponse as node-postgres exposes it. */
function serverError(fields: Record<string, string>): Error {
  return Object.assign(new Error(fields.message ?? 'error'), fields);
}

describe('wrapPgError for a sink', () => {
  it.each([
    ['23502', 'null value in column "region" of relation "region_revenue" violates not-null constraint'],
    ['23505', 'duplicate key value violates unique constraint "t_pkey"'],
    ['23503', 'insert or update on table "t" violates foreign key constraint "t_fk"'],
    ['23514', 'new row for relation "t" violates check constraint "t_check"'],
  ])('a constraint violation (%s) is definite: never retried', (code, message) => {
    const e = wrapPgError(serverError({ code, message, table: 't', constraint: 't_c', schema: 'public' }), {
      role: 'sink',
      uri: 'postgres://u:secret@h/db',
      action: 'committing epoch 3',
    });
    expect(e.code).toBe('SINK_CONSTRAINT_VIOLATION');
    expect(e.retriable).toBe(false);
    expect(e.message).toContain('committing epoch 3');
    expect(e.message).toContain('constraint t_c');
    expect(e.message).not.toContain('secret');
  });

  it.each([
    [
      '2BP01',
      'cannot drop table wallet because other objects depend on it',
      'view wallet_view depends on table wallet',
    ],
    [
      '0A000',
      'cannot alter type of a column used by a view or rule',
      'rule _RETURN on view v depends on column "note"',
    ],
  ])('DDL blocked by objects created downstream (%s) is definite: never retried', (code, message, detail) => {
    const e = wrapPgError(serverError({ code, message, detail }), {
      role: 'sink',
      action: 'replacing public.wallet',
    });
    expect(e.code).toBe('SINK_DEPENDENT_OBJECTS');
    expect(e.retriable).toBe(false);
    expect(e.message).toContain(detail);
  });

  it('a lock wait the sink bounded (55P03) is SINK_LOCK_TIMEOUT, retried', () => {
    const e = wrapPgError(
      serverError({ code: '55P03', message: 'canceling statement due to lock timeout' }),
      {
        role: 'sink',
        action: 'applying a schema change of public.t',
      },
    );
    expect(e.code).toBe('SINK_LOCK_TIMEOUT');
    expect(e.retriable).toBe(true);
    expect(e.message).toContain('public.t');
  });

  it('a unique violation on a catalog index (two sessions creating one table) is a race: retried', () => {
    const e = wrapPgError(
      serverError({
        code: '23505',
        message: 'duplicate key value violates unique constraint "pg_type_typname_nsp_index"',
        schema: 'pg_catalog',
        table: 'pg_type',
        constraint: 'pg_type_typname_nsp_index',
      }),
      { role: 'sink' },
    );
    expect(e.code).toBe('SINK_WRITE_FAILED');
    expect(e.retriable).toBe(true);
  });

  it('a deadlock is retried', () => {
    expect(
      wrapPgError(serverError({ code: '40P01', message: 'deadlock detected' }), { role: 'sink' }),
    ).toMatchObject({
      code: 'SINK_WRITE_FAILED',
      retriable: true,
    });
  });
});

describe('wrapPgError for a source', () => {
  it('a cancelled query (57014) is retried, with what cancels it in the hint', () => {
    const e = wrapPgError(
      serverError({ code: '57014', message: 'canceling statement due to user request' }),
      {
        role: 'source',
        uri: 'postgres://u:secret@h/db',
        action: 'reading table t',
      },
    );
    expect(e.code).toBe('SOURCE_QUERY_CANCELED');
    expect(e.retriable).toBe(true);
    expect(e.hint).toContain('cancels long queries');
    expect(e.message).not.toContain('secret');
  });

  it('a client whose connection broke, used again, is retried (the server ended the session)', () => {
    const e = wrapPgError(new Error('Client has encountered a connection error and is not queryable'), {
      role: 'source',
      uri: 'postgres://u:secret@h/db',
    });
    expect(e.code).toBe('SOURCE_STREAM_ENDED');
    expect(e.retriable).toBe(true);
  });
});

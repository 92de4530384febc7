import { describe, expect, it } from 'vitest';
import { TidemarkError } from '../errors/tidemark-error.ts';
import { createSink, supportedSinkSchemes } from './create-sink.ts';
import { PostgresSink } from './postgres/postgres-sink.ts';

describe('createSink', () => {
  it('picks the PostgreSQL sink for postgres:// and postgresql://', async () => {
    expect(await createSink('postgres://u:p@127.0.0.1/db', { changefeedId: 'f' })).toBeInstanceOf(
      PostgresSink,
    );
    expect(await createSink('PostgreSQL://u@127.0.0.1/db', { changefeedId: 'f' })).toBeInstanceOf(
      PostgresSink,
    );
  });

  it('refuses an unknown scheme, naming it and the supported ones, with the password masked', async () => {
    let err: unknown;
    try {
      await createSink('kafka://user:s3cret@broker:9092/topic', { changefeedId: 'f' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TidemarkError);
    const e = err as TidemarkError;
    expect(e.code).toBe('SINK_UNSUPPORTED_SCHEME');
    expect(e.message).toContain('"kafka"');
    for (const s of supportedSinkSchemes()) expect(e.message).toContain(s);
    expect(e.message).not.toContain('s3cret');
  });

  it('refuses a string without a scheme', async () => {
    await expect(createSink('just-a-path', { changefeedId: 'f' })).rejects.toThrow(/SINK_UNSUPPORTED_SCHEME/);
  });
});

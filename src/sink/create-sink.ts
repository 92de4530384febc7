import { maskUri } from '../errors/mask.ts';
import { TidemarkError } from '../errors/tidemark-error.ts';
import type { Sink } from './sink.ts';

export interface CreateSinkOptions {
  /** Names this changefeed's checkpoint in the sink. */
  readonly changefeedId: string;
}

type SinkFactory = (uri: string, options: CreateSinkOptions) => Promise<Sink>;

/**
 * URI scheme (without ':') → implementation. Adding a sink is one line here. Each is imported
 * when first used: a process loads the driver of its own sink only (start-up time is restart time).
 */
const SINKS: Readonly<Record<string, SinkFactory>> = {
  postgres: async (uri, o) =>
    new (await import('./postgres/postgres-sink.ts')).PostgresSink({ uri, changefeedId: o.changefeedId }),
  postgresql: async (uri, o) => SINKS.postgres!(uri, o),
  sqlite: async (uri, o) =>
    (await import('./sqlite/sqlite-sink.ts')).createSqliteSink({ uri, changefeedId: o.changefeedId }),
  file: async (uri, o) =>
    (await import('./file/file-sink.ts')).createFileSink({ uri, changefeedId: o.changefeedId }),
  mysql: async (uri, o) =>
    (await import('./mysql/mysql-sink.ts')).createMysqlSink({ uri, changefeedId: o.changefeedId }),
  nats: async (uri, o) =>
    (await import('./nats/nats-sink.ts')).createNatsSink({ uri, changefeedId: o.changefeedId }),
};

/** Schemes `createSink` accepts, for messages and `--help`. */
export function supportedSinkSchemes(): string[] {
  return Object.keys(SINKS);
}

/**
 * Picks the sink for `uri` by its scheme and loads it. Connects to nothing: the sink connects in
 * `open()`. Rejects with SINK_UNSUPPORTED_SCHEME (URI masked) for a scheme no sink handles.
 */
export async function createSink(uri: string, options: CreateSinkOptions): Promise<Sink> {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(uri)?.[1]?.toLowerCase() ?? '';
  const factory = Object.hasOwn(SINKS, scheme) ? SINKS[scheme] : undefined;
  if (!factory) {
    throw new TidemarkError('SINK_UNSUPPORTED_SCHEME', {
      detail: `"${scheme || '(none)'}" in ${maskUri(uri)}; supported: ${supportedSinkSchemes().join(', ')}`,
    });
  }
  return factory(uri, options);
}

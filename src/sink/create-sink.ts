import { maskUri } from '../errors/mask.ts';
import { TidemarkError } from '../errors/tidemark-error.ts';
import { PostgresSink } from './postgres/postgres-sink.ts';
import { createSqliteSink } from './sqlite/sqlite-sink.ts';
import { createFileSink } from './file/file-sink.ts';
import { createMysqlSink } from './mysql/mysql-sink.ts';
import { createNatsSink } from './nats/nats-sink.ts';
import type { Sink } from './sink.ts';

export interface CreateSinkOptions {
  /** Names this changefeed's checkpoint in the sink. */
  readonly changefeedId: string;
}

type SinkFactory = (uri: string, options: CreateSinkOptions) => Sink;

/** URI scheme (without ':') → implementation. Adding a sink is one line here. */
const SINKS: Readonly<Record<string, SinkFactory>> = {
  postgres: (uri, o) => new PostgresSink({ uri, changefeedId: o.changefeedId }),
  postgresql: (uri, o) => new PostgresSink({ uri, changefeedId: o.changefeedId }),
  sqlite: (uri, o) => createSqliteSink({ uri, changefeedId: o.changefeedId }),
  file: (uri, o) => createFileSink({ uri, changefeedId: o.changefeedId }),
  mysql: (uri, o) => createMysqlSink({ uri, changefeedId: o.changefeedId }),
  nats: (uri, o) => createNatsSink({ uri, changefeedId: o.changefeedId }),
};

/** Schemes `createSink` accepts, for messages and `--help`. */
export function supportedSinkSchemes(): string[] {
  return Object.keys(SINKS);
}

/**
 * Picks the sink for `uri` by its scheme. Connects to nothing: the sink connects in `open()`.
 * Throws SINK_UNSUPPORTED_SCHEME (URI masked) for a scheme no sink handles.
 */
export function createSink(uri: string, options: CreateSinkOptions): Sink {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(uri)?.[1]?.toLowerCase() ?? '';
  const factory = Object.hasOwn(SINKS, scheme) ? SINKS[scheme] : undefined;
  if (!factory) {
    throw new TidemarkError('SINK_UNSUPPORTED_SCHEME', {
      detail: `"${scheme || '(none)'}" in ${maskUri(uri)}; supported: ${supportedSinkSchemes().join(', ')}`,
    });
  }
  return factory(uri, options);
}

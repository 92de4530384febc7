import { fileURLToPath } from 'node:url';
import { startApiServer, type RunningApiServer } from '../api/api-server.ts';
import { isLoopback, type ListenAddress } from '../api/listen-address.ts';
import { TidemarkError } from '../errors/tidemark-error.ts';
import type { ChangefeedConfig } from '../runtime/changefeed-config.ts';
import type { Logger } from '../runtime/logger.ts';
import { ChangefeedManager } from './changefeed-manager.ts';
import { MetadataStore } from './metadata-store.ts';
import { Engine } from '../control/engine.ts';

export interface ServerOptions {
  address: ListenAddress;
  dataDir: string;
  logger: Logger;
  /** Changefeeds of a config file, added (as running) when their id is not stored yet. */
  seed?: readonly ChangefeedConfig[];
  token?: string;
  env?: Readonly<Record<string, string | undefined>>;
  /** Defaults to the built dashboard, `dist/ui`. */
  uiDir?: string;
  sampleIntervalMs?: number;
  walPollIntervalMs?: number;
}

export interface TidemarkServer {
  readonly url: string;
  readonly manager: ChangefeedManager;
  /** Stops serving, stops every changefeed gracefully (their stored states are kept), closes the store. */
  close(): Promise<void>;
}

/**
 * `tidemark server`: opens the metadata store in the data dir, brings back the stored
 * changefeeds, seeds new ones from the config, then serves the API and dashboard.
 */
export async function runServer(opts: ServerOptions): Promise<TidemarkServer> {
  if (!isLoopback(opts.address.host) && !opts.token) {
    throw new TidemarkError('SERVER_TOKEN_REQUIRED', {
      detail: `--addr ${opts.address.host}:${opts.address.port}`,
    });
  }
  const engine = await Engine.open({ dataDir: opts.dataDir, logger: opts.logger });
  let store: MetadataStore;
  try {
    store = MetadataStore.open(opts.dataDir);
  } catch (err) {
    await engine.close();
    throw err;
  }
  let ready = false;
  const manager = new ChangefeedManager({
    store,
    logger: opts.logger,
    engine,
    ...(opts.env ? { env: opts.env } : {}),
    ...(opts.sampleIntervalMs ? { sampleIntervalMs: opts.sampleIntervalMs } : {}),
    ...(opts.walPollIntervalMs ? { walPollIntervalMs: opts.walPollIntervalMs } : {}),
  });
  let api: RunningApiServer;
  try {
    api = await startApiServer({
      manager,
      logger: opts.logger,
      address: opts.address,
      ...(opts.token === undefined ? {} : { token: opts.token }),
      uiDir: opts.uiDir ?? defaultUiDir(),
      isReady: () => ready,
    });
  } catch (err) {
    store.close();
    await engine.close();
    throw err;
  }
  try {
    await manager.start(opts.seed ?? []);
  } catch (err) {
    await api.close();
    await manager.close();
    store.close();
    await engine.close();
    throw err;
  }
  ready = true;
  opts.logger.info('server listening', {
    url: api.url,
    dataDir: opts.dataDir,
    changefeeds: manager.list().length,
  });
  return {
    url: api.url,
    manager,
    async close() {
      ready = false;
      await api.close();
      await manager.close();
      store.close();
      await engine.close();
    },
  };
}

/** `dist/ui` beside the compiled server, or the repository's `dist/ui` when run from source. */
function defaultUiDir(): string {
  const here = import.meta.url;
  return fileURLToPath(new URL(here.includes('/dist/') ? '../ui' : '../../dist/ui', here));
}

import { fileURLToPath } from 'node:url';
import { startApiServer, type RunningApiServer } from '../api/api-server.ts';
import { isLoopback, type ListenAddress } from '../api/listen-address.ts';
import { ensureTokenFile, recordServerToken } from '../api/api-token.ts';
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
  /**
   * A token the operator chose (--token-file, TIDEMARK_API_TOKEN): required on every route but
   * /healthz, /readyz and the dashboard's files. Without one, `auth` decides.
   */
  token?: string;
  /** Where the token file is (recorded for the local CLI); with `token`. */
  tokenFile?: string;
  /**
   * `auto` (default): the token in `<dataDir>/api-token`, created on first start, required on
   * mutating calls. `none`: no token at all (`--no-auth`, loopback only).
   */
  auth?: 'auto' | 'none';
  /** Called once, when `auto` created the token file: the one time the token is shown. */
  onTokenCreated?: (token: string, file: string) => void;
  /** Host names besides loopback ones the server answers to. */
  allowedHosts?: readonly string[];
  env?: Readonly<Record<string, string | undefined>>;
  /** Defaults to the built dashboard, `dist/ui`. */
  uiDir?: string;
  sampleIntervalMs?: number;
  walPollIntervalMs?: number;
}

export interface TidemarkServer {
  readonly url: string;
  /** The bearer token mutating calls need; undefined with `auth: 'none'`. */
  readonly token: string | undefined;
  readonly manager: ChangefeedManager;
  /** Stops serving, stops every changefeed gracefully (their stored states are kept), closes the store. */
  close(): Promise<void>;
}

/**
 * `tidemark server`: opens the metadata store in the data dir, brings back the stored
 * changefeeds, seeds new ones from the config, then serves the API and dashboard.
 */
export async function runServer(opts: ServerOptions): Promise<TidemarkServer> {
  const loopback = isLoopback(opts.address.host);
  if (!loopback && !opts.token) {
    throw new TidemarkError('SERVER_TOKEN_REQUIRED', {
      detail: `--addr ${opts.address.host}:${opts.address.port}`,
    });
  }
  const engine = await Engine.open({ dataDir: opts.dataDir, logger: opts.logger });
  let token: string | null = opts.token ?? null;
  let tokenFile = opts.tokenFile;
  let store: MetadataStore;
  try {
    if (token === null && opts.auth !== 'none') {
      const t = ensureTokenFile(opts.dataDir);
      token = t.token;
      tokenFile = t.file;
      if (t.created) opts.onTokenCreated?.(t.token, t.file);
    }
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
    ...(opts.sampleIntervalMs ? { sampleIntervalMs: opts.sampleIntervalMs } : {}),
    ...(opts.walPollIntervalMs ? { walPollIntervalMs: opts.walPollIntervalMs } : {}),
  });
  let api: RunningApiServer;
  try {
    api = await startApiServer({
      manager,
      logger: opts.logger,
      address: opts.address,
      token,
      protectReads: opts.token !== undefined || !loopback,
      ...(opts.allowedHosts ? { allowedHosts: opts.allowedHosts } : {}),
      uiDir: opts.uiDir ?? defaultUiDir(),
      isReady: () => ready,
    });
  } catch (err) {
    store.close();
    await engine.close();
    throw err;
  }
  if (tokenFile) {
    const port = Number(new URL(api.url).port);
    recordServerToken(opts.env ?? process.env, { host: opts.address.host, port }, tokenFile);
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
    token: token ?? undefined,
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

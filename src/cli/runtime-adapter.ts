import { Engine } from '../control/engine.ts';
import type { ChangefeedConfig } from '../runtime/changefeed-config.ts';
import type { ChangefeedStatus } from '../runtime/changefeed-status.ts';
import { ChangefeedRunner, type Changefeed, type StartChangefeedOptions } from '../runtime/changefeed.ts';
import { queryChangefeedStatus } from '../runtime/query-status.ts';
import type { Logger } from '../runtime/logger.ts';

export type { Changefeed, StartChangefeedOptions };

/**
 * The CLI's one door into the changefeed runtime. Commands receive it through `CliContext`, so
 * their unit tests can drive them with an in-memory runtime (signals, failures) and no database.
 */
export interface ChangefeedRuntime {
  /**
   * Starts one changefeed on the engine of `opts.dataDir` (opened, and the directory locked, by
   * the first changefeed); it runs until `stop()` or a non-retriable error (`done` rejects).
   */
  startChangefeed(cfg: ChangefeedConfig, opts: StartChangefeedOptions & { dataDir: string }): Changefeed;
  /** One-shot status read from the databases, for `tidemark status`. */
  queryChangefeedStatus(cfg: ChangefeedConfig): Promise<ChangefeedStatus>;
  /** Closes the engines (after every changefeed stopped): releases the data directories. */
  close(): Promise<void>;
}

export async function loadRuntime(): Promise<ChangefeedRuntime> {
  const engines = new Map<string, Promise<Engine>>();
  const engineFor = (dataDir: string, logger: Logger): Promise<Engine> => {
    let e = engines.get(dataDir);
    if (!e) {
      e = Engine.open({ dataDir, logger });
      engines.set(dataDir, e);
    }
    return e;
  };
  return {
    startChangefeed(cfg, opts) {
      return ChangefeedRunner.deferred(cfg, opts, engineFor(opts.dataDir, opts.logger));
    },
    queryChangefeedStatus,
    async close() {
      for (const e of engines.values()) await (await e.catch(() => null))?.close();
      engines.clear();
    },
  };
}

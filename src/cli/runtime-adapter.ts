import type { ChangefeedConfig } from '../runtime/changefeed-config.ts';
import type { ChangefeedStatus } from '../runtime/changefeed-status.ts';
import {
  queryChangefeedStatus,
  startChangefeed,
  type Changefeed,
  type StartChangefeedOptions,
} from '../runtime/changefeed.ts';

export type { Changefeed, StartChangefeedOptions };

/**
 * The CLI's one door into the changefeed runtime. Commands receive it through `CliContext`, so
 * their unit tests can drive them with an in-memory runtime (signals, failures) and no database.
 */
export interface ChangefeedRuntime {
  /** Starts one changefeed; it runs until `stop()` or a non-retriable error (`done` rejects). */
  startChangefeed(cfg: ChangefeedConfig, opts: StartChangefeedOptions): Changefeed;
  /** One-shot status read from the databases, for `tidemark status`. */
  queryChangefeedStatus(cfg: ChangefeedConfig): Promise<ChangefeedStatus>;
}

export async function loadRuntime(): Promise<ChangefeedRuntime> {
  return { startChangefeed, queryChangefeedStatus };
}

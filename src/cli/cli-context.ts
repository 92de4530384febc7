import { parseArgs, type ParseArgsConfig } from 'node:util';
import { TidemarkError } from '../errors/tidemark-error.ts';
import { parseLogFormat, type LogFormat, type LogStream } from '../runtime/logger.ts';
import type { ChangefeedRuntime } from './runtime-adapter.ts';

/**
 * Everything a command touches outside itself, so commands can run in tests with their own
 * streams, environment, runtime and shutdown signal.
 */
export interface CliContext {
  readonly stdout: LogStream;
  readonly stderr: LogStream;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
  /** Aborted on SIGINT/SIGTERM: long-running commands stop gracefully and return. */
  readonly shutdown: AbortSignal;
  /**
   * SIGHUP: a command that can reload its configuration sets `handler` (`start`); while none is
   * set, SIGHUP stops gracefully like SIGTERM (a closed terminal). Absent in tests that need none.
   */
  readonly reload?: { handler: (() => void) | null };
  loadRuntime(): Promise<ChangefeedRuntime>;
}

/** `--log-format json|pretty` (every long-running command takes it); undefined: by the terminal. */
export function logFormatOption(value: string | undefined): LogFormat | undefined {
  if (value === undefined) return undefined;
  const f = parseLogFormat(value);
  if (!f)
    throw new TidemarkError('CLI_USAGE', { detail: `--log-format: expected json or pretty, got "${value}"` });
  return f;
}

/** `parseArgs` with its errors turned into CLI_USAGE (exit code 2). */
export function parseCommandArgs<T extends NonNullable<ParseArgsConfig['options']>>(
  command: string,
  args: string[],
  options: T,
) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false });
  } catch (err) {
    throw new TidemarkError('CLI_USAGE', {
      detail: `tidemark ${command}: ${(err as Error).message}`,
      hint: `Run \`tidemark ${command} --help\`.`,
      cause: err,
    });
  }
}

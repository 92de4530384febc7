import { TidemarkError } from '../errors/tidemark-error.ts';
import type { CliContext } from './cli-context.ts';
import { USAGE, version } from './help.ts';
import type { ChangefeedRuntime } from './runtime-adapter.ts';

/**
 * Entry point of the `tidemark` command; returns the process exit code: 0 ok, 1 runtime failure,
 * 2 usage or config error. SIGINT/SIGTERM ask long-running commands to stop gracefully; a second
 * signal exits at once.
 */
export async function main(argv: string[]): Promise<number> {
  const controller = new AbortController();
  const reload: { handler: (() => void) | null } = { handler: null };
  const onSignal = (signal: NodeJS.Signals) => {
    if (signal === 'SIGHUP' && reload.handler && !controller.signal.aborted) {
      reload.handler();
      return;
    }
    if (controller.signal.aborted) process.exit(signal === 'SIGINT' ? 130 : signal === 'SIGHUP' ? 129 : 143);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // A closed terminal: stop as gracefully as on Ctrl-C (the demo's PostgreSQL would be orphaned);
  // `start` takes it as "reload the config" instead.
  process.on('SIGHUP', onSignal);
  try {
    return await runCli(argv, {
      stdout: process.stdout,
      stderr: process.stderr,
      env: process.env,
      cwd: process.cwd(),
      shutdown: controller.signal,
      reload,
      loadRuntime: async (): Promise<ChangefeedRuntime> =>
        (await import('./runtime-adapter.ts')).loadRuntime(),
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onSignal);
  }
}

type Command = (args: string[], ctx: CliContext) => Promise<number>;

/**
 * Each command's module is loaded when it runs: a short command (`changefeed list`, `--version`)
 * does not load the engine, the drivers and the view compiler — process start-up is most of its time.
 */
const COMMANDS: Record<string, () => Promise<Command>> = {
  start: async () => (await import('./commands/start.ts')).runStart,
  status: async () => (await import('./commands/status.ts')).runStatus,
  demo: async () => (await import('./commands/demo.ts')).runDemoCommand,
  server: async () => (await import('./commands/server.ts')).runServerCommand,
  changefeed: async () => (await import('./commands/changefeed.ts')).runChangefeedCommand,
  dashboard: async () => (await import('./commands/dashboard.ts')).runDashboardCommand,
  doctor: async () => (await import('./commands/doctor.ts')).runDoctorCommand,
  verify: async () => (await import('./commands/verify.ts')).runVerify,
};

/** Runs one command line against the given context; never throws. */
export async function runCli(argv: string[], ctx: CliContext): Promise<number> {
  try {
    const [first, ...rest] = argv;
    if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
      ctx.stdout.write(USAGE);
      return first === undefined ? 2 : 0;
    }
    if (first === '--version' || first === '-V') {
      ctx.stdout.write(`tidemark ${version()}\n`);
      return 0;
    }
    const load = COMMANDS[first];
    if (!load) {
      throw new TidemarkError('CLI_USAGE', {
        detail: first.startsWith('-') ? `unknown option ${first}` : `unknown command "${first}"`,
      });
    }
    const command = await load();
    return await command(rest, ctx);
  } catch (err) {
    const e =
      err instanceof TidemarkError ? err : new TidemarkError('INTERNAL', { detail: String(err), cause: err });
    ctx.stderr.write(`error: ${e.format()}\n`);
    return isUsageError(e) ? 2 : 1;
  }
}

function isUsageError(e: TidemarkError): boolean {
  return e.code === 'CLI_USAGE' || e.code.startsWith('CONFIG_');
}

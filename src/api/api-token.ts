/**
 * The API token of `tidemark server` and how a local `tidemark` CLI finds it.
 *
 *   server start ─► <data-dir>/api-token (0600, created once, printed once)
 *                └─► <state-dir>/servers/<host>-<port>  →  path of that token file (0600)
 *   tidemark changefeed … ─► --token-file │ TIDEMARK_API_TOKEN │ the server's entry │ ./.tidemark/server/api-token
 *
 * The entry names the file, never the token: only a user who can read the token file itself (the
 * same user, file mode 0600) gets the token. `<state-dir>` is `TIDEMARK_STATE_DIR`, else
 * `$XDG_STATE_HOME/tidemark`, else `~/.local/state/tidemark`.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { TidemarkError } from '../errors/tidemark-error.ts';

export const TOKEN_FILE_NAME = 'api-token';
export const MIN_TOKEN_LENGTH = 16;

type Env = Readonly<Record<string, string | undefined>>;

/**
 * The token in `<dataDir>/api-token`, created (random, 0600) when the file does not exist yet.
 * `created` is true only the one time it was made, so the caller prints it once.
 */
export function ensureTokenFile(dataDir: string): { token: string; file: string; created: boolean } {
  const file = join(dataDir, TOKEN_FILE_NAME);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const token = randomBytes(32).toString('base64url');
  try {
    writeFileSync(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
    return { token, file, created: true };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw tokenFileError(file, err);
  }
  return { token: readTokenFile(file), file, created: false };
}

/** Reads a token file; throws CLI_USAGE naming the file when it cannot be read or is too short. */
export function readTokenFile(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw tokenFileError(file, err);
  }
  return checkToken(text, file);
}

/** A token from a file or the environment, trimmed; at least 16 characters. */
export function checkToken(text: string, where: string): string {
  const t = text.trim();
  if (t.length < MIN_TOKEN_LENGTH) {
    throw new TidemarkError('CLI_USAGE', {
      detail: `${where}: the API token must have at least ${MIN_TOKEN_LENGTH} characters`,
      hint: 'Generate one: openssl rand -hex 32',
    });
  }
  return t;
}

function tokenFileError(file: string, err: unknown): TidemarkError {
  return new TidemarkError('CLI_USAGE', {
    detail: `token file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    cause: err,
  });
}

export function stateDir(env: Env): string {
  if (env.TIDEMARK_STATE_DIR) return resolve(env.TIDEMARK_STATE_DIR);
  if (env.XDG_STATE_HOME && isAbsolute(env.XDG_STATE_HOME)) return join(env.XDG_STATE_HOME, 'tidemark');
  return join(env.HOME || homedir(), '.local', 'state', 'tidemark');
}

function entryPath(env: Env, host: string, port: number): string {
  const name = `${host.replace(/[^A-Za-z0-9.-]/g, '_')}-${port}`;
  return join(stateDir(env), 'servers', name);
}

/** Hosts a loopback server answers under: an entry is written for each. */
function aliases(host: string): string[] {
  if (host === '127.0.0.1' || host === 'localhost') return ['127.0.0.1', 'localhost'];
  if (host === '::1' || host === '[::1]') return ['::1', 'localhost'];
  return [host];
}

/** Records where the token of the server at host:port is, for `findServerToken`. Best effort. */
export function recordServerToken(env: Env, address: { host: string; port: number }, file: string): void {
  for (const host of aliases(address.host)) {
    const path = entryPath(env, host, address.port);
    try {
      mkdirSync(join(stateDir(env), 'servers'), { recursive: true, mode: 0o700 });
      writeFileSync(path, `${resolve(file)}\n`, { mode: 0o600 });
      chmodSync(path, 0o600);
    } catch {
      // The CLI can still be given --token-file; a read-only home must not stop the server.
    }
  }
}

/**
 * The token a CLI should send to `serverUrl`, without flags: TIDEMARK_API_TOKEN, else the token
 * file recorded by the server at that address, else `<cwd>/.tidemark/server/api-token`.
 * Undefined when none is found (the server then answers 401 to mutating calls).
 */
export function findServerToken(opts: { serverUrl: string; env: Env; cwd: string }): string | undefined {
  if (opts.env.TIDEMARK_API_TOKEN) return checkToken(opts.env.TIDEMARK_API_TOKEN, 'TIDEMARK_API_TOKEN');
  const candidates: string[] = [];
  try {
    const u = new URL(opts.serverUrl);
    const port = Number(u.port || (u.protocol === 'https:' ? 443 : 80));
    const recorded = readFileSync(
      entryPath(opts.env, u.hostname.replace(/^\[|\]$/g, ''), port),
      'utf8',
    ).trim();
    if (recorded) candidates.push(recorded);
  } catch {
    // No entry: try the default data dir.
  }
  candidates.push(join(opts.cwd, '.tidemark', 'server', TOKEN_FILE_NAME));
  for (const file of candidates) {
    try {
      return readTokenFile(file);
    } catch {
      continue;
    }
  }
  return undefined;
}

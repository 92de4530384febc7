import { TidemarkError } from '../errors/tidemark-error.ts';

export interface ListenAddress {
  host: string;
  port: number;
}

/** `127.0.0.1:8300`, `[::1]:8300`, `0.0.0.0:8300` or `:8300` (= 127.0.0.1). Throws CLI_USAGE. */
export function parseListenAddress(text: string): ListenAddress {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text.trim());
  const port = Number(m?.[3]);
  if (!m || !Number.isInteger(port) || port > 65535) {
    throw new TidemarkError('CLI_USAGE', {
      detail: `--addr: expected HOST:PORT like 127.0.0.1:8300, got ${JSON.stringify(text)}`,
    });
  }
  const host = m[1] ?? m[2] ?? '';
  return { host: host === '' ? '127.0.0.1' : host, port };
}

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

import type { TableStatus } from '../runtime/changefeed-status.ts';

/** The slice of the server API the dashboard reads (see /api/openapi.json). */
export interface FeedStatus {
  phase: string;
  rowsPerSec: number;
  snapshotRows: number;
  epoch: number;
  resolved: string | null;
  checkpoint: string | null;
  lagMs: number | null;
  lagBytes: number | null;
  /** Source log end − resolved position: what is yet to be read. */
  resolvedLagBytes: number | null;
  /** Degraded or left out (tables a pattern matched, schema capture): shown, never hidden. */
  warnings: string[];
  /** Tables replicated (patterns resolved) and views, with the rows this run's snapshot copied. */
  tables?: TableStatus[];
  /** Each view's plan in words, once the changefeed planned its views. */
  views?: { name: string; plan: string[] }[];
}

export interface FeedConfig {
  source: string;
  sink: string;
  tables: string[];
  views: { name: string; sql: string }[];
  epoch: { intervalMs: number };
  lagBudgetMs: number;
}

export interface Feed {
  id: string;
  state: 'running' | 'paused' | 'failed';
  config: FeedConfig | null;
  status: FeedStatus;
  lastError: { code: string; message: string; hint: string; at?: string } | null;
  resolvedLagBytes: number | null;
  retainedWalBytes: number | null;
  withinLagBudget: boolean | null;
}

export interface PreflightCheck {
  id: string;
  status: 'ok' | 'warn' | 'fail';
  detail: string;
  fix?: string;
}

export interface Sample {
  tMs: number;
  lagMs: number | null;
  lagBytes: number | null;
  rowsPerSec: number;
  bytesPerSec: number;
}

export class Unauthorized extends Error {}

const TOKEN_KEY = 'tidemark.token';

export function token(): string | null {
  const fromHash = /(?:^#|&)token=([^&]+)/.exec(location.hash)?.[1];
  if (fromHash) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(fromHash));
    history.replaceState(null, '', location.pathname);
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(t: string): void {
  sessionStorage.setItem(TOKEN_KEY, t);
}

/**
 * Calls the API. Mutating calls are JSON (the server refuses anything else) and carry the token
 * kept for this tab; reads on a loopback server work without it.
 */
export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const t = token();
  const headers: Record<string, string> = t ? { authorization: `Bearer ${t}` } : {};
  if (method !== 'GET') headers['content-type'] = 'application/json';
  const res = await fetch(path, {
    method,
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (res.status === 401) throw new Unauthorized();
  const data = (await res.json()) as T & { error?: ApiError };
  if (!res.ok) throw new ApiFailure(data.error ?? { code: 'HTTP', message: `HTTP ${res.status}`, hint: '' });
  return data;
}

export interface ApiError {
  code: string;
  message: string;
  detail?: string;
  hint: string;
}

/** An error the server answered with: code, message, the key paths in `detail`, a hint. */
export class ApiFailure extends Error {
  constructor(readonly error: ApiError) {
    super(error.detail ? `${error.message}: ${error.detail}` : error.message);
  }
}

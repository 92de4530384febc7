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
}

export interface Feed {
  id: string;
  state: 'running' | 'paused' | 'failed';
  config: { source: string; sink: string; tables: string[] } | null;
  status: FeedStatus;
  lastError: { code: string; message: string; hint: string } | null;
  resolvedLagBytes: number | null;
  retainedWalBytes: number | null;
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

export async function api<T>(method: string, path: string): Promise<T> {
  const t = token();
  const res = await fetch(path, { method, headers: t ? { authorization: `Bearer ${t}` } : {} });
  if (res.status === 401) throw new Unauthorized();
  const body = (await res.json()) as T & { error?: { message: string } };
  if (!res.ok) throw new Error(body.error?.message ?? `HTTP ${res.status}`);
  return body;
}

import { ERROR_CODES, type ErrorCode } from '../errors/codes.ts';
import { maskUri } from '../errors/mask.ts';
import { TidemarkError } from '../errors/tidemark-error.ts';
import type { ChangefeedView } from '../server/changefeed-manager.ts';
import type { Sample } from '../server/sample-ring.ts';
import type { ResnapshotResult } from '../runtime/changefeed.ts';

export interface ApiClientOptions {
  /** `http://127.0.0.1:8300` */
  serverUrl: string;
  token?: string;
}

/**
 * A client of the `tidemark server` API (used by `tidemark changefeed …`). Errors the server
 * answers come back as the TidemarkError it sent (code, detail, hint); an unreachable server is
 * API_UNREACHABLE.
 */
export class ApiClient {
  private readonly base: string;

  constructor(private readonly opts: ApiClientOptions) {
    let u: URL;
    try {
      u = new URL(opts.serverUrl);
    } catch (err) {
      throw new TidemarkError('CLI_USAGE', {
        detail: `--server: expected a URL like http://127.0.0.1:8300, got ${JSON.stringify(opts.serverUrl)}`,
        cause: err,
      });
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      throw new TidemarkError('CLI_USAGE', {
        detail: `--server: expected an http:// or https:// URL, got ${JSON.stringify(maskUri(opts.serverUrl))}`,
      });
    }
    this.base = u.toString().replace(/\/+$/, '');
  }

  list(): Promise<ChangefeedView[]> {
    return this.request<{ changefeeds: ChangefeedView[] }>('GET', '/api/v1/changefeeds').then(
      (r) => r.changefeeds,
    );
  }
  get(id: string): Promise<ChangefeedView> {
    return this.request('GET', `/api/v1/changefeeds/${encodeURIComponent(id)}`);
  }
  create(
    definition: Record<string, unknown>,
    options: { paused?: boolean; skipChecks?: boolean } = {},
  ): Promise<ChangefeedView> {
    const q = new URLSearchParams();
    if (options.paused) q.set('paused', 'true');
    if (options.skipChecks) q.set('skipChecks', 'true');
    const query = q.size > 0 ? `?${q.toString()}` : '';
    return this.request('POST', `/api/v1/changefeeds${query}`, definition);
  }
  update(id: string, patch: Record<string, unknown>): Promise<ChangefeedView> {
    return this.request('PATCH', `/api/v1/changefeeds/${encodeURIComponent(id)}`, patch);
  }
  pause(id: string): Promise<ChangefeedView> {
    return this.request('POST', `/api/v1/changefeeds/${encodeURIComponent(id)}/pause`);
  }
  resnapshot(id: string, tables: readonly string[]): Promise<ResnapshotResult> {
    return this.request('POST', `/api/v1/changefeeds/${encodeURIComponent(id)}/resnapshot`, { tables });
  }
  resume(id: string): Promise<ChangefeedView> {
    return this.request('POST', `/api/v1/changefeeds/${encodeURIComponent(id)}/resume`);
  }
  remove(
    id: string,
    options: { dropSlot?: boolean } = {},
  ): Promise<{ id: string; removed: boolean; droppedSlot: boolean }> {
    return this.request(
      'DELETE',
      `/api/v1/changefeeds/${encodeURIComponent(id)}${options.dropSlot ? '?dropSlot=true' : ''}`,
    );
  }
  samples(id: string): Promise<Sample[]> {
    return this.request<{ samples: Sample[] }>(
      'GET',
      `/api/v1/changefeeds/${encodeURIComponent(id)}/samples`,
    ).then((r) => r.samples);
  }

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    // The server refuses mutating calls that are not JSON (a browser's cross-origin form or
    // text/plain POST); reads carry no body.
    if (body !== undefined || method !== 'GET') headers['content-type'] = 'application/json';
    if (this.opts.token) headers.authorization = `Bearer ${this.opts.token}`;
    let res: Response;
    try {
      res = await fetch(this.base + path, {
        method,
        headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? String(err);
      throw new TidemarkError('API_UNREACHABLE', {
        detail: `${method} ${this.base}${path}: ${cause}`,
        cause: err,
      });
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (res.ok) return parsed as T;
    const e = (parsed as { error?: { code?: string; detail?: string; hint?: string } } | undefined)?.error;
    const code: ErrorCode = e?.code && e.code in ERROR_CODES ? (e.code as ErrorCode) : 'INTERNAL';
    throw new TidemarkError(code, {
      detail: e?.detail ?? `${method} ${path}: HTTP ${res.status}${e ? '' : ` ${text.slice(0, 200)}`}`,
      ...(e?.hint ? { hint: e.hint } : {}),
    });
  }
}

/**
 * What a request must show before any route runs, against callers that are web pages in the
 * user's browser (a local HTTP API is reachable from every page the browser opens):
 *
 * - Host: a loopback server answers only to loopback names (`localhost`, `127.x.x.x`, `[::1]`)
 *   and the names in `allowedHosts`; a page on evil.example whose DNS name was re-pointed to
 *   127.0.0.1 (DNS rebinding) sends `Host: evil.example` and is refused.
 * - Origin: when a browser says where the request comes from, it must be this server itself.
 * - Content-Type: every mutating call (POST, PATCH, PUT, DELETE) must say `application/json`. A
 *   page can send `text/plain` or a form cross-origin without asking; for JSON the browser must
 *   ask first (a CORS preflight), which this server never grants.
 *
 * Pure functions; the server turns a refusal into 403 or 415.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { TidemarkError } from '../errors/tidemark-error.ts';
import { isLoopback } from './listen-address.ts';

export interface GuardOptions {
  /** The server listens on a loopback address. */
  loopback: boolean;
  /** Extra host names (without port) the server may be called by, e.g. behind a proxy. */
  allowedHosts: readonly string[];
}

export const MUTATING_METHODS: ReadonlySet<string> = new Set(['POST', 'PATCH', 'PUT', 'DELETE']);

/** Throws API_FORBIDDEN or API_UNSUPPORTED_MEDIA_TYPE; returns when the request may go on. */
export function guardRequest(method: string, headers: IncomingHttpHeaders, opts: GuardOptions): void {
  const host = headers.host;
  if (host === undefined || !hostAllowed(hostnameOf(host), opts)) {
    throw new TidemarkError('API_FORBIDDEN', {
      detail: `Host ${JSON.stringify(host ?? '')} is not a name of this server`,
      hint: 'Call the server by its address (http://127.0.0.1:PORT or http://localhost:PORT); behind a proxy, pass --allowed-host NAME.',
    });
  }
  const origin = headers.origin;
  if (origin !== undefined && !sameOrigin(origin, host)) {
    throw new TidemarkError('API_FORBIDDEN', {
      detail: `requests from the web origin ${JSON.stringify(origin)} are refused`,
      hint: 'Only the dashboard served by this server, the tidemark CLI and non-browser clients may call the API.',
    });
  }
  if (MUTATING_METHODS.has(method) && !isJson(headers['content-type'])) {
    throw new TidemarkError('API_UNSUPPORTED_MEDIA_TYPE', {
      detail: `${method} needs Content-Type: application/json, got ${JSON.stringify(headers['content-type'] ?? '')}`,
    });
  }
}

/** `Host` without its port: `[::1]:8300` → `::1`, `localhost:8300` → `localhost`. */
export function hostnameOf(host: string): string {
  const h = host.trim().toLowerCase();
  const v6 = /^\[([^\]]+)\](?::\d+)?$/.exec(h);
  if (v6) return v6[1] ?? '';
  return h.replace(/:\d+$/, '');
}

function hostAllowed(name: string, opts: GuardOptions): boolean {
  if (isLoopback(name) || opts.allowedHosts.includes(name)) return true;
  // Beyond loopback every data route needs the token, so any name the machine has is accepted
  // unless the operator listed them.
  return !opts.loopback && opts.allowedHosts.length === 0;
}

function sameOrigin(origin: string, host: string): boolean {
  try {
    const u = new URL(origin);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.host === host.trim().toLowerCase();
  } catch {
    return false; // "null" (sandboxed frames, file://) and anything unparsable
  }
}

function isJson(contentType: string | undefined): boolean {
  return (contentType ?? '').split(';')[0]?.trim().toLowerCase() === 'application/json';
}

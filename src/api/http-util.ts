import type { IncomingMessage, ServerResponse } from 'node:http';
import { TidemarkError } from '../errors/tidemark-error.ts';

const MAX_BODY_BYTES = 1024 * 1024;

/** Reads a JSON request body (at most 1 MiB); an empty body is `undefined`. Throws API_BAD_REQUEST. */
export async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES)
      throw new TidemarkError('API_BAD_REQUEST', { detail: 'request body over 1 MiB' });
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new TidemarkError('API_BAD_REQUEST', {
      detail: `body is not valid JSON: ${(err as Error).message}`,
      cause: err,
    });
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(text);
}

export function sendText(res: ServerResponse, status: number, contentType: string, text: string): void {
  res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store' });
  res.end(text);
}

const STATUS_BY_CODE: Readonly<Record<string, number>> = {
  API_BAD_REQUEST: 400,
  API_UNAUTHORIZED: 401,
  API_FORBIDDEN: 403,
  API_NOT_FOUND: 404,
  API_UNSUPPORTED_MEDIA_TYPE: 415,
  PREFLIGHT_FAILED: 422,
  API_CONFLICT: 409,
  RESNAPSHOT_REFUSED: 422,
  RESNAPSHOT_NOT_TAKEN: 409,
};

/** The HTTP status of an error: 4xx for the caller's mistakes, 500 for the rest. */
export function httpStatusOf(e: TidemarkError): number {
  return STATUS_BY_CODE[e.code] ?? (e.code.startsWith('CONFIG_') ? 400 : 500);
}

/** `{ error: { code, message, detail?, hint } }`: the one error shape of the API (already masked). */
export function sendError(
  res: ServerResponse,
  e: TidemarkError,
  extraHeaders: Record<string, string> = {},
): void {
  const { code, message, detail, hint } = e.toJSON();
  const status = httpStatusOf(e);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    ...extraHeaders,
  });
  res.end(JSON.stringify({ error: { code, message, ...(detail === undefined ? {} : { detail }), hint } }));
}

import { TidemarkError } from '../../../errors/tidemark-error.ts';
import type { PgServerError } from '../pg-errors.ts';

/**
 * Parsers for the backend messages of the startup and simple-query phases. Each takes the frame
 * body (after type and length, see backend-frame-decoder.ts). CopyData bodies are not parsed here:
 * they go to the pgoutput decoder untouched.
 */

/** Backend message type bytes. */
export const Backend = {
  authentication: 0x52, // R
  errorResponse: 0x45, // E
  noticeResponse: 0x4e, // N
  parameterStatus: 0x53, // S
  backendKeyData: 0x4b, // K
  readyForQuery: 0x5a, // Z
  rowDescription: 0x54, // T
  dataRow: 0x44, // D
  commandComplete: 0x43, // C
  emptyQueryResponse: 0x49, // I
  copyBothResponse: 0x57, // W
  copyOutResponse: 0x48, // H
  copyData: 0x64, // d
  copyDone: 0x63, // c
} as const;

export type AuthenticationRequest =
  | { kind: 'ok' }
  | { kind: 'cleartext' }
  | { kind: 'md5'; salt: Buffer }
  | { kind: 'sasl'; mechanisms: string[] }
  | { kind: 'sasl-continue'; data: string }
  | { kind: 'sasl-final'; data: string }
  | { kind: 'unsupported'; code: number };

export function parseAuthentication(body: Buffer): AuthenticationRequest {
  const code = body.readInt32BE(0);
  switch (code) {
    case 0:
      return { kind: 'ok' };
    case 3:
      return { kind: 'cleartext' };
    case 5:
      return { kind: 'md5', salt: body.subarray(4, 8) };
    case 10: {
      const mechanisms: string[] = [];
      let pos = 4;
      while (pos < body.length && body[pos] !== 0) {
        const end = body.indexOf(0, pos);
        if (end < 0) break;
        mechanisms.push(body.toString('utf8', pos, end));
        pos = end + 1;
      }
      return { kind: 'sasl', mechanisms };
    }
    case 11:
      return { kind: 'sasl-continue', data: body.toString('utf8', 4) };
    case 12:
      return { kind: 'sasl-final', data: body.toString('utf8', 4) };
    default:
      return { kind: 'unsupported', code };
  }
}

/** ErrorResponse / NoticeResponse fields, keeping the server's own severity, code and texts. */
export interface ServerNotice extends PgServerError {
  severity?: string;
  code?: string;
  message?: string;
  detail?: string;
  hint?: string;
  /** Every field by its one-letter tag (W where, F file, L line, R routine, …). */
  fields: Record<string, string>;
}

export function parseErrorFields(body: Buffer): ServerNotice {
  const fields: Record<string, string> = {};
  let pos = 0;
  while (pos < body.length && body[pos] !== 0) {
    const tag = String.fromCharCode(body[pos]!);
    const end = body.indexOf(0, pos + 1);
    if (end < 0) break;
    fields[tag] = body.toString('utf8', pos + 1, end);
    pos = end + 1;
  }
  const notice: ServerNotice = { fields };
  // V is the untranslated severity (PG ≥ 9.6); S may be localized.
  const severity = fields['V'] ?? fields['S'];
  if (severity !== undefined) notice.severity = severity;
  if (fields['C'] !== undefined) notice.code = fields['C'];
  if (fields['M'] !== undefined) notice.message = fields['M'];
  if (fields['D'] !== undefined) notice.detail = fields['D'];
  if (fields['H'] !== undefined) notice.hint = fields['H'];
  return notice;
}

/** The error a server ErrorResponse becomes before wrapPgError classifies it. */
export class PgServerErrorResponse extends Error {
  readonly severity: string | undefined;
  readonly code: string | undefined;
  readonly detail: string | undefined;
  readonly hint: string | undefined;
  constructor(readonly notice: ServerNotice) {
    super(notice.message ?? 'server error');
    this.name = 'PgServerErrorResponse';
    this.severity = notice.severity;
    this.code = notice.code;
    this.detail = notice.detail;
    this.hint = notice.hint;
  }
}

export function parseParameterStatus(body: Buffer): { name: string; value: string } {
  const end = body.indexOf(0);
  return { name: body.toString('utf8', 0, end), value: body.toString('utf8', end + 1, body.length - 1) };
}

/** Column names of a RowDescription (the simple protocol returns text columns only). */
export function parseRowDescription(body: Buffer): string[] {
  const count = body.readInt16BE(0);
  const names: string[] = [];
  let pos = 2;
  for (let i = 0; i < count; i++) {
    const end = body.indexOf(0, pos);
    if (end < 0) throw truncated('RowDescription');
    names.push(body.toString('utf8', pos, end));
    pos = end + 1 + 18; // table oid, column no, type oid, type len, typmod, format
  }
  return names;
}

export function parseDataRow(body: Buffer): (string | null)[] {
  const count = body.readInt16BE(0);
  const row: (string | null)[] = new Array<string | null>(count);
  let pos = 2;
  for (let i = 0; i < count; i++) {
    const len = body.readInt32BE(pos);
    pos += 4;
    if (len < 0) {
      row[i] = null;
    } else {
      if (pos + len > body.length) throw truncated('DataRow');
      row[i] = body.toString('utf8', pos, pos + len);
      pos += len;
    }
  }
  return row;
}

function truncated(what: string): TidemarkError {
  return new TidemarkError('SOURCE_PROTOCOL', { detail: `truncated ${what} message` });
}

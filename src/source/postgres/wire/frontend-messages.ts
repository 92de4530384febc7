/**
 * Encoders for the frontend messages the replication connection sends (protocol 3.0). Each
 * returns one Buffer ready for `socket.write`.
 */

const PROTOCOL_VERSION_3 = 196_608;
/** Milliseconds between the Unix epoch and PostgreSQL's epoch (2000-01-01). */
export const PG_EPOCH_OFFSET_MS = 946_684_800_000;

function typed(type: string, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = type.charCodeAt(0);
  out.writeInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
}

function cstring(text: string): Buffer {
  return Buffer.from(text + '\0', 'utf8');
}

/** StartupMessage: protocol 3.0 and `name value` parameters (user, database, replication, …). */
export function encodeStartup(params: Readonly<Record<string, string>>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of Object.entries(params)) parts.push(cstring(name), cstring(value));
  parts.push(Buffer.from([0]));
  const body = Buffer.concat(parts);
  const out = Buffer.allocUnsafe(8 + body.length);
  out.writeInt32BE(8 + body.length, 0);
  out.writeInt32BE(PROTOCOL_VERSION_3, 4);
  body.copy(out, 8);
  return out;
}

/** PasswordMessage: a cleartext or md5-hashed password. */
export function encodePassword(password: string): Buffer {
  return typed('p', cstring(password));
}

/** SASLInitialResponse: the chosen mechanism and the client-first message. */
export function encodeSaslInitialResponse(opts: { mechanism: string; data: string }): Buffer {
  const data = Buffer.from(opts.data, 'utf8');
  const len = Buffer.allocUnsafe(4);
  len.writeInt32BE(data.length, 0);
  return typed('p', Buffer.concat([cstring(opts.mechanism), len, data]));
}

/** SASLResponse: a later SASL message (client-final). */
export function encodeSaslResponse(data: string): Buffer {
  return typed('p', Buffer.from(data, 'utf8'));
}

/** Query (simple query protocol). */
export function encodeQuery(sql: string): Buffer {
  return typed('Q', cstring(sql));
}

export function encodeCopyData(data: Buffer): Buffer {
  return typed('d', data);
}

export function encodeCopyDone(): Buffer {
  return typed('c', Buffer.alloc(0));
}

export function encodeTerminate(): Buffer {
  return typed('X', Buffer.alloc(0));
}

/**
 * Standby status update ('r') inside CopyData: the written, flushed and applied positions
 * (raw 64-bit LSNs, 0 meaning "unknown"), the client clock and whether a reply is wanted.
 */
export function encodeStandbyStatus(opts: {
  writeLsn: bigint;
  flushLsn: bigint;
  applyLsn: bigint;
  nowMs: number;
  replyRequested: boolean;
}): Buffer {
  const out = Buffer.allocUnsafe(5 + 34);
  out[0] = 0x64; // 'd'
  out.writeInt32BE(4 + 34, 1);
  out[5] = 0x72; // 'r'
  out.writeBigUInt64BE(opts.writeLsn, 6);
  out.writeBigUInt64BE(opts.flushLsn, 14);
  out.writeBigUInt64BE(opts.applyLsn, 22);
  out.writeBigInt64BE(BigInt(Math.round(opts.nowMs - PG_EPOCH_OFFSET_MS)) * 1000n, 30);
  out[38] = opts.replyRequested ? 1 : 0;
  return out;
}

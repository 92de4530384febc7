/**
 * A MariaDB binlog dump: the replication protocol a replica speaks, from GTID state onwards.
 *
 *   mysql2 connect (handshake, any auth plugin, TLS) ─► SET @slave_connect_state, checksum,
 *   capability, heartbeat period ─► take the socket over ─► COM_REGISTER_SLAVE ─► OK
 *   ─► COM_BINLOG_DUMP ─► packets: 0x00 + event │ 0xff error │ 0xfe EOF (never: we block)
 *
 * mysql2 does the handshake and authentication (its own binlog support decodes four event types
 * and pushes events without backpressure); once the session is set up, this module owns the
 * socket: mysql2 has no command in flight and the server sends nothing unasked, so no byte is
 * lost in the hand-over. Events are handed out raw (`next()`), decoded by the caller.
 */
import type { Socket } from 'node:net';
import type mysql from 'mysql2/promise';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import { maskUri } from '../../errors/mask.ts';
import type { GtidList } from './gtid.ts';
import { PacketStream } from './packet-stream.ts';
import { wrapMysqlError } from './mysql-errors.ts';
import { connectSource, type SourceUri } from './source-uri.ts';

export interface BinlogDumpOptions {
  readonly source: SourceUri;
  /** Deliver the transactions after this GTID state (`''`: from the oldest binlog). */
  readonly from: GtidList;
  /** The replica server id we announce; unique among the source's replicas. */
  readonly serverId: number;
  /** The server sends a HEARTBEAT after this long without events. */
  readonly heartbeatMs: number;
}

export interface BinlogDump {
  /** Whether events end with a CRC32 (the server's `binlog_checksum`). */
  readonly checksum: boolean;
  /** Raw events (without the 0x00 status byte), as they arrived; waits for at least one. */
  next(): Promise<Buffer[]>;
  close(): void;
}

const COM_BINLOG_DUMP = 0x12;
const COM_REGISTER_SLAVE = 0x15;
/** `@mariadb_slave_capability`: GTID events (MARIA_SLAVE_CAPABILITY_GTID). */
const CAPABILITY_GTID = 4;

export async function openBinlogDump(o: BinlogDumpOptions): Promise<BinlogDump> {
  const uri = o.source.uri;
  let conn: mysql.Connection;
  try {
    conn = await connectSource(o.source);
  } catch (err) {
    throw wrapMysqlError(err, { role: 'source', uri, action: 'connecting for the binlog dump' });
  }
  let checksum: boolean;
  try {
    const [rows] = await conn.query('SELECT @@global.binlog_checksum AS c');
    checksum = String((rows as { c: string }[])[0]?.c ?? 'NONE').toUpperCase() === 'CRC32';
    await conn.query(`SET @master_binlog_checksum = @@global.binlog_checksum`);
    await conn.query(`SET @mariadb_slave_capability = ${CAPABILITY_GTID}`);
    await conn.query(`SET @slave_connect_state = ?`, [o.from.toString()]);
    await conn.query(`SET @slave_gtid_strict_mode = 1`);
    await conn.query(`SET @slave_gtid_ignore_duplicates = 0`);
    await conn.query(`SET @master_heartbeat_period = ?`, [Math.max(1, o.heartbeatMs) * 1_000_000]);
  } catch (err) {
    conn.destroy();
    throw wrapMysqlError(err, { role: 'source', uri, action: 'preparing the binlog dump' });
  }
  const core = (conn as unknown as { connection: { stream: Socket; on(e: string, f: () => void): void } })
    .connection;
  const socket = core.stream;
  core.on('error', () => {});
  socket.removeAllListeners('data');
  socket.removeAllListeners('end');
  socket.removeAllListeners('close');
  socket.removeAllListeners('error');
  const packets = new PacketStream(socket);
  const fail = (err: unknown) => {
    packets.close();
    conn.destroy();
    return err;
  };
  try {
    packets.writeCommand(registerSlave(o.serverId));
    const [reply] = await packets.next();
    if (reply?.[0] === 0xff) throw serverError(reply, uri);
    packets.writeCommand(binlogDump(o.serverId));
  } catch (err) {
    throw fail(err);
  }
  let pending: Buffer[] = [];
  return {
    checksum,
    async next() {
      for (;;) {
        if (pending.length === 0) pending = await packets.next();
        const out: Buffer[] = [];
        while (pending.length > 0) {
          const p = pending[0]!;
          if (p[0] === 0x00) {
            out.push(p.subarray(1));
            pending.shift();
            continue;
          }
          if (out.length > 0) break;
          pending.shift();
          if (p[0] === 0xff) throw serverError(p, uri);
          if (p[0] === 0xfe)
            throw new TidemarkError('SOURCE_STREAM_ENDED', {
              detail: `source ${maskUri(uri)} ended the binlog dump`,
            });
          throw new TidemarkError('SOURCE_PROTOCOL', {
            detail: `binlog dump packet starts with 0x${p[0]?.toString(16)}`,
          });
        }
        if (out.length > 0) return out;
      }
    },
    close() {
      packets.close();
      conn.destroy();
    },
  };
}

function registerSlave(serverId: number): Buffer {
  const b = Buffer.alloc(1 + 4 + 1 + 1 + 1 + 2 + 4 + 4);
  let o = b.writeUInt8(COM_REGISTER_SLAVE, 0);
  o = b.writeUInt32LE(serverId, o);
  o += 3; // empty host name, user, password
  o = b.writeUInt16LE(0, o);
  o = b.writeUInt32LE(0, o);
  b.writeUInt32LE(0, o);
  return b;
}

function binlogDump(serverId: number): Buffer {
  // Position and file name are ignored: @slave_connect_state says where to start.
  const b = Buffer.alloc(1 + 4 + 2 + 4);
  let o = b.writeUInt8(COM_BINLOG_DUMP, 0);
  o = b.writeUInt32LE(4, o);
  o = b.writeUInt16LE(0, o);
  b.writeUInt32LE(serverId, o);
  return b;
}

/** An ERR packet of the dump: 1236 means the binlog cannot serve the requested GTID state. */
function serverError(p: Buffer, uri: string): TidemarkError {
  const errno = p.length >= 3 ? p.readUInt16LE(1) : 0;
  const message = p.toString('utf8', p[3] === 0x23 ? 9 : 3);
  const detail = `source ${maskUri(uri)}: error ${errno}: ${message}`;
  if (errno === 1236) {
    if (/purged|too old|could not find gtid state/i.test(message))
      return new TidemarkError('SOURCE_BINLOG_PURGED', { detail });
    return new TidemarkError('SOURCE_BINLOG_POSITION_UNKNOWN', { detail });
  }
  if (errno === 1227 || errno === 1045 || errno === 1044) {
    return new TidemarkError('PERMISSION_DENIED', {
      detail,
      hint: 'GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO the user in the URI.',
    });
  }
  return new TidemarkError('SOURCE_STREAM_ENDED', { detail });
}

/**
 * Binlog events as the decoder hands them out (`binlog-decoder.ts`). Row images stay raw until
 * `row-decoder.ts` reads them with their table map: events of tables nobody replicates are never
 * decoded past their header.
 */

/** Event type codes (MariaDB `sql/log_event.h`, MySQL `libbinlogevents/include/binlog_event.h`). */
export const EventType = {
  QUERY: 2,
  STOP: 3,
  ROTATE: 4,
  INTVAR: 5,
  RAND: 13,
  USER_VAR: 14,
  FORMAT_DESCRIPTION: 15,
  XID: 16,
  TABLE_MAP: 19,
  WRITE_ROWS_V1: 23,
  UPDATE_ROWS_V1: 24,
  DELETE_ROWS_V1: 25,
  INCIDENT: 26,
  HEARTBEAT: 27,
  IGNORABLE: 28,
  ROWS_QUERY: 29,
  WRITE_ROWS_V2: 30,
  UPDATE_ROWS_V2: 31,
  DELETE_ROWS_V2: 32,
  MYSQL_GTID: 33,
  MYSQL_ANONYMOUS_GTID: 34,
  MYSQL_PREVIOUS_GTIDS: 35,
  XA_PREPARE: 38,
  PARTIAL_UPDATE_ROWS: 39,
  TRANSACTION_PAYLOAD: 40,
  HEARTBEAT_V2: 41,
  ANNOTATE_ROWS: 160,
  BINLOG_CHECKPOINT: 161,
  GTID: 162,
  GTID_LIST: 163,
  START_ENCRYPTION: 164,
  QUERY_COMPRESSED: 165,
  WRITE_ROWS_COMPRESSED_V1: 166,
  UPDATE_ROWS_COMPRESSED_V1: 167,
  DELETE_ROWS_COMPRESSED_V1: 168,
  WRITE_ROWS_COMPRESSED: 169,
  UPDATE_ROWS_COMPRESSED: 170,
  DELETE_ROWS_COMPRESSED: 171,
} as const;

/** The common v4 header (19 bytes). */
export interface EventHeader {
  /** Seconds since the Unix epoch when the statement started (the transaction's time). */
  readonly timestamp: number;
  readonly type: number;
  readonly serverId: number;
  /** Whole event, header and checksum included. */
  readonly size: number;
  /** Offset in the binlog file just after this event (0 for artificial events). */
  readonly logPos: number;
  readonly flags: number;
}

/** An XA transaction id (`XID` of `XA START`), printable as MariaDB's `XA RECOVER FORMAT='SQL'`. */
export interface XaId {
  readonly formatId: number;
  readonly gtrid: Buffer;
  readonly bqual: Buffer;
}

export function xaKey(x: XaId): string {
  return `X'${x.gtrid.toString('hex')}',X'${x.bqual.toString('hex')}',${x.formatId}`;
}

export interface TableMapColumn {
  /** The type code as the table map writes it (STRING for CHAR, ENUM and SET alike). */
  readonly type: number;
  /** ENUM/SET/CHAR/BINARY distinguished: the real type for STRING, else `type`. */
  readonly realType: number;
  /** Type metadata: length, precision/scale, pack length, fsp, bits (see the decoder). */
  readonly meta: number;
  readonly meta2: number;
  readonly nullable: boolean;
  /** From optional metadata (binlog_row_metadata=FULL); null when absent. */
  readonly name: string | null;
  readonly unsigned: boolean;
  /** Collation id for character columns, null otherwise or when absent. */
  readonly collation: number | null;
  readonly labels: readonly string[] | null;
}

export interface TableMap {
  readonly tableId: number;
  readonly schema: string;
  readonly table: string;
  readonly columns: readonly TableMapColumn[];
  /** Primary key column indexes from optional metadata, null when the map carries none. */
  readonly primaryKey: readonly number[] | null;
  /** True when the map carried column names (binlog_row_metadata=FULL). */
  readonly full: boolean;
}

export type RowsKind = 'insert' | 'update' | 'delete';

export interface RowsEvent {
  readonly tag: 'rows';
  readonly kind: RowsKind;
  readonly tableId: number;
  readonly flags: number;
  /** The event's bytes (without checksum) and where the column count starts. */
  readonly buf: Buffer;
  readonly bodyStart: number;
  readonly bodyEnd: number;
}

export type BinlogEvent =
  | {
      readonly tag: 'format';
      readonly binlogVersion: number;
      readonly serverVersion: string;
      readonly checksum: boolean;
    }
  /** `fake`: sent by the server at the start of a dump and at rotation, not in the file. */
  | { readonly tag: 'rotate'; readonly position: number; readonly file: string; readonly fake: boolean }
  | {
      readonly tag: 'gtid';
      readonly domain: number;
      readonly server: number;
      readonly seq: bigint;
      /** A DDL or non-transactional statement: the group is one QUERY, no BEGIN/COMMIT. */
      readonly standalone: boolean;
      readonly xa: { readonly phase: 'prepare' | 'complete'; readonly xid: XaId } | null;
    }
  | {
      readonly tag: 'gtid-list';
      readonly gtids: readonly { domain: number; server: number; seq: bigint }[];
    }
  | {
      readonly tag: 'mysql-gtid';
      readonly uuid: string;
      readonly gno: bigint;
      readonly tag2: string | null;
    }
  | { readonly tag: 'query'; readonly schema: string; readonly sql: string; readonly errorCode: number }
  | { readonly tag: 'xid'; readonly xid: bigint }
  | { readonly tag: 'xa-prepare'; readonly onePhase: boolean; readonly xid: XaId }
  | ({ readonly tag: 'table-map' } & TableMap)
  | RowsEvent
  | { readonly tag: 'heartbeat'; readonly file: string }
  | { readonly tag: 'annotate'; readonly sql: string }
  | { readonly tag: 'incident'; readonly code: number; readonly message: string }
  /** Understood and irrelevant to row replication (checkpoints, statement-based context, stop). */
  | { readonly tag: 'ignored' };

export type DecodedEvent = { readonly header: EventHeader; readonly event: BinlogEvent };

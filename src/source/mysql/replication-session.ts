/**
 * One binlog dump, decoded: raw events ─► `decodeEvent` (CRC32 checked) ─► `TransactionAssembler`
 * ─► batches of `SourceEvent`s, one batch per network read (an empty one when a heartbeat
 * arrived and nothing else: the source is idle, `sourceEnd` is current). Pull-based: the next read from the
 * socket happens when the consumer asks for the next batch (the socket pauses past 8 MiB).
 */
import type { ReplicationSession, SourceEvent } from '../connector.ts';
import type { TableSchema } from '../../core/table-schema.ts';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import { EventType } from './binlog-events.ts';
import { decodeEvent, HEADER_BYTES } from './binlog-decoder.ts';
import type { BinlogDump } from './binlog-dump.ts';
import type { BinlogPosition } from './binlog-position.ts';
import type { TransactionAssembler } from './transaction-assembler.ts';

export interface SessionOptions {
  readonly start: BinlogPosition;
  readonly dump: BinlogDump;
  readonly assembler: TransactionAssembler;
  /** The dump's first read (it proves the start position is still in the binlog). */
  readonly first: Buffer[];
  readonly onHeartbeat: () => void;
  readonly onAcknowledge: (position: BinlogPosition) => void;
  /** Tables captured after the session started (the registry the assembler reads). */
  readonly learn: (tables: readonly TableSchema[]) => void;
}

export class MysqlReplicationSession implements ReplicationSession<BinlogPosition> {
  private closed = false;
  private iterated = false;
  readonly events: AsyncIterable<readonly SourceEvent<BinlogPosition>[]>;

  readonly start: BinlogPosition;
  private readonly dump: BinlogDump;
  private readonly assembler: TransactionAssembler;
  private readonly first: Buffer[];

  constructor(private readonly o: SessionOptions) {
    this.start = o.start;
    this.dump = o.dump;
    this.assembler = o.assembler;
    this.first = o.first;
    this.events = {
      [Symbol.asyncIterator]: () => {
        if (this.iterated)
          throw new TidemarkError('INTERNAL', { detail: 'a replication session is read once' });
        this.iterated = true;
        return this.run();
      },
    };
  }

  get sourceEnd(): BinlogPosition | null {
    return this.assembler.sourceEnd;
  }

  /** MariaDB keeps binlogs by time and size, not by consumer: nothing to release (only noted). */
  acknowledge(position: BinlogPosition): void {
    this.o.onAcknowledge(position);
  }

  learn(tables: readonly TableSchema[]): void {
    this.o.learn(tables);
  }

  close(): Promise<void> {
    this.closed = true;
    this.dump.close();
    return Promise.resolve();
  }

  private async *run(): AsyncGenerator<readonly SourceEvent<BinlogPosition>[]> {
    let checksum = this.dump.checksum;
    let batch: Buffer[] | null = this.first;
    for (;;) {
      const out: SourceEvent<BinlogPosition>[] = [];
      let heartbeat = false;
      for (const raw of batch) {
        const d = decodeEvent(raw, 0, checksum);
        const e = d.event;
        if (e.tag === 'format') checksum = e.checksum;
        else if (e.tag === 'heartbeat') {
          heartbeat = true;
          this.o.onHeartbeat();
        }
        const body =
          e.tag === 'table-map' ? raw.subarray(HEADER_BYTES, raw.length - (checksum ? 4 : 0)) : undefined;
        if (d.header.type === EventType.TABLE_MAP) this.assembler.push(d, out, body);
        else this.assembler.push(d, out);
      }
      this.assembler.endBatch(out);
      // An empty batch on a heartbeat: the consumer sees `sourceEnd` move while nothing commits.
      if (out.length > 0 || heartbeat) yield out;
      try {
        batch = await this.dump.next();
      } catch (err) {
        if (this.closed) return;
        throw err;
      }
    }
  }
}

/**
 * Binlog events → `SourceEvent`s: transactions in commit order, each `begin · (change | schema)*
 * · commit(position)`, for the tables the registry follows.
 *
 * An event group (MariaDB) starts with a GTID event and ends as the table below says. Changes are
 * streamed as they are decoded (a huge transaction is never held whole), `begin` is emitted
 * before the group's first change, and a group without changes of followed tables emits nothing
 * but is remembered: the latest such position goes out as an empty transaction at the end of the
 * input batch or at a heartbeat, so an idle or unrelated source still advances the resolved
 * position. XA PREPARE groups are held until their XA COMMIT (emitted then, at the commit's GTID)
 * or XA ROLLBACK (dropped).
 *
 *   state     event                       → action                                       next
 *   idle      GTID (standalone)           open group                                      statement
 *   idle      GTID (transactional)        open group                                      transaction
 *   idle      GTID (XA prepare)           open group, buffer changes                      transaction
 *   idle      HEARTBEAT                   flush pending empty commit, note source end     idle
 *   transaction  QUERY BEGIN/XA START/XA END/SAVEPOINT   –                                transaction
 *   transaction  TABLE_MAP / ROWS         decode rows of followed tables → changes        transaction
 *   transaction  XID / QUERY COMMIT       close group → commit                            idle
 *   transaction  XA_PREPARE               one phase: close → commit; else hold buffer     idle
 *   transaction  QUERY DML (statement)    SOURCE_BINLOG_FORMAT                            –
 *   transaction  QUERY DDL (CREATE … SELECT) schema barrier, then its rows                transaction
 *   statement    QUERY XA COMMIT/ROLLBACK emit held buffer / drop it, close              idle
 *   statement    QUERY DDL                schema barriers / truncate, close               idle
 *   any       INCIDENT                    SOURCE_BINLOG_INCIDENT                          –
 */
import type { SourceEvent } from '../connector.ts';
import type { Row } from '../../core/row.ts';
import type { SchemaChange } from '../../core/schema-change.ts';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import {
  xaKey,
  type DecodedEvent,
  type EventHeader,
  type RowsEvent,
  type TableMap,
} from './binlog-events.ts';
import { BinlogPosition } from './binlog-position.ts';
import type { CollationTable } from './charsets.ts';
import { parseDdl, type Ddl } from './ddl-parser.ts';
import type { GtidList, MariaGtid } from './gtid.ts';
import { decodeRows, mapTable, type MappedTable } from './row-decoder.ts';
import type { TableRegistry } from './table-registry.ts';
import {
  applyAlter,
  diffShapes,
  makeShape,
  sameColumns,
  shapeFromMap,
  typedFromDef,
  type Shape,
} from './table-shapes.ts';

type Phase = 'idle' | 'transaction' | 'statement';

interface Group {
  readonly gtid: MariaGtid;
  readonly before: GtidList;
  readonly timeMs: number;
  /** Delivered before (`after` of the session includes it): decoded for XA only, never emitted. */
  readonly skip: boolean;
  readonly xa: { phase: 'prepare' | 'complete'; key: string } | null;
  begun: boolean;
  /** XA PREPARE groups hold their changes here. */
  readonly held: SourceEvent<BinlogPosition>[] | null;
  readonly maps: Map<number, MappedTable>;
  /** Table ids (stream's) whose map was checked against the registry in this group. */
  readonly checked: Set<number>;
}

export interface AssemblerOptions {
  readonly registry: TableRegistry;
  readonly collations: CollationTable;
  /** The GTID state the dump starts from. */
  readonly from: GtidList;
  /** Transactions included here were delivered already (the session's `after`). */
  readonly delivered: GtidList;
}

export class TransactionAssembler {
  private phase: Phase = 'idle';
  private group: Group | null = null;
  private state: GtidList;
  private file = '';
  private readonly held = new Map<string, { events: SourceEvent<BinlogPosition>[]; before: GtidList }>();
  /** The last transaction without changes of followed tables, not yet passed on. */
  private pendingEmpty: { position: BinlogPosition; commitTimeMs: number } | null = null;
  /** The source's end as last seen (heartbeats, commits). */
  sourceEnd: BinlogPosition | null = null;
  /** Compiled table maps by the map's body bytes (ids are reused; shapes change only via DDL). */
  private readonly mapCache = new Map<number, { body: Buffer; mapped: MappedTable }>();

  constructor(private readonly o: AssemblerOptions) {
    this.state = o.from;
  }

  /** Whether a table map's body (bytes after the header) is known for its table id. */
  cachedMap(tableId: number, body: Buffer): MappedTable | undefined {
    const c = this.mapCache.get(tableId);
    return c !== undefined && c.body.equals(body) ? c.mapped : undefined;
  }

  /** Feeds one decoded event; appends what it produces to `out`. */
  push(d: DecodedEvent, out: SourceEvent<BinlogPosition>[], mapBody?: Buffer): void {
    const { header: h, event: e } = d;
    switch (e.tag) {
      case 'rotate':
        this.file = e.file;
        return;
      case 'heartbeat':
        if (e.file !== '') this.file = e.file;
        this.sourceEnd = this.position().withCoordinate({ file: this.file, offset: h.logPos });
        if (this.phase === 'idle') this.flush(out);
        return;
      case 'incident':
        throw new TidemarkError('SOURCE_BINLOG_INCIDENT', { detail: `incident ${e.code}: ${e.message}` });
      case 'gtid':
        this.open(
          h,
          e.domain,
          e.server,
          e.seq,
          e.standalone,
          e.xa === null ? null : { phase: e.xa.phase, key: xaKey(e.xa.xid) },
        );
        return;
      case 'table-map':
        if (this.group) this.onTableMap(e, mapBody);
        return;
      case 'rows':
        if (this.group) this.onRows(e, out);
        return;
      case 'xid':
        if (this.phase === 'transaction') this.close(h, out);
        return;
      case 'xa-prepare':
        if (this.phase !== 'transaction' || !this.group) return;
        if (e.onePhase || this.group.xa === null) {
          this.close(h, out);
        } else {
          this.held.set(this.group.xa.key, { events: this.group.held ?? [], before: this.group.before });
          this.close(h, out, true);
        }
        return;
      case 'query':
        this.onQuery(h, e.schema, e.sql, e.errorCode, out);
        return;
      default:
        return;
    }
  }

  /** End of an input batch: emit the pending empty transaction, if any. */
  endBatch(out: SourceEvent<BinlogPosition>[]): void {
    if (this.phase === 'idle') this.flush(out);
  }

  private open(
    h: EventHeader,
    domain: number,
    server: number,
    seq: bigint,
    standalone: boolean,
    xa: Group['xa'],
  ): void {
    const gtid = { domain, server, seq };
    this.group = {
      gtid,
      before: this.state,
      timeMs: h.timestamp * 1000,
      skip: this.o.delivered.includes(gtid),
      xa,
      begun: false,
      held: xa?.phase === 'prepare' ? [] : null,
      maps: new Map(),
      checked: new Set(),
    };
    this.phase = standalone ? 'statement' : 'transaction';
  }

  private position(): BinlogPosition {
    const oldest = this.held.values().next();
    return new BinlogPosition(this.state, oldest.done ? null : oldest.value.before, {
      file: this.file,
      offset: 0,
    });
  }

  private close(h: EventHeader, out: SourceEvent<BinlogPosition>[], holding = false): void {
    const g = this.group!;
    this.state = this.state.with(g.gtid);
    const position = this.position().withCoordinate({ file: this.file, offset: h.logPos });
    this.sourceEnd = position;
    if (g.begun && !holding) {
      out.push({ tag: 'commit', position, commitTimeMs: h.timestamp * 1000 });
      this.pendingEmpty = null;
    } else if (!g.skip) {
      this.pendingEmpty = { position, commitTimeMs: h.timestamp * 1000 };
    }
    this.group = null;
    this.phase = 'idle';
  }

  private flush(out: SourceEvent<BinlogPosition>[]): void {
    const p = this.pendingEmpty;
    if (p === null) return;
    this.pendingEmpty = null;
    // The source's commit time, so lag in seconds stays true while unrelated transactions are
    // caught up with.
    out.push(
      { tag: 'begin', commitTimeMs: p.commitTimeMs },
      { tag: 'commit', position: p.position, commitTimeMs: p.commitTimeMs },
    );
  }

  private emit(ev: SourceEvent<BinlogPosition>, out: SourceEvent<BinlogPosition>[]): void {
    const g = this.group!;
    if (g.held) {
      g.held.push(ev);
      return;
    }
    if (g.skip) return;
    if (!g.begun) {
      g.begun = true;
      // This transaction's commit will pass any pending empty one.
      this.pendingEmpty = null;
      out.push({ tag: 'begin', commitTimeMs: g.timeMs });
    }
    out.push(ev);
  }

  private onTableMap(m: { tableId: number } & TableMap, body: Buffer | undefined): void {
    const g = this.group!;
    if (!this.o.registry.byName(m.schema, m.table)) return;
    let mapped = body === undefined ? undefined : this.cachedMap(m.tableId, body);
    if (mapped === undefined) {
      mapped = mapTable(m, this.o.collations);
      if (body !== undefined) this.mapCache.set(m.tableId, { body: Buffer.from(body), mapped });
    }
    g.maps.set(m.tableId, mapped);
  }

  private onRows(e: RowsEvent, out: SourceEvent<BinlogPosition>[]): void {
    const g = this.group!;
    const mapped = g.maps.get(e.tableId);
    if (!mapped) return;
    if (g.skip && !g.held) return;
    let shape = this.o.registry.byName(mapped.schema, mapped.table)!;
    if (!g.checked.has(e.tableId)) {
      g.checked.add(e.tableId);
      const seen = shapeFromMap(mapped, shape.table.relationId);
      if (!sameColumns(shape.table, seen.table)) {
        const { changes, recopy } = diffShapes(shape, seen);
        this.o.registry.track(seen);
        this.emit(
          {
            tag: 'schema',
            change: {
              kind: 'table-altered',
              before: shape.table,
              after: seen.table,
              columns: changes,
              recopy,
              ddl: null,
            },
          },
          out,
        );
        shape = seen;
      }
    }
    const table = shape.table;
    for (const r of decodeRows(e, mapped)) {
      if (e.kind === 'insert') this.emit({ tag: 'insert', table, row: r.after! }, out);
      else if (e.kind === 'delete') this.emit({ tag: 'delete', table, old: r.before! }, out);
      else this.emit({ tag: 'update', table, row: r.after!, old: r.before as Row, oldIsFull: true }, out);
    }
  }

  private onQuery(
    h: EventHeader,
    schema: string,
    sql: string,
    errorCode: number,
    out: SourceEvent<BinlogPosition>[],
  ): void {
    const g = this.group;
    const head = sql.trimStart().slice(0, 24).toUpperCase();
    if (this.phase === 'transaction') {
      if (head.startsWith('COMMIT')) return this.close(h, out);
      if (/^(BEGIN|START|XA |SAVEPOINT|ROLLBACK TO|RELEASE)/.test(head)) return;
      if (/^(INSERT|UPDATE|DELETE|REPLACE|LOAD)/.test(head) && this.o.registry.watches(schema)) {
        throw new TidemarkError('SOURCE_BINLOG_FORMAT', {
          detail: `a statement of database ${schema} was logged as SQL, not rows (a session with binlog_format=STATEMENT?): ${sql.slice(0, 200)}`,
        });
      }
      // CREATE TABLE … SELECT: the DDL opens a transaction that goes on with the copied rows.
      if (errorCode === 0 && g && !g.skip) {
        const ddl = parseDdl(sql, schema);
        if (ddl) this.applyDdl(ddl, sql, out);
      }
      return;
    }
    if (this.phase !== 'statement' || !g) return;
    if (g.xa?.phase === 'complete') {
      const held = this.held.get(g.xa.key);
      this.held.delete(g.xa.key);
      if (/^XA\s+COMMIT/.test(head) && !g.skip) {
        if (held === undefined) {
          throw new TidemarkError('SOURCE_PROTOCOL', {
            detail: `XA transaction ${g.xa.key} committed, but it was prepared before the changefeed's start: its rows are not in the part of the binlog read`,
            hint: 'Reset the changefeed (new snapshot) once no XA transaction is left prepared on the source (XA RECOVER).',
          });
        }
        for (const ev of held.events) this.emit(ev, out);
      }
      return this.close(h, out);
    }
    if (errorCode === 0 && !g.skip) {
      const ddl = parseDdl(sql, schema);
      if (ddl) this.applyDdl(ddl, sql, out);
    }
    this.close(h, out);
  }

  private applyDdl(ddl: Ddl, sql: string, out: SourceEvent<BinlogPosition>[]): void {
    const reg = this.o.registry;
    const barrier = (change: SchemaChange) => this.emit({ tag: 'schema', change }, out);
    switch (ddl.kind) {
      case 'create': {
        if (!reg.watches(ddl.table.schema) || reg.byName(ddl.table.schema, ddl.table.name)) return;
        const id = reg.idFor(ddl.table.schema, ddl.table.name);
        let shape: Shape | null = null;
        if (ddl.like) {
          const src = reg.byName(ddl.like.schema, ddl.like.name);
          if (src)
            shape = {
              table: { ...src.table, schema: ddl.table.schema, name: ddl.table.name, relationId: id },
              types: src.types,
            };
        } else if (ddl.columns) {
          const where = `${ddl.table.schema}.${ddl.table.name}`;
          shape = makeShape(
            { ...ddl.table, relationId: id },
            ddl.columns.filter((c) => !c.generated || true).map((c) => typedFromDef(c, where)),
            ddl.primaryKey,
          );
        }
        if (shape === null) return;
        reg.track(shape);
        // A full row image replicates any table, with a key or without.
        barrier({ kind: 'table-created', table: shape.table, unreplicable: null, ddl: sql });
        return;
      }
      case 'drop':
        for (const t of ddl.tables) {
          const s = reg.byName(t.schema, t.name);
          if (!s) continue;
          reg.drop(s.table.relationId);
          barrier({ kind: 'table-dropped', tableId: s.table.relationId, table: s.table, ddl: sql });
        }
        return;
      case 'drop-database':
        for (const s of reg.all()) {
          if (s.table.schema !== ddl.schema) continue;
          reg.drop(s.table.relationId);
          barrier({ kind: 'table-dropped', tableId: s.table.relationId, table: s.table, ddl: sql });
        }
        return;
      case 'rename':
        for (const { from, to } of ddl.pairs) {
          const s = reg.byName(from.schema, from.name);
          if (!s) continue;
          const after: Shape = { table: { ...s.table, schema: to.schema, name: to.name }, types: s.types };
          reg.track(after);
          barrier({
            kind: 'table-altered',
            before: s.table,
            after: after.table,
            columns: [],
            recopy: null,
            ddl: sql,
          });
        }
        return;
      case 'truncate': {
        const s = reg.byName(ddl.table.schema, ddl.table.name);
        if (s) this.emit({ tag: 'truncate', tables: [s.table] }, out);
        return;
      }
      case 'alter': {
        const s = reg.byName(ddl.table.schema, ddl.table.name);
        if (!s) return;
        const r = applyAlter(s, ddl.ops, ddl.renameTo);
        if (
          sameColumns(s.table, r.after.table) &&
          s.table.name === r.after.table.name &&
          s.table.schema === r.after.table.schema
        )
          return;
        reg.track(r.after);
        barrier({
          kind: 'table-altered',
          before: s.table,
          after: r.after.table,
          columns: r.changes,
          recopy: r.recopy,
          ddl: sql,
        });
        return;
      }
    }
  }
}

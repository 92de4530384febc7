/**
 * The initial copy: every reader inside `START TRANSACTION WITH CONSISTENT SNAPSHOT`, whose binlog
 * position MariaDB reports without any lock (`Binlog_snapshot_file/position`, turned into a GTID
 * list by `BINLOG_GTID_POS`), so the rows equal the source at exactly that position P and
 * `replicate(after P)` continues with the next transaction.
 *
 *   reader 1: START TRANSACTION WITH CONSISTENT SNAPSHOT → (file, pos)₁ ─┐ all equal? → P
 *   reader N: …                                          → (file, pos)ₙ ─┘ else reopen (then 1 reader)
 *   readers take chunks (primary-key ranges, any key type, bounds compared in the key's own
 *   collation by a row comparison) ─► bounded queue ─► consumer
 *
 * MariaDB cannot share one snapshot between connections (PostgreSQL exports one), so parallel
 * readers are only used when their snapshots opened at the same binlog position; under a write
 * load that keeps them apart, the copy runs on one reader, still exact.
 */
import type { Connection } from 'mysql2/promise';
import type { SnapshotRows } from '../../core/epoch.ts';
import type { Row } from '../../core/row.ts';
import { formatFloat4, formatFloat8 } from '../../decode/pg-values.ts';
import { BoundedQueue } from '../../core/bounded-queue.ts';
import { BinlogPosition } from './binlog-position.ts';
import type { MysqlType } from './column-types.ts';
import { GtidList } from './gtid.ts';
import { wrapMysqlError } from './mysql-errors.ts';
import { connectSource, type SourceUri } from './source-uri.ts';
import type { Shape } from './table-shapes.ts';

export interface OpenedSnapshot {
  readonly position: BinlogPosition;
  readonly readers: Connection[];
}

const OPEN_ATTEMPTS = 5;

/** Opens `parallelism` readers at one binlog position (fewer when the source keeps moving). */
export async function openSnapshot(source: SourceUri, parallelism: number): Promise<OpenedSnapshot> {
  const want = Math.max(1, parallelism);
  for (let attempt = 0; ; attempt++) {
    const n = attempt < OPEN_ATTEMPTS ? want : 1;
    const readers: Connection[] = [];
    try {
      const at: { file: string; pos: number }[] = [];
      for (let i = 0; i < n; i++) readers.push(await connect(source));
      // Open the snapshots at once (they often land between the same two commits), then
      // compare where each one sits in the binlog.
      await Promise.all(readers.map((r) => r.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY')));
      for (const r of readers) at.push(await snapshotCoordinate(r));
      const first = at[0]!;
      if (at.every((a) => a.file === first.file && a.pos === first.pos)) {
        const [rows] = await readers[0]!.query('SELECT BINLOG_GTID_POS(?, ?) AS g', [first.file, first.pos]);
        const gtid = (rows as unknown as [string | null][])[0]?.[0];
        if (gtid === null || gtid === undefined) {
          throw new Error(`BINLOG_GTID_POS(${first.file}, ${first.pos}) is NULL`);
        }
        const position = new BinlogPosition(GtidList.parse(gtid), null, {
          file: first.file,
          offset: first.pos,
        });
        return { position, readers };
      }
    } catch (err) {
      await Promise.all(readers.map((r) => r.end().catch(() => {})));
      throw wrapMysqlError(err, { role: 'source', uri: source.uri, action: 'opening the snapshot' });
    }
    await Promise.all(readers.map((r) => r.end().catch(() => {})));
  }
}

async function connect(source: SourceUri): Promise<Connection> {
  const c = await connectSource(source, { rowsAsArray: true });
  await c.query("SET SESSION time_zone = '+00:00'");
  await c.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
  return c;
}

async function snapshotCoordinate(c: Connection): Promise<{ file: string; pos: number }> {
  const [rows] = await c.query("SHOW STATUS LIKE 'binlog_snapshot_%'");
  const vars = new Map((rows as unknown as [string, string][]).map(([k, v]) => [k.toLowerCase(), v]));
  const file = vars.get('binlog_snapshot_file');
  const pos = Number(vars.get('binlog_snapshot_position'));
  if (!file || !Number.isFinite(pos))
    throw new Error('the server reports no binlog snapshot position (is log_bin on?)');
  return { file, pos };
}

interface Chunk {
  readonly shape: Shape;
  readonly where: string;
  readonly params: unknown[];
}

/** Reads `shapes` through the opened readers; ends the readers' transactions when done. */
export async function* readSnapshot(
  source: SourceUri,
  opened: OpenedSnapshot,
  shapes: readonly Shape[],
  options: { chunkRows: number; batchRows?: number; bufferBytes?: number },
): AsyncGenerator<SnapshotRows> {
  const queue = new BoundedQueue<SnapshotRows>({ capacityBytes: options.bufferBytes ?? 32 * 1024 * 1024 });
  const chunks: Chunk[] = [];
  try {
    for (const s of shapes) chunks.push(...(await planChunks(opened.readers[0]!, s, options.chunkRows)));
  } catch (err) {
    throw wrapMysqlError(err, { role: 'source', uri: source.uri, action: 'planning the snapshot' });
  }
  let next = 0;
  const worker = async (c: Connection) => {
    for (;;) {
      const chunk = chunks[next++];
      if (!chunk) return;
      await readChunk(c, chunk, options.batchRows ?? 2000, queue);
    }
  };
  const workers = Promise.all(opened.readers.map(worker)).then(
    () => queue.close(),
    (err: unknown) =>
      queue.fail(wrapMysqlError(err, { role: 'source', uri: source.uri, action: 'reading the snapshot' })),
  );
  try {
    yield* queue;
    await workers;
  } finally {
    queue.fail(new Error('snapshot reader closed'));
  }
}

const ident = (name: string) => `\`${name.replaceAll('`', '``')}\``;
const tableRef = (s: Shape) => `${ident(s.table.schema)}.${ident(s.table.name)}`;

/** The select expression of a column: exact text for every type (see `snapshotCell`). */
function selectExpr(name: string, t: MysqlType): string {
  if (t.kind === 'geometry') return `ST_AsBinary(${ident(name)})`;
  if (t.kind === 'float') return `CAST(${ident(name)} AS DOUBLE)`;
  return ident(name);
}

async function planChunks(c: Connection, s: Shape, chunkRows: number): Promise<Chunk[]> {
  const whole: Chunk = { shape: s, where: '1', params: [] };
  if (s.table.keyless) return [whole];
  const [est] = await c.query(
    'SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?',
    [s.table.schema, s.table.name],
  );
  const rows = Number((est as unknown as [number | string][])[0]?.[0] ?? 0);
  if (rows <= chunkRows) return [whole];
  const keys = s.table.keyColumns.map((i) => ident(s.table.columns[i]!.name));
  const keyList = keys.join(', ');
  const [bounds] = await c.query({
    sql: `SELECT ${keyList} FROM (SELECT ${keyList}, ROW_NUMBER() OVER (ORDER BY ${keyList}) AS rn FROM ${tableRef(s)}) b WHERE rn % ? = 0 ORDER BY ${keyList}`,
    values: [chunkRows],
  });
  const row = `(${keyList})`;
  const tuple = `(${keys.map(() => '?').join(', ')})`;
  const out: Chunk[] = [];
  let lower: unknown[] | null = null;
  for (const b of bounds as unknown as unknown[][]) {
    out.push(
      lower === null
        ? { shape: s, where: `${row} <= ${tuple}`, params: b }
        : { shape: s, where: `${row} > ${tuple} AND ${row} <= ${tuple}`, params: [...lower, ...b] },
    );
    lower = b;
  }
  out.push(lower === null ? whole : { shape: s, where: `${row} > ${tuple}`, params: lower });
  return out;
}

async function readChunk(
  c: Connection,
  chunk: Chunk,
  batchRows: number,
  queue: BoundedQueue<SnapshotRows>,
): Promise<void> {
  const { shape } = chunk;
  const cols = shape.table.columns.map((col, i) => selectExpr(col.name, shape.types[i]!)).join(', ');
  const converters = shape.types.map(snapshotCell);
  const core = (
    c as unknown as {
      connection: { query(o: object, v: unknown[]): { stream(o: object): AsyncIterable<Buffer[]> } };
    }
  ).connection;
  const stream = core
    .query(
      {
        sql: `SELECT ${cols} FROM ${tableRef(shape)} WHERE ${chunk.where}`,
        rowsAsArray: true,
        typeCast: rawCast,
      },
      chunk.params,
    )
    .stream({ highWaterMark: batchRows });
  let batch: Row[] = [];
  let bytes = 0;
  for await (const raw of stream) {
    const row: Row = new Array<string | null>(raw.length);
    for (let i = 0; i < raw.length; i++) {
      const b = raw[i] ?? null;
      row[i] = b === null ? null : converters[i]!(b);
      bytes += b === null ? 1 : b.length;
    }
    batch.push(row);
    if (batch.length >= batchRows) {
      await queue.push({ table: shape.table, rows: batch }, bytes);
      batch = [];
      bytes = 0;
    }
  }
  if (batch.length > 0) await queue.push({ table: shape.table, rows: batch }, bytes);
}

const rawCast = (field: { buffer(): Buffer | null }) => field.buffer();

/** Text-protocol bytes of one value → the same cell the binlog decoder produces. */
export function snapshotCell(t: MysqlType): (b: Buffer) => string | null {
  const text = (b: Buffer) => b.toString('utf8');
  switch (t.kind) {
    case 'int':
    case 'decimal':
      return text;
    case 'year':
      return (b) => String(Number(text(b)));
    case 'float':
      return (b) => formatFloat4(Number(text(b)));
    case 'double':
      return (b) => formatFloat8(Number(text(b)));
    case 'date':
      return (b) => {
        const s = text(b);
        return /^\d{4}-00-|-00$/.test(s) ? null : s;
      };
    case 'datetime':
      return (b) => {
        const s = text(b);
        return /^\d{4}-00-|^\d{4}-\d\d-00/.test(s) ? null : trimFraction(s);
      };
    case 'timestamp':
      return (b) => {
        const s = text(b);
        return s.startsWith('0000-00-00') ? null : `${trimFraction(s)}+00`;
      };
    case 'time':
      return (b) => trimFraction(text(b));
    case 'string':
    case 'blob':
      return t.binary ? (b) => `\\x${b.toString('hex')}` : text;
    case 'enum':
    case 'set':
    case 'json':
      return text;
    case 'bit':
      return (b) => {
        let s = '';
        for (const byte of b) s += byte.toString(2).padStart(8, '0');
        return s.slice(-t.bits).padStart(t.bits, '0');
      };
    case 'geometry':
      return (b) => `\\x${b.toString('hex')}`;
  }
}

function trimFraction(s: string): string {
  return s.replace(/\.(\d*?)0*$/, (_, d: string) => (d === '' ? '' : `.${d}`));
}

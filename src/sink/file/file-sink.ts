/**
 * Effectively-once sink into a directory of files (`file:///dir?format=jsonl|csv`).
 *
 *   epoch N ──► <N>-<w>-<schema>.<table>.<ext>  one data file per table (fsynced); <w> names the
 *                                               writing instance, so two writers never share a file
 *           ──► manifest-<N>.json               written to a temp file, fsynced, then link()ed to
 *                                               its name — which fails if it exists: the commit
 *                                               point, and the fence
 *           ──► _latest                         {manifest, epoch, position}, replaced by rename
 *
 * A reader that follows manifests (or `_latest`) never sees a partial epoch: data files become
 * part of the output only when the manifest naming them exists. N is zero-padded to 20 digits;
 * epoch 0 is the first snapshot, and a manifest with `"snapshot": true` is a snapshot that
 * replaces everything before it (sink.ts `writeSnapshot`). Record formats: `file-records.ts`.
 *
 * One writer: `open()` takes the newest manifest as the checkpoint, and the next commit must be
 * the manifest numbered one above it, created exclusively (`link()` never replaces a name). If
 * another writer created it first, nothing of this epoch is named by any manifest: SINK_FENCED.
 * `open()` deletes data files no manifest names up to the newest epoch (a crash between data and
 * manifest, or a fenced writer's), never later ones (another writer may be writing them), and
 * temp files only of its own changefeed (`….tidemark-<changefeed>.tmp`): the directory may be
 * shared with other programs.
 *
 * An epoch in chunks (`beginEpoch`) appends each table's records chunk after chunk to one file
 * per table; its number is known only at the commit, so the files are written under temp names
 * and renamed to their epoch's names before the manifest is written. Their records carry
 * `position: null` (the end position is not known while they are written): the manifest's
 * position applies. A table whose columns change between chunks continues in a second file, and
 * so does a table whose chunk starts with key moves right after the previous chunk's key moves
 * (a reader applies one run of `from_key` records against the rows before the run: see
 * docs/sinks.md), both in `EpochFiles`.
 */
import { link, mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { TableSchema } from '../../core/table-schema.ts';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import type { EpochWriter, Sink } from '../sink.ts';
import type { Checkpoint, Epoch, SnapshotRows, TableChanges } from '../../core/epoch.ts';
import { CheckpointFence, type StoredCheckpoint } from '../shared/checkpoint-fence.ts';
import { EpochWriterSlot } from '../shared/epoch-writer-slot.ts';
import type { SchemaChange } from '../../core/schema-change.ts';
import { RecordEncoder, type FileFormat } from './file-records.ts';

export interface FileSinkOptions {
  /** `file:///abs/dir?format=jsonl|csv` (default jsonl). */
  readonly uri: string;
  readonly changefeedId: string;
}

export interface FileManifest {
  readonly changefeed: string;
  readonly epoch: number;
  readonly position: string;
  readonly commitTimeMs: number;
  readonly format: FileFormat;
  /** True for a snapshot: a reader starts over (every table empty) before applying its files. */
  readonly snapshot?: boolean;
  /** The process that committed it (host, pid, sink instance). */
  readonly writer?: string;
  readonly files: readonly {
    readonly schema: string;
    readonly table: string;
    readonly path: string;
    readonly rows: number;
    /**
     * Set on a schema-change record (a barrier): `path` is a one-line JSON file
     * `{"op":"schema","change":…}`; files of its table listed before it have the old shape,
     * those after it the new one (docs/sinks.md, "Schema changes").
     */
    readonly schemaChange?: SchemaChange['kind'];
  }[];
}

const FLUSH_BYTES = 1 << 20;

export function fileEpochName(epoch: number): string {
  return String(epoch).padStart(20, '0');
}

export function createFileSink(options: FileSinkOptions): FileSink {
  return new FileSink(options);
}

export class FileSink implements Sink {
  readonly guarantee = 'effectively-once' as const;
  readonly #dir: string;
  readonly #format: FileFormat;
  readonly #changefeedId: string;
  #opened = false;
  readonly #epochSlot = new EpochWriterSlot('file sink');
  readonly #fence: CheckpointFence;

  constructor(options: FileSinkOptions) {
    const { dir, format } = parseFileUri(options.uri);
    this.#dir = dir;
    this.#format = format;
    this.#changefeedId = options.changefeedId;
    this.#fence = new CheckpointFence(`file sink ${dir}`);
  }

  /**
   * Creates the directory, reads the newest manifest (the checkpoint), deletes data files no
   * manifest names up to its epoch and this changefeed's temp files.
   */
  async open(): Promise<Checkpoint | null> {
    await this.#io('creating the directory', () => mkdir(this.#dir, { recursive: true }));
    const names = await this.#io('listing the directory', () => readdir(this.#dir));
    const manifests = names.filter((n) => MANIFEST_NAME.test(n)).sort();
    const listed = new Set<string>();
    let newest: FileManifest | null = null;
    for (const m of manifests) {
      const manifest = await this.#readManifest(m);
      for (const f of manifest.files) listed.add(f.path);
      newest = manifest;
    }
    const ownTemp = tempSuffix(this.#changefeedId);
    for (const n of names) {
      const epoch = /^(\d{20})-.*\.(jsonl|csv|schema\.json)$/.exec(n)?.[1];
      const orphan =
        epoch !== undefined && !listed.has(n) && newest !== null && Number(epoch) <= newest.epoch;
      if (orphan || n.endsWith(ownTemp))
        await this.#io('removing an orphan file', () => rm(join(this.#dir, n), { force: true }));
    }
    this.#opened = true;
    return this.#fence.opened(newest && stored(newest));
  }

  /** Writes epoch 0: one file per table (empty tables get an empty file), then its manifest. */
  async writeSnapshot(
    tables: readonly TableSchema[],
    chunks: AsyncIterable<SnapshotRows>,
    at: Checkpoint,
  ): Promise<void> {
    await this.#checkOrder(at);
    const files = this.#files(at.epoch);
    try {
      for (const t of tables) await files.table(t);
      for await (const chunk of chunks) {
        const f = await files.table(chunk.table);
        for (const r of chunk.rows) await f.write(f.encoder.snapshotRow(r, at.position));
      }
      await this.#publish(at, Date.now(), await files.finish(at.epoch), { snapshot: true });
    } catch (err) {
      await files.abandon();
      throw err instanceof TidemarkError ? err : this.#wrap('writing the snapshot', err);
    }
  }

  /** Writes one file per changed table, then the manifest (the commit point). */
  async commitEpoch(epoch: Epoch): Promise<void> {
    const writer = await this.beginEpoch();
    await writer.commit(epoch);
  }

  /**
   * The epoch's data files, opened as its chunks name tables and appended to chunk after chunk;
   * the manifest at the commit. With no chunk before the commit, exactly `commitEpoch`'s files.
   */
  async beginEpoch(): Promise<EpochWriter> {
    if (!this.#opened) throw new TidemarkError('INTERNAL', { detail: 'file sink used before open()' });
    let files: EpochFiles | null = null;
    const write = async (f: EpochFiles, tables: readonly TableChanges[], position: string | null) => {
      for (const tc of tables) {
        const moves = moveRun(tc);
        const out = await f.table(tc.table, { startsWithMoves: moves.first });
        for (const line of out.encoder.changes(tc, position)) await out.write(line);
        out.endsWithMoves = moves.last;
      }
    };
    const wrap = (action: string, err: unknown) =>
      err instanceof TidemarkError ? err : this.#wrap(action, err);
    return this.#epochSlot.open({
      applyChunk: async (tables, chunk) => {
        try {
          files ??= this.#files(null);
          await write(files, tables, null);
        } catch (err) {
          throw wrap(`writing chunk ${chunk} of an epoch`, err);
        }
      },
      commit: async (epoch, chunks) => {
        const cp = epoch.checkpoint;
        try {
          await this.#checkOrder(cp);
          files ??= this.#files(cp.epoch);
          await write(files, epoch.tables, chunks > 0 ? null : cp.position);
          await this.#publish(cp, epoch.commitTimeMs, await files.finish(cp.epoch), { snapshot: false });
        } catch (err) {
          throw wrap(`writing epoch ${cp.epoch}`, err);
        }
      },
      applySchema: async (change) => {
        try {
          files ??= this.#files(null);
          await files.schemaChange(change);
        } catch (err) {
          throw wrap(`writing a schema change (${change.kind})`, err);
        }
      },
      discard: async () => {
        await files?.abandon();
      },
    });
  }

  async close(): Promise<void> {
    this.#opened = false;
  }

  /**
   * The commit: the manifest, fsynced under a temp name, then link()ed to its name, which fails
   * if another writer created it first (SINK_FENCED; this epoch's files are removed again).
   */
  async #publish(
    cp: Checkpoint,
    commitTimeMs: number,
    files: FileManifest['files'],
    o: { snapshot: boolean },
  ): Promise<void> {
    const manifest: FileManifest = {
      changefeed: this.#changefeedId,
      epoch: cp.epoch,
      position: cp.position,
      commitTimeMs,
      format: this.#format,
      ...(o.snapshot ? { snapshot: true } : {}),
      writer: this.#fence.writer,
      files,
    };
    const name = `manifest-${fileEpochName(cp.epoch)}.json`;
    const tmp = join(this.#dir, this.#tempName(name));
    await writeSynced(tmp, `${JSON.stringify(manifest, null, 2)}\n`);
    try {
      await link(tmp, join(this.#dir, name));
    } catch (err) {
      if ((err as { code?: string }).code !== 'EEXIST') throw err;
      const other = await this.#readManifest(name).catch(() => null);
      throw this.#fence.fenced(other && stored(other), cp);
    } finally {
      await rm(tmp, { force: true });
    }
    await syncDir(this.#dir);
    this.#fence.committed(cp);
    // `_latest` is a convenience for readers; the manifest above is the commit point.
    const latest = this.#tempName('_latest');
    await writeSynced(
      join(this.#dir, latest),
      `${JSON.stringify({ manifest: name, epoch: cp.epoch, position: cp.position })}\n`,
    );
    await rename(join(this.#dir, latest), join(this.#dir, '_latest'));
    await syncDir(this.#dir);
  }

  /**
   * The fence's preconditions: after `open()`, later than the checkpoint held, and exactly the
   * next number — creating manifest N exclusively fences only if every writer's next is N.
   */
  async #checkOrder(cp: Checkpoint): Promise<void> {
    if (!this.#opened) throw new TidemarkError('INTERNAL', { detail: 'file sink used before open()' });
    this.#fence.assertAdvances(cp);
    const next = (this.#fence.expected?.epoch ?? -1) + 1;
    if (cp.epoch !== next) {
      // The epoch this instance should commit next exists: another writer committed it.
      const other = await this.#readManifest(`manifest-${fileEpochName(next)}.json`).catch(() => null);
      if (other) throw this.#fence.fenced(stored(other), cp);
      throw new TidemarkError('INTERNAL', {
        detail: `file sink ${this.#dir}: epoch ${cp.epoch} does not follow epoch ${next - 1}; epochs are numbered one after another (sink.ts)`,
      });
    }
  }

  async #readManifest(name: string): Promise<FileManifest> {
    const manifest = JSON.parse(
      await this.#io('reading a manifest', () => readFile(join(this.#dir, name), 'utf8')),
    ) as FileManifest;
    if (manifest.changefeed !== this.#changefeedId) {
      throw new TidemarkError('SINK_CHECKPOINT_AHEAD', {
        detail: `file sink ${this.#dir}: ${name} belongs to changefeed ${manifest.changefeed}, not ${this.#changefeedId}`,
      });
    }
    return manifest;
  }

  /** A temp file name that is this writer's own and recognisably this changefeed's. */
  #tempName(base: string): string {
    return `${base}.${this.#fence.token}${tempSuffix(this.#changefeedId)}`;
  }

  #files(epoch: number | null): EpochFiles {
    return new EpochFiles({
      dir: this.#dir,
      epoch,
      format: this.#format,
      writer: this.#fence.token,
      tempName: (base) => this.#tempName(base),
    });
  }

  async #io<T>(action: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.#wrap(action, err);
    }
  }

  #wrap(action: string, err: unknown): TidemarkError {
    const code = (err as { code?: string }).code;
    return new TidemarkError(
      code === 'EACCES' || code === 'EPERM' ? 'PERMISSION_DENIED' : 'SINK_WRITE_FAILED',
      {
        detail: `file sink ${this.#dir} while ${action}: ${(err as Error).message}`,
        cause: err,
      },
    );
  }
}

export function parseFileUri(uri: string): { dir: string; format: FileFormat } {
  let u: URL;
  try {
    u = new URL(uri);
  } catch (cause) {
    throw new TidemarkError('CONFIG_INVALID', { detail: `sink URI is not a URI: ${uri}`, cause });
  }
  const format = u.searchParams.get('format') ?? 'jsonl';
  if (u.protocol !== 'file:' || u.pathname === '/' || (format !== 'jsonl' && format !== 'csv')) {
    throw new TidemarkError('CONFIG_INVALID', {
      detail: `sink URI ${uri}: expected file:///absolute/dir?format=jsonl|csv`,
    });
  }
  return { dir: decodeURIComponent(u.pathname), format };
}

const MANIFEST_NAME = /^manifest-\d{20}\.json$/;

/** The checkpoint a manifest commits, as the fence compares it. */
function stored(m: FileManifest): StoredCheckpoint {
  return { position: m.position, epoch: m.epoch, writer: m.writer ?? null };
}

/** How every temp file of a changefeed's sink ends: the marker and the changefeed id. */
function tempSuffix(changefeedId: string): string {
  return `.tidemark-${changefeedId}.tmp`;
}

/** Writes `path` and fsyncs it. */
async function writeSynced(path: string, text: string): Promise<void> {
  const fh = await open(path, 'w');
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** fsync of a directory: makes the names created or renamed in it durable. */
async function syncDir(dir: string): Promise<void> {
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

interface TableFile {
  readonly encoder: RecordEncoder;
  write(line: string): Promise<void>;
  /** The last records written are key moves (`from_key`): a run a next one must not join. */
  endsWithMoves: boolean;
}

/**
 * Where one TableChanges' run of key moves (`from_key` records, read against the rows before the
 * run) stands in its records: first (nothing before it) and last (nothing after it).
 */
function moveRun(tc: TableChanges): { first: boolean; last: boolean } {
  if (!tc.partialUpdates.some((pu) => pu.fromKey !== null)) return { first: false, last: false };
  const after =
    tc.deletes.length > 0 ||
    tc.upserts.length > 0 ||
    tc.partialUpdates.some((pu) => pu.fromKey === null) ||
    tc.rowDeltas.some((d) => d.count !== 0);
  return { first: !tc.truncate, last: !after };
}

interface OpenFile {
  readonly file: TableFile;
  /** `<schema>.<table>[+n].<ext>`, URI-encoded: the name after the epoch and writer prefix. */
  readonly base: string;
  /** Column names, types and key of the table the file's records (and CSV header) are for. */
  readonly shape: string;
  path: string;
  readonly schema: string;
  readonly table: string;
  rows: number;
  readonly schemaChange?: SchemaChange['kind'];
  close(): Promise<void>;
}

interface EpochFilesOptions {
  readonly dir: string;
  /** The epoch's number, or null while it is not known (an epoch in chunks). */
  readonly epoch: number | null;
  readonly format: FileFormat;
  /** The writing instance's token, part of every data file name. */
  readonly writer: string;
  /** The temp name of a provisional file. */
  readonly tempName: (base: string) => string;
}

/**
 * The data files of one epoch being written, one per table, buffered and flushed per MiB, named
 * `<epoch>-<writer>-<schema>.<table>.<ext>` — or, while the epoch's number is not known, under
 * temp names that `finish` renames. A table continues in a further file
 * (`<schema>.<table>+2.<ext>`, listed after the first) when its columns change between chunks
 * (a CSV header cannot change mid-file), or when a chunk's key moves would otherwise follow the
 * previous chunk's key moves in one run. `+` never occurs in an encoded name; neither does a
 * `.` inside a schema or table name (`%2E`), so `"a.b"."c"` and `"a"."b.c"` get two files.
 */
class EpochFiles {
  /** In the order opened: the manifest lists them so, and a reader replays them so. */
  readonly #files: OpenFile[] = [];
  readonly #current = new Map<string, OpenFile>();

  constructor(private readonly o: EpochFilesOptions) {}

  async table(t: TableSchema, run: { startsWithMoves?: boolean } = {}): Promise<TableFile> {
    const id = JSON.stringify([t.schema, t.name]);
    const shape = JSON.stringify([t.columns.map((c) => [c.name, c.typeName]), t.keyColumns, t.keyless]);
    const existing = this.#current.get(id);
    if (existing?.shape === shape && !(run.startsWithMoves && existing.file.endsWithMoves))
      return existing.file;
    const n = this.#files.filter((f) => f.schema === t.schema && f.table === t.name).length + 1;
    const name = `${fileNamePart(t.schema)}.${fileNamePart(t.name)}`;
    const base = `${name}${n > 1 ? `+${n}` : ''}.${this.o.format}`;
    const path =
      this.o.epoch === null
        ? this.o.tempName(`_open-${base}`)
        : `${fileEpochName(this.o.epoch)}-${this.o.writer}-${base}`;
    const fh = await open(join(this.o.dir, path), 'w');
    const encoder = new RecordEncoder(t, this.o.format);
    let buffer = encoder.header() ?? '';
    let closed = false;
    const flush = async () => {
      if (buffer.length > 0) await fh.write(buffer);
      buffer = '';
    };
    const entry: OpenFile = {
      base,
      shape,
      path,
      schema: t.schema,
      table: t.name,
      rows: 0,
      close: async () => {
        if (closed) return;
        closed = true;
        await flush();
        await fh.sync();
        await fh.close();
      },
      file: {
        encoder,
        endsWithMoves: false,
        write: async (line: string) => {
          entry.rows++;
          buffer += line;
          if (buffer.length >= FLUSH_BYTES) await flush();
        },
      },
    };
    this.#files.push(entry);
    this.#current.set(id, entry);
    return entry.file;
  }

  /**
   * A schema-change record at this point of the epoch: its own file, listed after the files
   * written so far; the tables it concerns continue in new files after it.
   */
  async schemaChange(change: SchemaChange): Promise<void> {
    const t = change.kind === 'table-altered' ? change.before : change.table;
    const names = change.kind === 'table-altered' ? [change.before, change.after] : [t];
    for (const x of names) this.#current.delete(JSON.stringify([x.schema, x.name]));
    const n = this.#files.filter((f) => f.schema === t.schema && f.table === t.name).length + 1;
    const base = `${fileNamePart(t.schema)}.${fileNamePart(t.name)}+${n}.schema.json`;
    const path =
      this.o.epoch === null
        ? this.o.tempName(`_open-${base}`)
        : `${fileEpochName(this.o.epoch)}-${this.o.writer}-${base}`;
    await writeSynced(join(this.o.dir, path), `${JSON.stringify({ op: 'schema', change })}\n`);
    this.#files.push({
      base,
      shape: '',
      path,
      schema: t.schema,
      table: t.name,
      rows: 0,
      schemaChange: change.kind,
      close: async () => {},
      file: { encoder: new RecordEncoder(t, this.o.format), endsWithMoves: false, write: async () => {} },
    });
  }

  /** Closes (fsyncs) every file; provisional ones are renamed to `epoch`'s names, durably. */
  async finish(epoch: number): Promise<FileManifest['files']> {
    for (const e of this.#files) await e.close();
    if (this.o.epoch === null && this.#files.length > 0) {
      for (const e of this.#files) {
        const final = `${fileEpochName(epoch)}-${this.o.writer}-${e.base}`;
        await rename(join(this.o.dir, e.path), join(this.o.dir, final));
        e.path = final;
      }
      // The renames must be durable before the manifest that names the new paths.
      await syncDir(this.o.dir);
    }
    return this.#files.map((e) => ({
      schema: e.schema,
      table: e.table,
      path: e.path,
      rows: e.rows,
      ...(e.schemaChange ? { schemaChange: e.schemaChange } : {}),
    }));
  }

  /** Best effort: the next open() removes whatever is left. */
  async abandon(): Promise<void> {
    for (const e of this.#files) {
      await e.close().catch(() => {});
      await rm(join(this.o.dir, e.path), { force: true }).catch(() => {});
    }
  }
}

/** A schema or table name in a file name: URI-encoded, dots too (they separate schema and table). */
function fileNamePart(name: string): string {
  return encodeURIComponent(name).replaceAll('.', '%2E');
}

/**
 * Effectively-once sink into a directory of files (`file:///dir?format=jsonl|csv`).
 *
 *   epoch N ──► <N>-<schema>.<table>.<ext>   one data file per table (fsynced)
 *           ──► manifest-<N>.json            written as .tmp, fsynced, renamed: the commit point
 *           ──► _latest                      {manifest, epoch, position}, replaced by rename
 *
 * A reader that follows manifests (or `_latest`) never sees a partial epoch: data files become
 * part of the output only when the manifest naming them exists. `open()` takes the newest
 * manifest as the checkpoint and deletes data files no manifest names (a crash between data and
 * manifest), so a replayed epoch is written once. N is zero-padded to 20 digits (epoch 0 is the
 * snapshot). Record formats: `file-records.ts`.
 *
 * An epoch in chunks (`beginEpoch`) appends each table's records chunk after chunk to one file
 * per table; its number is known only at the commit, so the files are written as
 * `_open-<schema>.<table>.<ext>.tmp` (removed by `open()` like any temp file) and renamed to
 * their epoch's names before the manifest is written. Their records carry `position: null`
 * (the end position is not known while they are written): the manifest's position applies. A
 * table whose columns change between chunks continues in a second file (`EpochFiles`).
 */
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { TableSchema } from '../../core/table-schema.ts';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import type { EpochWriter, Sink } from '../sink.ts';
import type { Checkpoint, Epoch, SnapshotRows, TableChanges } from '../../core/epoch.ts';
import { EpochWriterSlot } from '../shared/epoch-writer-slot.ts';
import { acceptAdditiveOnly } from '../shared/interim-schema.ts';
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
  readonly files: readonly {
    readonly schema: string;
    readonly table: string;
    readonly path: string;
    readonly rows: number;
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
  #last: Checkpoint | null = null;
  #opened = false;
  readonly #epochSlot = new EpochWriterSlot('file sink');

  constructor(options: FileSinkOptions) {
    const { dir, format } = parseFileUri(options.uri);
    this.#dir = dir;
    this.#format = format;
    this.#changefeedId = options.changefeedId;
  }

  /** Creates the directory, reads the newest manifest, deletes data files no manifest names. */
  async open(): Promise<Checkpoint | null> {
    await this.#io('creating the directory', () => mkdir(this.#dir, { recursive: true }));
    const names = await this.#io('listing the directory', () => readdir(this.#dir));
    const manifests = names.filter((n) => /^manifest-\d{20}\.json$/.test(n)).sort();
    const listed = new Set<string>();
    let newest: FileManifest | null = null;
    for (const m of manifests) {
      const manifest = JSON.parse(
        await this.#io('reading a manifest', () => readFile(join(this.#dir, m), 'utf8')),
      ) as FileManifest;
      if (manifest.changefeed !== this.#changefeedId) {
        throw new TidemarkError('SINK_CHECKPOINT_AHEAD', {
          detail: `file sink ${this.#dir}: ${m} belongs to changefeed ${manifest.changefeed}, not ${this.#changefeedId}`,
        });
      }
      for (const f of manifest.files) listed.add(f.path);
      newest = manifest;
    }
    for (const n of names) {
      const orphan = /^\d{20}-.*\.(jsonl|csv)$/.test(n) && !listed.has(n);
      if (orphan || n.endsWith('.tmp'))
        await this.#io('removing an orphan file', () => rm(join(this.#dir, n), { force: true }));
    }
    this.#opened = true;
    this.#last = newest ? { position: newest.position, epoch: newest.epoch } : null;
    return this.#last;
  }

  /** Writes epoch 0: one file per table (empty tables get an empty file), then its manifest. */
  async writeSnapshot(
    tables: readonly TableSchema[],
    chunks: AsyncIterable<SnapshotRows>,
    at: Checkpoint,
  ): Promise<void> {
    this.#checkOrder(at);
    const files = new EpochFiles(this.#dir, at.epoch, this.#format);
    try {
      for (const t of tables) await files.table(t);
      for await (const chunk of chunks) {
        const f = await files.table(chunk.table);
        for (const r of chunk.rows) await f.write(f.encoder.snapshotRow(r, at.position));
      }
      await this.#publish(at, Date.now(), await files.finish(at.epoch));
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
        const out = await f.table(tc.table);
        for (const line of out.encoder.changes(tc, position)) await out.write(line);
      }
    };
    const wrap = (action: string, err: unknown) =>
      err instanceof TidemarkError ? err : this.#wrap(action, err);
    return this.#epochSlot.open({
      applyChunk: async (tables, chunk) => {
        try {
          files ??= new EpochFiles(this.#dir, null, this.#format);
          await write(files, tables, null);
        } catch (err) {
          throw wrap(`writing chunk ${chunk} of an epoch`, err);
        }
      },
      commit: async (epoch, chunks) => {
        const cp = epoch.checkpoint;
        try {
          this.#checkOrder(cp);
          files ??= new EpochFiles(this.#dir, cp.epoch, this.#format);
          await write(files, epoch.tables, chunks > 0 ? null : cp.position);
          await this.#publish(cp, epoch.commitTimeMs, await files.finish(cp.epoch));
        } catch (err) {
          throw wrap(`writing epoch ${cp.epoch}`, err);
        }
      },
      applySchema: async (change) => acceptAdditiveOnly('file sink', change),
      discard: async () => {
        await files?.abandon();
      },
    });
  }

  async close(): Promise<void> {
    this.#opened = false;
  }

  async #publish(cp: Checkpoint, commitTimeMs: number, files: FileManifest['files']): Promise<void> {
    const manifest: FileManifest = {
      changefeed: this.#changefeedId,
      epoch: cp.epoch,
      position: cp.position,
      commitTimeMs,
      format: this.#format,
      files,
    };
    const name = `manifest-${fileEpochName(cp.epoch)}.json`;
    await writeDurably(this.#dir, name, `${JSON.stringify(manifest, null, 2)}\n`);
    this.#last = cp;
    // `_latest` is a convenience for readers; the manifest above is the commit point.
    await writeDurably(
      this.#dir,
      '_latest',
      `${JSON.stringify({ manifest: name, epoch: cp.epoch, position: cp.position })}\n`,
    );
  }

  #checkOrder(cp: Checkpoint): void {
    if (!this.#opened) throw new TidemarkError('INTERNAL', { detail: 'file sink used before open()' });
    if (this.#last && this.#last.epoch >= cp.epoch) {
      throw new TidemarkError('SINK_CHECKPOINT_AHEAD', {
        detail: `file sink ${this.#dir}: epoch ${cp.epoch} is already committed (manifest epoch ${this.#last.epoch} at ${this.#last.position})`,
      });
    }
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

/** Writes `name` via `name.tmp`, fsync, rename, fsync of the directory. */
async function writeDurably(dir: string, name: string, text: string): Promise<void> {
  const tmp = join(dir, `${name}.tmp`);
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, join(dir, name));
  await syncDir(dir);
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
}

interface OpenFile {
  readonly file: TableFile;
  /** `<schema>.<table>[+n].<ext>`, URI-encoded: the name after the epoch prefix. */
  readonly base: string;
  /** Column names, types and key of the table the file's records (and CSV header) are for. */
  readonly shape: string;
  path: string;
  readonly schema: string;
  readonly table: string;
  rows: number;
  close(): Promise<void>;
}

/**
 * The data files of one epoch being written, one per table, buffered and flushed per MiB. Named
 * for `epoch`, or, while the epoch's number is not known (null: an epoch in chunks), under
 * provisional `.tmp` names that `finish` renames. A table whose columns change between chunks
 * gets a further file for the new shape (`<schema>.<table>+2.<ext>`, listed after the first):
 * a CSV header cannot change mid-file. `+` never occurs in an encoded name.
 */
class EpochFiles {
  /** In the order opened: the manifest lists them so, and a reader replays them so. */
  readonly #files: OpenFile[] = [];
  readonly #current = new Map<string, OpenFile>();

  constructor(
    private readonly dir: string,
    private readonly epoch: number | null,
    private readonly format: FileFormat,
  ) {}

  async table(t: TableSchema): Promise<TableFile> {
    const id = `${t.schema}.${t.name}`;
    const shape = JSON.stringify([t.columns.map((c) => [c.name, c.typeName]), t.keyColumns, t.keyless]);
    const existing = this.#current.get(id);
    if (existing?.shape === shape) return existing.file;
    const n = this.#files.filter((f) => f.schema === t.schema && f.table === t.name).length + 1;
    const name = `${encodeURIComponent(t.schema)}.${encodeURIComponent(t.name)}`;
    const base = `${name}${n > 1 ? `+${n}` : ''}.${this.format}`;
    const path = this.epoch === null ? `_open-${base}.tmp` : `${fileEpochName(this.epoch)}-${base}`;
    const fh = await open(join(this.dir, path), 'w');
    const encoder = new RecordEncoder(t, this.format);
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

  /** Closes (fsyncs) every file; provisional ones are renamed to `epoch`'s names, durably. */
  async finish(epoch: number): Promise<FileManifest['files']> {
    for (const e of this.#files) await e.close();
    if (this.epoch === null && this.#files.length > 0) {
      for (const e of this.#files) {
        const final = `${fileEpochName(epoch)}-${e.base}`;
        await rename(join(this.dir, e.path), join(this.dir, final));
        e.path = final;
      }
      // The renames must be durable before the manifest that names the new paths.
      await syncDir(this.dir);
    }
    return this.#files.map((e) => ({ schema: e.schema, table: e.table, path: e.path, rows: e.rows }));
  }

  /** Best effort: the next open() removes whatever is left. */
  async abandon(): Promise<void> {
    for (const e of this.#files) {
      await e.close().catch(() => {});
      await rm(join(this.dir, e.path), { force: true }).catch(() => {});
    }
  }
}

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
 */
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { TableSchema } from '../../decode/table-schema.ts';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import type { Checkpoint, Epoch, Sink, SnapshotRows } from '../sink.ts';
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
      await this.#publish(at, Date.now(), await files.finish());
    } catch (err) {
      await files.abandon();
      throw err instanceof TidemarkError ? err : this.#wrap('writing the snapshot', err);
    }
  }

  /** Writes one file per changed table, then the manifest (the commit point). */
  async commitEpoch(epoch: Epoch): Promise<void> {
    this.#checkOrder(epoch.checkpoint);
    const files = new EpochFiles(this.#dir, epoch.checkpoint.epoch, this.#format);
    try {
      for (const tc of epoch.tables) {
        const f = await files.table(tc.table);
        for (const line of f.encoder.changes(tc, epoch.checkpoint.position)) await f.write(line);
      }
      await this.#publish(epoch.checkpoint, epoch.commitTimeMs, await files.finish());
    } catch (err) {
      await files.abandon();
      throw err instanceof TidemarkError ? err : this.#wrap(`writing epoch ${epoch.checkpoint.epoch}`, err);
    }
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

/** The data files of one epoch being written, one per table, buffered and flushed per MiB. */
class EpochFiles {
  readonly #open = new Map<
    string,
    {
      file: TableFile;
      path: string;
      schema: string;
      table: string;
      rows: number;
      flush(): Promise<void>;
      close(): Promise<void>;
    }
  >();

  constructor(
    private readonly dir: string,
    private readonly epoch: number,
    private readonly format: FileFormat,
  ) {}

  async table(t: TableSchema): Promise<TableFile> {
    const id = `${t.schema}.${t.name}`;
    const existing = this.#open.get(id);
    if (existing) return existing.file;
    const path = `${fileEpochName(this.epoch)}-${encodeURIComponent(t.schema)}.${encodeURIComponent(t.name)}.${this.format}`;
    const fh = await open(join(this.dir, path), 'w');
    const encoder = new RecordEncoder(t, this.format);
    let buffer = encoder.header() ?? '';
    const entry = {
      path,
      schema: t.schema,
      table: t.name,
      rows: 0,
      flush: async () => {
        if (buffer.length > 0) await fh.write(buffer);
        buffer = '';
      },
      close: async () => {
        await entry.flush();
        await fh.sync();
        await fh.close();
      },
      file: {
        encoder,
        write: async (line: string) => {
          entry.rows++;
          buffer += line;
          if (buffer.length >= FLUSH_BYTES) await entry.flush();
        },
      },
    };
    this.#open.set(id, entry);
    return entry.file;
  }

  async finish(): Promise<FileManifest['files']> {
    for (const e of this.#open.values()) await e.close();
    return [...this.#open.values()].map((e) => ({
      schema: e.schema,
      table: e.table,
      path: e.path,
      rows: e.rows,
    }));
  }

  /** Best effort: the next open() removes whatever is left. */
  async abandon(): Promise<void> {
    for (const e of this.#open.values()) {
      await e.close().catch(() => {});
      await rm(join(this.dir, e.path), { force: true }).catch(() => {});
    }
  }
}

import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { qualifiedName, quoteIdent, quoteTable, type TableSchema } from '../../core/table-schema.ts';
import { maskUri } from '../../errors/mask.ts';
import type { TidemarkError } from '../../errors/tidemark-error.ts';
import { wrapPgError } from '../../source/postgres/pg-errors.ts';
import { connectPgClient } from '../../source/postgres/pg-tls.ts';
import type { EpochWriter, Sink, SnapshotWriteOptions } from '../sink.ts';
import type { Checkpoint, Epoch, SnapshotRows, TableChanges } from '../../core/epoch.ts';
import type { SchemaChange } from '../../core/schema-change.ts';
import { CheckpointFence } from '../shared/checkpoint-fence.ts';
import { openPostgresSinkRead } from './read-session.ts';
import type { SinkReadSession } from '../../core/table-read.ts';
import { EpochWriterSlot } from '../shared/epoch-writer-slot.ts';
import { planTableChanges, tableStatements, type TablePlan } from './apply-plan.ts';
import {
  CHECKPOINT_DDL,
  FENCE_SQLSTATE,
  checkpointWrite,
  fenceCheck,
  isCheckpointConflict,
  readCheckpoint,
} from './checkpoint-table.ts';
import { CopyWriter } from './copy-writer.ts';
import { StageTables, arraysFrom, stageFrom, stagedChars } from './staging.ts';
import { TargetTables, nameKey } from './target-tables.ts';
import { alterTableDdl, enumLabelDdl, runBoundedDdl } from './schema-ddl.ts';

/**
 * The PostgreSQL sink: every epoch is one transaction that applies the epoch's changes in bulk
 * and advances the changefeed's row in `tidemark.checkpoints`.
 *
 *   small epoch:  BEGIN; fence + checkpoint; DDL?; DELETE … USING unnest(…); INSERT … ON
 *                 CONFLICT …; COMMIT ── one simple query, one round trip
 *   large epoch:  BEGIN; fence + checkpoint; DDL?; CREATE TEMP stage? ─► COPY stage ×tables ─►
 *                 apply from stage; COMMIT
 *   in chunks:    BEGIN; fence with the first chunk, then per chunk: DDL?; inline apply, or COPY
 *                 stage ─► apply from stage; TRUNCATE stage ── and the commit: last chunk;
 *                 checkpoint; COMMIT
 *
 * The fence (`checkpoint-table.ts`) first moves the checkpoint row on from the one this instance
 * read or wrote, or fails if it holds another, so a second process's transaction waits for the
 * first and then fails with SINK_FENCED, having committed nothing. When the epoch's checkpoint is
 * known as the transaction begins, that one statement also writes it.
 *
 * The inline path takes epochs up to 2,000 rows and 1 MB of cells (`bench/sink-epoch-cost.ts`,
 * 2026-12-05): one round trip instead of three. COPY costs less CPU per row from ~1,000 narrow
 * rows or ~100 wide ones (3-column rows: 4.8 against 6.3 µs of the backend's at 2,000 rows; ~1 KB
 * jsonb rows: 25 against 39 at 256), but ending the inline path there lost more than it saved:
 * on a loaded machine each extra round trip waits to be scheduled, a slower commit makes the
 * next epoch larger, and the peer-shaped benchmark's first step failed in 3 of 5 runs.
 *
 * Values travel in PostgreSQL text form and are converted by the column types' own input
 * functions, so the session pins every setting that changes a type's text form.
 */
export interface PostgresSinkOptions {
  readonly uri: string;
  readonly changefeedId: string;
  /** Epochs staging at most this many rows and characters go inline (unnest of arrays), larger ones by COPY. */
  readonly inlineMaxRows?: number;
  readonly inlineMaxChars?: number;
}

export const SESSION_SQL = [
  'SET DateStyle = ISO',
  "SET TimeZone = 'UTC'",
  'SET IntervalStyle = postgres',
  'SET extra_float_digits = 3',
  'SET bytea_output = hex',
  "SET client_encoding = 'UTF8'",
  'SET standard_conforming_strings = on',
  // Inline epochs are text[] literals: with array_nulls off (settable per database or role) a
  // NULL element would read as the text 'NULL'.
  'SET array_nulls = on',
  // Off, as pg_restore sets them: operators set them per database or role against runaway
  // queries, but a snapshot's COPY runs long by design and its transaction waits on the source.
  // Inherited, they fail the same write on every retry. lock_timeout stays the operator's.
  'SET statement_timeout = 0',
  'SET idle_in_transaction_session_timeout = 0',
  // Unqualified names resolve only to the catalog and public; the sink qualifies everything else.
  'SET search_path = public',
  // A commit the sink reports must survive a crash of the downstream: the source's change log is
  // cleaned up to it. `synchronous_commit = off` would acknowledge commits still in memory; any
  // stronger setting the server has (remote_write, on, remote_apply) is kept.
  `DO $$ BEGIN IF current_setting('synchronous_commit') = 'off' THEN SET synchronous_commit = local; END IF; END $$`,
].join('; ');

export class PostgresSink implements Sink {
  readonly guarantee = 'exactly-once';
  readonly snapshotsByTable = true;
  private readonly uri: string;
  private readonly changefeedId: string;
  private readonly inlineMaxRows: number;
  private readonly inlineMaxChars: number;
  private readonly tables = new TargetTables();
  private readonly stages = new StageTables();
  private readonly epochSlot = new EpochWriterSlot('postgres sink');
  private readonly fence: CheckpointFence;
  private client: pg.Client | null = null;
  /** Set when a connection was lost: the last epoch may have committed without our knowing. */
  private reconnected = false;
  private closed = false;

  constructor(options: PostgresSinkOptions) {
    this.uri = options.uri;
    this.changefeedId = options.changefeedId;
    this.inlineMaxRows = options.inlineMaxRows ?? 2_000;
    this.inlineMaxChars = options.inlineMaxChars ?? 1_000_000;
    this.fence = new CheckpointFence(`postgres sink ${maskUri(options.uri)}`);
  }

  /** Connects, creates `tidemark.checkpoints` if missing, and returns this changefeed's row. */
  async open(): Promise<Checkpoint | null> {
    const client = await this.connection();
    try {
      await client.query(CHECKPOINT_DDL.join('; '));
      const at = await readCheckpoint(client, this.changefeedId);
      this.reconnected = false;
      return this.fence.opened(at);
    } catch (err) {
      throw wrapPgError(err, { role: 'sink', uri: this.uri, action: 'reading the checkpoint' });
    }
  }

  /**
   * One transaction: fence, create and empty every table, COPY the rows, write checkpoint `at`,
   * commit. The tables are emptied by DELETE, not TRUNCATE, so that a snapshot replacing older
   * data is MVCC-safe: a reader whose snapshot began earlier keeps seeing the old rows.
   */
  async writeSnapshot(
    tables: readonly TableSchema[],
    chunks: AsyncIterable<SnapshotRows>,
    at: Checkpoint,
    options: SnapshotWriteOptions = {},
  ): Promise<void> {
    this.fence.assertAdvances(at);
    const expected = this.fence.expected;
    const client = await this.connection();
    let copy: CopyWriter | null = null;
    try {
      const ddl: string[] = [];
      for (const t of tables) ddl.push(...(await this.tables.prepare(client, t)));
      const empty = options.append ? [] : tables.map((t) => `DELETE FROM ${quoteTable(t)}`);
      await runBoundedDdl(client, ['BEGIN', fenceCheck(this.changefeedId, expected, this.fence.writer)], ddl);
      if (empty.length > 0) await client.query(empty.join(';\n'));
      const seen = new Set(tables.map(nameKey));
      let current: string | null = null;
      const it = chunks[Symbol.asyncIterator]();
      for (;;) {
        let next: IteratorResult<SnapshotRows>;
        try {
          next = await it.next();
        } catch (err) {
          throw new SnapshotInputFailed(err);
        }
        if (next.done) break;
        const chunk = next.value;
        const name = nameKey(chunk.table);
        if (name !== current || copy === null) {
          await copy?.end();
          copy = null;
          if (!seen.has(name)) {
            // A table the caller did not list up front: treat it the same way, mid-transaction.
            seen.add(name);
            const more = await this.tables.prepare(client, chunk.table);
            await runBoundedDdl(client, [], more);
            await client.query(`DELETE FROM ${quoteTable(chunk.table)}`);
          }
          copy = new CopyWriter(client.query(copyFrom(copyIntoTable(chunk.table))));
          current = name;
        }
        // COPY text from a PostgreSQL source is this COPY's input format: sent on as it came.
        if (chunk.copyText) await copy.writeCopyText(chunk.copyText.bytes);
        else await copy.writeRows(chunk.rows);
      }
      await copy?.end();
      copy = null;
      await client.query(`${checkpointWrite(this.changefeedId, at, this.fence.writer)};\nCOMMIT`);
      this.committed();
      this.fence.committed(at);
    } catch (err) {
      copy?.abort(err instanceof Error ? err : new Error('snapshot aborted'));
      await this.rollback(client);
      // The caller's own iterator failed: hand its error back as it was, not as a sink failure.
      if (err instanceof SnapshotInputFailed) throw err.cause;
      throw (
        (await this.fencedBy(client, err, at)) ??
        wrapPgError(err, { role: 'sink', uri: this.uri, action: 'writing the snapshot' })
      );
    }
  }

  /** One transaction: the epoch's changes, table by table, then its checkpoint; see class doc. */
  async commitEpoch(epoch: Epoch): Promise<void> {
    const writer = await this.beginEpoch();
    await writer.commit(epoch);
  }

  /**
   * The epoch's transaction, begun lazily: the first chunk's query (or, with no chunk, the
   * commit's) starts with BEGIN, so `commitEpoch` keeps its single round trip for small epochs.
   * Each chunk takes the same inline or COPY path as a whole epoch would; the stage tables are
   * emptied after each chunk's apply statements, in the same query.
   */
  async beginEpoch(): Promise<EpochWriter> {
    const client = await this.connection();
    // After a reconnect the epoch being retried may have committed just before the old
    // connection died; the commit step checks the stored checkpoint first.
    const mayBeCommitted = this.reconnected;
    const expected = this.fence.expected;
    let begun = false;
    const apply = async (tables: readonly TableChanges[], commit?: Checkpoint) => {
      if (this.client !== client) {
        throw wrapPgError(new Error('Connection terminated while an epoch was open'), {
          role: 'sink',
          uri: this.uri,
        });
      }
      const begin = !begun;
      begun = true;
      await this.applyTables(client, tables, { begin: begin ? expected : undefined, commit });
    };
    /** A fence failure becomes SINK_FENCED, read after rolling back; anything else is wrapped. */
    const failure = async (err: unknown, action: string, cp: Checkpoint | null) => {
      if (begun && isFenceError(err)) {
        begun = false;
        await this.rollback(client);
        const fenced = await this.fencedBy(client, err, cp);
        if (fenced) return fenced;
      }
      return wrapPgError(err, { role: 'sink', uri: this.uri, action });
    };
    /** DDL (its lock waits bounded, schema-ddl.ts) then `data`, in the epoch's transaction. */
    const exec = async (ddl: readonly string[], data: readonly string[] = []) => {
      if (ddl.length + data.length === 0) return;
      const begin = !begun;
      begun = true;
      const head = begin ? ['BEGIN', fenceCheck(this.changefeedId, expected, this.fence.writer)] : [];
      await runBoundedDdl(client, head, ddl);
      if (data.length > 0) await client.query(data.join(';\n'));
    };
    return this.epochSlot.open({
      applyChunk: async (tables, chunk) => {
        try {
          await apply(tables);
        } catch (err) {
          throw await failure(err, `applying chunk ${chunk} of an epoch`, null);
        }
      },
      applySchema: async (change) => {
        try {
          if (change.kind === 'table-altered') await this.addEnumLabels(change.before, change.after);
          await exec(await this.schemaDdl(client, change));
        } catch (err) {
          throw await failure(err, `applying a schema change of ${describeChange(change)}`, null);
        }
      },
      replaceTable: async (table, shadow) => {
        try {
          const { ddl, data } = await this.tables.replaceDdl(client, table, shadow);
          await exec(ddl, data);
        } catch (err) {
          throw await failure(err, `replacing ${qualifiedName(table)} with its online copy`, null);
        }
      },
      commit: async (epoch) => {
        const cp = epoch.checkpoint;
        try {
          this.fence.assertAdvances(cp);
          if (mayBeCommitted && (await this.alreadyCommitted(client, cp))) {
            if (begun) await this.rollback(client);
            this.fence.committed(cp);
            return;
          }
          await apply(epoch.tables, cp);
          this.committed();
          this.fence.committed(cp);
        } catch (err) {
          throw await failure(err, `committing epoch ${cp.epoch}`, cp);
        }
      },
      discard: async () => {
        // Nothing was sent yet: only what was prepared for the DDL is forgotten.
        if (begun) await this.rollback(client);
        else this.forget();
      },
    });
  }

  /** The DDL replaying `change` in the epoch's transaction; remembers the table's new shape. */
  private async schemaDdl(client: pg.Client, change: SchemaChange): Promise<string[]> {
    switch (change.kind) {
      case 'table-created':
        return this.tables.prepare(client, change.table);
      case 'table-dropped':
        this.tables.assume(change.table, null);
        return [`DROP TABLE IF EXISTS ${quoteTable(change.table)}`];
      case 'table-altered': {
        const { rows } = await client.query<{ conname: string }>(
          `SELECT conname FROM pg_catalog.pg_constraint WHERE conrelid = to_regclass($1) AND contype = 'p'`,
          [quoteTable(change.before)],
        );
        const ddl = alterTableDdl(change, rows[0]?.conname ?? null);
        // Enum types new to the table are created as a table's are.
        const created = await this.tables.enumDdl(client, change.after);
        this.tables.assume(change.before, change.after);
        return [...created, ...ddl];
      }
    }
  }

  /**
   * New labels of enum types the table already used, added and committed on a connection of
   * their own: PostgreSQL refuses to use a label added inside the transaction that uses it.
   */
  private async addEnumLabels(before: TableSchema, after: TableSchema): Promise<void> {
    const ddl = enumLabelDdl(before.enums, after.enums);
    if (ddl.length === 0) return;
    const side = await connectPgClient(this.uri, {}, { role: 'sink', action: 'adding enum labels' });
    side.on('error', () => {});
    try {
      for (const statement of ddl) await side.query(statement);
    } finally {
      await side.end().catch(() => {});
    }
  }

  /**
   * Sends `tables`' changes on `client`'s transaction (opening it first when `begin` is given:
   * BEGIN and the fence on that expected checkpoint), and with `commit` writes that checkpoint and
   * commits in the last query — in the fence's own statement when this query opens the
   * transaction too. Small runs go inline (one query); larger ones are COPYed into the stage
   * tables, applied from them, and the stages emptied unless this commits (their ON COMMIT DELETE
   * ROWS does it then).
   */
  private async applyTables(
    client: pg.Client,
    tables: readonly TableChanges[],
    o: { begin: Checkpoint | null | undefined; commit: Checkpoint | undefined },
  ): Promise<void> {
    const writer = this.fence.writer;
    let head =
      o.begin !== undefined ? ['BEGIN', fenceCheck(this.changefeedId, o.begin, writer, o.commit)] : [];
    const finish = !o.commit
      ? []
      : o.begin !== undefined
        ? ['COMMIT']
        : [checkpointWrite(this.changefeedId, o.commit, writer), 'COMMIT'];
    const plans: TablePlan[] = [];
    const ddl: string[] = [];
    for (const changes of tables) {
      ddl.push(...(await this.tables.prepare(client, changes.table)));
      plans.push(planTableChanges(changes));
    }
    // Tables first seen or grown: their DDL goes first, its lock waits bounded (rare: a round trip more).
    if (ddl.length > 0) {
      await runBoundedDdl(client, head, ddl);
      head = [];
    }
    const groups = plans.flatMap((p) => p.groups);
    const rows = groups.reduce((n, g) => n + g.rows.length, 0);
    if (rows <= this.inlineMaxRows && stagedChars(groups) <= this.inlineMaxChars) {
      const apply = plans.flatMap((p) => tableStatements(p, (g) => arraysFrom(p.table, g)));
      const all = [...head, ...apply, ...finish];
      if (all.length > 0) await client.query(all.join(';\n'));
      return;
    }
    // Tables with only a truncate need no stage.
    const staged = plans.map((p) => ({
      plan: p,
      stage: p.groups.length ? this.stages.tableFor(p.table) : null,
    }));
    const creates = staged.flatMap(({ stage }) => (stage?.create ? [stage.create] : []));
    if (head.length + creates.length > 0) await client.query([...head, ...creates].join(';\n'));
    for (const { plan, stage } of staged) {
      if (stage === null) continue;
      const copy = new CopyWriter(client.query(copyFrom(`COPY pg_temp.${stage.name} FROM STDIN`)));
      try {
        for (const g of plan.groups) await copy.writeStaged(plan.table, g);
        await copy.end();
      } catch (err) {
        copy.abort(err instanceof Error ? err : new Error('staging aborted'));
        throw err;
      }
    }
    const apply = staged.flatMap(({ plan, stage }) =>
      tableStatements(plan, (g) => stageFrom(stage?.name ?? '', g)),
    );
    // A later chunk reuses the stages: they must not still hold this chunk's rows.
    const used = [...new Set(staged.flatMap(({ stage }) => (stage ? [`pg_temp.${stage.name}`] : [])))];
    const empty = finish.length === 0 && used.length > 0 ? [`TRUNCATE ${used.join(', ')}`] : [];
    await client.query([...apply, ...empty, ...finish].join(';\n'));
  }

  /** Ends the connection; idempotent. An open transaction is rolled back by the server. */
  /** A read-only snapshot of the downstream for verify and reconcile (`read-session.ts`). */
  openRead(): Promise<SinkReadSession> {
    return openPostgresSinkRead(this.uri, this.changefeedId, SESSION_SQL);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.discard();
  }

  private async connection(): Promise<pg.Client> {
    if (this.closed) {
      throw wrapPgError(new Error('the sink is closed'), { role: 'sink', uri: this.uri });
    }
    if (this.client) return this.client;
    const client = await connectPgClient(this.uri, {}, { role: 'sink', action: 'connecting' });
    // An idle connection that dies must not crash the process: drop it, reconnect on next use.
    client.on('error', () => {
      if (this.client === client) void this.discard();
    });
    try {
      await client.query(SESSION_SQL);
    } catch (err) {
      await client.end().catch(() => {});
      throw wrapPgError(err, { role: 'sink', uri: this.uri, action: 'connecting' });
    }
    this.client = client;
    return client;
  }

  /** True when `at` is in the store, committed by this instance (the reply to its COMMIT was lost). */
  private async alreadyCommitted(client: pg.Client, at: Checkpoint): Promise<boolean> {
    try {
      const stored = await readCheckpoint(client, this.changefeedId);
      this.reconnected = false;
      return this.fence.isOwn(stored, at);
    } catch (err) {
      throw wrapPgError(err, { role: 'sink', uri: this.uri, action: 'reading the checkpoint' });
    }
  }

  /**
   * SINK_FENCED for `err` if it is the fence's (or a concurrent first checkpoint's) failure,
   * naming the checkpoint the store holds now; null for any other error. After the rollback.
   */
  private async fencedBy(
    client: pg.Client,
    err: unknown,
    cp: Checkpoint | null,
  ): Promise<TidemarkError | null> {
    if (!isFenceError(err)) return null;
    const found = await readCheckpoint(client, this.changefeedId).catch(() => null);
    return this.fence.fenced(found, cp);
  }

  private committed(): void {
    this.tables.committed();
    this.stages.committed();
  }

  /** The transaction rolled back (or never began): DDL and stages it prepared do not exist. */
  private forget(): void {
    this.tables.forget({ all: false });
    this.stages.forget({ all: false });
  }

  private async rollback(client: pg.Client): Promise<void> {
    this.forget();
    try {
      await client.query('ROLLBACK');
    } catch {
      if (this.client === client) await this.discard();
      else await client.end().catch(() => {});
    }
  }

  /** Drops the connection; everything remembered about it goes too. */
  private async discard(): Promise<void> {
    const client = this.client;
    if (!client) return;
    this.client = null;
    this.reconnected = true;
    this.tables.forget({ all: true });
    this.stages.forget({ all: true });
    await client.end().catch(() => {});
  }
}

function isFenceError(err: unknown): boolean {
  return (err as { code?: string } | null)?.code === FENCE_SQLSTATE || isCheckpointConflict(err);
}

class SnapshotInputFailed extends Error {
  constructor(override readonly cause: unknown) {
    super('snapshot input failed');
  }
}

function copyIntoTable(table: TableSchema): string {
  return `COPY ${quoteTable(table)} (${table.columns.map((c) => quoteIdent(c.name)).join(', ')}) FROM STDIN`;
}

function describeChange(c: SchemaChange): string {
  const t = c.kind === 'table-altered' ? c.after : c.table;
  return `${qualifiedName(t)} (${c.kind})`;
}

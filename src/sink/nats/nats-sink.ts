/**
 * Effectively-once sink into a NATS JetStream stream
 * (`nats://[user:pw@]host:4222/<stream>?subject=<template>&format=<format>`).
 *
 *   epoch ──► one message per row change on `subject` (template with {schema} {table}
 *             {changefeed} {stream}; default `{stream}.{schema}.{table}`), each with a
 *             Nats-Msg-Id = hash(changefeed, epoch, position, table, op, key), up to MAX_IN_FLIGHT acks
 *             outstanding (jetstream-publisher.ts) ──► await every ack
 *         ──► marker on `_tidemark.{stream}.{changefeed}`: {"epoch","position",…} (the checkpoint)
 *
 * Like TiCDC's resolved events, a consumer applies the changes it has buffered when a marker
 * arrives, those stamped with the marker's position (an epoch cut short by a crash can leave
 * changes stamped with another; docs/sinks.md has a consumer). `open()` reads the
 * checkpoint back from the last message on the marker subject. A crash before the marker makes
 * the runtime replay the epoch: the same Msg-Ids are dropped by the stream's duplicate window
 * (created with 10 minutes; a replay later than that is delivered again, hence
 * effectively-once). The id hashes the epoch number with the end position: a replay may cut the
 * epoch elsewhere, and a later epoch may then end where the aborted attempt ended — other
 * changes under the same end, which a position-only id dropped as duplicates (lost changes).
 * Formats: `nats-formats.ts`.
 *
 * An epoch in chunks (`beginEpoch`) publishes each chunk as it comes, acknowledged before the
 * next, then the marker. Its end is unknown meanwhile, so its messages name a random attempt id
 * and their chunk number instead of the position (the Nats-Msg-Id hashes both: the same key
 * changed in two chunks is two messages), and its marker names the attempt. A consumer keeps
 * the changes a marker names — by position, or by attempt — so leftovers of an aborted attempt
 * are ignored either way. A replayed chunked epoch is a new attempt: the server does not drop
 * its messages, the consumer's rule does.
 */
import { createHash, randomUUID } from 'node:crypto';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import type { Cell, Row } from '../../core/row.ts';
import type { TableSchema } from '../../core/table-schema.ts';
import { maskUri } from '../../errors/mask.ts';
import { matchTable } from '../../core/selection.ts';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import type { EpochWriter, Sink } from '../sink.ts';
import type { Checkpoint, Epoch, SnapshotRows, TableChanges } from '../../core/epoch.ts';
import { EpochWriterSlot } from '../shared/epoch-writer-slot.ts';
import { acceptAdditiveOnly } from '../shared/interim-schema.ts';
import { JetStreamPublisher } from './jetstream-publisher.ts';
import { MessageEncoder, type ChangeContext, type ChangeKind, type NatsFormat } from './nats-formats.ts';

export interface NatsSinkOptions {
  readonly uri: string;
  readonly changefeedId: string;
}

const FORMATS: readonly NatsFormat[] = ['tidemark-json', 'debezium-json', 'canal-json'];
const DUPLICATE_WINDOW_NS = 10 * 60 * 1e9;
/** Outstanding publish acks (sliding window); see docs/sinks.md for the measurements. */
const MAX_IN_FLIGHT = 8000;
/** Per-ack wait: generous, a full window drains behind a slow disk before the last ack arrives. */
const ACK_TIMEOUT_MS = 60_000;

export function createNatsSink(options: NatsSinkOptions): NatsSink {
  return new NatsSink(options);
}

export class NatsSink implements Sink {
  readonly guarantee = 'effectively-once' as const;
  readonly #uri: string;
  readonly #changefeedId: string;
  readonly #server: string;
  readonly #user: string;
  readonly #pass: string;
  readonly #stream: string;
  readonly #template: string;
  readonly #routes: { pattern: string; template: string }[] = [];
  readonly #format: NatsFormat;
  #nc: NatsConnection | null = null;
  #publisher: JetStreamPublisher | null = null;
  readonly #epochSlot = new EpochWriterSlot('NATS sink');

  constructor(options: NatsSinkOptions) {
    this.#uri = options.uri;
    this.#changefeedId = options.changefeedId;
    const bad = (why: string) =>
      new TidemarkError('CONFIG_INVALID', { detail: `sink URI ${maskUri(options.uri)}: ${why}` });
    let u: URL;
    try {
      u = new URL(options.uri);
    } catch {
      throw bad('not a URI');
    }
    this.#stream = decodeURIComponent(u.pathname.replace(/^\//, ''));
    if (u.protocol !== 'nats:' || !/^[A-Za-z0-9_-]+$/.test(this.#stream)) {
      throw bad('expected nats://host:port/<stream> (stream name: letters, digits, _ and -)');
    }
    const format = u.searchParams.get('format') ?? 'tidemark-json';
    if (!FORMATS.includes(format as NatsFormat)) throw bad(`format must be one of ${FORMATS.join(', ')}`);
    this.#format = format as NatsFormat;
    this.#template = u.searchParams.get('subject') ?? '{stream}.{schema}.{table}';
    // Routing rules: `route=<table pattern>:<subject template>`, repeatable; the first match wins.
    for (const rule of u.searchParams.getAll('route')) {
      const colon = rule.indexOf(':');
      if (colon <= 0 || colon === rule.length - 1) {
        throw bad(`route "${rule}": expected <table pattern>:<subject template>, e.g. sales.*:sales.{table}`);
      }
      this.#routes.push({ pattern: rule.slice(0, colon), template: rule.slice(colon + 1) });
    }
    this.#server = `${u.hostname}:${u.port || '4222'}`;
    this.#user = decodeURIComponent(u.username);
    this.#pass = decodeURIComponent(u.password);
  }

  /** The subject template for a table: the first routing rule whose pattern matches, else `subject`. */
  #templateFor(t: { schema: string; name: string }): string {
    return this.#routes.find((r) => matchTable(r.pattern, t.schema, t.name))?.template ?? this.#template;
  }

  get #markerSubject(): string {
    return `_tidemark.${this.#stream}.${token(this.#changefeedId)}`;
  }

  /** Connects, creates the stream if missing (data subjects + marker subject), reads the last marker. */
  async open(): Promise<Checkpoint | null> {
    const nc = await this.#io('connecting', () =>
      connect({ servers: this.#server, ...(this.#user ? { user: this.#user, pass: this.#pass } : {}) }),
    );
    this.#nc = nc;
    this.#publisher = new JetStreamPublisher(nc, {
      stream: this.#stream,
      maxInFlight: MAX_IN_FLIGHT,
      ackTimeoutMs: ACK_TIMEOUT_MS,
    });
    return this.#io('reading the checkpoint marker', async () => {
      const jsm = await jetstreamManager(nc);
      const wildcards = [this.#template, ...this.#routes.map((r) => r.template)].map((t) =>
        t
          .replace(/\{(schema|table)\}/g, '*')
          .replace('{stream}', this.#stream)
          .replace('{changefeed}', token(this.#changefeedId)),
      );
      // JetStream refuses overlapping subjects in one stream: keep only those no other covers.
      const unique = [...new Set(wildcards)];
      const kept = unique.filter((w) => !unique.some((o) => o !== w && covers(o, w)));
      const subjects = [...kept, this.#markerSubject];
      const info = await jsm.streams.info(this.#stream).catch(() => null);
      if (!info) {
        await jsm.streams.add({ name: this.#stream, subjects, duplicate_window: DUPLICATE_WINDOW_NS });
      } else if (!subjects.every((s) => info.config.subjects?.includes(s))) {
        const merged = [...new Set([...(info.config.subjects ?? []), ...subjects])];
        await jsm.streams.update(this.#stream, { subjects: merged });
      }
      const last = await jsm.streams.getMessage(this.#stream, { last_by_subj: this.#markerSubject });
      if (!last) return null;
      const marker = last.json<{ epoch: number; position: string }>();
      return { position: marker.position, epoch: marker.epoch };
    });
  }

  /** Publishes every snapshot row, awaits all acks, then the epoch-0 marker. */
  async writeSnapshot(
    tables: readonly TableSchema[],
    chunks: AsyncIterable<SnapshotRows>,
    at: Checkpoint,
  ): Promise<void> {
    const startedMs = Date.now();
    const ctx = this.#context(at, startedMs);
    const encoders = new Map<TableSchema, MessageEncoder>();
    const encoder = (t: TableSchema) =>
      encoders.get(t) ?? encoders.set(t, new MessageEncoder(t, this.#format)).get(t)!;
    await this.#io('publishing the snapshot', async () => {
      for (const t of tables) encoder(t);
      // Equal rows of a keyless table need distinct Msg-Ids: number the copies of each row, so a
      // retried snapshot reading chunks in another order still sends the same ids.
      const copies = new Map<TableSchema, Map<string, number>>();
      for await (const chunk of chunks) {
        const seen = chunk.table.keyless
          ? (copies.get(chunk.table) ?? copies.set(chunk.table, new Map()).get(chunk.table)!)
          : null;
        for (const r of chunk.rows) {
          let n = 0;
          if (seen) {
            const k = JSON.stringify(r);
            n = (seen.get(k) ?? 0) + 1;
            seen.set(k, n);
          }
          await this.#publish(chunk.table, encoder(chunk.table), 'snapshot', r, null, ctx, n);
        }
      }
      await this.#marker(at, startedMs, null);
    });
  }

  /** Publishes the epoch's changes (apply order), awaits all acks, then the marker. */
  async commitEpoch(epoch: Epoch): Promise<void> {
    const writer = await this.beginEpoch();
    await writer.commit(epoch);
  }

  /**
   * Publishes chunks as they come (each acknowledged before the next), then the last chunk and
   * the marker naming this attempt. With no chunk before the commit, exactly `commitEpoch`'s
   * messages (stamped with the position, no attempt).
   */
  async beginEpoch(): Promise<EpochWriter> {
    const publisher = this.#requireOpen();
    const attempt = randomUUID();
    const chunkContext = (n: number): ChangeContext => ({
      changefeedId: this.#changefeedId,
      position: null,
      epoch: null,
      commitTimeMs: null,
      chunk: { attempt, n },
    });
    return this.#epochSlot.open({
      applyChunk: (tables, n) =>
        this.#io(`publishing chunk ${n} of an epoch`, async () => {
          const ctx = chunkContext(n);
          for (const tc of tables) await this.#publishChanges(tc, ctx);
          // Stored before the next chunk: a failed ack fails the chunk that sent it.
          await publisher.drain();
        }),
      commit: (epoch, chunks) =>
        this.#io(`publishing epoch ${epoch.checkpoint.epoch}`, async () => {
          const ctx =
            chunks === 0 ? this.#context(epoch.checkpoint, epoch.commitTimeMs) : chunkContext(chunks + 1);
          for (const tc of epoch.tables) await this.#publishChanges(tc, ctx);
          await this.#marker(
            epoch.checkpoint,
            epoch.commitTimeMs,
            chunks === 0 ? null : { attempt, chunks: chunks + 1 },
          );
        }),
      applySchema: async (change) => acceptAdditiveOnly('nats sink', change),
      discard: async () => {
        // Published chunks stay in the stream; no marker will name this attempt.
        this.#publisher?.reset();
      },
    });
  }

  async close(): Promise<void> {
    const nc = this.#nc;
    this.#nc = null;
    this.#publisher?.close();
    this.#publisher = null;
    if (nc) await nc.close().catch(() => {});
  }

  async #publishChanges(tc: TableChanges, ctx: ChangeContext): Promise<void> {
    const t = tc.table;
    const enc = new MessageEncoder(t, this.#format);
    if (tc.truncate) await this.#publish(t, enc, 'truncate', null, null, ctx);
    // Messages in TableChanges' apply order, so a consumer replays them one by one.
    for (const pu of tc.partialUpdates) {
      if (!pu.fromKey) continue;
      // Formats without a from-key field get the key change as a delete of the old key first.
      if (this.#format !== 'tidemark-json') await this.#publish(t, enc, 'delete', pu.fromKey, null, ctx);
      await this.#publish(t, enc, 'partial', pu.row, pu.fromKey, ctx);
    }
    for (const k of tc.deletes) await this.#publish(t, enc, 'delete', k, null, ctx);
    for (const r of tc.upserts) await this.#publish(t, enc, 'upsert', r, null, ctx);
    for (const pu of tc.partialUpdates)
      if (!pu.fromKey) await this.#publish(t, enc, 'partial', pu.row, null, ctx);
    for (const d of tc.rowDeltas) {
      for (let copy = 0; copy < Math.abs(d.count); copy++) {
        await this.#publish(t, enc, d.count > 0 ? 'insert' : 'delete', d.row, null, ctx, copy);
      }
    }
  }

  async #publish(
    t: TableSchema,
    enc: MessageEncoder,
    kind: ChangeKind,
    row: readonly Cell[] | null,
    fromKey: Row | null,
    ctx: ChangeContext,
    /** Tells apart messages that are otherwise equal (copies of a keyless row). */
    ordinal = 0,
  ): Promise<void> {
    const publisher = this.#requireOpen();
    const identity = t.keyColumns.length > 0 && row ? t.keyColumns.map((i) => row[i] ?? null) : row;
    // An epoch is (checkpoint of epoch − 1, position]: its number fixes the start (the previous
    // epoch committed first), so number and position name its content — an attempt cut at the
    // same end from another start is other content and must not be dropped as a duplicate.
    // Epochs in chunks: attempt and chunk stand where the (not yet known) end stands.
    const at = ctx.chunk ? [ctx.chunk.attempt, ctx.chunk.n] : [ctx.epoch, ctx.position];
    const id = createHash('sha256')
      .update(JSON.stringify([this.#changefeedId, ...at, t.schema, t.name, kind, identity, ordinal]))
      .digest('base64url');
    const subject = this.#templateFor(t)
      .replaceAll('{stream}', this.#stream)
      .replaceAll('{changefeed}', token(this.#changefeedId))
      .replaceAll('{schema}', token(t.schema))
      .replaceAll('{table}', token(t.name));
    await publisher.publish(subject, enc.encode(kind, row, fromKey, ctx), id);
  }

  /**
   * Only after every change of the epoch is acknowledged (stored) by the stream. `chunked` names
   * the attempt whose messages the marker commits (an epoch in chunks) and how many chunks it had.
   */
  async #marker(
    cp: Checkpoint,
    commitTimeMs: number,
    chunked: { attempt: string; chunks: number } | null,
  ): Promise<void> {
    const publisher = this.#requireOpen();
    await publisher.drain();
    const body = JSON.stringify({
      changefeed: this.#changefeedId,
      epoch: cp.epoch,
      position: cp.position,
      commit_ts_ms: commitTimeMs,
      ...(chunked ?? {}),
    });
    await publisher.publish(this.#markerSubject, body, `marker:${this.#changefeedId}:${cp.epoch}`, {
      'Tidemark-Epoch': String(cp.epoch),
    });
    await publisher.drain();
  }

  #context(cp: Checkpoint, commitTimeMs: number): ChangeContext {
    return {
      changefeedId: this.#changefeedId,
      position: cp.position,
      epoch: cp.epoch,
      commitTimeMs,
      chunk: null,
    };
  }

  #requireOpen(): JetStreamPublisher {
    if (!this.#publisher) throw new TidemarkError('INTERNAL', { detail: 'NATS sink used before open()' });
    return this.#publisher;
  }

  async #io<T>(action: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      // Acks of the failed attempt may still arrive; the retry counts its own.
      this.#publisher?.reset();
      throw wrapNatsError(err, this.#uri, action);
    }
  }
}

/** True when every subject matching `b` also matches `a` (token-wise `*`, trailing `>`). */
function covers(a: string, b: string): boolean {
  const at = a.split('.');
  const bt = b.split('.');
  for (let i = 0; i < at.length; i++) {
    if (at[i] === '>') return bt.length > i;
    if (i >= bt.length || (at[i] !== '*' && at[i] !== bt[i]) || (at[i] === '*' && bt[i] === '>'))
      return false;
  }
  return at.length === bt.length;
}

/** A subject token: NATS separators and wildcards replaced. */
function token(name: string): string {
  return name.replace(/[.*>\s]/g, '_');
}

function wrapNatsError(err: unknown, uri: string, action: string): TidemarkError {
  if (err instanceof TidemarkError) return err;
  const e = err as { name?: string; message?: string; code?: string };
  const detail = `sink ${maskUri(uri)} while ${action}: ${e.message ?? String(err)}`;
  if (/authorization|authentication/i.test(`${e.name} ${e.message}`))
    return new TidemarkError('AUTH_FAILED', { detail, cause: err });
  if (/ECONNREFUSED|CONNECTION_REFUSED|connection refused/i.test(`${e.code} ${e.message}`)) {
    return new TidemarkError('CONNECT_REFUSED', { detail, cause: err });
  }
  return new TidemarkError('SINK_WRITE_FAILED', { detail, cause: err });
}

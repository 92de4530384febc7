import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { TidemarkError } from '../../errors/tidemark-error.ts';
import type { Checkpoint } from '../../core/epoch.ts';

/** A checkpoint as the store holds it, with the writer that committed it (null: not recorded). */
export interface StoredCheckpoint extends Checkpoint {
  readonly writer: string | null;
}

/**
 * One sink instance's side of the fence (sink.ts, "One writer"): the checkpoint it last read in
 * `open()` or last committed. Each sink compares it, inside the transaction that commits (or by
 * the store's own compare-and-set), with what the store holds, and reports a mismatch through
 * `fenced`. Maintains the invariant that `expected` only ever moves to a later epoch.
 */
export class CheckpointFence {
  /** Names this instance in the store (`writer` column, manifest, marker): host, pid, instance. */
  readonly writer: string;
  /** Short random id of this instance, unique enough to keep two writers' file names apart. */
  readonly token: string;
  readonly #label: string;
  #expected: StoredCheckpoint | null | undefined;

  /** `label` names the sink in errors (`postgres sink`, `file sink /dir`). */
  constructor(label: string) {
    this.#label = label;
    this.token = randomBytes(4).toString('hex');
    this.writer = `${hostname()} pid ${process.pid} sink ${this.token}`;
  }

  /** What `open()` read; from now on commits are fenced on it. */
  opened(stored: StoredCheckpoint | null): Checkpoint | null {
    this.#expected = stored;
    return stored === null ? null : { position: stored.position, epoch: stored.epoch };
  }

  /** The checkpoint the store must still hold for this instance to commit (null: none). */
  get expected(): StoredCheckpoint | null {
    if (this.#expected === undefined) {
      throw new TidemarkError('INTERNAL', { detail: `${this.#label} used before open()` });
    }
    return this.#expected;
  }

  /** True when `found` is the checkpoint this instance expects (same epoch and position). */
  holds(found: Checkpoint | null): boolean {
    const want = this.expected;
    if (want === null || found === null) return want === found;
    return want.epoch === found.epoch && want.position === found.position;
  }

  /** Throws SINK_FENCED unless the store holds what this instance expects. */
  check(found: StoredCheckpoint | null, committing: Checkpoint | null): void {
    if (!this.holds(found)) throw this.fenced(found, committing);
  }

  /**
   * The checkpoint never moves backwards: `next` must be later than what this instance expects.
   * A violation is the caller's bug (an epoch replayed past its commit): SINK_CHECKPOINT_AHEAD.
   */
  assertAdvances(next: Checkpoint): void {
    const want = this.expected;
    if (want !== null && next.epoch <= want.epoch) {
      throw new TidemarkError('SINK_CHECKPOINT_AHEAD', {
        detail: `${this.#label}: epoch ${next.epoch} is not after the checkpoint it holds (epoch ${want.epoch} at ${want.position})`,
      });
    }
  }

  /** True when `found` is `cp` written by this very instance (a commit whose reply was lost). */
  isOwn(found: StoredCheckpoint | null, cp: Checkpoint): boolean {
    return (
      found !== null &&
      found.writer === this.writer &&
      found.epoch === cp.epoch &&
      found.position === cp.position
    );
  }

  /** This instance committed `cp`: the next commit is fenced on it. */
  committed(cp: Checkpoint): void {
    this.#expected = { position: cp.position, epoch: cp.epoch, writer: this.writer };
  }

  /** SINK_FENCED, naming what the store holds instead and which writer put it there. */
  fenced(found: StoredCheckpoint | null, committing: Checkpoint | null): TidemarkError {
    const want = this.#expected ?? null;
    const had = want === null ? 'found no checkpoint' : `holds epoch ${want.epoch} at ${want.position}`;
    const now =
      found === null
        ? 'the checkpoint is gone (deleted by someone else)'
        : `another writer${found.writer ? ` (${found.writer})` : ''} committed epoch ${found.epoch} at position ${found.position}`;
    const what = committing === null ? 'an epoch' : `epoch ${committing.epoch} at ${committing.position}`;
    return new TidemarkError('SINK_FENCED', {
      detail: `${this.#label}: ${now}, while this writer (${this.writer}), which ${had}, was committing ${what}; nothing of it was committed`,
    });
  }
}

/**
 * What a running changefeed publishes about itself, and how the CLI shows it: one compact line per
 * changefeed, redrawn in place on a terminal (`LiveStatus`), printed every few seconds otherwise.
 */
import { formatBytes, formatCount, formatDurationMs } from '../core/units.ts';

export interface ChangefeedStatus {
  id: string;
  phase: 'starting' | 'snapshot' | 'streaming' | 'paused' | 'stopping' | 'stopped' | 'failed';
  /** Source changes per second over the last few seconds. */
  rowsPerSec: number;
  /** Rows copied so far in the snapshot. */
  snapshotRows: number;
  /** Last committed epoch. */
  epoch: number;
  /** Position text. */
  resolved: string | null;
  checkpoint: string | null;
  /** now − source commit time of the oldest change not yet committed downstream (0 when caught up). */
  lagMs: number | null;
  /** Source log end − checkpoint, in bytes (where the source can tell). */
  lagBytes: number | null;
  /** Source log end − resolved position, in bytes: what is yet to be read (where the source can tell). */
  resolvedLagBytes: number | null;
  error: { code: string; message: string; hint: string } | null;
  /** Things degraded or left out that the operator should know (tables left out, schema capture). */
  warnings: string[];
  /**
   * The tables replicated (patterns resolved, tables left out not listed) and the views, with the
   * rows this run's snapshot copied into each (0 when it resumed from a checkpoint).
   */
  tables?: TableStatus[];
  /** Each view's plan in words (sql/describe-plan.ts), once the views are planned. */
  views?: { name: string; plan: string[] }[];
}

export type ChangefeedPhase = ChangefeedStatus['phase'];

/** One table or view of a changefeed. */
export interface TableStatus {
  name: string;
  rows: number;
  /**
   * `copying`: an online copy fills its shadow downstream (readers do not see it yet);
   * `streaming` (or absent): the table is downstream and follows the stream.
   */
  phase?: 'copying' | 'streaming';
  /** Rows the online copy applied so far. */
  copied?: number;
  /** The source's estimate of the table's rows, or null. */
  estimated?: number | null;
  /** copied / estimated, in percent (one decimal), or null. */
  percent?: number | null;
  /** Seconds left at the copy's rate so far, or null. */
  etaSeconds?: number | null;
}

/** A status with nothing known yet, for a changefeed that is starting. */
export function initialStatus(id: string): ChangefeedStatus {
  return {
    id,
    phase: 'starting',
    rowsPerSec: 0,
    snapshotRows: 0,
    epoch: 0,
    resolved: null,
    checkpoint: null,
    lagMs: null,
    lagBytes: null,
    resolvedLagBytes: null,
    error: null,
    warnings: [],
  };
}

/**
 * `orders  streaming  1,204 rows/s  epoch 512  resolved 0/1A2B3C4  checkpoint 0/1A2B3A0  lag 85 ms · 4.1 KiB`
 * `idWidth` pads the id so several lines align.
 */
export function renderStatusLine(s: ChangefeedStatus, options: { idWidth?: number } = {}): string {
  const parts = [s.id.padEnd(options.idWidth ?? 0), s.phase.padEnd(9)];
  if (s.phase === 'snapshot') parts.push(`${formatCount(s.snapshotRows)} rows copied`);
  parts.push(`${formatCount(Math.round(s.rowsPerSec))} rows/s`);
  parts.push(`epoch ${s.epoch}`);
  parts.push(`resolved ${s.resolved ?? '–'}`);
  parts.push(`checkpoint ${s.checkpoint ?? '–'}`);
  parts.push(
    `lag ${s.lagMs === null ? '–' : formatDurationMs(s.lagMs)} · ${s.lagBytes === null ? '–' : formatBytes(s.lagBytes)}`,
  );
  for (const t of s.tables ?? []) {
    if (t.phase !== 'copying') continue;
    const pct = t.percent == null ? '' : ` ${t.percent.toFixed(1)}%`;
    const eta = t.etaSeconds == null ? '' : ` ETA ${formatDurationMs(t.etaSeconds * 1000)}`;
    parts.push(`copying ${t.name}${pct} ${formatCount(t.copied ?? t.rows)} rows${eta}`);
  }
  if (s.error) {
    const m = s.error.message;
    parts.push(`error ${m.startsWith(`${s.error.code}:`) ? m : `${s.error.code}: ${m}`}`);
  }
  return parts.join('  ');
}

/** A stream the status is drawn on (stdout). */
export interface StatusStream {
  write(text: string): unknown;
  readonly isTTY?: boolean;
  /** Terminal width; lines are cut to it so a wrapped line cannot break the redraw. */
  readonly columns?: number;
}

export interface LiveStatusOptions {
  out: StatusStream;
  /** Defaults to `out.isTTY`. */
  tty?: boolean;
  /** Redraw period on a terminal; default 250 ms (4 Hz). */
  redrawIntervalMs?: number;
  /** Period of plain lines when not a terminal; default 5 s. */
  plainIntervalMs?: number;
  /** Called before each draw for fresh statuses (e.g. `changefeed.status()`). */
  poll?: () => readonly ChangefeedStatus[];
  /** Clock in ms, for tests. */
  nowMs?: () => number;
}

/**
 * Shows one line per changefeed. On a terminal the block is redrawn in place (cursor up + clear
 * line) about four times a second; otherwise the lines are printed every five seconds, so a log
 * file gets a steady, readable record. Other output to the same terminal (logs) must go through
 * `interleave()` so the block is cleared first and redrawn after.
 */
export class LiveStatus {
  private readonly statuses = new Map<string, ChangefeedStatus>();
  private readonly tty: boolean;
  private readonly now: () => number;
  private drawnLines = 0;
  private lastPlainMs = -Infinity;
  private timer: ReturnType<typeof setInterval> | undefined;
  private readonly tracked: { status(): ChangefeedStatus | null }[] = [];

  constructor(private readonly opts: LiveStatusOptions) {
    this.tty = opts.tty ?? opts.out.isTTY === true;
    this.now = opts.nowMs ?? Date.now;
  }

  /**
   * Reads `source.status()` before every draw, so the lines never lag behind the runtime; null:
   * nothing to show from it (a changefeed replaced by a reload).
   */
  track(source: { status(): ChangefeedStatus | null }): void {
    this.tracked.push(source);
  }

  /** Records the latest status of one changefeed; shown at the next draw. */
  update(s: ChangefeedStatus): void {
    this.statuses.set(s.id, s);
  }

  /** Starts periodic drawing. Idempotent. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.draw(), this.tty ? (this.opts.redrawIntervalMs ?? 250) : 1000);
    this.timer.unref();
    this.draw();
  }

  /** Stops drawing and leaves the final lines on screen (printed once more when not a TTY). */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.draw({ force: true });
    this.drawnLines = 0;
  }

  /** The current lines, aligned. */
  lines(): string[] {
    for (const s of this.opts.poll?.() ?? []) this.update(s);
    for (const t of this.tracked) {
      const s = t.status();
      if (s) this.update(s);
    }
    const all = [...this.statuses.values()];
    const idWidth = Math.max(0, ...all.map((s) => s.id.length));
    return all.map((s) => renderStatusLine(s, { idWidth }));
  }

  /** Draws now if due: always on a TTY, every `plainIntervalMs` otherwise (or when forced). */
  draw(options: { force?: boolean } = {}): void {
    const lines = this.lines();
    if (lines.length === 0) return;
    if (this.tty) {
      const up = this.drawnLines > 0 ? `\x1b[${this.drawnLines}A` : '';
      const shrunk = lines.length < this.drawnLines ? '\x1b[J' : '';
      const columns = this.opts.out.columns ?? 0;
      const width = columns > 10 ? columns : Infinity; // 0 when the pty reports no size
      const cut = (l: string) => (l.length < width ? l : `${l.slice(0, Math.max(0, width - 2))}…`);
      this.opts.out.write(up + lines.map((l) => `\x1b[2K${cut(l)}\n`).join('') + shrunk);
      this.drawnLines = lines.length;
      return;
    }
    const now = this.now();
    if (!options.force && now - this.lastPlainMs < (this.opts.plainIntervalMs ?? 5000)) return;
    this.lastPlainMs = now;
    this.opts.out.write(lines.map((l) => `${l}\n`).join(''));
  }

  /** A stream for other output (logs) that keeps the status block at the bottom of a terminal. */
  interleave(stream: StatusStream): StatusStream {
    if (!this.tty) return stream;
    return {
      isTTY: stream.isTTY === true,
      write: (text: string) => {
        if (this.drawnLines > 0) this.opts.out.write(`\x1b[${this.drawnLines}A\x1b[J`);
        this.drawnLines = 0;
        const r = stream.write(text);
        if (this.timer) this.draw();
        return r;
      },
    };
  }
}

/** One point of a changefeed's recent history, taken every sample interval. */
export interface Sample {
  /** Wall time, ms since the Unix epoch. */
  tMs: number;
  lagMs: number | null;
  lagBytes: number | null;
  rowsPerSec: number;
  /** Source bytes per second committed downstream over the interval. */
  bytesPerSec: number;
}

/** A fixed-capacity ring of samples: the newest `capacity` are kept, oldest first on read. */
export class SampleRing {
  private readonly items: Sample[] = [];
  private next = 0;

  constructor(private readonly capacity: number) {}

  push(s: Sample): void {
    if (this.items.length < this.capacity) this.items.push(s);
    else this.items[this.next] = s;
    this.next = (this.next + 1) % this.capacity;
  }

  /** Oldest first; only samples taken at or after `sinceMs` when given. */
  toArray(sinceMs?: number): Sample[] {
    const ordered =
      this.items.length < this.capacity
        ? [...this.items]
        : [...this.items.slice(this.next), ...this.items.slice(0, this.next)];
    return sinceMs === undefined ? ordered : ordered.filter((s) => s.tMs >= sinceMs);
  }
}

/**
 * A sliding window of outstanding JetStream publish acks: publishing continues while fewer than
 * `maxInFlight` acks are pending and pauses on the oldest otherwise, so the connection stays full
 * without unbounded memory. The first failed ack fails the window (and so the epoch).
 */
export class AckWindow {
  readonly #maxInFlight: number;
  #outstanding = 0;
  #failed = false;
  #failure: unknown;
  #wake: (() => void) | null = null;

  constructor(options: { maxInFlight: number }) {
    this.#maxInFlight = options.maxInFlight;
  }

  /** Tracks `ack`; resolves once another publish may start. Rejects with a failure seen so far. */
  async add(ack: Promise<unknown>): Promise<void> {
    this.#throwIfFailed();
    this.#outstanding++;
    ack.then(
      () => this.#settle(),
      (err: unknown) => {
        if (!this.#failed) {
          this.#failed = true;
          this.#failure = err;
        }
        this.#settle();
      },
    );
    while (this.#outstanding >= this.#maxInFlight && !this.#failed) await this.#settled();
    this.#throwIfFailed();
  }

  /** Resolves when every tracked ack has arrived; rejects with the first failure. */
  async drain(): Promise<void> {
    while (this.#outstanding > 0) await this.#settled();
    this.#throwIfFailed();
  }

  /** Forgets a failure, for the next epoch attempt (acks still pending are left to settle). */
  reset(): void {
    this.#failed = false;
    this.#failure = undefined;
  }

  #settle(): void {
    this.#outstanding--;
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  #settled(): Promise<void> {
    return new Promise((resolve) => (this.#wake = resolve));
  }

  #throwIfFailed(): void {
    if (this.#failed) throw this.#failure;
  }
}

/**
 * A single-consumer async queue bounded in bytes: `push` waits while the queue holds more than
 * `capacityBytes`, so a fast producer is held back by a slow consumer instead of filling memory.
 * One item larger than the capacity is still accepted when the queue is empty (no deadlock).
 */
export class BoundedQueue<T> {
  private readonly items: { item: T; bytes: number }[] = [];
  private bytes = 0;
  private closed = false;
  private failure: unknown = null;
  private wakeConsumer: (() => void) | null = null;
  private readonly wakeProducers: (() => void)[] = [];

  constructor(private readonly options: { capacityBytes: number }) {}

  get sizeBytes(): number {
    return this.bytes;
  }

  /** Waits for room, then enqueues. Throws if the queue was failed. */
  async push(item: T, bytes: number): Promise<void> {
    while (this.bytes > 0 && this.bytes + bytes > this.options.capacityBytes && !this.closed) {
      await new Promise<void>((r) => this.wakeProducers.push(r));
    }
    if (this.failure !== null) throw this.failure;
    if (this.closed) throw new Error('push after close');
    this.items.push({ item, bytes });
    this.bytes += bytes;
    this.wakeConsumer?.();
  }

  /** No more items: the consumer finishes after draining. */
  close(): void {
    this.closed = true;
    this.wakeConsumer?.();
    this.releaseProducers();
  }

  /** Ends the queue with an error: the consumer throws it, producers stop. */
  fail(err: unknown): void {
    if (this.failure === null) this.failure = err;
    this.closed = true;
    this.wakeConsumer?.();
    this.releaseProducers();
  }

  private releaseProducers(): void {
    for (const w of this.wakeProducers.splice(0)) w();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      if (this.failure !== null) throw this.failure;
      const next = this.items.shift();
      if (next) {
        this.bytes -= next.bytes;
        const w = this.wakeProducers.shift();
        w?.();
        yield next.item;
        continue;
      }
      if (this.closed) return;
      await new Promise<void>((r) => (this.wakeConsumer = r));
      this.wakeConsumer = null;
    }
  }
}

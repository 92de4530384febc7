/**
 * The in-memory StateStore: committed data in one ordered map. Nothing survives the process; use
 * it for tests and for views whose state is small. See state-store.ts for the contract.
 */
import { EpochWriteBatchStore, type OrderedBackend } from './epoch-write-batch.ts';
import { SortedMap } from './sorted-map.ts';

class MemoryBackend implements OrderedBackend {
  private readonly data = new SortedMap<string>();
  private epoch: number | null = null;

  get(fullKey: string): string | undefined {
    return this.data.get(fullKey);
  }

  range(from: string, reverse: boolean): Iterable<[string, string]> {
    return this.data.entries(from, { reverse });
  }

  write(writes: Iterable<[string, string | undefined]>, epoch: number): Promise<void> {
    for (const [key, value] of writes) {
      if (value === undefined) this.data.delete(key);
      else this.data.set(key, value);
    }
    this.epoch = epoch;
    return Promise.resolve();
  }

  committedEpoch(): number | null {
    return this.epoch;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

export class MemoryStateStore extends EpochWriteBatchStore {
  constructor() {
    super(new MemoryBackend());
  }
}

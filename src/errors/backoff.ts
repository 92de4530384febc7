/** Exponential backoff with jitter: 0.5 s, 1 s, 2 s, … capped at 30 s. */
export function backoffMs(attempt: number, options: { baseMs?: number; maxMs?: number } = {}): number {
  const base = options.baseMs ?? 500;
  const max = options.maxMs ?? 30_000;
  const exp = Math.min(max, base * 2 ** Math.min(attempt, 16));
  return Math.round(exp / 2 + (Math.random() * exp) / 2);
}

/** Numbers for people: one form for the CLI, the logs, `doctor` and the dashboard. */

/** Binary units, one decimal from KiB up: `512 B`, `4.1 KiB`, `64.0 MiB`. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = Math.max(0, n);
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${Math.round(v)} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** Milliseconds below 10 s (`850 ms`), then seconds (`42.3 s`), then minutes (`12m05s`). */
export function formatDurationMs(ms: number): string {
  const v = Math.max(0, Math.round(ms));
  if (v < 10_000) return `${v} ms`;
  if (v < 60_000) return `${(v / 1000).toFixed(1)} s`;
  const totalS = Math.floor(v / 1000);
  return `${Math.floor(totalS / 60)}m${String(totalS % 60).padStart(2, '0')}s`;
}

/** 1234567 → `1,234,567`. */
export function formatCount(n: number): string {
  return Math.trunc(n)
    .toString()
    .replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

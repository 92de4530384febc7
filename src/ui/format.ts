import { formatBytes } from '../core/units.ts';

export function bytes(n: number | null): string {
  return n === null ? '–' : formatBytes(n);
}

export function duration(ms: number | null): string {
  if (ms === null) return '–';
  if (ms < 10_000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)}m${String(Math.floor((ms % 60_000) / 1000)).padStart(2, '0')}s`;
}

export function count(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

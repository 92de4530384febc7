/**
 * The preflight of one changefeed: its source, its sink and the local disk, every prerequisite
 * with a fix (`tidemark doctor`, and the server before it creates a changefeed). `ok` means safe
 * to start: no check failed (warnings allowed).
 */
import { existsSync, statfsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { DoctorCheck } from '../core/doctor-check.ts';
import type { ChangefeedConfig } from '../runtime/changefeed-config.ts';
import { formatBytes } from '../core/units.ts';
import { checkSink } from '../sink/sink-doctor.ts';
import { checkPostgresSource } from '../source/postgres/doctor.ts';

export interface PreflightReport {
  readonly changefeed: string;
  readonly ok: boolean;
  readonly checks: readonly DoctorCheck[];
}

const MIN_FREE_BYTES = 1024 ** 3;

export async function preflight(cfg: ChangefeedConfig, opts: { dataDir: string }): Promise<PreflightReport> {
  const [source, sink] = await Promise.all([
    checkPostgresSource({ uri: cfg.source, tables: cfg.tables }),
    checkSink(cfg.sink),
  ]);
  const checks = [...source, ...sink, diskCheck(opts.dataDir, cfg.changeLog.maxDiskBytes)];
  return { changefeed: cfg.id, ok: checks.every((c) => c.status !== 'fail'), checks };
}

/** Room for the change log and view state in the data directory. */
export function diskCheck(dataDir: string, maxDiskBytes: number | null): DoctorCheck {
  let dir = resolve(dataDir);
  while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
  const fs = statfsSync(dir);
  const free = Number(fs.bavail) * Number(fs.bsize);
  const need = maxDiskBytes ?? MIN_FREE_BYTES;
  const detail = `${formatBytes(free)} free for the change log in ${resolve(dataDir)}${maxDiskBytes ? ` (changeLog.maxDiskBytes ${formatBytes(maxDiskBytes)})` : ''}`;
  if (free >= need) return { id: 'local.disk', status: 'ok', detail };
  return {
    id: 'local.disk',
    status: maxDiskBytes ? 'fail' : 'warn',
    detail,
    fix: 'Free disk space or point --data-dir at a larger disk: the change log holds what the slowest changefeed has not committed.',
  };
}

/** `✓ id  detail` lines, with `fix:` under each problem, and the verdict. */
export function renderPreflight(reports: readonly PreflightReport[]): string {
  const lines: string[] = [];
  for (const r of reports) {
    lines.push(`changefeed ${r.changefeed}`);
    for (const c of r.checks) {
      const mark = c.status === 'ok' ? '✓' : c.status === 'warn' ? '!' : '✗';
      lines.push(`  ${mark} ${c.id.padEnd(30)} ${c.detail}`);
      if (c.status !== 'ok' && c.fix) lines.push(`      fix: ${c.fix}`);
    }
  }
  const failed = reports.flatMap((r) => r.checks.filter((c) => c.status === 'fail'));
  const warned = reports.flatMap((r) => r.checks.filter((c) => c.status === 'warn'));
  lines.push(
    failed.length === 0
      ? `Safe to start${warned.length ? ` (${warned.length} warning${warned.length === 1 ? '' : 's'})` : ''}.`
      : `Not safe to start: ${failed.length} problem${failed.length === 1 ? '' : 's'} to fix${warned.length ? `, ${warned.length} warning${warned.length === 1 ? '' : 's'}` : ''}.`,
  );
  return lines.join('\n') + '\n';
}

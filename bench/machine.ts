/** Facts about the machine printed in the header, so figures can be compared across runs. */
import { execFileSync } from 'node:child_process';
import { cpus, totalmem, freemem, loadavg } from 'node:os';
import { join } from 'node:path';

export const PG_BIN_DIR = '/usr/lib/postgresql/15/bin';

export function machineFacts(): string[] {
  const cpu = cpus();
  let pgVersion = 'not found';
  try {
    pgVersion = execFileSync(join(PG_BIN_DIR, 'postgres'), ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    // Reported as "not found"; the PostgreSQL benchmarks fail with their own message.
  }
  const gib = (b: number) => `${(b / 1024 ** 3).toFixed(1)} GiB`;
  return [
    `cpu: ${cpu.length} x ${cpu[0]?.model.trim() ?? 'unknown'}`,
    `memory: ${gib(totalmem())} total, ${gib(freemem())} free; load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
    `node: ${process.version} (${process.platform}/${process.arch})`,
    `postgres: ${pgVersion}`,
  ];
}

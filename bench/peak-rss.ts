/**
 * Peak resident memory (VmHWM) of this process or of a child, from /proc. Linux only; figures
 * are null elsewhere. The peak of this process can be reset (`clear_refs` = 5) so that each
 * phase of a benchmark reports its own peak. Also a process's CPU time, for CPU per op.
 */
import { readFileSync, writeFileSync } from 'node:fs';

/** VmHWM of `pid` (default: this process) in bytes, or null if unreadable (exited, not Linux). */
export function peakRssBytes(pid: number | 'self' = 'self'): number | null {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** Resets the peak of `pid` (default: this process) to its current RSS; false when the kernel refuses. */
export function resetPeakRss(pid: number | 'self' = 'self'): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/**
 * Samples the peak RSS of another process every `intervalMs` until stopped; `stop()` returns the
 * largest value seen (a process's VmHWM vanishes with it, so it is read while it runs).
 */
export function samplePeakRss(options: { pid: () => number | null; intervalMs: number }): {
  stop(): number | null;
} {
  let peak: number | null = null;
  const read = () => {
    const pid = options.pid();
    const v = pid === null ? null : peakRssBytes(pid);
    if (v !== null) peak = Math.max(peak ?? 0, v);
  };
  const timer = setInterval(read, options.intervalMs);
  read();
  return {
    stop() {
      clearInterval(timer);
      read();
      return peak;
    },
  };
}

export function mib(bytes: number | null): number {
  return bytes === null ? Number.NaN : bytes / 1024 ** 2;
}

/**
 * CPU time (user + system) `pid` has used so far, in ms, from /proc/<pid>/stat (clock ticks of
 * 10 ms), or null if unreadable. A difference of two readings over a run is its CPU per op.
 */
export function cpuMs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces), from field 3 on: utime is 14, stime 15.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return null;
  }
}

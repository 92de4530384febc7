/**
 * One writer per changefeed (issue 10, item 1; ARCHITECTURE guarantee 8). The same config started
 * twice on one data directory — a restart while the old process still runs — must never run two
 * pipelines: the second process is refused at once, naming the first; and a SIGKILLed holder
 * never leaves a stale lock behind. (Two processes with different data directories are stopped by
 * the sink's fence: test/sink-contract.)
 */
import { describe, expect, it } from 'vitest';
import { freshDatabase } from '../support/db.ts';
import { expectSameTables, sinkCheckpoint, waitForCatchUp } from '../support/changefeed.ts';
import { runCli, writeConfig } from '../support/cli-process.ts';

describe('one writer per data directory', () => {
  it('a second process on the same data directory is refused naming the first; a SIGKILL leaves no stale lock', async () => {
    const src = await freshDatabase('lock_src');
    const dst = await freshDatabase('lock_dst');
    await src.query(
      `CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t SELECT g, g FROM generate_series(1, 100) g`,
    );
    const config = writeConfig(`
changefeeds:
  - id: lock
    source: \${SRC_URL}
    sink: \${DST_URL}
    tables: [public.t]
    heartbeatIntervalMs: 100
`);
    const env = { SRC_URL: src.url, DST_URL: dst.url };
    const first = runCli(['start', '--config', config], { env });
    const deadline = Date.now() + 60_000;
    while (!(await sinkCheckpoint(dst.url, 'lock')) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    expect(await sinkCheckpoint(dst.url, 'lock')).not.toBeNull();

    const second = runCli(['start', '--config', config], { env });
    expect(await second.exited, second.output()).toBe(1);
    expect(second.output()).toContain('DATA_DIR_LOCKED');
    expect(second.output()).toContain(`pid ${first.child.pid}`);
    expect(first.child.exitCode).toBeNull(); // the first one goes on

    await src.query(`UPDATE t SET v = v + 1`);
    await waitForCatchUp({ sourceUrl: src.url, sinkUrl: dst.url, id: 'lock' });
    first.child.kill('SIGKILL');
    expect(await first.exited).toBe('SIGKILL');

    // The kernel released the lock with the process: a restart takes over at once.
    await src.query(`UPDATE t SET v = v + 1`);
    const third = runCli(['start', '--config', config], { env });
    await waitForCatchUp({ sourceUrl: src.url, sinkUrl: dst.url, id: 'lock' });
    third.child.kill('SIGTERM');
    expect(await third.exited, third.output()).toBe(0);
    await expectSameTables(src.url, dst.url, ['t']);
  });
});

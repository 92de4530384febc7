import { describe, expect, it } from 'vitest';
import { freshDatabase } from '../support/db.ts';
import { definition, http, seedItems, startTestServer, testPort, waitForFeed } from './server-harness.ts';

const NAMES = [
  'tidemark_changefeed_rows_in_total',
  'tidemark_changefeed_rows_out_total',
  'tidemark_changefeed_bytes_in_total',
  'tidemark_changefeed_bytes_out_total',
  'tidemark_changefeed_epochs_total',
  'tidemark_changefeed_epoch_commit_seconds',
  'tidemark_changefeed_commit_to_visible_seconds',
  'tidemark_changefeed_checkpoint_lag_seconds',
  'tidemark_changefeed_checkpoint_lag_bytes',
  'tidemark_changefeed_resolved_lag_seconds',
  'tidemark_changefeed_resolved_lag_bytes',
  'tidemark_changefeed_retained_wal_bytes',
  'tidemark_changefeed_state',
  'tidemark_changefeed_errors_total',
  'tidemark_process_memory_bytes',
  'tidemark_source_log_disk_bytes',
  'tidemark_source_log_readers',
  'tidemark_source_messages_received',
  'tidemark_source_replication_starts',
];

/** `name{labels} value` lines → value of the first series whose name and labels match. */
function value(text: string, name: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line === undefined ? NaN : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('/metrics', () => {
  it('exposes the documented names, and their values move under load', async () => {
    const src = await freshDatabase('src');
    const dst = await freshDatabase('dst');
    await seedItems(src);
    const server = await startTestServer({ port: testPort(2, 0) });
    const base = `${server.url}/api/v1/changefeeds`;
    expect((await http('POST', base, { body: definition('load', src, dst) })).status).toBe(201);
    expect(
      (await http('POST', base, { body: definition('bad', src, dst, ['public.nothing_here']) })).status,
    ).toBe(201);
    await waitForFeed(server.url, 'load', (f) => f.status.phase === 'streaming');
    await waitForFeed(server.url, 'bad', (f) => f.state === 'failed');

    const scrape = async () => {
      const r = await http('GET', `${server.url}/metrics`);
      expect(r.status).toBe(200);
      return r.text;
    };
    const before = await scrape();
    const writer = await src.connect();
    for (let i = 0; i < 200; i++)
      await writer.query(`UPDATE items SET label = label || '.' WHERE id = $1`, [(i % 100) + 1]);
    const feed = 'changefeed="load"';
    const deadline = Date.now() + 60_000;
    let after = await scrape();
    // `|| 0`: before the first epoch the series does not exist yet (NaN, and NaN < 200 is false).
    while (
      (value(after, 'tidemark_changefeed_rows_in_total', feed) || 0) -
        (value(before, 'tidemark_changefeed_rows_in_total', feed) || 0) <
      200
    ) {
      if (Date.now() > deadline) throw new Error(`rows_in did not grow by 200:\n${after}`);
      await new Promise((r) => setTimeout(r, 100));
      after = await scrape();
    }
    while (!/tidemark_changefeed_retained_wal_bytes\{changefeed="load"\}/.test(after)) {
      if (Date.now() > deadline) throw new Error('retained WAL never reported');
      await new Promise((r) => setTimeout(r, 200));
      after = await scrape();
    }
    for (const name of NAMES) expect(after, name).toContain(`# TYPE ${name} `);
    expect(value(after, 'tidemark_changefeed_rows_out_total', feed)).toBeGreaterThan(0);
    expect(value(after, 'tidemark_changefeed_bytes_in_total', feed)).toBeGreaterThan(
      value(before, 'tidemark_changefeed_bytes_in_total', feed) || 0,
    );
    expect(value(after, 'tidemark_changefeed_epoch_commit_seconds_count', feed)).toBeGreaterThan(
      value(before, 'tidemark_changefeed_epoch_commit_seconds_count', feed) || 0,
    );
    expect(value(after, 'tidemark_changefeed_commit_to_visible_seconds_count', feed)).toBeGreaterThan(0);
    expect(value(after, 'tidemark_changefeed_state', `${feed},state="running"`)).toBe(1);
    // The source's puller: one stream, read by the changefeed, its log on disk.
    expect(value(after, 'tidemark_source_replication_starts', 'source="tidemark_src_')).toBe(1);
    expect(value(after, 'tidemark_source_messages_received', 'source="tidemark_src_')).toBeGreaterThan(200);
    expect(value(after, 'tidemark_source_log_disk_bytes', 'source="tidemark_src_')).toBeGreaterThan(0);
    expect(value(after, 'tidemark_changefeed_state', 'changefeed="bad",state="failed"')).toBe(1);
    expect(
      value(after, 'tidemark_changefeed_errors_total', 'changefeed="bad",code="SOURCE_TABLE_NOT_FOUND"'),
    ).toBeGreaterThanOrEqual(1);
    expect(value(after, 'tidemark_process_memory_bytes', 'kind="rss"')).toBeGreaterThan(0);
    expect(after).not.toContain('tidemark-test-pw');

    // The samples behind the dashboard's charts saw the throughput.
    // (A sample is taken once a sampling interval has passed: wait for the one after the load.)
    type Samples = { samples: { rowsPerSec: number; bytesPerSec: number }[] };
    let samples = (await http('GET', `${base}/load/samples`)).json() as Samples;
    for (let i = 0; i < 50 && !samples.samples.some((s) => s.bytesPerSec > 0); i++) {
      await new Promise((r) => setTimeout(r, 200));
      samples = (await http('GET', `${base}/load/samples`)).json() as Samples;
    }
    expect(samples.samples.length).toBeGreaterThan(0);
    expect(samples.samples.some((s) => s.bytesPerSec > 0)).toBe(true);
  });
});

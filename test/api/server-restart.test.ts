import { describe, expect, it } from 'vitest';
import { freshDatabase } from '../support/db.ts';
import { expectSameTables, waitForCatchUp } from '../support/changefeed.ts';
import { definition, http, seedItems, startTestServer, testPort, waitForFeed } from './server-harness.ts';

describe('server restart', () => {
  it('brings every changefeed back in its previous state; a failing one does not stop the others', async () => {
    const src = await freshDatabase('src');
    const keepDst = await freshDatabase('keep');
    const heldDst = await freshDatabase('held');
    const brokenDst = await freshDatabase('broken');
    await seedItems(src, 500);
    const port = testPort(1, 0);
    const first = await startTestServer({ port });
    const base = `${first.url}/api/v1/changefeeds`;
    expect((await http('POST', base, { body: definition('keep', src, keepDst) })).status).toBe(201);
    expect((await http('POST', base, { body: definition('held', src, heldDst) })).status).toBe(201);
    expect(
      (
        await http('POST', `${base}?skipChecks=true`, {
          body: definition('broken', src, brokenDst, ['public.missing']),
        })
      ).status,
    ).toBe(201);
    await waitForFeed(first.url, 'keep', (f) => f.status.phase === 'streaming');
    await waitForFeed(first.url, 'held', (f) => f.status.phase === 'streaming');
    const broken = await waitForFeed(first.url, 'broken', (f) => f.state === 'failed');
    expect(broken.lastError?.code).toBe('SOURCE_TABLE_NOT_FOUND');
    expect(broken.lastError?.hint).toBeTruthy();
    expect((await http('POST', `${base}/held/pause`)).status).toBe(200);

    // Writes go on while the server runs, while it is down, and after it is back.
    const writer = await src.connect();
    let n = 0;
    const write = async (count: number) => {
      for (let i = 0; i < count; i++) {
        n++;
        await writer.query(`INSERT INTO items VALUES ($1, 'w') ON CONFLICT (id) DO UPDATE SET label = 'u'`, [
          1000 + n,
        ]);
        if (n % 3 === 0)
          await writer.query(`UPDATE items SET label = label || '+' WHERE id = $1`, [(n % 500) + 1]);
      }
    };
    await write(50);
    await first.close();
    await write(50);

    const second = await startTestServer({ port, dataDir: first.dataDir });
    await write(50);
    const keep = await waitForFeed(second.url, 'keep', (f) => f.status.phase === 'streaming');
    expect(keep.state).toBe('running');
    const held = (await http('GET', `${second.url}/api/v1/changefeeds/held`)).json() as typeof keep;
    expect(held.state).toBe('paused');
    expect(held.status.phase).toBe('paused');
    const brokenAgain = (await http('GET', `${second.url}/api/v1/changefeeds/broken`)).json() as typeof keep;
    expect(brokenAgain.state).toBe('failed');
    expect(brokenAgain.lastError?.code).toBe('SOURCE_TABLE_NOT_FOUND');

    await waitForCatchUp({ sourceUrl: src.url, sinkUrl: keepDst.url, id: 'keep' });
    await expectSameTables(src.url, keepDst.url, ['items']);
    const heldRows = await heldDst.query('SELECT count(*)::int AS n FROM items');
    expect(heldRows.rows[0]?.n).toBeLessThan(650);

    // The paused one resumes from its checkpoint and catches up exactly.
    expect((await http('POST', `${second.url}/api/v1/changefeeds/held/resume`)).status).toBe(200);
    await waitForFeed(second.url, 'held', (f) => f.status.phase === 'streaming');
    await waitForCatchUp({ sourceUrl: src.url, sinkUrl: heldDst.url, id: 'held' });
    await expectSameTables(src.url, heldDst.url, ['items']);
  });
});

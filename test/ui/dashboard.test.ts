import { describe, expect, it, onTestFinished } from 'vitest';
import { mkdirSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { freshDatabase } from '../support/db.ts';
import {
  definition,
  http,
  seedItems,
  startTestServer,
  testPort,
  waitForFeed,
} from '../api/server-harness.ts';

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

describe('web dashboard (headless Chromium)', () => {
  it('loads without console errors, shows a running changefeed, and pauses it from the UI', async () => {
    const src = await freshDatabase('src');
    const dst = await freshDatabase('dst');
    await seedItems(src, 2000);
    const server = await startTestServer({ port: testPort(4, 0) });
    expect(
      (await http('POST', `${server.url}/api/v1/changefeeds`, { body: definition('ui-feed', src, dst) }))
        .status,
    ).toBe(201);
    await waitForFeed(server.url, 'ui-feed', (f) => f.status.phase === 'streaming');
    // Some throughput for the charts.
    const writer = await src.connect();
    for (let i = 0; i < 300; i++)
      await writer.query(`UPDATE items SET label = label || '.' WHERE id = $1`, [(i % 2000) + 1]);

    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
    onTestFinished(() => browser.close());
    const page = await browser.newPage({ viewport: { width: 1100, height: 760 } });
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));

    await page.goto(`${server.url}/#token=${server.token ?? ''}`);
    const row = page.locator('tr[data-feed-id="ui-feed"]');
    await row.waitFor();
    await page.locator('tr[data-feed-id="ui-feed"][data-state="running"]').waitFor();
    expect(await row.textContent()).toContain('streaming');
    await page.locator('#detail svg.chart').first().waitFor();
    await page.locator('#detail svg.chart path.series').first().waitFor();
    expect(await page.locator('#detail').textContent()).toMatch(/checkpoint[0-9A-F]+\/[0-9A-F]+/);
    expect(await page.content()).not.toContain('tidemark-test-pw');
    mkdirSync('test-results', { recursive: true });
    await page.screenshot({ path: 'test-results/dashboard.png', fullPage: true });

    await page.locator('#detail button[data-action="pause"]').click();
    await page.locator('tr[data-feed-id="ui-feed"][data-state="paused"]').waitFor();
    await page.locator('#detail button[data-action="resume"]').waitFor();
    const feed = await waitForFeed(server.url, 'ui-feed', (f) => f.state === 'paused');
    expect(feed.status.phase).toBe('paused');
    await page.screenshot({ path: 'test-results/dashboard-paused.png', fullPage: true });
    expect(problems).toEqual([]);
  });
});

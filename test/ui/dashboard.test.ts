/**
 * The dashboard as an operator uses it, in headless Chromium: create a changefeed from the form
 * (validation and preflight answered inline), watch it stream with its tables and views, pause,
 * resume, edit, see a failing one's error with hint and time, remove; readable at phone width.
 * Screenshots go to test-results/ (looked at, not compared).
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { mkdirSync } from 'node:fs';
import { chromium, type Page } from 'playwright-core';
import { freshDatabase } from '../support/db.ts';
import { definition, http, seedItems, startTestServer, waitForFeed } from '../api/server-harness.ts';

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

async function fill(page: Page, fields: Record<string, string>): Promise<void> {
  for (const [name, value] of Object.entries(fields)) {
    await page.locator(`form.editor [name="${name}"]`).fill(value);
  }
}

describe('web dashboard (headless Chromium)', () => {
  it('creates, watches, pauses, resumes, edits and removes changefeeds; phone width too', async () => {
    const src = await freshDatabase('src');
    const dst = await freshDatabase('dst');
    await seedItems(src, 2000);
    await src.query(`CREATE TABLE nokey (a int)`);
    const server = await startTestServer({ port: 0 });
    mkdirSync('test-results', { recursive: true });

    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
    onTestFinished(() => browser.close());
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    const problems: string[] = [];
    page.on('console', (m) => {
      // The form's refused submissions are answered 4xx on purpose; Chromium logs each.
      if (m.type() === 'error' && !/status of 4(00|22)/.test(m.text())) problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('dialog', (d) => void d.accept());

    await page.goto(`${server.url}/#token=${server.token ?? ''}`);
    await page.locator('#empty').waitFor();

    // Create: a bad id is answered under its field …
    await page.locator('#new-feed').click();
    await fill(page, {
      id: 'No Way',
      source: src.url,
      sink: dst.url,
      tables: 'public.items',
      views: 'item_count: SELECT count(*) AS n FROM items',
    });
    await page.locator('form.editor [data-action="save"]').click();
    await page.locator('[data-field="id"] .problem:not(:empty)').waitFor();
    expect(await page.locator('[data-field="id"] .problem').textContent()).toContain(
      'expected 1–41 characters',
    );

    // … a table the source cannot replicate is answered by the preflight, with its fix …
    await fill(page, { id: 'ui-feed', tables: 'public.items, public.nokey' });
    await page.locator('form.editor [data-action="save"]').click();
    await page.locator('.report li[data-check="source.table"]').waitFor();
    expect(await page.locator('.report').textContent()).toMatch(/public\.nokey: no primary key.*fix: /s);
    await page.screenshot({ path: 'test-results/dashboard-create-refused.png', fullPage: true });

    // … and a good definition is created and streams; a table only a pattern matches and the
    // source cannot replicate is left out, with a warning on the list and in the detail.
    await fill(page, { tables: 'public.items, public.nok*' });
    await page.locator('form.editor [data-action="save"]').click();
    await page.locator('tr[data-feed-id="ui-feed"][data-state="running"]').waitFor();
    await waitForFeed(server.url, 'ui-feed', (f) => f.status.phase === 'streaming');
    const writer = await src.connect();
    for (let i = 0; i < 300; i++)
      await writer.query(`UPDATE items SET label = label || '.' WHERE id = $1`, [(i % 2000) + 1]);
    await page.locator('#detail svg.chart path.series').first().waitFor();
    const detail = page.locator('#detail');
    await detail.locator('[data-part="tables"] td', { hasText: 'public.items' }).waitFor();
    // The pattern resolved: the tables themselves and the view, with the rows the snapshot copied
    // into each; the table left out is not listed.
    expect(
      await detail.locator('[data-part="tables"] tr[data-table="public.items"]').textContent(),
    ).toContain('2,000');
    await detail.locator('[data-part="tables"] tr[data-table="public.item_count"]').waitFor();
    expect(await detail.locator('[data-part="tables"] tr[data-table="public.nokey"]').count()).toBe(0);
    await detail
      .locator('[data-view="item_count"] pre', { hasText: 'SELECT count(*) AS n FROM items' })
      .waitFor();
    await page.locator('#detail', { hasText: 'streaming' }).waitFor();
    expect(await detail.textContent()).toMatch(/checkpoint[0-9A-F]+\/[0-9A-F]+/);
    expect(await detail.textContent()).toMatch(/retained WAL\d/);
    // Known once the source has reported its end (the first keepalive or data after the start).
    await page.locator('#detail', { hasText: /to read\d/ }).waitFor();
    await detail.locator('[data-part="warnings"] li', { hasText: 'public.nokey left out' }).waitFor();
    // The view's plan in words, under its SQL.
    await detail
      .locator('[data-view="item_count"] .plan li', { hasText: 'aggregate count(*) one row over all input' })
      .waitFor();
    expect(await page.locator('tr[data-feed-id="ui-feed"] .badge.warn').textContent()).toBe('1 warning');
    expect(await page.content()).not.toContain('tidemark-test-pw');

    // A failing changefeed shows its error, hint and time.
    await http('POST', `${server.url}/api/v1/changefeeds?skipChecks=true`, {
      body: definition('broken', src, dst, ['public.missing']),
    });
    await page.locator('tr[data-feed-id="broken"][data-state="failed"]').click();
    await page.locator('#detail .error[data-error="SOURCE_TABLE_NOT_FOUND"]').waitFor();
    const error = (await page.locator('#detail .error').textContent()) ?? '';
    expect(error).toMatch(/hint: /);
    expect(error).toMatch(/at \d/);
    await page.screenshot({ path: 'test-results/dashboard-failed.png', fullPage: true });

    // Pause, resume, edit the running one.
    await page.locator('tr[data-feed-id="ui-feed"]').click();
    await page.locator('#detail button[data-action="pause"]').click();
    await page.locator('tr[data-feed-id="ui-feed"][data-state="paused"]').waitFor();
    await page.locator('#detail button[data-action="resume"]').click();
    await page.locator('tr[data-feed-id="ui-feed"][data-state="running"]').waitFor();
    await page.locator('#detail button[data-action="edit"]').click();
    expect(await page.locator('form.editor [name="source"]').inputValue()).toContain(':***@');
    await fill(page, { lagBudgetMs: '30000' });
    await page.locator('form.editor [data-action="save"]').click();
    await page.locator('#editor').waitFor({ state: 'hidden' });
    const edited = await waitForFeed(server.url, 'ui-feed', (f) => f.config?.lagBudgetMs === 30000);
    expect(edited.config?.source).toContain(':***@'); // the real password was kept
    await waitForFeed(server.url, 'ui-feed', (f) => f.status.phase === 'streaming');
    await page.locator('#detail', { hasText: 'budget 30.0 s' }).waitFor();
    await page.screenshot({ path: 'test-results/dashboard.png', fullPage: true });

    // Phone width: one card per changefeed, nothing wider than the screen.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.locator('tr[data-feed-id="ui-feed"] td[data-label="Phase"]').waitFor();
    expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    await page.screenshot({ path: 'test-results/dashboard-phone.png', fullPage: true });
    await page.setViewportSize({ width: 1100, height: 900 });

    // Remove both.
    for (const id of ['broken', 'ui-feed']) {
      await page.locator(`tr[data-feed-id="${id}"]`).click();
      await page.locator('#detail h2', { hasText: id }).waitFor();
      await page.locator('#detail button[data-action="remove"]').click();
      await page.locator(`tr[data-feed-id="${id}"]`).waitFor({ state: 'detached' });
    }
    expect((await http('GET', `${server.url}/api/v1/changefeeds`)).json()).toEqual({ changefeeds: [] });
    expect(problems).toEqual([]);
  });
});

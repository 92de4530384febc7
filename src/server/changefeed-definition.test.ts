import { describe, expect, it } from 'vitest';
import { defineChangefeed } from '../runtime/changefeed-config.ts';
import {
  definitionFromConfig,
  definitionProblems,
  mergeDefinition,
  publicConfig,
  validateDefinition,
} from './changefeed-definition.ts';

const ok = {
  id: 'orders',
  source: 'postgres://app:pw@db/app',
  sink: 'postgres://r:pw2@db2/r',
  tables: ['public.orders'],
};

describe('changefeed definitions', () => {
  it('validates with the config rules and applies defaults', () => {
    const cfg = validateDefinition({ ...ok, epoch: { intervalMs: 20 } });
    expect(cfg.epoch.intervalMs).toBe(20);
    expect(cfg.epoch.maxRows).toBeGreaterThan(0);
    expect(cfg.views).toEqual([]);
  });

  it('names every problem by its key path, without the file prefix', () => {
    let detail = '';
    try {
      validateDefinition({ ...ok, id: 'No Way', tables: [], snapshot: { parallelism: 0 }, bogus: true });
    } catch (err) {
      detail = (err as { detail: string }).detail;
      expect((err as { code: string }).code).toBe('API_BAD_REQUEST');
    }
    const paths = detail.split('\n').map((l) => l.slice(0, l.indexOf(':')));
    expect(paths.sort()).toEqual(['bogus', 'id', 'snapshot.parallelism', 'tables']);
    expect(detail).not.toContain('body:');
  });

  it('never substitutes ${VAR} (the API must not read the server environment) and says why', () => {
    const withVar = { ...ok, source: 'postgres://app:${PW}@db/app' };
    expect(() => validateDefinition(withVar)).toThrow(/source: \$\{PW\} is not substituted here/);
    const view = { ...ok, views: [{ name: 'v', sql: "SELECT '${PW}' AS x FROM orders" }] };
    expect(validateDefinition(view).views[0]?.sql).toBe("SELECT '${PW}' AS x FROM orders");
  });

  it('stores a config (defaults applied, as seeded from --config) as a definition that validates back', () => {
    const cfg = defineChangefeed({ ...ok, views: [{ name: 'v', sql: 'SELECT 1 AS x FROM orders' }] });
    expect(cfg.changeLog.maxDiskBytes).toBeNull();
    expect(validateDefinition(definitionFromConfig(cfg))).toEqual(cfg);
  });

  it('refuses what is not an object', () => {
    for (const bad of [null, [], 'x', 3]) expect(() => validateDefinition(bad)).toThrow(/API_BAD_REQUEST/);
  });

  it('merges nested objects one level deep and removes keys set to null', () => {
    const merged = mergeDefinition(
      { ...ok, epoch: { intervalMs: 5, maxRows: 10 }, memoryQuotaBytes: 100 },
      { epoch: { intervalMs: 7 }, memoryQuotaBytes: null },
    );
    expect(merged.epoch).toEqual({ intervalMs: 7, maxRows: 10 });
    expect('memoryQuotaBytes' in merged).toBe(false);
  });

  it('masks credentials in the public form', () => {
    const p = publicConfig(validateDefinition(ok));
    expect(JSON.stringify(p)).not.toMatch(/pw2?@/);
  });

  it('parses loader lines it does not recognise as plain messages', () => {
    expect(definitionProblems('body:3: something odd')).toEqual([{ path: '', message: 'something odd' }]);
  });
});

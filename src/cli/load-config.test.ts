import { describe, expect, it } from 'vitest';
import { TidemarkError } from '../errors/tidemark-error.ts';
import { parseConfig } from './load-config.ts';

const env = { PGPASSWORD: 's3cret-pw', SINK_URL: 'postgres://replica@127.0.0.1/replica' };

function parse(text: string, e: Record<string, string | undefined> = env) {
  return parseConfig(text, { file: 'tidemark.yaml', env: e });
}

function errorOf(text: string, e: Record<string, string | undefined> = env): TidemarkError {
  try {
    parse(text, e);
  } catch (err) {
    if (err instanceof TidemarkError) return err;
    throw err;
  }
  throw new Error('expected the config to be rejected');
}

const minimal = `changefeeds:
  - id: orders
    source: postgres://app:\${PGPASSWORD}@127.0.0.1:5432/app
    sink: \${SINK_URL}
    tables: [public.orders, "sales.*"]
`;

describe('parseConfig', () => {
  it('applies defaults and substitutes variables', () => {
    const cfg = parse(minimal);
    expect(cfg.changefeeds).toEqual([
      {
        id: 'orders',
        source: 'postgres://app:s3cret-pw@127.0.0.1:5432/app',
        sink: 'postgres://replica@127.0.0.1/replica',
        tables: ['public.orders', 'sales.*'],
        views: [],
        epoch: { intervalMs: 50, maxRows: 100_000, maxBytes: 64 * 1024 * 1024 },
        heartbeatIntervalMs: 1000,
        lagBudgetMs: 60_000,
        snapshot: { parallelism: 4, chunkRows: 50_000, startTimeoutMs: 30_000 },
        memoryQuotaBytes: 256 * 1024 * 1024,
        changeLog: { maxDiskBytes: null, releaseAfterMs: 24 * 3600_000 },
        schemaChanges: { dropTable: 'drop', renameTable: 'follow', recopy: 'copy' },
        onNonEmptyTarget: 'reconcile',
        resnapshot: [],
      },
    ]);
  });

  it('reads every optional key and sizes with units', () => {
    const cfg = parse(`changefeeds:
  - id: a-1
    source: postgresql://u@h/db
    sink: sqlite:///tmp/x.db
    tables: [t]
    views:
      - name: totals
        sql: select count(*) from t
    epoch: { intervalMs: "250", maxRows: 1_000, maxBytes: 8MiB }
    heartbeatIntervalMs: 500
    snapshot: { parallelism: 2, chunkRows: 1000, startTimeoutMs: 5000 }
    memoryQuotaBytes: "1 GiB"
    changeLog: { releaseAfterMs: 3600000 }
    schemaChanges: { dropTable: keep, renameTable: fail, recopy: fail }
`);
    const c = cfg.changefeeds[0];
    expect(c?.views).toEqual([{ name: 'totals', sql: 'select count(*) from t' }]);
    expect(c?.epoch).toEqual({ intervalMs: 250, maxRows: 1000, maxBytes: 8 * 1024 * 1024 });
    expect(c?.heartbeatIntervalMs).toBe(500);
    expect(c?.snapshot).toEqual({ parallelism: 2, chunkRows: 1000, startTimeoutMs: 5000 });
    expect(c?.memoryQuotaBytes).toBe(1024 ** 3);
    expect(c?.changeLog).toEqual({ maxDiskBytes: null, releaseAfterMs: 3_600_000 });
    expect(c?.schemaChanges).toEqual({ dropTable: 'keep', renameTable: 'fail', recopy: 'fail' });
  });

  it('names file, line and key for a bad integer', () => {
    const err = errorOf(minimal + '    epoch:\n      intervalMs: fast\n');
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toContain(
      'tidemark.yaml:7: changefeeds[0].epoch.intervalMs: expected a positive integer (milliseconds), got "fast"',
    );
    expect(err.format()).toContain('hint:');
  });

  it('rejects zero, negative and fractional numbers', () => {
    const err = errorOf(minimal + '    heartbeatIntervalMs: 0\n    snapshot:\n      parallelism: 1.5\n');
    expect(err.message).toContain(
      'tidemark.yaml:6: changefeeds[0].heartbeatIntervalMs: expected a positive integer (milliseconds), got 0',
    );
    expect(err.message).toContain(
      'tidemark.yaml:8: changefeeds[0].snapshot.parallelism: expected a positive integer (connections), got 1.5',
    );
  });

  it('rejects a bad size', () => {
    const err = errorOf(minimal + '    memoryQuotaBytes: lots\n');
    expect(err.message).toContain(
      'tidemark.yaml:6: changefeeds[0].memoryQuotaBytes: expected a positive size in bytes',
    );
  });

  it('reports an unknown key with a suggestion', () => {
    const err = errorOf(minimal + '    epoch:\n      interval_ms: 100\n');
    expect(err.message).toContain(
      'tidemark.yaml:7: changefeeds[0].epoch.interval_ms: unknown key (did you mean "intervalMs"?)',
    );
    const err2 = errorOf(minimal + '    heartbeatIntervallMs: 100\n');
    expect(err2.message).toContain(
      'tidemark.yaml:6: changefeeds[0].heartbeatIntervallMs: unknown key (did you mean "heartbeatIntervalMs"?)',
    );
  });

  it('lists the allowed keys when nothing is close', () => {
    const err = errorOf(minimal + '    color: blue\n');
    expect(err.message).toMatch(
      /tidemark\.yaml:6: changefeeds\[0\]\.color: unknown key \(allowed: id, source, sink,/,
    );
  });

  it('reports a missing required key at the changefeed', () => {
    const err = errorOf('changefeeds:\n  - id: x\n    source: postgres://h/db\n    tables: [t]\n');
    expect(err.message).toContain('tidemark.yaml:2: changefeeds[0]: missing required key "sink"');
  });

  it('reports duplicate ids with both lines', () => {
    const err = errorOf(minimal + minimal.replace('changefeeds:\n', ''));
    expect(err.message).toContain(
      'tidemark.yaml:6: changefeeds[1].id: duplicate id "orders" (first used at line 2)',
    );
  });

  it('rejects a bad id', () => {
    const err = errorOf(minimal.replace('id: orders', 'id: Orders!'));
    expect(err.message).toContain('tidemark.yaml:2: changefeeds[0].id: expected 1–41 characters');
  });

  it('requires a source URI of a supported database (postgres, mysql, mariadb)', () => {
    const err = errorOf(minimal.replace('postgres://app', 'oracle://app'));
    expect(err.message).toContain(
      'tidemark.yaml:3: changefeeds[0].source: expected a postgres:// or postgresql:// or mysql:// or mariadb:// URI, got scheme "oracle"',
    );
    expect(parse(minimal.replace('postgres://app', 'mariadb://app')).changefeeds[0]?.source).toMatch(
      /^mariadb:/,
    );
    const err2 = errorOf(minimal.replace('sink: ${SINK_URL}', 'sink: not a uri'));
    expect(err2.message).toContain('tidemark.yaml:4: changefeeds[0].sink: expected a URI');
  });

  it('rejects bad table entries and empty lists', () => {
    const err = errorOf(minimal.replace('[public.orders, "sales.*"]', '[a.b.c]'));
    expect(err.message).toContain(
      'tidemark.yaml:5: changefeeds[0].tables[0]: expected "schema.table", "table" or a pattern',
    );
    const err2 = errorOf(minimal.replace('[public.orders, "sales.*"]', '[]'));
    expect(err2.message).toContain(
      'tidemark.yaml:5: changefeeds[0].tables: expected at least one table or pattern',
    );
    const err3 = errorOf(minimal.replace('[public.orders, "sales.*"]', 'orders'));
    expect(err3.message).toContain('tidemark.yaml:5: changefeeds[0].tables: expected a list, got "orders"');
  });

  it('validates views', () => {
    const err = errorOf(
      minimal +
        '    views:\n      - name: v\n        sql: select 1\n      - name: v\n        sql: select 2\n      - name: w\n',
    );
    expect(err.message).toContain('tidemark.yaml:9: changefeeds[0].views[1].name: duplicate view name "v"');
    expect(err.message).toContain('tidemark.yaml:11: changefeeds[0].views[2]: missing required key "sql"');
  });

  it('reports every problem at once, in order', () => {
    const err = errorOf(minimal + '    heartbeatIntervalMs: soon\n    memoryQuotaBytes: -1\n');
    expect(err.detail?.split('\n')).toHaveLength(2);
  });

  it('reports a missing variable by name, key and line, never printing secrets', () => {
    const err = errorOf(minimal, { PGPASSWORD: 's3cret-pw' });
    expect(err.code).toBe('CONFIG_ENV_MISSING');
    expect(err.message).toContain('tidemark.yaml:4: changefeeds[0].sink: ${SINK_URL} is not set');
    expect(err.message).not.toContain('s3cret-pw');
  });

  it('shows the template, not the substituted secret, in value errors', () => {
    const err = errorOf(minimal.replace('postgres://app:${PGPASSWORD}', 'ftp://app:${PGPASSWORD}'));
    expect(err.message).not.toContain('s3cret-pw');
  });

  it('keeps $${ literal in connection fields', () => {
    const text = minimal.replace('sink: ${SINK_URL}', () => 'sink: postgres://u:a$${b}@h/db');
    expect(parse(text).changefeeds[0]?.sink).toBe('postgres://u:a${b}@h/db');
  });

  it('substitutes ${VAR} only in the connection fields (source, sink), never in SQL or names', () => {
    const text =
      minimal.replace('"sales.*"]', '"sales.*", "${PGPASSWORD}"]') +
      `    views: [{ name: v, sql: "SELECT '\${PGPASSWORD}' AS x FROM orders" }]\n` +
      '    epoch: { intervalMs: "${EPOCH_MS:-250}" }\n';
    const err = errorOf(text, { ...env, EPOCH_MS: '100' });
    expect(err.message).toContain('changefeeds[0].epoch.intervalMs: expected a positive integer');
    const cfg = parse(text.replace(/ {4}epoch: .*\n/, ''), env).changefeeds[0];
    expect(cfg?.source).toBe('postgres://app:s3cret-pw@127.0.0.1:5432/app');
    expect(cfg?.views[0]?.sql).toBe("SELECT '${PGPASSWORD}' AS x FROM orders");
    expect(cfg?.tables).toContain('${PGPASSWORD}');
    expect(JSON.stringify(cfg?.views)).not.toContain('s3cret-pw');
  });

  it('substitutes nothing when told so (API bodies), and says why a ${VAR} is refused', () => {
    let err: unknown;
    try {
      parseConfig(minimal.replace('${SINK_URL}', 'postgres://r@h/db'), {
        file: 'body',
        env,
        substitute: false,
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TidemarkError);
    const e = err as TidemarkError;
    expect(e.code).toBe('CONFIG_INVALID');
    expect(e.message).toContain('changefeeds[0].source: ${PGPASSWORD} is not substituted here');
    expect(e.message).not.toContain('s3cret-pw');
  });

  it('reports YAML syntax errors with a line', () => {
    const err = errorOf('changefeeds:\n  - id: x\n    source: [unclosed\n');
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toMatch(/tidemark\.yaml:\d+: /);
    const dup = errorOf(minimal + '    id: again\n');
    expect(dup.message).toMatch(/tidemark\.yaml:6: .*unique/i);
  });

  it('rejects an empty file and a missing changefeeds list', () => {
    expect(errorOf('').message).toContain('tidemark.yaml:1: (top level): the file is empty');
    expect(errorOf('changefeed: []\n').message).toContain(
      'tidemark.yaml:1: changefeed: unknown key (did you mean "changefeeds"?)',
    );
    expect(errorOf('changefeeds: []\n').message).toContain(
      'tidemark.yaml:1: changefeeds: expected at least one changefeed',
    );
  });
});

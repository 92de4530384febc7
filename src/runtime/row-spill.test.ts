import { existsSync, mkdtempSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Row } from '../core/row.ts';
import { removeSpills, RowSpill } from './row-spill.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function path(): string {
  const d = mkdtempSync(join(tmpdir(), 'tidemark-spill-'));
  dirs.push(d);
  return join(d, 'copies', 'feed.7.rows');
}

describe('RowSpill', () => {
  it('gives back every row in order, odd text included, across blocks; the file is gone after', () => {
    const p = path();
    const spill = new RowSpill(p);
    const odd: Row[] = [
      ['a\nb', null, ''],
      ['\r\n\t\\"', '\u0000', 'é 漢 😀'],
      ['\ud800 lone', 'x'.repeat(3 << 20), null],
    ];
    const many: Row[] = Array.from({ length: 50_000 }, (_, i) => [String(i), `v${i}`.repeat(10), null]);
    spill.append(odd);
    spill.append(many);
    expect(spill.count).toBe(odd.length + many.length);
    expect(existsSync(p)).toBe(true);
    const back = [...spill.rows()];
    expect(back.length).toBe(odd.length + many.length);
    expect(back.slice(0, 3)).toEqual(odd);
    expect(back.slice(3)).toEqual(many);
    expect(existsSync(p)).toBe(false);
  });

  it('deletes the file when the reading stops early, or when closed unread; a new spill empties an old file', () => {
    const p = path();
    const a = new RowSpill(p);
    a.append([['1'], ['2'], ['3']]);
    for (const r of a.rows()) {
      expect(r).toEqual(['1']);
      break;
    }
    expect(existsSync(p)).toBe(false);
    const b = new RowSpill(p);
    b.append([['1']]);
    b.close();
    expect(existsSync(p)).toBe(false);
    const c = new RowSpill(p);
    c.append([['old']]);
    c.close();
    const d = new RowSpill(p);
    d.append([['new']]);
    expect([...d.rows()]).toEqual([['new']]);
  });

  it('a file that gives back fewer rows than were appended fails (COPY_SPILL_FAILED, retriable), never short', () => {
    const p = path();
    const spill = new RowSpill(p);
    spill.append(Array.from({ length: 200_000 }, (_, i) => [String(i), 'x']));
    // All rows are in the file once the read-back starts (it reads 1 MiB at a time): its end cut
    // off then, as a disk that took a short write would have left it.
    const it = spill.rows();
    expect(it.next().value).toEqual(['0', 'x']);
    truncateSync(p, statSync(p).size - 20);
    expect(() => [...it]).toThrow(
      /COPY_SPILL_FAILED.*199998 of 200000 lines read back, the last one cut short/,
    );
    expect(existsSync(p)).toBe(false);
  });

  it('removeSpills deletes what a crash left in a changefeed’s directory, and nothing else', () => {
    const p = path();
    const dir = join(p, '..');
    new RowSpill(p).append([['1']]);
    writeFileSync(join(dir, 'keep.json'), '{}');
    removeSpills(dir);
    expect(existsSync(p)).toBe(false);
    expect(existsSync(join(dir, 'keep.json'))).toBe(true);
    removeSpills(join(dir, 'missing'));
  });
});

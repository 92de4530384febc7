import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { packCells } from '../../core/packed-cells.ts';
import type { Row } from '../../core/row.ts';
import type { ColumnSchema, TableSchema } from '../../core/table-schema.ts';
import { planTableChanges, stagedCells, type StageGroup } from './apply-plan.ts';
import { CopyWriter } from './copy-writer.ts';
import { stagedChars, arraysFrom } from './staging.ts';

const col = (name: string, isKey: boolean): ColumnSchema => ({
  name,
  typeOid: 25,
  typeMod: -1,
  typeName: 'text',
  isKey,
  nullable: true,
});

/** A key that may hold NULL, so deletes split into the 'n' group and the plain one. */
const table: TableSchema = {
  schema: 'public',
  name: 't',
  relationId: 1,
  columns: [col('k1', true), col('v', false), col('k0', true), col('w', false)],
  keyColumns: [2, 0],
  keyless: false,
  enums: [],
};

const odd: Row[] = [
  ['1', 'plain', 'a', 'x'],
  ['2', 'tab\there', 'b', 'new\nline'],
  ['3', 'back\\slash \\N', 'c', 'cr\rlf\r\n'],
  ['4', '', 'd', null],
  ['5', null, 'e', 'ünïcödé ✓ 𝄞 \u0000x'.replace('\u0000', '')],
  ['6', '{"a\\tb","c d",NULL}', 'f', '\\x00ff'],
  [null, 'null key', 'g', 'x'],
  ['7', '1'.repeat(70_000), 'h', 'long'],
];

async function copyText(groups: readonly StageGroup[]): Promise<string> {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  const w = new CopyWriter(stream);
  for (const g of groups) await w.writeStaged(table, g);
  await w.end();
  return Buffer.concat(chunks).toString('utf8');
}

describe('CopyWriter.writeStaged', () => {
  it('writes packed upserts and deletes byte for byte as the same rows unpacked', async () => {
    const unpacked = planTableChanges({
      table,
      truncate: false,
      deletes: odd,
      upserts: odd,
      partialUpdates: [],
      rowDeltas: [],
    });
    const packed = planTableChanges({
      table,
      truncate: false,
      deletes: odd,
      upserts: odd,
      deletesPacked: odd.map((r) => packCells(r)),
      upsertsPacked: [odd[0]!, ...odd.slice(1).map((r) => packCells(r))],
      partialUpdates: [],
      rowDeltas: [],
    });
    expect(packed.groups.map((g) => [g.op, g.mask, g.rows.length])).toEqual(
      unpacked.groups.map((g) => [g.op, g.mask, g.rows.length]),
    );
    expect(packed.groups.map((g) => g.mask)).toContain('n');
    expect(await copyText(packed.groups)).toBe(await copyText(unpacked.groups));
    const spelled = packed.groups.map((g) => ({ ...g, rows: g.rows.map((r) => stagedCells(table, g, r)) }));
    expect(spelled).toEqual(unpacked.groups);
    for (const g of packed.groups)
      expect(arraysFrom(table, g)).toBe(
        arraysFrom(
          table,
          spelled.find((s) => s.op === g.op && s.mask === g.mask)!,
        ),
      );
    expect(stagedChars(packed.groups)).toBeGreaterThan(70_000);
  });
});

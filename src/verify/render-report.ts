/**
 * What `tidemark verify` prints: per table its verdict, then each differing key range and row.
 * Row values are printed (they are the user's data, read with the user's credentials); connection
 * strings never are (errors mask them).
 */
import type { Row } from '../core/row.ts';
import { qualifiedName, type TableSchema } from '../core/table-schema.ts';
import { countDifferences, formatRange, type VerifyResult } from './verify-tables.ts';

export function renderVerifyReport(id: string, r: VerifyResult, maxRows: number): string {
  const out: string[] = [
    `changefeed ${id}: source read at ${r.sourcePosition}, downstream checkpoint ${r.checkpoint.position} (epoch ${r.checkpoint.epoch}), ${r.rounds} round(s)`,
  ];
  for (const v of r.tables) {
    const n = countDifferences(v);
    out.push(
      `  ${qualifiedName(v.table)}: ${v.ranges} range(s), ${v.sourceRows} row(s): ${n === 0 ? 'equal' : `${n} differing row(s)`}`,
    );
    if (n === 0) continue;
    for (const d of v.differingRanges.slice(0, maxRows)) {
      out.push(
        `    range ${formatRange(d.range)} differs: ${d.sourceRows} row(s) in the source, ${d.targetRows} downstream`,
      );
    }
    let shown = 0;
    const show = (line: string) => {
      if (shown++ < maxRows) out.push(line);
    };
    for (const row of v.differences.missing) show(`    missing downstream: ${formatRow(v.table, row)}`);
    for (const row of v.differences.extra) show(`    extra downstream:   ${formatRow(v.table, row)}`);
    for (const c of v.differences.changed) {
      show(`    changed:            ${formatRow(v.table, c.source)}`);
      if (shown <= maxRows) out.push(`      downstream has:   ${formatRow(v.table, c.target)}`);
    }
    if (shown > maxRows) out.push(`    … and ${shown - maxRows} more (--max-rows)`);
  }
  const differing = r.tables.filter((v) => countDifferences(v) > 0);
  out.push(
    r.equal
      ? `EQUAL: ${r.tables.length} table(s)`
      : `DIFFERENT: ${differing.reduce((s, v) => s + countDifferences(v), 0)} row(s) in ${differing.length} table(s)`,
  );
  return out.join('\n') + '\n';
}

function formatRow(t: TableSchema, row: Row): string {
  return `(${t.columns.map((c, i) => `${c.name}=${formatCell(row[i] ?? null)}`).join(', ')})`;
}

function formatCell(v: string | null): string {
  if (v === null) return 'NULL';
  const text = v.length > 80 ? `${v.slice(0, 77)}…(${v.length} chars)` : v;
  return JSON.stringify(text);
}

/** The result as JSON (`--json`): the same facts, rows as arrays of cells. */
export function verifyResultJson(id: string, r: VerifyResult): unknown {
  return {
    changefeed: id,
    equal: r.equal,
    rounds: r.rounds,
    sourcePosition: r.sourcePosition,
    checkpoint: r.checkpoint,
    tables: r.tables.map((v) => ({
      table: qualifiedName(v.table),
      ranges: v.ranges,
      sourceRows: v.sourceRows,
      differingRanges: v.differingRanges,
      missing: v.differences.missing,
      extra: v.differences.extra,
      changed: v.differences.changed,
    })),
  };
}

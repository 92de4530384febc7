import type { SchemaChange } from '../../core/schema-change.ts';
import { TidemarkError } from '../../errors/tidemark-error.ts';

/**
 * What a sink that does not replay DDL yet can take at a barrier: a new table, or columns added
 * without a value for existing rows — both are picked up when the next rows arrive (the sink adds
 * missing tables and columns). Anything else is refused clearly, never applied wrongly.
 */
export function acceptAdditiveOnly(sink: string, change: SchemaChange): void {
  if (change.kind === 'table-created') return;
  if (
    change.kind === 'table-altered' &&
    change.before.name === change.after.name &&
    change.before.schema === change.after.schema &&
    change.columns.every((c) => c.op === 'added' && c.fill.kind === 'null')
  ) {
    return;
  }
  const t = change.kind === 'table-altered' ? change.after : change.table;
  throw new TidemarkError('SINK_SCHEMA_UNSUPPORTED', {
    detail: `${sink}: ${t.schema}.${t.name}: ${change.kind}${change.ddl ? ` (${change.ddl.trim().slice(0, 200)})` : ''} is not replayed by this sink`,
  });
}

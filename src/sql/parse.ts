import { parse as pgParse } from 'libpg-query';
import type { SelectStmt } from 'libpg-query';
import { invalid, unsupported, type ViewSource } from './view-error.ts';

/**
 * Parses a view's SQL with PostgreSQL's own grammar (libpg-query) and returns its one SELECT.
 * Syntax errors carry PostgreSQL's message and position.
 */
export async function parseView(view: ViewSource): Promise<SelectStmt> {
  let result: Awaited<ReturnType<typeof pgParse>>;
  try {
    result = await pgParse(view.sql);
  } catch (err) {
    const e = err as { message?: string; sqlDetails?: { cursorPosition?: number } };
    const pos = e.sqlDetails?.cursorPosition;
    throw invalid(view, pos, e.message ?? 'syntax error', 'Fix the SQL syntax at the position named above.');
  }
  const stmts = result.stmts ?? [];
  if (stmts.length !== 1) {
    throw invalid(view, undefined, `expected exactly one SELECT statement, found ${stmts.length}`);
  }
  const node = stmts[0]?.stmt as Record<string, unknown> | undefined;
  const select = node?.['SelectStmt'] as SelectStmt | undefined;
  if (select === undefined) {
    const kind = node ? Object.keys(node)[0] : 'nothing';
    throw unsupported(view, stmts[0]?.stmt_location ?? 0, `a view must be a SELECT, not ${kind}`);
  }
  return select;
}

import { TidemarkError } from '../errors/tidemark-error.ts';

/** Which view is being compiled, so every error can say where it is. */
export interface ViewSource {
  readonly name: string;
  readonly sql: string;
}

/**
 * `line:column` (1-based) of a byte offset into the SQL, as libpg-query reports locations in
 * UTF-8 bytes while editors count characters.
 */
export function lineColumn(sql: string, byteOffset: number): { line: number; column: number } {
  const bytes = Buffer.from(sql, 'utf8');
  const prefix = bytes.subarray(0, Math.max(0, Math.min(byteOffset, bytes.length))).toString('utf8');
  const lines = prefix.split('\n');
  const last = lines[lines.length - 1] ?? '';
  return { line: lines.length, column: [...last].length + 1 };
}

function where(view: ViewSource, location: number | undefined): string {
  if (location === undefined || location < 0) return `view "${view.name}"`;
  const { line, column } = lineColumn(view.sql, location);
  return `view "${view.name}" at ${line}:${column}`;
}

/** A construct outside the supported subset. */
export function unsupported(
  view: ViewSource,
  location: number | undefined,
  what: string,
  hint?: string,
): TidemarkError {
  return new TidemarkError('VIEW_UNSUPPORTED', {
    detail: `${where(view, location)}: ${what}`,
    ...(hint === undefined ? {} : { hint }),
  });
}

/** SQL PostgreSQL itself would reject: syntax, unknown names, type errors. */
export function invalid(
  view: ViewSource,
  location: number | undefined,
  what: string,
  hint?: string,
): TidemarkError {
  return new TidemarkError('VIEW_INVALID', {
    detail: `${where(view, location)}: ${what}`,
    ...(hint === undefined ? {} : { hint }),
  });
}

/** An expression failed on a row while maintaining the view (division by zero, overflow, …). */
export function runtimeError(view: string, what: string, cause?: unknown): TidemarkError {
  return new TidemarkError('VIEW_RUNTIME', {
    detail: `view "${view}": ${what}`,
    ...(cause === undefined ? {} : { cause }),
  });
}

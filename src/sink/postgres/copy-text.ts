/**
 * PostgreSQL COPY text format (`COPY … FROM STDIN`, default options): columns separated by a tab,
 * rows ended by a newline, `\N` for NULL, and backslash escapes for the four bytes that would
 * otherwise be read as structure. Cells are already in the type's text form (decode/row.ts), so
 * the server's input function sees exactly what the source printed.
 */

const NEEDS_ESCAPE = /[\\\t\n\r]/;
const ESCAPES = /[\\\t\n\r]/g;
const REPLACEMENT: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/** One field: `\N` for NULL, else the text with `\`, tab, newline and carriage return escaped. */
export function copyField(cell: string | null): string {
  if (cell === null) return '\\N';
  return NEEDS_ESCAPE.test(cell) ? cell.replace(ESCAPES, (c) => REPLACEMENT[c] ?? c) : cell;
}

/** One row, newline included. */
export function copyLine(cells: readonly (string | null)[]): string {
  let line = '';
  for (let i = 0; i < cells.length; i++) {
    if (i > 0) line += '\t';
    line += copyField(cells[i] ?? null);
  }
  return line + '\n';
}

/**
 * The table-selection grammar shared by config, catalog and views: `schema.table`, `table`
 * (= `public.table`), glob patterns with `*` and `?`, double quotes around names holding dots or
 * quotes (`"my.schema"."t"`). Names are compared exactly as the catalog spells them.
 */

/**
 * Splits a `tables` entry into schema and table (or their patterns): `schema.table`, `table`
 * (= `public.table`); double quotes protect dots and quotes inside names (`"my.schema"."t"`).
 */
export function splitTablePattern(pattern: string): { schema: string; name: string } {
  const parts: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '"') {
      if (quoted && pattern[i + 1] === '"') {
        cur += '"';
        i++;
      } else quoted = !quoted;
    } else if (ch === '.' && !quoted && parts.length === 0) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  parts.push(cur);
  return parts.length === 2 ? { schema: parts[0]!, name: parts[1]! } : { schema: 'public', name: parts[0]! };
}

/** True when the pattern has glob characters (so it may match many tables, or none). */
export function isTablePattern(pattern: string): boolean {
  return /[*?]/.test(pattern);
}

/**
 * Whether a `tables` entry selects the table `schema.name`. `*` matches any run of characters,
 * `?` exactly one; matching is case-sensitive, like quoted PostgreSQL identifiers, since the
 * names compared are the catalog's.
 */
export function matchTable(pattern: string, schema: string, name: string): boolean {
  const p = splitTablePattern(pattern);
  return globMatch(p.schema, schema) && globMatch(p.name, name);
}

function globMatch(glob: string, text: string): boolean {
  const re = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${re}$`, 's').test(text);
}

/** Whether the selection takes table `t` by its name now. */
export function selects(selection: readonly string[], t: { schema: string; name: string }): boolean {
  return selection.some((p) => {
    if (isTablePattern(p)) return matchTable(p, t.schema, t.name);
    const s = splitTablePattern(p);
    return s.schema === t.schema && s.name === t.name;
  });
}

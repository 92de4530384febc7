/**
 * The DDL statements of the binlog's QUERY events, parsed far enough to follow table shapes:
 * CREATE/DROP/RENAME/TRUNCATE TABLE, ALTER TABLE's column operations and renames, DROP DATABASE.
 * Anything else parses to null (GRANT, CREATE INDEX …) or, inside an ALTER, to an `unknown`
 * operation: the caller then re-derives the shape from the next TABLE_MAP of the table, which is
 * the shape in force at that point of the binlog.
 *
 * No maintained MySQL grammar package for Node covers MariaDB 10.11's DDL (the candidates are
 * unmaintained or SELECT-centred), and only this subset matters, so this is a small tokenizer and
 * recursive-descent reader; it never executes or rewrites SQL.
 */

export interface TableName {
  readonly schema: string;
  readonly name: string;
}

/** A column definition as written: type text (`decimal(12,2) unsigned`) and attributes. */
export interface ColumnDef {
  readonly name: string;
  readonly typeText: string;
  /** `CHARACTER SET x` when given (`binary` makes CHAR/VARCHAR/TEXT binary). */
  readonly charset: string | null;
  readonly notNull: boolean;
  readonly primaryKey: boolean;
  /** The DEFAULT clause: a literal (text form, null for NULL), an expression, or none. */
  readonly default:
    | { readonly kind: 'none' }
    | { readonly kind: 'literal'; readonly text: string | null }
    | { readonly kind: 'expression'; readonly sql: string };
  readonly generated: boolean;
}

export type AlterOp =
  | { readonly op: 'add'; readonly column: ColumnDef }
  | { readonly op: 'drop'; readonly column: string }
  | { readonly op: 'change'; readonly from: string; readonly column: ColumnDef }
  | { readonly op: 'rename-column'; readonly from: string; readonly to: string }
  | { readonly op: 'add-primary-key'; readonly columns: readonly string[] }
  | { readonly op: 'drop-primary-key' }
  /** Changes no column (indexes, defaults, options, partitions). */
  | { readonly op: 'none' }
  /** Not understood (CONVERT TO CHARACTER SET, …): re-derive the shape from the binlog. */
  | { readonly op: 'unknown'; readonly text: string };

export type Ddl =
  | {
      readonly kind: 'create';
      readonly table: TableName;
      readonly columns: readonly ColumnDef[] | null;
      readonly primaryKey: readonly string[];
      readonly like: TableName | null;
    }
  | { readonly kind: 'drop'; readonly tables: readonly TableName[] }
  | { readonly kind: 'rename'; readonly pairs: readonly { from: TableName; to: TableName }[] }
  | {
      readonly kind: 'alter';
      readonly table: TableName;
      readonly ops: readonly AlterOp[];
      readonly renameTo: TableName | null;
    }
  | { readonly kind: 'truncate'; readonly table: TableName }
  | { readonly kind: 'drop-database'; readonly schema: string };

type Tok =
  | { t: 'id'; v: string; quoted: boolean }
  | { t: 'str'; v: string }
  | { t: 'num'; v: string }
  | { t: 'p'; v: string };

export function tokenize(sql: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '/' && sql[i + 1] === '*') {
      // `/*!50100 …*/` and `/*M! …*/` are executable comments: their text is SQL.
      if (sql[i + 2] === '!' || (sql[i + 2] === 'M' && sql[i + 3] === '!')) {
        i += sql[i + 2] === '!' ? 3 : 4;
        while (i < n && /\d/.test(sql[i]!)) i++;
      } else {
        const end = sql.indexOf('*/', i + 2);
        i = end < 0 ? n : end + 2;
      }
    } else if (c === '*' && sql[i + 1] === '/') {
      i += 2;
    } else if (c === '#' || (c === '-' && sql[i + 1] === '-' && /\s/.test(sql[i + 2] ?? ' '))) {
      const end = sql.indexOf('\n', i);
      i = end < 0 ? n : end + 1;
    } else if (c === '`') {
      let v = '';
      i++;
      while (i < n) {
        if (sql[i] === '`' && sql[i + 1] === '`') {
          v += '`';
          i += 2;
        } else if (sql[i] === '`') {
          i++;
          break;
        } else v += sql[i++];
      }
      out.push({ t: 'id', v, quoted: true });
    } else if (c === "'" || c === '"') {
      let v = '';
      i++;
      while (i < n) {
        const d = sql[i]!;
        if (d === '\\' && i + 1 < n) {
          v += unescape(sql[i + 1]!);
          i += 2;
        } else if (d === c && sql[i + 1] === c) {
          v += c;
          i += 2;
        } else if (d === c) {
          i++;
          break;
        } else {
          v += d;
          i++;
        }
      }
      out.push({ t: 'str', v });
    } else if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(sql[i + 1] ?? ''))) {
      const m = /^(?:0x[0-9a-f]+|\d*\.?\d+(?:e[+-]?\d+)?)/i.exec(sql.slice(i))!;
      out.push({ t: 'num', v: m[0] });
      i += m[0].length;
    } else if (/[A-Za-z_$\u0080-\uffff]/.test(c)) {
      const m = /^[A-Za-z0-9_$\u0080-\uffff]+/.exec(sql.slice(i))!;
      out.push({ t: 'id', v: m[0], quoted: false });
      i += m[0].length;
    } else {
      out.push({ t: 'p', v: c });
      i++;
    }
  }
  return out;
}

function unescape(c: string): string {
  return ({ n: '\n', t: '\t', r: '\r', '0': '\0', b: '\b', Z: '\x1a' } as Record<string, string>)[c] ?? c;
}

class Parser {
  i = 0;
  constructor(
    readonly toks: Tok[],
    readonly defaultSchema: string,
  ) {}
  peek(k = 0): Tok | undefined {
    return this.toks[this.i + k];
  }
  /** Whether the next token is the (unquoted) keyword `w`. */
  is(w: string, k = 0): boolean {
    const t = this.peek(k);
    return t !== undefined && t.t === 'id' && !t.quoted && t.v.toUpperCase() === w;
  }
  accept(...words: string[]): boolean {
    if (!words.every((w, k) => this.is(w, k))) return false;
    this.i += words.length;
    return true;
  }
  isP(v: string): boolean {
    const t = this.peek();
    return t !== undefined && t.t === 'p' && t.v === v;
  }
  acceptP(v: string): boolean {
    if (!this.isP(v)) return false;
    this.i++;
    return true;
  }
  ident(): string {
    const t = this.peek();
    if (t === undefined || (t.t !== 'id' && t.t !== 'str')) throw new Error('identifier expected');
    this.i++;
    return t.v;
  }
  tableName(): TableName {
    const a = this.ident();
    if (this.acceptP('.')) return { schema: a, name: this.ident() };
    return { schema: this.defaultSchema, name: a };
  }
  /** Skips a balanced parenthesised group starting at `(`; returns its tokens' text. */
  group(): string {
    const parts: string[] = [];
    let depth = 0;
    do {
      const t = this.peek();
      if (t === undefined) throw new Error('unbalanced parentheses');
      if (t.t === 'p' && t.v === '(') depth++;
      if (t.t === 'p' && t.v === ')') depth--;
      parts.push(t.t === 'str' ? `'${t.v.replaceAll("'", "''")}'` : t.v);
      this.i++;
    } while (depth > 0);
    return parts.join('').replace(/^\(|\)$/g, '');
  }
  /** Skips to the next `,` or `)` at this nesting level (not consuming it). */
  skipItem(): string {
    const parts: string[] = [];
    while (this.peek() !== undefined && !this.isP(',') && !this.isP(')') && !this.isP(';')) {
      if (this.isP('(')) parts.push(`(${this.group()})`);
      else parts.push(this.toks[this.i++]!.v);
    }
    return parts.join(' ');
  }
  done(): boolean {
    return this.peek() === undefined || this.isP(';');
  }
}

/** Parses one statement; null when it is not DDL that changes a table's shape or existence. */
export function parseDdl(sql: string, defaultSchema: string): Ddl | null {
  const p = new Parser(tokenize(sql), defaultSchema);
  try {
    return statement(p);
  } catch {
    return null;
  }
}

function statement(p: Parser): Ddl | null {
  if (p.accept('CREATE')) {
    p.accept('OR', 'REPLACE');
    if (p.accept('TEMPORARY')) return null;
    if (!p.accept('TABLE')) return null;
    p.accept('IF', 'NOT', 'EXISTS');
    const table = p.tableName();
    if (p.accept('LIKE'))
      return { kind: 'create', table, columns: null, primaryKey: [], like: p.tableName() };
    if (p.acceptP('(')) {
      if (p.accept('LIKE'))
        return { kind: 'create', table, columns: null, primaryKey: [], like: p.tableName() };
      return createBody(p, table);
    }
    return { kind: 'create', table, columns: null, primaryKey: [], like: null };
  }
  if (p.accept('DROP')) {
    if (p.accept('DATABASE') || p.accept('SCHEMA')) {
      p.accept('IF', 'EXISTS');
      return { kind: 'drop-database', schema: p.ident() };
    }
    if (p.accept('TEMPORARY')) return null;
    if (!p.accept('TABLE') && !p.accept('TABLES')) return null;
    p.accept('IF', 'EXISTS');
    const tables = [p.tableName()];
    while (p.acceptP(',')) tables.push(p.tableName());
    return { kind: 'drop', tables };
  }
  if (p.accept('RENAME')) {
    if (!p.accept('TABLE') && !p.accept('TABLES')) return null;
    const pairs: { from: TableName; to: TableName }[] = [];
    do {
      p.accept('IF', 'EXISTS');
      const from = p.tableName();
      p.accept('WAIT');
      if (!p.accept('TO')) throw new Error('TO expected');
      pairs.push({ from, to: p.tableName() });
    } while (p.acceptP(','));
    return { kind: 'rename', pairs };
  }
  if (p.accept('TRUNCATE')) {
    p.accept('TABLE');
    return { kind: 'truncate', table: p.tableName() };
  }
  if (p.accept('ALTER')) {
    p.accept('ONLINE');
    p.accept('IGNORE');
    if (!p.accept('TABLE')) return null;
    p.accept('IF', 'EXISTS');
    const table = p.tableName();
    p.accept('WAIT');
    p.accept('NOWAIT');
    const ops: AlterOp[] = [];
    let renameTo: TableName | null = null;
    while (!p.done()) {
      if (p.accept('RENAME', 'COLUMN')) {
        const from = p.ident();
        p.accept('TO');
        ops.push({ op: 'rename-column', from, to: p.ident() });
      } else if (p.is('RENAME') && !p.is('INDEX', 1) && !p.is('KEY', 1)) {
        p.accept('RENAME');
        if (!p.accept('TO')) p.accept('AS');
        renameTo = p.tableName();
      } else {
        ops.push(...alterSpec(p));
      }
      if (!p.acceptP(',')) break;
    }
    return { kind: 'alter', table, ops, renameTo };
  }
  return null;
}

function createBody(p: Parser, table: TableName): Ddl {
  const columns: ColumnDef[] = [];
  let primaryKey: string[] = [];
  for (;;) {
    if (p.accept('PRIMARY', 'KEY')) {
      primaryKey = keyColumns(p);
      p.skipItem();
    } else if (p.is('CONSTRAINT') || isIndexWord(p)) {
      if (p.accept('CONSTRAINT')) {
        if (!p.is('PRIMARY') && !p.is('UNIQUE') && !p.is('FOREIGN') && !p.is('CHECK')) p.ident();
      }
      if (p.accept('PRIMARY', 'KEY')) primaryKey = keyColumns(p);
      p.skipItem();
    } else {
      const c = columnDef(p);
      columns.push(c);
      if (c.primaryKey) primaryKey = [c.name];
    }
    if (p.acceptP(',')) continue;
    if (!p.acceptP(')')) throw new Error(') expected');
    break;
  }
  return { kind: 'create', table, columns, primaryKey, like: null };
}

function isIndexWord(p: Parser): boolean {
  return ['KEY', 'INDEX', 'UNIQUE', 'FULLTEXT', 'SPATIAL', 'FOREIGN', 'CHECK', 'PERIOD'].some((w) => p.is(w));
}

function keyColumns(p: Parser): string[] {
  while (!p.isP('(')) p.i++;
  const text = p.group();
  return splitTop(text).map((s) =>
    s
      .trim()
      .replace(/\(.*$/, '')
      .replace(/\s+(ASC|DESC)$/i, '')
      .trim(),
  );
}

function splitTop(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (cur.trim() !== '') out.push(cur);
  return out;
}

function alterSpec(p: Parser): AlterOp[] {
  if (p.accept('ADD')) {
    if (p.accept('PRIMARY', 'KEY')) {
      const columns = keyColumns(p);
      p.skipItem();
      return [{ op: 'add-primary-key', columns }];
    }
    if (p.is('CONSTRAINT')) {
      p.accept('CONSTRAINT');
      if (!p.is('PRIMARY') && !p.is('UNIQUE') && !p.is('FOREIGN') && !p.is('CHECK')) p.ident();
      if (p.accept('PRIMARY', 'KEY')) {
        const columns = keyColumns(p);
        p.skipItem();
        return [{ op: 'add-primary-key', columns }];
      }
      p.skipItem();
      return [{ op: 'none' }];
    }
    if (isIndexWord(p) || p.is('PARTITION')) {
      p.skipItem();
      return [{ op: 'none' }];
    }
    p.accept('COLUMN');
    p.accept('IF', 'NOT', 'EXISTS');
    if (p.acceptP('(')) {
      const ops: AlterOp[] = [];
      do ops.push({ op: 'add', column: columnDef(p) });
      while (p.acceptP(','));
      if (!p.acceptP(')')) throw new Error(') expected');
      return ops;
    }
    const column = columnDef(p);
    return [{ op: 'add', column }];
  }
  if (p.accept('DROP')) {
    if (p.accept('PRIMARY', 'KEY')) return [{ op: 'drop-primary-key' }];
    if (isIndexWord(p) || p.is('CONSTRAINT') || p.is('PARTITION') || p.is('SYSTEM')) {
      p.skipItem();
      return [{ op: 'none' }];
    }
    p.accept('COLUMN');
    p.accept('IF', 'EXISTS');
    const column = p.ident();
    p.accept('RESTRICT');
    p.accept('CASCADE');
    return [{ op: 'drop', column }];
  }
  if (p.accept('CHANGE')) {
    p.accept('COLUMN');
    p.accept('IF', 'EXISTS');
    const from = p.ident();
    return [{ op: 'change', from, column: columnDef(p) }];
  }
  if (p.accept('MODIFY')) {
    p.accept('COLUMN');
    p.accept('IF', 'EXISTS');
    const column = columnDef(p);
    return [{ op: 'change', from: column.name, column }];
  }
  if (p.is('ALTER') && !p.is('INDEX', 1)) {
    // ALTER [COLUMN] c SET DEFAULT …/DROP DEFAULT/SET [IN]VISIBLE: no shape change.
    p.skipItem();
    return [{ op: 'none' }];
  }
  if (p.is('CONVERT') || p.is('DISCARD') || p.is('IMPORT')) return [{ op: 'unknown', text: p.skipItem() }];
  // Table options (ENGINE=, ALGORITHM=, LOCK=, FORCE, ORDER BY, COMMENT=, partitioning …).
  p.skipItem();
  return [{ op: 'none' }];
}

function columnDef(p: Parser): ColumnDef {
  const name = p.ident();
  const base = p.ident();
  let typeText = base;
  if (p.isP('(')) typeText += `(${p.group()})`;
  let charset: string | null = null;
  let notNull = false;
  let primaryKey = false;
  let generated = false;
  let dflt: ColumnDef['default'] = { kind: 'none' };
  // Type modifiers before the attributes.
  while (p.is('UNSIGNED') || p.is('SIGNED') || p.is('ZEROFILL') || p.is('PRECISION') || p.is('VARYING')) {
    typeText += ` ${p.ident().toLowerCase()}`;
  }
  if (/^(double)$/i.test(base)) typeText = typeText.replace(/\s+precision/i, '');
  while (!p.done() && !p.isP(',') && !p.isP(')')) {
    if (p.accept('NOT', 'NULL')) notNull = true;
    else if (p.accept('NULL')) notNull = false;
    else if (p.accept('PRIMARY', 'KEY') || p.accept('KEY')) primaryKey = true;
    else if (p.accept('UNIQUE')) p.accept('KEY');
    else if (p.accept('CHARACTER', 'SET') || p.accept('CHARSET')) charset = p.ident().toLowerCase();
    else if (p.accept('COLLATE')) p.ident();
    else if (p.accept('BINARY') || p.accept('ASCII') || p.accept('UNICODE') || p.accept('BYTE')) {
      // attribute forms of a binary collation / charset for text types: still text
    } else if (p.accept('DEFAULT')) dflt = defaultValue(p);
    else if (p.accept('GENERATED', 'ALWAYS') || p.is('AS')) {
      p.accept('AS');
      if (p.isP('(')) p.group();
      generated = true;
    } else if (p.accept('ON', 'UPDATE')) {
      p.ident();
      if (p.isP('(')) p.group();
    } else if (p.accept('COMMENT')) p.i++;
    else if (p.accept('AFTER')) p.ident();
    else if (p.accept('CHECK')) p.group();
    else if (p.accept('REFERENCES')) p.skipItem();
    else if (p.isP('(')) p.group();
    else p.i++;
  }
  if (/^(binary|varbinary|tinyblob|blob|mediumblob|longblob)$/i.test(base)) charset = 'binary';
  return { name, typeText, charset, notNull: notNull || primaryKey, primaryKey, default: dflt, generated };
}

function defaultValue(p: Parser): ColumnDef['default'] {
  const t = p.peek();
  if (t === undefined) throw new Error('default expected');
  if (t.t === 'str') {
    p.i++;
    return { kind: 'literal', text: t.v };
  }
  if (t.t === 'num') {
    p.i++;
    return { kind: 'literal', text: t.v };
  }
  if (t.t === 'p' && (t.v === '-' || t.v === '+') && p.peek(1)?.t === 'num') {
    p.i += 2;
    return { kind: 'literal', text: `${t.v === '-' ? '-' : ''}${p.peek(-1)?.v ?? ''}` };
  }
  if (p.accept('NULL')) return { kind: 'literal', text: null };
  if (p.isP('(')) return { kind: 'expression', sql: p.group() };
  const word = p.ident();
  if (p.isP('(')) return { kind: 'expression', sql: `${word}(${p.group()})` };
  if (/^(true|false)$/i.test(word)) return { kind: 'literal', text: /^true$/i.test(word) ? '1' : '0' };
  return { kind: 'expression', sql: word };
}

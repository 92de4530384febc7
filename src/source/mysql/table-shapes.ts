/**
 * Table shapes in the core model, from each place MySQL describes them — DDL text, a binlog
 * TABLE_MAP, the catalog — and the `SchemaChange` between two shapes of one table.
 */
import type { ColumnChange, ColumnFill } from '../../core/schema-change.ts';
import type { ColumnSchema, TableSchema } from '../../core/table-schema.ts';
import { formatFloat4, formatFloat8 } from '../../decode/pg-values.ts';
import { columnSchema, parseColumnType, type MysqlType } from './column-types.ts';
import type { AlterOp, ColumnDef } from './ddl-parser.ts';
import type { MappedTable } from './row-decoder.ts';

/** A column with the MySQL type it came from (cells and fills depend on it). */
export interface TypedColumn {
  readonly column: ColumnSchema;
  readonly type: MysqlType;
}

export interface Shape {
  readonly table: TableSchema;
  readonly types: readonly MysqlType[];
}

export function makeShape(
  ids: { schema: string; name: string; relationId: number },
  columns: readonly TypedColumn[],
  keyNames: readonly string[],
): Shape {
  const keyColumns = keyNames
    .map((k) => columns.findIndex((c) => c.column.name.toLowerCase() === k.toLowerCase()))
    .filter((i) => i >= 0);
  const cols = columns.map((c, i) => ({ ...c.column, isKey: keyColumns.includes(i) }));
  return {
    table: {
      schema: ids.schema,
      name: ids.name,
      relationId: ids.relationId,
      columns: cols,
      keyColumns,
      keyless: keyColumns.length === 0,
      enums: [],
    },
    types: columns.map((c) => c.type),
  };
}

export function typedFromDef(d: ColumnDef, where: string): TypedColumn {
  const type = parseColumnType(d.typeText, d.charset, `${where}.${d.name}`);
  return { column: columnSchema(d.name, type, { isKey: false, nullable: !d.notNull }), type };
}

export function shapeFromMap(m: MappedTable, relationId: number): Shape {
  const columns = m.columns.map((c) => ({
    column: columnSchema(c.name, c.type, { isKey: false, nullable: c.nullable }),
    type: c.type,
  }));
  return makeShape(
    { schema: m.schema, name: m.table, relationId },
    columns,
    m.primaryKey.map((i) => m.columns[i]!.name),
  );
}

/** Whether two shapes give the same columns (names, pivot types, nullability, key). */
export function sameColumns(a: TableSchema, b: TableSchema): boolean {
  if (a.columns.length !== b.columns.length) return false;
  for (let i = 0; i < a.columns.length; i++) {
    const x = a.columns[i]!;
    const y = b.columns[i]!;
    if (x.name !== y.name || x.typeName !== y.typeName || x.isKey !== y.isKey) return false;
  }
  return true;
}

export interface AlterResult {
  readonly after: Shape;
  readonly changes: ColumnChange[];
  readonly recopy: string | null;
  /** An operation was not understood: verify against the next table map. */
  readonly uncertain: boolean;
}

/** Applies ALTER TABLE column operations to a shape. */
export function applyAlter(
  before: Shape,
  ops: readonly AlterOp[],
  renameTo: { schema: string; name: string } | null,
): AlterResult {
  const where = `${before.table.schema}.${before.table.name}`;
  let cols: TypedColumn[] = before.table.columns.map((c, i) => ({ column: c, type: before.types[i]! }));
  let keys = before.table.keyColumns.map((i) => before.table.columns[i]!.name);
  const changes: ColumnChange[] = [];
  const recopy: string[] = [];
  let uncertain = false;
  const find = (name: string) => cols.findIndex((c) => c.column.name.toLowerCase() === name.toLowerCase());
  for (const op of ops) {
    switch (op.op) {
      case 'add': {
        const t = typedFromDef(op.column, where);
        cols.push(t);
        const fill = fillOf(op.column, t.type);
        if (fill.kind === 'per-row') recopy.push(`column ${op.column.name} was added with a value per row`);
        changes.push({ op: 'added', column: op.column.name, fill });
        if (op.column.primaryKey) keys = [op.column.name];
        break;
      }
      case 'drop': {
        const i = find(op.column);
        if (i < 0) {
          uncertain = true;
          break;
        }
        const name = cols[i]!.column.name;
        cols = cols.filter((_, k) => k !== i);
        keys = keys.filter((k) => k.toLowerCase() !== name.toLowerCase());
        changes.push({ op: 'dropped', column: name });
        break;
      }
      case 'change': {
        const i = find(op.from);
        if (i < 0) {
          uncertain = true;
          break;
        }
        const old = cols[i]!;
        const t = typedFromDef(op.column, where);
        if (old.column.name !== op.column.name) {
          changes.push({ op: 'renamed', from: old.column.name, to: op.column.name });
          keys = keys.map((k) => (k.toLowerCase() === old.column.name.toLowerCase() ? op.column.name : k));
        }
        if (old.column.typeName !== t.column.typeName) {
          const reproducible = widens(old.type, t.type);
          if (!reproducible)
            recopy.push(
              `column ${op.column.name} changed from ${old.column.typeName} to ${t.column.typeName}`,
            );
          changes.push({
            op: 'retyped',
            column: op.column.name,
            fromType: old.column.typeName,
            toType: t.column.typeName,
            reproducible,
          });
        }
        cols[i] = t;
        break;
      }
      case 'rename-column': {
        const i = find(op.from);
        if (i < 0) {
          uncertain = true;
          break;
        }
        const old = cols[i]!;
        cols[i] = { column: { ...old.column, name: op.to }, type: old.type };
        keys = keys.map((k) => (k.toLowerCase() === op.from.toLowerCase() ? op.to : k));
        changes.push({ op: 'renamed', from: old.column.name, to: op.to });
        break;
      }
      case 'add-primary-key':
        keys = [...op.columns];
        break;
      case 'drop-primary-key':
        keys = [];
        break;
      case 'none':
        break;
      case 'unknown':
        uncertain = true;
        break;
    }
  }
  const name = renameTo ?? before.table;
  const after = makeShape(
    { schema: name.schema, name: name.name, relationId: before.table.relationId },
    cols,
    keys,
  );
  return { after, changes, recopy: recopy.length > 0 ? recopy.join('; ') : null, uncertain };
}

/**
 * The column changes between two shapes of one table when no DDL text explains them (a table map
 * that differs from what we tracked): matched by name; a column that disappeared and one that
 * appeared are a drop and an add (a rename cannot be told from the row images), so the table is
 * re-copied whenever a column was added.
 */
export function diffShapes(before: Shape, after: Shape): { changes: ColumnChange[]; recopy: string | null } {
  const changes: ColumnChange[] = [];
  const recopy: string[] = [];
  const byName = new Map(before.table.columns.map((c, i) => [c.name, i]));
  const afterNames = new Set(after.table.columns.map((c) => c.name));
  for (const c of before.table.columns)
    if (!afterNames.has(c.name)) changes.push({ op: 'dropped', column: c.name });
  after.table.columns.forEach((c, i) => {
    const j = byName.get(c.name);
    if (j === undefined) {
      changes.push({ op: 'added', column: c.name, fill: { kind: 'per-row' } });
      recopy.push(`column ${c.name} appeared in the binlog without DDL Tidemark understood`);
    } else if (before.table.columns[j]!.typeName !== c.typeName) {
      const reproducible = widens(before.types[j]!, after.types[i]!);
      if (!reproducible) recopy.push(`column ${c.name} changed type`);
      changes.push({
        op: 'retyped',
        column: c.name,
        fromType: before.table.columns[j]!.typeName,
        toType: c.typeName,
        reproducible,
      });
    }
  });
  return { changes, recopy: recopy.length > 0 ? recopy.join('; ') : null };
}

/** Whether every value of `a` keeps its exact cell when the column becomes `b`. */
function widens(a: MysqlType, b: MysqlType): boolean {
  if (a.kind === 'int' && b.kind === 'int')
    return b.bytes >= a.bytes && (a.unsigned === b.unsigned || (!a.unsigned ? false : b.bytes > a.bytes));
  if (a.kind === 'string' && b.kind === 'string')
    return a.binary === b.binary && b.length >= a.length && (a.varying || !a.binary);
  if (a.kind === 'string' && b.kind === 'blob') return !a.binary && !b.binary;
  if (a.kind === 'decimal' && b.kind === 'decimal') return a.scale === b.scale && b.precision >= a.precision;
  if ((a.kind === 'enum' || a.kind === 'set') && a.kind === b.kind)
    return a.labels.every((l, i) => b.labels[i] === l);
  return false;
}

/** How existing rows get a value for an added column (DEFAULT literal, implicit default, or none). */
export function fillOf(d: ColumnDef, type: MysqlType): ColumnFill {
  if (d.generated) return { kind: 'per-row' };
  if (d.default.kind === 'expression') return { kind: 'per-row' };
  if (d.default.kind === 'literal') {
    if (d.default.text === null) return { kind: 'null' };
    const text = literalCell(d.default.text, type);
    return text === undefined
      ? { kind: 'per-row' }
      : text === null
        ? { kind: 'null' }
        : { kind: 'value', text };
  }
  if (!d.notNull) return { kind: 'null' };
  const implicit = implicitDefault(type);
  return implicit === undefined
    ? { kind: 'per-row' }
    : implicit === null
      ? { kind: 'null' }
      : { kind: 'value', text: implicit };
}

/** A DEFAULT literal as the column's cell; undefined when not certain. */
function literalCell(text: string, t: MysqlType): string | null | undefined {
  switch (t.kind) {
    case 'int':
    case 'year':
      return /^-?\d+$/.test(text) ? BigInt(text).toString() : undefined;
    case 'decimal': {
      const m = /^(-?)(\d*)(?:\.(\d*))?$/.exec(text);
      if (!m) return undefined;
      const frac = (m[3] ?? '').padEnd(t.scale, '0');
      if (frac.length > t.scale) return undefined;
      const int = (m[2] ?? '').replace(/^0+/, '') || '0';
      const body = t.scale > 0 ? `${int}.${frac}` : int;
      return m[1] === '-' && /[1-9]/.test(body) ? `-${body}` : body;
    }
    case 'float':
      return Number.isFinite(Number(text)) ? formatFloat4(Number(text)) : undefined;
    case 'double':
      return Number.isFinite(Number(text)) ? formatFloat8(Number(text)) : undefined;
    case 'string':
    case 'blob':
      return t.binary ? undefined : text;
    case 'enum':
      return t.labels.includes(text) ? text : undefined;
    default:
      return undefined;
  }
}

/** MySQL's implicit default of a NOT NULL column without DEFAULT; undefined when not certain. */
function implicitDefault(t: MysqlType): string | null | undefined {
  switch (t.kind) {
    case 'int':
    case 'year':
      return '0';
    case 'decimal':
      return t.scale > 0 ? `0.${'0'.repeat(t.scale)}` : '0';
    case 'float':
    case 'double':
      return '0';
    case 'string':
      return t.binary ? (t.varying ? '\\x' : `\\x${'00'.repeat(t.length)}`) : '';
    case 'blob':
      return t.binary ? '\\x' : '';
    case 'enum':
      return t.labels[0] ?? '';
    case 'set':
      return '';
    case 'date':
    case 'datetime':
    case 'timestamp':
      return null;
    default:
      return undefined;
  }
}

/** A stable id for a table first seen under `schema.name` (FNV-1a, 31 bits, probed past `used`). */
export function relationIdFor(schema: string, name: string, used: ReadonlySet<number>): number {
  let h = 0x811c9dc5;
  for (const ch of Buffer.from(`${schema}\0${name}`, 'utf8')) {
    h ^= ch;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  let id = h & 0x7fffffff || 1;
  while (used.has(id)) id = (id + 1) & 0x7fffffff || 1;
  return id;
}

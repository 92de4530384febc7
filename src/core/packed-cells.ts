/**
 * A row's cells packed in one byte range: the form rows travel in from the change log to a sink
 * that writes bytes, without a JS string per cell (a string per cell, made and dropped at every
 * stage, was most of the catch-up path's garbage). Anyone who needs the values unpacks them
 * (`unpackCells`, or a change's `row`), which gives exactly the cells that were packed.
 *
 *   cells  n varint | cell × n ;  cell = varint h: 0 NULL, 1 UNCHANGED, h ≥ 2: h − 2 UTF-8 bytes
 *
 * Varints are unsigned LEB128 (at most 5 bytes). The change log stores cells in this very form
 * (log/record-codec.ts), so a record's cells are packed cells as they lie. The bytes are never
 * written to after packing: a `PackedCells` may be kept as long as anyone likes.
 */
import { UNCHANGED, type Cell, type Row } from './row.ts';
import type { TableSchema } from './table-schema.ts';

export class PackedCells {
  constructor(
    readonly bytes: Buffer,
    readonly start: number,
    readonly end: number,
  ) {}

  /** How many cells. */
  get count(): number {
    return readVarint(this.bytes, this.start).value;
  }
}

/** Thrown by `checkPackedCells` on bytes that do not frame cells. */
export class PackedCellsError extends Error {}

/** Reads an unsigned LEB128 varint at `pos`; `next` is the offset after it. */
function readVarint(bytes: Buffer, pos: number): { value: number; next: number } {
  let v = 0;
  for (let shift = 0; shift < 35; shift += 7) {
    const b = bytes[pos++];
    if (b === undefined) throw new PackedCellsError('cells end early');
    v += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) return { value: v, next: pos };
  }
  throw new PackedCellsError('varint too long');
}

/**
 * Checks that `bytes[start, …)` frames cells ending at or before `limit` and returns where they
 * end, creating no string: a reader checks what it reads once, and unpacks it later (or never).
 */
export function checkPackedCells(bytes: Buffer, start: number, limit: number): number {
  let pos = start;
  let n = 0;
  for (let shift = 0; ; shift += 7) {
    if (shift >= 35) throw new PackedCellsError('varint too long');
    if (pos >= limit) throw new PackedCellsError('cells end early');
    const b = bytes[pos++]!;
    n += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) break;
  }
  for (let i = 0; i < n; i++) {
    let h = 0;
    for (let shift = 0; ; shift += 7) {
      if (shift >= 35) throw new PackedCellsError('varint too long');
      if (pos >= limit) throw new PackedCellsError('cells end early');
      const b = bytes[pos++]!;
      h += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) break;
    }
    if (h >= 2) {
      pos += h - 2;
      if (pos > limit) throw new PackedCellsError('cell runs past the record');
    }
  }
  return pos;
}

/** The cells, as strings. */
export function unpackCells(p: PackedCells): Cell[] {
  const bytes = p.bytes;
  const head = readVarint(bytes, p.start);
  const n = head.value;
  let pos = head.next;
  const out: Cell[] = new Array<Cell>(n);
  for (let i = 0; i < n; i++) {
    let h = bytes[pos++]!;
    if (h >= 0x80) {
      const v = readVarint(bytes, pos - 1);
      h = v.value;
      pos = v.next;
    }
    if (h === 0) out[i] = null;
    else if (h === 1) out[i] = UNCHANGED;
    else {
      const end = pos + h - 2;
      out[i] = bytes.toString('utf8', pos, end);
      pos = end;
    }
  }
  return out;
}

/** Packs cells into a buffer of their own (tests, and rows that did not arrive packed). */
export function packCells(cells: readonly Cell[]): PackedCells {
  let size = 5;
  for (const c of cells) size += typeof c === 'string' ? 5 + Buffer.byteLength(c, 'utf8') : 1;
  const bytes = Buffer.allocUnsafe(size);
  let pos = writeVarint(bytes, 0, cells.length);
  for (const c of cells) {
    if (c === null) pos = writeVarint(bytes, pos, 0);
    else if (c === UNCHANGED) pos = writeVarint(bytes, pos, 1);
    else {
      pos = writeVarint(bytes, pos, Buffer.byteLength(c, 'utf8') + 2);
      pos += bytes.write(c, pos, 'utf8');
    }
  }
  return new PackedCells(bytes, 0, pos);
}

function writeVarint(into: Buffer, at: number, n: number): number {
  let v = n;
  let pos = at;
  while (v >= 0x80) {
    into[pos++] = (v & 0x7f) | 0x80;
    v = Math.floor(v / 0x80);
  }
  into[pos++] = v;
  return pos;
}

/** True when some cell is UNCHANGED. */
export function packedHasUnchanged(p: PackedCells): boolean {
  const bytes = p.bytes;
  const head = readVarint(bytes, p.start);
  let pos = head.next;
  for (let i = 0; i < head.value; i++) {
    const v = readVarint(bytes, pos);
    if (v.value === 1) return true;
    pos = v.next + (v.value >= 2 ? v.value - 2 : 0);
  }
  return false;
}

/**
 * The cells at `columns` (ascending column indexes), unpacked; the others are skipped without
 * making a string. A column past the row's end is UNCHANGED, as for a short row.
 */
export function packedCellsAt(p: PackedCells, columns: readonly number[]): Cell[] {
  const bytes = p.bytes;
  const head = readVarint(bytes, p.start);
  let pos = head.next;
  const out: Cell[] = new Array<Cell>(columns.length).fill(UNCHANGED);
  let want = 0;
  for (let i = 0; i < head.value && want < columns.length; i++) {
    let h = bytes[pos++]!;
    if (h >= 0x80) {
      const v = readVarint(bytes, pos - 1);
      h = v.value;
      pos = v.next;
    }
    const len = h >= 2 ? h - 2 : 0;
    if (columns[want] === i) {
      out[want++] = h === 0 ? null : h === 1 ? UNCHANGED : bytes.toString('utf8', pos, pos + len);
    }
    pos += len;
  }
  return out;
}

/**
 * The cell at `column` as a number when it is a decimal integer in canonical form (`0`, or an
 * optional `-` and 1–15 digits without a leading zero: exact as a double, and no other text gives
 * the same number), else null. Reads the bytes: no string is made.
 */
export function packedIntAt(p: PackedCells, column: number): number | null {
  const bytes = p.bytes;
  const head = readVarint(bytes, p.start);
  let pos = head.next;
  for (let i = 0; i < head.value; i++) {
    let h = bytes[pos++]!;
    if (h >= 0x80) {
      const v = readVarint(bytes, pos - 1);
      h = v.value;
      pos = v.next;
    }
    const len = h >= 2 ? h - 2 : 0;
    if (i === column) return h >= 2 ? canonicalInt(bytes, pos, pos + len) : null;
    pos += len;
  }
  return null;
}

function canonicalInt(bytes: Buffer, start: number, end: number): number | null {
  const neg = bytes[start] === 0x2d;
  const from = neg ? start + 1 : start;
  const digits = end - from;
  if (digits < 1 || digits > 15) return null;
  if (bytes[from] === 0x30 && (digits > 1 || neg)) return null;
  let n = 0;
  for (let k = from; k < end; k++) {
    const d = bytes[k]! - 0x30;
    if (d < 0 || d > 9) return null;
    n = n * 10 + d;
  }
  return neg ? -n : n;
}

/** `packedIntAt` of a cell given as text. */
export function textIntKey(text: string): number | null {
  const neg = text.charCodeAt(0) === 0x2d;
  const from = neg ? 1 : 0;
  const digits = text.length - from;
  if (digits < 1 || digits > 15) return null;
  if (text.charCodeAt(from) === 0x30 && (digits > 1 || neg)) return null;
  let n = 0;
  for (let k = from; k < text.length; k++) {
    const d = text.charCodeAt(k) - 0x30;
    if (d < 0 || d > 9) return null;
    n = n * 10 + d;
  }
  return neg ? -n : n;
}

/** The bytes of heap a packed row stands for once unpacked, as `EpochBuilder` counts rows. */
export function packedBytes(p: PackedCells): number {
  return p.end - p.start + 24 * p.count;
}

/** A row that may still be packed: its cells. */
export function cellsOf(row: readonly Cell[] | PackedCells): Cell[] {
  return row instanceof PackedCells ? unpackCells(row) : (row as Cell[]);
}

/*
 * Row changes whose cells are packed (the change log reader's): `row` and `old` unpack on first
 * use, so a consumer that only needs the bytes (`packedRow`, `packedOld`) makes no string.
 */

export class PackedInsert {
  readonly tag = 'insert';
  private cells: Row | undefined;
  constructor(
    readonly table: TableSchema,
    readonly packedRow: PackedCells,
  ) {}
  get row(): Row {
    return (this.cells ??= unpackCells(this.packedRow) as Row);
  }
}

export class PackedUpdate {
  readonly tag = 'update';
  private cells: Cell[] | undefined;
  private oldCells: Row | null | undefined;
  constructor(
    readonly table: TableSchema,
    readonly packedRow: PackedCells,
    readonly packedOld: PackedCells | null,
    readonly oldIsFull: boolean,
  ) {}
  get row(): Cell[] {
    return (this.cells ??= unpackCells(this.packedRow));
  }
  get old(): Row | null {
    if (this.oldCells === undefined)
      this.oldCells = this.packedOld === null ? null : (unpackCells(this.packedOld) as Row);
    return this.oldCells;
  }
}

export class PackedDelete {
  readonly tag = 'delete';
  private cells: Row | undefined;
  constructor(
    readonly table: TableSchema,
    readonly packedOld: PackedCells,
  ) {}
  get old(): Row {
    return (this.cells ??= unpackCells(this.packedOld) as Row);
  }
}

/** Table shapes the runtime's unit tests share (not shipped: `*.fixture.ts` stays out of dist). */
import type { TableSchema } from '../core/table-schema.ts';

/** A nullable text column. */
export const textColumn = (name: string) => ({
  name,
  typeOid: 25,
  typeMod: -1,
  typeName: 'text',
  isKey: false,
  nullable: true,
});

/** `public.bag (a text, b text)`, id 7, without a key. */
export const bag: TableSchema = {
  schema: 'public',
  name: 'bag',
  relationId: 7,
  columns: [textColumn('a'), textColumn('b')],
  keyColumns: [],
  keyless: true,
  enums: [],
};

/** The two-column keyed table of the change-log tests (no vitest import: child fixtures use it too). */
import type { TableSchema } from '../../src/core/table-schema.ts';

export function table(name: string, relationId: number): TableSchema {
  return {
    schema: 'public',
    name,
    relationId,
    columns: [
      { name: 'id', typeOid: 23, typeMod: -1, typeName: 'integer', isKey: true, nullable: false },
      { name: 'v', typeOid: 25, typeMod: -1, typeName: 'text', isKey: false, nullable: true },
    ],
    keyColumns: [0],
    keyless: false,
    enums: [],
  };
}

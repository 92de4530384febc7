/**
 * Run as a child process by change-log.test.ts: commits one transaction, writes most of a second
 * one to disk, then SIGKILLs itself mid-transaction.  Usage: crash-writer.fixture.ts <log dir>
 */
import { ChangeLog } from '../../src/log/change-log.ts';
import { Lsn } from '../../src/source/postgres/lsn.ts';
import type { TableSchema } from '../../src/decode/table-schema.ts';

const dir = process.argv[2]!;
const t: TableSchema = {
  schema: 'public',
  name: 'items',
  relationId: 1000,
  columns: [
    { name: 'id', typeOid: 23, typeMod: -1, typeName: 'integer', isKey: true, nullable: false },
    { name: 'v', typeOid: 25, typeMod: -1, typeName: 'text', isKey: false, nullable: true },
  ],
  keyColumns: [0],
  keyless: false,
  enums: [],
};
const log = ChangeLog.open({ path: dir, writeBatchBytes: 4096 });
log.startAt(Lsn.parse('0/10'));
log.begin(Lsn.parse('0/100'), 1);
for (let i = 0; i < 3; i++) log.append({ tag: 'insert', table: t, row: [String(i), 'committed'] });
log.commit(1);
log.begin(Lsn.parse('0/200'), 2);
for (let i = 0; i < 5000; i++) log.append({ tag: 'insert', table: t, row: [String(i), 'x'.repeat(50)] });
process.stdout.write('spilled\n');
process.kill(process.pid, 'SIGKILL');

/**
 * Run as a child process by hub.test.ts: holds a change hub on a PostgreSQL source, with one
 * subscription `k` on one table that acknowledges every commit it reads, until it is SIGKILLed.
 *
 *   Usage: hub-holder.fixture.ts <source url> <hub dir> <table>
 *
 *   prints  start <position>     once subscribed (it reads after it)
 *           ack <position>       after each acknowledgement
 */
import { eachMessage } from '../../src/core/change.ts';
import { ChangeHub } from '../../src/log/hub.ts';
import { PostgresConnector } from '../../src/source/postgres/pg-connector.ts';

const [url, dir, table] = process.argv.slice(2) as [string, string, string];
const connector = new PostgresConnector({ url, heartbeatIntervalMs: 60_000 });
const hub = ChangeHub.open({ connector, dir });
const { tables } = await connector.describe([`public.${table}`]);
const start = await hub.registerAtEnd('k', tables);
const sub = await hub.subscribe({ id: 'k', tables, checkpoint: start });
process.stdout.write(`start ${start.toString()}\n`);
for await (const m of eachMessage(sub.read(start))) {
  if (m.tag !== 'commit') continue;
  sub.acknowledge(m.position);
  process.stdout.write(`ack ${m.position.toString()}\n`);
}

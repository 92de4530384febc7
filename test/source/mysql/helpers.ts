import type { ReplicationSession, SourceEvent } from '../../../src/source/connector.ts';
import type { BinlogPosition } from '../../../src/source/mysql/binlog-position.ts';

export type Ev = SourceEvent<BinlogPosition>;

/** Pulls batches until `done` says the collected events are enough. */
export async function collect(
  it: AsyncIterator<readonly Ev[]>,
  done: (events: Ev[]) => boolean,
  timeoutMs = 60_000,
): Promise<Ev[]> {
  const events: Ev[] = [];
  const deadline = Date.now() + timeoutMs;
  while (!done(events)) {
    if (Date.now() > deadline) throw new Error(`timed out; collected:\n${transcript(events).join('\n')}`);
    const r = await it.next();
    if (r.done) throw new Error('stream ended early');
    events.push(...r.value);
  }
  return events;
}

export function iterate(session: ReplicationSession<BinlogPosition>): AsyncIterator<readonly Ev[]> {
  return session.events[Symbol.asyncIterator]();
}

/** Whether a commit of a transaction holding a change of `table` with `marker` in its cells arrived. */
export function sawRow(table: string, marker: string) {
  return (events: Ev[]) =>
    events.some(
      (e) => (e.tag === 'insert' || e.tag === 'update') && e.table.name === table && e.row.includes(marker),
    ) && events[events.length - 1]?.tag === 'commit';
}

/** Transactions with changes, without empty (begin · commit) ones. */
export function transactions(events: Ev[]): Ev[][] {
  const out: Ev[][] = [];
  let cur: Ev[] = [];
  for (const e of events) {
    cur.push(e);
    if (e.tag === 'commit') {
      if (cur.length > 2) out.push(cur);
      cur = [];
    }
  }
  return out;
}

/** One short line per event, empty transactions left out. */
export function transcript(events: Ev[]): string[] {
  const lines: string[] = [];
  for (const t of transactions(events)) {
    for (const e of t) {
      switch (e.tag) {
        case 'begin':
          lines.push('begin');
          break;
        case 'commit':
          lines.push('commit');
          break;
        case 'insert':
          lines.push(`insert ${e.table.name} ${JSON.stringify(e.row)}`);
          break;
        case 'update':
          lines.push(`update ${e.table.name} ${JSON.stringify(e.old)} -> ${JSON.stringify(e.row)}`);
          break;
        case 'delete':
          lines.push(`delete ${e.table.name} ${JSON.stringify(e.old)}`);
          break;
        case 'truncate':
          lines.push(`truncate ${e.tables.map((t) => t.name).join(',')}`);
          break;
        case 'schema': {
          const c = e.change;
          if (c.kind === 'table-created')
            lines.push(
              `created ${c.table.name} (${c.table.columns.map((x) => `${x.name} ${x.typeName}`).join(', ')})`,
            );
          else if (c.kind === 'table-dropped') lines.push(`dropped ${c.table.name}`);
          else
            lines.push(
              `altered ${c.before.name}${c.after.name !== c.before.name ? `→${c.after.name}` : ''} ${JSON.stringify(c.columns)}${c.recopy ? ` recopy: ${c.recopy}` : ''}`,
            );
          break;
        }
      }
    }
  }
  return lines;
}

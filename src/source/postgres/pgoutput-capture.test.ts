import { describe, expect, it } from 'vitest';
import { UNCHANGED } from '../../core/row.ts';
import { CAPTURED_STREAM_BASE64 } from './pgoutput-capture.fixture.ts';
import { decodeCopyData, decodePgoutput } from './pgoutput-decoder.ts';
import type { ReplicationEvent } from './pgoutput-messages.ts';
import { BackendFrameDecoder, type BackendFrame } from './wire/backend-frame-decoder.ts';

const captured = Buffer.from(CAPTURED_STREAM_BASE64, 'base64');

function decode(chunks: Buffer[]): ReplicationEvent[] {
  const decoder = new BackendFrameDecoder();
  const frames: BackendFrame[] = [];
  for (const c of chunks) decoder.push(c, frames);
  expect(String.fromCharCode(frames[0]!.type)).toBe('W');
  return frames.slice(1).map((f) => {
    const env = decodeCopyData(f.payload);
    return env.tag === 'xlog' ? decodePgoutput(env.payload) : env;
  });
}

/** One short line per event, so the whole stream reads as a transcript. */
function transcript(events: ReplicationEvent[]): string[] {
  const cells = (row: readonly unknown[] | null) =>
    row === null
      ? '-'
      : row
          .map((c) =>
            c === UNCHANGED
              ? 'U'
              : c === null
                ? 'NULL'
                : (c as string).length > 20
                  ? `<${(c as string).length}>`
                  : JSON.stringify(c),
          )
          .join(',');
  return events.map((e) => {
    switch (e.tag) {
      case 'begin':
        return `begin ${e.finalLsn.toString()} xid ${e.xid}`;
      case 'commit':
        return `commit ${e.commitLsn.toString()}..${e.endLsn.toString()}`;
      case 'relation':
        return `relation ${e.schema}.${e.name} ${e.replicaIdentity} ${e.columns.map((c) => `${c.isKey ? '*' : ''}${c.name}:${c.typeOid}`).join(' ')}`;
      case 'type':
        return `type ${e.schema}.${e.name} ${e.typeOid}`;
      case 'insert':
        return `insert ${e.relationId} ${cells(e.row)}`;
      case 'update':
        return `update ${e.relationId} ${e.oldKind ?? ''} ${cells(e.old)} -> ${cells(e.row)}`;
      case 'delete':
        return `delete ${e.relationId} ${e.oldKind} ${cells(e.old)}`;
      case 'truncate':
        return `truncate ${e.relationIds.join(',')} cascade=${e.cascade} restart=${e.restartIdentity}`;
      case 'message':
        return `message ${e.transactional ? 'tx' : 'non-tx'} ${e.prefix} ${e.content.toString()}`;
      case 'origin':
        return `origin ${e.name}`;
      case 'keepalive':
        return `keepalive ${e.walEnd.toString()}`;
    }
  });
}

const expected = [
  'keepalive 0/192A230',
  'begin 0/192AF68 xid 732',
  'type public.mood 16386',
  'relation public.t d *id:23 name:25 m:16386 big:25',
  'insert 16391 "1","","ok",<2500>',
  'insert 16391 "2",NULL,"sad",NULL',
  'insert 16391 "3","日本語 🙂",NULL,"z"',
  'commit 0/192AF68..0/192AF98',
  'begin 0/192B030 xid 733',
  'update 16391  - -> "1","n","ok",U',
  'commit 0/192B030..0/192B060',
  'begin 0/192B0F8 xid 734',
  'update 16391 key "2",NULL,NULL,NULL -> "4",NULL,"sad",NULL',
  'commit 0/192B0F8..0/192B128',
  'begin 0/192B168 xid 735',
  'delete 16391 key "3",NULL,NULL,NULL',
  'commit 0/192B168..0/192B198',
  'begin 0/192B210 xid 736',
  'relation public.f f *a:25 *b:23',
  'insert 16398 "a","1"',
  'insert 16398 "",NULL',
  'commit 0/192B210..0/192B240',
  'begin 0/192B298 xid 737',
  'update 16398 full "a","1" -> "a","2"',
  'commit 0/192B298..0/192B2C8',
  'begin 0/192B308 xid 738',
  'delete 16398 full "",NULL',
  'commit 0/192B308..0/192B338',
  'begin 0/192B378 xid 739',
  'message tx tidemark x',
  'commit 0/192B378..0/192B3A8',
  'message non-tx tidemark nontx',
  'begin 0/192C7A8 xid 740',
  'type public.mood 16386',
  'relation public.t d *id:23 name:25 m:16386 big:25',
  'relation public.f f *a:25 *b:23',
  'truncate 16391,16398 cascade=false restart=false',
  'commit 0/192C7A8..0/192C9E8',
  'keepalive 0/192C9E8',
];

describe('a captured PostgreSQL 15 replication stream', () => {
  it('decodes to the statements that produced it', () => {
    expect(transcript(decode([captured]))).toEqual(expected);
  });

  it('decodes the same when the socket data is split at every offset', () => {
    for (let at = 0; at <= captured.length; at++) {
      expect(transcript(decode([captured.subarray(0, at), captured.subarray(at)]))).toEqual(expected);
    }
  });
});

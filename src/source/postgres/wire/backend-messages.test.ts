import { describe, expect, it } from 'vitest';
import {
  parseAuthentication,
  parseDataRow,
  parseErrorFields,
  parseParameterStatus,
  parseRowDescription,
} from './backend-messages.ts';
import { ByteBuilder } from './byte-builder.ts';

describe('backend message parsers', () => {
  it('ErrorResponse keeps severity, code, message, detail, hint and every other field', () => {
    const body = new ByteBuilder()
      .char('S')
      .cstring('FEHLER')
      .char('V')
      .cstring('ERROR')
      .char('C')
      .cstring('55006')
      .char('M')
      .cstring('replication slot "s" is active for PID 42')
      .char('D')
      .cstring('détail ✓')
      .char('H')
      .cstring('stop it')
      .char('R')
      .cstring('ReplicationSlotAcquire')
      .u8(0)
      .build();
    const n = parseErrorFields(body);
    expect(n).toMatchObject({
      severity: 'ERROR',
      code: '55006',
      message: 'replication slot "s" is active for PID 42',
      detail: 'détail ✓',
      hint: 'stop it',
    });
    expect(n.fields['R']).toBe('ReplicationSlotAcquire');
  });

  it('a NoticeResponse without optional fields has none of them', () => {
    const n = parseErrorFields(
      new ByteBuilder().char('S').cstring('NOTICE').char('M').cstring('hi').u8(0).build(),
    );
    expect(n).toEqual({ severity: 'NOTICE', message: 'hi', fields: { S: 'NOTICE', M: 'hi' } });
  });

  it('Authentication requests', () => {
    expect(parseAuthentication(new ByteBuilder().i32(0).build())).toEqual({ kind: 'ok' });
    expect(parseAuthentication(new ByteBuilder().i32(3).build())).toEqual({ kind: 'cleartext' });
    const md5 = parseAuthentication(new ByteBuilder().i32(5).u8(1, 2, 3, 4).build());
    expect(md5.kind === 'md5' && [...md5.salt]).toEqual([1, 2, 3, 4]);
    expect(
      parseAuthentication(
        new ByteBuilder().i32(10).cstring('SCRAM-SHA-256-PLUS').cstring('SCRAM-SHA-256').u8(0).build(),
      ),
    ).toEqual({ kind: 'sasl', mechanisms: ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'] });
    expect(parseAuthentication(new ByteBuilder().i32(11).bytes('r=abc').build())).toEqual({
      kind: 'sasl-continue',
      data: 'r=abc',
    });
    expect(parseAuthentication(new ByteBuilder().i32(12).bytes('v=xyz').build())).toEqual({
      kind: 'sasl-final',
      data: 'v=xyz',
    });
    expect(parseAuthentication(new ByteBuilder().i32(7).build())).toEqual({ kind: 'unsupported', code: 7 });
  });

  it('ParameterStatus, RowDescription and DataRow (NULL vs empty, UTF-8)', () => {
    expect(parseParameterStatus(new ByteBuilder().cstring('TimeZone').cstring('UTC').build())).toEqual({
      name: 'TimeZone',
      value: 'UTC',
    });
    const field = (name: string) =>
      new ByteBuilder().cstring(name).i32(0).i16(0).i32(25).i16(-1).i32(-1).i16(0).build();
    const desc = new ByteBuilder().i16(2).bytes(field('slot_name')).bytes(field('snapshot_name')).build();
    expect(parseRowDescription(desc)).toEqual(['slot_name', 'snapshot_name']);
    const row = new ByteBuilder().i16(3).i32(-1).i32(0).i32(10).bytes('日本🙂').build();
    expect(parseDataRow(row)).toEqual([null, '', '日本🙂']);
  });
});

import { describe, expect, it } from 'vitest';
import {
  encodeCopyData,
  encodeCopyDone,
  encodePassword,
  encodeQuery,
  encodeSaslInitialResponse,
  encodeSaslResponse,
  encodeStandbyStatus,
  encodeStartup,
  encodeTerminate,
} from './frontend-messages.ts';

const hex = (b: Buffer) => b.toString('hex');

describe('frontend message encoders', () => {
  it('StartupMessage: length, protocol 3.0, name/value pairs, final NUL', () => {
    const b = encodeStartup({ user: 'u', replication: 'database' });
    expect(hex(b)).toBe('00000025' + '00030000' + hex(Buffer.from('user\0u\0replication\0database\0\0')));
    expect(b.readInt32BE(0)).toBe(b.length);
  });

  it('typed messages carry type byte and self-inclusive length', () => {
    expect(hex(encodeQuery('SELECT 1'))).toBe('510000000d' + hex(Buffer.from('SELECT 1\0')));
    expect(hex(encodePassword('pw'))).toBe('7000000007' + hex(Buffer.from('pw\0')));
    expect(hex(encodeCopyDone())).toBe('6300000004');
    expect(hex(encodeTerminate())).toBe('5800000004');
    expect(hex(encodeCopyData(Buffer.from([1, 2])))).toBe('64000000060102');
    expect(hex(encodeSaslResponse('ab'))).toBe('70000000066162');
  });

  it('SASLInitialResponse: mechanism, Int32 data length, data', () => {
    const b = encodeSaslInitialResponse({ mechanism: 'SCRAM-SHA-256', data: 'n,,n=*,r=x' });
    expect(b.toString('latin1', 5, 19)).toBe('SCRAM-SHA-256\0');
    expect(b.readInt32BE(19)).toBe(10);
    expect(b.toString('utf8', 23)).toBe('n,,n=*,r=x');
    expect(b.readInt32BE(1)).toBe(b.length - 1);
  });

  it('standby status update: three LSNs, clock since 2000-01-01 in µs, reply flag', () => {
    const b = encodeStandbyStatus({
      writeLsn: 0x16_b374_d848n,
      flushLsn: 0x10n,
      applyLsn: 0n,
      nowMs: 946_684_800_000 + 1_500,
      replyRequested: true,
    });
    expect(b.length).toBe(39);
    expect(b.toString('latin1', 0, 1)).toBe('d');
    expect(b.readInt32BE(1)).toBe(38);
    expect(b.toString('latin1', 5, 6)).toBe('r');
    expect(b.readBigUInt64BE(6)).toBe(0x16_b374_d848n);
    expect(b.readBigUInt64BE(14)).toBe(0x10n);
    expect(b.readBigUInt64BE(22)).toBe(0n);
    expect(b.readBigInt64BE(30)).toBe(1_500_000n);
    expect(b[38]).toBe(1);
  });
});

import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { BackendFrame } from './backend-frame-decoder.ts';
import { ByteBuilder } from './byte-builder.ts';
import { PgServerErrorResponse } from './backend-messages.ts';
import { simpleQueryCollector } from './simple-query.ts';
import { startupHandshake } from './startup-handshake.ts';

const f = (type: string, b: ByteBuilder): BackendFrame => ({ type: type.charCodeAt(0), payload: b.build() });
const auth = (code: number) => new ByteBuilder().i32(code);
const ready = f('Z', new ByteBuilder().char('I'));

function run(frames: (writes: Buffer[]) => BackendFrame[]) {
  const writes: Buffer[] = [];
  let result: { err: Error | null } | undefined;
  const h = startupHandshake({
    write: (b) => writes.push(b),
    user: 'alice',
    password: 'secret',
    finish: (err) => (result = { err }),
  });
  const all = frames(writes);
  for (const frame of all) h.onFrame(frame);
  return { writes, result };
}

/** The password field of a PasswordMessage. */
const passwordOf = (w: Buffer) => w.toString('utf8', 5, w.length - 1);

describe('startupHandshake', () => {
  it('trust: AuthenticationOk, then ReadyForQuery', () => {
    const r = run(() => [f('R', auth(0)), f('K', new ByteBuilder().i32(1).i32(2)), ready]);
    expect(r.writes).toEqual([]);
    expect(r.result).toEqual({ err: null });
  });

  it('cleartext and md5 passwords', () => {
    const clear = run(() => [f('R', auth(3))]);
    expect(passwordOf(clear.writes[0]!)).toBe('secret');
    const md5 = run(() => [f('R', auth(5).u8(1, 2, 3, 4))]);
    expect(passwordOf(md5.writes[0]!)).toBe('md598a0412b9c31436fc53776e863350083');
  });

  it('refuses a cleartext password request when sslmode demanded TLS the connection lacks', () => {
    const writes: Buffer[] = [];
    const h = startupHandshake({
      write: (b) => writes.push(b),
      user: 'alice',
      password: 'secret',
      cleartextAllowed: false,
      finish: () => {},
    });
    expect(() => h.onFrame(f('R', auth(3)))).toThrow(/TLS_NOT_OFFERED/);
    expect(writes).toEqual([]);
  });

  it('SCRAM-SHA-256 against a server that checks the proof', () => {
    const salt = Buffer.from('salty-salt');
    const iterations = 4096;
    const salted = pbkdf2Sync('secret', salt, iterations, 32, 'sha256');
    const hmac = (k: Buffer, t: string) => createHmac('sha256', k).update(t).digest();
    const writes: Buffer[] = [];
    let done: Error | null | undefined;
    const h = startupHandshake({
      write: (b) => writes.push(b),
      user: 'alice',
      password: 'secret',
      finish: (e) => (done = e),
    });
    h.onFrame(f('R', auth(10).cstring('SCRAM-SHA-256').u8(0)));
    const first = writes[0]!;
    expect(first.toString('utf8', 5, 19)).toBe('SCRAM-SHA-256\0');
    const clientFirst = first.toString('utf8', 23);
    const clientFirstBare = clientFirst.slice(3);
    const nonce = /r=([^,]+)/.exec(clientFirst)![1]! + 'SERVERNONCE';
    const serverFirst = `r=${nonce},s=${salt.toString('base64')},i=${iterations}`;
    h.onFrame(f('R', auth(11).bytes(serverFirst)));
    const clientFinal = writes[1]!.toString('utf8', 5);
    const withoutProof = clientFinal.slice(0, clientFinal.indexOf(',p='));
    const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
    // Server side: recover the client key from the proof and check it hashes to the stored key.
    const clientKey = hmac(salted, 'Client Key');
    const storedKey = createHash('sha256').update(clientKey).digest();
    const proof = Buffer.from(clientFinal.slice(clientFinal.indexOf(',p=') + 3), 'base64');
    const signature = hmac(storedKey, authMessage);
    const recovered = Buffer.from(proof.map((b, i) => b ^ signature[i]!));
    expect(createHash('sha256').update(recovered).digest()).toEqual(storedKey);
    const serverSignature = hmac(hmac(salted, 'Server Key'), authMessage).toString('base64');
    h.onFrame(f('R', auth(12).bytes(`v=${serverSignature}`)));
    h.onFrame(f('R', auth(0)));
    h.onFrame(ready);
    expect(done).toBeNull();
  });

  it('refuses a server signature that does not prove the password', () => {
    const h = startupHandshake({ write: () => {}, user: 'a', password: 'p', finish: () => {} });
    expect(() => h.onFrame(f('R', auth(12).bytes('v=AAAA')))).toThrow(/SOURCE_PROTOCOL.*out of order/);
    h.onFrame(f('R', auth(10).cstring('SCRAM-SHA-256').u8(0)));
    expect(() => h.onFrame(f('R', auth(11).bytes('r=foreign,s=AAAA,i=1')))).toThrow(/AUTH_FAILED/);
  });

  it('refuses unsupported methods with AUTH_FAILED and passes server errors on', () => {
    expect(() => run(() => [f('R', auth(7))])).toThrow(/AUTH_FAILED.*method 7/);
    expect(() => run(() => [f('R', auth(10).cstring('SCRAM-SHA-256-PLUS').u8(0))])).toThrow(/AUTH_FAILED/);
    const r = run(() => [
      f('E', new ByteBuilder().char('C').cstring('28P01').char('M').cstring('bad pw').u8(0)),
    ]);
    expect(r.result?.err).toBeInstanceOf(PgServerErrorResponse);
    expect(r.result?.err).toMatchObject({ code: '28P01', message: 'bad pw' });
  });
});

describe('simpleQueryCollector', () => {
  it('collects the last result set, or the first error after ReadyForQuery', () => {
    let out: unknown;
    const h = simpleQueryCollector((err, value) => (out = err ?? value));
    const field = new ByteBuilder().cstring('x').i32(0).i16(0).i32(25).i16(-1).i32(-1).i16(0);
    h.onFrame(f('T', new ByteBuilder().i16(1).bytes(field.build())));
    h.onFrame(f('D', new ByteBuilder().i16(1).i32(1).bytes('a')));
    h.onFrame(f('D', new ByteBuilder().i16(1).i32(-1)));
    h.onFrame(f('C', new ByteBuilder().cstring('SELECT 2')));
    expect(out).toBeUndefined();
    h.onFrame(ready);
    expect(out).toEqual({ columns: ['x'], rows: [['a'], [null]] });

    const e = simpleQueryCollector((err, value) => (out = err ?? value));
    e.onFrame(f('E', new ByteBuilder().char('C').cstring('42P01').u8(0)));
    e.onFrame(ready);
    expect(out).toMatchObject({ code: '42P01' });
    expect(() => e.onFrame(f('W', new ByteBuilder()))).toThrow(/SOURCE_PROTOCOL/);
  });
});

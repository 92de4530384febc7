import { describe, expect, it } from 'vitest';
import { md5Password, ScramSha256Client } from './scram.ts';

describe('ScramSha256Client', () => {
  // RFC 7677 section 3.
  const serverFirst =
    'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096';

  it('reproduces the RFC 7677 test vector', () => {
    const c = new ScramSha256Client({
      password: 'pencil',
      user: 'user',
      clientNonce: 'rOprNGfwEbeRWgbNEkqO',
    });
    expect(c.clientFirstMessage()).toBe('n,,n=user,r=rOprNGfwEbeRWgbNEkqO');
    expect(c.clientFinalMessage(serverFirst)).toBe(
      'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
    );
    expect(() => c.verifyServerFinal('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=')).not.toThrow();
  });

  it('refuses a server that does not prove the password, or a foreign nonce', () => {
    const c = new ScramSha256Client({
      password: 'pencil',
      user: 'user',
      clientNonce: 'rOprNGfwEbeRWgbNEkqO',
    });
    c.clientFirstMessage();
    c.clientFinalMessage(serverFirst);
    expect(() => c.verifyServerFinal('v=AAAA')).toThrow(/AUTH_FAILED/);
    expect(() => c.verifyServerFinal('e=invalid-proof')).toThrow(/AUTH_FAILED.*invalid-proof/);
    const d = new ScramSha256Client({ password: 'pencil', clientNonce: 'abc' });
    expect(d.clientFirstMessage()).toBe('n,,n=*,r=abc');
    expect(() => d.clientFinalMessage('r=xyz123,s=AAAA,i=1')).toThrow(/AUTH_FAILED.*nonce/);
  });
});

describe('md5Password', () => {
  it('is md5 + md5(md5(password + user) + salt)', () => {
    // Vector computed independently with Python's hashlib.
    expect(md5Password({ user: 'alice', password: 'secret', salt: Buffer.from([1, 2, 3, 4]) })).toBe(
      'md598a0412b9c31436fc53776e863350083',
    );
  });
});

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseMysqlUri } from './mysql-sink.ts';

const dir = mkdtempSync(join(tmpdir(), 'tidemark-mysql-tls-'));
const ca = join(dir, 'ca.pem');
writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nfixture\n-----END CERTIFICATE-----\n');
const ssl = (query: string) => parseMysqlUri(`mysql://u:secret-pw@db.example:3306/app?${query}`).config.ssl;

describe('MySQL sink TLS (ssl-mode → mysql2 ssl)', () => {
  it('is off by default and with DISABLED', () => {
    expect(ssl('')).toBeUndefined();
    expect(ssl('ssl-mode=DISABLED')).toBeUndefined();
  });

  it('REQUIRED encrypts without verifying', () => {
    expect(ssl('ssl-mode=REQUIRED')).toEqual({ rejectUnauthorized: false });
  });

  it('VERIFY_CA checks the chain only, VERIFY_IDENTITY the host name too', () => {
    expect(ssl(`ssl-mode=VERIFY_CA&ssl-ca=${ca}`)).toMatchObject({
      rejectUnauthorized: true,
      verifyIdentity: false,
      ca: expect.stringContaining('fixture') as unknown,
    });
    expect(ssl(`ssl-mode=verify_identity&ssl-ca=${ca}`)).toMatchObject({
      rejectUnauthorized: true,
      verifyIdentity: true,
    });
    // Without ssl-ca: the system's roots.
    expect(ssl('ssl-mode=VERIFY_IDENTITY')).toEqual({ rejectUnauthorized: true, verifyIdentity: true });
  });

  it('refuses PREFERRED, unknown modes, unreadable files and certificates without keys, masking the URI', () => {
    for (const q of [
      'ssl-mode=PREFERRED',
      'ssl-mode=on',
      `ssl-mode=VERIFY_CA&ssl-ca=${join(dir, 'nope')}`,
      `ssl-mode=REQUIRED&ssl-cert=${ca}`,
      `ssl-ca=${ca}`,
    ]) {
      expect(() => ssl(q), q).toThrow(/CONFIG_INVALID/);
      try {
        ssl(q);
      } catch (err) {
        expect(String((err as Error).message)).not.toContain('secret-pw');
      }
    }
  });
});

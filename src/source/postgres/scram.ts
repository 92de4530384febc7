import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { TidemarkError } from '../../errors/tidemark-error.ts';

/**
 * SCRAM-SHA-256 client (RFC 5802 / RFC 7677) without channel binding, as PostgreSQL speaks it:
 *
 *   client-first  n,,n=<user>,r=<client nonce>
 *   server-first  r=<client nonce + server nonce>,s=<salt b64>,i=<iterations>
 *   client-final  c=biws,r=<nonce>,p=<proof b64>
 *   server-final  v=<server signature b64>     (checked: the server must know the password too)
 *
 * PostgreSQL ignores the SCRAM user name (it uses the startup user), so it defaults to `*`.
 * The password is used as UTF-8 without SASLprep, which equals SASLprep for ASCII passwords.
 */
export class ScramSha256Client {
  static readonly mechanism = 'SCRAM-SHA-256';
  private readonly clientNonce: string;
  private readonly user: string;
  private clientFirstBare = '';
  private expectedServerSignature: Buffer | null = null;

  constructor(
    private readonly opts: {
      password: string;
      /** For test vectors; a random 18-byte nonce otherwise. */
      clientNonce?: string;
      user?: string;
    },
  ) {
    this.clientNonce = opts.clientNonce ?? randomBytes(18).toString('base64');
    this.user = opts.user ?? '*';
  }

  /** The client-first message, sent in SASLInitialResponse. Call once, first. */
  clientFirstMessage(): string {
    this.clientFirstBare = `n=${saslName(this.user)},r=${this.clientNonce}`;
    return `n,,${this.clientFirstBare}`;
  }

  /** Takes the server-first message (SASLContinue) and returns the client-final message. */
  clientFinalMessage(serverFirst: string): string {
    const attrs = parseAttributes(serverFirst);
    const nonce = attrs.get('r');
    const salt = attrs.get('s');
    const iterations = Number(attrs.get('i'));
    if (!nonce || !salt || !Number.isInteger(iterations) || iterations < 1) {
      throw authError('the server-first SCRAM message is malformed');
    }
    if (!nonce.startsWith(this.clientNonce) || nonce.length === this.clientNonce.length) {
      throw authError('the server nonce does not extend the client nonce');
    }
    const saltedPassword = pbkdf2Sync(
      this.opts.password,
      Buffer.from(salt, 'base64'),
      iterations,
      32,
      'sha256',
    );
    const clientKey = hmac(saltedPassword, 'Client Key');
    const storedKey = createHash('sha256').update(clientKey).digest();
    const withoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;
    const clientSignature = hmac(storedKey, authMessage);
    const proof = Buffer.alloc(clientKey.length);
    for (let i = 0; i < proof.length; i++) proof[i] = clientKey[i]! ^ clientSignature[i]!;
    this.expectedServerSignature = hmac(hmac(saltedPassword, 'Server Key'), authMessage);
    return `${withoutProof},p=${proof.toString('base64')}`;
  }

  /** Checks the server-final message (SASLFinal); throws AUTH_FAILED when the server is not proven. */
  verifyServerFinal(serverFinal: string): void {
    const attrs = parseAttributes(serverFinal);
    const error = attrs.get('e');
    if (error !== undefined) throw authError(`the server rejected SCRAM: ${error}`);
    const v = attrs.get('v');
    const expected = this.expectedServerSignature;
    const got = v === undefined ? null : Buffer.from(v, 'base64');
    if (!expected || !got || got.length !== expected.length || !timingSafeEqual(got, expected)) {
      throw authError('the server signature does not match');
    }
  }
}

function hmac(key: Buffer, text: string): Buffer {
  return createHmac('sha256', key).update(text, 'utf8').digest();
}

function saslName(name: string): string {
  return name.replaceAll('=', '=3D').replaceAll(',', '=2C');
}

function parseAttributes(message: string): Map<string, string> {
  const attrs = new Map<string, string>();
  for (const part of message.split(',')) {
    const eq = part.indexOf('=');
    if (eq === 1) attrs.set(part[0]!, part.slice(2));
  }
  return attrs;
}

function authError(detail: string): TidemarkError {
  return new TidemarkError('AUTH_FAILED', { detail });
}

/** The md5 password method: `md5` + md5(md5(password + user) + salt), hex. */
export function md5Password(opts: { user: string; password: string; salt: Buffer }): string {
  const inner = createHash('md5')
    .update(opts.password + opts.user, 'utf8')
    .digest('hex');
  return 'md5' + createHash('md5').update(inner).update(opts.salt).digest('hex');
}

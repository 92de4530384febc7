import { TidemarkError } from '../../../errors/tidemark-error.ts';
import { md5Password, ScramSha256Client } from '../scram.ts';
import { Backend, PgServerErrorResponse, parseAuthentication, parseErrorFields } from './backend-messages.ts';
import type { Finish, FrameHandler } from './frame-handler.ts';
import { encodePassword, encodeSaslInitialResponse, encodeSaslResponse } from './frontend-messages.ts';

/**
 * Answers the server's authentication requests after the StartupMessage (trust, cleartext, md5,
 * SCRAM-SHA-256) until ReadyForQuery. A server ErrorResponse finishes with PgServerErrorResponse
 * (the caller wraps it); anything we cannot answer throws AUTH_FAILED or SOURCE_PROTOCOL.
 */
export function startupHandshake(opts: {
  write: (bytes: Buffer) => void;
  user: string;
  password: string;
  /**
   * False when the connection is not encrypted but sslmode demanded TLS: a request for the
   * password in the clear is then refused instead of answered.
   */
  cleartextAllowed?: boolean;
  finish: Finish<void>;
}): FrameHandler {
  const { write, finish } = opts;
  let scram: ScramSha256Client | null = null;
  return {
    onError: (err) => finish(err),
    onFrame(frame) {
      switch (frame.type) {
        case Backend.authentication: {
          const auth = parseAuthentication(frame.payload);
          switch (auth.kind) {
            case 'ok':
              return;
            case 'cleartext':
              if (opts.cleartextAllowed === false) {
                throw new TidemarkError('TLS_NOT_OFFERED', {
                  detail:
                    'the server asks for the password in the clear over an unencrypted connection; it was not sent',
                });
              }
              return void write(encodePassword(opts.password));
            case 'md5':
              return void write(
                encodePassword(md5Password({ user: opts.user, password: opts.password, salt: auth.salt })),
              );
            case 'sasl':
              if (!auth.mechanisms.includes(ScramSha256Client.mechanism)) {
                throw new TidemarkError('AUTH_FAILED', {
                  detail: `the server offers only SASL mechanisms ${auth.mechanisms.join(', ')}`,
                });
              }
              scram = new ScramSha256Client({ password: opts.password });
              return void write(
                encodeSaslInitialResponse({
                  mechanism: ScramSha256Client.mechanism,
                  data: scram.clientFirstMessage(),
                }),
              );
            case 'sasl-continue':
              if (!scram) break;
              return void write(encodeSaslResponse(scram.clientFinalMessage(auth.data)));
            case 'sasl-final':
              if (!scram) break;
              return scram.verifyServerFinal(auth.data);
            case 'unsupported':
              throw new TidemarkError('AUTH_FAILED', {
                detail: `the server asks for authentication method ${auth.code}, which Tidemark does not support`,
                hint: 'Use scram-sha-256, md5, password or trust for this user in pg_hba.conf.',
              });
          }
          throw new TidemarkError('SOURCE_PROTOCOL', { detail: `SASL message ${auth.kind} out of order` });
        }
        case Backend.backendKeyData:
          return;
        case Backend.readyForQuery:
          return finish(null);
        case Backend.errorResponse:
          return finish(new PgServerErrorResponse(parseErrorFields(frame.payload)));
        default:
          throw new TidemarkError('SOURCE_PROTOCOL', {
            detail: `unexpected message 0x${frame.type.toString(16)} during startup`,
          });
      }
    },
  };
}

import type { TidemarkError } from '../../../errors/tidemark-error.ts';
import type { BackendFrame } from './backend-frame-decoder.ts';

/**
 * Whoever owns the connection's incoming frames right now: the startup handshake, one query, or
 * the replication stream. Exactly one at a time; frames outside any exchange are a protocol error.
 */
export interface FrameHandler {
  /** Each backend frame of the exchange, in order. May throw: the connection then fails. */
  onFrame(frame: BackendFrame): void;
  /** The connection failed or closed before the exchange completed. */
  onError(err: TidemarkError): void;
}

/** Completes an exchange: an error, or the value. Called once. */
export type Finish<T> = (err: Error | null, value?: T) => void;

import { ERROR_CODES, type ErrorCode } from './codes.ts';
import { maskSecrets } from './mask.ts';

export interface TidemarkErrorOptions {
  /** What exactly went wrong, and where (table, key, file:line). */
  detail?: string;
  /** How to fix it; defaults to the registry's hint for the code. */
  hint?: string;
  /** The third-party error this wraps (wrapped once, at the boundary). */
  cause?: unknown;
  /** Overrides the registry's default. */
  retriable?: boolean;
}

/**
 * The one error type users see. `message` is "CODE: primary line — detail"; the hint is separate
 * so UIs can show it apart. All text is masked: credentials never leave through an error.
 */
export class TidemarkError extends Error {
  readonly code: ErrorCode;
  readonly detail: string | undefined;
  readonly hint: string;
  readonly retriable: boolean;

  constructor(code: ErrorCode, options: TidemarkErrorOptions = {}) {
    const entry = ERROR_CODES[code];
    const detail = options.detail === undefined ? undefined : maskSecrets(options.detail);
    super(`${code}: ${entry.message}${detail ? ` — ${detail}` : ''}`, { cause: options.cause });
    this.name = 'TidemarkError';
    this.code = code;
    this.detail = detail;
    this.hint = maskSecrets(options.hint ?? entry.hint);
    this.retriable = options.retriable ?? entry.retriable;
  }

  /** Multi-line text for terminals: message, then hint. */
  format(): string {
    return `${this.message}\n  hint: ${this.hint}`;
  }

  toJSON(): { code: ErrorCode; message: string; detail?: string; hint: string; retriable: boolean } {
    return {
      code: this.code,
      message: this.message,
      ...(this.detail === undefined ? {} : { detail: this.detail }),
      hint: this.hint,
      retriable: this.retriable,
    };
  }
}

export function isRetriable(err: unknown): boolean {
  return err instanceof TidemarkError ? err.retriable : false;
}

/**
 * Typed errors shared by every Aviary library.
 *
 * `kind` is a closed, canonical category (modelled on gRPC status codes) that the edge maps to
 * an HTTP status, a gRPC status or an admission response. `code` is a stable, specific
 * identifier (`CONFIG_INVALID`, `CSR_SIGNATURE_INVALID`, …) that clients may match on.
 */
export const errorKinds = [
  'INVALID_ARGUMENT',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'CONFLICT',
  'UNAUTHENTICATED',
  'PERMISSION_DENIED',
  'PAYLOAD_TOO_LARGE',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'UNAVAILABLE',
  'DEADLINE_EXCEEDED',
  'INTERNAL',
] as const;

export type ErrorKind = (typeof errorKinds)[number];

export type ErrorDetails = Record<string, unknown> | readonly unknown[];

export class AviaryError extends Error {
  override readonly name = 'AviaryError';
  readonly kind: ErrorKind;
  readonly code: string;
  readonly details: ErrorDetails | undefined;

  constructor(kind: ErrorKind, code: string, message: string, details?: ErrorDetails, options?: { cause?: unknown }) {
    super(message, options);
    this.kind = kind;
    this.code = code;
    this.details = details;
  }

  toJSON(): { code: string; message: string; details?: ErrorDetails } {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }
}

export function isAviaryError(value: unknown): value is AviaryError {
  return value instanceof AviaryError;
}

import { AviaryError, type ErrorDetails, type ErrorKind } from '@aviary/errors';

/** Stable error codes of the certificate authority; the edge maps `kind` to gRPC/HTTP status. */
export const caErrorKinds = {
  /** No bearer token and no client certificate. */
  TOKEN_MISSING: 'UNAUTHENTICATED',
  /** Not a compact JWS, bad base64url/JSON, wrong `alg`, missing claims. */
  TOKEN_MALFORMED: 'UNAUTHENTICATED',
  /** The token's signature does not verify (forged or signed by another key). */
  TOKEN_SIGNATURE_INVALID: 'UNAUTHENTICATED',
  TOKEN_EXPIRED: 'UNAUTHENTICATED',
  /** `aud` or `iss` is not what this CA accepts. */
  TOKEN_AUDIENCE_MISMATCH: 'UNAUTHENTICATED',
  /** The client certificate does not chain to the trust bundle, or is expired. */
  PEER_CERT_UNTRUSTED: 'UNAUTHENTICATED',
  /** The client certificate carries no single SPIFFE ID of this trust domain. */
  PEER_CERT_IDENTITY_INVALID: 'PERMISSION_DENIED',
  /** A namespace or service account name is not a valid Kubernetes name. */
  IDENTITY_INVALID: 'INVALID_ARGUMENT',
  /** A requested lifetime is not a positive number of seconds. */
  TTL_INVALID: 'INVALID_ARGUMENT',
  /** Root rotation is not possible with a plug-in CA (replace the cacerts files instead). */
  ROTATION_UNSUPPORTED: 'FAILED_PRECONDITION',
  /** The new trust bundle could not be published, so the new root was not activated. */
  BUNDLE_PUBLISH_FAILED: 'UNAVAILABLE',
  /** The persisted state is gone (e.g. its Secret was deleted) while this CA runs. */
  CA_STATE_MISSING: 'FAILED_PRECONDITION',
} as const satisfies Record<string, ErrorKind>;

export type CaErrorCode = keyof typeof caErrorKinds;

export function caError(code: CaErrorCode, message: string, details?: ErrorDetails, cause?: unknown): AviaryError {
  return new AviaryError(caErrorKinds[code], code, message, details, cause === undefined ? undefined : { cause });
}

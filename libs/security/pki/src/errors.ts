import { AviaryError, type ErrorDetails, type ErrorKind } from '@aviary/errors';

/**
 * Stable error codes of the PKI library (istio `security/pkg/pki/error`): clients and the edge
 * match on these, never on messages. Each code has one canonical kind.
 */
export const pkiErrorKinds = {
  /** Not PEM, not DER, truncated, or not a PKCS#10 CertificationRequest. */
  CSR_MALFORMED: 'INVALID_ARGUMENT',
  /** The CSR's signature does not verify with the public key it carries. */
  CSR_SIGNATURE_INVALID: 'INVALID_ARGUMENT',
  /** The CSR is signed with an algorithm we do not accept (e.g. RSASSA-PSS, SHA-1). */
  CSR_SIGNATURE_ALGORITHM_UNSUPPORTED: 'INVALID_ARGUMENT',
  /** The public key type is not ECDSA P-256/P-384 or RSA (e.g. Ed25519, DSA). */
  KEY_TYPE_UNSUPPORTED: 'INVALID_ARGUMENT',
  /** RSA below 2048 or above 8192 bits. */
  KEY_SIZE_UNSUPPORTED: 'INVALID_ARGUMENT',
  /** A certificate could not be parsed. */
  CERT_MALFORMED: 'INVALID_ARGUMENT',
  /** A DNS name or IP address for a serving certificate is not valid. */
  SAN_INVALID: 'INVALID_ARGUMENT',
  /** The plug-in CA files are missing, unreadable or inconsistent (key does not match cert, …). */
  CA_LOAD_FAILED: 'FAILED_PRECONDITION',
  /** The signing CA certificate is expired or not yet valid. */
  CA_EXPIRED: 'FAILED_PRECONDITION',
  /** A TLS credential (gateway certificate, key, CA) is not PEM, too large, or its key does not match its certificate. */
  CREDENTIAL_INVALID: 'INVALID_ARGUMENT',
} as const satisfies Record<string, ErrorKind>;

export type PkiErrorCode = keyof typeof pkiErrorKinds;

export function pkiError(code: PkiErrorCode, message: string, details?: ErrorDetails, cause?: unknown): AviaryError {
  return new AviaryError(pkiErrorKinds[code], code, message, details, cause === undefined ? undefined : { cause });
}

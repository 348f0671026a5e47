import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { pkiError } from './errors';
import { pemBlocks, splitCertificates } from './pem';

/** Largest PEM field of a TLS credential (a chain of a few certificates fits easily). */
export const MAX_CREDENTIAL_FIELD_BYTES = 64 * 1024;

/** Most certificates in a credential's chain or CA bundle. */
export const MAX_CREDENTIAL_CERTIFICATES = 16;

/** A TLS credential as PEM: a certificate chain (leaf first) with its key, and/or CA certificates for client verification. */
export interface CredentialPem {
  readonly certChain?: string;
  readonly privateKey?: string;
  readonly caCert?: string;
}

/** The names the caller gives the three fields (in errors: `tls.crt`, `certChain`, …). */
export interface CredentialFieldNames {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

/** What may be shown about a certificate: never key material. */
export interface CertificateSummary {
  readonly subject: string;
  readonly issuer: string;
  readonly dnsNames: string[];
  readonly notBefore: string;
  readonly notAfter: string;
  /** SHA-256 of the DER, hex, as `openssl x509 -fingerprint -sha256` prints it without colons. */
  readonly sha256: string;
}

export interface CredentialSummary {
  /** The chain, leaf first (empty for a CA-only credential). */
  readonly certificates: CertificateSummary[];
  readonly caCertificates: CertificateSummary[];
}

function invalid(field: string, message: string, cause?: unknown) {
  return pkiError('CREDENTIAL_INVALID', `${field}: ${message}`, { field }, cause);
}

function certificates(pem: string, field: string): X509Certificate[] {
  if (Buffer.byteLength(pem, 'utf8') > MAX_CREDENTIAL_FIELD_BYTES) throw invalid(field, `is larger than ${MAX_CREDENTIAL_FIELD_BYTES} bytes`);
  const blocks = splitCertificates(pem);
  if (blocks.length === 0) throw invalid(field, 'holds no PEM certificate (-----BEGIN CERTIFICATE-----)');
  if (blocks.length > MAX_CREDENTIAL_CERTIFICATES) throw invalid(field, `holds ${blocks.length} certificates; at most ${MAX_CREDENTIAL_CERTIFICATES}`);
  return blocks.map((b, i) => {
    try {
      return new X509Certificate(b);
    } catch (err) {
      throw invalid(field, `certificate ${i} does not parse as X.509: ${(err as Error).message}`, err);
    }
  });
}

function summary(c: X509Certificate): CertificateSummary {
  // Node leaves subject undefined for an empty one (its typings say string).
  const dnsNames = (c.subjectAltName ?? '')
    .split(', ')
    .filter((s) => s.startsWith('DNS:'))
    .map((s) => s.slice(4));
  return {
    subject: (c.subject ?? '').replaceAll('\n', ', '),
    issuer: (c.issuer ?? '').replaceAll('\n', ', '),
    dnsNames,
    notBefore: new Date(c.validFrom).toISOString(),
    notAfter: new Date(c.validTo).toISOString(),
    sha256: createHash('sha256').update(c.raw).digest('hex'),
  };
}

/**
 * Checks a TLS credential before anyone serves it: every field PEM that parses and within its
 * size, a certificate never without its key (nor a key without its certificate), the key the
 * leaf's (the first certificate of the chain), at least one of certificate or CA. Throws
 * CREDENTIAL_INVALID naming the field; returns what may be shown about it (never the key).
 */
export function checkCredential(pem: CredentialPem, names: CredentialFieldNames): CredentialSummary {
  const { certChain, privateKey, caCert } = pem;
  if (certChain === undefined && privateKey === undefined && caCert === undefined) throw invalid(names.cert, `a credential needs ${names.cert} and ${names.key}, or ${names.ca}`);
  if (certChain !== undefined && privateKey === undefined) throw invalid(names.key, `is required with ${names.cert}`);
  if (privateKey !== undefined && certChain === undefined) throw invalid(names.cert, `is required with ${names.key}`);
  let chain: X509Certificate[] = [];
  if (certChain !== undefined && privateKey !== undefined) {
    chain = certificates(certChain, names.cert);
    if (Buffer.byteLength(privateKey, 'utf8') > MAX_CREDENTIAL_FIELD_BYTES) throw invalid(names.key, `is larger than ${MAX_CREDENTIAL_FIELD_BYTES} bytes`);
    const blocks = pemBlocks(privateKey);
    if (blocks.length !== 1 || !/PRIVATE KEY$/.test(blocks[0]!.label)) throw invalid(names.key, `must hold exactly one PEM private key block (holds ${blocks.length} PEM blocks)`);
    let key;
    try {
      key = createPrivateKey(privateKey);
    } catch (err) {
      // The parser's message says what is wrong with the encoding, never the key's content.
      throw invalid(names.key, `does not parse as a PEM private key: ${(err as Error).message}`);
    }
    if (!chain[0]!.checkPrivateKey(key)) throw invalid(names.key, `is not the key of the first certificate in ${names.cert}`);
  }
  const ca = caCert === undefined ? [] : certificates(caCert, names.ca);
  return { certificates: chain.map(summary), caCertificates: ca.map(summary) };
}

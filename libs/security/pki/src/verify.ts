import { X509Certificate } from 'node:crypto';
import { pkiError } from './errors';
import { pemBlocks } from './pem';

export interface VerifiedPeer {
  readonly leaf: X509Certificate;
  /** The URI SANs of the leaf (for Aviary workloads, one SPIFFE ID). */
  readonly uris: readonly string[];
  readonly notAfter: Date;
}

export type ChainVerdict = { readonly ok: true; readonly peer: VerifiedPeer } | { readonly ok: false; readonly reason: string };

/**
 * Verifies `chain` (leaf first, then any intermediates, DER or PEM) against `roots`: each link
 * is signed by an intermediate of `chain` and the last one by a trusted root, everything is valid at `now`, and the leaf is not a CA.
 * Used to authenticate renewal by a client certificate; returns a verdict, never throws on
 * untrusted input.
 */
export function verifyChain(chain: readonly (Buffer | string)[], roots: readonly string[], now: Date = new Date()): ChainVerdict {
  let certs: X509Certificate[];
  let anchors: X509Certificate[];
  try {
    certs = chain.map((c) => new X509Certificate(c));
    anchors = roots.flatMap((r) => pemBlocks(r).map((b) => new X509Certificate(b.der)));
  } catch {
    return { ok: false, reason: 'unparseable certificate' };
  }
  const leaf = certs[0];
  if (leaf === undefined) return { ok: false, reason: 'no certificate' };
  if (leaf.ca) return { ok: false, reason: 'the leaf is a CA certificate' };
  const t = now.getTime();
  for (const c of certs) {
    if (t < Date.parse(c.validFrom) || t > Date.parse(c.validTo)) return { ok: false, reason: 'a certificate of the chain is expired or not yet valid' };
  }
  // Walk up from the leaf, taking each issuer from the presented certificates (any order);
  // stop at the first certificate a trusted root has signed.
  let cur = leaf;
  for (let depth = 0; depth < 8; depth++) {
    const c = cur;
    const root = anchors.find((a) => c.checkIssued(a) && c.verify(a.publicKey) && t >= Date.parse(a.validFrom) && t <= Date.parse(a.validTo));
    if (root !== undefined) return { ok: true, peer: { leaf, uris: uriSans(leaf), notAfter: new Date(leaf.validTo) } };
    const parent = certs.find((p) => p !== c && p.ca && c.checkIssued(p) && c.verify(p.publicKey));
    if (parent === undefined) break;
    cur = parent;
  }
  return { ok: false, reason: 'the chain does not lead to a trusted root' };
}

/** URI SANs of a certificate (node renders them `URI:<value>`, quoting values with separators). */
export function uriSans(cert: X509Certificate | string | Buffer): string[] {
  let x: X509Certificate;
  try {
    x = cert instanceof X509Certificate ? cert : new X509Certificate(cert);
  } catch (err) {
    throw pkiError('CERT_MALFORMED', 'the certificate cannot be parsed', undefined, err);
  }
  const san = x.subjectAltName;
  if (san === undefined) return [];
  const out: string[] = [];
  for (const m of san.matchAll(/URI:("(?:[^"\\]|\\.)*"|[^,]*)/g)) {
    const v = m[1]!;
    out.push(v.startsWith('"') ? (JSON.parse(v) as string) : v);
  }
  return out;
}

import { createSecureContext, type PeerCertificate, type SecureContext } from 'node:tls';
import type { Secret, TlsContextRef } from '../domain';

/** Our workload identity: key + chain, and the roots we trust. Held only in memory. */
export interface WorkloadIdentity {
  readonly certChain: string;
  readonly privateKey: string;
  readonly roots: string;
  /** Changes on every rotation; part of every cache key built from this identity. */
  readonly version: number;
}

/** SDS names Istio uses for the workload certificate and the mesh roots. */
export const WORKLOAD_SECRET = 'default';
export const ROOT_SECRET = 'ROOTCA';

export interface ResolvedTls {
  readonly cert: string | undefined;
  readonly key: string | undefined;
  readonly ca: string | undefined;
  /** Cache key: changes whenever any of the material changes. */
  readonly id: string;
}

/**
 * Resolves the secret references of a TLS context against the local identity (for Istio's
 * `default` and `ROOTCA`) and the SDS secrets of the current table (gateway credentials).
 * Returns undefined when a referenced secret is not there yet.
 */
export function resolveTls(ref: TlsContextRef, secrets: ReadonlyMap<string, Secret>, identity: WorkloadIdentity | undefined): ResolvedTls | undefined {
  let cert: string | undefined;
  let key: string | undefined;
  let ca = ref.trustedCa;
  const ids: string[] = [];
  const inline = ref.inlineCertificates[0];
  if (inline !== undefined) {
    cert = inline.chain;
    key = inline.key;
    ids.push(`inline:${inline.chain.length}`);
  }
  for (const name of ref.certificateSecrets) {
    if (name === WORKLOAD_SECRET && identity !== undefined) {
      cert = identity.certChain;
      key = identity.privateKey;
      ids.push(`id:${identity.version}`);
    } else {
      const s = secrets.get(name);
      if (s?.certificateChain === undefined) return undefined;
      cert = s.certificateChain;
      key = s.privateKey;
      ids.push(`sds:${name}:${s.certificateChain.length}:${s.certificateChain.slice(-40)}`);
    }
    break;
  }
  if (ref.validationSecret !== undefined) {
    if (ref.validationSecret === ROOT_SECRET && identity !== undefined) {
      ca = identity.roots;
      ids.push(`roots:${identity.version}`);
    } else {
      const s = secrets.get(ref.validationSecret);
      if (s?.trustedCa === undefined) return undefined;
      ca = s.trustedCa;
      ids.push(`sdsca:${ref.validationSecret}:${s.trustedCa.length}:${s.trustedCa.slice(-40)}`);
    }
  }
  return { cert, key, ca, id: ids.join('|') };
}

const contextCache = new Map<string, SecureContext>();

/** A cached SecureContext for resolved material. */
export function secureContextFor(t: ResolvedTls): SecureContext {
  let ctx = contextCache.get(t.id);
  if (ctx === undefined) {
    ctx = createSecureContext({ cert: t.cert, key: t.key, ca: t.ca, minVersion: 'TLSv1.2' });
    if (contextCache.size > 256) contextCache.clear();
    contextCache.set(t.id, ctx);
  }
  return ctx;
}

/** URI SANs of a peer certificate (`subjectaltname: 'URI:spiffe://…, DNS:…'`). */
export function uriSansOf(cert: PeerCertificate | undefined): string[] {
  const san = cert?.subjectaltname;
  if (san === undefined || san === '') return [];
  return san
    .split(/,\s*/)
    .filter((s) => s.startsWith('URI:'))
    .map((s) => s.slice(4));
}

/** All SAN values (URI and DNS) for SAN matching. */
export function sansOf(cert: PeerCertificate | undefined): string[] {
  const san = cert?.subjectaltname;
  if (san === undefined || san === '') return [];
  return san.split(/,\s*/).map((s) => s.slice(s.indexOf(':') + 1));
}

/** The SPIFFE id of a peer certificate, if it has one. */
export function spiffeIdOf(cert: PeerCertificate | undefined): string | undefined {
  return uriSansOf(cert).find((u) => u.startsWith('spiffe://'));
}

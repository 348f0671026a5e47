import { caError } from './errors';

/** An authenticated workload identity. The CA issues for this, never for what a CSR asks. */
export interface Identity {
  readonly namespace: string;
  readonly serviceAccount: string;
  /** When the credential that proved it expires. */
  readonly expiresAt: Date;
}

const LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Kubernetes rules: a namespace is a DNS-1123 label, a service account a DNS-1123 subdomain. */
export function assertIdentityNames(namespace: string, serviceAccount: string): void {
  if (!LABEL.test(namespace)) throw caError('IDENTITY_INVALID', `namespace ${JSON.stringify(namespace)} is not a DNS-1123 label`);
  if (serviceAccount.length > 253 || !SUBDOMAIN.test(serviceAccount)) {
    throw caError('IDENTITY_INVALID', `service account ${JSON.stringify(serviceAccount)} is not a DNS-1123 subdomain`);
  }
}

/** `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>` (Istio's identity format). */
export function spiffeId(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}

/** The namespace and service account of an Istio-style SPIFFE ID in `trustDomain`, or undefined. */
export function parseSpiffeId(trustDomain: string, uri: string): { namespace: string; serviceAccount: string } | undefined {
  const prefix = `spiffe://${trustDomain}/ns/`;
  if (!uri.startsWith(prefix)) return undefined;
  const m = /^([^/]+)\/sa\/([^/]+)$/.exec(uri.slice(prefix.length));
  if (m === null || !LABEL.test(m[1]!) || !SUBDOMAIN.test(m[2]!)) return undefined;
  return { namespace: m[1]!, serviceAccount: m[2]! };
}

import { parseSpiffeId } from '@aviary/ca';
import type { ProxyInfo } from '@aviary/mesh-model';
import { uriSans } from '@aviary/pki';
import type { StreamAuthorizer, StreamVerdict } from '@aviary/xds-server';

/** Why a stream on the mTLS port is refused (closed: the `reason` label of aviary_xds_streams_refused_total). */
export const identityRefusalReasons = ['no_peer_certificate', 'identity_invalid', 'trust_domain_mismatch', 'namespace_mismatch', 'service_account_mismatch'] as const;
export type IdentityRefusal = (typeof identityRefusalReasons)[number];

const deny = (reason: IdentityRefusal, message: string): StreamVerdict<ProxyInfo> => ({ allowed: false, reason, message });

/**
 * Every namespace a node claims: metadata NAMESPACE (what ProxyInfo.namespace holds when set),
 * the `<pod>.<ns>` part of an Istio node id and the first label of its DNS domain. A node may
 * not name one namespace in its id and another in its metadata.
 */
function claimedNamespaces(proxy: ProxyInfo): Set<string> {
  const out = new Set([proxy.namespace]);
  const parts = proxy.id.split('~');
  if (parts.length === 4) {
    const pod = parts[2]!;
    const dot = pod.indexOf('.');
    if (dot >= 0) out.add(pod.slice(dot + 1));
    const domainNs = parts[3]!.split('.')[0];
    if (domainNs !== undefined && domainNs !== '') out.add(domainNs);
  }
  return out;
}

/**
 * The mTLS port's rule (Istio's istiod does the same): the peer certificate, already chained to
 * the mesh trust bundle by the handshake, carries exactly one SPIFFE ID
 * `spiffe://<trustDomain>/ns/<ns>/sa/<sa>`, and the node claims that namespace (everywhere it
 * names one) and that service account (metadata SERVICE_ACCOUNT, required). What a proxy is then
 * served is computed for that namespace and service account only, and the proxy is marked
 * authenticated (credentials are served to authenticated proxies only).
 */
export function proxyIdentityAuthorizer(trustDomain: string): StreamAuthorizer<ProxyInfo> {
  return (proxy, peer) => {
    if (peer.certificate?.raw === undefined) return deny('no_peer_certificate', 'the mTLS xDS port requires a client certificate');
    let ids: string[];
    try {
      ids = uriSans(peer.certificate.raw).filter((u) => u.startsWith('spiffe://'));
    } catch {
      return deny('identity_invalid', 'the client certificate cannot be parsed');
    }
    if (ids.length !== 1) return deny('identity_invalid', `the client certificate must carry exactly one SPIFFE ID (has ${ids.length})`);
    const id = ids[0]!;
    const parsed = parseSpiffeId(trustDomain, id);
    if (parsed === undefined) {
      return id.startsWith(`spiffe://${trustDomain}/`)
        ? deny('identity_invalid', `${id} is not spiffe://${trustDomain}/ns/<namespace>/sa/<service-account>`)
        : deny('trust_domain_mismatch', `${id} is not in trust domain ${trustDomain}`);
    }
    const namespaces = [...claimedNamespaces(proxy)];
    const foreign = namespaces.filter((ns) => ns !== parsed.namespace);
    if (foreign.length > 0) {
      return deny('namespace_mismatch', `certificate identity ${id} may not act for namespace ${foreign.map((n) => JSON.stringify(n)).join(', ')} (node ${JSON.stringify(proxy.id)})`);
    }
    if (proxy.serviceAccount === undefined) return deny('service_account_mismatch', `node ${JSON.stringify(proxy.id)} must state metadata SERVICE_ACCOUNT on the mTLS port`);
    if (proxy.serviceAccount !== parsed.serviceAccount) {
      return deny('service_account_mismatch', `certificate identity ${id} may not act for service account ${JSON.stringify(proxy.serviceAccount)}`);
    }
    return { allowed: true, proxy: { ...proxy, authenticated: true } };
  };
}

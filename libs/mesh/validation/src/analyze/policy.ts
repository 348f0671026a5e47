import { resourceKey, type ClientTLSSettings } from '@aviary/mesh-api';
import { canonical, ns, selectorString, type Findings, type Of, type Snapshot } from './model';

type DestinationRule = Of<'DestinationRule'>;
type PeerAuthentication = Of<'PeerAuthentication'>;

/** IST0174: a DestinationRule for a host that no ServiceEntry or known service provides. */
export function analyzeDestinationRuleHosts(s: Snapshot, out: Findings): void {
  for (const dr of s.of('DestinationRule')) {
    if (s.hostExists(s.fqdn(dr.spec.host, ns(dr))) === false) {
      out.add('UnknownDestinationRuleHost', `The host ${dr.spec.host} defined in the DestinationRule does not match any services in the mesh.`, [resourceKey(dr)], 'spec.host');
    }
  }
}

/** AVI0101: a subset name defined twice for the same host (across DestinationRules or within one). */
export function analyzeDuplicateSubsets(s: Snapshot, out: Findings): void {
  const owners = new Map<string, { dr: DestinationRule; path: string }[]>();
  for (const dr of s.of('DestinationRule')) {
    if (dr.spec.workloadSelector !== undefined) continue; // scoped rules are not merged with others
    const host = s.fqdn(dr.spec.host, ns(dr));
    (dr.spec.subsets ?? []).forEach((sub, i) => {
      const k = `${host}\u0000${sub.name}`;
      owners.set(k, [...(owners.get(k) ?? []), { dr, path: `spec.subsets[${i}].name` }]);
    });
  }
  for (const [k, list] of owners) {
    if (list.length < 2) continue;
    const [host, subset] = k.split('\u0000') as [string, string];
    const second = list[1]!;
    const keys = [...new Set([resourceKey(second.dr), ...list.map((o) => resourceKey(o.dr))])];
    out.add('DuplicateSubset', `Subset ${JSON.stringify(subset)} for host ${host} is defined ${list.length} times (${keys.join(', ')}); only one definition takes effect.`, keys, second.path);
  }
}

/** The mTLS mode a PeerAuthentication set applies to a namespace (namespace-wide, else mesh-wide). */
function namespaceMode(s: Snapshot, namespace: string): PeerAuthentication | undefined {
  const wide = (n: string) => s.of('PeerAuthentication').find((pa) => ns(pa) === n && Object.keys(pa.spec.selector?.matchLabels ?? {}).length === 0 && (pa.spec.mtls?.mode ?? 'UNSET') !== 'UNSET');
  return wide(namespace) ?? wide(s.rootNamespace);
}

/** Namespace of the service behind an FQDN `name.ns.svc.<suffix>`, else undefined. */
function serviceNamespace(fqdn: string): string | undefined {
  const parts = fqdn.split('.');
  return parts.length >= 3 && parts[2] === 'svc' ? parts[1] : undefined;
}

/** IST0113: STRICT mTLS where the DestinationRule for the host turns TLS off. */
export function analyzeMtlsConflicts(s: Snapshot, out: Findings): void {
  for (const dr of s.of('DestinationRule')) {
    const host = s.fqdn(dr.spec.host, ns(dr));
    const svcNs = serviceNamespace(host);
    if (svcNs === undefined) continue;
    const pa = namespaceMode(s, svcNs);
    if (pa?.spec.mtls?.mode !== 'STRICT') continue;
    const disabled: string[] = [];
    const tp = dr.spec.trafficPolicy;
    if (tp?.tls?.mode === 'DISABLE') disabled.push('spec.trafficPolicy.tls.mode');
    (tp?.portLevelSettings ?? []).forEach((pl, i) => {
      if (pl.tls?.mode === 'DISABLE') disabled.push(`spec.trafficPolicy.portLevelSettings[${i}].tls.mode`);
    });
    (dr.spec.subsets ?? []).forEach((sub, i) => {
      if (sub.trafficPolicy?.tls?.mode === 'DISABLE') disabled.push(`spec.subsets[${i}].trafficPolicy.tls.mode`);
    });
    for (const path of disabled) {
      out.add(
        'MTLSPolicyConflict',
        `A DestinationRule and Policy are in conflict with regards to mTLS for host ${host}. The DestinationRule "${ns(dr)}/${dr.metadata.name}" specifies that mTLS must be false but the Policy object "${ns(pa)}/${pa.metadata.name}" specifies STRICT.`,
        [resourceKey(dr), resourceKey(pa)],
        path,
      );
    }
  }
}

/**
 * As Istio: SIMPLE or MUTUAL without caCertificates, unless a credentialName supplies the CA to a
 * workload-scoped rule. `insecureSkipVerify: true` is still reported: the server is not verified.
 */
function unverified(tls: ClientTLSSettings | undefined, scoped: boolean): boolean {
  return (tls?.mode === 'SIMPLE' || tls?.mode === 'MUTUAL') && (tls.caCertificates ?? '') === '' && !(tls.credentialName !== undefined && scoped);
}

/** IST0128 / IST0129: SIMPLE or MUTUAL TLS to a host without a CA to verify its certificate. */
export function analyzeServerCertVerification(s: Snapshot, out: Findings): void {
  for (const dr of s.of('DestinationRule')) {
    const tp = dr.spec.trafficPolicy;
    if (unverified(tp?.tls, dr.spec.workloadSelector !== undefined)) {
      out.add(
        'NoServerCertificateVerificationDestinationLevel',
        `DestinationRule ${ns(dr)}/${dr.metadata.name} in namespace ${ns(dr)} has TLS mode set to ${tp!.tls!.mode} but no caCertificates are set to validate server identity for host: ${dr.spec.host}`,
        [resourceKey(dr)],
        'spec.trafficPolicy.tls',
      );
    }
    (tp?.portLevelSettings ?? []).forEach((pl, i) => {
      if (!unverified(pl.tls, dr.spec.workloadSelector !== undefined)) return;
      out.add(
        'NoServerCertificateVerificationPortLevel',
        `DestinationRule ${ns(dr)}/${dr.metadata.name} in namespace ${ns(dr)} has TLS mode set to ${pl.tls!.mode} but no caCertificates are set to validate server identity for host: ${dr.spec.host} at port ${pl.port?.number ?? ''}`,
        [resourceKey(dr)],
        `spec.trafficPolicy.portLevelSettings[${i}].tls`,
      );
    });
  }
}

/**
 * IST0145: gateways with the same selector with a server on the same port and bind naming the
 * same host (as written: as Istio, `*.example.com` and `api.example.com` do not conflict, the
 * more specific one wins). Reported on each gateway, naming the other.
 */
export function analyzeConflictingGateways(s: Snapshot, out: Findings): void {
  const gws = s.of('Gateway');
  for (let a = 0; a < gws.length; a++) {
    for (let b = a + 1; b < gws.length; b++) {
      const ga = gws[a]!;
      const gb = gws[b]!;
      if (canonical(ga.spec.selector ?? {}) !== canonical(gb.spec.selector ?? {})) continue;
      const selector = selectorString(ga.spec.selector ?? {});
      for (const sa of ga.spec.servers ?? []) {
        for (const sb of gb.spec.servers ?? []) {
          if (sa.port.number !== sb.port.number || (sa.bind ?? '') !== (sb.bind ?? '')) continue;
          if (!sa.hosts.some((h) => sb.hosts.includes(h))) continue;
          for (const [self, server, other] of [[ga, sa, gb], [gb, sb, ga]] as const) {
            out.add(
              'ConflictingGateways',
              `Conflict with gateways ${ns(other)}/${other.metadata.name} (workload selector ${selector}, port ${server.port.number}, hosts ${server.hosts.join(',')}).`,
              [resourceKey(self), resourceKey(other)],
              'spec.servers',
            );
          }
        }
      }
    }
  }
}

/** IST0111: more than one Sidecar without workloadSelector in a namespace. */
export function analyzeSidecars(s: Snapshot, out: Findings): void {
  const byNs = new Map<string, string[]>();
  for (const sc of s.of('Sidecar')) {
    if (sc.spec.workloadSelector !== undefined) continue;
    byNs.set(ns(sc), [...(byNs.get(ns(sc)) ?? []), resourceKey(sc)]);
  }
  for (const [namespace, keys] of byNs) {
    if (keys.length < 2) continue;
    const names = keys.map((k) => k.split('/')[2]).join(' ');
    // One finding per Sidecar involved (as Istio).
    for (const key of keys) {
      out.add('MultipleSidecarsWithoutWorkloadSelectors', `The Sidecars [${names}] in namespace ${JSON.stringify(namespace)} have no workload selector, which can lead to undefined behavior.`, [key, ...keys.filter((k) => k !== key)]);
    }
  }
}

/** IST0101: RateLimitPolicy targetRefs naming a ServiceEntry or Gateway that does not exist. */
export function analyzeRateLimitTargets(s: Snapshot, out: Findings): void {
  for (const rl of s.of('RateLimitPolicy')) {
    (rl.spec.targetRefs ?? []).forEach((ref, i) => {
      if (ref.kind === 'Service') return; // Kubernetes Services are outside this snapshot
      const targetNs = ref.namespace ?? ns(rl);
      const found = s.of(ref.kind).some((r) => ns(r) === targetNs && r.metadata.name === ref.name);
      if (!found) out.add('ReferencedResourceNotFound', `Referenced ${ref.kind} not found: "${targetNs}/${ref.name}"`, [resourceKey(rl)], `spec.targetRefs[${i}]`);
    });
  }
}

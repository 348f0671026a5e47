import { resourceKey } from '@aviary/mesh-api';
import type { KubeObject } from './kube';
import { ns, selects, selectorString, type Findings, type Snapshot } from './model';

type Pod = Extract<KubeObject, { kind: 'Pod' }>;

/**
 * Checks that need every workload: they run only when the snapshot is complete
 * (AnalyzeOptions.complete), since the stored config alone holds no Pods, Services or Namespaces.
 */
export function analyzeWorkloadRefs(s: Snapshot, out: Findings): void {
  if (!s.complete) return;
  analyzeGatewayWorkloads(s, out);
  analyzeSidecarSelectors(s, out);
  analyzeAuthorizationPolicies(s, out);
}

/**
 * IST0101 (selector): a Gateway whose selector matches no Pod in any namespace. IST0162: a server
 * port that no TCP port (its targetPort, else its port) of a Service selecting those Pods exposes.
 */
function analyzeGatewayWorkloads(s: Snapshot, out: Findings): void {
  for (const gw of s.of('Gateway')) {
    const selector = gw.spec.selector ?? {};
    const pods = s.kube('Pod').filter((p) => selects(selector, p.metadata.labels));
    if (pods.length === 0) {
      out.add('ReferencedResourceNotFound', `Referenced selector not found: ${JSON.stringify(selectorString(selector))}`, [resourceKey(gw)], 'spec.selector');
      continue;
    }
    const exposed = new Set<number>();
    for (const pod of pods) {
      for (const svc of s.kube('Service')) {
        if (ns(svc) !== ns(pod) || !selects(svc.spec.selector ?? {}, pod.metadata.labels)) continue;
        for (const p of svc.spec.ports ?? []) {
          if (p.protocol !== 'TCP') continue; // as Istio: the protocol must be written out
          exposed.add(p.port);
          if (typeof p.targetPort === 'number') exposed.add(p.targetPort);
        }
      }
    }
    (gw.spec.servers ?? []).forEach((srv, i) => {
      if (exposed.has(srv.port.number)) return;
      out.add(
        'GatewayPortNotDefinedOnService',
        `The gateway is listening on a target port (port ${srv.port.number}) that is not defined in the Service associated with its workload instances (Pod selector ${selectorString(selector)}). If you need to access the gateway port through the gateway Service, it will not be available.`,
        [resourceKey(gw)],
        `spec.servers[${i}].port.number`,
      );
    });
  }
}

/** IST0101 (selector): a Sidecar whose workloadSelector matches no Pod in its namespace. */
function analyzeSidecarSelectors(s: Snapshot, out: Findings): void {
  for (const sc of s.of('Sidecar')) {
    const labels = sc.spec.workloadSelector?.labels ?? {};
    if (Object.keys(labels).length === 0) continue;
    if (s.kube('Pod').some((p) => ns(p) === ns(sc) && selects(labels, p.metadata.labels))) continue;
    out.add('ReferencedResourceNotFound', `Referenced selector not found: ${JSON.stringify(selectorString(labels))}`, [resourceKey(sc)], 'spec.workloadSelector');
  }
}

/**
 * A Pod in the mesh, as Istio's analyzers decide: it has an `istio-proxy` container, else its
 * `sidecar.istio.io/inject` label (then annotation) says `true`, else its Namespace is labelled
 * `istio-injection=enabled`; or it is redirected to ztunnel (ambient).
 */
function inMesh(s: Snapshot, pod: Pod): boolean {
  if (pod.metadata.annotations?.['ambient.istio.io/redirection'] === 'enabled') return true;
  const containers = [...(pod.spec.containers ?? []), ...(pod.spec.initContainers ?? [])];
  if (containers.some((c) => c.name === 'istio-proxy' && (c.image ?? '') !== '')) return true;
  const inject = pod.metadata.labels?.['sidecar.istio.io/inject'] ?? pod.metadata.annotations?.['sidecar.istio.io/inject'];
  if (inject !== undefined) return inject === 'true';
  const namespace = s.kube('Namespace').find((n) => n.metadata.name === ns(pod));
  return namespace?.metadata.labels?.['istio-injection'] === 'enabled';
}

/** Istio's namespace patterns in AuthorizationPolicy sources: `*`, `*suffix`, `prefix*`, else exact (case-insensitive). */
function namespaceMatches(name: string, pattern: string): boolean {
  if (pattern === '*') return true;
  if (pattern.startsWith('*')) return name.endsWith(pattern.slice(1));
  if (pattern.endsWith('*')) return name.startsWith(pattern.slice(0, -1));
  return name.toLowerCase() === pattern.toLowerCase();
}

/**
 * IST0127: an AuthorizationPolicy that applies to no Pod in the mesh (its selector matches none in
 * its namespace; without selector, its namespace has none; in the root namespace a selector may
 * match in any namespace). IST0101 (namespace): a source namespace no Namespace matches.
 */
function analyzeAuthorizationPolicies(s: Snapshot, out: Findings): void {
  const meshPods = s.kube('Pod').filter((p) => inMesh(s, p));
  for (const ap of s.of('AuthorizationPolicy')) {
    const selector = ap.spec.selector;
    const labels = selector?.matchLabels ?? {};
    const candidates = ns(ap) === s.rootNamespace ? meshPods : meshPods.filter((p) => ns(p) === ns(ap));
    const applies = selector === undefined ? ns(ap) === s.rootNamespace || candidates.length > 0 : candidates.some((p) => selects(labels, p.metadata.labels));
    if (!applies) {
      out.add('NoMatchingWorkloadsFound', `No matching workloads for this resource with the following labels: ${selector === undefined ? '' : selectorString(labels)}`, [resourceKey(ap)], 'spec.selector');
    }
    const namespaces = s.kube('Namespace').map((n) => n.metadata.name);
    (ap.spec.rules ?? []).forEach((rule, i) =>
      (rule.from ?? []).forEach((from, j) => {
        const source = from.source ?? {};
        const refs: [string, string][] = [
          ...(source.namespaces ?? []).map((n, k): [string, string] => [n, `spec.rules[${i}].from[${j}].source.namespaces[${k}]`]),
          ...(source.notNamespaces ?? []).map((n, k): [string, string] => [n, `spec.rules[${i}].from[${j}].source.notNamespaces[${k}]`]),
        ];
        for (const [pattern, path] of refs) {
          if (namespaces.some((n) => namespaceMatches(n, pattern))) continue;
          out.add('ReferencedResourceNotFound', `Referenced namespace not found: ${JSON.stringify(pattern)}`, [resourceKey(ap)], path);
        }
      }),
    );
  }
}

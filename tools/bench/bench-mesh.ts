import type { LoadNode } from './pilot-load';

/** The shape of the benchmark mesh (see tools/bench/pilot.ts's usage). */
export interface BenchMeshShape {
  readonly services: number;
  readonly endpoints: number;
  readonly namespaces: number;
  readonly streams: number;
  /** `namespace`: a Sidecar per namespace with egress `./*`; `mesh`: none (every proxy sees every service). */
  readonly visibility: string;
}

/**
 * The generated mesh of the pilot benchmarks: ServiceEntries with workload selectors,
 * WorkloadEntries, a DestinationRule with subsets and a VirtualService on every tenth service,
 * Sidecars per namespace; and the streams' xDS nodes. Shared by tools/bench/pilot.ts (pilot and
 * istiod as processes) and tools/bench/pilot-translate.ts (translation in process).
 */
export function benchMesh(shape: BenchMeshShape) {
  const { services: SERVICES, endpoints: ENDPOINTS, namespaces: NAMESPACES, streams: STREAMS, visibility: VISIBILITY } = shape;

  const nsOf = (svc: number): string => `bench-${Math.floor((svc * NAMESPACES) / SERVICES)}`;
  const hostOf = (svc: number): string => `svc-${svc}.${nsOf(svc)}.svc.cluster.local`;
  const grpcSvc = (svc: number): boolean => svc % 5 === 4;
  const hasSubsets = (svc: number): boolean => svc % 10 === 0;
  function endpointIp(svc: number, ep: number): string {
    // 62,500 addresses per /16: 10.1.x.y first, then 10.3.x.y, … (10.2/16 is the proxyless clients', 10.9/16 the changes').
    const g = svc * ENDPOINTS + ep;
    const block = Math.floor(g / 62_500);
    return `10.${block === 0 ? 1 : block + 2}.${Math.floor(g / 250) % 250}.${(g % 250) + 1}`;
  }
  const version = (ep: number): string => (ep < Math.ceil(ENDPOINTS * 0.7) ? 'v1' : 'v2');

  function serviceEntry(svc: number): string {
    const port = grpcSvc(svc) ? '{number: 9090, name: grpc, protocol: GRPC}' : '{number: 8080, name: http, protocol: HTTP}';
    return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: svc-${svc}, namespace: ${nsOf(svc)}}
spec: {hosts: [${hostOf(svc)}], location: MESH_INTERNAL, ports: [${port}], resolution: STATIC, workloadSelector: {labels: {app: svc-${svc}}}}
`;
  }

  function workloadEntry(svc: number, ep: number, address = endpointIp(svc, ep)): string {
    return `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: svc-${svc}-${ep}, namespace: ${nsOf(svc)}}
spec: {address: ${address}, labels: {app: svc-${svc}, version: ${version(ep)}, security.istio.io/tlsMode: istio}, serviceAccount: svc-${svc}, locality: region1/zone${ep % 3}}
`;
  }

  function routing(svc: number): string[] {
    return [
      `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: svc-${svc}, namespace: ${nsOf(svc)}}
spec: {host: ${hostOf(svc)}, trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}, subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]}
`,
      `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: svc-${svc}, namespace: ${nsOf(svc)}}
spec:
  hosts: [${hostOf(svc)}]
  http:
  - match: [{headers: {end-user: {exact: canary}}}]
    route: [{destination: {host: ${hostOf(svc)}, subset: v2}}]
  - route: [{destination: {host: ${hostOf(svc)}, subset: v1}, weight: 90}, {destination: {host: ${hostOf(svc)}, subset: v2}, weight: 10}]
    retries: {attempts: 2, perTryTimeout: 1s}
    timeout: 5s
`,
    ];
  }

  function allDocuments(): string[] {
    const docs: string[] = [];
    if (VISIBILITY === 'namespace') {
      for (let n = 0; n < NAMESPACES; n++) {
        docs.push(`apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: bench-${n}}
spec: {egress: [{hosts: ["./*"]}]}
`);
      }
    }
    for (let s = 0; s < SERVICES; s++) docs.push(serviceEntry(s));
    for (let s = 0; s < SERVICES; s++) for (let e = 0; e < ENDPOINTS; e++) docs.push(workloadEntry(s, e));
    for (let s = 0; s < SERVICES; s++) if (hasSubsets(s)) docs.push(...routing(s));
    return docs;
  }

  /**
   * Istio's node metadata as pilot-agent sends it; istiod needs ISTIO_VERSION and CLUSTER_ID to
   * treat a stream as a current proxy of this cluster (pilot reads NAMESPACE, LABELS,
   * SERVICE_ACCOUNT, INSTANCE_IPS and ignores the rest).
   */
  function istioMetadata(ns: string, ip: string, workload: string): Record<string, string> {
    return { ISTIO_VERSION: '1.29.0', CLUSTER_ID: 'Kubernetes', MESH_ID: 'cluster.local', NAMESPACE: ns, INSTANCE_IPS: ip, WORKLOAD_NAME: workload };
  }

  /**
   * 4 in 5 streams are sidecars at the address of a workload (endpoint 0 of a service), 1 in 5
   * proxyless gRPC clients; with `allSidecars` (--vs-istiod) every stream is a sidecar.
   */
  function loadNodes(allSidecars = false): LoadNode[] {
    const nodes: LoadNode[] = [];
    for (let i = 0; i < STREAMS; i++) {
      const nsIdx = i % NAMESPACES;
      const k = Math.floor(i / NAMESPACES); // index within the namespace
      const ns = `bench-${nsIdx}`;
      const svcPerNs = SERVICES / NAMESPACES;
      if (i % 5 === 4 && !allSidecars) {
        const ip = `10.2.${Math.floor(i / 250)}.${(i % 250) + 1}`;
        nodes.push({
          id: `sidecar~${ip}~client-${k}.${ns}~${ns}.svc.cluster.local`,
          kind: 'proxyless',
          namespace: ns,
          metadata: { ...istioMetadata(ns, ip, `client-${k % 4}`), GENERATOR: 'grpc', SERVICE_ACCOUNT: `client-${k % 4}`, LABELS: { app: `client-${k % 4}` } },
        });
      } else {
        const svc = nsIdx * svcPerNs + (k % svcPerNs);
        const ep = Math.floor(k / svcPerNs) % ENDPOINTS;
        const ip = endpointIp(svc, ep);
        nodes.push({
          id: `sidecar~${ip}~svc-${svc}-${ep}.${ns}~${ns}.svc.cluster.local`,
          kind: 'sidecar',
          namespace: ns,
          metadata: { ...istioMetadata(ns, ip, `svc-${svc}`), SERVICE_ACCOUNT: `svc-${svc}`, LABELS: { app: `svc-${svc}`, version: version(ep) } },
        });
      }
    }
    return nodes;
  }
  return { nsOf, hostOf, endpointIp, version, serviceEntry, workloadEntry, routing, allDocuments, istioMetadata, loadNodes };
}

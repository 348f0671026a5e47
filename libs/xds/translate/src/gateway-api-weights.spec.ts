import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { withStoredKind } from '@aviary/mesh-api';
import { buildSnapshot, parseNode, type ModelObject } from '@aviary/mesh-model';
import { translate, type Msg } from './index';

/**
 * A canary on an HTTPRoute rule moves its backendRefs' weights; the gateway's clusters must not
 * move with them. Envoy applies a route as soon as it arrives: a cluster added in the same push is
 * still warming (until its EDS arrives) and one removed is gone, so the requests the new route
 * sends there are answered 503 with flag NC (cluster_not_found). Measured in
 * e2e/demo/canary-httproute.e2e.ts before this held: the ingress counted `no_cluster` once for
 * every such 503, at the steps that added or removed hello-v2's or hello-v1's cluster.
 */

const mesh = (v1: number, v2: number) =>
  buildSnapshot(
    parseAllDocuments(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: hello-v1, namespace: web }
spec:
  hosts: [hello-v1.web.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 80, name: http, protocol: HTTP }]
  workloadSelector: { labels: { app: hello, version: v1 } }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: hello-v2, namespace: web }
spec:
  hosts: [hello-v2.web.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 80, name: http, protocol: HTTP }]
  workloadSelector: { labels: { app: hello, version: v2 } }
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: web-gw, namespace: web }
spec:
  gatewayClassName: aviary
  listeners: [{ name: http, port: 80, protocol: HTTP }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: hello, namespace: web }
spec:
  parentRefs: [{ name: web-gw }]
  hostnames: [hello.example.com]
  rules:
  - name: split
    backendRefs:
    - { name: hello-v1, port: 80, weight: ${v1} }
    - { name: hello-v2, port: 80, weight: ${v2} }
`).map((d) => withStoredKind(d.toJS() as ModelObject)),
    { trustDomain: 'cluster.local' },
  );

const router = parseNode({
  id: 'router~10.2.9.1~web-gw-7d9f.web~web.svc.cluster.local',
  metadata: { NAMESPACE: 'web', LABELS: { 'gateway.networking.k8s.io/gateway-name': 'web-gw' } },
});
const V1 = 'outbound|80||hello-v1.web.svc.cluster.local';
const V2 = 'outbound|80||hello-v2.web.svc.cluster.local';

function gateway(v1: number, v2: number): { clusters: string[]; action: Msg } {
  const r = translate(router, mesh(v1, v2));
  const hosts = r.routes.flatMap((x) => x.resource.virtual_hosts as Msg[]);
  const route = hosts.find((h) => (h.domains as string[]).includes('hello.example.com'))!.routes as Msg[];
  return { clusters: r.clusters.map((c) => c.name).filter((n) => n.includes('hello-')), action: route[0]!.route as Msg };
}

describe('an HTTPRoute rule whose weights a canary moves, on its gateway', () => {
  it('keeps a cluster for every backendRef, weight 0 included, at every step: only the route changes', () => {
    for (const [v1, v2] of [[100, 0], [80, 20], [50, 50], [0, 100]] as const) expect(gateway(v1, v2).clusters, `${v1}/${v2}`).toEqual([V1, V2]);
  });

  it('sends nothing to a weight-0 backendRef', () => {
    expect(gateway(100, 0).action.cluster).toBe(V1);
    expect(gateway(0, 100).action.cluster).toBe(V2);
    expect((gateway(80, 20).action.weighted_clusters as Msg).clusters).toEqual([
      { name: V1, weight: { value: 80 } },
      { name: V2, weight: { value: 20 } },
    ]);
  });
});

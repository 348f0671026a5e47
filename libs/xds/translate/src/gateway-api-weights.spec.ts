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

/** The same for a TCPRoute rule: connections are routed by the TcpProxy, clusters must stay put. */
const tcpMesh = (v1: number, v2: number) =>
  buildSnapshot(
    parseAllDocuments(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: echo-v1, namespace: web }
spec:
  hosts: [echo-v1.web.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 9000, name: tcp, protocol: TCP }]
  workloadSelector: { labels: { app: echo, version: v1 } }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: echo-v2, namespace: web }
spec:
  hosts: [echo-v2.web.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 9000, name: tcp, protocol: TCP }]
  workloadSelector: { labels: { app: echo, version: v2 } }
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: web-gw, namespace: web }
spec:
  gatewayClassName: aviary
  listeners: [{ name: tcp, port: 9000, protocol: TCP, allowedRoutes: { kinds: [{ kind: TCPRoute }] } }]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: { name: echo, namespace: web }
spec:
  parentRefs: [{ name: web-gw, sectionName: tcp }]
  rules:
  - backendRefs:
    - { name: echo-v1, port: 9000, weight: ${v1} }
    - { name: echo-v2, port: 9000, weight: ${v2} }
`).map((d) => withStoredKind(d.toJS() as ModelObject)),
    { trustDomain: 'cluster.local' },
  );

const E1 = 'outbound|9000||echo-v1.web.svc.cluster.local';
const E2 = 'outbound|9000||echo-v2.web.svc.cluster.local';

function tcpGateway(v1: number, v2: number): { clusters: string[]; tcpProxy: Msg } {
  const r = translate(router, tcpMesh(v1, v2));
  const listener = r.listeners.find((l) => ((l.resource.address as Msg).socket_address as Msg).port_value === 9000)!.resource;
  const filter = ((listener.filter_chains as Msg[])[0]!.filters as Msg[]).find((f) => f.name === 'envoy.filters.network.tcp_proxy')!;
  return { clusters: r.clusters.map((c) => c.name).filter((n) => n.includes('echo-')), tcpProxy: filter.typed_config as Msg };
}

describe('a TCPRoute rule whose weights move, on its gateway', () => {
  it('keeps a cluster for every backendRef, weight 0 included, at every step', () => {
    for (const [v1, v2] of [[100, 0], [80, 20], [0, 100]] as const) expect(tcpGateway(v1, v2).clusters, `${v1}/${v2}`).toEqual([E1, E2]);
  });

  it('routes no connection to a weight-0 backendRef', () => {
    expect(tcpGateway(100, 0).tcpProxy.cluster).toBe(E1);
    expect(tcpGateway(0, 100).tcpProxy.cluster).toBe(E2);
    expect((tcpGateway(80, 20).tcpProxy.weighted_clusters as Msg).clusters).toEqual([
      { name: E1, weight: 80 },
      { name: E2, weight: 20 },
    ]);
  });

  it('refuses every connection when no backendRef has a weight, and still keeps their clusters', () => {
    const { clusters, tcpProxy } = tcpGateway(0, 0);
    expect(clusters).toEqual([E1, E2]);
    expect(tcpProxy.cluster).not.toBe(E1);
    expect(tcpProxy.cluster).not.toBe(E2);
  });
});

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

/** `<app>-v1` and `<app>-v2` as ServiceEntries on one port, a Gateway with one listener, and `route` attached to it. */
function meshOf(app: string, port: number, protocol: 'HTTP' | 'TCP', listener: string, route: string): ReturnType<typeof buildSnapshot> {
  const entries = ['v1', 'v2'].map(
    (v) => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${app}-${v}, namespace: web }
spec:
  hosts: [${app}-${v}.web.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${port}, name: ${protocol.toLowerCase()}, protocol: ${protocol} }]
  workloadSelector: { labels: { app: ${app}, version: ${v} } }
`,
  );
  const gateway = `
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: web-gw, namespace: web }
spec:
  gatewayClassName: aviary
  listeners: [${listener}]
`;
  const docs = parseAllDocuments([...entries, gateway, route].join('---\n'));
  return buildSnapshot(
    docs.map((d) => withStoredKind(d.toJS() as ModelObject)),
    { trustDomain: 'cluster.local' },
  );
}

/** A route of `kind` whose one rule splits between `<app>-v1` and `<app>-v2` by `v1`:`v2`. */
function splitRoute(kind: 'HTTPRoute' | 'TCPRoute', app: string, port: number, v1: number, v2: number, extra: { parentRef: string; hostnames?: string; ruleName?: string }): string {
  return `
apiVersion: gateway.networking.k8s.io/${kind === 'HTTPRoute' ? 'v1' : 'v1alpha2'}
kind: ${kind}
metadata: { name: ${app}, namespace: web }
spec:
  parentRefs: [${extra.parentRef}]
  ${extra.hostnames ? `hostnames: [${extra.hostnames}]` : ''}
  rules:
  - ${extra.ruleName ? `name: ${extra.ruleName}` : ''}
    backendRefs:
    - { name: ${app}-v1, port: ${port}, weight: ${v1} }
    - { name: ${app}-v2, port: ${port}, weight: ${v2} }
`;
}

const mesh = (v1: number, v2: number) =>
  meshOf('hello', 80, 'HTTP', '{ name: http, port: 80, protocol: HTTP }', splitRoute('HTTPRoute', 'hello', 80, v1, v2, { parentRef: '{ name: web-gw }', hostnames: 'hello.example.com', ruleName: 'split' }));

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
  meshOf('echo', 9000, 'TCP', '{ name: tcp, port: 9000, protocol: TCP, allowedRoutes: { kinds: [{ kind: TCPRoute }] } }', splitRoute('TCPRoute', 'echo', 9000, v1, v2, { parentRef: '{ name: web-gw, sectionName: tcp }' }));

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

import { AGENT_ADMINS, helloVirtualService, HOST, PILOT } from './demo';

/**
 * The make-before-break suites' mesh changes and probes (e2e/demo/new-cluster-route,
 * e2e/demo/reconnect-new-cluster): each round adds a ServiceEntry for a host the ingress has
 * never had (a new cluster) and points half of the demo route's traffic at it.
 */

export const newHost = (round: number): string => `hello-new-${round}.demo.svc.cluster.local`;
export const clusterOf = (host: string): string => `outbound|80||${host}`;

/** A host served by the demo's v2 workload, unknown to the ingress until now. */
export const serviceEntry = (round: number): string => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: hello-new-${round}, namespace: demo }
spec:
  hosts: [${newHost(round)}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 80, name: http, protocol: HTTP }]
  workloadSelector: { labels: { app: hello, version: v2 } }
`;

/** The demo's route, half to v1 and half to this round's new host (after `extraRoutes`, YAML list items). */
export const virtualService = (round: number, extraRoutes = ''): string =>
  helloVirtualService(`${extraRoutes}  - name: hello
    route:
    - { destination: { host: ${HOST}, subset: v1, port: { number: 80 } }, weight: 50 }
    - { destination: { host: ${newHost(round)}, port: { number: 80 } }, weight: 50 }
`);

/** One section of the ingress Envoy's config dump, as text. */
export const dump = async (resource: string): Promise<string> => (await fetch(`${AGENT_ADMINS[0]}/config_dump?resource=${resource}`)).text();

/** Whether the ingress routes to `host` and has its cluster active. */
export async function ingressRoutesTo(host: string): Promise<boolean> {
  return (await dump('dynamic_route_configs')).includes(clusterOf(host)) && (await dump('dynamic_active_clusters')).includes(`"${clusterOf(host)}"`);
}

/** The ingress Envoy's `no_cluster` counters, summed (every HTTP connection manager's). */
export async function noCluster(): Promise<number> {
  const text = await (await fetch(`${AGENT_ADMINS[0]}/stats?filter=${encodeURIComponent('\\.no_cluster$')}`)).text();
  return text
    .split('\n')
    .filter((l) => l.includes(': '))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

/** A pilot's `aviary_xds_warming_holds_total` by `type/outcome` (every stream's). */
export async function holds(pilot: string = PILOT): Promise<Record<string, number>> {
  const text = await (await fetch(`${pilot}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^aviary_xds_warming_holds_total\{([^}]*)\} (\S+)$/gm)) {
    const labels = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    out[`${labels.type}/${labels.outcome}`] = (out[`${labels.type}/${labels.outcome}`] ?? 0) + Number(m[2]);
  }
  return out;
}

/** What rose between two `holds` readings (zeros left out). */
export function heldSince(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)]).filter(([, v]) => v !== 0));
}

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalMesh } from '../support/mesh';
import { AGENT_ADMINS, apply, demoVirtualService, HOST, PILOT, remove, requestLoops, until } from '../support/demo';

/**
 * Make-before-break at the ingress of the local mesh demo, under steady load: each round adds a
 * ServiceEntry for a host the ingress has never had (a new cluster) and, in the same apply,
 * points half of the demo route's traffic at it, taking it off the previous round's host (whose
 * cluster then goes). Pilot must not send the ingress the route before the new cluster is warm
 * (CDS ACKed, EDS sent and ACKed), nor remove the old cluster before the route that stops naming
 * it is ACKed; otherwise Envoy answers the requests routed there in between with 503, response
 * flag NC (cluster_not_found), and `http.<prefix>.no_cluster` rises.
 */

const ROUNDS = 6;
let mesh: LocalMesh;

beforeAll(async () => {
  mesh = await LocalMesh.start({ args: ['--demo', '--keep-going'] });
}, 120_000);

afterAll(async () => {
  await mesh?.stop();
});

const newHost = (round: number): string => `hello-new-${round}.demo.svc.cluster.local`;
const clusterOf = (host: string): string => `outbound|80||${host}`;

/** A host served by the demo's v2 workload, unknown to the ingress until now. */
const serviceEntry = (round: number): string => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: hello-new-${round}, namespace: demo }
spec:
  hosts: [${newHost(round)}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 80, name: http, protocol: HTTP }]
  workloadSelector: { labels: { app: hello, version: v2 } }
`;

/** The demo's route, half to v1 and half to this round's new host. */
const virtualService = (round: number): string => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: hello, namespace: demo }
spec:
  hosts: ['*']
  gateways: [hello-gateway]
  http:
  - name: hello
    route:
    - { destination: { host: ${HOST}, subset: v1, port: { number: 80 } }, weight: 50 }
    - { destination: { host: ${newHost(round)}, port: { number: 80 } }, weight: 50 }
`;

const dump = async (resource: string): Promise<string> => (await fetch(`${AGENT_ADMINS[0]}/config_dump?resource=${resource}`)).text();

/** The ingress Envoy's `no_cluster` counters, summed (every HTTP connection manager's). */
async function noCluster(): Promise<number> {
  const text = await (await fetch(`${AGENT_ADMINS[0]}/stats?filter=${encodeURIComponent('\\.no_cluster$')}`)).text();
  return text
    .split('\n')
    .filter((l) => l.includes(': '))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

/** Pilot's `aviary_xds_warming_holds_total` by `type/outcome` (every stream's). */
async function holds(): Promise<Record<string, number>> {
  const text = await (await fetch(`${PILOT}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^aviary_xds_warming_holds_total\{([^}]*)\} (\S+)$/gm)) {
    const labels = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    out[`${labels.type}/${labels.outcome}`] = (out[`${labels.type}/${labels.outcome}`] ?? 0) + Number(m[2]);
  }
  return out;
}

describe('a route to a cluster new to the ingress, under load', () => {
  it('fails no request while routes move to new clusters and old ones go (no NC)', async () => {
    await until('the demo route to answer', async () => ((await fetch('http://127.0.0.1:8080/', { signal: AbortSignal.timeout(2_000) })).status === 200 ? true : undefined), 30_000);
    const noClusterBefore = await noCluster();
    const holdsBefore = await holds();
    const load = requestLoops(4, '/');
    try {
      for (let round = 1; round <= ROUNDS; round++) {
        await new Promise((r) => setTimeout(r, 500));
        await apply(mesh, `${serviceEntry(round)}---\n${virtualService(round)}`);
        await until(
          `round ${round}: the ingress to route to ${newHost(round)}`,
          async () => ((await dump('dynamic_route_configs')).includes(clusterOf(newHost(round))) && (await dump('dynamic_active_clusters')).includes(`"${clusterOf(newHost(round))}"`) ? true : undefined),
          30_000,
        );
        if (round > 1) {
          const old = clusterOf(newHost(round - 1));
          await until(`round ${round}: the ingress to drop ${old}`, async () => (!(await dump('dynamic_active_clusters')).includes(`"${old}"`) ? true : undefined), 30_000);
        }
        await until(`round ${round}: answers from the new host`, async () => (load.answers.slice(-20).some((a) => a.version === 'v2') ? true : undefined), 10_000);
      }
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      await load.stop();
      await apply(mesh, demoVirtualService());
      for (let round = 1; round <= ROUNDS; round++) await remove(mesh, 'serviceentries', `hello-new-${round}`);
    }
    const failed = load.answers.filter((a) => a.status !== 200);
    const noClusterAfter = await noCluster();
    const holdsAfter = await holds();
    const held = Object.fromEntries(Object.entries(holdsAfter).map(([k, v]) => [k, v - (holdsBefore[k] ?? 0)]).filter(([, v]) => v !== 0));
    console.log(`[new cluster route e2e] pilot's warming holds in the rounds: ${JSON.stringify(held)}`);
    console.log(
      `[new cluster route e2e] ${ROUNDS} rounds: ${load.answers.length} requests, ${load.answers.filter((a) => a.version === 'v2').length} to the new hosts, ` +
        `${failed.length} failed (${failed.filter((a) => a.status === 503 && a.version === null).length} ingress 503s), ${load.failures.length} transport errors; ingress no_cluster +${noClusterAfter - noClusterBefore}`,
    );
    expect(load.failures).toEqual([]);
    expect(noClusterAfter - noClusterBefore).toBe(0);
    // Every hold ended because the clusters warmed, none by the bound.
    expect(held['rds/ready'] ?? 0).toBeGreaterThanOrEqual(ROUNDS);
    expect(Object.keys(held).filter((k) => k.endsWith('/timeout'))).toEqual([]);
    expect(failed.map((a) => `${a.status} ${a.body.slice(0, 80)}`)).toEqual([]);
  });
});

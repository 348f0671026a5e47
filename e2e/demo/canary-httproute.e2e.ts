import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LocalMesh } from '../support/mesh';
import { AGENT_ADMINS, apply, CANARY_MESH_ENV, COLLECTOR, getAs, HELLO_VERSION_SERVICES, PILOT, remove, requestLoops, until } from '../support/demo';

/**
 * A Canary whose target is a Gateway API HTTPRoute in the local mesh demo: the route's rule
 * `split` sends Host hello-canary.gateway-api.test to the Services hello-v1 and hello-v2 (the
 * demo's two versions, one Service each), and the controller in pilot writes that rule's
 * backendRefs weights from the collector's per-Service summaries. A healthy v2 is promoted; a v2
 * failing 20 % of its requests is rolled back. Short intervals as in canary.e2e.ts (summaries
 * every second over 3 s, analyses every 2 s).
 */

const INTERVAL_MS = 2_000;
const HOSTNAME = 'hello-canary.gateway-api.test';
let mesh: LocalMesh;

beforeAll(async () => {
  mesh = await LocalMesh.start({
    args: ['--demo', '--keep-going'],
    env: CANARY_MESH_ENV,
  });
}, 120_000);

afterAll(async () => {
  await mesh?.stop();
});

/** The Services, a Gateway of Aviary's class on the local ingress, and the route at 100/0. */
const route = `${HELLO_VERSION_SERVICES}---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: web, namespace: demo }
spec:
  gatewayClassName: aviary
  listeners:
  - { name: http, port: 80, protocol: HTTP, hostname: "*.gateway-api.test" }
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: hello, namespace: demo }
spec:
  parentRefs: [{ name: web }]
  hostnames: [${HOSTNAME}]
  rules:
  - name: split
    backendRefs:
    - { name: hello-v1, port: 80, weight: 100 }
    - { name: hello-v2, port: 80, weight: 0 }
`;

const canary = `apiVersion: networking.aviary.dev/v1alpha1
kind: Canary
metadata: { name: hello-route, namespace: demo }
spec:
  target: { httpRoute: hello, route: split }
  stable: { host: hello-v1 }
  canary: { host: hello-v2 }
  steps: [{ weight: 20 }, { weight: 50 }]
  analysis: { interval: ${INTERVAL_MS / 1000}s, maxDataAge: 5s, minRequests: 10, successRate: 95, failedChecksLimit: 2 }
  failurePolicy: Rollback
`;

interface Status {
  phase: string;
  currentWeight: number;
  lastTransitionTime: string;
  message?: string;
  lastAnalysis?: { time: string; verdict: string; canary: { requests: number; successRate: number; time: string; windowSeconds?: number } };
}

const canaryStatus = async (): Promise<Status | undefined> => ((await (await fetch(`${PILOT}/api/v1/canaries/demo/hello-route`)).json()) as { status?: Status }).status;
const backendWeights = async (): Promise<number[]> =>
  ((await (await fetch(`${PILOT}/api/v1/config/httproutes/demo/hello`)).json()) as { spec: { rules: { backendRefs: { weight?: number }[] }[] } }).spec.rules[0]!.backendRefs.map((b) => b.weight ?? 1);

/**
 * True once the ingress Envoy serves the route: its route configuration names the hostname and
 * both backendRefs' clusters are active (warmed). An answer from v1 does not tell: before the
 * route arrives the demo's VirtualService answers any Host, from v1 and v2.
 */
async function routeServed(): Promise<true | undefined> {
  const dump = async (resource: string) => (await fetch(`${AGENT_ADMINS[0]}/config_dump?resource=${resource}`)).text();
  const clusters = await dump('dynamic_active_clusters');
  const warmed = ['hello-v1', 'hello-v2'].every((s) => clusters.includes(`"outbound|80||${s}.demo.svc.cluster.local"`));
  return warmed && (await dump('dynamic_route_configs')).includes(`"${HOSTNAME}"`) ? true : undefined;
}

/** Waits for the Canary to finish; on a timeout, the collector's per-service summaries are in the error. */
async function finished(): Promise<Status> {
  try {
    return await until('the Canary to finish', async () => {
      const s = await canaryStatus();
      return s !== undefined && (s.phase === 'Promoted' || s.phase === 'RolledBack') ? s : undefined;
    }, 90_000);
  } catch (err) {
    const summaries = await (await fetch(`${COLLECTOR}/api/v1/services/summaries?window=10s`)).text().catch(String);
    throw new Error(`${String(err)}; status ${JSON.stringify(await canaryStatus())}; collector summaries ${summaries.slice(0, 2000)}`);
  }
}

describe('a Canary on a Gateway API HTTPRoute in the local demo', () => {
  afterEach(async () => {
    await remove(mesh, 'canaries', 'hello-route');
  });

  it('promotes a healthy v2 by writing the rule\'s backendRefs weights, no request failing', async () => {
    await apply(mesh, route);
    await until('the ingress to serve the route', routeServed, 30_000);
    await until('the route to answer from v1', async () => ((await getAs(HOSTNAME)).version === 'v1' ? true : undefined), 30_000);
    const load = requestLoops(4, '/', { host: HOSTNAME });
    const started = Date.now();
    await apply(mesh, canary);
    const final = await finished();
    await until('all traffic on v2', async () => (load.answers.slice(-20).every((a) => a.version === 'v2') ? true : undefined));
    await load.stop();
    expect(load.failures).toEqual([]);
    expect(final).toMatchObject({ phase: 'Promoted', currentWeight: 100 });
    expect(await backendWeights()).toEqual([0, 100]);
    const failed = load.answers.filter((a) => a.status !== 200).length;
    console.log(`[canary httproute e2e] healthy: promoted in ${((Date.parse(final.lastTransitionTime) - started) / 1000).toFixed(1)} s; ${load.answers.length} requests (${load.answers.filter((a) => a.version === 'v2').length} to v2), ${failed} failed ${JSON.stringify(load.answers.filter((a) => a.status !== 200))}; last analysis ${JSON.stringify(final.lastAnalysis?.canary)}`);
    // Every weight step only rewrites the route: the gateway keeps a cluster for each backendRef,
    // weight 0 included (an added or removed cluster gave ingress 503s, NC, at the steps before).
    expect(failed).toBe(0);
  });

  it('rolls a v2 failing 20 % of its requests back to 0 % on the rule', async () => {
    await apply(mesh, route); // back to 100/0
    await until('v1-only traffic', async () => ((await getAs(HOSTNAME)).version === 'v1' ? true : undefined), 30_000);
    const load = requestLoops(4, '/fail-percent/v2/20', { host: HOSTNAME });
    const started = Date.now();
    await apply(mesh, canary);
    const final = await finished();
    expect(final).toMatchObject({ phase: 'RolledBack', currentWeight: 0 });
    expect(final.message).toMatch(/success rate [\d.]+% < 95%/);
    expect(await backendWeights()).toEqual([100, 0]);
    await until('all traffic back on v1', async () => (load.answers.slice(-40).every((a) => a.version === 'v1') ? true : undefined));
    await load.stop();
    expect(load.failures).toEqual([]);
    const failed = load.answers.filter((a) => a.status !== 200).length;
    console.log(
      `[canary httproute e2e] failing v2 (20 %): rolled back ${((Date.parse(final.lastTransitionTime) - started) / 1000).toFixed(1)} s after the Canary was applied; ` +
        `${load.answers.length} requests, ${load.answers.filter((a) => a.version === 'v2').length} to v2, ${failed} failed (${load.answers.filter((a) => a.status === 503 && a.version === null).length} ingress 503s); ${final.message}`,
    );
    expect(failed).toBeGreaterThan(0);
    expect(failed / load.answers.length).toBeLessThan(0.1);
    // Every failure is v2's: none from the ingress itself (see the first test).
    expect(load.answers.filter((a) => a.status !== 200 && a.version !== 'v2')).toEqual([]);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalMesh } from '../support/mesh';
import { apply, demoVirtualService, HOST, requestLoops, until } from '../support/demo';
import { lastPid, servingReplica } from '../support/faults';
import { heldSince, holds, ingressRoutesTo, newHost, noCluster, serviceEntry, virtualService } from '../support/new-cluster';

/**
 * Make-before-break when the ingress reconnects, under steady load: the local mesh demo with two
 * pilot replicas. Each round freezes (SIGSTOP) the replica that serves the ingress, applies
 * through the other one a ServiceEntry for a host the ingress has never had (a new cluster) and a
 * route sending half of the traffic to it, then SIGKILLs the frozen replica. The ingress Envoy
 * reconnects to the other replica holding its old config, asks for every type at once, and is
 * answered with the new route in the stream's first responses. Pilot must hold that route until
 * the new cluster is warm (CDS ACKed, EDS sent and ACKed); otherwise Envoy answers the requests
 * routed there in between with 503 NC (cluster_not_found) and `no_cluster` rises.
 *
 * In the first test the demo's other destinations and the earlier rounds' hosts stay routed, so
 * each reconnect only adds a cluster. In the second each round also moves the route off the
 * previous round's host, whose cluster the reconnected stream's first CDS response would remove
 * while the proxy's old routes still send half of the traffic there: pilot keeps it until the new
 * routes are ACKed (delta by not removing it; SotW, whose CDS response is the whole set, by
 * rebuilding it by name from the model and sending it again; see `ClusterWarming.resumedHolding`).
 */

const ROUNDS = 3;
const PILOTS = ['http://127.0.0.1:15014', 'http://127.0.0.1:25014'] as const;
const PILOT_NAMES = ['pilot', 'pilot-2'] as const;
let mesh: LocalMesh;

beforeAll(async () => {
  mesh = await LocalMesh.start({ args: ['--demo', '--pilot-replicas', '2', '--restart-initial-ms', '1000'] });
}, 150_000);

afterAll(async () => {
  if (process.env['KEEP_MESH_STATE']) console.log(`[reconnect new cluster e2e] state kept in ${mesh?.stateDir}`);
  await mesh?.stop({ keepState: process.env['KEEP_MESH_STATE'] !== undefined });
});

/**
 * Half of the demo route's traffic to this round's new host. The demo's external route, its v2
 * subset and (with `keep`) each earlier round's host stay routed (the last two for requests with
 * `x-kept: v2` or `x-kept: <round>`): the gateway gets clusters only for the destinations its
 * routes name, so without `keep` the previous round's host goes.
 */
const roundVirtualService = (round: number, keep: boolean): string =>
  virtualService(
    round,
    `  - name: external
    match: [{ uri: { prefix: /external/ } }]
    rewrite: { uri: / }
    route: [{ destination: { host: weather.external.test, port: { number: 80 } } }]
  - name: kept-v2
    match: [{ headers: { x-kept: { exact: v2 } } }]
    route: [{ destination: { host: ${HOST}, subset: v2, port: { number: 80 } } }]
${Array.from({ length: keep ? round - 1 : 0 }, (_, k) => `  - name: kept-${k + 1}
    match: [{ headers: { x-kept: { exact: '${k + 1}' } } }]
    route: [{ destination: { host: ${newHost(k + 1)}, port: { number: 80 } } }]
`).join('')}`,
  );

const ready = async (pilot: string): Promise<true | undefined> => ((await fetch(`${pilot}/readyz`, { signal: AbortSignal.timeout(2_000) })).status === 200 ? true : undefined);

/**
 * `ROUNDS` reconnects of the ingress under load, each to the replica that did not serve it, which
 * meanwhile got the round's ServiceEntry and VirtualService; then the checks: no request failed,
 * no NC, and every round's first routes on the new stream were held until the new cluster was warm.
 */
async function reconnectRounds(name: string, keep: boolean): Promise<void> {
  await until('the demo route to answer', async () => ((await fetch('http://127.0.0.1:8080/', { signal: AbortSignal.timeout(2_000) })).status === 200 ? true : undefined), 30_000);
  const noClusterBefore = await noCluster();
  const load = requestLoops(4, '/');
  const held: Record<string, number>[] = [];
  let survivor = 0;
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      const serving = await until(`round ${round}: the ingress on a replica`, () => servingReplica(PILOTS, 'istio-ingressgateway'), 20_000);
      survivor = 1 - serving;
      await until(`round ${round}: ${PILOT_NAMES[survivor]} ready`, () => ready(PILOTS[survivor]!), 30_000);
      const holdsBefore = await holds(PILOTS[survivor]);
      const frozen = lastPid(mesh.stateDir, PILOT_NAMES[serving]!);
      process.kill(frozen, 'SIGSTOP');
      try {
        await apply(mesh, `${serviceEntry(round)}---\n${roundVirtualService(round, keep)}`, PILOTS[survivor]);
        // The survivor has translated the change (its own proxies got it) before the ingress moves.
        await new Promise((r) => setTimeout(r, 1_000));
      } finally {
        process.kill(frozen, 'SIGKILL');
      }
      await until(`round ${round}: the ingress to route to ${newHost(round)}`, async () => ((await ingressRoutesTo(newHost(round))) ? true : undefined), 30_000);
      expect(await servingReplica(PILOTS, 'istio-ingressgateway')).toBe(survivor);
      await until(`round ${round}: answers from the new host`, async () => (load.answers.slice(-20).some((a) => a.version === 'v2') ? true : undefined), 10_000);
      if (!keep && round > 1) await until(`round ${round}: the ingress to drop ${newHost(round - 1)}`, async () => (!(await ingressRoutesTo(newHost(round - 1))) ? true : undefined), 10_000);
      held.push(heldSince(holdsBefore, await holds(PILOTS[survivor])));
      console.log(`[${name}] round ${round}: ${PILOT_NAMES[serving]} (pid ${frozen}) frozen and killed; ingress no_cluster ${await noCluster()}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  } finally {
    await load.stop();
    await apply(mesh, demoVirtualService(), PILOTS[survivor]);
  }
  const failed = load.answers.filter((a) => a.status !== 200);
  const noClusterAfter = await noCluster();
  console.log(`[${name}] warming holds on the replica the ingress moved to, per round: ${JSON.stringify(held)}`);
  console.log(
    `[${name}] ${ROUNDS} rounds: ${load.answers.length} requests, ${load.answers.filter((a) => a.version === 'v2').length} v2, ` +
      `${failed.length} failed (${failed.filter((a) => a.status === 503 && a.version === null).length} ingress 503s), ${load.failures.length} transport errors; ingress no_cluster +${noClusterAfter - noClusterBefore}`,
  );
  expect(load.failures).toEqual([]);
  expect(noClusterAfter - noClusterBefore).toBe(0);
  // In every round the reconnected stream's first routes were held, and released by the warm-up, not the bound.
  for (const [i, h] of held.entries()) {
    expect(h['rds/ready'] ?? 0).toBeGreaterThanOrEqual(1);
    // Pilot kept the previous round's cluster until the new routes were ACKed.
    if (!keep && i > 0) expect(h['cds/ready'] ?? 0).toBeGreaterThanOrEqual(1);
    expect(Object.keys(h).filter((k) => k.endsWith('/timeout'))).toEqual([]);
  }
  expect(failed.map((a) => `${a.status} ${a.body.slice(0, 80)}`)).toEqual([]);
}

describe('the ingress reconnecting to a replica with newer routes, under load', () => {
  it("fails no request when they name a cluster new to it: the stream's first routes wait for it (no NC)", async () => {
    await reconnectRounds('reconnect new cluster e2e', true);
  });

  it('fails no request when they also move off a cluster: pilot keeps it until the new routes are ACKed (no NC)', async () => {
    await reconnectRounds('reconnect move e2e', false);
  });
});

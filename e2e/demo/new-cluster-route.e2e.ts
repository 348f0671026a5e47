import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalMesh } from '../support/mesh';
import { apply, demoVirtualService, remove, requestLoops, until } from '../support/demo';
import { clusterOf, dump, heldSince, holds, ingressRoutesTo, newHost, noCluster, serviceEntry, virtualService } from '../support/new-cluster';

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
          async () => ((await ingressRoutesTo(newHost(round))) ? true : undefined),
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
    const held = heldSince(holdsBefore, holdsAfter);
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

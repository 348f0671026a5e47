// The chart's HA values on a real one-node Kubernetes (issue 19: "the Kubernetes node tier runs
// them"): `helm install` with e2e/k8s/values/ha.yaml (2 pilots, 2 citadels sharing the CA Secret,
// a 3-node NATS JetStream cluster with replicas 3, PDBs; pilot's anti-affinity made soft for one
// node), the demo workloads injected, and under traffic from the client's sidecar: a pilot pod
// killed (grace period 0), a citadel pod killed (a new pod still gets its certificate, from the
// same root), a NATS pod killed. Each with 0 failed requests. Needs root; skipped otherwise.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PEERS_TIMEOUT_MS, repoRoot } from '../k8s/cluster';
import { helloSubsets, meshTools, requests, workloads } from './demo';
import { buildImages, canRunNode, eventually, installAviary, isPodReady, ISTIO_SYSTEM, startNode, stopNode, waitForInjector, type BuiltImage, type KubeNode } from './node';

const NS = 'ha';
const HELLO = `http://hello.${NS}.svc.cluster.local/`;
const log = (msg: string): void => void process.stderr.write(`[k8s-node ha] ${msg}\n`);

describe.skipIf(!canRunNode)('the HA values on a one-node Kubernetes: replicas killed under traffic', () => {
  let node: KubeNode;
  let images: BuiltImage[];
  const { kubectl, apply, pods, fromClient, agentAdmin } = meshTools(() => node, NS);

  /** The app's pods in istio-system (label app.kubernetes.io/name). */
  const controlPlane = (app: string) => pods(ISTIO_SYSTEM, `app.kubernetes.io/name=${app}`);
  /** The trust bundle a citadel pod serves (its admin API on 127.0.0.1:15016 in the pod). */
  const bundleOf = async (pod: string): Promise<{ version: number; roots: string[] }> =>
    JSON.parse(await kubectl('-n', ISTIO_SYSTEM, 'exec', pod, '--', 'node', '-e', "fetch('http://127.0.0.1:15016/api/v1/bundle').then((r) => r.text()).then((t) => process.stdout.write(t))")) as { version: number; roots: string[] };
  /** Kills a pod the hard way (no grace period), as a node failure or an OOM kill would. */
  const kill = (pod: string): Promise<string> => kubectl('-n', ISTIO_SYSTEM, 'delete', 'pod', pod, '--grace-period=0', '--force', '--wait=false');
  /** Requests from the client for `ms` while `fault` runs after `afterMs`; every answer counted. */
  const underTraffic = async (ms: number, afterMs: number, fault: () => Promise<unknown>): Promise<Record<string, number>> => {
    const traffic = fromClient(requests(HELLO, 0, ms));
    await new Promise((r) => setTimeout(r, afterMs));
    await fault();
    return traffic;
  };
  const failures = (counts: Record<string, number>): Record<string, number> => Object.fromEntries(Object.entries(counts).filter(([k]) => !k.startsWith('200 ')));
  const total = (counts: Record<string, number>): number => Object.values(counts).reduce((a, b) => a + b, 0);
  const allReady = (app: string, n: number) =>
    eventually(`${n} ${app} pods Ready`, 180_000, async () => {
      const all = await controlPlane(app);
      return all.length === n && all.every(isPodReady) ? all : undefined;
    });

  beforeAll(async () => {
    images = await buildImages();
    node = await startNode();
    await node.importImages(images.map((i) => i.file));
    const t = Date.now();
    await installAviary(node, images, { valuesFiles: [join(repoRoot, 'e2e', 'k8s', 'values', 'ha.yaml'), join(repoRoot, 'e2e', 'k8s-node', 'values', 'ha-one-node.yaml')] });
    log(`helm install (HA values) -> control plane Ready in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  }, PEERS_TIMEOUT_MS);

  afterAll(() => stopNode(node), 300_000);

  it('every replica Ready: 2 pilots, 2 citadels serving one root, 3 NATS nodes; the demo injected and answering', async () => {
    await allReady('pilot', 2);
    await allReady('nats', 3);
    await allReady('telemetry-collector', 2);
    const citadels = await allReady('citadel', 2);
    const bundles = await Promise.all(citadels.map((p) => bundleOf(p.metadata.name)));
    expect(bundles[0]!.roots).toHaveLength(1);
    expect(bundles[1]).toEqual(bundles[0]);
    await kubectl('create', 'namespace', NS);
    await kubectl('label', 'namespace', NS, 'istio-injection=enabled');
    await waitForInjector(node, NS);
    const demo = images.find((i) => i.app === 'demo-service')?.name ?? '';
    await apply(workloads(demo, NS));
    await apply(helloSubsets(NS));
    await eventually('hello v1, v2 and client Ready', 240_000, async () => {
      const all = await pods(NS, 'app in (hello,client)');
      return all.length === 3 && all.every(isPodReady) ? true : undefined;
    });
    await eventually('both versions answering through the sidecars', 120_000, async () => {
      const c = await fromClient(requests(HELLO, 20));
      return c['200 hello from hello v1'] !== undefined && c['200 hello from hello v2'] !== undefined && Object.keys(failures(c)).length === 0 ? true : undefined;
    });
  }, 420_000);

  it('a pilot pod killed under traffic: 0 failed requests, and config still reaches the sidecars', async () => {
    const [victim] = await controlPlane('pilot');
    const counts = await underTraffic(15_000, 3_000, () => kill(victim!.metadata.name));
    log(`pilot ${victim!.metadata.name} killed: ${JSON.stringify(counts)}`);
    expect(failures(counts)).toEqual({});
    expect(total(counts)).toBeGreaterThan(100);
    // Written through the API server while one replica is gone: the other serves it.
    await apply(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: hello, namespace: ${NS} }
spec:
  hosts: [hello.${NS}.svc.cluster.local]
  http:
    - route: [{ destination: { host: hello.${NS}.svc.cluster.local, subset: v2 } }]`);
    const t = Date.now();
    await eventually('every answer from v2', 60_000, async () => {
      const c = await fromClient(requests(HELLO, 20));
      return c['200 hello from hello v2'] === 20 ? true : undefined;
    });
    log(`a VirtualService written after the kill served by the sidecars ${Date.now() - t} ms later`);
    await allReady('pilot', 2);
  }, 240_000);

  it('a citadel pod killed: traffic unaffected; a new workload pod still gets its certificate, from the same root', async () => {
    const [victim, survivor] = await controlPlane('citadel');
    const before = await bundleOf(survivor!.metadata.name);
    const counts = await underTraffic(8_000, 2_000, () => kill(victim!.metadata.name));
    log(`citadel ${victim!.metadata.name} killed: ${JSON.stringify(counts)}`);
    expect(failures(counts)).toEqual({});
    // A new pod asks for a certificate right away (the killed replica's endpoint may still be listed).
    await kubectl('-n', NS, 'rollout', 'restart', 'deployment/client');
    await kubectl('-n', NS, 'rollout', 'status', 'deployment/client', '--timeout=180s');
    const client = await eventually('the old client pod gone, the new one Ready', 120_000, async () => {
      const all = await pods(NS, 'app=client');
      return all.length === 1 && isPodReady(all[0]) ? all[0] : undefined;
    });
    const agent = JSON.parse(await agentAdmin(client!.metadata.name, '/agent')) as { spiffeId?: string; certificate?: { valid: boolean } };
    expect(agent.spiffeId).toBe(`spiffe://cluster.local/ns/${NS}/sa/client`);
    expect(agent.certificate?.valid).toBe(true);
    expect(failures(await fromClient(requests(HELLO, 20)))).toEqual({});
    // The replacement citadel loaded the CA from the Secret: one root, the same bundle everywhere.
    const citadels = await allReady('citadel', 2);
    for (const p of citadels) expect(await bundleOf(p.metadata.name)).toEqual(before);
  }, 300_000);

  it('a NATS node killed under traffic: 0 failed requests; the cluster is whole again', async () => {
    const nats = await controlPlane('nats');
    const victim = nats[nats.length - 1]!;
    const counts = await underTraffic(10_000, 2_000, () => kill(victim.metadata.name));
    log(`nats ${victim.metadata.name} killed: ${JSON.stringify(counts)}`);
    expect(failures(counts)).toEqual({});
    await allReady('nats', 3);
  }, 240_000);
});

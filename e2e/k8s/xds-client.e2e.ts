// pilot with --config-source kubernetes against a real kube-apiserver, driving the real
// proxyless gRPC xDS client (@grpc/grpc-js-xds; its bootstrap is per process, hence its own
// file). Mesh config is applied with kubectl as CRDs; a Kubernetes Service whose Pod is made
// Ready (status written through the API, no kubelet runs) becomes a routable service through
// the EndpointSlice the controller manager derives from it.
import { join } from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { CoreV1Api, DiscoveryV1Api, KubeConfig } from '@kubernetes/client-node';
import { connect } from '@nats-io/transport-node';
import { freePort, NatsServer } from '@aviary/nats-runner';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echo, echoClient, startEchoServer, tally, type EchoClient, type EchoServer } from '../support/echo-grpc';
import { AppProcess } from '../support/processes';
import { chartDir, PEERS_TIMEOUT_MS, repoRoot, startCluster, type KubeCluster } from './cluster';
import { createNamespace, eventually, serviceAccountKubeconfig } from './support';
import { RawAdsStream } from '@aviary/testing';
import { TypeUrl, unpackAny } from '@aviary/xds-protos';

const HOST = 'echo.default.svc.cluster.local';
const token = 'e2e-token';
let cluster: KubeCluster | undefined;
let nats: NatsServer | undefined;
let dataDir: string | undefined;
let v1: EchoServer;
let v2: EchoServer;
let pilot: AppProcess | undefined;
let adminPort = 0;
let client: EchoClient | undefined;
let xdsPort = 0;
let core: CoreV1Api;

const registry = (): string => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: echo, namespace: default}
spec:
  hosts: [${HOST}]
  location: MESH_INTERNAL
  ports: [{number: 9080, name: grpc, protocol: GRPC}]
  resolution: STATIC
  workloadSelector: {labels: {app: echo}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: echo-v1, namespace: default}
spec: {address: 127.0.0.1, ports: {grpc: ${v1.port}}, labels: {app: echo, version: v1}, serviceAccount: echo}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: echo-v2, namespace: default}
spec: {address: 127.0.0.1, ports: {grpc: ${v2.port}}, labels: {app: echo, version: v2}, serviceAccount: echo}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: echo, namespace: default}
spec:
  host: ${HOST}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
`;

const routes = (w1: number, w2: number): string => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo, namespace: default}
spec:
  hosts: [${HOST}]
  http:
  - route:
    - {destination: {host: ${HOST}, subset: v1}, weight: ${w1}}
    - {destination: {host: ${HOST}, subset: v2}, weight: ${w2}}
`;

function k8s(): KubeCluster {
  if (cluster === undefined) throw new Error('cluster not started');
  return cluster;
}

async function kubectlApply(yaml: string): Promise<void> {
  const res = await k8s().kubectl(['apply', '-f', '-'], yaml);
  expect(res.code, res.stderr).toBe(0);
}

/** Polls small samples until `accept` holds, at most `ms`. */
async function follows(c: EchoClient, accept: (counts: Record<string, number>) => boolean, ms: number): Promise<number> {
  const start = Date.now();
  let last: Record<string, number> = {};
  while (Date.now() - start < ms) {
    last = await tally(c, 100);
    if (accept(last)) return Date.now() - start;
  }
  throw new Error(`client did not follow within ${ms} ms (last sample ${JSON.stringify(last)}); ${await pilotState()}`);
}

/** What pilot serves, for failure messages. */
async function pilotState(): Promise<string> {
  const proxies = await (await fetch(`http://127.0.0.1:${adminPort}/api/v1/proxies`)).text();
  const ids = ((JSON.parse(proxies) as { proxies?: Array<{ id: string }> }).proxies ?? []).map((p) => p.id);
  const dumps = await Promise.all(ids.map(async (id) => (await fetch(`http://127.0.0.1:${adminPort}/api/v1/proxies/${encodeURIComponent(id)}/config_dump`)).text()));
  const one = client === undefined ? undefined : await echo(client, {}, 2_000);
  return `one call: ${one?.error?.details ?? one?.server}\nproxies: ${proxies}\nconfig_dump: ${dumps.join('\n').slice(0, 6000)}\npilot logs:\n${(pilot?.lines ?? []).slice(-30).map((l) => JSON.stringify(l)).join('\n')}`;
}

beforeAll(async () => {
  [cluster, nats, v1, v2] = await Promise.all([startCluster(), NatsServer.start(), startEchoServer('v1'), startEchoServer('v2')]);
  dataDir = await mkdtemp(join(tmpdir(), 'aviary-k8s-pilot-'));
  const kc = new KubeConfig();
  kc.loadFromFile(cluster.kubeconfig);
  core = kc.makeApiClient(CoreV1Api);
  // The release (CRDs, ServiceAccounts, RBAC; webhooks off: no injector runs in this file).
  // pilot authenticates as its chart ServiceAccount, so it gets exactly the chart's RBAC.
  const install = await cluster.helm(['install', 'aviary', chartDir, '--namespace', 'aviary-system', '--create-namespace', '-f', join(repoRoot, 'e2e', 'k8s', 'values', 'local-process.yaml')]);
  if (install.code !== 0) throw new Error(install.stderr);
  const established = await cluster.kubectl(['wait', '--for=condition=Established', '--timeout=60s', '-f', join(chartDir, 'crds')]);
  if (established.code !== 0) throw new Error(established.stderr);
  const pilotKubeconfig = await serviceAccountKubeconfig(cluster, 'aviary-system', 'aviary-pilot', dataDir);
  await kubectlApply(registry());
  await kubectlApply(routes(80, 20));

  adminPort = await freePort();
  xdsPort = await freePort();
  pilot = await AppProcess.start('pilot', {
    AVIARY_NATS_URL: nats.url,
    AVIARY_ADMIN_PORT: String(adminPort),
    AVIARY_ADMIN_TOKEN: token,
    AVIARY_XDS_PORT: String(xdsPort),
    AVIARY_DATA_DIR: dataDir,
    AVIARY_PUSH_DEBOUNCE_MS: '50',
    AVIARY_CONFIG_SOURCE: 'kubernetes',
    AVIARY_KUBECONFIG: pilotKubeconfig,
    NO_PROXY: '127.0.0.1,localhost',
  });
  process.env['GRPC_XDS_BOOTSTRAP_CONFIG'] = JSON.stringify({
    xds_servers: [{ server_uri: `127.0.0.1:${xdsPort}`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: { id: 'sidecar~127.0.0.1~client.default~default.svc.cluster.local', cluster: 'e2e', locality: { region: 'local', zone: 'z1' }, metadata: { GENERATOR: 'grpc', NAMESPACE: 'default', SERVICE_ACCOUNT: 'client' } },
  });
  const xds = await import('@grpc/grpc-js-xds');
  xds.register();
  client = echoClient(`xds:///${HOST}:9080`);
}, PEERS_TIMEOUT_MS + 5 * 60_000);

afterAll(async () => {
  client?.close();
  await pilot?.stop();
  await Promise.all([v1?.stop(), v2?.stop()]);
  await nats?.stop();
  await cluster?.stop();
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
}, 90_000);

describe('pilot --config-source kubernetes drives the real gRPC xDS client', () => {
  it('splits 80/20 as the VirtualService applied with kubectl says', async () => {
    await follows(client!, (c) => (c['v1'] ?? 0) + (c['v2'] ?? 0) === 100, 10_000);
    const counts = await tally(client!, 1_000);
    expect((counts['v1'] ?? 0) + (counts['v2'] ?? 0)).toBe(1_000);
    expect(Math.abs((counts['v2'] ?? 0) - 200)).toBeLessThanOrEqual(50);
  });

  it('follows a weight change applied with kubectl, and announces it on aviary.config.v1.changed', async () => {
    const nc = await connect({ servers: nats!.url });
    const changed: unknown[] = [];
    nc.subscribe('aviary.config.v1.changed', { callback: (_e, m) => void changed.push((m.json() as { data: unknown }).data) });
    await nc.flush();
    await kubectlApply(routes(20, 80));
    await follows(client!, (c) => (c['v2'] ?? 0) >= 60, 5_000);
    const counts = await tally(client!, 1_000);
    expect(Math.abs((counts['v2'] ?? 0) - 800)).toBeLessThanOrEqual(50);
    await eventually('the change event', async () => (changed.length > 0 ? true : undefined), 5_000);
    expect(changed[0]).toMatchObject({ op: 'updated', kind: 'VirtualService', namespace: 'default', name: 'echo' });
    await nc.close();
  });

  it('serves the CRDs through its REST API with the API server’s resourceVersion; writes are refused by the chart’s RBAC (read-only but for the canary controller)', async () => {
    const get = await k8s().kubectl(['get', 'virtualservice', 'echo', '-n', 'default', '-o', 'json']);
    const rv = (JSON.parse(get.stdout) as { metadata: { resourceVersion: string } }).metadata.resourceVersion;
    const viaApi = await fetch(`http://127.0.0.1:${adminPort}/api/v1/config/virtualservices/default/echo`);
    expect(viaApi.status).toBe(200);
    expect(((await viaApi.json()) as { metadata: { resourceVersion: string } }).metadata.resourceVersion).toBe(rv);
    // In Kubernetes mode config is written with kubectl/GitOps; pilot's ServiceAccount may only
    // read, except the canary controller's update of VirtualService weights and Canary status.
    const rule = `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: echo-new, namespace: default}\nspec: {host: ${HOST}}\n`;
    const post = await fetch(`http://127.0.0.1:${adminPort}/api/v1/config`, { method: 'POST', body: rule, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/yaml' } });
    expect(post.status).toBe(403);
    expect(await post.text()).toContain('KUBERNETES_FORBIDDEN');
  });

  it('stops sending calls to a WorkloadEntry deleted with kubectl', async () => {
    await kubectlApply(routes(50, 50).replace(/  - route:\n[\s\S]*$/, `  - route: [{destination: {host: ${HOST}}}]\n`));
    await follows(client!, (c) => (c['v1'] ?? 0) > 20 && (c['v2'] ?? 0) > 20, 5_000);
    const res = await k8s().kubectl(['delete', 'workloadentry', 'echo-v2', '-n', 'default']);
    expect(res.code, res.stderr).toBe(0);
    await follows(client!, (c) => c['v1'] === 100, 5_000);
  });

  it('serves a Kubernetes Service as EDS from the EndpointSlice of its Ready Pod (registry adapter)', async () => {
    // EndpointSlices refuse loopback addresses, and this test sends no traffic off loopback: the
    // Pod gets a documentation address (TEST-NET-1) and the check reads pilot's EDS over a raw ADS
    // stream instead of calling the endpoint.
    const address = '192.0.2.10';
    const podPort = 19080;
    await createNamespace(core, 'shop');
    // No kubelet: a Node object (with topology labels) and the Pod's status are written as a kubelet would.
    await core.createNode({ body: { metadata: { name: 'node-a', labels: { 'topology.kubernetes.io/region': 'local', 'topology.kubernetes.io/zone': 'z1' } } } });
    await core.createNamespacedService({
      namespace: 'shop',
      body: { metadata: { name: 'echo-k8s' }, spec: { selector: { app: 'echo-k8s' }, ports: [{ name: 'grpc', port: 9080, targetPort: podPort as never, appProtocol: 'grpc' }] } },
    });
    await core.createNamespacedServiceAccount({ namespace: 'shop', body: { metadata: { name: 'echo' } } });
    await core.createNamespacedPod({
      namespace: 'shop',
      body: {
        metadata: { name: 'echo-k8s-1', labels: { app: 'echo-k8s', version: 'v1' } },
        spec: { nodeName: 'node-a', serviceAccountName: 'echo', containers: [{ name: 'echo', image: 'registry.example.org/echo:1', ports: [{ containerPort: podPort }] }] },
      },
    });
    const setReady = async (ready: boolean): Promise<void> => {
      const pod = await core.readNamespacedPod({ namespace: 'shop', name: 'echo-k8s-1' });
      const status = { phase: 'Running', podIP: address, podIPs: [{ ip: address }], hostIP: address, conditions: [{ type: 'Ready', status: ready ? 'True' : 'False', lastTransitionTime: new Date() }] };
      await core.replaceNamespacedPodStatus({ namespace: 'shop', name: 'echo-k8s-1', body: { ...pod, status } });
    };
    await setReady(true);
    const kc = new KubeConfig();
    kc.loadFromFile(k8s().kubeconfig);
    const slices = kc.makeApiClient(DiscoveryV1Api);
    await eventually('a ready endpoint in the EndpointSlice of shop/echo-k8s', async () => {
      const list = await slices.listNamespacedEndpointSlice({ namespace: 'shop', labelSelector: 'kubernetes.io/service-name=echo-k8s' });
      return list.items.some((s) => (s.endpoints ?? []).some((e) => e.conditions?.ready === true)) ? true : undefined;
    }, 30_000);

    const cluster = 'outbound|9080||echo-k8s.shop.svc.cluster.local';
    type Cla = { cluster_name?: string; endpoints?: Array<{ locality?: unknown; lb_endpoints?: Array<{ endpoint?: { address?: { socket_address?: { address?: string; port_value?: number } } } }> }> };
    const edsFor = async (): Promise<Cla | undefined> => {
      const ads = new RawAdsStream(xdsPort, false);
      try {
        ads.send({ node: RawAdsStream.node('sidecar~127.0.0.1~probe.default~default.svc.cluster.local', { GENERATOR: 'grpc', NAMESPACE: 'default' }), type_url: TypeUrl.ClusterLoadAssignment, resource_names: [cluster] });
        const res = (await ads.next(5_000)) as { resources?: unknown[] };
        const any = res.resources?.[0];
        return any === undefined ? undefined : (unpackAny(any).message as Cla);
      } finally {
        ads.close();
      }
    };
    // The endpoint is the Pod's address and target port, with its Node's locality.
    const cla = await eventually('the Pod in the EDS of echo-k8s', async () => {
      const c = await edsFor();
      return c?.endpoints?.[0]?.lb_endpoints?.length ? c : undefined;
    }, 15_000);
    expect(cla.endpoints?.[0]?.lb_endpoints?.[0]?.endpoint?.address?.socket_address).toEqual({ address, port_value: podPort });
    expect(cla.endpoints?.[0]?.locality).toEqual({ region: 'local', zone: 'z1' });

    // The Pod turns NotReady: its endpoint leaves the registry.
    await setReady(false);
    await eventually('echo-k8s has no endpoints', async () => {
      const c = await edsFor();
      return (c?.endpoints ?? []).every((e) => (e.lb_endpoints ?? []).length === 0) ? true : undefined;
    }, 15_000);
  });
});

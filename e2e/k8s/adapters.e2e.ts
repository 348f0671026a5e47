// libs/k8s against a real kube-apiserver (cluster.ts): the CRD config store's contract
// (resourceVersions, 409 → CONFLICT, watch), informer recovery after list/watch errors, and the
// registry reporting only changes that shape generated config.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, RbacAuthorizationV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { ChangeEvent } from '@aviary/config-store';
import { withStoredKind, type StoredObject } from '@aviary/mesh-api';
import { buildSnapshot } from '@aviary/mesh-model';
import { isAviaryError } from '@aviary/errors';
import { GatewayDeployer, KubernetesConfigStore, KubernetesRegistry, loadKubeConfig, parsePodTemplate } from '@aviary/k8s';
import { createLogger } from '@aviary/observability';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chartDir, PEERS_TIMEOUT_MS, startCluster, type KubeCluster } from './cluster';
import { createNamespace, eventually, serviceAccountKubeconfig } from './support';
import type { GatewayDeployment } from '@aviary/mesh-model';

const logger = createLogger('e2e', 'silent');
let cluster: KubeCluster | undefined;
let dir: string | undefined;
let kc: KubeConfig;
let core: CoreV1Api;

beforeAll(async () => {
  cluster = await startCluster();
  dir = await mkdtemp(join(tmpdir(), 'aviary-k8s-adapters-'));
  const crds = await cluster.kubectl(['apply', '-f', join(chartDir, 'crds')]);
  if (crds.code !== 0) throw new Error(crds.stderr);
  const established = await cluster.kubectl(['wait', '--for=condition=Established', '--timeout=60s', '-f', join(chartDir, 'crds')]);
  if (established.code !== 0) throw new Error(established.stderr);
  kc = loadKubeConfig(cluster.kubeconfig);
  core = kc.makeApiClient(CoreV1Api);
  await createNamespace(core, 'team-a');
}, PEERS_TIMEOUT_MS + 5 * 60_000);

afterAll(async () => {
  await cluster?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
}, 60_000);

function vs(name: string, weight: number, extra: Partial<StoredObject['metadata']> = {}, apiVersion = 'networking.istio.io/v1'): StoredObject {
  return {
    apiVersion,
    kind: 'VirtualService',
    metadata: { name, namespace: 'team-a', ...extra },
    spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v1' }, weight }, { destination: { host: 'reviews', subset: 'v2' }, weight: 100 - weight }] }] },
  };
}

async function failure(p: Promise<unknown>): Promise<{ kind: string; code: string; details?: unknown }> {
  try {
    await p;
  } catch (err) {
    if (isAviaryError(err)) return { kind: err.kind, code: err.code, details: err.details };
    throw err;
  }
  throw new Error('expected a failure');
}

/** Collects change events; `next` waits for one that matches. */
function recorder(): { events: ChangeEvent[]; listener: (e: ChangeEvent) => void; next: (match: (e: ChangeEvent) => boolean, what: string) => Promise<ChangeEvent> } {
  const events: ChangeEvent[] = [];
  let seen = 0;
  return {
    events,
    listener: (e) => events.push(e),
    next: async (match, what) => {
      const e = await eventually(what, async () => events.slice(seen).find(match), 20_000);
      seen = events.indexOf(e) + 1;
      return e;
    },
  };
}

describe('KubernetesConfigStore on the mesh CRDs', () => {
  it('creates, updates and deletes with the API server’s resourceVersions; stale ones fail with CONFLICT', async () => {
    const store = new KubernetesConfigStore({ kubeConfig: kc, logger });
    const created = await store.apply(vs('reviews', 80));
    expect(created.op).toBe('created');
    const rv1 = created.object.metadata.resourceVersion!;
    expect(rv1).toMatch(/^\d+$/);
    expect((await store.apply(vs('reviews', 80))).op).toBe('unchanged');

    const updated = await store.apply(vs('reviews', 50, { resourceVersion: rv1 }));
    expect(updated.op).toBe('updated');
    const rv2 = updated.object.metadata.resourceVersion!;
    expect(Number(rv2)).toBeGreaterThan(Number(rv1));
    expect(await failure(store.apply(vs('reviews', 20, { resourceVersion: rv1 })))).toEqual({ kind: 'CONFLICT', code: 'RESOURCE_VERSION_CONFLICT', details: { currentResourceVersion: rv2 } });

    // What kubectl sees is what the store wrote; an older served version is accepted on write.
    const got = await cluster!.kubectl(['get', 'vs', 'reviews', '-n', 'team-a', '-o', 'jsonpath={.metadata.resourceVersion} {.spec.http[0].route[0].weight}']);
    expect(got.stdout).toBe(`${rv2} 50`);
    expect((await store.apply(vs('legacy', 100, {}, 'networking.istio.io/v1beta1'))).op).toBe('created');
    expect(await failure(store.apply(vs('x', 100, {}, 'networking.istio.io/v9')))).toMatchObject({ kind: 'INVALID_ARGUMENT', code: 'INVALID_API_VERSION' });

    expect((await store.list({ kind: 'VirtualService', namespace: 'team-a' })).map((o) => o.metadata.name)).toEqual(['legacy', 'reviews']);
    expect((await store.get({ kind: 'VirtualService', namespace: 'team-a', name: 'reviews' }))?.metadata.resourceVersion).toBe(rv2);
    expect((await store.history({ kind: 'VirtualService', namespace: 'team-a', name: 'reviews' })).map((o) => o.metadata.resourceVersion)).toEqual([rv2]);

    expect(await failure(store.delete({ kind: 'VirtualService', namespace: 'team-a', name: 'reviews' }, rv1))).toMatchObject({ kind: 'CONFLICT', details: { currentResourceVersion: rv2 } });
    expect(await store.delete({ kind: 'VirtualService', namespace: 'team-a', name: 'reviews' }, rv2)).toBe(true);
    expect(await store.delete({ kind: 'VirtualService', namespace: 'team-a', name: 'reviews' })).toBe(false);
    expect(await store.delete({ kind: 'VirtualService', namespace: 'team-a', name: 'legacy' })).toBe(true);
  });

  it('watches every kind: existing objects first, then kubectl’s changes, in order', async () => {
    const store = new KubernetesConfigStore({ kubeConfig: kc, logger });
    await store.apply(vs('before', 90));
    const r = recorder();
    const watch = await store.watch(r.listener);
    try {
      await watch.initialized;
      expect(r.events.map((e) => `${e.op} ${e.ref.kind}/${e.ref.name}`)).toEqual(['created VirtualService/before']);
      const apply = await cluster!.kubectl(['apply', '-f', '-'], `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: team-a}
spec: {host: reviews, subsets: [{name: v1, labels: {version: v1}}]}
`);
      expect(apply.code, apply.stderr).toBe(0);
      const created = await r.next((e) => e.ref.kind === 'DestinationRule', 'DestinationRule created');
      expect(created.op).toBe('created');
      expect(created.revision).toBeGreaterThan(0);
      await cluster!.kubectl(['patch', 'vs', 'before', '-n', 'team-a', '--type=merge', '-p', '{"spec":{"hosts":["ratings"]}}']);
      const upd = await r.next((e) => e.ref.name === 'before', 'VirtualService updated');
      expect(upd.op).toBe('updated');
      expect((upd.object?.spec as { hosts: string[] }).hosts).toEqual(['ratings']);
      await cluster!.kubectl(['delete', 'dr', 'reviews', '-n', 'team-a']);
      expect((await r.next((e) => e.ref.kind === 'DestinationRule', 'DestinationRule deleted')).op).toBe('deleted');
    } finally {
      await watch.stop();
      await store.delete({ kind: 'VirtualService', namespace: 'team-a', name: 'before' });
    }
  });

  it('recovers from list/watch errors: forbidden at first, it retries with backoff and syncs once RBAC allows it', async () => {
    await core.createNamespacedServiceAccount({ namespace: 'team-a', body: { metadata: { name: 'late-reader' } } });
    const limited = loadKubeConfig(await serviceAccountKubeconfig(cluster!, 'team-a', 'late-reader', dir!));
    const store = new KubernetesConfigStore({ kubeConfig: limited, logger, kinds: ['VirtualService'], backoff: { minMs: 100, maxMs: 500 } });
    await new KubernetesConfigStore({ kubeConfig: kc, logger }).apply(vs('seen-later', 70));
    const r = recorder();
    const watch = await store.watch(r.listener);
    try {
      let synced = false;
      void watch.initialized.then(() => (synced = true));
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(synced).toBe(false);
      const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
      await rbac.createClusterRole({ body: { metadata: { name: 'vs-reader' }, rules: [{ apiGroups: ['networking.istio.io'], resources: ['virtualservices'], verbs: ['list', 'watch'] }] } });
      await rbac.createClusterRoleBinding({
        body: { metadata: { name: 'vs-reader' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'vs-reader' }, subjects: [{ kind: 'ServiceAccount', name: 'late-reader', namespace: 'team-a' }] },
      });
      await eventually('the watch to sync', async () => (synced ? true : undefined), 20_000);
      expect(r.events.map((e) => `${e.op} ${e.ref.name}`)).toEqual(['created seen-later']);
    } finally {
      await watch.stop();
    }
  });
});

describe('KubernetesRegistry', () => {
  it('reports a Service as a ServiceEntry, and stays quiet about changes that do not shape config', async () => {
    const registry = new KubernetesRegistry({ kubeConfig: kc, logger });
    const r = recorder();
    const watch = await registry.watch(r.listener);
    try {
      await watch.initialized;
      await core.createNamespacedService({ namespace: 'team-a', body: { metadata: { name: 'ratings' }, spec: { selector: { app: 'ratings' }, ports: [{ name: 'http', port: 9080 }] } } });
      const created = await r.next((e) => e.ref.name === 'k8s-service.ratings', 'ServiceEntry for ratings');
      expect(created.op).toBe('created');
      expect(created.object?.spec).toMatchObject({ hosts: ['ratings.team-a.svc.cluster.local'], ports: [{ number: 9080, name: 'http', protocol: 'HTTP', targetPort: 9080 }], resolution: 'STATIC', workloadSelector: { labels: { app: 'ratings' } } });

      // A label and an annotation on the Service change nothing the mesh uses: no event. The
      // next event is the one for a real change.
      await core.patchNamespacedService({ namespace: 'team-a', name: 'ratings', body: [{ op: 'add', path: '/metadata/labels', value: { team: 'a' } }] });
      await core.patchNamespacedService({ namespace: 'team-a', name: 'ratings', body: [{ op: 'add', path: '/metadata/annotations', value: { note: 'x' } }] });
      await core.patchNamespacedService({ namespace: 'team-a', name: 'ratings', body: [{ op: 'replace', path: '/spec/ports/0/name', value: 'grpc' }] });
      const next = await r.next((e) => e.ref.name === 'k8s-service.ratings', 'ServiceEntry update');
      expect(next.op).toBe('updated');
      expect((next.object?.spec as { ports: Array<{ protocol: string }> }).ports[0]?.protocol).toBe('GRPC');

      await core.deleteNamespacedService({ namespace: 'team-a', name: 'ratings' });
      expect((await r.next((e) => e.ref.name === 'k8s-service.ratings', 'ServiceEntry deleted')).op).toBe('deleted');
    } finally {
      await watch.stop();
    }
  });
});

/**
 * The Gateway API's upstream standard-channel CRDs (required, not shipped by the chart), from the
 * sigs.k8s.io/gateway-api Go module (the Go client's module cache, or the module proxy).
 */
const GATEWAY_API_VERSION = 'v1.6.0';
async function gatewayApiCrds(): Promise<string[]> {
  const { stdout } = await promisify(execFile)('go', ['mod', 'download', '-json', `sigs.k8s.io/gateway-api@${GATEWAY_API_VERSION}`], { timeout: 300_000 });
  const dir = (JSON.parse(stdout) as { Dir: string }).Dir;
  return ['gatewayclasses', 'gateways', 'httproutes', 'grpcroutes', 'referencegrants'].map((k) => join(dir, 'config', 'crd', 'standard', `gateway.networking.k8s.io_${k}.yaml`));
}

/** Applies the upstream CRDs (idempotent: server-side apply) and waits until they are served. */
async function installGatewayApiCrds(): Promise<void> {
  const files = await gatewayApiCrds();
  for (const f of files) {
    const res = await cluster!.kubectl(['apply', '--server-side', '-f', f]);
    expect(res.code, res.stderr).toBe(0);
  }
  const established = await cluster!.kubectl(['wait', '--for=condition=Established', '--timeout=60s', ...files.flatMap((f) => ['-f', f])]);
  expect(established.code, established.stderr).toBe(0);
}

describe('KubernetesConfigStore on the Gateway API CRDs (upstream, standard channel)', () => {
  const manifests = `apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: { name: aviary }
spec: { controllerName: aviary.dev/gateway-controller }
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: web, namespace: team-a }
spec:
  gatewayClassName: aviary
  listeners: [{ name: http, port: 80, protocol: HTTP }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: web, namespace: team-a }
spec:
  parentRefs: [{ name: web }]
  rules: [{ backendRefs: [{ name: ratings, port: 9080 }] }]
`;

  it('stores GatewayClass cluster-scoped and Gateway as kind Gateway, watches them, and writes the status the model computes (accepted by the upstream status schema)', async () => {
    await installGatewayApiCrds();

    const store = new KubernetesConfigStore({ kubeConfig: kc, logger });
    const r = recorder();
    const watch = await store.watch(r.listener);
    try {
      await watch.initialized;
      const objects = (await import('yaml')).parseAllDocuments(manifests).map((d) => withStoredKind(d.toJS() as StoredObject));
      for (const o of objects) {
        const stored = o.kind === 'GatewayClass' ? { ...o, metadata: { ...o.metadata, namespace: '' } } : o;
        expect((await store.apply(stored)).op).toBe('created');
      }
      expect((await cluster!.kubectl(['get', 'gateways.gateway.networking.k8s.io', 'web', '-n', 'team-a', '-o', 'jsonpath={.kind} {.spec.gatewayClassName}'])).stdout).toBe('Gateway aviary');
      expect((await cluster!.kubectl(['get', 'gatewayclass', 'aviary', '-o', 'jsonpath={.spec.controllerName}'])).stdout).toBe('aviary.dev/gateway-controller');
      // One informer per kind: the kinds' events interleave in any order.
      const seen = (kind: string) => eventually(`${kind} created`, async () => r.events.find((e) => e.ref.kind === kind && e.op === 'created'), 20_000);
      expect((await seen('KubernetesGateway')).ref).toEqual({ kind: 'KubernetesGateway', namespace: 'team-a', name: 'web' });
      expect((await seen('GatewayClass')).ref).toEqual({ kind: 'GatewayClass', namespace: '', name: 'aviary' });
      expect((await seen('HTTPRoute')).object?.kind).toBe('HTTPRoute');

      // The status the model computes for them, with the transition times pilot's writer adds.
      const listed = await store.list();
      const snapshot = buildSnapshot(listed, { trustDomain: 'cluster.local' });
      const stamp = (v: unknown): unknown =>
        Array.isArray(v) ? v.map(stamp) : v !== null && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, stamp(x)]).concat('reason' in v ? [['lastTransitionTime', '2026-01-01T00:00:00Z']] : [])) : v;
      for (const s of snapshot.gatewayApi.statuses) {
        const current = (await store.get(s.ref))!;
        await store.updateStatus(s.ref, stamp(s.status) as Record<string, unknown>, current.metadata.resourceVersion!);
      }
      const gw = await cluster!.kubectl(['get', 'gateway', 'web', '-n', 'team-a', '-o', 'jsonpath={range .status.conditions[*]}{.type}={.status} {end}{.status.listeners[0].attachedRoutes}']);
      expect(gw.stdout).toBe('Accepted=True Programmed=True 1');
      const route = await cluster!.kubectl(['get', 'httproute', 'web', '-n', 'team-a', '-o', 'jsonpath={.status.parents[0].controllerName} {range .status.parents[0].conditions[*]}{.type}={.reason} {end}']);
      expect(route.stdout.trim()).toBe('aviary.dev/gateway-controller Accepted=Accepted ResolvedRefs=BackendNotFound');
      expect((await cluster!.kubectl(['get', 'gatewayclass', 'aviary', '-o', 'jsonpath={.status.conditions[0].reason}'])).stdout).toBe('Accepted');

      expect(await store.delete({ kind: 'GatewayClass', namespace: '', name: 'aviary' })).toBe(true);
      expect((await eventually('GatewayClass deleted', async () => r.events.find((e) => e.ref.kind === 'GatewayClass' && e.op === 'deleted'), 20_000)).ref.namespace).toBe('');
    } finally {
      await watch.stop();
    }
  });
});

describe('automated Gateway deployment against the API server (pilot\'s GatewayDeployer)', () => {
  const gatewayYaml = (infrastructure: string) => `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: infra, namespace: team-a }
spec:
  gatewayClassName: aviary
  listeners: [{ name: http, port: 80, protocol: HTTP }]
  infrastructure: ${infrastructure}
`;
  const template = parsePodTemplate('spec: { containers: [{ name: gateway, image: docker.io/aviary/gateway:0.1.0, env: [{ name: AVIARY_MODE, value: router }] }] }', 'template.yaml');
  const deployment: GatewayDeployment = {
    namespace: 'team-a',
    name: 'infra',
    className: 'aviary',
    ports: [{ name: 'http-80', port: 80, targetPort: 8080, protocol: 'HTTP' }],
    infrastructure: { labels: { team: 'web' }, annotations: { 'example.com/owner': 'web-team' }, parametersRef: { group: '', kind: 'ConfigMap', name: 'infra-params' } },
  };
  const params = (replicas: number) => `apiVersion: v1
kind: ConfigMap
metadata: { name: infra-params, namespace: team-a }
data:
  deployment: |
    spec:
      replicas: ${replicas}
      template:
        spec:
          containers:
          - name: gateway
            resources: { limits: { memory: 256Mi } }
  service: |
    spec: { type: LoadBalancer }
`;
  const apply = (yaml: string) => cluster!.kubectl(['apply', '-f', '-'], yaml);
  const get = async (what: string, jsonpath: string) => (await cluster!.kubectl(['get', what, 'infra-aviary', '-n', 'team-a', '-o', `jsonpath=${jsonpath}`])).stdout;

  it('applies spec.infrastructure labels/annotations and the parametersRef overlays; a missing ConfigMap is InvalidParameters and leaves what runs alone', async () => {
    await installGatewayApiCrds();
    const applied = await apply(gatewayYaml(JSON.stringify(deployment.infrastructure)));
    expect(applied.code, applied.stderr).toBe(0);
    const uid = (await cluster!.kubectl(['get', 'gateway', 'infra', '-n', 'team-a', '-o', 'jsonpath={.metadata.uid}'])).stdout;
    let infraChanges = 0;
    const deployer = new GatewayDeployer({
      kubeConfig: kc,
      logger,
      template,
      natsPassword: '',
      gatewayUid: async () => uid,
      isLeader: () => true,
      onInfraChange: () => void infraChanges++,
      pollMs: 200,
      parametersPollMs: 200,
    });
    try {
      // No ConfigMap yet: nothing is deployed, the reason is reported.
      await deployer.sync([deployment]);
      expect(deployer.infra('team-a', 'infra')?.invalidParameters).toBe('ConfigMap team-a/infra-params (spec.infrastructure.parametersRef) does not exist');
      expect((await cluster!.kubectl(['get', 'deployment', 'infra-aviary', '-n', 'team-a'])).code).not.toBe(0);

      expect((await apply(params(3))).code).toBe(0);
      await eventually('deployment applied', async () => ((await get('deployment', '{.spec.replicas}')) === '3' ? true : undefined), 20_000);
      expect(await get('deployment', '{.metadata.labels.team} {.metadata.annotations.example\\.com/owner} {.spec.template.metadata.labels.team}')).toBe('web web-team web');
      expect(await get('deployment', '{.spec.template.spec.containers[0].resources.limits.memory} {.spec.template.spec.containers[0].image}')).toBe('256Mi docker.io/aviary/gateway:0.1.0');
      expect(await get('service', '{.spec.type} {.metadata.labels.team} {.spec.selector}')).toBe('LoadBalancer web {"gateway.networking.k8s.io/gateway-name":"infra"}');
      expect(await get('serviceaccount', '{.metadata.annotations.example\\.com/owner}')).toBe('web-team');
      // No load balancer controller here: no address yet.
      expect(deployer.infra('team-a', 'infra')).toMatchObject({ available: false });
      expect(deployer.infra('team-a', 'infra')?.address).toBeUndefined();
      expect(deployer.infra('team-a', 'infra')?.invalidParameters).toBeUndefined();

      // An edit of the ConfigMap is picked up by the parameters poll.
      expect((await apply(params(2))).code).toBe(0);
      await eventually('replicas follow the ConfigMap', async () => ((await get('deployment', '{.spec.replicas}')) === '2' ? true : undefined), 20_000);

      // A broken ConfigMap: InvalidParameters naming the key, and the deployment stays as it was.
      expect((await apply(params(2).replace('replicas: 2', 'selector: { matchLabels: { a: b } }'))).code).toBe(0);
      await eventually('invalid parameters reported', async () => deployer.infra('team-a', 'infra')?.invalidParameters, 20_000);
      expect(deployer.infra('team-a', 'infra')?.invalidParameters).toContain('data.deployment: spec.selector cannot be changed');
      expect(await get('deployment', '{.spec.replicas}')).toBe('2');
      expect(infraChanges).toBeGreaterThan(0);
    } finally {
      await deployer.stop();
    }
  });
});

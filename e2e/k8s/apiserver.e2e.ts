// helm install of charts/aviary into a real kube-apiserver (etcd + kube-apiserver +
// kube-controller-manager on loopback, built from Go modules). No kubelet: Pods are created by
// the controller manager and stay Pending, which is all admission needs.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  AdmissionregistrationV1Api,
  AppsV1Api,
  AuthorizationV1Api,
  CoreV1Api,
  KubeConfig,
  PolicyV1Api,
  RbacAuthorizationV1Api,
  type V1Pod,
} from '@kubernetes/client-node';
import { freePort } from '@aviary/nats-runner';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chartDir, PEERS_TIMEOUT_MS, repoRoot, startCluster, type KubeCluster } from './cluster';
import { deployment, eventually } from './support';

const NS = 'aviary-system';
const apps = ['pilot', 'citadel', 'injector-webhook', 'telemetry-collector', 'gateway'] as const;
const localValues = join(repoRoot, 'e2e', 'k8s', 'values', 'local-process.yaml');

let cluster: KubeCluster | undefined;
let kc: KubeConfig;
let core: CoreV1Api;
let appsApi: AppsV1Api;

beforeAll(async () => {
  cluster = await startCluster();
  kc = new KubeConfig();
  kc.loadFromFile(cluster.kubeconfig);
  core = kc.makeApiClient(CoreV1Api);
  appsApi = kc.makeApiClient(AppsV1Api);
}, PEERS_TIMEOUT_MS + 5 * 60_000);

afterAll(async () => {
  await cluster?.stop();
}, 60_000);

function k8s(): KubeCluster {
  if (cluster === undefined) throw new Error('cluster not started');
  return cluster;
}


async function namespace(name: string, labels: Record<string, string> = {}): Promise<void> {
  await core.createNamespace({ body: { metadata: { name, labels } } });
  // Pods need the namespace's default ServiceAccount, which the controller manager creates.
  await eventually(`default ServiceAccount in ${name}`, async () => (await core.readNamespacedServiceAccount({ name: 'default', namespace: name })).metadata?.name);
}

const virtualService = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
    - route:
        - destination: { host: reviews, subset: v1 }
`;

async function podsOf(namespace: string, app: string): Promise<V1Pod[]> {
  return (await core.listNamespacedPod({ namespace, labelSelector: `app=${app}` })).items;
}

describe('charts/aviary against a real kube-apiserver', () => {
  it('installs with helm (webhooks off: no injector runs yet)', async () => {
    const res = await k8s().helm(['install', 'aviary', chartDir, '--namespace', NS, '--create-namespace', '-f', localValues]);
    expect(res.stderr).not.toMatch(/error/i);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('STATUS: deployed');
    expect(res.stdout).toContain('the admission webhooks are disabled');
  });

  it('created every object of the release', async () => {
    const deployments = (await appsApi.listNamespacedDeployment({ namespace: NS })).items.map((d) => d.metadata?.name).sort();
    expect(deployments).toEqual(apps.map((a) => `aviary-${a}`).sort());
    const sts = await appsApi.readNamespacedStatefulSet({ name: 'aviary-nats', namespace: NS });
    expect(sts.spec?.template.spec?.containers[0]?.args).toEqual(['--config', '/etc/nats/nats.conf']);

    const services = (await core.listNamespacedService({ namespace: NS })).items.map((s) => s.metadata?.name);
    expect(services).toEqual(expect.arrayContaining([...apps.map((a) => `aviary-${a}`), 'aviary-nats', 'aviary-nats-headless']));
    const sas = (await core.listNamespacedServiceAccount({ namespace: NS })).items.map((s) => s.metadata?.name);
    expect(sas).toEqual(expect.arrayContaining([...apps.map((a) => `aviary-${a}`), 'aviary-nats']));
    const pdbs = (await kc.makeApiClient(PolicyV1Api).listNamespacedPodDisruptionBudget({ namespace: NS })).items.map((p) => p.metadata?.name);
    expect(pdbs.sort()).toEqual([...apps.map((a) => `aviary-${a}`), 'aviary-nats'].sort());

    const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    const clusterRoles = (await rbac.listClusterRole({ labelSelector: 'app.kubernetes.io/instance=aviary' })).items.map((r) => r.metadata?.name).sort();
    expect(clusterRoles).toEqual(['aviary-citadel-aviary-system', 'aviary-injector-webhook-aviary-system', 'aviary-pilot-aviary-system']);
    expect((await rbac.readNamespacedRoleBinding({ name: 'aviary-citadel', namespace: NS })).roleRef.name).toBe('aviary-citadel');

    const template = await core.readNamespacedConfigMap({ name: 'aviary-injector-webhook-template', namespace: NS });
    const file = await readFile(join(chartDir, 'charts', 'injector-webhook', 'files', 'injection-template.yaml'), 'utf8');
    expect(template.data?.['injection-template.yaml']).toBe(file);

    const admission = kc.makeApiClient(AdmissionregistrationV1Api);
    expect((await admission.listMutatingWebhookConfiguration({ labelSelector: 'app.kubernetes.io/instance=aviary' })).items).toEqual([]);

    // charts/aviary/crds: every mesh kind is served.
    const res = await k8s().kubectl(['api-resources', '--api-group=networking.istio.io', '-o', 'name']);
    expect(res.stdout.split('\n').filter(Boolean).sort()).toEqual(
      ['destinationrules', 'gateways', 'serviceentries', 'sidecars', 'virtualservices', 'workloadentries'].map((r) => `${r}.networking.istio.io`),
    );
  });

  it('grants each ServiceAccount exactly what its app needs (real RBAC authorizer)', async () => {
    const authz = kc.makeApiClient(AuthorizationV1Api);
    const can = async (app: string, verb: string, group: string, resource: string, namespace?: string, name?: string): Promise<boolean> => {
      const review = await authz.createSubjectAccessReview({
        body: {
          spec: {
            user: `system:serviceaccount:${NS}:aviary-${app}`,
            groups: ['system:serviceaccounts', `system:serviceaccounts:${NS}`, 'system:authenticated'],
            resourceAttributes: { verb, group, resource, ...(namespace ? { namespace } : {}), ...(name ? { name } : {}) },
          },
        },
      });
      return review.status?.allowed === true;
    };
    const checks: [string, string, string, string, string | undefined, string | undefined, boolean][] = [
      ['pilot', 'watch', 'networking.istio.io', 'virtualservices', undefined, undefined, true],
      ['pilot', 'list', 'security.istio.io', 'authorizationpolicies', 'team-a', undefined, true],
      ['pilot', 'watch', 'discovery.k8s.io', 'endpointslices', undefined, undefined, true],
      ['pilot', 'list', '', 'pods', undefined, undefined, true],
      ['pilot', 'watch', 'networking.aviary.dev', 'ratelimitpolicies', undefined, undefined, true],
      ['pilot', 'watch', 'networking.aviary.dev', 'canaries', undefined, undefined, true],
      ['pilot', 'update', 'networking.aviary.dev', 'canaries', 'team-a', undefined, false],
      ['pilot', 'update', 'networking.istio.io', 'virtualservices', 'team-a', undefined, true],
      ['pilot', 'create', 'networking.istio.io', 'virtualservices', 'team-a', undefined, false],
      // credentialName: pilot reads TLS Secrets (as istiod) and never writes them.
      ['pilot', 'list', '', 'secrets', undefined, undefined, true],
      ['pilot', 'update', '', 'secrets', NS, undefined, false],
      ['pilot', 'delete', '', 'secrets', 'team-a', undefined, false],
      ['citadel', 'create', 'authentication.k8s.io', 'tokenreviews', undefined, undefined, true],
      ['citadel', 'update', '', 'configmaps', 'team-a', 'istio-ca-root-cert', true],
      ['citadel', 'get', '', 'configmaps', 'team-a', 'app-config', false],
      ['citadel', 'get', '', 'secrets', NS, 'istio-ca-secret', true],
      ['citadel', 'get', '', 'secrets', NS, 'other', false],
      ['citadel', 'get', '', 'secrets', 'team-a', 'istio-ca-secret', false],
      ['injector-webhook', 'patch', 'admissionregistration.k8s.io', 'mutatingwebhookconfigurations', undefined, 'aviary-sidecar-injector-aviary-system', true],
      ['injector-webhook', 'patch', 'admissionregistration.k8s.io', 'validatingwebhookconfigurations', undefined, 'aviary-validator-aviary-system', true],
      ['injector-webhook', 'patch', 'admissionregistration.k8s.io', 'mutatingwebhookconfigurations', undefined, 'someone-elses', false],
      ['injector-webhook', 'list', '', 'pods', undefined, undefined, false],
      ['telemetry-collector', 'list', '', 'pods', undefined, undefined, false],
      ['gateway', 'get', '', 'secrets', NS, undefined, false],
    ];
    const results = await Promise.all(checks.map(async (c) => [c.slice(0, 6).join(' '), await can(c[0], c[1], c[2], c[3], c[4], c[5])] as const));
    expect(Object.fromEntries(results)).toEqual(Object.fromEntries(checks.map((c) => [c.slice(0, 6).join(' '), c[6]])));
  });

  it('lets the controller manager create the Pods of a Deployment in an opted-in namespace', async () => {
    await namespace('meshed', { 'istio-injection': 'enabled' });
    await appsApi.createNamespacedDeployment({ namespace: 'meshed', body: deployment('web', 2) });
    const pods = await eventually('2 pods of web', async () => {
      const p = await podsOf('meshed', 'web');
      return p.length === 2 ? p : undefined;
    });
    for (const p of pods) {
      expect(p.metadata?.ownerReferences?.[0]?.kind).toBe('ReplicaSet');
      expect(p.spec?.containers.map((c) => c.name)).toEqual(['app']);
      expect(p.status?.phase).toBe('Pending');
    }
  });

  it('with the webhooks on in url mode and no injector listening, fails closed only where injection is opted in', async () => {
    const closedPort = await freePort();
    const caBundle = (await readFile(k8s().caFile)).toString('base64');
    const res = await k8s().helm([
      'upgrade', 'aviary', chartDir, '--namespace', NS, '-f', localValues,
      '--set', 'injector-webhook.webhook.enabled=true',
      '--set', `injector-webhook.webhook.url=https://127.0.0.1:${closedPort}`,
      '--set', `injector-webhook.webhook.caBundle=${caBundle}`,
    ]);
    expect(res.code, res.stderr).toBe(0);
    const admission = kc.makeApiClient(AdmissionregistrationV1Api);
    const mwc = await admission.readMutatingWebhookConfiguration({ name: 'aviary-sidecar-injector-aviary-system' });
    expect(mwc.webhooks?.[0]?.clientConfig.url).toBe(`https://127.0.0.1:${closedPort}/inject`);
    const vwc = await admission.readValidatingWebhookConfiguration({ name: 'aviary-validator-aviary-system' });
    expect(vwc.webhooks?.[0]?.clientConfig.url).toBe(`https://127.0.0.1:${closedPort}/validate`);

    // Opted-in namespace: the ReplicaSet cannot create its Pod (failurePolicy Fail).
    await appsApi.createNamespacedDeployment({ namespace: 'meshed', body: deployment('blocked', 1) });
    const failure = await eventually('ReplicaFailure on the blocked ReplicaSet', async () => {
      const rs = (await appsApi.listNamespacedReplicaSet({ namespace: 'meshed', labelSelector: 'app=blocked' })).items[0];
      return rs?.status?.conditions?.find((c) => c.type === 'ReplicaFailure' && c.status === 'True');
    });
    expect(failure.reason).toBe('FailedCreate');
    expect(failure.message).toContain('namespace.sidecar-injector.aviary.io');
    expect(await podsOf('meshed', 'blocked')).toEqual([]);

    // A pod that opts out, an unlabelled namespace and an excluded system namespace are untouched.
    await appsApi.createNamespacedDeployment({ namespace: 'meshed', body: deployment('optout', 1, { 'sidecar.istio.io/inject': 'false' }) });
    await namespace('plain');
    await appsApi.createNamespacedDeployment({ namespace: 'plain', body: deployment('web', 1) });
    await core.patchNamespace({ name: 'kube-system', body: [{ op: 'add', path: '/metadata/labels/istio-injection', value: 'enabled' }] });
    await appsApi.createNamespacedDeployment({ namespace: 'kube-system', body: deployment('system', 1) });
    for (const [ns, app] of [['meshed', 'optout'], ['plain', 'web'], ['kube-system', 'system']] as const) {
      await eventually(`a pod of ${ns}/${app}`, async () => ((await podsOf(ns, app)).length === 1 ? true : undefined));
    }

    // Mesh config goes through the validating webhook, which fails closed as well.
    const vs = await k8s().kubectl(['apply', '-n', 'plain', '-f', '-'], virtualService);
    expect(vs.code).not.toBe(0);
    expect(vs.stderr).toContain('validation.aviary.io');
  });

  it('uninstalls cleanly, taking the cluster-scoped objects with it', async () => {
    const res = await k8s().helm(['uninstall', 'aviary', '--namespace', NS, '--wait']);
    expect(res.code, res.stderr).toBe(0);
    const admission = kc.makeApiClient(AdmissionregistrationV1Api);
    expect((await admission.listMutatingWebhookConfiguration({ labelSelector: 'app.kubernetes.io/instance=aviary' })).items).toEqual([]);
    const roles = await kc.makeApiClient(RbacAuthorizationV1Api).listClusterRole({ labelSelector: 'app.kubernetes.io/instance=aviary' });
    expect(roles.items).toEqual([]);
    // helm keeps CRDs on uninstall; with the webhooks gone, mesh config and meshed Pods go through.
    const vs = await k8s().kubectl(['apply', '-n', 'plain', '-f', '-'], virtualService);
    expect(vs.code, vs.stderr).toBe(0);
    await appsApi.createNamespacedDeployment({ namespace: 'meshed', body: deployment('after', 1) });
    await eventually('a pod of meshed/after', async () => ((await podsOf('meshed', 'after')).length === 1 ? true : undefined));
  }, 120_000);
});

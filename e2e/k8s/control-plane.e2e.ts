// The apps as local processes against a real kube-apiserver (etcd + kube-apiserver +
// kube-controller-manager, cluster.ts): the built injector serves the admission webhooks that
// `helm install` registered in url mode (it patches its own caBundle in), and citadel
// authenticates CSRs with real service-account tokens through TokenReview.
import { X509Certificate } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { AdmissionregistrationV1Api, AppsV1Api, CoreV1Api, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { freePort, NatsServer } from '@aviary/nats-runner';
import { loadCaPackage } from '@aviary/ca-api';
import { createCsr, generatePrivateKey } from '@aviary/pki';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppProcess } from '../support/processes';
import { chartDir, PEERS_TIMEOUT_MS, repoRoot, startCluster, type KubeCluster } from './cluster';
import { createNamespace, deployment, eventually, makeServingCert, serviceAccountKubeconfig, type TlsFiles } from './support';

const NS = 'aviary-system';
const MWC = `aviary-sidecar-injector-${NS}`;
const VWC = `aviary-validator-${NS}`;
const localValues = join(repoRoot, 'e2e', 'k8s', 'values', 'local-process.yaml');

let cluster: KubeCluster | undefined;
let nats: NatsServer | undefined;
let tls: TlsFiles | undefined;
let dataDir: string | undefined;
let injector: AppProcess | undefined;
let citadel: AppProcess | undefined;
let citadelAdmin = 0;
let citadelGrpc = 0;
let core: CoreV1Api;
let appsApi: AppsV1Api;
let admission: AdmissionregistrationV1Api;

function k8s(): KubeCluster {
  if (cluster === undefined) throw new Error('cluster not started');
  return cluster;
}

function logsOf(p: AppProcess | undefined): string {
  return (p?.lines ?? []).map((l) => JSON.stringify(l)).join('\n');
}

beforeAll(async () => {
  [cluster, nats, tls] = await Promise.all([startCluster(), NatsServer.start(), makeServingCert()]);
  dataDir = await mkdtemp(join(tmpdir(), 'aviary-k8s-apps-'));
  const kc = new KubeConfig();
  kc.loadFromFile(cluster.kubeconfig);
  core = kc.makeApiClient(CoreV1Api);
  appsApi = kc.makeApiClient(AppsV1Api);
  admission = kc.makeApiClient(AdmissionregistrationV1Api);

  // The chart registers the webhooks in url mode with our CA; then the caBundle is made stale
  // (another CA) so that only the injector's own patch at start can make the API server trust it.
  const webhookPort = await freePort();
  const caBundle = (await readFile(tls.caCert)).toString('base64');
  const res = await cluster.helm([
    'install', 'aviary', chartDir, '--namespace', NS, '--create-namespace', '-f', localValues,
    '--set', 'injector-webhook.webhook.enabled=true',
    '--set', `injector-webhook.webhook.url=https://127.0.0.1:${webhookPort}`,
    '--set', `injector-webhook.webhook.caBundle=${caBundle}`,
  ]);
  if (res.code !== 0) throw new Error(`helm install failed: ${res.stderr}`);
  const stale = (await readFile(cluster.caFile)).toString('base64');
  await admission.patchMutatingWebhookConfiguration({ name: MWC, body: [{ op: 'replace', path: '/webhooks/0/clientConfig/caBundle', value: stale }] });

  // Each app authenticates as its chart ServiceAccount: the chart's least-privilege RBAC is what it gets.
  const [injectorKubeconfig, citadelKubeconfig] = await Promise.all([
    serviceAccountKubeconfig(cluster, NS, 'aviary-injector-webhook', dataDir),
    serviceAccountKubeconfig(cluster, NS, 'aviary-citadel', dataDir),
  ]);
  citadelAdmin = await freePort();
  citadelGrpc = await freePort();
  const common = { AVIARY_NATS_URL: nats.url, AVIARY_LOG_LEVEL: 'info', NO_PROXY: '127.0.0.1,localhost' };
  [injector, citadel] = await Promise.all([
    AppProcess.start('injector-webhook', {
      ...common,
      AVIARY_ADMIN_PORT: String(await freePort()),
      AVIARY_DATA_DIR: join(dataDir, 'injector'),
      AVIARY_WEBHOOK_PORT: String(webhookPort),
      AVIARY_TLS_CERT_FILE: tls.cert,
      AVIARY_TLS_KEY_FILE: tls.key,
      AVIARY_TLS_CA_FILE: tls.caCert,
      AVIARY_WEBHOOK_CONFIG_NAMES: `${MWC},${VWC}`,
      AVIARY_TLS_RELOAD_INTERVAL_MS: '1000',
      AVIARY_WEBHOOK_CA_RESYNC_MS: '1000',
      AVIARY_KUBECONFIG: injectorKubeconfig,
    }),
    AppProcess.start('citadel', {
      ...common,
      AVIARY_ADMIN_PORT: String(citadelAdmin),
      AVIARY_CA_PORT: String(citadelGrpc),
      AVIARY_CA_TLS_PORT: String(await freePort()),
      AVIARY_DATA_DIR: join(dataDir, 'citadel'),
      AVIARY_KUBECONFIG: citadelKubeconfig,
      AVIARY_TOKEN_REVIEW: 'true',
      AVIARY_TRUST_BUNDLE_CONFIG_MAPS: 'true',
      AVIARY_CA_SECRET: `${NS}/istio-ca-secret`,
    }),
  ]);
}, PEERS_TIMEOUT_MS + 5 * 60_000);

afterAll(async () => {
  await injector?.stop();
  await citadel?.stop();
  await nats?.stop();
  await cluster?.stop();
  if (tls !== undefined) await rm(tls.dir, { recursive: true, force: true });
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
}, 90_000);

async function podsOf(namespace: string, app: string): Promise<V1Pod[]> {
  return (await core.listNamespacedPod({ namespace, labelSelector: `app=${app}` })).items;
}

describe('injector-webhook as a local process behind the chart’s webhooks', () => {
  it('patched its serving CA into both webhook configurations at start', async () => {
    const want = Buffer.from((await readFile(tls!.caCert, 'utf8')).trim() + '\n').toString('base64');
    const mwc = await admission.readMutatingWebhookConfiguration({ name: MWC });
    const vwc = await admission.readValidatingWebhookConfiguration({ name: VWC });
    expect(mwc.webhooks?.map((w) => w.clientConfig.caBundle)).toEqual(mwc.webhooks?.map(() => want));
    expect(vwc.webhooks?.map((w) => w.clientConfig.caBundle)).toEqual(vwc.webhooks?.map(() => want));
    expect(logsOf(injector)).toContain('webhook caBundle set to the serving CA');
  });

  it('injects the sidecar and init container into the Pods the controller manager creates in an opted-in namespace', async () => {
    await createNamespace(core, 'meshed', { 'istio-injection': 'enabled' });
    await appsApi.createNamespacedDeployment({ namespace: 'meshed', body: deployment('web', 2) });
    const pods = await eventually('2 pods of meshed/web', async () => {
      const p = await podsOf('meshed', 'web');
      return p.length === 2 ? p : undefined;
    }, 60_000).catch((err: unknown) => {
      throw new Error(`${String(err)}\ninjector logs:\n${logsOf(injector)}`);
    });
    for (const p of pods) {
      expect(p.metadata?.ownerReferences?.[0]?.kind).toBe('ReplicaSet');
      expect(p.spec?.containers.map((c) => c.name)).toEqual(expect.arrayContaining(['app', 'istio-proxy']));
      expect(p.spec?.initContainers?.map((c) => c.name)).toContain('aviary-init');
      expect(p.metadata?.annotations?.['sidecar.istio.io/status']).toBeDefined();
    }
  });

  it('leaves a Pod in an unlabelled namespace alone', async () => {
    await createNamespace(core, 'plain');
    await appsApi.createNamespacedDeployment({ namespace: 'plain', body: deployment('web', 1) });
    const [pod] = await eventually('a pod of plain/web', async () => {
      const p = await podsOf('plain', 'web');
      return p.length === 1 ? p : undefined;
    });
    expect(pod?.spec?.containers.map((c) => c.name)).toEqual(['app']);
    expect(pod?.spec?.initContainers ?? []).toEqual([]);
  });

  it('follows a renewed serving certificate: the new CA goes into the caBundle and injection keeps working', async () => {
    const next = await makeServingCert();
    try {
      // The CA first, then the pair (the injector re-reads the files every second).
      await copyFile(next.caCert, tls!.caCert);
      await copyFile(next.key, tls!.key);
      await copyFile(next.cert, tls!.cert);
      const want = Buffer.from((await readFile(next.caCert, 'utf8')).trim() + '\n').toString('base64');
      await eventually('the new CA in the mutating webhook', async () => ((await admission.readMutatingWebhookConfiguration({ name: MWC })).webhooks?.[0]?.clientConfig.caBundle === want ? true : undefined), 20_000);
      await appsApi.createNamespacedDeployment({ namespace: 'meshed', body: deployment('after-renewal', 1) });
      const [pod] = await eventually('a pod of meshed/after-renewal', async () => {
        const p = await podsOf('meshed', 'after-renewal');
        return p.length === 1 ? p : undefined;
      });
      expect(pod?.spec?.containers.map((c) => c.name)).toContain('istio-proxy');
    } finally {
      await rm(next.dir, { recursive: true, force: true });
    }
  });

  it('puts a caBundle back after something resets it', async () => {
    const want = (await admission.readValidatingWebhookConfiguration({ name: VWC })).webhooks?.[0]?.clientConfig.caBundle;
    await admission.patchValidatingWebhookConfiguration({ name: VWC, body: [{ op: 'replace', path: '/webhooks/0/clientConfig/caBundle', value: Buffer.from('stale').toString('base64') }] });
    await eventually('the caBundle restored', async () => ((await admission.readValidatingWebhookConfiguration({ name: VWC })).webhooks?.[0]?.clientConfig.caBundle === want ? true : undefined), 20_000);
    expect(logsOf(injector)).toContain('webhook caBundle had been reset; patched it back');
  });

  it('refuses an invalid VirtualService applied with kubectl, naming the field', async () => {
    const bad = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - {destination: {host: reviews, subset: v1}, weight: 50}
    - {destination: {host: reviews, subset: v2}, weight: -40}
`;
    const res = await k8s().kubectl(['apply', '-n', 'plain', '-f', '-'], bad);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('validation.aviary.io');
    expect(res.stderr).toContain('spec.http[0].route[1].weight');
    const good = await k8s().kubectl(['apply', '-n', 'plain', '-f', '-'], bad.replace('weight: -40', 'weight: 50'));
    expect(good.code, good.stderr).toBe(0);
  });
});

describe('citadel with --token-review', () => {
  async function createCertificate(token: string): Promise<{ status: number; body: { certChain?: string[]; code?: string; message?: string } }> {
    const csr = createCsr(generatePrivateKey('ecdsa-p256'));
    const res = await fetch(`http://127.0.0.1:${citadelAdmin}/api/v1/certificates`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ csr }),
    });
    return { status: res.status, body: (await res.json()) as { certChain?: string[]; code?: string; message?: string } };
  }

  async function token(namespace: string, sa: string, audience: string): Promise<string> {
    const res = await k8s().kubectl(['create', 'token', sa, '-n', namespace, '--audience', audience, '--duration', '10m']);
    expect(res.code, res.stderr).toBe(0);
    return res.stdout.trim();
  }

  it('issues a certificate for the service account of a real istio-ca token', async () => {
    await createNamespace(core, 'shop');
    await core.createNamespacedServiceAccount({ namespace: 'shop', body: { metadata: { name: 'reviews' } } });
    const res = await createCertificate(await token('shop', 'reviews', 'istio-ca'));
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const leaf = new X509Certificate(res.body.certChain![0]!);
    expect(leaf.subjectAltName).toContain('URI:spiffe://cluster.local/ns/shop/sa/reviews');
  });

  it('issues over gRPC (Istio’s IstioCertificateService/CreateCertificate) with the token in the authorization metadata', async () => {
    const def = grpc.loadPackageDefinition(loadCaPackage()) as unknown as {
      istio: { v1: { auth: { IstioCertificateService: grpc.ServiceClientConstructor } } };
    };
    const client = new def.istio.v1.auth.IstioCertificateService(`127.0.0.1:${citadelGrpc}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
      CreateCertificate(req: object, md: grpc.Metadata, cb: (err: grpc.ServiceError | null, res?: { cert_chain: string[] }) => void): void;
    };
    const call = (t: string): Promise<{ err: grpc.ServiceError | null; res?: { cert_chain: string[] } }> => {
      const md = new grpc.Metadata();
      md.set('authorization', `Bearer ${t}`);
      return new Promise((resolve) => client.CreateCertificate({ csr: createCsr(generatePrivateKey('ecdsa-p256')), validity_duration: 3600 }, md, (err, res) => resolve({ err, ...(res === undefined ? {} : { res }) })));
    };
    try {
      const ok = await call(await token('shop', 'reviews', 'istio-ca'));
      expect(ok.err).toBeNull();
      expect(new X509Certificate(ok.res!.cert_chain[0]!).subjectAltName).toContain('URI:spiffe://cluster.local/ns/shop/sa/reviews');
      const refused = await call(await token('shop', 'reviews', 'some-other-api'));
      expect(refused.err?.code).toBe(grpc.status.UNAUTHENTICATED);
    } finally {
      client.close();
    }
  });

  it('refuses a token minted for another audience', async () => {
    const res = await createCertificate(await token('shop', 'reviews', 'some-other-api'));
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('TOKEN_AUDIENCE_MISMATCH');
  });

  it('refuses a token whose service account was deleted', async () => {
    await core.createNamespacedServiceAccount({ namespace: 'shop', body: { metadata: { name: 'gone' } } });
    const t = await token('shop', 'gone', 'istio-ca');
    await core.deleteNamespacedServiceAccount({ namespace: 'shop', name: 'gone' });
    const res = await createCertificate(t);
    expect(res.status).toBe(401);
  });

  it('writes the trust bundle to istio-ca-root-cert in every namespace, new ones included', async () => {
    const bundle = (await (await fetch(`http://127.0.0.1:${citadelAdmin}/api/v1/bundle`)).json()) as { roots: string[] };
    const want = bundle.roots.map((r) => r.trim() + '\n').join('');
    await createNamespace(core, 'late-arrival');
    for (const namespace of ['default', 'kube-system', NS, 'shop', 'late-arrival']) {
      const cm = await eventually(`istio-ca-root-cert in ${namespace}`, () => core.readNamespacedConfigMap({ name: 'istio-ca-root-cert', namespace }));
      expect(cm.data?.['root-cert.pem']).toBe(want);
    }
  });

  it('keeps the CA in the Secret istio-ca-secret', async () => {
    const secret = await core.readNamespacedSecret({ name: 'istio-ca-secret', namespace: NS });
    expect(Object.keys(secret.data ?? {}).sort()).toEqual(['ca-cert.pem', 'ca-key.pem', 'ca-state.json']);
    const bundle = (await (await fetch(`http://127.0.0.1:${citadelAdmin}/api/v1/bundle`)).json()) as { roots: string[] };
    expect(Buffer.from(secret.data!['ca-cert.pem']!, 'base64').toString().trim()).toBe(bundle.roots[0]!.trim());
  });
});

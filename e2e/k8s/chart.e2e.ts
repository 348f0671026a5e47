// Chart checks: helm lint and helm template of charts/aviary with default and non-default
// values, pinned by golden files (UPDATE_GOLDEN=1 rewrites them), plus the invariants every
// rendered workload must keep. helm is built from its Go module by tools/k8s/ensure-peers.sh.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { busRoles } from '@aviary/events';
import { chartDir, ensurePeers, KUBE_VERSION, PEERS_TIMEOUT_MS, repoRoot, run } from './cluster';

const goldenDir = join(repoRoot, 'e2e', 'k8s', '__golden__');
const valuesDir = join(repoRoot, 'e2e', 'k8s', 'values');
const updateGolden = process.env['UPDATE_GOLDEN'] === '1';

/** golden name → values files (none: the chart's defaults). */
const cases: Record<string, string[]> = {
  default: [],
  custom: [join(valuesDir, 'custom.yaml')],
  'external-nats': [join(valuesDir, 'external-nats.yaml')],
  ha: [join(valuesDir, 'ha.yaml')],
};

type Doc = { kind: string; apiVersion: string; metadata: { name: string; namespace?: string }; spec?: Record<string, unknown> } & Record<string, unknown>;

let helm: string;

beforeAll(async () => {
  helm = join(await ensurePeers(), 'helm');
}, PEERS_TIMEOUT_MS);

async function template(files: string[], extra: string[] = []) {
  return run(helm, ['template', 'aviary', chartDir, '--namespace', 'aviary-system', '--kube-version', KUBE_VERSION, ...files.flatMap((f) => ['-f', f]), ...extra]);
}

/** The NATS users Secret's passwords are random at each render (randAlphaNum): masked for the golden. */
function withoutGeneratedPasswords(text: string): string {
  return text.replace(/^( {2}[a-z-]+): "[A-Za-z0-9+/]+=*"$/gm, '$1: "<generated>"');
}

function docs(text: string): Doc[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as Doc | null)
    .filter((d): d is Doc => d !== null);
}

describe.each(Object.entries(cases))('chart with %s values', (name, files) => {
  it('passes helm lint --strict', async () => {
    const res = await run(helm, ['lint', chartDir, '--strict', '--kube-version', KUBE_VERSION, ...files.flatMap((f) => ['-f', f])]);
    expect(res.stderr + res.stdout).toContain('0 chart(s) failed');
    expect(res.code).toBe(0);
  });

  it('renders exactly the golden file', async () => {
    const res = await template(files);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const golden = join(goldenDir, `${name}.yaml`);
    const rendered = withoutGeneratedPasswords(res.stdout);
    if (updateGolden) {
      await mkdir(goldenDir, { recursive: true });
      await writeFile(golden, rendered);
    }
    expect(rendered).toBe(await readFile(golden, 'utf8'));
  });

  it('hardens every workload and gives each a probe, a ServiceAccount and a PDB policy', async () => {
    const all = docs((await template(files)).stdout);
    const workloads = all.filter((d) => d.kind === 'Deployment' || d.kind === 'StatefulSet');
    expect(workloads.length).toBeGreaterThan(0);
    const serviceAccounts = new Set(all.filter((d) => d.kind === 'ServiceAccount').map((d) => d.metadata.name));
    const pdbs = new Set(all.filter((d) => d.kind === 'PodDisruptionBudget').map((d) => d.metadata.name));
    for (const w of workloads) {
      const pod = (w.spec as { template: { spec: PodSpec } }).template.spec;
      expect(pod.securityContext.runAsNonRoot, w.metadata.name).toBe(true);
      expect(pod.securityContext.seccompProfile.type, w.metadata.name).toBe('RuntimeDefault');
      for (const c of pod.containers) {
        const sc = c.securityContext;
        expect(sc.runAsNonRoot && sc.readOnlyRootFilesystem && sc.allowPrivilegeEscalation === false, `${w.metadata.name}/${c.name}`).toBe(true);
        expect(sc.capabilities.drop).toEqual(['ALL']);
        expect(c.livenessProbe?.httpGet?.path, c.name).toMatch(/^\/healthz/);
        // Probes reach the monitoring listener; the admin API is on loopback and declares no port.
        if (w.kind === 'Deployment') {
          expect([c.startupProbe?.httpGet?.port, c.livenessProbe?.httpGet?.port, c.readinessProbe?.httpGet?.port], c.name).toEqual(['http-monitoring', 'http-monitoring', 'http-monitoring']);
          expect(c.ports?.map((p) => p.name) ?? [], c.name).not.toContain('http-admin');
        }
        expect(c.readinessProbe?.httpGet?.path, c.name).toMatch(/^\/healthz|^\/readyz/);
        // The API server refuses a pod template that declares a container port twice (helm's
        // server-side apply: "duplicate entries for key [containerPort=...]").
        const declared = (c.ports ?? []).map((p) => `${p.containerPort}/${p.protocol ?? 'TCP'}`);
        expect(declared, `${w.metadata.name}/${c.name} container ports`).toEqual([...new Set(declared)]);
        expect(c.resources.requests, c.name).toBeDefined();
      }
      if (pod.serviceAccountName !== 'observability-reader') expect(serviceAccounts.has(pod.serviceAccountName), w.metadata.name).toBe(true);
      const pdbExpected = !(name === 'custom' && w.metadata.name.endsWith('telemetry-collector')) && !(name === 'external-nats' && w.metadata.name.endsWith('telemetry-collector'));
      expect(pdbs.has(w.metadata.name), `PDB for ${w.metadata.name}`).toBe(pdbExpected);
    }
  });
});

describe('chart contracts', () => {
  it('renders HA values: pilot replicas spread over nodes, PDBs, a 3-node NATS cluster and replicated streams', async () => {
    const all = docs((await template([join(valuesDir, 'ha.yaml')])).stdout);
    const pilot = all.find((d) => d.kind === 'Deployment' && d.metadata.name === 'aviary-pilot')!;
    expect(pilot.spec?.['replicas']).toBe(2);
    const pod = (pilot.spec as { template: { spec: { affinity?: { podAntiAffinity?: Record<string, unknown> } } } }).template.spec;
    expect(pod.affinity?.podAntiAffinity?.['requiredDuringSchedulingIgnoredDuringExecution']).toEqual([
      { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: { 'app.kubernetes.io/name': 'pilot', 'app.kubernetes.io/instance': 'aviary' } } },
    ]);
    expect(envOf(all, 'aviary-pilot')).toMatchObject({
      AVIARY_REPLICA_ID: { fieldRef: { fieldPath: 'metadata.name' } },
      AVIARY_NATS_REPLICAS: '3',
      AVIARY_XDS_MAX_STREAMS: '5000',
      AVIARY_XDS_MAX_CONNECTION_AGE_MS: '900000',
    });
    for (const app of ['aviary-citadel', 'aviary-telemetry-collector', 'aviary-injector-webhook']) expect(envOf(all, app)['AVIARY_NATS_REPLICAS'], app).toBe('3');
    const pdb = all.find((d) => d.kind === 'PodDisruptionBudget' && d.metadata.name === 'aviary-pilot');
    expect(pdb?.spec).toMatchObject({ maxUnavailable: 1 });
    const nats = all.find((d) => d.kind === 'StatefulSet' && d.metadata.name === 'aviary-nats')!;
    expect(nats.spec?.['replicas']).toBe(3);
    expect(JSON.stringify((nats.spec as { template: { spec: { affinity?: unknown } } }).template.spec.affinity)).toContain('preferredDuringSchedulingIgnoredDuringExecution');
    const conf = (all.find((d) => d.kind === 'ConfigMap' && d.metadata.name === 'aviary-nats')?.['data'] as Record<string, string>)['nats.conf'];
    expect(conf).toMatch(/cluster \{[\s\S]*aviary-nats-2\.aviary-nats-headless/);
    expect(all.some((d) => d.kind === 'PodDisruptionBudget' && d.metadata.name === 'aviary-nats')).toBe(true);
    // More stream replicas than NATS servers cannot be placed: refused at render.
    const bad = await template([], ['--set', 'global.nats.streamReplicas=3']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('global.nats.streamReplicas (3) exceeds nats.replicaCount (1)');
  });

  it('scopes the injection webhook to opted-in namespaces, fail-closed, with a short timeout', async () => {
    const all = docs((await template([])).stdout);
    const mwc = all.find((d) => d.kind === 'MutatingWebhookConfiguration');
    const hook = (mwc?.['webhooks'] as Webhook[])[0];
    expect(hook).toMatchObject({ failurePolicy: 'Fail', sideEffects: 'None', admissionReviewVersions: ['v1'] });
    expect(hook?.timeoutSeconds).toBeLessThanOrEqual(3);
    expect(hook?.namespaceSelector.matchExpressions).toEqual(
      expect.arrayContaining([
        { key: 'istio-injection', operator: 'In', values: ['enabled'] },
        expect.objectContaining({ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: expect.arrayContaining(['kube-system', 'kube-public']) }),
      ]),
    );
    expect(hook?.objectSelector.matchExpressions).toEqual([{ key: 'sidecar.istio.io/inject', operator: 'NotIn', values: ['false'] }]);
    expect(hook?.clientConfig.service).toMatchObject({ name: 'aviary-injector-webhook', namespace: 'aviary-system', path: '/inject', port: 443 });
    const vwc = all.find((d) => d.kind === 'ValidatingWebhookConfiguration');
    const groups = (vwc?.['webhooks'] as Webhook[])[0]?.rules.flatMap((r) => r.apiGroups);
    expect(groups).toEqual(['networking.istio.io', 'security.istio.io', 'networking.aviary.dev']);
  });

  it('uses url-mode clientConfig with the caBundle when webhook.url is set', async () => {
    const all = docs((await template([join(valuesDir, 'custom.yaml')])).stdout);
    const urls = all
      .filter((d) => d.kind.endsWith('WebhookConfiguration'))
      .flatMap((d) => (d['webhooks'] as Webhook[]).map((w) => [w.clientConfig.url, w.clientConfig.service, typeof w.clientConfig.caBundle]));
    expect(urls).toEqual([
      ['https://127.0.0.1:9443/inject', undefined, 'string'],
      ['https://127.0.0.1:9443/validate', undefined, 'string'],
    ]);
  });

  it('ships the injection template byte for byte in a ConfigMap', async () => {
    const all = docs((await template([])).stdout);
    const cm = all.find((d) => d.kind === 'ConfigMap' && d.metadata.name === 'aviary-injector-webhook-template');
    const file = await readFile(join(chartDir, 'charts', 'injector-webhook', 'files', 'injection-template.yaml'), 'utf8');
    expect((cm?.['data'] as Record<string, string>)['injection-template.yaml']).toBe(file);
  });

  it('sets the AVIARY_* environment with the admin API on loopback and the monitoring port on the pod address', async () => {
    const all = docs((await template([join(valuesDir, 'custom.yaml')])).stdout);
    const pilot = all.find((d) => d.kind === 'Deployment' && d.metadata.name === 'aviary-pilot');
    const env = Object.fromEntries(
      (pilot?.spec as { template: { spec: PodSpec } }).template.spec.containers[0]!.env.map((e) => [e.name, e.value ?? e.valueFrom]),
    );
    expect(env).toMatchObject({
      AVIARY_ADMIN_HOST: '127.0.0.1',
      AVIARY_ADMIN_PORT: '15014',
      AVIARY_HEALTH_HOST: '0.0.0.0',
      AVIARY_HEALTH_PORT: '15021',
      AVIARY_XDS_TLS: 'true',
      AVIARY_XDS_TLS_HOST: '0.0.0.0',
      AVIARY_XDS_TLS_PORT: '15012',
      AVIARY_XDS_PLAINTEXT: 'false',
      AVIARY_XDS_HOST: '127.0.0.1',
      AVIARY_NATS_URL: 'nats://aviary-nats.aviary-system.svc:4222',
      AVIARY_TRUST_DOMAIN: 'mesh.example.org',
      AVIARY_LOG_LEVEL: 'debug',
      AVIARY_MAX_CONFIG_DOCUMENTS: '1000',
      AVIARY_ADMIN_TOKEN: { secretKeyRef: { name: 'aviary-admin-token', key: 'token' } },
    });
  });

  const envOf = (all: Doc[], name: string, kind = 'Deployment'): Record<string, unknown> =>
    Object.fromEntries(
      (all.find((d) => d.kind === kind && d.metadata.name === name)?.spec as { template: { spec: PodSpec } }).template.spec.containers[0]!.env.map((e) => [e.name, e.value ?? e.valueFrom]),
    );

  it('hands injected proxies the Services of this release in its namespace, on ports those Services expose', async () => {
    const all = docs((await run(helm, ['template', 'aviary', chartDir, '--namespace', 'istio-system', '--kube-version', KUBE_VERSION])).stdout);
    const env = envOf(all, 'aviary-injector-webhook');
    expect(env).toMatchObject({
      AVIARY_TLS_DNS_NAMES: 'aviary-injector-webhook.istio-system.svc,aviary-injector-webhook.istio-system.svc.cluster.local',
      AVIARY_PROXY_IMAGE: 'docker.io/aviary/gateway:0.1.0',
      AVIARY_PILOT_ADDRESS: 'aviary-pilot.istio-system.svc:15012',
      AVIARY_CITADEL_ADDRESS: 'aviary-citadel.istio-system.svc:15013',
      AVIARY_PROXY_NATS_URL: 'nats://aviary-nats.istio-system.svc:4222',
    });
    const servicePorts = (name: string): number[] =>
      ((all.find((d) => d.kind === 'Service' && d.metadata.name === name)?.spec as { ports: { port: number }[] }).ports ?? []).map((p) => p.port);
    expect(servicePorts('aviary-pilot')).toContain(15012);
    expect(servicePorts('aviary-pilot')).not.toContain(15010);
    expect(servicePorts('aviary-citadel')).toContain(15013);
  });

  it('labels the ingress gateway pods istio: ingressgateway and reports those labels to pilot', async () => {
    const all = docs((await template([])).stdout);
    const gw = all.find((d) => d.kind === 'Deployment' && d.metadata.name === 'aviary-gateway');
    const labels = (gw?.spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels;
    expect(labels).toMatchObject({ istio: 'ingressgateway', app: 'istio-ingressgateway' });
    const env = envOf(all, 'aviary-gateway');
    expect(env['AVIARY_LABELS']).toBe('app=istio-ingressgateway,istio=ingressgateway');
    expect(env['AVIARY_NAMESPACE']).toEqual({ fieldRef: { fieldPath: 'metadata.namespace' } });
    expect(env['AVIARY_POD_IP']).toEqual({ fieldRef: { fieldPath: 'status.podIP' } });
    // podLabels win over the defaults, in the pod and in what the proxy reports.
    const custom = docs((await template([], ['--set', 'gateway.podLabels.istio=edge'])).stdout);
    expect(envOf(custom, 'aviary-gateway')['AVIARY_LABELS']).toBe('app=istio-ingressgateway,istio=edge');
  });

  it('gives every app its own NATS user (passwords in the users Secret) and nats-server the same users', async () => {
    const all = docs((await template([])).stdout);
    const secret = all.find((d) => d.kind === 'Secret' && d.metadata.name === 'aviary-nats-users') as { data: Record<string, string> } | undefined;
    expect(Object.keys(secret?.data ?? {}).sort()).toEqual([...busRoles].sort());
    for (const app of ['pilot', 'citadel', 'injector-webhook', 'telemetry-collector', 'gateway']) {
      const env = envOf(all, `aviary-${app}`);
      expect(env['AVIARY_NATS_USER'], app).toBe(app);
      expect(env['AVIARY_NATS_PASSWORD'], app).toEqual({ secretKeyRef: { name: 'aviary-nats-users', key: app } });
    }
    // injected proxies connect as the gateway role
    expect(envOf(all, 'aviary-injector-webhook')['AVIARY_PROXY_NATS_PASSWORD']).toEqual({ secretKeyRef: { name: 'aviary-nats-users', key: 'gateway' } });
    const natsEnv = envOf(all, 'aviary-nats', 'StatefulSet');
    for (const role of busRoles) expect(natsEnv[`AVIARY_NATS_${role.toUpperCase().replaceAll('-', '_')}_PASSWORD`], role).toEqual({ secretKeyRef: { name: 'aviary-nats-users', key: role } });
    const conf = (all.find((d) => d.kind === 'ConfigMap' && d.metadata.name === 'aviary-nats') as { data: Record<string, string> } | undefined)?.data['nats.conf'] ?? '';
    expect(conf).toContain('authorization {');
    // turned off: no users anywhere
    const off = docs((await template([], ['--set', 'global.nats.auth.enabled=false'])).stdout);
    expect(off.some((d) => d.kind === 'Secret' && d.metadata.name === 'aviary-nats-users')).toBe(false);
    expect(envOf(off, 'aviary-pilot')['AVIARY_NATS_USER']).toBeUndefined();
  });

  it('names images fully qualified by default (kubelet passes names to containerd as they are)', async () => {
    const all = docs((await template([])).stdout);
    const images = all
      .filter((d) => d.kind === 'Deployment' || d.kind === 'StatefulSet')
      .flatMap((d) => (d.spec as { template: { spec: { containers: { image: string }[] } } }).template.spec.containers.map((c) => c.image));
    expect(images.length).toBeGreaterThan(5);
    for (const image of images) expect(image).toMatch(/^docker\.io\/(aviary|library)\/[a-z-]+:[0-9.]+$/);
  });

  it.each([
    ['a negative replica count', ['--set', 'pilot.replicaCount=-1'], "at '/replicaCount'"],
    ['an injection timeout above 3s', ['--set', 'injector-webhook.webhook.injection.timeoutSeconds=10'], 'timeoutSeconds'],
    ['an unknown key (typo)', ['--set', 'gateway.replicas=2'], "additional properties 'replicas'"],
    ['root in the pods', ['--set', 'citadel.securityContext.runAsUser=0'], 'runAsUser'],
    ['url mode without a caBundle', ['--set', 'injector-webhook.webhook.url=https://127.0.0.1:9443'], 'needs webhook.caBundle'],
    ['an external NATS while the bundled one is on', ['--set', 'global.nats.url=nats://n:4222'], 'set nats.enabled=false'],
    ['a 2-node NATS', ['--set', 'nats.replicaCount=2'], 'replicaCount'],
  ])('refuses %s', async (_what, args, message) => {
    const res = await template([], args);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain(message);
  });
});

interface Container {
  name: string;
  env: { name: string; value?: string; valueFrom?: unknown }[];
  resources: { requests?: unknown };
  ports?: { name: string; containerPort: number; protocol?: string }[];
  startupProbe?: { httpGet?: { path: string; port: string | number } };
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  securityContext: { runAsNonRoot: boolean; readOnlyRootFilesystem: boolean; allowPrivilegeEscalation: boolean; capabilities: { drop: string[] } };
}
interface PodSpec {
  serviceAccountName: string;
  securityContext: { runAsNonRoot: boolean; seccompProfile: { type: string } };
  containers: Container[];
}
interface Webhook {
  failurePolicy: string;
  timeoutSeconds: number;
  sideEffects: string;
  admissionReviewVersions: string[];
  clientConfig: { url?: string; service?: Record<string, unknown>; caBundle?: string };
  namespaceSelector: { matchExpressions: unknown[] };
  objectSelector: { matchExpressions: unknown[] };
  rules: { apiGroups: string[] }[];
}

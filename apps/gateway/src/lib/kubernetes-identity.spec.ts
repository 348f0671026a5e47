// The injected sidecar's configuration, read the way the agent reads it in a pod: the env the
// injection template sets (rendered by @aviary/injection for a real pod) parsed by the gateway's
// config, the downward API labels file, and the ports its listeners take.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { agentNode, citadelTlsSetting, parseAppProbers } from '@aviary/agent';
import { gatewayConfig, parseConfig } from '@aviary/config';
import { isAviaryError } from '@aviary/errors';
import { injectionValues, parseInjectionTemplate, planInjection, type Pod } from '@aviary/injection';
import { parseNode } from '@aviary/mesh-model';
import { checkAgentPorts, workloadLabels, type GatewayConfig } from './gateway';

const dir = mkdtempSync(join(tmpdir(), 'aviary-podinfo-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const templateText = readFileSync(fileURLToPath(new URL('../../../../charts/aviary/charts/injector-webhook/files/injection-template.yaml', import.meta.url)), 'utf8');

/** The istio-proxy container the injector adds to `pod`, as the API server stores it. */
function injectedProxy(pod: Pod): { env: { name: string; value?: string; valueFrom?: { fieldRef: { fieldPath: string } } }[]; volumeMounts: { name: string; mountPath: string }[] } {
  const plan = planInjection(pod, { name: 'mesh', labels: { 'istio-injection': 'enabled' } }, parseInjectionTemplate(templateText), injectionValues());
  const add = plan.patch.find((op) => op.op === 'add' && op.path === '/spec/containers/-');
  return (add as { value: ReturnType<typeof injectedProxy> }).value;
}

/** What the kubelet puts in the env: fieldRefs resolved for this pod. */
function podEnv(proxy: ReturnType<typeof injectedProxy>, fields: Record<string, string>, labelsFile: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of proxy.env) {
    const v = e.valueFrom === undefined ? e.value : fields[e.valueFrom.fieldRef.fieldPath];
    if (v === undefined) throw new Error(`no value for ${e.name}`);
    env[e.name] = v;
  }
  // The downward API volume is mounted at /etc/istio/pod; here the file lives in a temp dir.
  expect(env['AVIARY_LABELS_PATH']).toBe('/etc/istio/pod/labels');
  env['AVIARY_LABELS_PATH'] = labelsFile;
  return env;
}

describe('the injected sidecar knows its identity', () => {
  const pod: Pod = {
    metadata: { name: 'hello-v2-7d9f5c-abcde', namespace: 'mesh', labels: { app: 'hello', version: 'v2' } },
    spec: {
      serviceAccountName: 'hello',
      containers: [{ name: 'hello', image: 'demo', ports: [{ name: 'http', containerPort: 8080 }], readinessProbe: { httpGet: { path: '/healthz', port: 'http' } }, livenessProbe: { tcpSocket: { port: 8080 } } }],
    },
  };
  const labelsFile = join(dir, 'labels');
  writeFileSync(labelsFile, 'app="hello"\npod-template-hash="7d9f5c"\nsecurity.istio.io/tlsMode="istio"\nversion="v2"\n');
  const proxy = injectedProxy(pod);
  const env = podEnv(proxy, { 'metadata.name': 'hello-v2-7d9f5c-abcde', 'metadata.namespace': 'mesh', 'spec.serviceAccountName': 'hello', 'status.podIP': '10.244.0.9' }, labelsFile);
  const parsed = parseConfig(gatewayConfig, ['--mode', 'sidecar'], env);
  if (parsed.kind !== 'config') throw new Error('expected a config');
  const config = parsed.config as GatewayConfig;

  it('namespace, pod name, service account, pod IP and labels reach pilot\'s view of the proxy', () => {
    const node = agentNode({ ...config, labels: workloadLabels(config) });
    const proxyInfo = parseNode({ id: node.id, metadata: node.metadata as Record<string, never> });
    expect(proxyInfo).toMatchObject({ namespace: 'mesh', labels: { app: 'hello', version: 'v2', 'security.istio.io/tlsMode': 'istio' } });
    expect(node.id).toBe('sidecar~10.244.0.9~hello-v2-7d9f5c-abcde.mesh~mesh.svc.cluster.local');
    expect(node.spiffeId).toBe('spiffe://cluster.local/ns/mesh/sa/hello');
  });

  it('asks citadel over TLS, verified with the mounted istio-ca-root-cert, with the projected istio-ca token', () => {
    expect(citadelTlsSetting({ citadelTls: config.citadelTls, platform: config.platform, address: config.citadelAddress, caRootPath: config.caRootPath, subjectAltName: config.citadelSubjectAltName })).toEqual({
      rootsPath: '/var/run/secrets/istio/root-cert.pem',
      serverName: 'aviary-citadel.istio-system.svc',
    });
    expect(config.citadelAddress).toBe('aviary-citadel.istio-system.svc:15013');
    expect(config.tokenPath).toBe('/var/run/secrets/tokens/istio-token');
    expect(proxy.volumeMounts).toEqual(expect.arrayContaining([
      { name: 'istiod-ca-cert', mountPath: '/var/run/secrets/istio', readOnly: true },
      { name: 'istio-token', mountPath: '/var/run/secrets/tokens', readOnly: true },
      { name: 'istio-podinfo', mountPath: '/etc/istio/pod', readOnly: true },
    ]));
    expect(config.pilotAddress).toBe('aviary-pilot.istio-system.svc:15012');
  });

  it('serves the rewritten app probes (httpGet and tcpSocket) on 15020, apart from its other listeners', () => {
    expect(config.appProbePort).toBe(15020);
    const probers = parseAppProbers(config.appProbers);
    expect(probers.get('/app-health/hello/readyz')).toMatchObject({ kind: 'httpGet', port: 8080, path: '/healthz' });
    expect(probers.get('/app-health/hello/livez')).toMatchObject({ kind: 'tcpSocket', port: 8080 });
    expect(() => checkAgentPorts(config)).not.toThrow();
    expect(new Set([config.adminPort, config.statsPort, config.statusPort, config.appProbePort]).size).toBe(4);
    expect([config.statsPort, config.statusPort, config.appProbePort]).toEqual([15090, 15021, 15020]);
  });
});

describe('agent configuration errors', () => {
  it('two listeners on one port are refused at boot', () => {
    let code: string | undefined;
    try {
      checkAgentPorts({ adminPort: 15000, statsPort: 15090, statusPort: 15021, healthPort: 15020, appProbePort: 15020 });
    } catch (err) {
      code = isAviaryError(err) ? err.code : undefined;
      expect(String(err)).toContain('AVIARY_APP_PROBE_PORT and AVIARY_HEALTH_PORT are both 15020');
    }
    expect(code).toBe('GATEWAY_PORT_CONFLICT');
  });

  it('a configured labels file that is missing stops the agent (it would escape every policy selecting it)', () => {
    let code: string | undefined;
    try {
      workloadLabels({ labels: 'app=x', labelsPath: join(dir, 'absent') });
    } catch (err) {
      code = isAviaryError(err) ? err.code : undefined;
    }
    expect(code).toBe('GATEWAY_LABELS_UNREADABLE');
    expect(workloadLabels({ labels: 'app=x,tier=web', labelsPath: '' })).toEqual({ app: 'x', tier: 'web' });
  });
});

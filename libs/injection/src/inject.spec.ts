import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fjp, { type Operation } from 'fast-json-patch';
import { describe, expect, it } from 'vitest';
import { isAviaryError } from '@aviary/errors';
import { escapePointerToken, injectionValues, parseInjectionTemplate, planInjection, pointer, type Pod } from './index';

const templateText = readFileSync(fileURLToPath(new URL('../../../charts/aviary/charts/injector-webhook/files/injection-template.yaml', import.meta.url)), 'utf8');
const template = parseInjectionTemplate(templateText);
const values = injectionValues();
const enabled = { name: 'apps', labels: { 'istio-injection': 'enabled' } };

const basePod = (extra: Partial<Pod['spec']> = {}, annotations?: Record<string, string>): Pod => ({
  metadata: { name: 'web', ...(annotations === undefined ? {} : { annotations }) },
  spec: { containers: [{ name: 'web', image: 'nginx' }], ...extra },
});

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (isAviaryError(err)) return err.code;
    throw err;
  }
  return undefined;
}

describe('planInjection', () => {
  it('escapes annotation keys as JSON pointer tokens (~0, ~1)', () => {
    expect(escapePointerToken('a/b~c')).toBe('a~1b~0c');
    expect(pointer('metadata', 'annotations', 'sidecar.istio.io/status')).toBe('/metadata/annotations/sidecar.istio.io~1status');
    const plan = planInjection(basePod({}, { 'x/y~z': '1' }), enabled, template, values);
    const paths = plan.patch.map((op) => op.path);
    expect(paths).toContain('/metadata/annotations/sidecar.istio.io~1status');
    expect(paths).toContain('/metadata/annotations/prometheus.io~1scrape');
  });

  it('adds whole arrays and maps the pod lacks, appends to the ones it has', () => {
    const plan = planInjection(basePod(), enabled, template, values);
    expect(plan.patch.map((o) => `${o.op} ${o.path}`)).toEqual([
      'add /spec/initContainers',
      'add /spec/containers/-',
      'add /spec/volumes',
      'add /metadata/labels',
      'add /metadata/annotations',
    ]);
  });

  it('treats null lists and maps (as some clients send them) like absent ones', () => {
    const input = { metadata: { name: 'web', labels: null, annotations: null }, spec: { containers: [{ name: 'web', image: 'nginx' }], initContainers: null, volumes: null } };
    const plan = planInjection(input, enabled, template, values);
    const pod = fjp.applyPatch(structuredClone(input), structuredClone(plan.patch) as Operation[], true, false).newDocument as unknown as Pod;
    expect(pod.spec.initContainers!.map((c) => c.name)).toEqual(['aviary-init']);
    expect(pod.metadata!.annotations!['sidecar.istio.io/status']).toBeDefined();
  });

  it('puts the proxy first and adds a postStart wait with holdApplicationUntilProxyStarts', () => {
    const plan = planInjection(basePod(), enabled, template, injectionValues({ holdApplicationUntilProxyStarts: true }));
    const pod = fjp.applyPatch(basePod(), structuredClone(plan.patch) as Operation[], true, false).newDocument as Pod;
    expect(pod.spec.containers.map((c) => c.name)).toEqual(['istio-proxy', 'web']);
    expect(JSON.stringify(pod.spec.containers[0]!['lifecycle'])).toContain('127.0.0.1:15021/healthz/ready');
  });

  it('native sidecar mode from values: aviary-init, then the proxy with restartPolicy Always, then the pod init containers', () => {
    const input = basePod({ initContainers: [{ name: 'setup', image: 'busybox' }] });
    const plan = planInjection(input, enabled, template, injectionValues({ nativeSidecar: true }));
    const pod = fjp.applyPatch(input, structuredClone(plan.patch) as Operation[], true, false).newDocument as Pod;
    expect(pod.spec.initContainers!.map((c) => c.name)).toEqual(['aviary-init', 'istio-proxy', 'setup']);
    expect(pod.spec.initContainers![1]!['restartPolicy']).toBe('Always');
    expect(pod.spec.initContainers![1]!['startupProbe']).toBeDefined();
    expect(pod.spec.containers.map((c) => c.name)).toEqual(['web']);
  });

  it('leaves prometheus.io annotations the pod already sets', () => {
    const plan = planInjection(basePod({}, { 'prometheus.io/path': '/metrics' }), enabled, template, values);
    expect(plan.patch.some((o) => o.path.includes('prometheus.io'))).toBe(false);
  });

  it('does not rewrite probes when sidecar.istio.io/rewriteAppHTTPProbers is false', () => {
    const input = basePod({ containers: [{ name: 'web', image: 'nginx', readinessProbe: { httpGet: { port: 80, path: '/' } } }] }, { 'sidecar.istio.io/rewriteAppHTTPProbers': 'false' });
    const plan = planInjection(input, enabled, template, values);
    expect(plan.patch.some((o) => o.path.includes('readinessProbe'))).toBe(false);
    expect(JSON.stringify(plan.patch)).not.toContain('ISTIO_KUBE_APP_PROBERS');
  });

  it('rewrites tcpSocket probes too: the kubelet GETs the proxy\'s /app-health/ path, the proxy connects to the app', () => {
    const input = basePod({ containers: [{ name: 'db', image: 'pg', ports: [{ name: 'pg', containerPort: 5432 }], livenessProbe: { tcpSocket: { port: 'pg' }, timeoutSeconds: 2, periodSeconds: 7 } }] });
    const plan = planInjection(input, enabled, template, values);
    const pod = fjp.applyPatch(structuredClone(input), structuredClone(plan.patch) as Operation[], true, false).newDocument as Pod;
    expect(pod.spec.containers[0]!.livenessProbe).toEqual({ httpGet: { path: '/app-health/db/livez', port: 15020, scheme: 'HTTP' }, timeoutSeconds: 2, periodSeconds: 7 });
    const env = (pod.spec.containers[1]!['env'] as { name: string; value?: string }[]);
    expect(JSON.parse(env.find((e) => e.name === 'ISTIO_KUBE_APP_PROBERS')!.value!)).toEqual({ '/app-health/db/livez': { tcpSocket: { port: 5432 }, timeoutSeconds: 2 } });
    expect(env.find((e) => e.name === 'AVIARY_APP_PROBE_PORT')!.value).toBe('15020');
  });

  it('gives the proxy its identity: downward API env and labels file, CA roots, projected token', () => {
    const plan = planInjection(basePod(), enabled, template, values);
    const sidecar = (plan.patch.find((o) => o.path === '/spec/containers/-') as { value: { env: { name: string; value?: string; valueFrom?: { fieldRef: { fieldPath: string } } }[] } }).value;
    const env = new Map(sidecar.env.map((e) => [e.name, e.value ?? e.valueFrom?.fieldRef.fieldPath]));
    expect(Object.fromEntries(['AVIARY_NAME', 'AVIARY_NAMESPACE', 'AVIARY_SERVICE_ACCOUNT', 'AVIARY_POD_IP', 'AVIARY_LABELS_PATH', 'AVIARY_CITADEL_TLS', 'AVIARY_CA_ROOT_PATH', 'AVIARY_TOKEN_PATH'].map((k) => [k, env.get(k)]))).toEqual({
      AVIARY_NAME: 'metadata.name',
      AVIARY_NAMESPACE: 'metadata.namespace',
      AVIARY_SERVICE_ACCOUNT: 'spec.serviceAccountName',
      AVIARY_POD_IP: 'status.podIP',
      AVIARY_LABELS_PATH: '/etc/istio/pod/labels',
      AVIARY_CITADEL_TLS: 'on',
      AVIARY_CA_ROOT_PATH: '/var/run/secrets/istio/root-cert.pem',
      AVIARY_TOKEN_PATH: '/var/run/secrets/tokens/istio-token',
    });
    const volumes = (plan.patch.find((o) => o.path === '/spec/volumes') as { value: { name: string }[] }).value;
    expect(volumes).toEqual(expect.arrayContaining([
      { name: 'istiod-ca-cert', configMap: { name: 'istio-ca-root-cert' } },
      { name: 'istio-token', projected: { sources: [{ serviceAccountToken: { audience: 'istio-ca', expirationSeconds: 43200, path: 'istio-token' } }] } },
      expect.objectContaining({ name: 'istio-podinfo', downwardAPI: { items: expect.arrayContaining([{ path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } }]) } }),
    ]));
  });

  it('keeps the agent admin (Envoy\'s admin passed through) on loopback: no pod-address listener, no declared port', () => {
    const plan = planInjection(basePod(), enabled, template, values);
    const sidecar = (plan.patch.find((o) => o.path === '/spec/containers/-') as { value: { env: { name: string; value?: string }[]; ports: { containerPort: number }[] } }).value;
    expect(sidecar.env.find((e) => e.name === 'AVIARY_ADMIN_HOST')?.value).toBe('127.0.0.1');
    expect(sidecar.ports.map((p) => p.containerPort)).not.toContain(values.ports.admin);
  });

  it("sets the proxy's ADS flavour: state of the world unless the injector says delta", () => {
    const xdsProtocolOf = (v: typeof values): string | undefined => {
      const plan = planInjection(basePod(), enabled, template, v);
      const sidecar = (plan.patch.find((o) => o.path === '/spec/containers/-') as { value: { env: { name: string; value?: string }[] } }).value;
      return sidecar.env.find((e) => e.name === 'AVIARY_XDS_PROTOCOL')?.value;
    };
    expect(xdsProtocolOf(values)).toBe('delta');
    expect(xdsProtocolOf(injectionValues({ xdsProtocol: 'sotw' }))).toBe('sotw');
  });

  it('defaults name istio-system and pilot\'s mTLS port 15012', () => {
    expect(values.pilotAddress).toBe('aviary-pilot.istio-system.svc:15012');
    expect(values.citadelAddress).toBe('aviary-citadel.istio-system.svc:15013');
    expect(values.natsUrl).toBe('nats://aviary-nats.istio-system.svc:4222');
  });

  it('carries capture annotations into the init container args', () => {
    const plan = planInjection(
      basePod({}, { 'traffic.sidecar.istio.io/includeInboundPorts': '8080,9090', 'traffic.sidecar.istio.io/includeOutboundIPRanges': '10.0.0.0/8' }),
      enabled,
      template,
      values,
    );
    const init = (plan.patch.find((o) => o.path === '/spec/initContainers') as { value: { args: string[] }[] }).value[0]!;
    expect(init.args[init.args.indexOf('--include-inbound-ports') + 1]).toBe('8080,9090');
    expect(init.args[init.args.indexOf('--include-outbound-ip-ranges') + 1]).toBe('10.0.0.0/8');
    expect(init.args[init.args.indexOf('--exclude-inbound-ports') + 1]).toBe('15090,15021,15020,15000');
  });

  it('does not validate annotations of pods it skips', () => {
    const plan = planInjection(basePod({}, { 'sidecar.istio.io/inject': 'false', 'sidecar.istio.io/proxyCPU': 'lots' }), enabled, template, values);
    expect(plan.patch).toEqual([]);
  });

  it('rejects bad input with typed errors', () => {
    expect(code(() => planInjection('pod', enabled, template, values))).toBe('POD_INVALID');
    expect(code(() => planInjection({ spec: { containers: [] } }, enabled, template, values))).toBe('POD_INVALID');
    expect(code(() => planInjection({ kind: 'Service', spec: {} }, enabled, template, values))).toBe('POD_INVALID');
    expect(code(() => planInjection(basePod({}, { 'traffic.sidecar.istio.io/excludeOutboundPorts': '80,http' }), enabled, template, values))).toBe('ANNOTATION_INVALID');
    expect(code(() => planInjection(basePod({}, { 'traffic.sidecar.istio.io/excludeOutboundIPRanges': '10.0.0.0/33' }), enabled, template, values))).toBe('ANNOTATION_INVALID');
    expect(code(() => planInjection(basePod({}, { 'sidecar.istio.io/proxyMemory': '1 GB' }), enabled, template, values))).toBe('ANNOTATION_INVALID');
    expect(code(() => planInjection(basePod({}, { 'proxy.istio.io/config': 'holdApplicationUntilProxyStarts: maybe' }), enabled, template, values))).toBe('ANNOTATION_INVALID');
    expect(code(() => planInjection(basePod({ volumes: [{ name: 'istio-token', emptyDir: {} }] }), enabled, template, values))).toBe('POD_CONFLICT');
    expect(code(() => planInjection(basePod({ initContainers: [{ name: 'aviary-init', image: 'x' }] }), enabled, template, values))).toBe('POD_CONFLICT');
  });

  it('refuses pods that would exceed limits', () => {
    const many = Array.from({ length: 70 }, (_, i) => ({ name: `c${i}`, image: 'x' }));
    expect(code(() => planInjection(basePod({ containers: many }), enabled, template, values))).toBe('INJECTION_LIMITS_EXCEEDED');
    expect(code(() => planInjection(basePod({}, { big: 'x'.repeat(256 * 1024 - 100) }), enabled, template, values))).toBe('INJECTION_LIMITS_EXCEEDED');
  });
});

describe('parseInjectionTemplate', () => {
  it('rejects a template with a missing value, bad YAML or a bad shape', () => {
    expect(code(() => parseInjectionTemplate(templateText.replace('{{ values.pilotAddress }}', '{{ values.nope }}')))).toBe('TEMPLATE_INVALID');
    expect(code(() => parseInjectionTemplate(templateText.replace('{{ values.pilotAddress }}', '{{ nope.x }}')))).toBe('TEMPLATE_INVALID');
    expect(code(() => parseInjectionTemplate('sidecar: [\n'))).toBe('TEMPLATE_INVALID');
    expect(code(() => parseInjectionTemplate('sidecar: {}\n'))).toBe('TEMPLATE_INVALID');
    expect(code(() => parseInjectionTemplate(templateText.replace('name: istio-proxy', 'name: "{{ values.revision }}"')))).toBe('TEMPLATE_INVALID');
  });

  it('renders values into the YAML tree without reinterpreting them', () => {
    const tricky = injectionValues({ pilotAddress: 'x"\n  evil: true' });
    const t = parseInjectionTemplate(templateText, tricky);
    const plan = planInjection(basePod(), enabled, t, tricky);
    const sidecar = (plan.patch.find((o) => o.path === '/spec/containers/-') as { value: { env: { name: string; value?: string }[]; evil?: unknown } }).value;
    expect(sidecar.env.find((e) => e.name === 'AVIARY_PILOT_ADDRESS')!.value).toBe('x"\n  evil: true');
    expect(sidecar.evil).toBeUndefined();
  });
});

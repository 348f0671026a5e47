import { Registry } from 'prom-client';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAdminApp, listenAdmin, type AdminApp } from '@aviary/admin-api';
import type { Pod } from '@aviary/injection';
import { registerPreviewRoute } from './preview';
import { testInjector } from './testing';

const podYaml = `apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: shop
  labels: { app: web }
spec:
  containers:
    - name: web
      image: nginx:1.27
      livenessProbe:
        httpGet: { path: /healthz, port: 80 }
`;

const auth = { authorization: 'Bearer t0ken' };
const yaml = { ...auth, 'content-type': 'application/yaml' };

describe('POST /api/v1/inject/preview', () => {
  const t = testInjector();
  let app: AdminApp;
  beforeAll(async () => {
    app = await buildAdminApp(
      { app: 'injector-webhook', version: 'test', description: 'test', logger: t.logger, registry: new Registry(), adminToken: 't0ken', bodyLimit: 1024 * 1024, readiness: [] },
      (scope) => registerPreviewRoute(scope, t.injector),
    );
  });
  afterAll(async () => app.close());

  it('returns the injected pod as YAML', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/v1/inject/preview', headers: yaml, payload: podYaml });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/application\/yaml/);
    expect(res.headers['x-aviary-injection']).toBe('injected');
    expect(res.headers['x-aviary-injection-reason']).toBe('webhook-selected');
    const pod = parse(res.body) as Pod;
    expect(pod.spec.containers.map((c) => c.name)).toEqual(['web', 'istio-proxy']);
    expect(pod.spec.containers[0]!.livenessProbe!.httpGet!.path).toBe('/app-health/web/livez');
  });

  it('applies the namespace rules when the YAML carries the Namespace', async () => {
    const payload = `apiVersion: v1\nkind: Namespace\nmetadata: { name: shop, labels: { istio-injection: disabled } }\n---\n${podYaml}`;
    const res = await app.inject({ method: 'POST', url: '/api/v1/inject/preview', headers: yaml, payload });
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-aviary-injection']).toBe('skipped');
    expect(res.headers['x-aviary-injection-reason']).toBe('namespace-disabled');
    expect(parse(res.body)).toEqual(parse(podYaml));
  });

  it('injects the pod template of a Deployment and gives the Deployment back', async () => {
    const deployment = `apiVersion: apps/v1
kind: Deployment
metadata: { name: web, namespace: shop }
spec:
  replicas: 2
  selector: { matchLabels: { app: web } }
  template:
    metadata:
      labels: { app: web }
    spec:
      containers:
        - name: web
          image: nginx:1.27
`;
    const res = await app.inject({ method: 'POST', url: '/api/v1/inject/preview', headers: yaml, payload: deployment });
    expect(res.statusCode).toBe(200);
    const out = parse(res.body) as { kind: string; spec: { replicas: number; template: Pod } };
    expect(out.kind).toBe('Deployment');
    expect(out.spec.replicas).toBe(2);
    expect(out.spec.template.spec.containers.map((c) => c.name)).toEqual(['web', 'istio-proxy']);
    expect(out.spec.template.metadata!.namespace).toBeUndefined();
    expect(out.spec.template.metadata!.labels!['security.istio.io/tlsMode']).toBe('istio');
  });

  it('takes and gives JSON', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/v1/inject/preview', headers: { ...auth, accept: 'application/json' }, payload: parse(podYaml) as object });
    expect(res.statusCode).toBe(200);
    expect((res.json() as Pod).spec.initContainers!.map((c) => c.name)).toEqual(['aviary-init']);
  });

  it('answers bad input with 400 and a message', async () => {
    const cases: [string, RegExp][] = [
      ['kind: Pod\nspec: [\n', /not valid YAML/],
      ['kind: Service\nmetadata: { name: x }\n', /exactly one Pod or workload/],
      ['kind: Pod\nmetadata: { name: x }\nspec: { containers: [] }\n', /spec.containers/],
      ['kind: Pod\nmetadata: { name: x, annotations: { sidecar.istio.io/proxyCPU: lots } }\nspec: { containers: [{ name: a, image: a }] }\n', /proxyCPU/],
    ];
    for (const [payload, message] of cases) {
      const res = await app.inject({ method: 'POST', url: '/api/v1/inject/preview', headers: yaml, payload });
      expect(res.statusCode, payload).toBe(400);
      expect((res.json() as { message: string }).message).toMatch(message);
    }
  });

  it('needs the admin token', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/v1/inject/preview', headers: { 'content-type': 'application/yaml' }, payload: podYaml });
    expect(res.statusCode).toBe(401);
  });

  it('refuses an alias bomb (400), 50,000 keys (413) and a duplicate key (400), naming the limit or the key', async () => {
    const lol = ['a: &a [x,x,x,x,x,x,x,x,x,x]'];
    for (let i = 1; i < 9; i++) lol.push(`l${i}: &l${i} [${Array(10).fill(i === 1 ? '*a' : `*l${i - 1}`).join(',')}]`);
    const bomb = await app.inject({ method: 'POST', url: '/api/v1/inject/preview', headers: yaml, payload: lol.join('\n') });
    expect(bomb.statusCode).toBe(400);
    expect(bomb.json()).toMatchObject({ code: 'PREVIEW_INPUT_INVALID', message: expect.stringContaining('too many YAML aliases') });
    const keys = Array.from({ length: 50_000 }, (_, i) => `k${String(i).padStart(5, '0')}: v`).join('\n');
    const many = await app.inject({ method: 'POST', url: '/api/v1/inject/preview', headers: yaml, payload: keys });
    expect(many.statusCode).toBe(413);
    expect(many.json()).toMatchObject({ code: 'PREVIEW_INPUT_TOO_LARGE', details: { limit: 'keys' } });
    const deepJson = await app.inject({ method: 'POST', url: '/api/v1/inject/preview', headers: { ...auth, 'content-type': 'application/json' }, payload: `${'['.repeat(300_000)}${']'.repeat(300_000)}` });
    expect(deepJson.statusCode).toBe(400);
    expect(deepJson.json().message).toContain('deeper than 64');
    const dup = await app.inject({ method: 'POST', url: '/api/v1/inject/preview', headers: yaml, payload: `${podYaml}metadata: {}\n` });
    expect(dup.statusCode).toBe(400);
    expect(dup.json().message).toContain('document 0 (line 13), metadata: duplicate key "metadata"');
  });

  it('answers the 488 KB, 50,000-key document over a socket while /healthz keeps answering on another connection', async () => {
    const port = await listenAdmin(app, '127.0.0.1', 0);
    const base = `http://127.0.0.1:${port}`;
    let running = true;
    let polls = 0;
    let slowestMs = 0;
    const poller = (async () => {
      while (running) {
        const t0 = performance.now();
        const ok = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(5_000) }).then((r) => r.ok, () => false);
        slowestMs = Math.max(slowestMs, ok ? performance.now() - t0 : Infinity);
        polls++;
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    const keys = `${Array.from({ length: 50_000 }, (_, i) => `k${String(i).padStart(5, '0')}: v`).join('\n')}\n`;
    const res = await fetch(`${base}/api/v1/inject/preview`, { method: 'POST', headers: yaml, body: keys });
    running = false;
    await poller;
    expect(res.status).toBe(413);
    expect(polls).toBeGreaterThan(0);
    expect(slowestMs).toBeLessThan(5_000); // answered at all; no finer timing claim on a shared machine
  });
});

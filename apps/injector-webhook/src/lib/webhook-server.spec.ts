import { readFileSync } from 'node:fs';
import fjp, { type Operation } from 'fast-json-patch';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Pod } from '@aviary/injection';
import { testCertificate, testInjector } from './testing';
import { meshValidator } from './validator';
import { buildWebhookServer, type WebhookServer } from './webhook-server';

const reviewFixture = readFileSync(new URL('./__fixtures__/admission-review.json', import.meta.url), 'utf8');
const BODY_LIMIT = 256 * 1024;

function reviewOf(object: unknown, extra: Record<string, unknown> = {}) {
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u-1', kind: { group: '', version: 'v1', kind: 'Pod' }, namespace: 'apps', operation: 'CREATE', object, ...extra } };
}

const virtualService = (weight: number) => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name: 'reviews', namespace: 'bookinfo' },
  spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v1' }, weight }] }] },
});

describe('webhook server', () => {
  const t = testInjector();
  const cert = testCertificate();
  let server: WebhookServer;
  let port: number;
  let agent: Agent;

  beforeAll(async () => {
    server = buildWebhookServer({ injector: t.injector, validator: meshValidator, metrics: t.metrics, logger: t.logger, bodyLimit: BODY_LIMIT, certificate: cert });
    port = await server.listen('127.0.0.1', 0);
    agent = new Agent({ connect: { ca: cert.caPem, servername: 'localhost' } });
  });
  afterAll(async () => {
    await agent.close();
    await server.close();
  });

  const post = (path: string, body: string) => server.app.inject({ method: 'POST', url: path, headers: { 'content-type': 'application/json' }, payload: body });

  it('answers a Kubernetes AdmissionReview over real HTTPS with a patch that injects the pod', async () => {
    const res = await request(`https://localhost:${port}/inject`, { method: 'POST', body: reviewFixture, headers: { 'content-type': 'application/json' }, dispatcher: agent });
    expect(res.statusCode).toBe(200);
    const review = (await res.body.json()) as { apiVersion: string; kind: string; response: { uid: string; allowed: boolean; patchType: string; patch: string } };
    expect(review.apiVersion).toBe('admission.k8s.io/v1');
    expect(review.kind).toBe('AdmissionReview');
    expect(review.response.uid).toBe('705ab4f5-6393-11e8-b7cc-42010a800002');
    expect(review.response.allowed).toBe(true);
    expect(review.response.patchType).toBe('JSONPatch');
    const patch = JSON.parse(Buffer.from(review.response.patch, 'base64').toString('utf8')) as Operation[];
    const original = (JSON.parse(reviewFixture) as { request: { object: Pod } }).request.object;
    const pod = fjp.applyPatch(structuredClone(original), patch, true, false).newDocument;
    expect(pod.spec.containers.map((c) => c.name)).toEqual(['productpage', 'istio-proxy']);
    expect(pod.spec.initContainers!.map((c) => c.name)).toEqual(['aviary-init']);
    expect(pod.spec.volumes!.slice(0, 2)).toEqual(original.spec.volumes);
    expect(pod.spec.containers[0]!.readinessProbe!.httpGet).toEqual({ path: '/app-health/productpage/readyz', port: 15020, scheme: 'HTTP' });
    const probers = (pod.spec.containers[1]!['env'] as { name: string; value?: string }[]).find((e) => e.name === 'ISTIO_KUBE_APP_PROBERS')!.value!;
    expect(JSON.parse(probers)).toEqual({ '/app-health/productpage/readyz': { httpGet: { path: '/health', port: 9080, scheme: 'HTTP' }, timeoutSeconds: 1 } });
    expect(pod.metadata!.labels!['service.istio.io/canonical-name']).toBe('productpage');
    expect(JSON.parse(pod.metadata!.annotations!['sidecar.istio.io/status']!).containers).toEqual(['istio-proxy']);
  });

  it('answers a second pass of the injected pod with no patch (idempotent)', async () => {
    const first = (await post('/inject', reviewFixture)).json() as { response: { patch: string } };
    const original = (JSON.parse(reviewFixture) as { request: { object: Pod } }).request.object;
    const injected = fjp.applyPatch(structuredClone(original), JSON.parse(Buffer.from(first.response.patch, 'base64').toString()) as Operation[], true, false).newDocument;
    const second = (await post('/inject', JSON.stringify(reviewOf(injected)))).json() as { response: { allowed: boolean; patch?: string } };
    expect(second.response).toEqual({ uid: 'u-1', allowed: true });
  });

  it('leaves opted-out pods, other kinds and other operations alone', async () => {
    const pod = { metadata: { name: 'x', annotations: { 'sidecar.istio.io/inject': 'false' } }, spec: { containers: [{ name: 'a', image: 'a' }] } };
    expect(((await post('/inject', JSON.stringify(reviewOf(pod)))).json() as { response: unknown }).response).toEqual({ uid: 'u-1', allowed: true });
    const svc = reviewOf({ kind: 'Service' }, { kind: { group: '', version: 'v1', kind: 'Service' } });
    expect(((await post('/inject', JSON.stringify(svc))).json() as { response: unknown }).response).toEqual({ uid: 'u-1', allowed: true });
    const update = reviewOf(pod, { operation: 'UPDATE' });
    expect(((await post('/inject', JSON.stringify(update))).json() as { response: unknown }).response).toEqual({ uid: 'u-1', allowed: true });
  });

  it('answers bad reviews with HTTP 400/413 and a clear message, and keeps serving', async () => {
    const cases: [string, number, RegExp][] = [
      ['{"kind": "AdmissionReview", ', 400, /not valid JSON/],
      ['[]', 400, /AdmissionReview object/],
      [JSON.stringify({ ...reviewOf({}), kind: 'Pod' }), 400, /kind must be AdmissionReview/],
      [JSON.stringify({ ...reviewOf({}), apiVersion: 'admission.k8s.io/v1beta1' }), 400, /apiVersion must be admission.k8s.io\/v1/],
      [JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { object: {} } }), 400, /request.uid/],
      [JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }), 400, /request is missing/],
      [JSON.stringify(reviewOf({ spec: {} }, { padding: 'x'.repeat(BODY_LIMIT) })), 413, /larger than/],
    ];
    for (const path of ['/inject', '/validate']) {
      for (const [body, status, message] of cases) {
        const res = await post(path, body);
        expect(res.statusCode, `${path} ${body.slice(0, 60)}`).toBe(status);
        expect((res.json() as { message: string }).message).toMatch(message);
      }
    }
    const ok = await post('/inject', reviewFixture);
    expect(ok.statusCode).toBe(200);
  });

  it('refuses pods it cannot inject with allowed:false and a Status message', async () => {
    const cases: [unknown, RegExp][] = [
      [{ metadata: { name: 'x' }, spec: { containers: [] } }, /spec.containers/],
      [null, /pod: must be an object/],
      [{ metadata: { name: 'x', annotations: { 'traffic.sidecar.istio.io/excludeOutboundPorts': 'all' } }, spec: { containers: [{ name: 'a', image: 'a' }] } }, /excludeOutboundPorts/],
      [{ metadata: { name: 'x' }, spec: { containers: Array.from({ length: 80 }, (_, i) => ({ name: `c${i}`, image: 'a' })) } }, /exceed/],
    ];
    for (const [pod, message] of cases) {
      const res = await post('/inject', JSON.stringify(reviewOf(pod)));
      expect(res.statusCode).toBe(200);
      const { response } = res.json() as { response: { uid: string; allowed: boolean; status: { code: number; message: string } } };
      expect(response.uid).toBe('u-1');
      expect(response.allowed).toBe(false);
      expect(response.status.code).toBe(400);
      expect(response.status.message).toMatch(message);
    }
  });

  it('validates mesh config with @aviary/mesh-validation, with field paths in the message', async () => {
    const valid = await post('/validate', JSON.stringify(reviewOf(virtualService(100), { kind: { group: 'networking.istio.io', version: 'v1', kind: 'VirtualService' }, name: 'reviews' })));
    expect((valid.json() as { response: { allowed: boolean } }).response.allowed).toBe(true);
    const invalid = await post('/validate', JSON.stringify(reviewOf(virtualService(-5), { kind: { group: 'networking.istio.io', version: 'v1', kind: 'VirtualService' }, name: 'reviews', namespace: 'bookinfo' })));
    const { response } = invalid.json() as { response: { uid: string; allowed: boolean; status: { message: string } } };
    expect(response.uid).toBe('u-1');
    expect(response.allowed).toBe(false);
    expect(response.status.message).toMatch(/^VirtualService bookinfo\/reviews is invalid: .*spec\.http\[0\]\.route\[0\]\.weight/);
    const deletion = await post('/validate', JSON.stringify(reviewOf(null, { operation: 'DELETE' })));
    expect((deletion.json() as { response: { allowed: boolean } }).response.allowed).toBe(true);
  });

  it('counts every review by result and reason', async () => {
    const text = await t.registry.metrics();
    expect(text).toMatch(/aviary_injector_reviews_total\{webhook="inject",result="injected",reason="webhook-selected"\} \d+/);
    expect(text).toMatch(/aviary_injector_reviews_total\{webhook="inject",result="skipped",reason="already-injected"\} 1/);
    expect(text).toMatch(/aviary_injector_reviews_total\{webhook="inject",result="error",reason="malformed-review"\} 6/);
    expect(text).toMatch(/aviary_injector_reviews_total\{webhook="inject",result="error",reason="body-too-large"\} 1/);
    expect(text).toMatch(/aviary_injector_reviews_total\{webhook="validate",result="denied",reason="invalid"\} 1/);
    expect(text).toMatch(/aviary_injector_review_duration_seconds_count\{webhook="inject"\} \d+/);
  });

  it('swaps its certificate for new connections without a restart', async () => {
    const next = testCertificate();
    server.setCertificate(next);
    const fresh = new Agent({ connect: { ca: next.caPem, servername: 'localhost' } });
    const stale = new Agent({ connect: { ca: cert.caPem, servername: 'localhost' } });
    try {
      const res = await request(`https://localhost:${port}/inject`, { method: 'POST', body: reviewFixture, dispatcher: fresh });
      expect(res.statusCode).toBe(200);
      await res.body.dump();
      await expect(request(`https://localhost:${port}/inject`, { method: 'POST', body: reviewFixture, dispatcher: stale })).rejects.toThrow(/certificate/i);
    } finally {
      await fresh.close();
      await stale.close();
    }
  });
});

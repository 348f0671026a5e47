import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalMesh, root } from '../support/mesh';
import { getAs, HELLO_VERSION_SERVICES, PILOT, remove, until, type Answer } from '../support/demo';

/**
 * The Kubernetes Gateway API in the local mesh demo, with real Envoys: Gateways of Aviary's
 * classes are served by the launcher's ingress (pilot's gatewayApiSelector is its
 * istio=ingressgateway), listener port 80 bound at 8080. An HTTPRoute splits 90/10 between two
 * Services (hello-v1 and hello-v2, the demo's two versions) with a header match sending canary
 * traffic to v2, over the demo's mTLS to the sidecars; its filters answer; status is written; and
 * Istio's helloworld Gateway-API sample (samples/helloworld/gateway-api, its documented shape)
 * applies unchanged and routes.
 */

let mesh: LocalMesh;

beforeAll(async () => {
  mesh = await LocalMesh.start({ args: ['--demo', '--keep-going'] });
}, 120_000);

afterAll(async () => {
  await mesh?.stop();
});

/** One request to the ingress (127.0.0.1:8080) with a chosen Host header, on a fresh connection. */
const call = (host: string, path: string, headers: Record<string, string> = {}): Promise<Answer> => getAs(host, path, { headers, agent: false });

async function applyYaml(yaml: string, namespace: string): Promise<{ results: { kind: string; name: string; action: string }[] }> {
  const res = await fetch(`${PILOT}/api/v1/config?namespace=${namespace}`, { method: 'POST', headers: { authorization: `Bearer ${mesh.token}`, 'content-type': 'application/yaml' }, body: yaml });
  const text = await res.text();
  expect(res.status, text).toBe(200);
  return JSON.parse(text) as { results: { kind: string; name: string; action: string }[] };
}

type Conditions = { type: string; status: string; reason: string }[];
const conditionText = (c: Conditions | undefined) => (c ?? []).map((x) => `${x.type}=${x.status}/${x.reason}`).join(',');

const HOSTNAME = 'hello.gateway-api.test';

const gatewayAndRoute = `
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: web }
spec:
  gatewayClassName: aviary
  listeners:
  - { name: http, port: 80, protocol: HTTP, hostname: "*.gateway-api.test" }
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: hello }
spec:
  parentRefs: [{ name: web }]
  hostnames: [${HOSTNAME}]
  rules:
  - matches:
    - headers: [{ name: x-canary, value: "true" }]
    backendRefs: [{ name: hello-v2, port: 80 }]
  - matches:
    - path: { type: PathPrefix, value: /teapot }
    filters:
    - type: URLRewrite
      urlRewrite: { path: { type: ReplaceFullPath, replaceFullPath: /status/418 } }
    backendRefs: [{ name: hello-v1, port: 80 }]
  - matches:
    - path: { type: PathPrefix, value: /docs }
    filters:
    - type: RequestRedirect
      requestRedirect: { path: { type: ReplacePrefixMatch, replacePrefixMatch: /manual } }
  - matches:
    - path: { type: Exact, value: /old }
    filters:
    - type: RequestRedirect
      requestRedirect: { hostname: new.gateway-api.test, path: { type: ReplaceFullPath, replaceFullPath: /new }, statusCode: 301 }
  - filters:
    - type: ResponseHeaderModifier
      responseHeaderModifier: { set: [{ name: x-gateway-api, value: split }] }
    backendRefs:
    - { name: hello-v1, port: 80, weight: 90 }
    - { name: hello-v2, port: 80, weight: 10 }
`;

describe('Gateway API through the local ingress', () => {
  it('applies a Gateway and an HTTPRoute, and the route reports Accepted and ResolvedRefs', async () => {
    await applyYaml(HELLO_VERSION_SERVICES, 'demo');
    const applied = await applyYaml(gatewayAndRoute, 'demo');
    expect(applied.results.map((r) => `${r.kind}/${r.name} ${r.action}`)).toEqual(['KubernetesGateway/web created', 'HTTPRoute/hello created']);
    const route = await until('HTTPRoute status', async () => {
      const r = (await (await fetch(`${PILOT}/api/v1/config/httproutes/demo/hello`)).json()) as { kind: string; status?: { parents?: { conditions: Conditions }[] } };
      return r.status?.parents?.length === 1 ? r : undefined;
    });
    expect(route.kind).toBe('HTTPRoute');
    expect(conditionText(route.status!.parents![0]!.conditions)).toBe('Accepted=True/Accepted,ResolvedRefs=True/ResolvedRefs');
    const gw = (await (await fetch(`${PILOT}/api/v1/config/gateways.gateway.networking.k8s.io/demo/web`)).json()) as { kind: string; status: { conditions: Conditions; listeners: { attachedRoutes: number }[] } };
    expect(gw.kind).toBe('Gateway');
    expect(conditionText(gw.status.conditions)).toBe('Accepted=True/Accepted,Programmed=True/Programmed');
    expect(gw.status.listeners[0]!.attachedRoutes).toBe(1);
  });

  it('splits 90/10 between the two Services, with the response header filter', async () => {
    await until('the route to answer', async () => ((await call(HOSTNAME, '/')).headers.get('x-gateway-api') === 'split' ? true : undefined), 30_000);
    const counts = { v1: 0, v2: 0, other: 0 };
    for (let i = 0; i < 300; i++) {
      const r = await call(HOSTNAME, `/?i=${i}`);
      const v = r.status === 200 ? /hello from hello (v[12])/.exec(r.body)?.[1] : undefined;
      if (v === 'v1') counts.v1++;
      else if (v === 'v2') counts.v2++;
      else counts.other++;
    }
    console.log(`HTTPRoute 90/10 over 300 requests: ${JSON.stringify(counts)}`);
    expect(counts.other).toBe(0);
    // Binomial(300, 0.1): mean 30, sd 5.2; the bounds are beyond 4 sd.
    expect(counts.v2).toBeGreaterThanOrEqual(9);
    expect(counts.v2).toBeLessThanOrEqual(52);
  });

  it('sends every request with the canary header to v2', async () => {
    for (let i = 0; i < 20; i++) {
      const r = await call(HOSTNAME, '/', { 'x-canary': 'true' });
      expect(r.status).toBe(200);
      expect(r.body).toContain('hello from hello v2');
      expect(r.headers.get('x-gateway-api')).toBeNull(); // that rule's filter is not this one's
    }
  });

  it('rewrites the path (URLRewrite) and redirects (RequestRedirect, ReplaceFullPath and ReplacePrefixMatch)', async () => {
    expect((await call(HOSTNAME, '/teapot')).status).toBe(418);
    const redirect = await call(HOSTNAME, '/old');
    expect(redirect.status).toBe(301);
    // No port given: the listener's (80), the scheme's well-known one, so none in Location.
    expect(redirect.headers.get('location')).toBe('http://new.gateway-api.test/new');
    // ReplacePrefixMatch by path element: /docs/a → /manual/a, /docs → /manual; /docsx is not /docs.
    expect((await call(HOSTNAME, '/docs/guide/intro')).headers.get('location')).toBe(`http://${HOSTNAME}/manual/guide/intro`);
    expect((await call(HOSTNAME, '/docs')).headers.get('location')).toBe(`http://${HOSTNAME}/manual`);
    expect((await call(HOSTNAME, '/docsx')).status).toBe(200);
  });

  it('a route to a missing Service reports BackendNotFound and answers 500', async () => {
    await applyYaml(
      `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: broken }
spec:
  parentRefs: [{ name: web }]
  hostnames: [broken.gateway-api.test]
  rules: [{ backendRefs: [{ name: nowhere, port: 80 }] }]
`,
      'demo',
    );
    const status = await until('broken route status', async () => {
      const r = (await (await fetch(`${PILOT}/api/v1/config/httproutes/demo/broken`)).json()) as { status?: { parents?: { conditions: Conditions }[] } };
      return r.status?.parents?.[0];
    });
    expect(conditionText(status.conditions)).toBe('Accepted=True/Accepted,ResolvedRefs=False/BackendNotFound');
    await until('500 from the broken route', async () => ((await call('broken.gateway-api.test', '/')).status === 500 ? true : undefined), 30_000);
  });

  it('timeouts.backendRequest: a backend slower than it answers 504, "0s" disables it', async () => {
    await applyYaml(
      `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: slow }
spec:
  parentRefs: [{ name: web }]
  hostnames: [slow.gateway-api.test]
  rules:
  - matches: [{ headers: [{ name: x-no-timeout, value: "true" }] }]
    backendRefs: [{ name: hello-v1, port: 80 }]
    timeouts: { backendRequest: 0s }
  - filters:
    - type: ResponseHeaderModifier
      responseHeaderModifier: { set: [{ name: x-gateway-api, value: slow }] }
    backendRefs: [{ name: hello-v1, port: 80 }]
    timeouts: { backendRequest: 500ms }
`,
      'demo',
    );
    // Until then the demo's catch-all VirtualService (host '*') answers: wait for this route's header.
    await until('the slow route to answer', async () => ((await call('slow.gateway-api.test', '/')).headers.get('x-gateway-api') === 'slow' ? true : undefined), 30_000);
    // The demo service answers /delay-if/v1/<ms> after <ms> ms (as the conformance test's ?delay=1s).
    expect((await call('slow.gateway-api.test', '/delay-if/v1/1000')).status).toBe(504);
    const unbounded = await call('slow.gateway-api.test', '/delay-if/v1/1000', { 'x-no-timeout': 'true' });
    expect(unbounded.status).toBe(200);
    expect(unbounded.body).toContain('hello from hello v1');
  });

  it("Istio's helloworld Gateway-API sample applies unchanged (gatewayClassName istio) and routes /hello", async () => {
    // The sample, as samples/helloworld/gateway-api/helloworld-gateway.yaml documents it.
    const sample = `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: helloworld-gateway
spec:
  gatewayClassName: istio
  listeners:
  - name: http
    port: 80
    protocol: HTTP
    allowedRoutes:
      namespaces:
        from: Same
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: helloworld
spec:
  parentRefs:
  - name: helloworld-gateway
  rules:
  - matches:
    - path:
        type: Exact
        value: /hello
    backendRefs:
    - name: helloworld
      port: 5000
`;
    // Its backend: the Service helloworld:5000, here the demo's v2 workload.
    await applyYaml(
      `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: helloworld }
spec:
  hosts: [helloworld.demo.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 5000, name: http, protocol: HTTP }]
  workloadSelector: { labels: { app: hello, version: v2 } }
`,
      'demo',
    );
    // The demo's own catch-all VirtualService on the same port and host '*' goes first.
    await remove(mesh, 'virtualservices', 'hello');
    await applyYaml(sample, 'demo');
    // Pushed once the demo's catch-all no longer answers and /hello reaches the sample's backend.
    await until('/hello through the sample', async () => ((await call('localhost', '/nothing')).status === 404 && (await call('localhost', '/hello')).body.includes('hello from hello v2') ? true : undefined), 30_000);
    for (let i = 0; i < 10; i++) expect((await call('localhost', '/hello')).body).toContain('hello from hello v2');
    expect((await call('localhost', '/hello/more')).status).toBe(404); // Exact
    const route = (await (await fetch(`${PILOT}/api/v1/config/httproutes/demo/helloworld`)).json()) as { status?: { parents?: { conditions: Conditions }[] } };
    expect(conditionText(route.status?.parents?.[0]?.conditions)).toBe('Accepted=True/Accepted,ResolvedRefs=True/ResolvedRefs');
  });

  it("Istio's bookinfo and httpbin Gateway-API samples apply verbatim beside helloworld and route by path", async () => {
    // The manifests verbatim (libs/xds/translate/src/__fixtures__/istio-gateway-api-samples); their
    // Services productpage:9080 and httpbin:8000 are ServiceEntries to the demo's v1 and v2 workloads.
    const samples = join(root, 'libs', 'xds', 'translate', 'src', '__fixtures__', 'istio-gateway-api-samples');
    const serviceEntry = (name: string, port: number, version: string) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name} }
spec:
  hosts: [${name}.demo.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${port}, name: http, protocol: HTTP }]
  workloadSelector: { labels: { app: hello, version: ${version} } }
`;
    await applyYaml(`${serviceEntry('productpage', 9080, 'v1')}---\n${serviceEntry('httpbin', 8000, 'v2')}`, 'demo');
    for (const file of ['bookinfo-bookinfo-gateway.yaml', 'httpbin-httpbin-gateway.yaml']) await applyYaml(readFileSync(join(samples, file), 'utf8'), 'demo');
    // Three Gateways on port 80 without hostnames share the ingress's port: routes are ordered by
    // the Gateway API's precedence across them (Exact and longer prefixes before httpbin's `/`).
    const version = async (path: string) => /hello from hello (v\d)/.exec((await call('localhost', path)).body)?.[1];
    await until('bookinfo and httpbin routed', async () => ((await version('/productpage')) === 'v1' && (await version('/headers')) === 'v2' ? true : undefined), 30_000);
    const seen: Record<string, string | undefined> = {};
    for (const path of ['/productpage', '/static/app.css', '/login', '/logout', '/api/v1/products/1', '/hello', '/headers', '/productpage/x']) seen[path] = await version(path);
    expect(seen).toEqual({
      '/productpage': 'v1',
      '/static/app.css': 'v1',
      '/login': 'v1',
      '/logout': 'v1',
      '/api/v1/products/1': 'v1',
      '/hello': 'v2', // helloworld's Exact /hello (its backend is v2)
      '/headers': 'v2', // httpbin: everything else
      '/productpage/x': 'v2', // bookinfo's /productpage is Exact
    });
    for (const [plural, name] of [['httproutes', 'bookinfo'], ['httproutes', 'httpbin']] as const) {
      const route = (await (await fetch(`${PILOT}/api/v1/config/${plural}/demo/${name}`)).json()) as { status?: { parents?: { conditions: Conditions }[] } };
      expect(conditionText(route.status?.parents?.[0]?.conditions), name).toBe('Accepted=True/Accepted,ResolvedRefs=True/ResolvedRefs');
    }
  });
});

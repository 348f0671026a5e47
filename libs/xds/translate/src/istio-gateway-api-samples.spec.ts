import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { withStoredKind } from '@aviary/mesh-api';
import { buildSnapshot, parseNode, type ModelObject } from '@aviary/mesh-model';
import { validate } from '@aviary/mesh-validation';
import { initXdsRoot } from '@aviary/xds-protos';
import { envoyValidate, testEnvoy } from '@aviary/testing';
import type { Msg } from './envoy';
import { staticBootstrap } from './__fixtures__/static-bootstrap';
import { translate } from './translate';

/**
 * Istio's Gateway API samples (bookinfo, httpbin, helloworld, tcp-echo: their `gateway-api/`
 * manifests, verbatim in __fixtures__/istio-gateway-api-samples) validate as Aviary's REST API
 * and CLI validate them, attach with every route Accepted and ResolvedRefs, and translate into
 * router (and, for Bookinfo's mesh routes, sidecar) config that upstream Envoy accepts, with the
 * routes the samples document. The one adaptation: local mode has no Kubernetes Services, so the
 * `v1 Service` objects of a sample (tcp-echo-all-v1.yaml) and the Services its Deployments would
 * bring become ServiceEntries of the same host, ports and selector (`asServiceEntry`).
 */

initXdsRoot({ extraFiles: ['envoy/config/bootstrap/v3/bootstrap.proto'] });
const envoy = testEnvoy({ override: process.env['AVIARY_ENVOY_PATH'], ci: Boolean(process.env['CI']) });
const NS = 'default';

type Doc = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string }; spec: Record<string, unknown> };

function sample(file: string): Doc[] {
  const text = readFileSync(fileURLToPath(new URL(`./__fixtures__/istio-gateway-api-samples/${file}`, import.meta.url)), 'utf8');
  return parseAllDocuments(text)
    .map((d) => d.toJS() as Doc | null)
    .filter((d): d is Doc => d !== null);
}

/** A Kubernetes Service (ports, selector) as the ServiceEntry local mode uses in its place. */
function asServiceEntry(name: string, ports: readonly { port: number; name: string }[], selector: Record<string, string>): Doc {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name, namespace: NS },
    spec: { hosts: [`${name}.${NS}.svc.cluster.local`], location: 'MESH_INTERNAL', resolution: 'STATIC', ports: ports.map((p) => ({ number: p.port, name: p.name, protocol: p.name.startsWith('tcp') ? 'TCP' : 'HTTP' })), workloadSelector: { labels: selector } },
  };
}

/** One workload per app/version the samples' Deployments run, so every Service has an endpoint. */
function workload(app: string, version: string, i: number): Doc {
  return { apiVersion: 'networking.istio.io/v1', kind: 'WorkloadEntry', metadata: { name: `${app}-${version}`, namespace: NS }, spec: { address: `10.5.0.${i}`, labels: { app, version } } };
}

/** The sample's objects as stored: Gateway API kinds validated first (with their paths), v1 Services adapted. */
function load(files: readonly string[], services: readonly Doc[], workloads: readonly Doc[]): ModelObject[] {
  const docs: Doc[] = [...services, ...workloads];
  for (const file of files) {
    for (const d of sample(file)) {
      if (d.apiVersion === 'v1' && d.kind === 'Service') {
        const spec = d.spec as { ports: { port: number; name: string }[]; selector: Record<string, string> };
        docs.push(asServiceEntry(d.metadata.name, spec.ports, spec.selector));
        continue;
      }
      const manifest = { ...d, metadata: { ...d.metadata, namespace: NS } };
      expect(validate(manifest).errors, `${file} ${d.kind}/${d.metadata.name}`).toEqual([]);
      // A later file replaces an object of the same kind and name, as `kubectl apply` does.
      const at = docs.findIndex((x) => x.kind === d.kind && x.metadata.name === d.metadata.name);
      if (at >= 0) docs.splice(at, 1, manifest);
      else docs.push(manifest);
    }
  }
  return docs.map((d) => withStoredKind({ ...d, metadata: { namespace: NS, ...d.metadata } } as unknown as ModelObject));
}

function snapshotOf(objects: ModelObject[]) {
  const s = buildSnapshot(objects, { trustDomain: 'cluster.local' });
  for (const st of s.gatewayApi.statuses) {
    const conds = (st.status['parents'] as { conditions: { type: string; status: string; reason: string }[] }[] | undefined)?.flatMap((p) => p.conditions) ?? (st.status['conditions'] as { type: string; status: string; reason: string }[]);
    for (const c of conds) expect(`${st.ref.kind}/${st.ref.name} ${c.type}=${c.status}`).toBe(`${st.ref.kind}/${st.ref.name} ${c.type}=True`);
  }
  return s;
}

/** Every upstream a proxy's listeners and routes send to, with weights: `cluster` or `cluster*weight`. */
function upstreams(r: { readonly listeners: readonly { readonly resource: Msg }[]; readonly routes: readonly { readonly resource: Msg }[] }, filter: (where: string) => boolean): string[] {
  const out: string[] = [];
  const walk = (v: unknown, where: string) => {
    if (Array.isArray(v)) v.forEach((x) => walk(x, where));
    else if (v !== null && typeof v === 'object') {
      const m = v as Msg;
      if (typeof m['cluster'] === 'string' && filter(where)) out.push(m['cluster']);
      const wc = m['weighted_clusters'] as { clusters: { name: string; weight: unknown }[] } | undefined;
      if (wc !== undefined && filter(where)) out.push(wc.clusters.map((c) => `${c.name}*${typeof c.weight === 'object' ? (c.weight as { value: number }).value : String(c.weight)}`).join(' + '));
      for (const [k, x] of Object.entries(m)) if (k !== 'weighted_clusters') walk(x, where);
    }
  };
  for (const l of r.listeners) walk(l.resource, `listener ${l.resource['name'] as string}`);
  for (const rt of r.routes) walk(rt.resource, `route ${rt.resource['name'] as string}`);
  return [...new Set(out)].sort();
}

function routerFor(gateway: string) {
  return parseNode({ id: `router~10.5.9.1~${gateway}-istio-6d8f.${NS}~${NS}.svc.cluster.local`, metadata: { NAMESPACE: NS, LABELS: { 'gateway.networking.k8s.io/gateway-name': gateway } } });
}

function envoyAccepts(kind: 'router' | 'sidecar', r: ReturnType<typeof translate>): void {
  if (envoy.skip !== undefined) return;
  const result = envoyValidate(envoy.path!, staticBootstrap(`${kind}~10.0.0.1~validate.default~default.svc.cluster.local`, r));
  expect(result.ok, result.output).toBe(true);
}

const c = (port: number, host: string) => `outbound|${port}||${host}.${NS}.svc.cluster.local`;

describe("Istio's Gateway API samples apply and route through Aviary", () => {
  it('bookinfo: the gateway routes the product page paths to productpage; its mesh routes send reviews 90/10 (route-reviews-90-10 over route-all-v1)', () => {
    const services = ['productpage', 'reviews', 'ratings', 'details'].flatMap((app) => [asServiceEntry(app, [{ port: 9080, name: 'http' }], { app }), ...['v1', 'v2', 'v3'].map((v) => asServiceEntry(`${app}-${v}`, [{ port: 9080, name: 'http' }], { app, version: v }))]);
    const workloads = ['productpage', 'reviews', 'ratings', 'details'].flatMap((app, i) => ['v1', 'v2', 'v3'].map((v, j) => workload(app, v, i * 3 + j + 1)));
    const s = snapshotOf(load(['bookinfo-bookinfo-gateway.yaml', 'bookinfo-route-all-v1.yaml', 'bookinfo-route-reviews-90-10.yaml'], services, workloads));
    const router = translate(routerFor('bookinfo-gateway'), s);
    expect(router.listeners.map((l) => l.name)).toEqual(['0.0.0.0_8080']);
    expect(upstreams(router, () => true)).toEqual([c(9080, 'productpage')]);
    const paths = JSON.stringify(router.routes[0]!.resource);
    for (const p of ['"path":"/productpage"', '"path":"/login"', '"path":"/logout"', '"prefix":"/static/"', '"prefix":"/api/v1/products/"']) expect(paths).toContain(p);
    envoyAccepts('router', router);
    const sidecar = translate(parseNode({ id: `sidecar~10.5.0.1~productpage-v1-1.${NS}~${NS}.svc.cluster.local`, metadata: { NAMESPACE: NS, LABELS: { app: 'productpage', version: 'v1' } } }), s);
    const mesh = upstreams(sidecar, (w) => w.startsWith('route 9080'));
    expect(mesh).toContain(`${c(9080, 'reviews-v1')}*90 + ${c(9080, 'reviews-v2')}*10`);
    expect(mesh).toContain(c(9080, 'ratings-v1'));
    expect(mesh).toContain(c(9080, 'details-v1'));
    envoyAccepts('sidecar', sidecar);
  });

  it('httpbin: every path on port 80 (bound 8080) to httpbin:8000', () => {
    const s = snapshotOf(load(['httpbin-httpbin-gateway.yaml'], [asServiceEntry('httpbin', [{ port: 8000, name: 'http' }], { app: 'httpbin' })], [workload('httpbin', 'v1', 1)]));
    const router = translate(routerFor('httpbin-gateway'), s);
    expect(router.listeners.map((l) => l.name)).toEqual(['0.0.0.0_8080']);
    expect(upstreams(router, () => true)).toEqual([c(8000, 'httpbin')]);
    envoyAccepts('router', router);
  });

  it('helloworld: /hello to helloworld:5000, then 90/10 between helloworld-v1 and -v2 (helloworld-route.yaml; helloworld-versions.yaml as ServiceEntries)', () => {
    const services = [asServiceEntry('helloworld', [{ port: 5000, name: 'http' }], { app: 'helloworld' }), ...['v1', 'v2'].map((v) => asServiceEntry(`helloworld-${v}`, [{ port: 5000, name: 'http' }], { app: 'helloworld', version: v }))];
    const workloads = [workload('helloworld', 'v1', 1), workload('helloworld', 'v2', 2)];
    const first = snapshotOf(load(['helloworld-helloworld-gateway.yaml'], services, workloads));
    expect(upstreams(translate(routerFor('helloworld-gateway'), first), () => true)).toEqual([c(5000, 'helloworld')]);
    const s = snapshotOf(load(['helloworld-helloworld-gateway.yaml', 'helloworld-helloworld-route.yaml'], services, workloads));
    const router = translate(routerFor('helloworld-gateway'), s);
    expect(upstreams(router, () => true)).toEqual([`${c(5000, 'helloworld-v1')}*90 + ${c(5000, 'helloworld-v2')}*10`]);
    expect(JSON.stringify(router.routes[0]!.resource)).toContain('"path":"/hello"');
    envoyAccepts('router', router);
  });

  it('tcp-echo: a TCP listener on 31400 to tcp-echo-v1 (tcp-echo-all-v1.yaml, its Services as ServiceEntries), then 80/20 with v2 (tcp-echo-20-v2.yaml)', () => {
    const workloads = [workload('tcp-echo', 'v1', 1), workload('tcp-echo', 'v2', 2)];
    const all = snapshotOf(load(['tcp-echo-tcp-echo-all-v1.yaml'], [], workloads));
    const first = translate(routerFor('tcp-echo-gateway'), all);
    expect(first.listeners.map((l) => l.name)).toEqual(['0.0.0.0_31400']);
    expect(upstreams(first, () => true)).toEqual([c(9000, 'tcp-echo-v1')]);
    envoyAccepts('router', first);
    const s = snapshotOf(load(['tcp-echo-tcp-echo-all-v1.yaml', 'tcp-echo-tcp-echo-20-v2.yaml'], [], workloads));
    const router = translate(routerFor('tcp-echo-gateway'), s);
    expect(upstreams(router, () => true)).toEqual([`${c(9000, 'tcp-echo-v1')}*80 + ${c(9000, 'tcp-echo-v2')}*20`]);
    const status = s.gatewayApi.statuses.find((x) => x.ref.kind === 'KubernetesGateway')!.status['listeners'] as { attachedRoutes: number; supportedKinds: { kind: string }[] }[];
    expect(status).toMatchObject([{ attachedRoutes: 1, supportedKinds: [{ kind: 'TCPRoute' }] }]);
    envoyAccepts('router', router);
  });
});

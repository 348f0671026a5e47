import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { buildAdminApp, type AdminApp } from '@aviary/admin-api';
import { KvConfigStore } from '@aviary/config-store';
import { Bus } from '@aviary/events';
import { buildSnapshot } from '@aviary/mesh-model';
import { NatsServer } from '@aviary/nats-runner';
import { configApi } from '../config-api';
import { GatewayStatusWriter, merge } from './status-writer';
import type { GatewayInfra } from '@aviary/k8s';

const logger = pino({ level: 'silent' });
const auth = { authorization: 'Bearer t0ken', 'content-type': 'application/yaml' };
let nats: NatsServer;
let bus: Bus;
let store: KvConfigStore;
let app: AdminApp;

beforeAll(async () => {
  nats = await NatsServer.start();
  bus = await Bus.connect({ url: nats.url, source: 'test', logger, registry: new Registry() });
  store = await KvConfigStore.open(bus, { bucket: 'gwapi_status' });
  app = await buildAdminApp(
    { app: 'pilot', version: 't', description: 't', logger, registry: new Registry(), adminToken: 't0ken', bodyLimit: 64 * 1024, readiness: [] },
    configApi({ store, limits: { maxDocuments: 50, maxKeys: 20_000 } }),
  );
});
afterAll(async () => {
  await app?.close();
  await bus?.close();
  await nats?.stop();
});

const manifests = `
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: { name: aviary }
spec: { controllerName: aviary.dev/gateway-controller }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: hello }
spec: { hosts: [hello.web.svc.cluster.local], resolution: STATIC, ports: [{ number: 80, name: http, protocol: HTTP }], workloadSelector: { labels: { app: hello } } }
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: { name: gw }
spec:
  gatewayClassName: aviary
  listeners: [{ name: http, port: 80, protocol: HTTP }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: hello }
spec:
  parentRefs: [{ name: gw }, { name: gw, sectionName: nope }]
  rules: [{ backendRefs: [{ name: hello, port: 80 }, { name: gone, port: 80 }] }]
`;

describe('Gateway API through the config API and the status writer', () => {
  it('stores the kinds (Gateway as KubernetesGateway, GatewayClass cluster-scoped), serves them back as written, and writes their status', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/v1/config?namespace=web', payload: manifests, headers: auth });
    expect(res.statusCode, res.body).toBe(200);
    expect((res.json() as { results: { kind: string; namespace: string; name: string }[] }).results.map((r) => `${r.kind} ${r.namespace}/${r.name}`)).toEqual([
      'GatewayClass /aviary',
      'ServiceEntry web/hello',
      'KubernetesGateway web/gw',
      'HTTPRoute web/hello',
    ]);
    const gw = await app.inject({ url: '/api/v1/config/gateways.gateway.networking.k8s.io/web/gw' });
    expect(gw.json()).toMatchObject({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', metadata: { name: 'gw', namespace: 'web' } });
    const classes = await app.inject({ url: '/api/v1/config/gatewayclasses' });
    expect((classes.json() as { items: { metadata: { name: string; namespace: string } }[] }).items.map((i) => i.metadata)).toMatchObject([{ name: 'aviary', namespace: '' }]);

    let clock = new Date('2026-01-01T00:00:00Z');
    const writer = new GatewayStatusWriter({ store, logger, now: () => clock });
    await writer.sync(buildSnapshot(await store.list(), { trustDomain: 'cluster.local' }));

    const route = await store.get({ kind: 'HTTPRoute', namespace: 'web', name: 'hello' });
    const parents = route!.status!['parents'] as { parentRef: { name: string; sectionName?: string }; controllerName: string; conditions: { type: string; status: string; reason: string; lastTransitionTime: string }[] }[];
    expect(parents.map((p) => [p.parentRef.sectionName ?? '', p.controllerName, p.conditions.map((c) => `${c.type}=${c.status}/${c.reason}`).join(',')])).toEqual([
      ['', 'aviary.dev/gateway-controller', 'Accepted=True/Accepted,ResolvedRefs=False/BackendNotFound'],
      ['nope', 'aviary.dev/gateway-controller', 'Accepted=False/NoMatchingParent,ResolvedRefs=False/BackendNotFound'],
    ]);
    expect(parents[0]!.conditions[0]!.lastTransitionTime).toBe('2026-01-01T00:00:00.000Z');
    const gateway = await store.get({ kind: 'KubernetesGateway', namespace: 'web', name: 'gw' });
    expect(gateway!.status).toMatchObject({
      conditions: [{ type: 'Accepted', status: 'True' }, { type: 'Programmed', status: 'True' }],
      listeners: [{ name: 'http', attachedRoutes: 1 }],
    });
    const cls = await store.get({ kind: 'GatewayClass', namespace: '', name: 'aviary' });
    expect(cls!.status).toMatchObject({ conditions: [{ type: 'Accepted', status: 'True', reason: 'Accepted' }] });

    // Nothing changed: no write (the resourceVersion stays), and transition times hold.
    const before = (await store.get({ kind: 'KubernetesGateway', namespace: 'web', name: 'gw' }))!.metadata.resourceVersion;
    clock = new Date('2026-01-02T00:00:00Z');
    await writer.sync(buildSnapshot(await store.list(), { trustDomain: 'cluster.local' }));
    expect((await store.get({ kind: 'KubernetesGateway', namespace: 'web', name: 'gw' }))!.metadata.resourceVersion).toBe(before);

    // The route leaves the Gateway: Aviary's parents are removed from its status.
    const moved = await app.inject({ method: 'POST', url: '/api/v1/config?namespace=web', payload: manifests.replace('parentRefs: [{ name: gw }, { name: gw, sectionName: nope }]', 'parentRefs: [{ name: elsewhere }]'), headers: auth });
    expect(moved.statusCode, moved.body).toBe(200);
    await writer.sync(buildSnapshot(await store.list(), { trustDomain: 'cluster.local' }));
    expect((await store.get({ kind: 'HTTPRoute', namespace: 'web', name: 'hello' }))!.status).toEqual({ parents: [] });
    expect((await store.get({ kind: 'KubernetesGateway', namespace: 'web', name: 'gw' }))!.status).toMatchObject({ listeners: [{ name: 'http', attachedRoutes: 0 }] });
  });

  it('a deployed Gateway: Programmed waits for an address and an available proxy, then status.addresses carries the Service IP', async () => {
    let infra: GatewayInfra = { available: false };
    const writer = new GatewayStatusWriter({ store, logger, gatewayInfra: (ns, name) => (ns === 'web' && name === 'gw' ? infra : undefined) });
    const programmed = async () => {
      const g = (await store.get({ kind: 'KubernetesGateway', namespace: 'web', name: 'gw' }))!.status as { addresses: unknown[]; conditions: { type: string; status: string; reason: string }[] };
      return [g.conditions.find((c) => c.type === 'Programmed')!, g.addresses] as const;
    };
    await writer.sync(buildSnapshot(await store.list(), { trustDomain: 'cluster.local' }));
    expect(await programmed()).toMatchObject([{ status: 'False', reason: 'AddressNotAssigned' }, []]);
    infra = { address: { type: 'IPAddress', value: '10.96.0.20' }, available: false };
    await writer.resync();
    expect(await programmed()).toMatchObject([{ status: 'False', reason: 'Pending' }, [{ type: 'IPAddress', value: '10.96.0.20' }]]);
    infra = { address: { type: 'IPAddress', value: '10.96.0.20' }, available: true };
    await writer.resync();
    expect(await programmed()).toMatchObject([{ status: 'True', reason: 'Programmed' }, [{ type: 'IPAddress', value: '10.96.0.20' }]]);
    // A LoadBalancer's hostname is reported as one.
    infra = { address: { type: 'Hostname', value: 'gw.lb.example.com' }, available: true };
    await writer.resync();
    expect(await programmed()).toMatchObject([{ status: 'True' }, [{ type: 'Hostname', value: 'gw.lb.example.com' }]]);
    // A parametersRef that cannot be used: not accepted, not programmed, the reason in both.
    infra = { ...infra, invalidParameters: 'ConfigMap web/params (spec.infrastructure.parametersRef) does not exist' };
    await writer.resync();
    const conditions = ((await store.get({ kind: 'KubernetesGateway', namespace: 'web', name: 'gw' }))!.status as { conditions: { type: string; status: string; reason: string; message: string }[] }).conditions;
    expect(conditions.find((c) => c.type === 'Accepted')).toMatchObject({ status: 'False', reason: 'InvalidParameters', message: 'ConfigMap web/params (spec.infrastructure.parametersRef) does not exist' });
    expect(conditions.find((c) => c.type === 'Programmed')).toMatchObject({ status: 'False', reason: 'Invalid' });
  });

  it('keeps other controllers\' route parents and a condition\'s transition time while it holds', () => {
    const other = { parentRef: { name: 'x' }, controllerName: 'example.com/other', conditions: [] };
    const old = { parents: [other, { parentRef: { name: 'gw' }, controllerName: 'aviary.dev/gateway-controller', conditions: [{ type: 'Accepted', status: 'True', reason: 'Accepted', message: 'm', observedGeneration: 1, lastTransitionTime: 'then' }] }] };
    const computed = { parents: [{ parentRef: { name: 'gw' }, controllerName: 'aviary.dev/gateway-controller', conditions: [{ type: 'Accepted', status: 'True', reason: 'Accepted', message: 'm', observedGeneration: 2 }, { type: 'ResolvedRefs', status: 'True', reason: 'ResolvedRefs', message: 'm', observedGeneration: 2 }] }] };
    const next = merge(old, computed, 'now') as { parents: { controllerName: string; conditions: { lastTransitionTime: string }[] }[] };
    expect(next.parents[0]).toEqual(other);
    expect(next.parents[1]!.conditions.map((c) => c.lastTransitionTime)).toEqual(['then', 'now']);
  });
});

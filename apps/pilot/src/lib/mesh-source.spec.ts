import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { parseNode, SnapshotBuilder, type ModelChangeEvent, type ModelObject, type ProxyInfo } from '@aviary/mesh-model';
import { TypeUrl } from '@aviary/xds-api';
import type { SourceChange } from '@aviary/xds-cache';
import { canonicalResource, resourceTypeUrls } from '@aviary/xds-protos';
import { toSnapshotInput, translate } from '@aviary/xds-translate';
import { applyDelta, meshSource } from './mesh-source';

const objects = parseAllDocuments(readFileSync(new URL('./__fixtures__/bookinfo.yaml', import.meta.url), 'utf8'))
  .map((d) => d.toJS() as ModelObject)
  .map((o) => ({ ...o, metadata: { ...o.metadata, namespace: (o.metadata.namespace as string | undefined) ?? 'default' } }));
let revision = 0;
const created = (o: ModelObject): ModelChangeEvent => ({ op: 'created', ref: { kind: o.kind, namespace: o.metadata.namespace!, name: o.metadata.name }, revision: ++revision, object: o });

const proxies = {
  sidecar: parseNode({ id: 'sidecar~127.0.0.1~reviews-v1.default~default.svc.cluster.local', metadata: { LABELS: { app: 'reviews', version: 'v1' }, SERVICE_ACCOUNT: 'bookinfo-reviews' } }),
  router: parseNode({ id: 'router~127.0.0.2~ingress.istio-system~istio-system.svc.cluster.local', metadata: { LABELS: { istio: 'ingressgateway' } } }),
  proxyless: parseNode({ id: 'client-1', metadata: { GENERATOR: 'grpc', NAMESPACE: 'default' } }),
};

function built() {
  const builder = new SnapshotBuilder({ trustDomain: 'cluster.local' });
  builder.applyAll(objects.map(created));
  return { builder, first: builder.build() };
}

describe('meshSource (translation plugged into the xDS cache)', () => {
  it.each(Object.entries(proxies))('serves a %s a consistent snapshot of its translation', (_kind, proxy) => {
    const { first } = built();
    const rejected: unknown[] = [];
    const source = meshSource(first.snapshot, { onRejected: (_p, e) => rejected.push(e) });
    const snapshot = source.resourcesFor(proxy);
    expect(snapshot.consistent()).toEqual({ ok: true, problems: [] });
    const direct = translate(proxy, first.snapshot);
    expect(snapshot.resources(TypeUrl.Listener).size).toBe(direct.listeners.length);
    expect(snapshot.resources(TypeUrl.Cluster).size).toBe(direct.clusters.length);
    expect(snapshot.resources(TypeUrl.ClusterLoadAssignment).size).toBe(direct.endpoints.length);
    expect(source.resourcesFor(proxy)).toBe(snapshot);
    expect(rejected).toEqual([]);
  });

  it.each(Object.entries(proxies))('serves a %s resources that read back as the canonical form of its translation', (_kind, proxy) => {
    const { first } = built();
    const snapshot = meshSource(first.snapshot).resourcesFor(proxy);
    const input = toSnapshotInput(translate(proxy, first.snapshot));
    for (const typeUrl of resourceTypeUrls) {
      const expected = (input[typeUrl] ?? []).map((r) => canonicalResource(typeUrl, r));
      expect([...snapshot.resources(typeUrl).values()].map((r) => r.resource)).toEqual(expected);
    }
  });

  it('applyDelta: a new endpoint patches only the assignments of proxies elsewhere and re-translates the proxies at its address', () => {
    const { builder, first } = built();
    const source = meshSource(first.snapshot);
    const changes: SourceChange<ProxyInfo>[] = [];
    source.onChange((c) => changes.push(c));
    const client = source.resourcesFor(proxies.proxyless);
    const sidecar = source.resourcesFor(proxies.sidecar);

    builder.apply(created({ apiVersion: 'networking.istio.io/v1', kind: 'WorkloadEntry', metadata: { name: 'reviews-v3', namespace: 'default' }, spec: { address: '127.0.0.1', ports: { http: 19083 }, labels: { app: 'reviews', version: 'v3' }, serviceAccount: 'bookinfo-reviews' } }));
    applyDelta(source, builder.build(), 1234);

    expect(changes.map((c) => [c.types, c.observedAt])).toEqual([
      [[TypeUrl.ClusterLoadAssignment], 1234],
      [undefined, 1234],
    ]);
    expect(source.resourcesFor(proxies.proxyless).changedTypes(client)).toEqual([TypeUrl.ClusterLoadAssignment]);
    const after = source.resourcesFor(proxies.sidecar);
    expect(after.changedTypes(sidecar)).toContain(TypeUrl.ClusterLoadAssignment);
    expect(after.consistent().ok).toBe(true);
  });
});

import { describe, expect, it } from 'vitest';
import { buildSnapshot, parseNode, type ModelObject, type ProxyInfo } from '@aviary/mesh-model';
import { bookinfo, loadObjects, proxies } from './__fixtures__/fixture';
import { cachedTranslation, selectingLabelKeys, toSnapshotInput, translate, typeUrls as T, type ResourcesByType } from './index';

function obj(kind: string, name: string, spec: unknown, namespace = 'default'): ModelObject {
  return { apiVersion: 'networking.istio.io/v1', kind, metadata: { name, namespace }, spec };
}
const sidecar = (ip: string, labels: Record<string, string>, ns = 'default'): ProxyInfo =>
  parseNode({ id: `sidecar~${ip}~pod.${ns}~${ns}.svc.cluster.local`, metadata: { NAMESPACE: ns, LABELS: labels } });

const json = (input: ResourcesByType | Record<string, unknown>) => JSON.stringify(input);

describe('cachedTranslation (shared parts between proxies)', () => {
  const snapshot = bookinfo();

  it('gives exactly what translate gives, for every proxy kind', () => {
    const cached = cachedTranslation();
    for (const proxy of Object.values(proxies)) {
      // twice: the second call is served from the shared part
      expect(json(cached.translate(proxy, snapshot))).toBe(json(toSnapshotInput(translate(proxy, snapshot))));
      expect(json(cached.translate(proxy, snapshot))).toBe(json(toSnapshotInput(translate(proxy, snapshot))));
    }
  });

  it('shares the outbound objects of sidecars that differ only in IP and non-selecting labels', () => {
    const cached = cachedTranslation();
    const a = cached.translate(sidecar('10.0.0.10', { app: 'productpage', version: 'v1', pod: 'a' }), snapshot);
    const b = cached.translate(sidecar('10.0.1.1', { app: 'reviews', version: 'v1', pod: 'b' }), snapshot);
    const clusterA = a[T.Cluster]!.find((c) => (c as { name: string }).name === 'outbound|9080||ratings.default.svc.cluster.local');
    const clusterB = b[T.Cluster]!.find((c) => (c as { name: string }).name === 'outbound|9080||ratings.default.svc.cluster.local');
    expect(clusterA).toBeDefined();
    expect(clusterA).toBe(clusterB);
    // their inbound halves differ (own service instances)
    const inbound = (x: ResourcesByType) => JSON.stringify(x[T.Listener]!.find((l) => (l as { name: string }).name === 'virtualInbound'));
    expect(inbound(a)).not.toBe(inbound(b));
  });

  it('keeps apart proxies whose labels select a different Sidecar, DestinationRule or VirtualService match', () => {
    const objects = [
      ...loadObjects(),
      obj('DestinationRule', 'ratings-canary', { host: 'ratings', workloadSelector: { matchLabels: { track: 'canary' } }, trafficPolicy: { loadBalancer: { simple: 'RANDOM' } } }),
      obj('Sidecar', 'narrow', { workloadSelector: { labels: { scope: 'narrow' } }, egress: [{ hosts: ['./ratings.default.svc.cluster.local'] }] }),
    ];
    const model = buildSnapshot(objects, { trustDomain: 'cluster.local' });
    expect(selectingLabelKeys(model)).toEqual(expect.arrayContaining(['scope', 'track']));
    const cached = cachedTranslation();
    const list = [
      sidecar('10.9.0.1', { app: 'x' }),
      sidecar('10.9.0.2', { app: 'x', track: 'canary' }),
      sidecar('10.9.0.3', { app: 'x', scope: 'narrow' }),
      sidecar('10.9.0.4', { app: 'x', track: 'stable' }),
    ];
    for (const proxy of [...list, ...list]) expect(json(cached.translate(proxy, model))).toBe(json(toSnapshotInput(translate(proxy, model))));
  });

  it('follows the selecting labels from one model to the next', () => {
    const cached = cachedTranslation();
    const canary = sidecar('10.9.0.2', { app: 'x', track: 'canary' });
    const stable = sidecar('10.9.0.4', { app: 'x', track: 'stable' });
    const plain = buildSnapshot(loadObjects(), { trustDomain: 'cluster.local' });
    const selecting = buildSnapshot(
      [...loadObjects(), obj('DestinationRule', 'ratings-canary', { host: 'ratings', workloadSelector: { matchLabels: { track: 'canary' } }, trafficPolicy: { loadBalancer: { simple: 'RANDOM' } } })],
      { trustDomain: 'cluster.local' },
    );
    for (const model of [plain, selecting, plain, selecting]) {
      for (const proxy of [canary, stable]) expect(json(cached.translate(proxy, model))).toBe(json(toSnapshotInput(translate(proxy, model))));
    }
    const ratings = (proxy: ProxyInfo, model: typeof plain) => cached.translate(proxy, model)[T.Cluster]!.find((c) => (c as { name: string }).name === 'outbound|9080||ratings.default.svc.cluster.local');
    expect(ratings(canary, plain)).toBe(ratings(stable, plain));
    expect(ratings(canary, selecting)).not.toBe(ratings(stable, selecting));
  });

  it('translateEndpoints gives the named clusters and assignments as a full translation of the new model does', () => {
    const before = bookinfo();
    const objects = loadObjects().map((o) =>
      o.kind === 'WorkloadEntry' && (o.metadata as { name: string }).name.startsWith('ratings') ? { ...o, spec: { ...(o.spec as object), address: '10.0.7.7' } } : o,
    );
    const after = buildSnapshot(objects, { trustDomain: 'cluster.local' });
    const cached = cachedTranslation();
    const proxy = proxies['sidecar-productpage']!;
    cached.translate(proxy, before);
    const full = toSnapshotInput(translate(proxy, after));
    const names = (full[T.ClusterLoadAssignment] as { cluster_name: string }[]).map((c) => c.cluster_name).filter((n) => n.endsWith('|ratings.default.svc.cluster.local'));
    expect(names.length).toBeGreaterThan(0);
    const patch = cached.translateEndpoints(proxy, after, names)!;
    expect(JSON.stringify(patch[T.ClusterLoadAssignment])).toContain('10.0.7.7');
    const pick = (list: readonly object[] | undefined, key: string) => (list ?? []).filter((r) => names.includes((r as Record<string, string>)[key]!));
    expect(json({ c: patch[T.Cluster], e: patch[T.ClusterLoadAssignment] })).toBe(json({ c: pick(full[T.Cluster], 'name'), e: pick(full[T.ClusterLoadAssignment], 'cluster_name') }));
    expect(cached.translateEndpoints(proxy, after, ['inbound|9080||'])).toBeUndefined();
    expect(cached.translateEndpoints(proxy, after, ['outbound|1|v9|nowhere.example'])).toBeUndefined();
  });

  it('translateClusters rebuilds outbound clusters by name as the full translation gives them, only those the proxy may see', () => {
    const objects = [...loadObjects(), obj('Sidecar', 'narrow', { workloadSelector: { labels: { scope: 'narrow' } }, egress: [{ hosts: ['./ratings.default.svc.cluster.local'] }] })];
    const model = buildSnapshot(objects, { trustDomain: 'cluster.local' });
    const cached = cachedTranslation();
    const wide = sidecar('10.9.0.1', { app: 'x' });
    const narrow = sidecar('10.9.0.3', { app: 'x', scope: 'narrow' });
    const full = toSnapshotInput(translate(wide, model))[T.Cluster] as { name: string }[];
    const wanted = full.map((c) => c.name).filter((n) => n.startsWith('outbound|9080|') && (n.endsWith('|reviews.default.svc.cluster.local') || n.endsWith('|ratings.default.svc.cluster.local')));
    expect(wanted.length).toBeGreaterThan(2);
    const names = (r: ResourcesByType) => (r[T.Cluster] as { name: string }[]).map((c) => c.name);
    expect(JSON.stringify(cached.translateClusters(wide, model, wanted)[T.Cluster])).toBe(JSON.stringify(full.filter((c) => wanted.includes(c.name))));
    // The narrow Sidecar's proxy sees ratings only; unknown names and inbound clusters are left out.
    expect(names(cached.translateClusters(narrow, model, [...wanted, 'outbound|1|v9|nowhere.example', 'inbound|9080||']))).toEqual(wanted.filter((n) => n.endsWith('|ratings.default.svc.cluster.local')));
  });
});

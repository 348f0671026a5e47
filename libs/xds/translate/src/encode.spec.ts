import { describe, expect, it } from 'vitest';
import { TypeUrl, canonicalResource, decodeResource, encodeResource } from '@aviary/xds-protos';
import { bookinfo, loadObjects, proxies } from './__fixtures__/fixture';
import { buildSnapshot } from '@aviary/mesh-model';
import { translate, type XdsResources } from './index';

const snapshot = bookinfo();
const types = [
  ['listeners', TypeUrl.Listener],
  ['routes', TypeUrl.RouteConfiguration],
  ['clusters', TypeUrl.Cluster],
  ['endpoints', TypeUrl.ClusterLoadAssignment],
] as const;

function shuffled<T>(list: readonly T[], seed: number): T[] {
  const out = [...list];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2147483648;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe.each(Object.entries(proxies))('translation for %s', (_name, proxy) => {
  const result: XdsResources = translate(proxy, snapshot);

  it('produces something of every type it should', () => {
    expect(result.listeners.length).toBeGreaterThan(0);
    expect(result.clusters.length).toBeGreaterThan(0);
    expect(result.endpoints.length).toBeGreaterThan(0);
  });

  it('every resource is already canonical and round-trips through the Envoy protos without losing a field', () => {
    for (const [key, url] of types) {
      for (const { name, resource } of result[key]) {
        // canonical form == what we emit: no unknown field, no wrong type, nothing dropped or coerced
        expect(canonicalResource(url, resource), `${key} ${name}`).toEqual(resource);
        const decoded = decodeResource(url, encodeResource(url, resource));
        expect(decoded, `${key} ${name}`).toEqual(resource);
      }
    }
  });

  it('every cluster a route or tcp_proxy references is served to the proxy', () => {
    const clusters = new Set(result.clusters.map((c) => c.name));
    const referenced = new Set<string>();
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === 'object') {
        for (const [k, x] of Object.entries(v)) {
          if (k === 'cluster' && typeof x === 'string') referenced.add(x);
          if (k === 'weighted_clusters') for (const c of (x as { clusters: { name: string }[] }).clusters) referenced.add(c.name);
          walk(x);
        }
      }
    };
    walk(result.listeners);
    walk(result.routes);
    const missing = [...referenced].filter((c) => !clusters.has(c));
    // Mirrors to an undefined subset are reported as problems, as Istio would 503 them.
    expect(missing.filter((m) => !m.includes('|shadow|'))).toEqual([]);
  });

  it('is deterministic: same input twice and shuffled input give byte-identical JSON', () => {
    const a = JSON.stringify(result);
    expect(JSON.stringify(translate(proxy, snapshot))).toBe(a);
    for (const seed of [1, 7, 42]) {
      const again = buildSnapshot(shuffled(loadObjects(), seed), { trustDomain: 'cluster.local' });
      expect(JSON.stringify(translate(proxy, again))).toBe(a);
    }
  });

  it('names resources sorted and unique', () => {
    for (const [key] of types) {
      const names = result[key].map((r) => r.name);
      expect(names).toEqual([...new Set(names)].sort());
    }
  });
});

import { describe, expect, it } from 'vitest';
import type { CanarySpec, StoredObject } from '@aviary/mesh-api';
import { findRoute, routeWeight, telemetryKey, withWeight } from './route';

const spec: CanarySpec = { target: { virtualService: 'reviews', routeIndex: 1 }, stable: { host: 'reviews', subset: 'v1' }, canary: { host: 'reviews', subset: 'v2' }, steps: [{ weight: 10 }] };
const vs = (route: unknown[]): StoredObject => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name: 'reviews', namespace: 'shop' },
  spec: { hosts: ['reviews'], http: [{ match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: [{ destination: { host: 'reviews', subset: 'v2' } }] }, { route }] },
});
const split = vs([{ destination: { host: 'reviews', subset: 'v1' }, weight: 80 }, { destination: { host: 'reviews', subset: 'v2' }, weight: 20 }]);

describe('canary target route', () => {
  it('finds the route by index or name and reads and writes its weights, leaving other routes alone', () => {
    expect(findRoute(spec, split)).toEqual({ ok: true, value: 1 });
    expect(routeWeight(spec, split, 1)).toBe(20);
    const next = withWeight(spec, split, 1, 50)!;
    expect((next.spec as { http: unknown[] }).http[1]).toEqual({ route: [{ destination: { host: 'reviews', subset: 'v1' }, weight: 50 }, { destination: { host: 'reviews', subset: 'v2' }, weight: 50 }] });
    expect((next.spec as { http: unknown[] }).http[0]).toEqual((split.spec as { http: unknown[] }).http[0]);
    expect(withWeight(spec, split, 1, 20)).toBeUndefined();
    expect(findRoute({ ...spec, target: { virtualService: 'reviews', route: 'nope' } }, split)).toEqual({ ok: false, problem: 'VirtualService shop/reviews has no HTTP route named "nope"' });
  });

  it('refuses a route without both destinations or with a third one', () => {
    expect(findRoute(spec, vs([{ destination: { host: 'reviews', subset: 'v1' } }]))).toMatchObject({ ok: false, problem: expect.stringContaining('has no destination reviews subset v2 (canary)') });
    const three = vs([
      { destination: { host: 'reviews', subset: 'v1' }, weight: 50 },
      { destination: { host: 'reviews', subset: 'v2' }, weight: 25 },
      { destination: { host: 'reviews', subset: 'v3' }, weight: 25 },
    ]);
    expect(findRoute(spec, three)).toMatchObject({ ok: false, problem: expect.stringContaining('also routes to reviews subset v3') });
  });

  it('maps a subset to its version label for telemetry, and a bare host to its service', () => {
    const dr: StoredObject = { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'reviews', namespace: 'shop' }, spec: { host: 'reviews', subsets: [{ name: 'v2', labels: { version: 'v2' } }, { name: 'canary', labels: { track: 'canary' } }] } };
    expect(telemetryKey({ host: 'reviews', subset: 'v2' }, 'shop', 'cluster.local', [dr])).toEqual({ ok: true, value: { service: 'reviews.shop.svc.cluster.local', version: 'v2' } });
    expect(telemetryKey({ host: 'reviews-canary' }, 'shop', 'cluster.local', [dr])).toEqual({ ok: true, value: { service: 'reviews-canary.shop.svc.cluster.local' } });
    expect(telemetryKey({ host: 'reviews', subset: 'canary' }, 'shop', 'cluster.local', [dr])).toMatchObject({ ok: false, problem: expect.stringContaining('has no version label') });
  });
});

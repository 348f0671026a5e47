import { describe, expect, it } from 'vitest';
import type { CanarySpec, StoredObject } from '@aviary/mesh-api';
import { findRoute, routeWeight, targetRef, telemetryKey, withWeight } from './route';

const ctx = { namespace: 'shop', domainSuffix: 'cluster.local' };

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
    expect(findRoute(spec, split, ctx)).toEqual({ ok: true, value: 1 });
    expect(routeWeight(spec, split, 1, ctx)).toBe(20);
    const next = withWeight(spec, split, 1, 50, ctx)!;
    expect((next.spec as { http: unknown[] }).http[1]).toEqual({ route: [{ destination: { host: 'reviews', subset: 'v1' }, weight: 50 }, { destination: { host: 'reviews', subset: 'v2' }, weight: 50 }] });
    expect((next.spec as { http: unknown[] }).http[0]).toEqual((split.spec as { http: unknown[] }).http[0]);
    expect(withWeight(spec, split, 1, 20, ctx)).toBeUndefined();
    expect(findRoute({ ...spec, target: { virtualService: 'reviews', route: 'nope' } }, split, ctx)).toEqual({ ok: false, problem: 'VirtualService shop/reviews has no HTTP route named "nope"' });
  });

  it('refuses a route without both destinations or with a third one', () => {
    expect(findRoute(spec, vs([{ destination: { host: 'reviews', subset: 'v1' } }]), ctx)).toMatchObject({ ok: false, problem: expect.stringContaining('has no destination reviews subset v2 (canary)') });
    const three = vs([
      { destination: { host: 'reviews', subset: 'v1' }, weight: 50 },
      { destination: { host: 'reviews', subset: 'v2' }, weight: 25 },
      { destination: { host: 'reviews', subset: 'v3' }, weight: 25 },
    ]);
    expect(findRoute(spec, three, ctx)).toMatchObject({ ok: false, problem: expect.stringContaining('also routes to reviews subset v3') });
  });

  describe('a Gateway API HTTPRoute target', () => {
    const routeSpec: CanarySpec = { target: { httpRoute: 'reviews', route: 'split' }, stable: { host: 'reviews-v1' }, canary: { host: 'reviews-v2.shop.svc.cluster.local' }, steps: [{ weight: 10 }] };
    const httpRoute = (backendRefs: unknown[]): StoredObject => ({
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name: 'reviews', namespace: 'shop' },
      spec: {
        parentRefs: [{ name: 'reviews', kind: 'Service', group: '' }],
        rules: [
          { matches: [{ headers: [{ name: 'x-canary', value: 'true' }] }], backendRefs: [{ name: 'reviews-v2', port: 9080 }] },
          { name: 'split', backendRefs },
        ],
      },
    });
    it('names the HTTPRoute in the Canary namespace (or target.namespace)', () => {
      expect(targetRef(routeSpec, 'shop')).toEqual({ kind: 'HTTPRoute', namespace: 'shop', name: 'reviews' });
      expect(targetRef({ ...routeSpec, target: { ...routeSpec.target, namespace: 'other' } }, 'shop')).toEqual({ kind: 'HTTPRoute', namespace: 'other', name: 'reviews' });
      expect(targetRef(spec, 'shop')).toEqual({ kind: 'VirtualService', namespace: 'shop', name: 'reviews' });
    });
    it("finds the rule by name or index, reads its backendRefs' weights (unset: 1 each) and writes them, leaving the other rules alone", () => {
      const unweighted = httpRoute([{ name: 'reviews-v1', port: 9080 }, { name: 'reviews-v2', port: 9080 }]);
      expect(findRoute(routeSpec, unweighted, ctx)).toEqual({ ok: true, value: 1 });
      expect(findRoute({ ...routeSpec, target: { httpRoute: 'reviews', routeIndex: 1 } }, unweighted, ctx)).toEqual({ ok: true, value: 1 });
      expect(routeWeight(routeSpec, unweighted, 1, ctx)).toBe(50);
      const next = withWeight(routeSpec, unweighted, 1, 20, ctx)!;
      const rules = (next.spec as { rules: unknown[] }).rules;
      expect(rules[1]).toEqual({ name: 'split', backendRefs: [{ name: 'reviews-v1', port: 9080, weight: 80 }, { name: 'reviews-v2', port: 9080, weight: 20 }] });
      expect(rules[0]).toEqual((unweighted.spec as { rules: unknown[] }).rules[0]);
      expect(routeWeight(routeSpec, next, 1, ctx)).toBe(20);
      expect(withWeight(routeSpec, next, 1, 20, ctx)).toBeUndefined();
      // A backendRef in another namespace is another Service.
      expect(findRoute(routeSpec, httpRoute([{ name: 'reviews-v1' }, { name: 'reviews-v2', namespace: 'other' }]), ctx)).toEqual({
        ok: false,
        problem: 'HTTPRoute shop/reviews rules[1] has no backendRef reviews-v2.shop.svc.cluster.local (canary)',
      });
    });
    it('refuses a missing rule, a third backendRef or a backend that is not a Service', () => {
      expect(findRoute({ ...routeSpec, target: { httpRoute: 'reviews', route: 'nope' } }, httpRoute([]), ctx)).toEqual({ ok: false, problem: 'HTTPRoute shop/reviews has no rule named "nope"' });
      expect(findRoute({ ...routeSpec, target: { httpRoute: 'reviews', routeIndex: 5 } }, httpRoute([]), ctx)).toEqual({ ok: false, problem: 'HTTPRoute shop/reviews has no rules[5]' });
      expect(findRoute(routeSpec, httpRoute([{ name: 'reviews-v1' }, { name: 'reviews-v2' }, { name: 'reviews-v3' }]), ctx)).toMatchObject({ ok: false, problem: expect.stringContaining('also routes to Service shop/reviews-v3') });
      expect(findRoute(routeSpec, httpRoute([{ name: 'reviews-v1' }, { name: 'reviews-v2', kind: 'ServiceImport', group: 'multicluster.x-k8s.io' }]), ctx)).toMatchObject({ ok: false, problem: expect.stringContaining('has no backendRef reviews-v2.shop.svc.cluster.local (canary)') });
    });
  });

  it('maps a subset to its version label for telemetry, and a bare host to its service', () => {
    const dr: StoredObject = { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'reviews', namespace: 'shop' }, spec: { host: 'reviews', subsets: [{ name: 'v2', labels: { version: 'v2' } }, { name: 'canary', labels: { track: 'canary' } }] } };
    expect(telemetryKey({ host: 'reviews', subset: 'v2' }, 'shop', 'cluster.local', [dr])).toEqual({ ok: true, value: { service: 'reviews.shop.svc.cluster.local', version: 'v2' } });
    expect(telemetryKey({ host: 'reviews-canary' }, 'shop', 'cluster.local', [dr])).toEqual({ ok: true, value: { service: 'reviews-canary.shop.svc.cluster.local' } });
    expect(telemetryKey({ host: 'reviews', subset: 'canary' }, 'shop', 'cluster.local', [dr])).toMatchObject({ ok: false, problem: expect.stringContaining('has no version label') });
  });
});
